// What a caller of edgevit sees: the answers (the same objects over HTTP, RPC and in the queue's results),
// the options, and the RPC interface a service binding exposes. Exported from the package as "edgevit"
// (package.json "exports"), so another Worker types its binding as `EdgevitBinding`.

import { ERROR_CODES, type ErrorCode } from "../core/errors.ts";
import type { Family, ModelConfig } from "../core/bundle/format.ts";
import type { Pool } from "../core/answers/pool.ts";
import type { ImageHeader } from "../core/image/source.ts";
import type { PoolStats } from "../core/buffers.ts";

export type { ErrorCode } from "../core/errors.ts";
export type { ModelConfig } from "../core/bundle/format.ts";

// The image as bytes: a whole buffer, a view, or a stream (read up to MAX_BODY_BYTES).
export type ImageInput = ArrayBuffer | Uint8Array | ReadableStream<Uint8Array>;

// Which model answered: its name and the version of its bundle (the payload CRC-32, hex).
export interface ModelVersion {
  model: string;
  version: string;
}

export interface Prediction {
  label: string;
  index: number;
  score: number; // softmax probability
}

export interface ModelOption {
  model?: string; // default: the deployment's DEFAULT_MODEL
  // "fast" (default) lets a JPEG decode at 1/2, 1/4 or 1/8 in the DCT domain when the image is far larger than
  // the model's input; "exact" decodes every pixel.
  decode?: "fast" | "exact";
}

// The upload as the model received it.
export interface ImageSummary {
  format: ImageHeader["format"];
  width: number; // at full size, after the EXIF orientation
  height: number;
  decode: { mode: "fast" | "exact"; scale: number }; // the decoder ran at 1/scale
}

export interface ClassifyOptions extends ModelOption {
  topK?: number; // default 5
  logits?: boolean; // include every class's logit
}

export type { Family } from "../core/bundle/format.ts";
// cls: the class token of last_hidden_state (ViT, DeiT, DINOv2's pooler_output); mean: the mean patch
// token; cls_mean: DINOv2's class token and mean patch token concatenated ([2 dim], what its linear
// heads read); image_embeds: CLIP's projected embedding; pooler: pooler_output (SigLIP's attention
// pooling head; CLIP's unprojected class token). Each model answers some (/v1/models `pools`).
export type { Pool } from "../core/answers/pool.ts";

export interface EmbedOptions extends ModelOption {
  pool?: Pool; // default: the model's family's (ViT, DINOv2 "cls"; CLIP "image_embeds"; SigLIP "pooler")
  normalize?: boolean; // scale to unit L2 length (cosine similarity = dot product)
}

export interface HiddenStatesOptions extends ModelOption {
  layer: number; // 0 = embeddings, L = the last encoder layer
}

export interface AttentionsOptions extends ModelOption {
  layer: number; // 1..L: transformers' output_attentions[layer - 1]
}

export interface ImageTokensOptions extends ModelOption {
  split?: boolean; // default true: the tiles and the global view (Idefics3); false: the global view alone
  nearest?: number; // 1..20: each image token's nearest rows of the LLM's embedding table (a bundle with one)
}

// One row of the LLM's input embedding table near an image token.
export interface NearestToken {
  id: number; // the token id: the table's row
  token: string | null; // the tokenizer's string for it, as text; null when the bundle carries no strings
  cosine: number; // between the image token and the row
}

export interface ImageTokensAnswer extends ModelVersion {
  connector: "idefics3" | "llava";
  tiles: number; // frames: the tiles row by row, then the global view (1 without tiles)
  tokens: number; // rows per frame
  lm_dim: number; // the LLM's width
  grid: { rows: number; cols: number }; // the tiles (0 and 0: the global view alone, or an image of one tile)
  image_tokens: number[][][]; // [tiles][tokens][lm_dim]: the rows the LLM receives for its <image> tokens
  nearest?: NearestToken[][][]; // with nearest=k: [tiles][tokens][k], the highest cosine first
  image: ImageSummary;
}

export interface ClassifyAnswer extends ModelVersion {
  predictions: Prediction[];
  logits?: number[]; // [classes]
  image: ImageSummary;
}

export interface EmbedAnswer extends ModelVersion {
  family: Family;
  dim: number; // the embedding's length (cls_mean: twice the model's width; image_embeds: the projection's)
  pool: Pool;
  normalized: boolean;
  embedding: number[]; // [dim]
  image: ImageSummary;
}

// Where the patches start among the tokens: after the class token (absent in SigLIP, whose tokens are
// the patches), DeiT's distillation token and DINOv2's register tokens.
export interface TokenLayout {
  class_token: boolean;
  prefix_tokens: number; // tokens before the patches
}

export interface AttentionsAnswer extends ModelVersion, TokenLayout {
  layer: number;
  heads: number;
  tokens: number;
  attentions: number[][][]; // [heads][tokens][tokens], softmax probabilities (rows sum to 1)
}

export interface HiddenStatesAnswer extends ModelVersion, TokenLayout {
  layer: number;
  tokens: number;
  dim: number;
  hidden_states: number[][]; // [tokens][dim]
}

// A bundle in the bucket, as /v1/models lists it (worker/catalog.ts reads all but `loaded`).
export interface BundleListing {
  name: string;
  bytes: number;
  uploaded: string;
  etag: string;
  version?: string; // the payload CRC-32 from the header: what a loaded model reports as its version
  config?: ModelConfig;
  summary?: string;
  family?: Family; // vit (ViT, DeiT), clip, siglip, dinov2
  answers?: string[]; // the routes it answers: /v1/classify with a classifier, /v1/image_tokens with a connector
  pools?: Pool[]; // the embeddings /v1/embed gives, its default first
  lmVocab?: number; // rows of the LLM's embedding table it carries (--lm-embeddings): /v1/image_tokens?nearest=k
  error?: { code: string; message: string }; // the header cannot be read: why
  loaded: boolean; // this isolate has it loaded
}

export interface LoadedListing {
  name: string;
  tower?: "text"; // a model's text tower, loaded apart from its image tower
  version: string; // the bundle's payload CRC-32: the same bytes give the same version wherever uploaded
  etag: string; // the R2 object's etag when it was loaded: what revalidation compares
  memoryBytes: number; // what the model holds: its wasm memory, and a text tower's tokenizer tables
  wasmBytes: number; // its wasm memory's byte length, as the runtime reports it
  largestLoadBufferBytes: number; // the largest JS buffer its load held (read buffer, stream chunk or header)
  checkedAt: string; // when the object in R2 was last compared with this version
  // A newer object under the same key that failed to load: the version above keeps serving meanwhile.
  refreshError?: { etag: string; code: string; message: string };
}

export interface ModelsAnswer {
  default: string;
  engine: string;
  // the int8 dot step the engine took: "fused" where the runtime lowers relaxed_dot_i8x16_i7x16_add_s to one
  // instruction (AVX-VNNI), "split" elsewhere, "i16" (sign-extended i16 dot products) without relaxed SIMD; `probe` is the value it chose by
  dot: { path: "i16" | "split" | "fused"; probe: number };
  refreshSeconds: number;
  models: BundleListing[];
  loaded: LoadedListing[];
  // usedBytes and budgetBytes: the loaded models' wasm memory and MODEL_MEMORY_BUDGET_MB; isolate: the
  // isolate's memory ledger
  memory: { usedBytes: number; budgetBytes: number; isolate: IsolateMemory };
  // the text Worker's loaded text towers (over the TEXT binding), or null and why
  text: TextTowers;
}

// What the text Worker holds, as the main Worker's GET /v1/models reports it: its text towers with their
// measured wasm memory, or `loaded: null` with the reason (no TEXT binding, this is the text Worker, or the
// binding failed or did not answer in time).
export type TextTowers = { loaded: LoadedListing[] } | { loaded: null; reason: string };

// The isolate's memory ledger (worker/memory.ts): what it counts now against ISOLATE_MEMORY_MB.
export interface IsolateMemory {
  capacityBytes: number; // ISOLATE_MEMORY_MB
  fixedBytes: number; // the idle isolate's own JS heap
  cacheBytes: number; // what its caches keep between requests (label embeddings)
  modelBytes: number; // loaded models (and evicted ones a request still holds), or the model budget while one loads
  reservedBytes: number; // what the requests in flight reserved
  poolBytes: number; // the free buffers the isolate's pool keeps for the next requests (core/buffers.ts)
  usedBytes: number; // the four above: never over capacityBytes
  peakBytes: number; // the most usedBytes has been since the isolate started
  inFlight: number; // requests holding a reservation
  queued: number; // requests waiting for one
  loading: string[]; // models being loaded, the model budget set aside for them
  pool: PoolStats; // the pool's buffers made, handed out again and let go since the isolate started
  // The decoders' wasm kernels' memory (core/image/kernels.ts): not in usedBytes, part of what
  // ISOLATE_MEMORY_MB leaves below 128 MB for what the ledger does not count (docs/MEMORY.md).
  kernelBytes: number;
}

// The error body of every failed HTTP answer; over RPC the thrown Error has `code` and a message that
// starts with `code: `.
export interface ErrorAnswer {
  error: { code: ErrorCode; message: string };
}

// The methods of the RPC entrypoint (worker/rpc.ts implements this).
// Zero-shot classification with a two-tower model (CLIP, SigLIP): the labels' scores, highest first.
// CLIP's are probabilities over the labels (softmax of exp(logit_scale) x cosine), SigLIP's independent
// sigmoids of exp(logit_scale) x cosine + logit_bias, as transformers' zero-shot pipeline scores them.
export interface ZeroShotOptions extends ModelOption {
  labels: string[]; // 1 to 256 distinct labels
  template?: string; // where each label goes, at "{}"; default "This is a photo of {}." (the pipeline's)
}

export interface ZeroShotAnswer extends ModelVersion {
  scores: { label: string; score: number }[];
  image: ImageSummary;
}

export interface TextOptions {
  model?: string;
}

export interface EmbedTextOptions extends TextOptions {
  normalize?: boolean;
}

// The text tower's embeddings (CLIP text_embeds, SigLIP's pooled output), one per text.
export interface EmbedTextAnswer extends ModelVersion {
  dim: number;
  normalized: boolean;
  embeddings: number[][];
}

// The tokenizer's ids and mask per text, padded as the family's processor pads (CLIP 77, SigLIP 64).
export interface TokenizeAnswer extends ModelVersion {
  input_ids: number[][];
  attention_mask: number[][];
}

export interface SearchOptions extends TextOptions {
  k?: number; // 1 to 20, default 10
}

// The input bucket's images nearest to a text, by the cosine of the model's image and text embeddings.
export interface SearchAnswer {
  model: string;
  version?: string; // the image tower's version the index holds; absent when nothing was indexed
  results: SearchResult[]; // nearest first (by score)
  message?: string; // why there are no results
}

// One image found: its cosine, and the model's score of the pair from it as zero-shot computes it.
export interface SearchResult {
  key: string; // the image's key in the input bucket
  score: number; // the cosine of the image's and the text's embeddings
  logit: number; // exp(logit_scale) x score, + logit_bias for SigLIP
  probability?: number; // SigLIP: sigmoid(logit), the pair's own probability (CLIP's softmax needs a set of texts)
}

export interface EdgevitApi {
  classify(image: ImageInput, options?: ClassifyOptions): Promise<ClassifyAnswer>;
  embed(image: ImageInput, options?: EmbedOptions): Promise<EmbedAnswer>;
  hiddenStates(image: ImageInput, options: HiddenStatesOptions): Promise<HiddenStatesAnswer>;
  attentions(image: ImageInput, options: AttentionsOptions): Promise<AttentionsAnswer>;
  zeroShot(image: ImageInput, options: ZeroShotOptions): Promise<ZeroShotAnswer>;
  embedText(texts: string[], options?: EmbedTextOptions): Promise<EmbedTextAnswer>;
  tokenize(texts: string[], options?: TextOptions): Promise<TokenizeAnswer>;
  search(query: string, options?: SearchOptions): Promise<SearchAnswer>;
  imageTokens(image: ImageInput, options?: ImageTokensOptions): Promise<ImageTokensAnswer>;
  models(): Promise<ModelsAnswer>;
}

// A service binding to edgevit's RPC entrypoint, as the caller's Env declares it.
export type EdgevitBinding = Fetcher & EdgevitApi;

// The stable code of an error thrown over RPC (its `code`, else the start of its message), or undefined.
export function errorCode(error: unknown): ErrorCode | undefined {
  const own = (error as { code?: unknown } | null)?.code;
  const code = typeof own === "string" ? own : /^([a-z_]+): /.exec(error instanceof Error ? error.message : "")?.[1];
  return (ERROR_CODES as readonly string[]).includes(code ?? "") ? (code as ErrorCode) : undefined;
}
