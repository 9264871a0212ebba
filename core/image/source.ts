// The contract between the image decoders (JPEG, PNG) and the preprocessing: a decoder reads the header
// first, then pushes RGB rows as it decodes them, so no caller holds the whole picture. RgbImage is the
// whole picture, for the references and the fallback that do hold it.

export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array; // RGB, row-major: [height][width][3]
}

// What a decoder knows from the file's header, before any pixel memory is spent.
export interface ImageHeader {
  format: "jpeg" | "png";
  width: number; // as stored, before the EXIF orientation
  height: number;
  orientation: number; // EXIF 1..8, 1 when absent (PNG: from an eXIf chunk, which Pillow's exif_transpose applies)
  scales: readonly number[]; // the DCT-domain reductions the decoder offers: [1] for PNG, [1, 2, 4, 8] for JPEG
}

// RGB rows pushed top to bottom, in stored orientation: `rows` holds `count` rows of `width * 3` bytes, the
// first being row `first` of the (scaled) image. The buffer is reused after the call returns.
export type RowSink = (rows: Uint8Array, first: number, count: number) => void;

export interface ImageDecoder {
  readonly header: ImageHeader;
  // Decodes the whole image at 1/scale (one of header.scales) and pushes every row to `sink`. Returns the
  // decoded size, ceil(width / scale) x ceil(height / scale) as libjpeg scales. The pixels are Pillow's
  // Image.open(...).convert("RGB") (with draft() choosing that scale when scale > 1), before exif_transpose.
  //
  // A decoder may return a Promise instead (PNG does: DecompressionStream, its inflater, is asynchronous);
  // callers await the result. Rows are still pushed in order, and only between the call and the promise
  // settling. JPEG decoders stay synchronous.
  decode(scale: number, sink: RowSink): DecodedSize | Promise<DecodedSize>;
}

export interface DecodedSize {
  width: number;
  height: number;
}
