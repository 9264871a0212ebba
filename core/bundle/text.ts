// A text tower as a bundle section (FORMAT.md, "Sections"): its config, the tensors it implies in their
// order and weight slots, and the checks a reader makes. The image payload's layout is layout.ts; the text
// tower shares its encoder layer (the same tensor names and per-layer slots) and adds the token embedding
// table (int8 rows, one f32 scale each), the position embeddings, final_layer_norm, the projection and the
// tokenizer's serialised bytes (core/text/format.ts).
import {
  BundleError,
  HIDDEN_ACTS,
  LIMITS,
  SECTION_KINDS,
  TEXT_POOLINGS,
  align64,
  type Section,
  type SectionKind,
  type TextConfig,
  type TextPooling,
  type TextSection,
} from "./format.ts";
import { LAYER_SLOT, LAYER_SLOTS, TEXT_GLOBAL_SLOTS, TEXT_SLOT, tensorPlan } from "./layout.ts";

type SectionPlace = { offset: number; length: number };

export { SECTION_KINDS, TEXT_GLOBAL_SLOTS, TEXT_POOLINGS, TEXT_SLOT };
export type { SectionKind, TextConfig, TextPooling, TextSection };

export type TextTensorKind =
  | { kind: "f32"; shape: number[] }
  | { kind: "i8"; shape: number[] } // the token embedding rows
  | { kind: "u8"; bytes: number } // the tokenizer
  | { kind: "linear"; part: "weight" | "scale" | "wsum" | "bias"; n: number; k: number };

export interface TextLayoutEntry {
  name: string;
  offset: number;
  bytes: number;
  source: TextTensorKind;
  slot: number; // the text engine's weight slot; -1 for the tokenizer, which the host reads
}

// Every tensor of a text section in order, with its offset in the section and its slot.
export function textLayout(c: TextConfig): { tensors: TextLayoutEntry[]; length: number } {
  const { vocab, positions, dim, hidden, layers, projection } = c;
  const { tensors, push, f32, norm, linear, length } = tensorPlan<TextTensorKind>(dim);
  push("embeddings.token_embedding.weight", vocab * dim, { kind: "i8", shape: [vocab, dim] }, TEXT_SLOT.tokenEmbedding);
  f32("embeddings.token_embedding.scale", [vocab], TEXT_SLOT.tokenEmbeddingScale);
  f32("embeddings.position_embedding", [positions, dim], TEXT_SLOT.positionEmbedding);
  for (let l = 0; l < layers; l++) {
    const p = `encoder.layer.${l}`;
    const slot = TEXT_GLOBAL_SLOTS + LAYER_SLOTS * l;
    norm(`${p}.layernorm_before`, slot + LAYER_SLOT.layernormBefore);
    linear(`${p}.attention.qkv`, dim, 3 * dim, slot + LAYER_SLOT.qkv);
    linear(`${p}.attention.output.dense`, dim, dim, slot + LAYER_SLOT.attentionOutput);
    norm(`${p}.layernorm_after`, slot + LAYER_SLOT.layernormAfter);
    linear(`${p}.intermediate.dense`, dim, hidden, slot + LAYER_SLOT.intermediate);
    linear(`${p}.output.dense`, hidden, dim, slot + LAYER_SLOT.output);
  }
  norm("final_layer_norm", TEXT_SLOT.finalLayerNorm);
  linear("projection", dim, projection, TEXT_SLOT.projection);
  push("tokenizer", c.tokenizerBytes, { kind: "u8", bytes: c.tokenizerBytes }, -1);
  return { tensors: tensors as TextLayoutEntry[], length: length() };
}

// The tensor name in each of the text engine's weight slots.
export function textWeightSlots(c: TextConfig): (string | null)[] {
  const slots: (string | null)[] = new Array(TEXT_GLOBAL_SLOTS + LAYER_SLOTS * c.layers).fill(null);
  for (const { name, slot } of textLayout(c).tensors) if (slot >= 0) slots[slot] = name;
  return slots;
}

// Texts a tower takes at most per sequence and the vocabulary it may have: 77 and 49,408 for CLIP, 64 and
// 256,000 for SigLIP 2 (Gemma's vocabulary), with room.
export const TEXT_LIMITS = { positions: 1024, vocab: 512 * 1024, tokenizerBytes: 16 * 1024 * 1024 } as const;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

function bad(message: string): never {
  throw new BundleError("bad_header", message);
}

// A text config the engine can plan for, each size within LIMITS (the encoder's) and TEXT_LIMITS.
export function checkTextConfig(config: unknown, where: string): asserts config is TextConfig {
  if (!isObject(config)) bad(`${where}.config is not an object`);
  const bounds: Record<string, number> = {
    vocab: TEXT_LIMITS.vocab,
    positions: TEXT_LIMITS.positions,
    dim: LIMITS.dim,
    heads: LIMITS.heads,
    hidden: LIMITS.hidden,
    layers: LIMITS.layers,
    projection: LIMITS.projection,
    tokenizerBytes: TEXT_LIMITS.tokenizerBytes,
  };
  for (const [key, limit] of Object.entries(bounds)) {
    const v = config[key];
    if (!Number.isInteger(v) || (v as number) <= 0)
      bad(`${where}.config.${key} must be a positive integer, got ${JSON.stringify(v)}`);
    if ((v as number) > limit)
      throw new BundleError("over_limit", `${where}.config.${key} is ${v}, over the limit of ${limit}`);
  }
  const c = config as unknown as TextConfig;
  if (c.dim % c.heads !== 0) bad(`${where}.config.dim ${c.dim} is not divisible by heads ${c.heads}`);
  if (!(typeof c.eps === "number" && c.eps > 0 && Number.isFinite(c.eps)))
    bad(`${where}.config.eps must be a positive number`);
  if (!HIDDEN_ACTS.includes(c.hiddenAct)) bad(`${where}.config.hiddenAct ${JSON.stringify(c.hiddenAct)} is unknown`);
  if (typeof c.causal !== "boolean") bad(`${where}.config.causal must be true or false`);
  if (!TEXT_POOLINGS.includes(c.pooling)) bad(`${where}.config.pooling ${JSON.stringify(c.pooling)} is unknown`);
  if (!Number.isInteger(c.eosTokenId) || c.eosTokenId < 0) bad(`${where}.config.eosTokenId must be an integer from 0`);
  for (const key of ["logitScale", "logitBias"] as const) {
    if (typeof c[key] !== "number" || !Number.isFinite(c[key])) bad(`${where}.config.${key} must be a finite number`);
  }
}

// A text tower's section among a header's sections (the others are tables, embeddings.ts).
export function textSectionNamed(sections: readonly Section[] | undefined, name: string): TextSection | undefined {
  return sections?.find((s): s is TextSection => s.name === name && s.kind !== "lm-embeddings");
}

// The sections follow the image payload contiguously, each at the next multiple of 64: the first at
// align64(payloadOffset + payload.length).
export function checkSectionPlacement(sections: readonly SectionPlace[], payloadEnd: number): void {
  let at = align64(payloadEnd);
  sections.forEach((s, i) => {
    if (s.offset !== at) bad(`header.sections[${i}].offset is ${s.offset}; it follows the bytes before it at ${at}`);
    at = align64(s.offset + s.length);
  });
}

// The end of the file a header with sections describes.
export function fileEnd(sections: readonly SectionPlace[], payloadEnd: number): number {
  const last = sections[sections.length - 1];
  return last ? last.offset + last.length : payloadEnd;
}

// The pooled position of one sequence of ids (its own tokens, before any padding), as the text tower pools.
export function poolIndex(c: TextConfig, ids: ArrayLike<number>): number {
  if (c.pooling === "last") return ids.length - 1;
  let at = 0;
  if (c.pooling === "argmax") {
    for (let i = 1; i < ids.length; i++) if (ids[i] > ids[at]) at = i;
    return at;
  }
  for (let i = 0; i < ids.length; i++) if (ids[i] === c.eosTokenId) return i;
  // transformers' argmax over an all-false comparison: position 0
  return at;
}
