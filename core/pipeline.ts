// One upload through one model: bytes -> decoded -> preprocessed -> forward -> outputs. The Worker, the
// RPC entrypoint, the queue consumer and the CLI all call this, so they accept and refuse the same files.
import type { Model, RunOptions, RunResult } from "./engine.ts";
import { EdgevitError } from "./errors.ts";
import { decodeJpeg, readJpegInfo, type DecodeLimits } from "./image/jpeg.ts";
import { preprocess } from "./image/preprocess.ts";

export interface ImageLimits {
  maxPixels: number; // width * height above this is image_too_large, read from the file's header
}

export interface ImageInfo {
  width: number; // as stored, before the EXIF orientation
  height: number;
}

export interface Inference {
  image: { width: number; height: number }; // as decoded, after the EXIF orientation
  result: RunResult;
}

// Bytes per pixel jpeg-js accounts for at worst (4:4:4 and progressive files: coefficients, planes and
// output together, measured ~22): its own guard, on top of the pixel limit.
const DECODE_BYTES_PER_PIXEL = 24;

function decodeLimits(limits: ImageLimits): DecodeLimits {
  return {
    maxPixels: limits.maxPixels,
    maxMemoryMB: Math.ceil((limits.maxPixels * DECODE_BYTES_PER_PIXEL) / (1 << 20)),
  };
}

// Reads the image's header only: refuses a file that is not an image or is over the pixel limit before
// a model is loaded or any pixel memory is spent.
export function inspectImage(bytes: Uint8Array, limits: ImageLimits): ImageInfo {
  const info = readJpegInfo(bytes);
  if (info.width * info.height > limits.maxPixels) {
    throw new EdgevitError(
      "image_too_large",
      `the image is ${info.width}x${info.height}; the limit is ${limits.maxPixels} pixels`,
    );
  }
  return { width: info.width, height: info.height };
}

// Milliseconds each phase took by `performance.now()`. Real in Node; in workerd the clock does not move
// while code runs, so there all three read 0.
export interface PhaseTimings {
  decode?: number;
  preprocess?: number;
  forward?: number;
}

// Decodes, preprocesses as the model's image processor does, and runs the forward pass, all in one
// synchronous stretch so that no caller holds decoded pixels across an await. `capture` is the layer
// whose output to keep (-1 none), or the engine's capture options (hidden states, attention, pixels).
export function runImage(
  model: Model,
  bytes: Uint8Array,
  limits: ImageLimits,
  capture: number | RunOptions = -1,
  timings: PhaseTimings = {},
): Inference {
  inspectImage(bytes, limits);
  const t0 = performance.now();
  const image = decodeJpeg(bytes, decodeLimits(limits));
  const t1 = performance.now();
  preprocess(image, model.header.preprocessing, model.input());
  const t2 = performance.now();
  const result = model.run(typeof capture === "number" ? { capture } : capture);
  const t3 = performance.now();
  Object.assign(timings, { decode: t1 - t0, preprocess: t2 - t1, forward: t3 - t2 });
  return { image: { width: image.width, height: image.height }, result };
}
