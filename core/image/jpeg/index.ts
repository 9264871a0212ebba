// JPEG input: baseline, extended sequential and progressive JPEGs, Huffman- or arithmetic-coded, 8-bit, any
// sampling factors, grayscale, YCbCr, RGB, CMYK and YCCK, decoded bit-exact with Pillow's
// Image.open(...).convert("RGB") (libjpeg-turbo's islow IDCT and fancy upsampling), with DCT-domain scaling
// as Pillow's draft() does it.
// Runtime-neutral. See DECODER-CONTRACT in core/image/source.ts.

import type { ByteSource } from "../bytes.ts";
import { type JpegDecoder, type JpegLimits, openJpegBytes, openJpegSource } from "./decoder.ts";

export type { DecodeStats, JpegLimits } from "./decoder.ts";
export type { JpegColorSpace } from "./markers.ts";
export {
  DEFAULT_MAX_COEFFICIENT_BYTES,
  DEFAULT_MAX_COEFFICIENT_PASSES,
  DEFAULT_MAX_SCANS,
  DEFAULT_MAX_VISITS_PER_BYTE,
  JpegDecoder,
} from "./decoder.ts";

// Reads and checks the header; decoding happens in decode(). Errors are EdgevitErrors:
// - invalid_image: the file is broken in a way Pillow refuses too (or exceeds the scan/work bounds), or of a
//   process libjpeg-turbo 2.1 does not decode (lossless, hierarchical);
// - image_too_large: the header declares more than limits.maxPixels, or (decode) a progressive file would
//   need more than limits.maxCoefficientBytes of coefficients at that scale.
// Nothing is declined at decode: a progressive file whose scans stop before its low frequencies are exact is
// decoded with libjpeg's block smoothing, as Pillow gets it.
// Whole bytes open at once; a source (a stream) opens once the bytes up to its first scan have arrived.
export function openJpeg(bytes: Uint8Array, limits: JpegLimits): JpegDecoder;
export function openJpeg(source: ByteSource, limits: JpegLimits): Promise<JpegDecoder>;
export function openJpeg(input: Uint8Array | ByteSource, limits: JpegLimits): JpegDecoder | Promise<JpegDecoder> {
  return input instanceof Uint8Array ? openJpegBytes(input, limits) : openJpegSource(input, limits);
}
