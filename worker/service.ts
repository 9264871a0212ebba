// The API's operations without a transport: an image's bytes through a model, and the answers built from
// the outputs. The HTTP handlers (api.ts), the RPC entrypoint (rpc.ts) and the queue consumer (queue.ts)
// all call these, so they refuse the same inputs with the same codes and answer the same objects.

import { EdgevitError } from "../core/errors.ts";
import type { Limits } from "../core/limits.ts";
import {
  type Capture,
  type DecodeMode,
  inspectImage,
  runImage,
  runImageTokens,
  type ImageTokens,
  type Inference as CoreInference,
  longestEdgeStep,
  type Timings,
} from "../core/pipeline.ts";
import type { Model, RunResult } from "../core/engine/model.ts";
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
import { pcaWorkBytes } from "../core/pictures/pca.ts";
import { longestEdgeSize, tileGrid } from "../core/preprocess/tiles.ts";
import { chooseScale, DECODE_MODES, DEFAULT_DECODE_MODE } from "../core/preprocess/stream.ts";
import { modelName } from "../core/names.ts";
import { POOLS, poolEmbedding, poolsOf } from "../core/answers/pool.ts";
import { topPredictions } from "../core/answers/predictions.ts";
import { listBundles } from "./catalog.ts";
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
  type BodyPlan,
  budgetBytes,
  type ImagePlan,
  ledgerOf,
  reservationBytes,
  type Ticket,
} from "./memory.ts";
import { sizeText } from "../core/sizes.ts";
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
  Pool,
} from "./types.ts";

function limitsOf(env: Env): Limits {
  return { maxPixels: Number(env.MAX_IMAGE_PIXELS) };
}

// The model a request names, or the deployment's default.
export function modelOf(env: Env, raw: string | null | undefined): string {
  return modelName(raw ?? env.DEFAULT_MODEL);
}

// An image as prepare() takes it: what reading its header needs. Today the body read whole under
// MAX_BODY_BYTES, with how long that took where the transport measures it (HTTP's Server-Timing), and the
// memory reservation it was read under (admit()).
export interface Upload {
  bytes: Uint8Array;
  bodyMs?: number;
  ticket: Ticket;
  // The body as reading it held it (a multipart form's copies, a chunked body's chunks): garbage once read,
  // but garbage the runtime collects when it will, so it stays counted until the request ends. Default: the
  // image's bytes, once.
  read?: BodyPlan;
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
  decode?: DecodeMode;
  timings: Timings; // body, model
  ticket: Ticket; // this request's memory reservation: run() grows it to what the run will hold
  body: BodyPlan; // the body as held from here on
  image: ImagePlan; // the decode scale chosen for this model, what the decoder holds at it
}

// Admission of an upload, before its body is read: the memory the body will hold is reserved in the
// isolate's ledger (waiting its turn, or refused busy), with the room for loading `name` when it is not
// loaded. A body that could never fit beside the models is refused at once (payload_too_large).
export function admit(env: Env, name: string, body: BodyPlan): Promise<Ticket> {
  return ledgerOf(env).admit(reservationBytes({ body }), isLoaded(name) ? undefined : name, bodyTooLarge(body));
}

// The reservation of a body whose length was not declared, grown to `bytes` read so far (input.ts's
// ReadOptions.reserve).
export function growBody(ticket: Ticket, copies: number): (bytes: number) => Promise<void> {
  return (bytes) => {
    const body = { bytes, copies };
    return ticket.resize(reservationBytes({ body }), bodyTooLarge(body));
  };
}

function bodyTooLarge(body: BodyPlan): (room: number) => EdgevitError {
  return (room) => {
    const size = sizeText(body.bytes);
    const what =
      body.copies > 2 ? `a multipart body of ${size} (the body, the form's file and the image)` : `a body of ${size}`;
    return new EdgevitError(
      "payload_too_large",
      `${what} needs more memory than this server has for one upload beside its models (${sizeText(room)}); ` +
        (body.copies > 2
          ? "send the image as the raw body (image/jpeg, image/png) or a smaller image"
          : "send a smaller image"),
    );
  };
}

// The body as held once read: what reading it held, at least the image's bytes once.
function heldBody(upload: Upload): BodyPlan {
  const read = upload.read ?? { bytes: 0, copies: 0 };
  const image = upload.bytes.byteLength;
  return read.bytes * read.copies >= image ? read : { bytes: image, copies: 1 };
}

// The image's header is checked before the model is fetched, so a bad file never costs a model load.
export async function prepare(env: Env, name: string, upload: Upload, decode?: DecodeMode): Promise<Prepared> {
  const { ticket } = upload;
  const body = heldBody(upload);
  const decoder = inspectImage(upload.bytes, limitsOf(env));
  await ticket.resize(reservationBytes({ body }));
  const started = performance.now();
  const entry = await getModel(env, name);
  ticket.hold(entry.model);
  const timings = { body: upload.bodyMs, model: performance.now() - started };
  const { header } = decoder;
  const scale = chooseScale(header, entry.model.header.preprocessing, decode ?? DEFAULT_DECODE_MODE);
  const image = { header, scale, decoderBytes: decoder.memoryBytes(scale) };
  return { name, version: entry.version, model: entry.model, entry, decoder, decode, timings, ticket, body, image };
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
  const captureGrowth = typeof capture === "number" ? 0 : job.model.captureGrowth(capture);
  const plan = {
    body: job.body,
    image: job.image,
    model: job.model.header,
    captureGrowth,
    captureCopies: captureCopies(job, capture, keep !== undefined),
    answer,
  };
  await job.ticket.resize(reservationBytes(plan), (room) => imageTooLarge(job, reservationBytes(plan), room));
  if (typeof capture !== "number") reserveCapture(env, job.entry, capture);
  const ran = await runImage(job.model, job.decoder, limitsOf(env), { capture, decode: job.decode, keep });
  // The body, the decoder's and the preprocessor's memory are garbage now: the answer's part stays.
  await job.ticket.resize(reservationBytes({ body: { bytes: 0, copies: 0 }, model: job.model.header, answer }));
  const { name, version, model } = job;
  return { name, version, model, ...ran, timings: { ...job.timings, ...ran.timings } };
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

export function imageTokensOptions(options: ImageTokensOptions = {}): { split: boolean } {
  return { split: boolOption("split", options.split, true) };
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
}

// Decode, the processor's frames and one forward pass per frame (core/pipeline.ts's runImageTokens), once the
// request's reservation has grown to all of it and the answer in `form`.
export async function runTokens(
  env: Env,
  job: Prepared,
  split: boolean,
  form: "npy" | "json",
): Promise<TokensInference> {
  const { header } = job.model;
  const decode = job.decode ?? DEFAULT_DECODE_MODE;
  // the decode scale and the decoder's memory for the first step the frames stream through
  const pp = header.preprocessing.splitting
    ? longestEdgeStep({ ...header.preprocessing, splitting: header.preprocessing.splitting }, job.decoder.header)
    : header.preprocessing;
  const scale = chooseScale(job.decoder.header, pp, decode);
  const image = { header: job.decoder.header, scale, decoderBytes: job.decoder.memoryBytes(scale) };
  const answer = { kind: "image_tokens", frames: framesOf(header, job, split), form } as const;
  const plan = { body: job.body, image, model: header, answer };
  const needs = reservationBytes(plan);
  await job.ticket.resize(needs, (room) => imageTooLarge({ ...job, image }, needs, room));
  const ran = await runImageTokens(job.model, job.decoder, limitsOf(env), { split, decode });
  await job.ticket.resize(reservationBytes({ body: { bytes: 0, copies: 0 }, model: header, answer }));
  const { name, version, model } = job;
  return { name, version, model, ...ran, timings: { ...job.timings, ...ran.timings } };
}

export function imageTokensAnswer(inference: TokensInference): ImageTokensAnswer {
  const { name, version, model, grid, tokens, lmDim, data, image } = inference;
  const rows = (f: number) =>
    Array.from({ length: tokens }, (_, t) =>
      Array.from(data.subarray((f * tokens + t) * lmDim, (f * tokens + t + 1) * lmDim)),
    );
  return {
    model: name,
    version,
    connector: towerOf(model.header.config).connector as "idefics3" | "llava",
    tiles: grid.frames,
    tokens,
    lm_dim: lmDim,
    grid: { rows: grid.rows, cols: grid.cols },
    image_tokens: Array.from({ length: grid.frames }, (_, f) => rows(f)),
    image,
  };
}
