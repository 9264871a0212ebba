// One upload through one model: bytes -> decoder -> streamed preprocessing -> forward -> outputs. The
// Worker, the RPC entrypoint, the queue consumer and the CLI all call this, so they accept and refuse the
// same files under the same limits.
import type { Preprocessing } from "../models/bundle.ts";
import type { Model, RunOptions, RunResult } from "./engine.ts";
import { ByteSource } from "./image/bytes.ts";
import { type ImageInput, openImage, openImageBytes } from "./image/open.ts";
import type { ImageDecoder } from "./image/source.ts";
import type { Limits } from "./limits.ts";
import { chooseScale, type DecodeMode, DEFAULT_DECODE_MODE, StreamingPreprocessor } from "./preprocess/stream.ts";

export type { DecodeMode };

export interface Inference {
  image: {
    format: "jpeg" | "png";
    width: number; // as stored at full size, after the EXIF orientation
    height: number;
    decode: { mode: DecodeMode; scale: number }; // the decoder ran at 1/scale
  };
  result: RunResult;
}

// Reads the image's header only: refuses a file that is not an accepted image or is over the pixel limit
// before a model is loaded or any pixel memory is spent. The decoder it returns is what runImage takes.
// Whole bytes open at once; a stream opens once its header has arrived, and the rest is read as it decodes.
export function inspectImage(bytes: Uint8Array, limits: Limits): ImageDecoder;
export function inspectImage(stream: ReadableStream<Uint8Array> | ByteSource, limits: Limits): Promise<ImageDecoder>;
export function inspectImage(image: ImageInput, limits: Limits): ImageDecoder | Promise<ImageDecoder> {
  return image instanceof Uint8Array ? openImageBytes(image, limits) : openImage(image, limits);
}

const isInput = (image: ImageInput | ImageDecoder): image is ImageInput =>
  image instanceof Uint8Array || image instanceof ReadableStream || image instanceof ByteSource;

// Decodes (at the scale `mode` allows) and preprocesses as the model's image processor does while rows
// arrive, writing pixel_values into the model's input as the last, synchronous step: run the model right
// after, without an await in between, so requests sharing a model never see each other's pixels. Decoding
// awaits (a streamed body's bytes, PNG's inflater, a yield after each slice of work); what a request holds
// across those awaits is the decoder's buffers and window (decoder.memoryBytes) and the preprocessor's
// intermediate (StreamingPreprocessor.memoryBytes), never the picture.
export async function preprocessImage(
  model: Model,
  image: ImageInput | ImageDecoder,
  limits: Limits,
  mode: DecodeMode = DEFAULT_DECODE_MODE,
  timings: PhaseTimings = {},
): Promise<Inference["image"]> {
  return preprocessInto(model.header.preprocessing, image, limits, () => model.input(), mode, timings);
}

// The same into any pixel_values buffer (a benchmark's, a test's): `out` is asked for only at the end, so a
// view on wasm memory is made after every await.
export async function preprocessInto(
  pp: Preprocessing,
  image: ImageInput | ImageDecoder,
  limits: Limits,
  out: () => Float32Array,
  mode: DecodeMode = DEFAULT_DECODE_MODE,
  timings: PhaseTimings = {},
): Promise<Inference["image"]> {
  const decoder = isInput(image) ? await openImage(image, limits) : image;
  const { header } = decoder;
  const scale = chooseScale(header, pp, mode);
  const decoded = { width: Math.ceil(header.width / scale), height: Math.ceil(header.height / scale) };
  const stream = new StreamingPreprocessor(pp, decoded, header.orientation);
  const t0 = performance.now();
  const size = await decoder.decode(scale, stream.sink);
  const t1 = performance.now();
  if (size.width !== decoded.width || size.height !== decoded.height) {
    throw new RangeError(
      `the decoder made ${size.width}x${size.height} at 1/${scale}, not ${decoded.width}x${decoded.height}`,
    );
  }
  stream.finish(out());
  timings.decode = t1 - t0;
  timings.preprocess = performance.now() - t1;
  const swap = header.orientation >= 5 && header.orientation <= 8;
  return {
    format: header.format,
    width: swap ? header.height : header.width,
    height: swap ? header.width : header.height,
    decode: { mode, scale },
  };
}

// Milliseconds each phase took by `performance.now()`: decode (with the resize that runs as rows arrive),
// the rest of the preprocessing, the forward pass. Real in Node; in workerd the clock does not move while
// code runs, so there they read 0.
export interface PhaseTimings {
  decode?: number;
  preprocess?: number;
  forward?: number;
}

export interface RunImageOptions {
  capture?: number | RunOptions; // the layer whose output to keep (-1 none), or the engine's capture options
  decode?: DecodeMode;
  timings?: PhaseTimings; // filled in
}

// preprocessImage, then the forward pass right after it, with no await in between.
export async function runImage(
  model: Model,
  image: ImageInput | ImageDecoder,
  limits: Limits,
  options: RunImageOptions = {},
): Promise<Inference> {
  const { capture = -1, decode = DEFAULT_DECODE_MODE, timings = {} } = options;
  const info = await preprocessImage(model, image, limits, decode, timings);
  const t0 = performance.now();
  const result = model.run(typeof capture === "number" ? { capture } : capture);
  timings.forward = performance.now() - t0;
  return { image: info, result };
}
