// One upload through one model: bytes -> decoder -> streamed preprocessing -> forward -> outputs. The
// Worker, the RPC entrypoint, the queue consumer and the CLI all call this, so they accept and refuse the
// same files under the same limits.
import { imageTokens as imageTokenCount, type ImageSplitting, type Preprocessing, towerOf } from "./bundle/format.ts";
import type { Model, RunOptions, RunOutput, RunResult } from "./engine/model.ts";
import { ByteSource, yieldToOthers } from "./image/bytes.ts";
import { type ImageInput, openImage, openImageBytes } from "./image/open.ts";
import type { DecodedSize, ImageDecoder, ImageHeader, RgbImage } from "./image/source.ts";
import { chooseScale, type DecodeMode, DEFAULT_DECODE_MODE, StreamingPreprocessor } from "./preprocess/stream.ts";
import type { Limits } from "./limits.ts";
import { longestEdgeSize, type TileGrid, Tiles, tileGrid } from "./preprocess/tiles.ts";

export type { DecodeMode };

// What an upload was: the picture as stored and how it was decoded.
export interface DecodedImage {
  format: ImageHeader["format"];
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
// Whole bytes open at once; a stream opens once its header has arrived, and the rest is read as it decodes.
export function inspectImage(bytes: Uint8Array, limits: Limits): ImageDecoder;
export function inspectImage(stream: ReadableStream<Uint8Array> | ByteSource, limits: Limits): Promise<ImageDecoder>;
export function inspectImage(image: ImageInput, limits: Limits): ImageDecoder | Promise<ImageDecoder> {
  return image instanceof Uint8Array ? openImageBytes(image, limits) : openImage(image, limits);
}

const isInput = (image: ImageInput | ImageDecoder): image is ImageInput =>
  image instanceof Uint8Array || image instanceof ReadableStream || image instanceof ByteSource;

// An upload decoded and resized as its rows arrived, waiting for its last, synchronous step: the vertical
// pass, crop and normalization written into pixel_values by `finish`. Decoding awaits (a streamed body's
// bytes, PNG's inflater, a yield after each slice of work); what a request holds across those awaits is the
// decoder's buffers and window (decoder.memoryBytes) and the preprocessor's intermediate
// (StreamingPreprocessor.memoryBytes), never the picture.
interface Decoded {
  image: DecodedImage;
  decodeMs: number;
  finish(out: Float32Array): void;
  resized(): RgbImage; // instead of finish: the resized picture, before crop and normalization
}

async function decodeRows(
  pp: Preprocessing,
  image: ImageInput | ImageDecoder,
  limits: Limits,
  mode: DecodeMode,
  chosen?: number,
): Promise<Decoded> {
  const decoder = isInput(image) ? await openImage(image, limits) : image;
  const { header } = decoder;
  const scale = chosen ?? chooseScale(header, pp, mode);
  if (!header.scales.includes(scale)) throw new RangeError(`the decoder offers no scale ${scale}`);
  const decoded = { width: Math.ceil(header.width / scale), height: Math.ceil(header.height / scale) };
  const stream = new StreamingPreprocessor(pp, decoded, header.orientation);
  const t0 = performance.now();
  const size: DecodedSize = await decoder.decode(scale, stream.sink);
  const decodeMs = performance.now() - t0;
  if (size.width !== decoded.width || size.height !== decoded.height) {
    throw new RangeError(
      `the decoder made ${size.width}x${size.height} at 1/${scale}, not ${decoded.width}x${decoded.height}`,
    );
  }
  const swap = header.orientation >= 5 && header.orientation <= 8;
  return {
    image: {
      format: header.format,
      width: swap ? header.height : header.width,
      height: swap ? header.width : header.height,
      decode: { mode, scale },
    },
    decodeMs,
    finish: (out) => stream.finish(out),
    resized: () => stream.finishImage(),
  };
}

export interface Preprocessed {
  image: DecodedImage;
  timings: Timings; // decode, preprocess
}

// Decodes (at the scale `mode` allows) and preprocesses as the model's image processor does into the model's
// input. Only for a caller that runs nothing else on the model: runImage writes the input and runs the
// forward pass in one synchronous stretch, so requests sharing a model never see each other's pixels.
export async function preprocessImage(
  model: Model,
  image: ImageInput | ImageDecoder,
  limits: Limits,
  mode: DecodeMode = DEFAULT_DECODE_MODE,
): Promise<Preprocessed> {
  return preprocessInto(model.header.preprocessing, image, limits, () => model.input(), mode);
}

// The same into any pixel_values buffer (a benchmark's, a test's): `out` is asked for only at the end, so a
// view on wasm memory is made after every await.
export async function preprocessInto(
  pp: Preprocessing,
  image: ImageInput | ImageDecoder,
  limits: Limits,
  out: () => Float32Array,
  mode: DecodeMode = DEFAULT_DECODE_MODE,
): Promise<Preprocessed> {
  const decoded = await decodeRows(pp, image, limits, mode);
  const t0 = performance.now();
  decoded.finish(out());
  return { image: decoded.image, timings: { decode: decoded.decodeMs, preprocess: performance.now() - t0 } };
}

export interface RunImageOptions<T> {
  capture?: Capture;
  decode?: DecodeMode;
  // The decoder's scale when the host chose it (one of the header's scales; default: chooseScale's for
  // `decode`), e.g. a coarser one whose memory fits where decode=fast's does not.
  scale?: number;
  outputs?: readonly RunOutput[]; // the outputs to copy out of wasm memory (default: all; RunOptions.outputs)
  // Makes what the caller keeps from the captures while they are views into wasm memory, valid only until
  // the model's next run (the engine's RunOptions.read): pictures made in place instead of from a copy of
  // every hidden state. Its value comes back as Inference.kept.
  keep?: (captures: RunResult) => T;
}

// Decodes and resizes as rows arrive, then writes pixel_values and runs the forward pass in one synchronous
// stretch: no other request can write the shared input between the two.
export async function runImage<T = undefined>(
  model: Model,
  image: ImageInput | ImageDecoder,
  limits: Limits,
  options: RunImageOptions<T> = {},
): Promise<Inference<T>> {
  const { capture = -1, decode = DEFAULT_DECODE_MODE, keep, scale, outputs } = options;
  const decoded = await decodeRows(model.header.preprocessing, image, limits, decode, scale);
  // From here to the end, no await.
  const t0 = performance.now();
  decoded.finish(model.input());
  const t1 = performance.now();
  const runOptions: RunOptions = typeof capture === "number" ? { capture } : { ...capture };
  if (outputs) runOptions.outputs = outputs;
  // The engine's read returns nothing: its value is caught here, synchronously, inside model.run.
  let kept: T | undefined;
  if (keep) runOptions.read = (captures) => (kept = keep(captures));
  const result = model.run(runOptions);
  const timings = { decode: decoded.decodeMs, preprocess: t1 - t0, forward: performance.now() - t1 };
  return { image: decoded.image, result, kept: kept as T, timings };
}

// The image after the EXIF orientation, at full size.
function orientedSize(header: ImageHeader): { width: number; height: number } {
  const swap = header.orientation >= 5 && header.orientation <= 8;
  return swap ? { width: header.height, height: header.width } : { width: header.width, height: header.height };
}

// Idefics3's first step (tiles.ts) as the streamed resize: to the longest-edge size of the full-size image.
export function longestEdgeStep(pp: Preprocessing & { splitting: ImageSplitting }, header: ImageHeader): Preprocessing {
  const size = longestEdgeSize(orientedSize(header), pp.splitting.longestEdge);
  return { ...pp, size, doCenterCrop: false, cropSize: null, splitting: undefined };
}

// What a VLM's connector made of one image: the rows its LLM receives in place of the image tokens, one
// block per frame (Idefics3: the tiles row by row, then the global view; otherwise the one image).
export interface ImageTokens {
  image: DecodedImage;
  grid: TileGrid; // rows and cols of the tiles (0 and 0 for one frame), frames
  tokens: number; // rows per frame
  lmDim: number;
  data: Float32Array; // [frames][tokens][lmDim]
  timings: Timings; // decode, preprocess, forward (every frame's, each with writing its pixel_values)
}

// An image as a VLM's processor makes its frames: decoded and resized as rows arrive (Idefics3: by the
// longest edge, then split into tiles in tiles.ts; otherwise the model's one input), each frame's
// pixel_values written by `write` in order (0 to frames - 1, each once: tiles.ts makes a row of tiles only
// when its first tile is asked for and lets it go for the next).
export interface Frames {
  image: DecodedImage;
  grid: TileGrid; // rows and cols of the tiles (0 and 0 for one frame), frames
  write(i: number, out: Float32Array): void;
  timings: Timings; // decode, preprocess
}

export async function preprocessFrames(
  pp: Preprocessing,
  image: ImageInput | ImageDecoder,
  limits: Limits,
  options: { split?: boolean; decode?: DecodeMode } = {},
): Promise<Frames> {
  const { split = true, decode = DEFAULT_DECODE_MODE } = options;
  const decoder = isInput(image) ? await openImage(image, limits) : image;
  const splitting = pp.splitting;
  if (!splitting) {
    const decoded = await decodeRows(pp, decoder, limits, decode);
    const grid = { rows: 0, cols: 0, frames: 1 };
    return {
      image: decoded.image,
      grid,
      write: (_i, out) => decoded.finish(out),
      timings: { decode: decoded.decodeMs },
    };
  }
  const decoded = await decodeRows(longestEdgeStep({ ...pp, splitting }, decoder.header), decoder, limits, decode);
  const t0 = performance.now();
  const picture = decoded.resized();
  const timings = { decode: decoded.decodeMs, preprocess: performance.now() - t0 };
  // The tiles' band and global view are made when the first frame is asked for, once the decoder and the
  // streamed resize are gone: a host reserves their memory for the frames, not beside the decode.
  let tiles: Tiles | undefined;
  const write = (i: number, out: Float32Array) => {
    tiles ??= new Tiles(picture, { ...pp, splitting }, split);
    tiles.write(i, out);
  };
  return { image: decoded.image, grid: tileGrid(picture, splitting, split), write, timings };
}

// An upload's image tokens one frame at a time: its frames (preprocessFrames), then, as `run(i)` asks, one
// forward pass per frame, the frame written into the model's input and run in one synchronous stretch
// (requests sharing the model never see each other's pixels). A host that streams its answer holds one
// frame's rows at a time. `split: false` makes the global view alone.
export interface TokenFrames {
  image: DecodedImage;
  grid: TileGrid; // rows and cols of the tiles (0 and 0 for one frame), frames
  tokens: number; // rows per frame
  lmDim: number;
  run(i: number): Float32Array; // frame i's rows, [tokens][lmDim], in order (0 to frames - 1, each once)
  timings: Timings; // decode, preprocess; forward adds up as frames run
}

export async function imageTokenFrames(
  model: Model,
  image: ImageInput | ImageDecoder,
  limits: Limits,
  options: { split?: boolean; decode?: DecodeMode } = {},
): Promise<TokenFrames> {
  const { config, preprocessing } = model.header;
  const tokens = imageTokenCount(config);
  if (tokens === 0) throw new RangeError(`model ${model.header.name} has no connector`);
  const lmDim = towerOf(config).lmDim;
  const frames = await preprocessFrames(preprocessing, image, limits, options);
  const timings: Timings = { ...frames.timings, forward: 0 };
  const run = (i: number): Float32Array => {
    const t1 = performance.now();
    frames.write(i, model.input());
    const rows = model.run({ outputs: ["imageTokens"] }).imageTokens!;
    timings.forward = (timings.forward ?? 0) + performance.now() - t1;
    return rows;
  };
  return { image: frames.image, grid: frames.grid, tokens, lmDim, run, timings };
}

// An upload through a model with a connector: every frame's rows (imageTokenFrames), yielding to other
// requests between frames.
export async function runImageTokens(
  model: Model,
  image: ImageInput | ImageDecoder,
  limits: Limits,
  options: { split?: boolean; decode?: DecodeMode } = {},
): Promise<ImageTokens> {
  const frames = await imageTokenFrames(model, image, limits, options);
  const { grid, tokens, lmDim } = frames;
  return { image: frames.image, grid, tokens, lmDim, data: await runFrames(frames), timings: frames.timings };
}

// Every frame's rows, [frames][tokens][lmDim], yielding to other requests between frames.
export async function runFrames(frames: TokenFrames): Promise<Float32Array> {
  const { grid, tokens, lmDim } = frames;
  const data = new Float32Array(grid.frames * tokens * lmDim);
  for (let i = 0; i < grid.frames; i++) {
    if (i > 0) await yieldToOthers();
    data.set(frames.run(i), i * tokens * lmDim);
  }
  return data;
}
