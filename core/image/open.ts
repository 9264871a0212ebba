// An upload's format, told from its first bytes (never from a Content-Type), and the decoder for it.
// JPEG, PNG, WebP, GIF and BMP are accepted (what Pillow 9.4, and so transformers' load_image, opens of
// what browsers and phones send); every other image format is named in a 415.

import { EdgevitError } from "../errors.ts";
import { DEFAULT_MAX_BODY_BYTES, type Limits } from "../limits.ts";
import { ByteSource } from "./bytes.ts";
import { type JpegDecoder, openJpeg } from "./jpeg/index.ts";
import { openBmp } from "./bmp/index.ts";
import { openGif } from "./gif/index.ts";
import { openPng } from "./png/index.ts";
import type { ImageDecoder, ImageHeader } from "./source.ts";
import { openWebp } from "./webp/index.ts";

const ACCEPTED = "edgevit accepts JPEG, PNG, WebP, GIF and BMP";

// A progressive JPEG keeps its coefficients until its last scan; at most this much of them (the streaming
// decoder keeps only those the chosen DCT scale reads, so decode=fast fits large photos far below it).
const MAX_COEFFICIENT_BYTES = 48 * 1024 * 1024;

// The streaming decoder (bit-exact with Pillow, DCT scaling). It declines nothing Pillow decodes (lossless
// and hierarchical JPEGs, which libjpeg-turbo 2.1 refuses, are invalid_image; progressive files that stop
// early are smoothed as libjpeg smooths them), so no other decoder stands behind it.
function openAnyJpegBytes(bytes: Uint8Array, limits: Limits): ImageDecoder {
  return closingSource(openJpeg(bytes, { ...limits, maxCoefficientBytes: MAX_COEFFICIENT_BYTES }));
}

// The same from a stream.
async function openAnyJpeg(src: ByteSource, limits: Limits): Promise<ImageDecoder> {
  return closingSource(await openJpeg(src, { ...limits, maxCoefficientBytes: MAX_COEFFICIENT_BYTES }));
}

// The streaming decoder leaves its source (a stream's reader) to the caller: closed once the decode ends.
function closingSource(primary: JpegDecoder): ImageDecoder {
  const src = primary.source;
  return {
    header: primary.header,
    async decode(scale, sink) {
      try {
        return await primary.decode(scale, sink);
      } finally {
        src.close();
      }
    },
    memoryBytes: (scale) => primary.memoryBytes(scale),
  };
}

function ascii(b: Uint8Array, from: number, to: number): string {
  return String.fromCharCode(...b.subarray(from, Math.min(to, b.length)));
}

// HEIF brands (ISO/IEC 23008-12) and AVIF's, as the `ftyp` box at byte 4 names them.
const HEIF_BRANDS = new Set(["heic", "heix", "hevc", "hevx", "heim", "heis", "mif1", "msf1"]);
const AVIF_BRANDS = new Set(["avif", "avis"]);

// An accepted format ("jpeg", "png", "webp", "gif", "bmp"), the name of another image format, or null for
// bytes that are no image we know. WebP, GIF and BMP are told as Pillow tells them (its plugins' _accept).
export function sniffFormat(b: Uint8Array): ImageDecoder["header"]["format"] | string | null {
  if (b[0] === 0xff && b[1] === 0xd8) return "jpeg";
  if (b[0] === 0x89 && ascii(b, 1, 4) === "PNG") return "png";
  if (ascii(b, 0, 4) === "GIF8") return "gif";
  if (ascii(b, 0, 4) === "RIFF" && ascii(b, 8, 12) === "WEBP") return "webp";
  if (ascii(b, 4, 8) === "ftyp") {
    const brand = ascii(b, 8, 12);
    if (AVIF_BRANDS.has(brand)) return "AVIF";
    if (HEIF_BRANDS.has(brand)) return "HEIC";
  }
  if (ascii(b, 0, 2) === "BM") return "bmp";
  if (ascii(b, 0, 4) === "II*\0" || ascii(b, 0, 4) === "MM\0*") return "TIFF";
  if ((b[0] === 0xff && b[1] === 0x0a) || ascii(b, 4, 12) === "JXL \r\n\x87\n") return "JPEG XL";
  if (ascii(b, 4, 12) === "jP  \r\n\x87\n" || (b[0] === 0xff && b[1] === 0x4f && b[2] === 0xff)) return "JPEG 2000";
  if (ascii(b, 0, 4) === "8BPS") return "Photoshop (PSD)";
  if (ascii(b, 0, 4) === "qoif") return "QOI";
  if (b[0] === 0 && b[1] === 0 && b[2] === 1 && b[3] === 0) return "ICO";
  if (ascii(b, 0, 5) === "%PDF-") return "PDF";
  if (/^\s*<(\?xml|svg)/.test(ascii(b, 0, 64))) return "SVG";
  return null;
}

export type ImageInput = Uint8Array | ReadableStream<Uint8Array> | ByteSource;

// What a stream is read under: Limits' body and window bounds.
function sourceOf(input: ImageInput, limits: Limits): ByteSource {
  if (input instanceof ByteSource) return input;
  if (input instanceof Uint8Array) return ByteSource.of(input);
  return ByteSource.from(input, {
    maxBytes: limits.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
    maxWindowBytes: limits.maxWindowBytes,
  });
}

// Opens the upload's header (see ./source.ts): invalid_image, image_too_large or unsupported_media_type.
// A stream is read as far as the header (for a JPEG, its first scan header; for a PNG, its first IDAT
// chunk), and no further until decode.
export async function openImage(input: ImageInput, limits: Limits): Promise<ImageDecoder> {
  const src = sourceOf(input, limits);
  try {
    // The sniffer reads at most 64 bytes.
    while (src.bytes.length < 64 && !src.ended) await src.more(0, 64 - src.bytes.length);
    if (src.whole) return openImageBytes(src.bytes, limits);
    const format = sniff(src.bytes);
    if (format === "jpeg") return await openAnyJpeg(src, limits);
    if (format === "png") return await openPng(src, limits);
    // The other decoders read their file whole (GIF's and WebP's data have no row boundaries a window could
    // follow, a BMP is stored bottom-up): the body is kept, bounded by the body limit, and counted.
    src.retainAll();
    return openWhole(format, await src.rest(), limits);
  } catch (error) {
    src.close();
    throw error;
  }
}

// The same for whole bytes, at once.
export function openImageBytes(bytes: Uint8Array, limits: Limits): ImageDecoder {
  const format = sniff(bytes);
  if (format === "jpeg") return openAnyJpegBytes(bytes, limits);
  if (format === "png") return openPng(bytes, limits);
  return openWhole(format, bytes, limits);
}

type Accepted = ImageHeader["format"];

function openWhole(format: Exclude<Accepted, "jpeg" | "png">, bytes: Uint8Array, limits: Limits): ImageDecoder {
  if (format === "webp") return openWebp(bytes, limits);
  return format === "gif" ? openGif(bytes, limits) : openBmp(bytes, limits);
}

// An accepted format, else the refusal: an empty file, another format named, or bytes that are no image.
function sniff(bytes: Uint8Array): Accepted {
  if (bytes.length === 0) {
    throw new EdgevitError("invalid_image", `The image is empty; ${ACCEPTED}.`);
  }
  const format = sniffFormat(bytes);
  if (format === "jpeg" || format === "png" || format === "webp" || format === "gif" || format === "bmp") {
    return format;
  }
  if (format !== null) {
    const what = format === "PDF" ? "a PDF document" : `${/^[AEIOS]/.test(format) ? "an" : "a"} ${format} image`;
    throw new EdgevitError("unsupported_media_type", `This is ${what}; ${ACCEPTED}.`);
  }
  throw new EdgevitError(
    "invalid_image",
    "The file is not a JPEG, PNG, WebP, GIF or BMP image (its first bytes are none of them).",
  );
}
