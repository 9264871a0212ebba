// The payload: every tensor a config implies, declared once with its name, its size, its place in the
// payload (FORMAT.md, "Payload") and its slot in the engine's weight table (docs/ARCHITECTURE.md, "Weight
// table"). The writer, the reader and the engine host all take both orders from here.
import { align64, tokens, type ModelConfig, type TensorEntry } from "./format.ts";
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

// The engine's weight slots (assembly/model.ts, bindWeights): a fixed ABI order, not the payload's. The
// model-wide tensors first (a Linear takes four slots, a norm two), then LAYER_SLOTS per layer. The slots
// of the distillation token and head stay empty in a model without them.
const SLOT = {
  patchEmbeddings: 0,
  clsToken: 4,
  distillationToken: 5,
  positionEmbeddings: 6,
  layernorm: 7,
  classifier: 9,
  distillationClassifier: 13,
} as const;
const GLOBAL_SLOTS = 17;
const LAYER_SLOT = {
  layernormBefore: 0,
  qkv: 2,
  attentionOutput: 6,
  layernormAfter: 10,
  intermediate: 12,
  output: 16,
} as const;
const LAYER_SLOTS = 20;

// Every payload tensor in FORMAT.md order with its offset and slot: the only place either order is written.
export function layout(config: ModelConfig): Layout {
  const { channels, patchSize, dim, hidden, layers, classes, distilled } = config;
  const out: LayoutEntry[] = [];
  let offset = 0;
  const push = (name: string, bytes: number, source: TensorKind, slot: number) => {
    offset = align64(offset);
    out.push({ name, offset, bytes, source, slot });
    offset += bytes;
  };
  const f32 = (name: string, shape: number[], slot: number) =>
    push(name, 4 * shape.reduce((a, b) => a * b, 1), { kind: "f32", shape }, slot);
  const norm = (name: string, slot: number) => {
    f32(`${name}.weight`, [dim], slot);
    f32(`${name}.bias`, [dim], slot + 1);
  };
  const linear = (name: string, k: number, n: number, slot: number) => {
    const sizes = packedSizes(n, k);
    LINEAR_PARTS.forEach((part, i) => {
      push(`${name}.${part}`, sizes[part], { kind: "linear", part, n, k }, slot + i);
    });
  };

  linear("embeddings.patch_embeddings.projection", channels * patchSize * patchSize, dim, SLOT.patchEmbeddings);
  f32("embeddings.cls_token", [dim], SLOT.clsToken);
  if (distilled) f32("embeddings.distillation_token", [dim], SLOT.distillationToken);
  f32("embeddings.position_embeddings", [tokens(config), dim], SLOT.positionEmbeddings);
  for (let l = 0; l < layers; l++) {
    const p = `encoder.layer.${l}`;
    const slot = GLOBAL_SLOTS + LAYER_SLOTS * l;
    norm(`${p}.layernorm_before`, slot + LAYER_SLOT.layernormBefore);
    linear(`${p}.attention.qkv`, dim, 3 * dim, slot + LAYER_SLOT.qkv); // rows: query, key, value
    linear(`${p}.attention.output.dense`, dim, dim, slot + LAYER_SLOT.attentionOutput);
    norm(`${p}.layernorm_after`, slot + LAYER_SLOT.layernormAfter);
    linear(`${p}.intermediate.dense`, dim, hidden, slot + LAYER_SLOT.intermediate);
    linear(`${p}.output.dense`, hidden, dim, slot + LAYER_SLOT.output);
  }
  norm("layernorm", SLOT.layernorm);
  linear("classifier", dim, classes, SLOT.classifier);
  if (distilled) linear("distillation_classifier", dim, classes, SLOT.distillationClassifier);
  return { tensors: out, length: offset };
}

// The tensor name in each of the engine's weight slots, null in a slot the model has no tensor for.
export function weightSlots(config: ModelConfig): (string | null)[] {
  const slots: (string | null)[] = new Array(GLOBAL_SLOTS + LAYER_SLOTS * config.layers).fill(null);
  for (const { name, slot } of layout(config).tensors) slots[slot] = name;
  return slots;
}

// Entries of layout(config), in O(1): the patch embedding Linear (4), class token, distillation token,
// position embeddings, 20 per layer (2 + 2 norm vectors, 4 Linears of 4), final norm (2), the heads (4 each).
export function tensorCount(c: ModelConfig): number {
  return 4 + 1 + (c.distilled ? 1 : 0) + 1 + 20 * c.layers + 2 + 4 + (c.distilled ? 4 : 0);
}

// The tensors that hold f32 values: embeddings, norms, and each Linear's scale and bias (its weight is
// bytes and its wsum integers). These must be finite for the forward pass to be.
export function floatTensors(config: ModelConfig): LayoutEntry[] {
  return layout(config).tensors.filter(
    ({ source }) => source.kind === "f32" || source.part === "scale" || source.part === "bias",
  );
}
