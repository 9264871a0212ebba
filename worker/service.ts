// The API's operations without a transport: an image's bytes through a model, and the answers built from
// the outputs. The HTTP handlers (api.ts), the RPC entrypoint (rpc.ts) and the queue consumer (queue.ts)
// all call these, so they refuse the same inputs with the same codes and answer the same objects.

import { EdgevitError } from "../core/errors.ts";
import type { Limits } from "../core/limits.ts";
import {
  type Capture,
  type DecodeMode,
  inspectImage,
  imageTokenFrames,
  runFrames,
  runImage,
  type ImageTokens,
  type Inference as CoreInference,
  longestEdgeStep,
  type TokenFrames,
  type Timings,
} from "../core/pipeline.ts";
import type { Model, RunOutput, RunResult } from "../core/engine/model.ts";
import type { ImageDecoder } from "../core/image/source.ts";
import {
  imageTokens,
  patches as patchesOf,
  prefixTokens,
  tokens as tokensOf,
  towerOf,
  type BundleHeader,
  type ModelConfig,
} from "../core/bundle/format.ts";
import { type ByteReader, ByteSource } from "../core/image/bytes.ts";
import { pcaWorkBytes } from "../core/pictures/pca.ts";
import { longestEdgeSize, tileGrid } from "../core/preprocess/tiles.ts";
import type { StreamFailure } from "./input.ts";
import { chooseScale, DECODE_MODES, DEFAULT_DECODE_MODE } from "../core/preprocess/stream.ts";
import { modelName } from "../core/names.ts";
import { POOLS, poolEmbedding, poolsOf } from "../core/answers/pool.ts";
import { topPredictions } from "../core/answers/predictions.ts";
import { listBundles } from "./catalog.ts";
import { textTowers } from "./text-service.ts";
import {
  engineBuild,
  engineDot,
  getModel,
  isLoaded,
  type LoadedModel,
  loadedModels,
  refreshMs,
  reserveCapture,
} from "./models.ts";
import {
  type AnswerPlan,
  budgetBytes,
  type ImagePlan,
  ledgerOf,
  type NearestPlan,
  type RequestPlan,
  reservationBytes,
  type Ticket,
} from "./memory.ts";
import { sizeText } from "../core/sizes.ts";
import { checkNearestWork, embeddingsSectionOf, NEAREST_MAX, type NearestTokens, nearestTokens } from "./nearest.ts";
import { boolOption, choiceOption, intOption } from "./options.ts";
import type {
  AttentionsAnswer,
  ClassifyAnswer,
  ClassifyOptions,
  EmbedAnswer,
  EmbedOptions,
  HiddenStatesAnswer,
  ImageTokensAnswer,
  ImageTokensOptions,
  ModelsAnswer,
  NearestToken,
  Pool,
} from "./types.ts";

function limitsOf(env: Env): Limits {
  return { maxPixels: Number(env.MAX_IMAGE_PIXELS) };
}

// The model a request names, or the deployment's default.
export function modelOf(env: Env, raw: string | null | undefined): string {
  return modelName(raw ?? env.DEFAULT_MODEL);
}

// An image as prepare() takes it: its bytes as a source the decoder reads (whole bytes an RPC caller sent,
// or a stream read through a bounded window as the decoder asks), with the memory reservation it is read
// under (admit()).
export interface Upload {
  source: ByteSource;
  readerBytes: number; // what reading it holds beside the source (memory.ts: STREAM_CHUNK_BYTES, FORM_READER_BYTES)
  ticket: Ticket;
  started: number; // when reading it began (performance.now()): Server-Timing's `body` ends at its header
}

// Bytes a caller sent whole (RPC): held as they are.
export function wholeUpload(ticket: Ticket, bytes: Uint8Array): Upload {
  return { source: ByteSource.of(bytes), readerBytes: 0, ticket, started: performance.now() };
}

export interface StreamedOptions {
  limit: number; // MAX_BODY_BYTES: payload_too_large once more has arrived
  length?: number; // declared (Content-Length, an R2 object's size)
  failed?: StreamFailure; // what the stream's failure becomes (unset: the stream's own error)
  readerBytes: number;
  started?: number;
}

// A stream read by the decoder through its window. Should the source have to keep the whole file (a WebP,
// GIF or BMP, core/image/open.ts), the reservation grows with it before it does.
export function streamedUpload(
  ticket: Ticket,
  stream: ReadableStream<Uint8Array> | ByteReader,
  o: StreamedOptions,
): Upload {
  const reserve = (bytes: number) => {
    const body = bytes + o.readerBytes;
    return ticket.resize(Math.max(ticket.bytes, reservationBytes({ body })), bodyTooLarge(body));
  };
  const source = ByteSource.from(stream, { maxBytes: o.limit, length: o.length, failed: o.failed, reserve });
  return { source, readerBytes: o.readerBytes, ticket, started: o.started ?? performance.now() };
}

// An upload ready to run: its image's header read and checked, the model that will run it in hand. The
// handler checks its options against `model.header`, then passes the job to run().
export interface Prepared {
  name: string;
  version: string;
  // This model serves the whole request, even if a swap replaces it in the cache meanwhile.
  model: Model;
  entry: LoadedModel; // its cache entry, which capture buffers grow within the memory budget
  decoder: ImageDecoder; // the image, its header read; `decoder.header` has its size and format
  source: ByteSource; // what the decoder reads; let go when the run ends
  decode?: DecodeMode;
  timings: Timings; // body, model
  ticket: Ticket; // this request's memory reservation: run() grows it to what the run will hold
  readerBytes: number; // the body's reader beside the source, which the decoder's figure counts
  image: ImagePlan; // the decode scale chosen for this model, what the decoder holds at it
}

// Admission of an upload, before any of its body is read: `body` bytes (streamedBodyBytes, or whole bytes'
// length) reserved in the isolate's ledger (waiting its turn, or refused busy), with the room for loading
// `name` when it is not loaded. A body that could never fit beside the models is refused at once.
export function admit(env: Env, name: string, body: number): Promise<Ticket> {
  return ledgerOf(env).admit(reservationBytes({ body }), isLoaded(name) ? undefined : name, bodyTooLarge(body));
}

function bodyTooLarge(body: number): (room: number) => EdgevitError {
  return (room) =>
    new EdgevitError(
      "payload_too_large",
      `reading this upload needs ${sizeText(body)}, more memory than this server has for one upload beside its ` +
        `models (${sizeText(room)}); send a smaller image`,
    );
}

// The image's header is checked before the model is fetched, so a bad file never costs a model load.
export async function prepare(env: Env, name: string, upload: Upload, decode?: DecodeMode): Promise<Prepared> {
  const { ticket, source, readerBytes } = upload;
  const decoder = await inspectImage(source, limitsOf(env));
  const body = performance.now() - upload.started;
  try {
    // Until the model is in hand, the source (its window, or whole bytes) and its reader.
    await ticket.resize(reservationBytes({ body: source.memoryBytes + readerBytes }));
    const started = performance.now();
    const entry = await getModel(env, name);
    ticket.hold(entry.model);
    const timings = { body, model: performance.now() - started };
    const { header } = decoder;
    const scale = chooseScale(header, entry.model.header.preprocessing, decode ?? DEFAULT_DECODE_MODE);
    const image = { header, scale, decoderBytes: decoder.memoryBytes(scale) };
    const { version, model } = entry;
    return { name, version, model, entry, decoder, source, decode, timings, ticket, readerBytes, image };
  } catch (error) {
    source.close();
    throw error;
  }
}

export interface Inference<T = unknown> extends CoreInference<T> {
  name: string;
  version: string;
  model: Model;
}

// What to keep from the forward pass, already checked against the model (hiddenLayer, attentionLayer);
// `keep` makes the pictures from the captures in place (core/pipeline.ts's RunImageOptions); `answer` is
// what the caller builds from the outputs, reserved with the run.
export interface RunRequest<T> {
  capture?: Capture;
  keep?: (captures: RunResult) => T;
  answer?: AnswerPlan;
  // The outputs the answer reads (RunOptions.outputs): by default the scores for a classification, every
  // output otherwise.
  outputs?: readonly RunOutput[];
}

// Bytes of captures a run copies out of wasm memory (those `keep` reads in place are not copied), and the
// PCA's working memory when each hidden state is drawn as the pass makes it.
function captureCopies(job: Prepared, capture: Capture, kept: boolean): number {
  const c = job.model.header.config;
  const tokens = tokensOf(c);
  if (typeof capture === "number") return capture >= 0 ? tokens * c.dim * 4 : 0;
  let bytes = capture.hiddenState ? pcaWorkBytes(patchesOf(c), c.dim) : 0;
  if (kept) return bytes;
  const tower = towerOf(c);
  if (capture.attention && tower.classToken) bytes += (c.layers * c.heads * tokens + 2 * c.layers * tokens) * 4;
  if (capture.attention && tower.pooling === "map") bytes += tokens * 4;
  if (capture.attentionLayer !== undefined) bytes += c.heads * tokens * tokens * 4;
  if (capture.pixels) bytes += c.channels * c.imageSize * c.imageSize * 4;
  return bytes;
}

// Decode, preprocess and the forward pass of a prepared upload, once the request's reservation has grown to
// all the run and its answer will hold. Its timings are every phase's, prepare's included.
export async function run<T = undefined>(env: Env, job: Prepared, request: RunRequest<T> = {}): Promise<Inference<T>> {
  const { capture = -1, keep, answer = { kind: "classify" } } = request;
  const outputs = request.outputs ?? (answer.kind === "classify" ? (["logits"] as const) : undefined);
  const captureGrowth = typeof capture === "number" ? 0 : job.model.captureGrowth(capture);
  const planAt = (image: ImagePlan): RequestPlan => ({
    body: job.readerBytes,
    image,
    model: job.model.header,
    captureGrowth,
    captureCopies: captureCopies(job, capture, keep !== undefined),
    answer,
  });
  const image = fittingImage(job, (image) => reservationBytes(planAt(image)));
  const plan = planAt(image);
  let ran: CoreInference<T>;
  try {
    await job.ticket.resize(reservationBytes(plan), (room) => imageTooLarge(job, reservationBytes(plan), room));
    if (typeof capture !== "number") reserveCapture(env, job.entry, capture);
    const options = { capture, decode: job.decode, scale: image.scale, keep, outputs };
    ran = await runImage(job.model, job.decoder, limitsOf(env), options);
  } finally {
    job.source.close();
  }
  // The body, the decoder's and the preprocessor's memory are garbage now: the answer's part stays.
  await job.ticket.resize(reservationBytes({ body: 0, model: job.model.header, answer }));
  const { name, version, model } = job;
  return { name, version, model, ...ran, timings: { ...job.timings, ...ran.timings } };
}

// The most of the room beside the models (roomAlone) one decode=fast request plans for: half, so that one
// large progressive JPEG at its finer scale does not hold every other request off. Beside a ViT-B/16 (27 MiB
// of room) a 12 MP progressive JPEG at 1/4 would keep 25.7 MiB of coefficients and run alone, the requests
// waiting behind it holding their bodies until the ledger refused them busy; at 1/8 it keeps 10.3 MiB.
export const FAST_SHARE = 0.5;

// The image at the scale decode=fast chose or, when what decoding at it holds would take more than
// FAST_SHARE of the room beside the models (a large progressive JPEG keeps its coefficients), the finest
// coarser DCT scale that does; failing that, the finest that fits the room at all: an answer further from
// full decoding (its `image.decode.scale` says which) rather than a refusal or a queue. decode=exact keeps
// every pixel or is refused.
function fittingImage(job: Prepared, bytesAt: (image: ImagePlan) => number): ImagePlan {
  if ((job.decode ?? DEFAULT_DECODE_MODE) !== "fast") return job.image;
  const { header } = job.image;
  const coarser = [...header.scales]
    .filter((scale) => scale > job.image.scale)
    .sort((a, b) => a - b)
    .map((scale) => ({ header, scale, decoderBytes: job.decoder.memoryBytes(scale) }));
  return fastImage([job.image, ...coarser], bytesAt, job.ticket.roomAlone);
}

// Of `images`, finest first, the first whose bytes fit FAST_SHARE of `room`, else the first that fits
// `room`, else the finest (which the reservation then refuses as too large).
export function fastImage(images: ImagePlan[], bytesAt: (image: ImagePlan) => number, room: number): ImagePlan {
  return (
    images.find((image) => bytesAt(image) <= room * FAST_SHARE) ??
    images.find((image) => bytesAt(image) <= room) ??
    images[0]
  );
}

function imageTooLarge(job: Prepared, needs: number, room: number): EdgevitError {
  const { header, scale } = job.image;
  const decoded = scale > 1 ? ` at 1/${scale}` : "";
  return new EdgevitError(
    "image_too_large",
    `Decoding this ${header.width}x${header.height} ${header.format === "png" ? "PNG" : "JPEG"}${decoded} for model ` +
      `${job.name} needs ${sizeText(needs)}, more than this server has for one request beside its models ` +
      `(${sizeText(room)}); send a smaller image${header.format === "jpeg" && scale === 1 ? " or use decode=fast" : ""}.`,
  );
}

// A requested hidden state ("last" or 0..L: 0 the embeddings) checked against the model it is for.
export function hiddenLayer(raw: number | "last", config: ModelConfig, name: string): number {
  if (raw === "last") return config.layers;
  if (raw > config.layers)
    throw new EdgevitError("bad_parameter", `layer must be from 0 to ${config.layers} for model ${name}`);
  return raw;
}

// A model without a classifier (an image tower) cannot classify: said before its forward pass is run.
export function hasClassifier(config: ModelConfig): boolean {
  return config.classes > 0;
}

export function checkClassifier(config: ModelConfig, name: string): void {
  if (!hasClassifier(config)) {
    throw new EdgevitError(
      "bad_parameter",
      `model ${name} is a ${towerOf(config).family} image tower without a classifier: it answers /v1/embed ` +
        "(its image embedding), /v1/hidden_states and /v1/attentions, not /v1/classify",
    );
  }
}

export function classifyAnswer(inference: Inference, topK: number, withLogits: boolean): ClassifyAnswer {
  const { name, version, model, image, result } = inference;
  const predictions = topPredictions(result.logits, model.header.labels, topK);
  return {
    model: name,
    version,
    predictions,
    ...(withLogits ? { logits: Array.from(result.logits) } : {}),
    image,
  };
}

// x / |x|: unit length for cosine similarity in vector indexes; a zero vector stays zero.
function l2Normalize(v: Float32Array): Float32Array {
  let sum = 0;
  for (const x of v) sum += x * x;
  const norm = Math.sqrt(sum);
  return norm === 0 ? v : v.map((x) => x / norm);
}

// The pool a request names, or the model's family's default, checked against what the model answers.
export function poolFor(pool: Pool | undefined, config: ModelConfig, name: string): Pool {
  const pools = poolsOf(config);
  if (pool === undefined) return pools[0];
  if (!pools.includes(pool)) {
    throw new EdgevitError(
      "bad_parameter",
      `pool must be one of ${pools.join(", ")} for model ${name} (a ${towerOf(config).family} model), got "${pool}"`,
    );
  }
  return pool;
}

export function embedAnswer(inference: Inference, pool: Pool | undefined, normalize: boolean): EmbedAnswer {
  const { name, version, model, result } = inference;
  const config = model.header.config;
  const chosen = poolFor(pool, config, name);
  const pooled = poolEmbedding(result, config, chosen);
  const embedding = normalize ? l2Normalize(pooled) : pooled;
  return {
    model: name,
    version,
    family: towerOf(config).family,
    dim: embedding.length,
    pool: chosen,
    normalized: normalize,
    embedding: Array.from(embedding),
    image: inference.image,
  };
}

// Where the patches start in a model's tokens: the tokens before them (class, distillation, registers).
export function tokenLayout(config: ModelConfig): { class_token: boolean; prefix_tokens: number } {
  return { class_token: towerOf(config).classToken, prefix_tokens: prefixTokens(config) };
}

// A requested attention layer ("last" or 1..L) checked against the model it is for.
export function attentionLayer(raw: number | "last", config: ModelConfig, name: string): number {
  if (raw === "last") return config.layers;
  if (raw > config.layers)
    throw new EdgevitError("bad_parameter", `layer must be from 1 to ${config.layers} for model ${name}`);
  return raw;
}

// transformers' output_attentions[layer - 1][0] as nested arrays: [heads][tokens][tokens].
export function attentionsAnswer(inference: Inference, layer: number): AttentionsAnswer {
  const { name, version, model, result } = inference;
  const { heads } = model.header.config;
  const tokens = model.tokens;
  const p = result.attentions!; // [heads][tokens][tokens]
  const attentions = Array.from({ length: heads }, (_, h) =>
    Array.from({ length: tokens }, (_, t) =>
      Array.from(p.subarray((h * tokens + t) * tokens, (h * tokens + t + 1) * tokens)),
    ),
  );
  return { model: name, version, layer, heads, tokens, ...tokenLayout(model.header.config), attentions };
}

export function hiddenStatesAnswer(inference: Inference, layer: number): HiddenStatesAnswer {
  const { name, version, model, result } = inference;
  const { dim } = model.header.config;
  const states = result.captured!; // [tokens][dim]
  const tokens = states.length / dim;
  const rows: number[][] = [];
  for (let t = 0; t < tokens; t++) rows.push(Array.from(states.subarray(t * dim, (t + 1) * dim)));
  return { model: name, version, layer, tokens, dim, ...tokenLayout(model.header.config), hidden_states: rows };
}

export async function modelsAnswer(env: Env): Promise<ModelsAnswer> {
  const text = textTowers(env); // asked while the bucket is listed; it never rejects
  const bundles = await listBundles(env.MODELS);
  const loaded = loadedModels();
  return {
    default: env.DEFAULT_MODEL,
    engine: await engineBuild(),
    dot: await engineDot(),
    refreshSeconds: refreshMs(env) / 1000,
    models: bundles.map((b) => ({ ...b, loaded: loaded.models.some((m) => m.name === b.name) })),
    loaded: loaded.models,
    memory: { usedBytes: loaded.usedBytes, budgetBytes: budgetBytes(env), isolate: ledgerOf(env).state() },
    text: await text,
  };
}

export function modelOption(env: Env, value: unknown): string {
  if (value !== undefined && typeof value !== "string") {
    throw new EdgevitError(
      "bad_parameter",
      `model must be a model name, got ${JSON.stringify(value) ?? String(value)}`,
    );
  }
  return modelOf(env, value);
}

export function decodeOption(options: { decode?: unknown } = {}): DecodeMode {
  return choiceOption("decode", options.decode ?? DEFAULT_DECODE_MODE, DECODE_MODES);
}

export { POOLS };

export function classifyOptions(options: ClassifyOptions = {}): { topK: number; logits: boolean } {
  return { topK: intOption("topK", options.topK, 5, 1), logits: boolOption("logits", options.logits) };
}

// `pool` stays undefined when absent: the model's family's default, known once the model is (poolFor).
export function embedOptions(options: EmbedOptions = {}): { pool: Pool | undefined; normalize: boolean } {
  const pool = options.pool === undefined ? undefined : choiceOption("pool", options.pool, POOLS);
  return { pool, normalize: boolOption("normalize", options.normalize) };
}

// /v1/image_tokens needs a connector after the tower: said before the forward pass is run.
export function checkConnector(config: ModelConfig, name: string): void {
  if (imageTokens(config) === 0) {
    throw new EdgevitError(
      "bad_parameter",
      `model ${name} is a ${towerOf(config).family} model without a connector to a language model: it makes no ` +
        "image tokens (convert a vision-language checkpoint, Idefics3 / SmolVLM or LLaVA, for /v1/image_tokens)",
    );
  }
}

export function imageTokensOptions(options: ImageTokensOptions = {}): { split: boolean; nearest?: number } {
  const split = boolOption("split", options.split, true);
  if (options.nearest === undefined) return { split };
  return { split, nearest: intOption("nearest", options.nearest, 0, 1, NEAREST_MAX) };
}

// The frames an image makes for a model: Idefics3's tiles and global view (or the global view alone), else one.
function framesOf(header: BundleHeader, job: Prepared, split: boolean): number {
  const s = header.preprocessing.splitting;
  if (!s) return 1;
  const { width, height, orientation } = job.decoder.header;
  const swap = orientation >= 5 && orientation <= 8;
  const oriented = swap ? { width: height, height: width } : { width, height };
  return tileGrid(longestEdgeSize(oriented, s.longestEdge), s, split).frames;
}

export interface TokensInference extends ImageTokens {
  name: string;
  version: string;
  model: Model;
  nearest?: NearestTokens; // with nearest=k: each image token's nearest rows of the LLM's embedding table
}

// An upload's frames ready to run one at a time (core/pipeline.ts's TokenFrames), for an answer streamed as
// they run: the request's reservation is the frames' phase until the answer has been sent.
export interface TokensStream extends TokenFrames {
  name: string;
  version: string;
  model: Model;
}

// The decode and the processor's frames of a prepared upload, in the reservation's phases (memory.ts,
// imageTokensPhases): grown to the decode's, then, the decoder and the body let go, resized to the frames'
// (and a collected answer's, which follows them). A request whose largest phase could never fit is refused
// before its image is decoded; one that must wait to grow at the boundary waits its turn like any other,
// and may be refused busy or too large with the same errors.
async function tokenFrames(
  env: Env,
  job: Prepared,
  split: boolean,
  answer: Extract<AnswerPlan, { kind: "image_tokens" }>,
): Promise<TokenFrames> {
  const { header } = job.model;
  const decode = job.decode ?? DEFAULT_DECODE_MODE;
  // the decode scale and the decoder's memory for the first step the frames stream through
  const pp = header.preprocessing.splitting
    ? longestEdgeStep({ ...header.preprocessing, splitting: header.preprocessing.splitting }, job.decoder.header)
    : header.preprocessing;
  const scale = chooseScale(job.decoder.header, pp, decode);
  const image = { header: job.decoder.header, scale, decoderBytes: job.decoder.memoryBytes(scale) };
  const plan: RequestPlan = { body: job.readerBytes, image, model: header, answer };
  const needs = reservationBytes(plan);
  const tooLarge = (room: number) => imageTooLarge({ ...job, image }, needs, room);
  let frames: TokenFrames;
  try {
    const room = job.ticket.roomAlone;
    if (needs > room) throw tooLarge(room);
    await job.ticket.resize(reservationBytes({ ...plan, phase: "decode" }), tooLarge);
    frames = await imageTokenFrames(job.model, job.decoder, limitsOf(env), { split, decode });
  } finally {
    job.source.close();
  }
  // A collected answer is built after the frames: its room is taken now, not after the work.
  const next = Math.max(reservationBytes({ ...plan, phase: "frames" }), reservationBytes({ ...plan, phase: "answer" }));
  await job.ticket.resize(next, tooLarge);
  return frames;
}

function framesAnswer(job: Prepared, split: boolean, form: "npy" | "json" | "arrays", nearest?: NearestPlan) {
  const frames = framesOf(job.model.header, job, split);
  return { kind: "image_tokens", frames, form, ...(nearest ? { nearest } : {}) } as const;
}

// Decode and the processor's frames, run as the answer is sent (form: how it is streamed, memory.ts).
export async function streamTokens(
  env: Env,
  job: Prepared,
  split: boolean,
  form: "npy" | "json",
): Promise<TokensStream> {
  const frames = await tokenFrames(env, job, split, framesAnswer(job, split, form));
  const { name, version, model } = job;
  // the forward passes run as the answer is sent, after its headers
  const { decode, preprocess } = frames.timings;
  return { name, version, model, ...frames, timings: { ...job.timings, decode, preprocess } };
}

// Decode, the processor's frames and one forward pass per frame, every frame's rows collected (the RPC
// answer's nested arrays); with `nearest` (k), each image token's k nearest rows of the bundle's LLM
// embedding table (worker/nearest.ts), refused before the image is decoded when the bundle has none or the
// comparisons are too many.
export async function runTokens(env: Env, job: Prepared, split: boolean, nearest?: number): Promise<TokensInference> {
  const { header } = job.model;
  const table = nearest === undefined ? undefined : embeddingsSectionOf(job.name, header);
  const answer = framesAnswer(
    job,
    split,
    "arrays",
    table && nearest !== undefined ? { k: nearest, table: table.config } : undefined,
  );
  if (table) checkNearestWork(table, answer.frames * imageTokens(header.config), split);
  const frames = await tokenFrames(env, job, split, answer);
  const { grid, tokens, lmDim } = frames;
  const data = await runFrames(frames);
  // the frames' memory is garbage now: the answer's part stays
  await job.ticket.resize(reservationBytes({ body: 0, model: header, answer, phase: "answer" }));
  const { name, version, model } = job;
  const inference: TokensInference = {
    name,
    version,
    model,
    image: frames.image,
    grid,
    tokens,
    lmDim,
    data,
    timings: { ...job.timings, ...frames.timings },
  };
  if (table && nearest !== undefined)
    inference.nearest = await nearestTokens(env.MODELS, name, job.entry.etag, table, data, nearest);
  return inference;
}

// The k nearest rows of each image token, [tiles][tokens][k], as the answer lists them.
function nearestAnswer(n: NearestTokens, frames: number, tokens: number): NearestToken[][][] {
  const entry = (q: number) =>
    Array.from({ length: n.k }, (_, j) => q * n.k + j)
      .filter((i) => n.ids[i] >= 0)
      .map((i) => ({ id: n.ids[i], token: n.tokens ? n.tokens[i] : null, cosine: n.cosines[i] }));
  return Array.from({ length: frames }, (_, f) => Array.from({ length: tokens }, (_, t) => entry(f * tokens + t)));
}

// The answer's fields before its rows, the same for the answer's object and its streamed JSON.
function tokensFields(t: Pick<TokensStream, "name" | "version" | "model" | "grid" | "tokens" | "lmDim">) {
  return {
    model: t.name,
    version: t.version,
    connector: towerOf(t.model.header.config).connector as "idefics3" | "llava",
    tiles: t.grid.frames,
    tokens: t.tokens,
    lm_dim: t.lmDim,
    grid: { rows: t.grid.rows, cols: t.grid.cols },
  } satisfies Partial<ImageTokensAnswer>;
}

export function imageTokensAnswer(inference: TokensInference): ImageTokensAnswer {
  const { grid, tokens, lmDim, data, image } = inference;
  const rows = (f: number) =>
    Array.from({ length: tokens }, (_, t) =>
      Array.from(data.subarray((f * tokens + t) * lmDim, (f * tokens + t + 1) * lmDim)),
    );
  return {
    ...tokensFields(inference),
    image_tokens: Array.from({ length: grid.frames }, (_, f) => rows(f)),
    ...(inference.nearest ? { nearest: nearestAnswer(inference.nearest, grid.frames, tokens) } : {}),
    image,
  };
}

// imageTokensAnswer's JSON (without nearest) made as it is sent: the fields before the rows, then each
// row's text as the client reads, a frame run when its first row is asked for, then the image. The same
// bytes as JSON.stringify of imageTokensAnswer's object, holding one frame's rows and one row's text.
export function imageTokensJson(stream: TokensStream): ReadableStream<Uint8Array> {
  const { grid, tokens, lmDim, image } = stream;
  const fields = tokensFields(stream);
  const encoder = new TextEncoder();
  let frame = 0;
  let row = 0;
  let rows: Float32Array | undefined;
  return new ReadableStream<Uint8Array>(
    {
      start(controller) {
        controller.enqueue(encoder.encode(`${JSON.stringify(fields).slice(0, -1)},"image_tokens":[`));
      },
      pull(controller) {
        if (frame === grid.frames) {
          controller.enqueue(encoder.encode(`],"image":${JSON.stringify(image)}}`));
          return controller.close();
        }
        rows ??= stream.run(frame);
        const text = JSON.stringify(Array.from(rows.subarray(row * lmDim, (row + 1) * lmDim)));
        const open = row === 0 ? `${frame > 0 ? "," : ""}[` : ",";
        const close = row === tokens - 1 ? "]" : "";
        controller.enqueue(encoder.encode(`${open}${text}${close}`));
        if (++row === tokens) {
          row = 0;
          frame++;
          rows = undefined;
        }
      },
    },
    { highWaterMark: 0 },
  );
}
