// The payload: every tensor a config implies, declared once with its name, its size, its place in the
// payload (FORMAT.md, "Payload") and its slot in the engine's weight table (docs/ARCHITECTURE.md, "Weight
// table"). The writer, the reader and the engine host all take both orders from here, and every weight slot
// the engines bind is numbered here: the image model's and the text model's.
import { align64, LIMITS, positions, towerOf, type ModelConfig, type TensorEntry } from "./format.ts";
import { packedSizes } from "./pack.ts";

// What a writer must supply for one payload tensor.
export type TensorKind =
  | { kind: "f32"; shape: number[] }
  | { kind: "linear"; part: "weight" | "scale" | "wsum" | "bias"; n: number; k: number };

export interface LayoutEntry extends TensorEntry {
  source: TensorKind;
  slot: number; // its index in the engine's weight table
}

export interface Layout {
  tensors: LayoutEntry[];
  length: number; // payload bytes: end of the last tensor
}

const LINEAR_PARTS = ["weight", "scale", "wsum", "bias"] as const;

// Tensors laid out one after another, each on a 64-byte boundary, with the helpers both towers' layouts
// are written in: an f32 tensor, a LayerNorm's weight and bias, a Linear's four packed parts. `S` adds the
// kinds a layout has beyond these (the text section's int8 rows and tokenizer bytes).
export function tensorPlan<S extends { kind: string } = TensorKind>(dim: number) {
  const tensors: { name: string; offset: number; bytes: number; source: S | TensorKind; slot: number }[] = [];
  let length = 0;
  const push = (name: string, bytes: number, source: S | TensorKind, slot: number) => {
    const offset = align64(length);
    tensors.push({ name, offset, bytes, source, slot });
    length = offset + bytes;
  };
  const f32 = (name: string, shape: number[], slot: number) =>
    push(name, 4 * shape.reduce((a, b) => a * b, 1), { kind: "f32", shape }, slot);
  const norm = (name: string, slot: number) => {
    f32(`${name}.weight`, [dim], slot);
    f32(`${name}.bias`, [dim], slot + 1);
  };
  const linear = (name: string, k: number, n: number, slot: number) => {
    const sizes = packedSizes(n, k);
    LINEAR_PARTS.forEach((part, i) => push(`${name}.${part}`, sizes[part], { kind: "linear", part, n, k }, slot + i));
  };
  return { tensors, push, f32, norm, linear, length: () => length };
}

// The engine's weight slots (assembly/model.ts, SLOT_* and bindWeights): a fixed ABI order, not the
// payload's. The model-wide tensors first (a Linear takes four slots, a norm two), then LAYER_SLOTS per
// layer. A slot whose tensor the model has not (the distillation token and head of a plain ViT, the tower
// tensors of a classifier) stays empty.
export const SLOT = {
  patchEmbeddings: 0,
  clsToken: 4,
  distillationToken: 5,
  positionEmbeddings: 6,
  layernorm: 7,
  classifier: 9,
  distillationClassifier: 13,
  preLayrnorm: 17,
  registerTokens: 19,
  headProbe: 20,
  headInProjQuery: 21,
  headInProjKeyValue: 25,
  headOutProj: 29,
  headLayernorm: 33,
  headFc1: 35,
  headFc2: 39,
  visualProjection: 43,
  modalityProjection: 47,
  projectorLinear1: 51,
  projectorLinear2: 55,
} as const;
export const GLOBAL_SLOTS = 59;
export const LAYER_SLOT = {
  layernormBefore: 0,
  qkv: 2,
  attentionOutput: 6,
  layernormAfter: 10,
  intermediate: 12,
  output: 16,
  layerScale1: 20,
  layerScale2: 21,
} as const;
export const LAYER_SLOTS = 22;

// The text engine's weight slots (assembly/text.ts; text.ts lays the section out): the tower-wide tensors,
// then LAYER_SLOTS per layer numbered as LAYER_SLOT above (a text layer has no LayerScale).
export const TEXT_SLOT = {
  tokenEmbedding: 0,
  tokenEmbeddingScale: 1,
  positionEmbedding: 2,
  finalLayerNorm: 3,
  projection: 5,
} as const;
export const TEXT_GLOBAL_SLOTS = 9;

// Every payload tensor in FORMAT.md order with its offset and slot: the only place either order is written.
export function layout(config: ModelConfig): Layout {
  const { channels, patchSize, dim, hidden, layers, classes, distilled } = config;
  const t = towerOf(config);
  const { tensors, f32, norm, linear, length } = tensorPlan(dim);

  linear("embeddings.patch_embeddings.projection", channels * patchSize * patchSize, dim, SLOT.patchEmbeddings);
  if (t.classToken) f32("embeddings.cls_token", [dim], SLOT.clsToken);
  if (distilled) f32("embeddings.distillation_token", [dim], SLOT.distillationToken);
  if (t.registerTokens > 0) f32("embeddings.register_tokens", [t.registerTokens, dim], SLOT.registerTokens);
  f32("embeddings.position_embeddings", [positions(config), dim], SLOT.positionEmbeddings);
  if (t.preLayernorm) norm("pre_layrnorm", SLOT.preLayrnorm);
  for (let l = 0; l < layers; l++) {
    const p = `encoder.layer.${l}`;
    const slot = GLOBAL_SLOTS + LAYER_SLOTS * l;
    norm(`${p}.layernorm_before`, slot + LAYER_SLOT.layernormBefore);
    linear(`${p}.attention.qkv`, dim, 3 * dim, slot + LAYER_SLOT.qkv); // rows: query, key, value
    linear(`${p}.attention.output.dense`, dim, dim, slot + LAYER_SLOT.attentionOutput);
    if (t.layerScale) f32(`${p}.layer_scale1.lambda1`, [dim], slot + LAYER_SLOT.layerScale1);
    norm(`${p}.layernorm_after`, slot + LAYER_SLOT.layernormAfter);
    linear(`${p}.intermediate.dense`, dim, hidden, slot + LAYER_SLOT.intermediate);
    linear(`${p}.output.dense`, hidden, dim, slot + LAYER_SLOT.output);
    if (t.layerScale) f32(`${p}.layer_scale2.lambda1`, [dim], slot + LAYER_SLOT.layerScale2);
  }
  norm("layernorm", SLOT.layernorm);
  if (t.pooling === "map") {
    f32("head.probe", [dim], SLOT.headProbe);
    linear("head.attention.in_proj.query", dim, dim, SLOT.headInProjQuery);
    linear("head.attention.in_proj.key_value", dim, 2 * dim, SLOT.headInProjKeyValue); // rows: key, value
    linear("head.attention.out_proj", dim, dim, SLOT.headOutProj);
    norm("head.layernorm", SLOT.headLayernorm);
    linear("head.mlp.fc1", dim, hidden, SLOT.headFc1);
    linear("head.mlp.fc2", hidden, dim, SLOT.headFc2);
  }
  if (t.projection > 0) linear("visual_projection", dim, t.projection, SLOT.visualProjection);
  if (classes > 0) linear("classifier", dim, classes, SLOT.classifier);
  if (distilled) linear("distillation_classifier", dim, classes, SLOT.distillationClassifier);
  // the connector: Idefics3's projection of the pixel-shuffled tokens (scaleFactor^2 patches each), or
  // LLaVA's two-layer projector
  const shuffled = dim * t.scaleFactor * t.scaleFactor;
  if (t.connector === "idefics3")
    linear("connector.modality_projection.proj", shuffled, t.lmDim, SLOT.modalityProjection);
  if (t.connector === "llava") {
    linear("multi_modal_projector.linear_1", dim, t.lmDim, SLOT.projectorLinear1);
    linear("multi_modal_projector.linear_2", t.lmDim, t.lmDim, SLOT.projectorLinear2);
  }
  return { tensors: tensors as LayoutEntry[], length: length() };
}

// The tensor name in each of the engine's weight slots, null in a slot the model has no tensor for.
export function weightSlots(config: ModelConfig): (string | null)[] {
  const slots: (string | null)[] = new Array(GLOBAL_SLOTS + LAYER_SLOTS * config.layers).fill(null);
  for (const { name, slot } of layout(config).tensors) slots[slot] = name;
  return slots;
}

// Entries of layout(config), in O(1): the patch embedding Linear (4), class token, distillation token,
// registers, position embeddings, pre_layrnorm (2), 20 per layer (2 + 2 norm vectors, 4 Linears of 4) and
// two lambda1 with LayerScale, final norm (2), the pooling head (probe, 5 Linears, a norm), the projection
// and the heads (4 each), the connector's Linears (Idefics3 one, LLaVA two).
export function tensorCount(c: ModelConfig): number {
  const t = towerOf(c);
  const flag = (b: boolean) => (b ? 1 : 0);
  return (
    4 +
    flag(t.classToken) +
    flag(c.distilled) +
    flag(t.registerTokens > 0) +
    1 +
    2 * flag(t.preLayernorm) +
    (20 + 2 * flag(t.layerScale)) * c.layers +
    2 +
    23 * flag(t.pooling === "map") +
    4 * flag(t.projection > 0) +
    4 * flag(c.classes > 0) +
    4 * flag(c.distilled) +
    4 * flag(t.connector === "idefics3") +
    8 * flag(t.connector === "llava")
  );
}

// The most entries a bundle's tensor table can have: every token, head and norm a tower may have, at
// LIMITS.layers (1,455).
export const MAX_TENSORS = tensorCount({
  imageSize: 1,
  patchSize: 1,
  channels: 1,
  dim: 1,
  heads: 1,
  hidden: 1,
  layers: LIMITS.layers,
  classes: 1,
  eps: 1e-6,
  distilled: true,
  preLayernorm: true,
  registerTokens: 1,
  layerScale: true,
  pooling: "map",
  projection: 1,
});

// The tensors that hold f32 values: embeddings, norms, and each Linear's scale and bias (its weight is
// bytes and its wsum integers). These must be finite for the forward pass to be.
export function floatTensors(config: ModelConfig): LayoutEntry[] {
  return layout(config).tensors.filter(
    ({ source }) => source.kind === "f32" || source.part === "scale" || source.part === "bias",
  );
}
