// JPEG input: a header reader that sizes an image before any pixel memory is spent, and the decoder
// (jpeg-js) with limits, grayscale/CMYK to RGB and the EXIF orientation applied as PIL's
// ImageOps.exif_transpose does (transformers' load_image calls it). Portable: Node and workerd.

import { decode as jpegJsDecode } from "jpeg-js";
import { EdgevitError } from "../errors.ts";
import { fancyUpsampleChroma, ycbcrToRgb } from "./color.ts";
import { applyOrientation } from "./orientation.ts";

export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array; // RGB, row-major: [height][width][3]
}

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
export interface DecodeLimits {
  maxPixels: number; // width * height above this is image_too_large, checked from the header
  maxMemoryMB: number; // jpeg-js's own accounting of its buffers (coefficients, planes, output)
}

// For the CLI: 16 MP of any flavour, CMYK included (16e6 * 28 bytes).
export const DEFAULT_DECODE_LIMITS: DecodeLimits = { maxPixels: 16_000_000, maxMemoryMB: 448 };

// Coding processes jpeg-js decodes: baseline, extended sequential and progressive Huffman.
const SUPPORTED_SOF = new Set([0xc0, 0xc1, 0xc2]);

function isSof(marker: number): boolean {
  return marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
}

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

function truncated(): EdgevitError {
  return new EdgevitError("invalid_image", "The JPEG is truncated or corrupt: its header ends early.");
}

// What the samples are, decided as libjpeg (and so PIL) decides: a JFIF marker means YCbCr, else an
// Adobe marker's transform flag, else the component ids ('R','G','B' means RGB).
export type JpegColorSpace = "gray" | "ycbcr" | "rgb" | "cmyk" | "ycck";

// Reads markers up to the first scan (SOS) without decoding anything. Only the part up to the frame
// header (SOF) must be present: the size is known there.
export function readJpegInfo(bytes: Uint8Array): JpegInfo {
  if (bytes.length < 2 || bytes[0] !== 0xff || bytes[1] !== 0xd8) throw notJpeg(bytes);
  let orientation = 0;
  let jfif = false;
  let adobeTransform = -1;
  let frame: ReturnType<typeof readFrame> | null = null;
  let pos = 2;
  for (;;) {
    const segment = nextSegment(bytes, pos);
    if (segment instanceof EdgevitError) {
      if (frame) break;
      throw segment;
    }
    const { marker, start, end } = segment;
    if (marker === 0xda) break;
    if (marker === 0xd9) {
      throw new EdgevitError("invalid_image", "The JPEG has no image data.");
    }
    if (marker === 0xe0 && end - start >= 5 && ascii(bytes, start, start + 5) === "JFIF\0") jfif = true;
    if (marker === 0xee && end - start >= 12 && ascii(bytes, start, start + 6) === "Adobe\0")
      adobeTransform = bytes[start + 11];
    if (marker === 0xe1 && orientation === 0 && end - start >= 14 && ascii(bytes, start, start + 6) === "Exif\0\0") {
      // PIL keeps the first Exif block; later ones are ignored as it does.
      orientation = readExifOrientation(bytes.subarray(start + 6, end)) || -1;
    }
    if (isSof(marker) && !frame) frame = readFrame(bytes, marker, start, end);
    pos = end;
  }
  if (!frame) throw new EdgevitError("invalid_image", "The JPEG has no frame header before its image data.");
  return {
    width: frame.width,
    height: frame.height,
    components: frame.ids.length,
    progressive: frame.progressive,
    orientation: orientation > 0 ? orientation : 1,
    colorSpace: colorSpace(frame.ids, jfif, adobeTransform),
    adobeTransform,
    sampling: frame.sampling,
  };
}

function colorSpace(ids: number[], jfif: boolean, adobeTransform: number): JpegColorSpace {
  if (ids.length === 1) return "gray";
  if (ids.length === 4) return adobeTransform === 2 ? "ycck" : "cmyk";
  if (jfif) return "ycbcr";
  if (adobeTransform >= 0) return adobeTransform === 0 ? "rgb" : "ycbcr";
  return ids[0] === 0x52 && ids[1] === 0x47 && ids[2] === 0x42 ? "rgb" : "ycbcr";
}

function ascii(b: Uint8Array, from: number, to: number): string {
  return String.fromCharCode(...b.subarray(from, to));
}

// The marker at pos (after any 0xFF fill bytes) and its payload [start, end); standalone markers have
// an empty payload. An EdgevitError is returned, not thrown, so the caller decides if it matters.
function nextSegment(bytes: Uint8Array, pos: number): { marker: number; start: number; end: number } | EdgevitError {
  if (pos >= bytes.length) return truncated();
  if (bytes[pos] !== 0xff)
    return new EdgevitError("invalid_image", "The JPEG is corrupt: a marker was expected in its header.");
  while (pos < bytes.length && bytes[pos] === 0xff) pos++;
  if (pos >= bytes.length) return truncated();
  const marker = bytes[pos++];
  if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd9)) return { marker, start: pos, end: pos };
  if (pos + 2 > bytes.length) return truncated();
  const length = (bytes[pos] << 8) | bytes[pos + 1];
  if (length < 2) return new EdgevitError("invalid_image", "The JPEG has a malformed marker segment.");
  if (pos + length > bytes.length) return truncated();
  return { marker, start: pos + 2, end: pos + length };
}

function readFrame(bytes: Uint8Array, marker: number, start: number, end: number) {
  const components = end - start >= 6 ? bytes[start + 5] : 0;
  if (end - start < 6 + 3 * components || components === 0) throw truncated();
  if (!SUPPORTED_SOF.has(marker)) {
    throw new EdgevitError(
      "invalid_image",
      "Unsupported JPEG coding (lossless, hierarchical or arithmetic); use a baseline or progressive JPEG.",
    );
  }
  if (bytes[start] !== 8) {
    throw new EdgevitError(
      "invalid_image",
      `Unsupported JPEG sample precision of ${bytes[start]} bits; only 8 is supported.`,
    );
  }
  const height = (bytes[start + 1] << 8) | bytes[start + 2];
  const width = (bytes[start + 3] << 8) | bytes[start + 4];
  if (width === 0 || height === 0) {
    throw new EdgevitError("invalid_image", `The JPEG declares an empty frame (${width}x${height}).`);
  }
  if (components !== 1 && components !== 3 && components !== 4) {
    throw new EdgevitError("invalid_image", `Unsupported JPEG with ${components} color components.`);
  }
  const ids: number[] = [];
  const sampling: { h: number; v: number }[] = [];
  for (let i = 0; i < components; i++) {
    ids.push(bytes[start + 6 + 3 * i]);
    const hv = bytes[start + 7 + 3 * i];
    sampling.push({ h: hv >> 4, v: hv & 15 });
  }
  return { width, height, ids, sampling, progressive: marker === 0xc2 };
}

// tiff: the TIFF structure inside the Exif block. Returns the Orientation tag (0x0112) of IFD0, 0 if
// absent or malformed; values outside 1..8 mean no transform, as in exif_transpose.
export function readExifOrientation(tiff: Uint8Array): number {
  if (tiff.length < 8) return 0;
  const little = tiff[0] === 0x49 && tiff[1] === 0x49;
  if (!little && !(tiff[0] === 0x4d && tiff[1] === 0x4d)) return 0;
  const u16 = (o: number) => (little ? tiff[o] | (tiff[o + 1] << 8) : (tiff[o] << 8) | tiff[o + 1]);
  const u32 = (o: number) => (little ? u16(o) + u16(o + 2) * 65536 : u16(o) * 65536 + u16(o + 2));
  const ifd = u32(4);
  if (ifd + 2 > tiff.length) return 0;
  const count = u16(ifd);
  for (let i = 0; i < count; i++) {
    const entry = ifd + 2 + 12 * i;
    if (entry + 12 > tiff.length) return 0;
    if (u16(entry) !== 0x0112) continue;
    const type = u16(entry + 2);
    const value = type === 3 ? u16(entry + 8) : type === 4 ? u32(entry + 8) : 0;
    return value >= 1 && value <= 8 ? value : 0;
  }
  return 0;
}

// Decodes to RGB with the EXIF orientation applied. Every failure is an EdgevitError:
// image_too_large for the limits, invalid_image for anything else.
export function decodeJpeg(bytes: Uint8Array, limits: DecodeLimits = DEFAULT_DECODE_LIMITS): RgbImage {
  const info = readJpegInfo(bytes);
  return applyOrientation(decodeJpegStored(bytes, limits, info), info.orientation);
}

// Decodes to RGB as stored, before the EXIF orientation.
export function decodeJpegStored(
  bytes: Uint8Array,
  limits: DecodeLimits = DEFAULT_DECODE_LIMITS,
  info: JpegInfo = readJpegInfo(bytes),
): RgbImage {
  const pixels = info.width * info.height;
  if (pixels > limits.maxPixels) {
    throw new EdgevitError(
      "image_too_large",
      `The image is ${info.width}x${info.height} (${(pixels / 1e6).toFixed(1)} MP); the limit is ${(limits.maxPixels / 1e6).toFixed(1)} MP.`,
    );
  }
  let decoded: { width: number; height: number; data: Uint8Array };
  try {
    // tolerantDecoding off: a truncated scan must fail, not come back as a partly gray picture.
    // formatAsRGBA off: jpeg-js then writes 3 bytes per pixel, replicating gray and converting CMYK.
    // colorTransform off: YCbCr comes back as decoded so that ycbcrToRgb rounds as libjpeg does.
    decoded = jpegJsDecode(bytes, {
      useTArray: true,
      formatAsRGBA: false,
      colorTransform: false,
      tolerantDecoding: false,
      maxResolutionInMP: limits.maxPixels / 1e6,
      maxMemoryUsageInMB: limits.maxMemoryMB,
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
    if (cb.h === 1 && cb.v === 1 && cr.h === 1 && cr.v === 1 && luma.h <= 2 && luma.v <= 2) {
      fancyUpsampleChroma(decoded.data, decoded.width, decoded.height, luma.h, luma.v);
    }
    ycbcrToRgb(decoded.data);
  }
  return { width: decoded.width, height: decoded.height, data: decoded.data };
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
