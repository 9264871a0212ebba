// The .evit bundle (FORMAT.md beside this file): the prefix, the header's types, the limits every size is
// checked against and the error a bundle problem raises. The payload layout is layout.ts, the header's
// validation header.ts, writing writer.ts and reading reader.ts. Portable: no Node or Workers imports;
// callers pass their CRC-32.
import { PACK_K, PACK_ROWS } from "./pack.ts";
import { MiB, sizeText } from "../sizes.ts";

export const MAGIC = "EVIT";
// Version 2 adds the tower fields of ModelConfig and heads of no classes; version 3 the sections after the
// image payload (a text tower). A writer writes the lowest version a bundle needs (every ViT and DeiT
// classifier's stays version 1, byte for byte what it was), and a reader reads all three.
export const FORMAT_VERSION = 3;
export const FORMAT_VERSIONS: readonly number[] = [1, 2, 3];

// "1, 2 and 3", for messages.
export const versionList = (): string => `${FORMAT_VERSIONS.slice(0, -1).join(", ")} and ${FORMAT_VERSIONS.at(-1)}`;
export const PREFIX_BYTES = 16;
export const ALIGN = 64;

// The largest numbers a bundle may declare, derived from what one Worker isolate can hold: 128 MiB for
// the JS heap and every wasm memory together (docs/MEMORY.md). Each is checked, in O(1), before anything
// is laid out or allocated, by the reader (parsePrefix, validateHeader), the writer and the converter, so
// a hostile header costs as little as a good one. The sizes they imply together (payload, activations)
// are bounded again by `payloadBytes` and, when loading, by the memory budget (core/engine/memory.ts).
export const LIMITS = {
  // The JSON header: 21,843 ImageNet-21k labels of ~30 characters and a 64-layer tensor table take 0.74 MiB.
  headerBytes: 2 * MiB,
  // The weights are used in place in wasm memory, inside the isolate's 128 MiB with the JS heap and the
  // activations beside them: ViT-B/16 int8 is 84 MiB. 120 MiB leaves 8 MiB for everything else, so no
  // larger payload can ever load; the deployed bound is the tighter MODEL_MEMORY_BUDGET_MB.
  payloadBytes: 120 * MiB,
  // ViT-H has 32 layers; a layer of dim 192 (DeiT-Ti) is ~0.43 MiB, so the payload limit alone would allow
  // ~280. At 64 the tensor table (20 entries a layer) stays under 1,300 entries.
  layers: 64,
  // ViT-G is 1664 wide. 4096 keeps every buffer the engine plans below 2^31 bytes (its offsets are i32).
  dim: 4096,
  // headDim = dim / heads is at least 1; published ViTs use 3..16 heads.
  heads: 64,
  // 4 x dim at the widest dim: [tokens][hidden] f32 stays below 2^31 bytes.
  hidden: 16384,
  // ImageNet-21k has 21,843; the classifier is dim x classes bytes (128 MiB at dim 4096: the payload
  // limit binds first).
  classes: 32768,
  // The engine's input is f32 [channels][imageSize][imageSize]: 12 MiB at 1024 px and 3 channels.
  imageSize: 1024,
  patchSize: 64,
  // The decoder makes RGB; one more allows an alpha or depth plane if a converter produces one.
  channels: 4,
  // (imageSize / patchSize)^2: attention scores are f32 [tokens][tokens], 64 MiB at 4096 patches.
  patches: 4096,
  // Label strings as shown in responses; ImageNet's longest is 121 characters.
  labelChars: 256,
  // DINOv2 with registers has 4; each is a token of every layer's attention.
  registerTokens: 64,
  // CLIP's projection_dim (512 for B/32, 768 for L/14): a Linear(dim -> projection) like the classifier.
  projection: 4096,
  // The LLM width a connector projects to (SmolVLM-256M 576, LLaVA-1.5-7B 4096, Llama 70B 8192).
  lmDim: 8192,
  // Idefics3's pixel shuffle: 2 for Idefics3-8B, 4 for SmolVLM; each token then holds scaleFactor^2 patches.
  scaleFactor: 16,
} as const;

// A header is a few kilobytes for most models and under a megabyte with 21k labels.
export const MAX_HEADER_BYTES = LIMITS.headerBytes;

export type BundleErrorCode =
  | "bad_magic"
  | "unsupported_version"
  | "bad_header"
  | "size_mismatch"
  | "truncated"
  | "checksum_mismatch"
  | "over_limit"
  | "non_finite";

export class BundleError extends Error {
  readonly code: BundleErrorCode;
  constructor(code: BundleErrorCode, message: string) {
    super(message);
    this.name = "BundleError";
    this.code = code;
  }
}

export interface ModelConfig extends TowerFields {
  imageSize: number; // input is [channels][imageSize][imageSize]
  patchSize: number; // patches = (imageSize / patchSize)^2
  channels: number;
  dim: number; // residual stream width
  heads: number; // headDim = dim / heads
  hidden: number; // MLP width
  layers: number;
  classes: number; // 0: no classifier (an image tower; version 2)
  eps: number; // LayerNorm epsilon
  distilled: boolean; // DeiT: distillation token and a second head
}

// The families of image encoders a bundle can hold (transformers' model_type, DINOv2 with registers
// included in "dinov2"): what an embedding of each means, and what its users take as one.
export const FAMILIES = ["vit", "clip", "siglip", "dinov2"] as const;
export type Family = (typeof FAMILIES)[number];

// transformers' `hidden_act` names of the MLP activations the engine computes.
export const HIDDEN_ACTS = ["gelu", "quick_gelu", "gelu_pytorch_tanh"] as const;
export type HiddenAct = (typeof HIDDEN_ACTS)[number];
export const FINAL_NORMS = ["tokens", "pooled"] as const;
export const POOLINGS = ["cls", "map", "none"] as const;
// What follows the encoder in a vision-language model: nothing, Idefics3's connector (pixel shuffle, then
// modality_projection.proj) or LLaVA's multi_modal_projector (linear_1, act, linear_2).
export const CONNECTORS = ["none", "idefics3", "llava"] as const;
export type Connector = (typeof CONNECTORS)[number];
// LLaVA's vision_feature_select_strategy: "default" drops the class token, "full" keeps it.
export const SELECT_STRATEGIES = ["default", "full"] as const;

// What differs between the encoders, each a field of its own (version 2; absent in version 1 and in any
// header where it has its ViT value, the default given here).
export interface TowerFields {
  family?: Family; // "vit"
  hiddenAct?: HiddenAct; // "gelu" (erf); CLIP "quick_gelu", SigLIP "gelu_pytorch_tanh"
  preLayernorm?: boolean; // false; CLIP's pre_layrnorm on the embeddings, before the first layer
  classToken?: boolean; // true; SigLIP has none: its tokens are the patches
  registerTokens?: number; // 0; DINOv2 with registers: tokens after the class token, after the position embeddings
  layerScale?: boolean; // false; DINOv2: each residual branch scaled by its lambda1 per channel
  finalNorm?: (typeof FINAL_NORMS)[number]; // "tokens": the final LayerNorm on every token; CLIP "pooled": post_layernorm on the pooled token only
  pooling?: (typeof POOLINGS)[number]; // "cls": the class token; SigLIP "map": the multihead attention pooling head; "none": no pooled output (a VLM's tower)
  projection?: number; // 0; CLIP's visual_projection width (a Linear without bias on the pooled token)
  connector?: Connector; // "none"; what turns last_hidden_state into the LLM's image tokens
  scaleFactor?: number; // 1; Idefics3's scale_factor: the pixel shuffle's block side
  lmDim?: number; // 0; the LLM's hidden_size: the width of the image tokens a connector makes
  projectorHiddenAct?: HiddenAct; // "gelu"; LLaVA's projector_hidden_act, between linear_1 and linear_2
  visionFeatureSelectStrategy?: (typeof SELECT_STRATEGIES)[number]; // "default"; LLaVA: "default" drops the class token
}

export const TOWER_DEFAULTS: Required<TowerFields> = {
  family: "vit",
  hiddenAct: "gelu",
  preLayernorm: false,
  classToken: true,
  registerTokens: 0,
  layerScale: false,
  finalNorm: "tokens",
  pooling: "cls",
  projection: 0,
  connector: "none",
  scaleFactor: 1,
  lmDim: 0,
  projectorHiddenAct: "gelu",
  visionFeatureSelectStrategy: "default",
};
export const TOWER_FIELDS = Object.keys(TOWER_DEFAULTS) as (keyof TowerFields)[];

// A config's tower fields, each with its value or its default.
export function towerOf(c: ModelConfig): Required<TowerFields> {
  const out = { ...TOWER_DEFAULTS };
  for (const key of TOWER_FIELDS) if (c[key] !== undefined) Object.assign(out, { [key]: c[key] });
  return out;
}

// The format version a config needs: 1 unless it has a tower field or no classifier; 3 with sections.
export function versionFor(c: ModelConfig, sections = 0): number {
  if (sections > 0) return 3;
  return c.classes === 0 || TOWER_FIELDS.some((key) => c[key] !== undefined) ? 2 : 1;
}

export type ResizeSize = { height: number; width: number } | { shortestEdge: number };

// Idefics3ImageProcessor's own steps (SmolVLM), present only for it: resize by the longest edge to
// `longestEdge` (size.longest_edge), then both sides up to multiples of `maxImageSize`
// (max_image_size.longest_edge), cut into tiles of that side, the whole image resized to one tile last
// (do_image_splitting). `size` is then the tile, what one forward pass takes.
export interface ImageSplitting {
  longestEdge: number;
  maxImageSize: number;
}

export interface Preprocessing {
  doResize: boolean;
  size: ResizeSize;
  resample: number; // PIL: 0 nearest, 1 lanczos, 2 bilinear, 3 bicubic, 4 box, 5 hamming
  doCenterCrop: boolean;
  cropSize: { height: number; width: number } | null;
  doRescale: boolean;
  rescaleFactor: number;
  doNormalize: boolean;
  imageMean: number[];
  imageStd: number[];
  splitting?: ImageSplitting; // Idefics3ImageProcessor only
}

export interface SourceFile {
  bytes: number;
  crc32: string;
}

export interface BundleSource {
  layout: string;
  checkpoint: string;
  files: Record<string, SourceFile>;
  dtype: string;
  converter: string;
  convertedAt: string;
}

export interface TensorEntry {
  name: string;
  offset: number; // payload offset, a multiple of ALIGN
  bytes: number;
}

export interface BundleHeader {
  format: "edgevit";
  version: number;
  name: string;
  config: ModelConfig;
  preprocessing: Preprocessing;
  labels: string[];
  quantization: typeof QUANTIZATION;
  source: BundleSource;
  payload: { length: number; crc32: string };
  tensors: TensorEntry[];
  sections?: Section[]; // version 3: towers and tables after the image payload (text.ts, embeddings.ts)
}

// What the converter knows before it has written a byte of payload.
export interface BundleParts {
  name: string;
  config: ModelConfig;
  preprocessing: Preprocessing;
  labels: string[];
  source: BundleSource;
  sections?: SectionParts[];
}

// What follows the image payload (version 3): a text tower (text.ts lays it out and checks it) or the
// LLM's input embedding table of a vision-language model (embeddings.ts).
export const SECTION_KINDS = ["clip-text", "siglip-text", "lm-embeddings"] as const;
export type SectionKind = (typeof SECTION_KINDS)[number];
export type TextKind = Exclude<SectionKind, "lm-embeddings">;

// Where a text tower pools its last hidden state (CLIPTextTransformer, SiglipTextTransformer): "eos": the
// first position of eosTokenId; "argmax": the first largest id (CLIP configs with the legacy eos_token_id 2,
// as openai/clip-vit-base-patch32's); "last": the last position (SigLIP, padded to its length).
export const TEXT_POOLINGS = ["eos", "argmax", "last"] as const;
export type TextPooling = (typeof TEXT_POOLINGS)[number];

export interface TextConfig {
  vocab: number; // vocab_size: rows of the token embedding table
  positions: number; // max_position_embeddings: the longest sequence
  dim: number; // hidden_size
  heads: number;
  hidden: number; // intermediate_size
  layers: number;
  eps: number; // layer_norm_eps
  hiddenAct: HiddenAct;
  causal: boolean; // CLIP: each token attends to itself and those before it
  pooling: TextPooling;
  eosTokenId: number; // text_config.eos_token_id (what "eos" pooling looks for)
  projection: number; // CLIP's text_projection width (no bias), SigLIP's head width (with bias)
  logitScale: number; // the checkpoint's logit_scale: scores use exp(logitScale) x cosine
  logitBias: number; // SigLIP's logit_bias (0 for CLIP)
  tokenizerBytes: number; // length of the serialised tokenizer
}

// A vision-language model's LLM input embedding table (`embed_tokens`), with the tokenizer's strings: what
// an image token is nearest to in the LLM's vocabulary.
export interface EmbeddingsConfig {
  vocab: number; // rows of the table (text_config.vocab_size)
  dim: number; // the LLM's hidden_size: the connector's lmDim
  tokensBytes: number; // UTF-8 bytes of the tokens' strings; 0 without a tokenizer.json
}

interface SectionPlace {
  offset: number; // absolute file offset, a multiple of 64
  length: number; // bytes: the end of the section's last tensor
  crc32: string; // IEEE CRC-32 of the section's bytes, 8 lowercase hex digits
  tensors: TensorEntry[]; // offsets relative to `offset`
}

export interface TextSection extends SectionPlace {
  name: string; // "text"
  kind: TextKind;
  config: TextConfig;
}

export interface EmbeddingsSection extends SectionPlace {
  name: string; // "lm_embeddings"
  kind: "lm-embeddings";
  config: EmbeddingsConfig;
}

export type Section = TextSection | EmbeddingsSection;

// A section as the converter describes it before its bytes are written.
export type TextParts = { name: string; kind: TextKind; config: TextConfig };
export type EmbeddingsParts = { name: string; kind: "lm-embeddings"; config: EmbeddingsConfig };
export type SectionParts = TextParts | EmbeddingsParts;

export const QUANTIZATION = {
  scheme: "w7a8",
  weights: "per-channel symmetric 7-bit, stored q+64",
  activations: "per-token asymmetric int8",
  pack: { rows: PACK_ROWS, k: PACK_K },
} as const;

// Same signature as node:zlib's crc32(data, value): IEEE CRC-32, continued from `value`.
export type Crc32 = (data: Uint8Array, value?: number) => number;

export const align64 = (n: number): number => Math.ceil(n / ALIGN) * ALIGN;

export const hex32 = (crc: number): string => (crc >>> 0).toString(16).padStart(8, "0");

export function patches(config: ModelConfig): number {
  // as the patch conv counts them (bundles have imageSize % patchSize == 0; the engine also runs others)
  const side = Math.floor(config.imageSize / config.patchSize);
  return side * side;
}

// Rows of the position embeddings: the class (and distillation) token and the patches, registers not.
export function positions(config: ModelConfig): number {
  const t = towerOf(config);
  return patches(config) + (t.classToken ? 1 : 0) + (config.distilled ? 1 : 0);
}

// Tokens of the residual stream: [class, distillation, registers..., patches...], each where the model has it.
export function tokens(config: ModelConfig): number {
  return positions(config) + towerOf(config).registerTokens;
}

// The rows a connector makes from one image: the patches pixel-shuffled by scaleFactor (Idefics3), the patch
// tokens or every token (LLaVA's select strategy); 0 without a connector.
export function imageTokens(config: ModelConfig): number {
  const t = towerOf(config);
  if (t.connector === "idefics3") return patches(config) / (t.scaleFactor * t.scaleFactor);
  if (t.connector === "llava") return t.visionFeatureSelectStrategy === "full" ? tokens(config) : patches(config);
  return 0;
}

// Tokens before the patches.
export function prefixTokens(config: ModelConfig): number {
  return tokens(config) - patches(config);
}

export interface OverLimit {
  field: keyof ModelConfig | "patches";
  value: number;
  limit: number;
  message: string; // "is 1000000, over the limit of 64 ..."; the caller names the field
}

// The first of a config's sizes over LIMITS, in O(1). The sizes must already be positive integers.
export function overLimit(c: ModelConfig): OverLimit | null {
  const over = (field: OverLimit["field"], value: number, limit: number, what = ""): OverLimit => ({
    field,
    value,
    limit,
    message: `is ${value}${what}, over the limit of ${limit} for a model a Worker can hold`,
  });
  for (const field of ["imageSize", "patchSize", "channels", "dim", "heads", "hidden", "layers", "classes"] as const) {
    if (c[field] > LIMITS[field]) return over(field, c[field], LIMITS[field]);
  }
  for (const field of ["registerTokens", "projection", "lmDim", "scaleFactor"] as const) {
    const value = c[field] ?? 0;
    if (value > LIMITS[field]) return over(field, value, LIMITS[field]);
  }
  const patches = (c.imageSize / c.patchSize) ** 2;
  if (patches > LIMITS.patches) return over("patches", patches, LIMITS.patches, " ((imageSize / patchSize)^2)");
  return null;
}

// A payload of `bytes` against LIMITS.payloadBytes; `what` says where the number comes from.
export function checkPayloadLimit(bytes: number, what: string): void {
  if (bytes > LIMITS.payloadBytes) {
    throw new BundleError(
      "over_limit",
      `${what} is ${bytes} bytes (${sizeText(bytes)}), ` +
        `over the limit of ${sizeText(LIMITS.payloadBytes)} of weights a Worker can hold`,
    );
  }
}

// A config in one line, for messages.
export function describe(c: ModelConfig): string {
  return (
    `${c.imageSize}px/${c.patchSize} ${c.channels}ch, dim ${c.dim}, heads ${c.heads}, hidden ${c.hidden}, ` +
    `layers ${c.layers}, classes ${c.classes}${c.distilled ? ", distilled" : ""}${towerText(c)}`
  );
}

// The tower fields that differ from a ViT's, for describe().
function towerText(c: ModelConfig): string {
  const t = towerOf(c);
  const parts = TOWER_FIELDS.filter((key) => t[key] !== TOWER_DEFAULTS[key]).map((key) => `${key} ${t[key]}`);
  return parts.length ? `, ${parts.join(", ")}` : "";
}
