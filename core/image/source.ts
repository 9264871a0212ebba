// The contract between the image decoders (JPEG, PNG, WebP, GIF, BMP) and the preprocessing: a decoder reads the header
// first (from whole bytes or a stream, ./bytes.ts), then pushes RGB rows as it decodes them, so no caller
// holds the whole picture. RgbImage is the whole picture, for the references and the fallback that do hold
// it.

export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array; // RGB, row-major: [height][width][3]
}

// What a decoder knows from the file's header, before any pixel memory is spent.
export interface ImageHeader {
  format: "jpeg" | "png" | "webp" | "gif" | "bmp";
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
  // Decodes the whole image at 1/scale (one of header.scales) and pushes every row to `sink`. Resolves to
  // the decoded size, ceil(width / scale) x ceil(height / scale) as libjpeg scales. The pixels are Pillow's
  // Image.open(...).convert("RGB") (with draft() choosing that scale when scale > 1), before exif_transpose.
  // Asynchronous for every format: a streamed file's bytes arrive while it decodes, and every decoder
  // yields to the event loop after each bounded slice of work, so concurrent requests interleave.
  decode(scale: number, sink: RowSink): Promise<DecodedSize>;
  // The most bytes decode(scale) holds at once (its buffers and the source's window), known from the
  // header before any of it is allocated: what a memory ledger reserves.
  memoryBytes(scale: number): number;
}

export interface DecodedSize {
  width: number;
  height: number;
}
