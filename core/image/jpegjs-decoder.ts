// Today's JPEG path (jpeg-js plus libjpeg's colour steps, ./jpeg.ts) behind the row-streaming contract of
// ./source.ts: it decodes the whole picture, then pushes its rows. Full scale only. It is the fallback
// for any JPEG a streaming decoder declines.

import { checkPixels } from "./limits.ts";
import { type DecodeLimits, decodeJpegStored, readJpegInfo } from "./jpeg.ts";
import type { DecoderLimits, ImageDecoder, ImageHeader, RowSink } from "./source.ts";

// Bytes per pixel jpeg-js accounts for at worst (4:4:4 and progressive files: coefficients, planes and
// output together, measured ~22): its own guard, on top of the pixel limit.
const DECODE_BYTES_PER_PIXEL = 24;

export function openJpegJs(bytes: Uint8Array, limits: DecoderLimits): ImageDecoder {
  const info = readJpegInfo(bytes);
  checkPixels(info.width, info.height, limits.maxPixels);
  const decodeLimits: DecodeLimits = {
    maxPixels: limits.maxPixels,
    maxMemoryMB: Math.ceil((limits.maxPixels * DECODE_BYTES_PER_PIXEL) / (1 << 20)),
  };
  const header: ImageHeader = {
    format: "jpeg",
    width: info.width,
    height: info.height,
    orientation: info.orientation,
    scales: [1],
  };
  return {
    header,
    decode(scale: number, sink: RowSink) {
      if (scale !== 1) throw new RangeError(`this JPEG decoder offers no scale ${scale}, only 1`);
      const image = decodeJpegStored(bytes, decodeLimits, info);
      sink(image.data, 0, image.height);
      return { width: image.width, height: image.height };
    },
  };
}
