// What every text tokenizer gives the text towers: a batch of texts to fixed-length ids and masks, as the
// checkpoint family's processor pads and truncates them.

// A tokenizer file (vocab.json, merges.txt, spiece.model, a serialised tokenizer) that cannot be read;
// the converter reports it against the checkpoint, the runtime against the bundle.
export class TokenizerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TokenizerError";
  }
}

export interface Encoded {
  inputIds: Int32Array[]; // (texts) of (maxLength)
  attentionMask: Uint8Array[]; // (texts) of (maxLength): 1 on the text's own tokens, 0 on padding
}

export interface TextTokenizer {
  readonly family: "clip" | "siglip";
  readonly maxLength: number; // positions per text: 77 for CLIP, 64 for SigLIP
  readonly vocabSize: number;
  // Ids of one text before the special tokens, truncation and padding.
  tokenize(text: string): number[];
  encode(texts: readonly string[]): Encoded;
}

// Writes `ids` (already truncated to fit) into a row of `maxLength`, padded with `padId`.
export function padRow(ids: readonly number[], maxLength: number, padId: number): [Int32Array, Uint8Array] {
  const row = new Int32Array(maxLength).fill(padId);
  const mask = new Uint8Array(maxLength);
  row.set(ids);
  mask.fill(1, 0, ids.length);
  return [row, mask];
}

// A special token in a hub tokenizer_config.json is a string or an AddedToken object ({"content": ...}).
export function tokenContent(value: unknown, fallback: string): string {
  if (typeof value === "string") return value;
  if (value !== null && typeof value === "object" && typeof (value as { content?: unknown }).content === "string") {
    return (value as { content: string }).content;
  }
  return fallback;
}

// Lowercase one character at a time, as both references do (Rust's Lowercase normalizer maps each char
// on its own; transformers' do_lower_case lowercases each regex match of `.+?`): a final capital sigma
// becomes σ, not ς.
export function lowerEachCharacter(s: string): string {
  let out = "";
  for (const ch of s) out += ch.toLowerCase();
  return out;
}

export function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
