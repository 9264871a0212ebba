// A whole-image reference of what the upload path feeds the preprocessor: the decoder's rows at the scale
// the decode mode picks (the decoders are checked against Pillow, bit for bit, in their own tests),
// gathered into one picture and turned by the EXIF orientation. Tests preprocess it with the whole-image
// resize, which is independent of core/preprocess/stream.ts's streaming one.
import type { Preprocessing } from "../../../core/bundle/format.ts";
import type { RgbImage } from "../../../core/image/source.ts";
import { openImageBytes } from "../../../core/image/open.ts";
import { applyOrientation } from "../../../core/image/orientation.ts";
import { chooseScale, type DecodeMode } from "../../../core/preprocess/stream.ts";

export async function decodeWhole(
  bytes: Uint8Array | ArrayBuffer,
  pp: Preprocessing,
  mode: DecodeMode = "fast",
): Promise<RgbImage> {
  const decoder = openImageBytes(new Uint8Array(bytes), { maxPixels: 1 << 26 });
  const scale = chooseScale(decoder.header, pp, mode);
  const width = Math.ceil(decoder.header.width / scale);
  const height = Math.ceil(decoder.header.height / scale);
  const data = new Uint8Array(width * height * 3);
  await decoder.decode(scale, (rows, first, count) => data.set(rows.subarray(0, count * width * 3), first * width * 3));
  return applyOrientation({ width, height, data }, decoder.header.orientation);
}
