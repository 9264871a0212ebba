// A vision-language model's LLM input embedding table as a bundle section (FORMAT.md, "The LLM's input
// embeddings"): the table's rows in int8 with one f32 scale each, as the text tower's token embedding is
// stored, and the tokenizer's strings so an answer can show a row as text. It is read only to answer which
// vocabulary rows an image token is nearest to, a piece of rows at a time; no engine binds it.
import { BundleError, LIMITS, type EmbeddingsConfig } from "./format.ts";
import { tensorPlan } from "./layout.ts";

export type EmbeddingsTensorKind =
  | { kind: "f32"; shape: number[] }
  | { kind: "i8"; shape: number[] } // the table's rows
  | { kind: "u32"; shape: number[] } // where each token's string starts in `tokens.text`
  | { kind: "u8"; bytes: number }; // the strings, UTF-8, one after another

export interface EmbeddingsLayoutEntry {
  name: string;
  offset: number;
  bytes: number;
  source: EmbeddingsTensorKind;
  slot: number; // -1: the host reads every tensor of this section
}

// Every tensor of the section in order, with its offset in the section.
export function embeddingsLayout(c: EmbeddingsConfig): { tensors: EmbeddingsLayoutEntry[]; length: number } {
  const { vocab, dim, tokensBytes } = c;
  const { tensors, push, f32, length } = tensorPlan<EmbeddingsTensorKind>(dim);
  push("embed_tokens.weight", vocab * dim, { kind: "i8", shape: [vocab, dim] }, -1);
  f32("embed_tokens.scale", [vocab], -1);
  if (tokensBytes > 0) {
    push("tokens.offsets", 4 * (vocab + 1), { kind: "u32", shape: [vocab + 1] }, -1);
    push("tokens.text", tokensBytes, { kind: "u8", bytes: tokensBytes }, -1);
  }
  return { tensors: tensors as EmbeddingsLayoutEntry[], length: length() };
}

// A LLM's vocabulary and width, with room: SmolVLM's 49,280 x 576, Llama 2's 32,064 x 4,096 (LLaVA 1.5),
// Llama 3's 128,256. The table is streamed, never held, so the section is bounded apart from the image
// payload (LIMITS.payloadBytes), by what one R2 object of a model reasonably carries.
export const EMBEDDINGS_LIMITS = {
  vocab: 512 * 1024,
  dim: LIMITS.lmDim,
  tokensBytes: 16 * 1024 * 1024,
  sectionBytes: 2048 * 1024 * 1024,
} as const;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

// An embeddings config whose sizes are within EMBEDDINGS_LIMITS.
export function checkEmbeddingsConfig(config: unknown, where: string): asserts config is EmbeddingsConfig {
  if (!isObject(config)) throw new BundleError("bad_header", `${where}.config is not an object`);
  for (const key of ["vocab", "dim", "tokensBytes"] as const) {
    const v = config[key];
    const least = key === "tokensBytes" ? 0 : 1;
    if (!Number.isInteger(v) || (v as number) < least) {
      throw new BundleError(
        "bad_header",
        `${where}.config.${key} must be an integer from ${least}, got ${JSON.stringify(v)}`,
      );
    }
    if ((v as number) > EMBEDDINGS_LIMITS[key])
      throw new BundleError(
        "over_limit",
        `${where}.config.${key} is ${v}, over the limit of ${EMBEDDINGS_LIMITS[key]}`,
      );
  }
  const length = embeddingsLayout(config as unknown as EmbeddingsConfig).length;
  if (length > EMBEDDINGS_LIMITS.sectionBytes) {
    throw new BundleError(
      "over_limit",
      `${where} is ${length} bytes, over the limit of ${EMBEDDINGS_LIMITS.sectionBytes} for an embedding table`,
    );
  }
}

// The strings of `ids` from the section's `tokens.offsets` and `tokens.text`.
export function tokenStrings(offsets: Uint32Array, text: Uint8Array, ids: readonly number[]): string[] {
  const utf8 = new TextDecoder();
  const count = offsets.length - 1;
  return ids.map((id) => (id >= 0 && id < count ? utf8.decode(text.subarray(offsets[id], offsets[id + 1])) : ""));
}

// The strings of a vocabulary as the section stores them: offsets [vocab + 1], then the UTF-8 bytes.
export function encodeTokens(tokens: readonly string[]): { offsets: Uint32Array; text: Uint8Array } {
  const utf8 = new TextEncoder();
  const encoded = tokens.map((t) => utf8.encode(t));
  const offsets = new Uint32Array(tokens.length + 1);
  encoded.forEach((e, i) => {
    offsets[i + 1] = offsets[i] + e.length;
  });
  const text = new Uint8Array(offsets[tokens.length]);
  encoded.forEach((e, i) => text.set(e, offsets[i]));
  return { offsets, text };
}
