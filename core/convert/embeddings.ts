// The LLM's input embedding table of a vision-language checkpoint (Idefics3 / SmolVLM, LLaVA) as the
// bundle's "lm_embeddings" section (core/bundle/embeddings.ts): the table quantized per row to int8 a piece
// of rows at a time, as the text tower's token embedding is, and the tokenizer's strings from tokenizer.json
// so an answer can name the rows an image token is nearest to. Written only when the conversion asks for it
// (`edgevit convert --lm-embeddings`): the image tower never reads it.
import { encodeTokens } from "../bundle/embeddings.ts";
import type { EmbeddingsParts, ModelConfig } from "../bundle/format.ts";
import { ConvertError } from "./recipe.ts";
import type { TensorSource } from "./safetensors.ts";
import { EMBEDDING_ROWS, quantizeRows, type TokenizerSource } from "./text.ts";
import type { TowerLayout } from "./towers.ts";

// Where each layout keeps the LLM's embed_tokens: the hub's names, the newer transformers layout second.
const TABLES: Partial<Record<TowerLayout, string[]>> = {
  "hf-idefics3": ["model.text_model.embed_tokens.weight", "model.language_model.embed_tokens.weight"],
  "hf-llava": ["language_model.model.embed_tokens.weight", "model.language_model.embed_tokens.weight"],
};

export interface LmEmbeddings {
  section: EmbeddingsParts;
  table: string; // the checkpoint's embed_tokens
  tokens: string[] | null; // each id's string, from tokenizer.json; null without one
  files: string[]; // the tokenizer files read
}

type Json = Record<string, unknown>;

// GPT-2's byte-level alphabet (tokenizers' ByteLevel): the printable bytes stand for themselves, the others
// for code points from 256 on, in byte order.
function byteLevelDecoder(): Map<string, number> {
  const map = new Map<string, number>();
  let next = 256;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    map.set(String.fromCodePoint(printable ? b : next++), b);
  }
  return map;
}

// A token as text: a byte-level token's bytes as UTF-8 ("Ġcat" -> " cat"), a SentencePiece piece with its
// "▁" as the space it stands for ("▁cat" -> " cat").
function readable(token: string, bytes: Map<string, number> | null): string {
  if (!bytes) return token.replaceAll("\u2581", " ");
  const out: number[] = [];
  for (const ch of token) {
    const b = bytes.get(ch);
    if (b === undefined) return token; // an added token written as it is ("<image>")
    out.push(b);
  }
  return new TextDecoder().decode(new Uint8Array(out));
}

// Each id's string from tokenizer.json: model.vocab ({token: id}, or Unigram's [[piece, score]]) and the
// added tokens; an id without a string gets "".
export function vocabularyStrings(tokenizer: Json, vocab: number, where: string): string[] {
  const model = tokenizer.model as Json | undefined;
  const table = model?.vocab;
  if (!table || typeof table !== "object") throw new ConvertError(`${where}: tokenizer.json has no model.vocab`);
  const bytes = JSON.stringify(tokenizer.decoder ?? null).includes('"ByteLevel"') ? byteLevelDecoder() : null;
  const out = new Array<string>(vocab).fill("");
  const put = (token: unknown, id: unknown, added: boolean) => {
    if (typeof token !== "string" || !Number.isInteger(id) || (id as number) < 0) return;
    if ((id as number) >= vocab)
      throw new ConvertError(
        `${where}: tokenizer.json's token ${JSON.stringify(token)} has id ${id}, past the LLM's ${vocab} rows`,
      );
    out[id as number] = added ? token : readable(token, bytes);
  };
  if (Array.isArray(table)) table.forEach((entry, id) => put(Array.isArray(entry) ? entry[0] : undefined, id, false));
  else for (const [token, id] of Object.entries(table as Json)) put(token, id, false);
  for (const added of (tokenizer.added_tokens as Json[] | undefined) ?? []) put(added.content, added.id, true);
  return out;
}

// The table and strings of `layout`'s LLM, checked against the connector's width.
export async function lmEmbeddingsFor(
  source: TokenizerSource,
  layout: string,
  config: ModelConfig,
  ckpt: TensorSource,
): Promise<LmEmbeddings> {
  const names = TABLES[layout as TowerLayout];
  if (!names) {
    throw new ConvertError(
      `${source.checkpoint} is a ${layout} checkpoint: only a vision-language model (Idefics3 / SmolVLM, LLaVA) has an LLM embedding table to carry`,
    );
  }
  const table = names.find((n) => ckpt.has(n));
  if (!table) throw new ConvertError(`model.safetensors has no LLM input embedding table (${names.join(" or ")})`);
  const [vocab, dim] = ckpt.info(table).shape;
  if (ckpt.info(table).shape.length !== 2 || dim !== config.lmDim) {
    throw new ConvertError(
      `model.safetensors: ${table} has shape [${ckpt.info(table).shape.join(", ")}]; the connector's width is ${config.lmDim}`,
    );
  }
  const json = await source.file("tokenizer.json");
  let tokens: string[] | null = null;
  if (json) {
    let parsed: Json;
    try {
      parsed = JSON.parse(new TextDecoder().decode(json)) as Json;
    } catch (e) {
      throw new ConvertError(`${source.checkpoint}: tokenizer.json is not JSON: ${(e as Error).message}`);
    }
    tokens = vocabularyStrings(parsed, vocab, source.checkpoint);
  }
  const tokensBytes = tokens ? encodeTokens(tokens).text.length : 0;
  return {
    section: { name: "lm_embeddings", kind: "lm-embeddings", config: { vocab, dim, tokensBytes } },
    table,
    tokens,
    files: json ? ["tokenizer.json"] : [],
  };
}

// What lmEmbeddingTensors holds at once: the int8 table, its scales and one piece of rows (raw and decoded).
export function lmEmbeddingsPeakBytes(e: LmEmbeddings, ckpt: TensorSource): number {
  const { vocab, dim } = e.section.config;
  const info = ckpt.info(e.table);
  const rows = Math.min(EMBEDDING_ROWS, vocab);
  return vocab * dim + 4 * vocab + ((info.end - info.begin) / vocab) * rows + 4 * rows * dim;
}

// The section's tensors in layout order (core/bundle/embeddings.ts).
export async function* lmEmbeddingTensors(
  e: LmEmbeddings,
  readRows: (name: string, first: number, end: number) => Promise<Float32Array>,
): AsyncGenerator<[string, ArrayBufferView]> {
  const { vocab, dim } = e.section.config;
  const q = new Int8Array(vocab * dim);
  const scale = new Float32Array(vocab);
  for (let first = 0; first < vocab; first += EMBEDDING_ROWS) {
    const end = Math.min(vocab, first + EMBEDDING_ROWS);
    quantizeRows(await readRows(e.table, first, end), dim, q, scale, first);
  }
  yield ["embed_tokens.weight", q];
  yield ["embed_tokens.scale", scale];
  if (e.tokens) {
    const { offsets, text } = encodeTokens(e.tokens);
    yield ["tokens.offsets", offsets];
    yield ["tokens.text", text];
  }
}
