// The API's operations without a transport: an image's bytes through a model, and the answers built from
// the outputs. The HTTP handlers (api.ts), the RPC entrypoint (rpc.ts) and the queue consumer (queue.ts)
// all call these, so they refuse the same inputs with the same codes and answer the same objects.

import { EdgevitError } from "../core/errors.ts";
import { type DecodeMode, inspectImage, runImage, type Inference as CoreInference } from "../core/pipeline.ts";
import type { Limits } from "../core/limits.ts";
import type { Model, RunOptions } from "../core/engine/model.ts";
import type { BundleHeader, ModelConfig } from "../core/bundle/format.ts";
import { DECODE_MODES, DEFAULT_DECODE_MODE } from "../core/preprocess/stream.ts";
import { modelName } from "../core/names.ts";
import { poolEmbedding } from "../core/answers/pool.ts";
import { topPredictions } from "../core/answers/predictions.ts";
import { listBundles } from "./catalog.ts";
import { budgetBytes, engineBuild, engineDot, getModel, loadedModels, refreshMs, reserveCapture } from "./models.ts";
import { boolOption, choiceOption, intOption } from "./options.ts";
import type {
  AttentionsAnswer,
  ClassifyAnswer,
  ClassifyOptions,
  EmbedAnswer,
  EmbedOptions,
  HiddenStatesAnswer,
  ModelsAnswer,
  Pool,
} from "./types.ts";

// Milliseconds per phase of one request. Only phases that span I/O are measurable in workerd: its clock
// stands still while code runs, so the synchronous decode, preprocess and forward read 0 there.
export interface Timings {
  body?: number; // reading the upload
  model?: number; // getting the model: a load from R2, a revalidation, or a cache hit
  decode?: number;
  preprocess?: number;
  forward?: number;
}

export interface Inference extends CoreInference {
  name: string;
  version: string;
  model: Model;
  timings: Timings;
}

function limitsOf(env: Env): Limits {
  return { maxPixels: Number(env.MAX_IMAGE_PIXELS) };
}

// The model a request names, or the deployment's default.
export function modelOf(env: Env, raw: string | null | undefined): string {
  return modelName(raw ?? env.DEFAULT_MODEL);
}

// What to keep from the forward pass: a layer's output (-1 none, "last" the last layer), or the engine's
// capture options made from the model's header once it is known (they may refuse a parameter).
export type Capture = number | "last" | ((header: BundleHeader, name: string) => RunOptions);

// The upload through the model. The image's header is checked before the model is fetched, so a bad file
// never costs a model load.
export interface InferOptions {
  capture?: Capture;
  decode?: DecodeMode;
  timings?: Timings; // filled in
}

// The upload through the model. The image's header is checked before the model is fetched, so a bad file
// never costs a model load.
export async function infer(env: Env, name: string, bytes: Uint8Array, options: InferOptions = {}): Promise<Inference> {
  const { capture = -1, decode, timings = {} } = options;
  const decoder = inspectImage(bytes, limitsOf(env));
  const started = performance.now();
  const loaded = await getModel(env, name);
  const { model, version } = loaded;
  timings.model = performance.now() - started;
  let engineCapture: number | RunOptions;
  if (typeof capture === "function") {
    engineCapture = capture(model.header, name);
  } else {
    const { layers } = model.header.config;
    engineCapture = capture === "last" ? layers : capture;
    if (engineCapture > layers) {
      throw new EdgevitError("bad_parameter", `layer must be from 0 to ${layers} for model ${name}`);
    }
  }
  if (typeof engineCapture !== "number") reserveCapture(env, loaded, engineCapture);
  // The model fetched here serves the whole request, even if a swap replaces it in the cache meanwhile.
  const inference = await runImage(model, decoder, limitsOf(env), { capture: engineCapture, decode, timings });
  return { name, version, model, timings, ...inference };
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

export function embedAnswer(inference: Inference, pool: Pool, normalize: boolean): EmbedAnswer {
  const { name, version, model, result } = inference;
  const { dim, imageSize, patchSize } = model.header.config;
  const pooled = poolEmbedding(result.output, dim, (imageSize / patchSize) ** 2, pool);
  const embedding = normalize ? l2Normalize(pooled) : pooled;
  return {
    model: name,
    version,
    dim,
    pool,
    normalized: normalize,
    embedding: Array.from(embedding),
    image: inference.image,
  };
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
  return { model: name, version, layer, heads, tokens, attentions };
}

export function hiddenStatesAnswer(inference: Inference, layer: number): HiddenStatesAnswer {
  const { name, version, model, result } = inference;
  const { dim } = model.header.config;
  const states = result.captured!; // [tokens][dim]
  const tokens = states.length / dim;
  const rows: number[][] = [];
  for (let t = 0; t < tokens; t++) rows.push(Array.from(states.subarray(t * dim, (t + 1) * dim)));
  return { model: name, version, layer, tokens, dim, hidden_states: rows };
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
    memory: { usedBytes: loaded.usedBytes, budgetBytes: budgetBytes(env) },
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

export const POOLS = ["cls", "mean"] as const;

export function classifyOptions(options: ClassifyOptions = {}): { topK: number; logits: boolean } {
  return { topK: intOption("topK", options.topK, 5, 1), logits: boolOption("logits", options.logits) };
}

export function embedOptions(options: EmbedOptions = {}): { pool: Pool; normalize: boolean } {
  return { pool: choiceOption("pool", options.pool, POOLS), normalize: boolOption("normalize", options.normalize) };
}
