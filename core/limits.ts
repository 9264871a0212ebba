// The upload limits, the same for the Worker (wrangler.toml's [vars] repeat these numbers, and a test
// holds them equal) and the CLI. docs/MEMORY.md measures that a ViT-B/16 plus an upload at these limits
// stays inside an isolate's 128 MB: images stream through the decoder and the preprocessor row by row.
import { EdgevitError } from "./errors.ts";

// 16 MiB of body: a 24 MP phone JPEG is 5-12 MB, a 24 MP PNG of a photo more.
export const DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024;
// 24 MiP (e.g. 6000x4000 = 24.0 MP, 6144x4096), checked from the file's header.
export const DEFAULT_MAX_IMAGE_PIXELS = 24 * 1024 * 1024;

// What an upload may cost. Only maxPixels is set by the hosts; the rest are the decoders' own bounds,
// each with its default where it is used, set by tests and benchmarks. A decoder takes the Pick of the
// fields it reads.
export interface Limits {
  maxPixels: number; // width * height above this is image_too_large, read from the file's header
  // A streamed upload: its length (payload_too_large past it, default DEFAULT_MAX_BODY_BYTES) and the most
  // of it held at once (core/image/bytes.ts, default 1 MiB).
  maxBodyBytes?: number;
  maxWindowBytes?: number;
  // PNG: interlaced images are assembled whole (3 bytes per pixel) before any row is final.
  maxInterlacedPixels?: number;
  // JPEG: scans per file; libjpeg-turbo's tools suggest a cap of this kind for untrusted input.
  maxScans?: number;
  // JPEG: coefficient visits allowed for a progressive file: at most this many passes over (blocks * 64),
  // and at most a few passes plus maxVisitsPerByte per byte of the file. A typical progression (cjpeg's,
  // Pillow's) visits each coefficient about 3 times; the per-byte term keeps a small file that declares a
  // large image and many refinement scans from costing seconds.
  maxCoefficientPasses?: number;
  maxVisitsPerByte?: number;
  // JPEG: bytes of coefficients a progressive or multi-scan file may hold until its last scan; above it,
  // decoding at that scale is image_too_large. Sequential single-scan files stream and hold none.
  maxCoefficientBytes?: number;
  // jpeg-js (core/image/jpeg/fallback.ts decodeJpeg, the whole-image reference the tests and benchmarks
  // compare against): its own accounting of its buffers (coefficients, planes, output), in MB.
  maxJpegJsMemoryMB?: number;
}

export const DEFAULT_LIMITS: Limits = { maxPixels: DEFAULT_MAX_IMAGE_PIXELS };

const mp = (pixels: number) => (pixels / 1e6).toFixed(1);

// image_too_large when width x height (from the header) is over maxPixels: one sentence for every decoder.
export function checkPixels(width: number, height: number, maxPixels: number): void {
  const pixels = width * height;
  if (pixels > maxPixels) {
    throw new EdgevitError(
      "image_too_large",
      `The image is ${width}x${height} (${mp(pixels)} MP); the limit is ${mp(maxPixels)} MP.`,
    );
  }
}
