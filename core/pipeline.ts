// One upload through one model: bytes -> decoder -> streamed preprocessing -> forward -> outputs. The
// Worker, the RPC entrypoint, the queue consumer and the CLI all call this, so they accept and refuse the
// same files under the same limits.
import type { Preprocessing } from "./bundle/format.ts";
import type { Model, RunOptions, RunResult } from "./engine/model.ts";
import { openImage } from "./image/open.ts";
import type { ImageDecoder } from "./image/source.ts";
import { chooseScale, type DecodeMode, DEFAULT_DECODE_MODE, StreamingPreprocessor } from "./preprocess/stream.ts";
import type { Limits } from "./limits.ts";

export type { DecodeMode };

// What an upload was: the picture as stored and how it was decoded.
export interface DecodedImage {
  format: "jpeg" | "png";
  width: number; // as stored at full size, after the EXIF orientation
  height: number;
  decode: { mode: DecodeMode; scale: number }; // the decoder ran at 1/scale
}

// Milliseconds each phase of one upload took by `performance.now()`: reading the body and getting the model
// (measured by the host that does them), the decode (with the resize that runs as rows arrive), the rest of
// the preprocessing, the forward pass. Only phases that span I/O are measurable in workerd: its clock stands
// still while code runs, so there decode, preprocess and forward read 0.
export interface Timings {
  body?: number;
  model?: number;
  decode?: number;
  preprocess?: number;
  forward?: number;
}

// What one run keeps: the layer whose output to keep (-1 none), or the engine's capture options.
export type Capture = number | Omit<RunOptions, "read">;

export interface Inference<T = unknown> {
  image: DecodedImage;
  result: RunResult;
  kept: T; // what `keep` made of the captures (RunImageOptions)
  timings: Timings; // decode, preprocess, forward
}

// Reads the image's header only: refuses a file that is not an accepted image or is over the pixel limit
// before a model is loaded or any pixel memory is spent. The decoder it returns is what runImage takes.
export function inspectImage(bytes: Uint8Array, limits: Limits): ImageDecoder {
  return openImage(bytes, limits);
}

// Decodes (at the scale `mode` allows) and preprocesses as the model's image processor does while rows
// arrive, writing pixel_values into the model's input as the last, synchronous step: run the model right
// after, without an await in between, so requests sharing a model never see each other's pixels. Decoding
// may await (PNG's inflater is a stream); what a request holds across those awaits is the preprocessor's
// intermediate (max side x model width x 3 bytes), never the picture.
export async function preprocessImage(
  model: Model,
  image: Uint8Array | ImageDecoder,
  limits: Limits,
  mode: DecodeMode = DEFAULT_DECODE_MODE,
): Promise<Preprocessed> {
  return preprocessInto(model.header.preprocessing, image, limits, () => model.input(), mode);
}

export interface Preprocessed {
  image: DecodedImage;
  timings: Timings; // decode, preprocess
}

// The same into any pixel_values buffer (a benchmark's, a test's): `out` is asked for only at the end, so a
// view on wasm memory is made after every await.
export async function preprocessInto(
  pp: Preprocessing,
  image: Uint8Array | ImageDecoder,
  limits: Limits,
  out: () => Float32Array,
  mode: DecodeMode = DEFAULT_DECODE_MODE,
): Promise<Preprocessed> {
  const decoder = image instanceof Uint8Array ? inspectImage(image, limits) : image;
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
  const timings = { decode: t1 - t0, preprocess: performance.now() - t1 };
  const swap = header.orientation >= 5 && header.orientation <= 8;
  const info: DecodedImage = {
    format: header.format,
    width: swap ? header.height : header.width,
    height: swap ? header.width : header.height,
    decode: { mode, scale },
  };
  return { image: info, timings };
}

export interface RunImageOptions<T> {
  capture?: Capture;
  decode?: DecodeMode;
  // Makes what the caller keeps from the captures while they are views into wasm memory, valid only until
  // the model's next run (the engine's RunOptions.read): pictures made in place instead of from a copy of
  // every hidden state. Its value comes back as Inference.kept.
  keep?: (captures: RunResult) => T;
}

// preprocessImage, then the forward pass right after it, with no await in between.
export async function runImage<T = undefined>(
  model: Model,
  image: Uint8Array | ImageDecoder,
  limits: Limits,
  options: RunImageOptions<T> = {},
): Promise<Inference<T>> {
  const { capture = -1, decode = DEFAULT_DECODE_MODE, keep } = options;
  const preprocessed = await preprocessImage(model, image, limits, decode);
  const runOptions: RunOptions = typeof capture === "number" ? { capture } : { ...capture };
  // The engine's read returns nothing: its value is caught here, synchronously, inside model.run.
  let kept: T | undefined;
  if (keep) runOptions.read = (captures) => (kept = keep(captures));
  const t0 = performance.now();
  const result = model.run(runOptions);
  const timings = { ...preprocessed.timings, forward: performance.now() - t0 };
  return { image: preprocessed.image, result, kept: kept as T, timings };
}
