// jpeg-js as a whole-image JPEG reference for tests and benchmarks (the upload path decodes with the
// streaming decoder, ./decoder.ts, alone). The header is the streaming decoder's (./markers.ts), and
// jpeg-js's YCbCr output goes through libjpeg's colour steps (./color.ts), so the colours match Pillow's up
// to jpeg-js's IDCT rounding. decodeJpeg applies the EXIF orientation as Pillow's exif_transpose does.
// Portable: Node and workerd.

import { decode as jpegJsDecode } from "jpeg-js";
import { EdgevitError } from "../../errors.ts";
import { checkPixels, type Limits } from "../../limits.ts";
import { applyOrientation } from "../orientation.ts";
import type { RgbImage } from "../source.ts";
import { upsampleMethod, upsampleRow, yccToRgb } from "./color.ts";
import { type JpegColorSpace, readJpegHeader } from "./markers.ts";

export interface JpegInfo {
  width: number; // as stored, before the EXIF orientation
  height: number;
  components: number; // 1 grayscale, 3 YCbCr/RGB, 4 CMYK/YCCK
  progressive: boolean;
  orientation: number; // EXIF 1..8; 1 when absent or out of range
  colorSpace: JpegColorSpace;
  adobeTransform: number; // the Adobe APP14 transform flag, -1 without that marker
  sampling: { h: number; v: number }[]; // per component, in frame order
}

// jpeg-js accounts, per pixel, about 9 bytes for grayscale, 14 for 4:2:0, 21 for 4:4:4 and 27 for CMYK
// (measured on the fixtures); an EXIF rotation adds a 3-byte copy of the output.
export type FallbackLimits = Pick<Limits, "maxPixels" | "maxJpegJsMemoryMB">;

// For whole-image decoding: 16 MP of any flavour, CMYK included (16e6 * 28 bytes).
export const DEFAULT_FALLBACK_LIMITS: FallbackLimits = { maxPixels: 16_000_000, maxJpegJsMemoryMB: 448 };

// Bytes per pixel jpeg-js accounts for at worst (4:4:4 and progressive files: coefficients, planes and
// output together, measured ~22): its own guard when no memory limit is given, on top of the pixel limit.
const DECODE_BYTES_PER_PIXEL = 24;

function notJpeg(bytes: Uint8Array): EdgevitError {
  if (bytes.length === 0) return new EdgevitError("invalid_image", "The image is empty; only JPEG is supported.");
  const sniffed = sniffFormat(bytes);
  const what = sniffed ? `This is a ${sniffed} image` : "This is not a JPEG image";
  return new EdgevitError("invalid_image", `${what}; only JPEG is supported.`);
}

function sniffFormat(b: Uint8Array): string | null {
  if (b[0] === 0x89 && ascii(b, 1, 4) === "PNG") return "PNG";
  if (ascii(b, 0, 4) === "GIF8") return "GIF";
  if (ascii(b, 0, 4) === "RIFF" && ascii(b, 8, 12) === "WEBP") return "WebP";
  if (ascii(b, 0, 2) === "BM") return "BMP";
  if (ascii(b, 4, 8) === "ftyp") return "HEIF/AVIF";
  return null;
}

function ascii(b: Uint8Array, from: number, to: number): string {
  return String.fromCharCode(...b.subarray(from, to));
}

// jpeg-js reads baseline, extended sequential and progressive Huffman frames (SOF0-SOF2) only.
function checkProcess(marker: number): void {
  if (marker > 0xc2) {
    throw new EdgevitError(
      "invalid_image",
      "Unsupported JPEG coding (lossless, hierarchical or arithmetic); use a baseline or progressive JPEG.",
    );
  }
}

// The streaming decoder's header reader, with the processes jpeg-js decodes. Only the part up to the frame
// header must be present.
export function readJpegInfo(bytes: Uint8Array): JpegInfo {
  if (bytes.length < 2 || bytes[0] !== 0xff || bytes[1] !== 0xd8) throw notJpeg(bytes);
  const { frame, orientation, colorSpace, adobeTransform } = readJpegHeader(bytes, checkProcess);
  return {
    width: frame.width,
    height: frame.height,
    components: frame.components.length,
    progressive: frame.progressive,
    orientation,
    colorSpace,
    adobeTransform,
    sampling: frame.components.map(({ h, v }) => ({ h, v })),
  };
}

// Decodes to RGB with the EXIF orientation applied. Every failure is an EdgevitError:
// image_too_large for the limits, invalid_image for anything else.
export function decodeJpeg(bytes: Uint8Array, limits: FallbackLimits = DEFAULT_FALLBACK_LIMITS): RgbImage {
  const info = readJpegInfo(bytes);
  return applyOrientation(decodeJpegStored(bytes, limits, info), info.orientation);
}

// Decodes to RGB as stored, before the EXIF orientation.
export function decodeJpegStored(
  bytes: Uint8Array,
  limits: FallbackLimits = DEFAULT_FALLBACK_LIMITS,
  info: JpegInfo = readJpegInfo(bytes),
): RgbImage {
  checkPixels(info.width, info.height, limits.maxPixels);
  const pixels = info.width * info.height;
  let decoded: { width: number; height: number; data: Uint8Array };
  try {
    // tolerantDecoding off: a truncated scan must fail, not come back as a partly gray picture.
    // formatAsRGBA off: jpeg-js then writes 3 bytes per pixel, replicating gray and converting CMYK.
    // colorTransform off: YCbCr comes back as decoded so that libjpeg's colour steps can be redone on it.
    decoded = jpegJsDecode(bytes, {
      useTArray: true,
      formatAsRGBA: false,
      colorTransform: false,
      tolerantDecoding: false,
      maxResolutionInMP: limits.maxPixels / 1e6,
      maxMemoryUsageInMB:
        limits.maxJpegJsMemoryMB ?? Math.ceil((limits.maxPixels * DECODE_BYTES_PER_PIXEL) / (1 << 20)),
    });
  } catch (err) {
    throw decoderError(err);
  }
  if (decoded.width !== info.width || decoded.height !== info.height || decoded.data.length !== pixels * 3) {
    throw new EdgevitError("invalid_image", "The JPEG decoded to an unexpected size.");
  }
  // jpeg-js converts anyway (replicated chroma, truncated RGB) when an Adobe marker asks for it.
  if (info.colorSpace === "ycbcr" && info.components === 3 && info.adobeTransform <= 0) {
    const [luma, cb, cr] = info.sampling;
    const chroma1x1 = cb.h === 1 && cb.v === 1 && cr.h === 1 && cr.v === 1;
    toRgb(decoded.data, decoded.width, decoded.height, chroma1x1 && luma.h <= 2 && luma.v <= 2 ? luma : null);
  }
  return { width: decoded.width, height: decoded.height, data: decoded.data };
}

// libjpeg-turbo's last decoding steps redone on jpeg-js's output, in place: data is [height][width][Y, Cb,
// Cr] with chroma replicated by jpeg-js (which shifts colours against Pillow), subsampled by `sub` (each 1
// or 2) when that is a ratio libjpeg fancy-upsamples, else null and kept replicated. The chroma planes are
// recovered from the replicated samples, upsampled row by row as the streaming decoder does, and every row
// is converted with libjpeg's fixed-point tables.
function toRgb(data: Uint8Array, width: number, height: number, sub: { h: number; v: number } | null): void {
  const cw = sub ? Math.ceil(width / sub.h) : width;
  const ch = sub ? Math.ceil(height / sub.v) : height;
  const method = sub ? upsampleMethod(sub.h, sub.v, cw, true) : "replicate";
  const fancy = method !== "full" && method !== "replicate";
  const planes = fancy ? [new Uint8Array(cw * ch), new Uint8Array(cw * ch)] : [];
  if (sub && fancy) {
    for (let c = 0; c < 2; c++) {
      for (let j = 0; j < ch; j++) {
        for (let i = 0; i < cw; i++) planes[c][j * cw + i] = data[(j * sub.v * width + i * sub.h) * 3 + 1 + c];
      }
    }
  }
  const rows = [new Uint8Array(width + 8), new Uint8Array(width + 8), new Uint8Array(width + 8)];
  for (let y = 0; y < height; y++) {
    const o = y * width * 3;
    for (let x = 0; x < width; x++) {
      rows[0][x] = data[o + 3 * x];
      rows[1][x] = data[o + 3 * x + 1];
      rows[2][x] = data[o + 3 * x + 2];
    }
    if (sub && fancy) {
      // The component row the output row falls in, and (vertical filters) the one above or below it.
      const near = sub.v === 2 ? y >> 1 : y;
      const far = sub.v === 2 ? Math.min(Math.max(y & 1 ? near + 1 : near - 1, 0), ch - 1) : near;
      for (let c = 0; c < 2; c++) {
        upsampleRow(method, sub.h, cw, planes[c], near * cw, far * cw, (y & 1) === 1, rows[1 + c], width);
      }
    }
    yccToRgb(rows[0], 0, rows[1], 0, rows[2], 0, data, o, width);
  }
}

// jpeg-js's own messages name its internals ("Cannot read properties of undefined", "marker was not
// found"): they are kept as the cause, and the user gets a sentence about the file.
function decoderError(err: unknown): EdgevitError {
  const message = err instanceof Error ? err.message : String(err);
  // jpeg-js's limits, or the engine refusing an allocation; corrupt data gives any other error.
  if (/maxMemoryUsageInMB|maxResolutionInMP|allocat/.test(message)) {
    return new EdgevitError("image_too_large", "The image needs more memory to decode than this server allows.", {
      cause: err,
    });
  }
  return new EdgevitError("invalid_image", "The JPEG is corrupt: its compressed image data could not be decoded.", {
    cause: err,
  });
}
