// An upload's format, told from its first bytes (never from a Content-Type), and the decoder for it.
// JPEG and PNG are accepted; every other image format a browser or a phone produces is named in a 415.

import { EdgevitError } from "../errors.ts";
import type { Limits } from "../limits.ts";
import { openJpegFallback } from "./jpeg/fallback.ts";
import { openJpeg } from "./jpeg/index.ts";
import { openPng } from "./png/index.ts";
import type { ImageDecoder } from "./source.ts";

// A progressive JPEG keeps its coefficients until its last scan; at most this much of them (the streaming
// decoder keeps only those the chosen DCT scale reads, so decode=fast fits large photos far below it).
const MAX_COEFFICIENT_BYTES = 48 * 1024 * 1024;

// The jpeg-js fallback (./jpeg/fallback.ts) decodes the Huffman JPEGs the streaming decoder declines
// (progressive files that libjpeg would smooth; arithmetic, lossless and hierarchical ones it refuses as
// invalid_image, as jpeg-js reads none of them) by holding the whole picture and its coefficients, ~24
// bytes per pixel: only up to this size, which keeps it beside a ViT-B/16 in a 128 MB isolate.
const FALLBACK_MAX_PIXELS = 1 << 20;

const declined = (error: unknown): error is EdgevitError =>
  error instanceof EdgevitError && error.code === "unsupported_media_type";

function fallback(bytes: Uint8Array, limits: Limits, why: EdgevitError): ImageDecoder {
  const decoder = openJpegFallback(bytes, limits);
  const { width, height } = decoder.header;
  if (width * height > FALLBACK_MAX_PIXELS) {
    throw new EdgevitError(
      "image_too_large",
      `${why.message} Such JPEGs are accepted up to ${FALLBACK_MAX_PIXELS} pixels; this one is ${width}x${height}.`,
    );
  }
  return decoder;
}

// The streaming decoder (bit-exact with Pillow, DCT scaling), with jpeg-js behind it for what it declines:
// at open, or at decode when no row has been pushed yet and the scale is one jpeg-js has.
function openAnyJpeg(bytes: Uint8Array, limits: Limits): ImageDecoder {
  let primary: ImageDecoder;
  try {
    primary = openJpeg(bytes, { ...limits, maxCoefficientBytes: MAX_COEFFICIENT_BYTES });
  } catch (error) {
    if (declined(error)) return fallback(bytes, limits, error);
    throw error;
  }
  return {
    header: primary.header,
    decode(scale, sink) {
      let pushed = false;
      try {
        return primary.decode(scale, (rows, first, count) => {
          pushed = true;
          sink(rows, first, count);
        });
      } catch (error) {
        if (!declined(error) || pushed) throw error;
        if (scale !== 1) {
          throw new EdgevitError("unsupported_media_type", `${error.message} Send it with decode=exact.`);
        }
        return fallback(bytes, limits, error).decode(1, sink);
      }
    },
  };
}

function ascii(b: Uint8Array, from: number, to: number): string {
  return String.fromCharCode(...b.subarray(from, Math.min(to, b.length)));
}

// HEIF brands (ISO/IEC 23008-12) and AVIF's, as the `ftyp` box at byte 4 names them.
const HEIF_BRANDS = new Set(["heic", "heix", "hevc", "hevx", "heim", "heis", "mif1", "msf1"]);
const AVIF_BRANDS = new Set(["avif", "avis"]);

// "jpeg", "png", the name of another image format, or null for bytes that are no image we know.
export function sniffFormat(b: Uint8Array): "jpeg" | "png" | string | null {
  if (b[0] === 0xff && b[1] === 0xd8) return "jpeg";
  if (b[0] === 0x89 && ascii(b, 1, 4) === "PNG") return "png";
  if (ascii(b, 0, 4) === "GIF8") return "GIF";
  if (ascii(b, 0, 4) === "RIFF" && ascii(b, 8, 12) === "WEBP") return "WebP";
  if (ascii(b, 4, 8) === "ftyp") {
    const brand = ascii(b, 8, 12);
    if (AVIF_BRANDS.has(brand)) return "AVIF";
    if (HEIF_BRANDS.has(brand)) return "HEIC";
  }
  if (ascii(b, 0, 2) === "BM") return "BMP";
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

// Opens the upload's header (see ./source.ts): invalid_image, image_too_large or unsupported_media_type.
export function openImage(bytes: Uint8Array, limits: Limits): ImageDecoder {
  if (bytes.length === 0) {
    throw new EdgevitError("invalid_image", "The image is empty; edgevit accepts JPEG and PNG.");
  }
  const format = sniffFormat(bytes);
  if (format === "jpeg") return openAnyJpeg(bytes, limits);
  if (format === "png") return openPng(bytes, limits);
  if (format !== null) {
    const what = format === "PDF" ? "a PDF document" : `${/^[AEIOS]/.test(format) ? "an" : "a"} ${format} image`;
    throw new EdgevitError("unsupported_media_type", `This is ${what}; edgevit accepts JPEG and PNG.`);
  }
  throw new EdgevitError("invalid_image", "The file is not a JPEG or PNG image (its first bytes are neither).");
}
