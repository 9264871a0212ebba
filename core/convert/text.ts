// The text tower of a two-tower checkpoint (CLIPModel, SiglipModel) as a bundle section (core/bundle/text.ts):
// text_config with each config class's defaults, the tensors mapped from the hub's names, the token
// embedding table quantized per row to int8, and the tokenizer from the checkpoint's own files (CLIP:
// vocab.json and merges.txt; SigLIP: spiece.model; tokenizer_config.json with either) in core/text's
// serialised form. Runtime-neutral, as convert.ts: the files come through its CheckpointSource.
import { HIDDEN_ACTS, type HiddenAct, type TextParts } from "../bundle/format.ts";
import { packLinear, type PackedLinear } from "../bundle/pack.ts";
import { type TextConfig, textLayout } from "../bundle/text.ts";
import {
  loadClipTokenizer,
  loadSiglipTokenizer,
  type Tokenizer,
  TokenizerError,
  tokenizerToBytes,
} from "../text/index.ts";
import { ConvertError, concatRows, Recipes, required } from "./recipe.ts";
import type { TensorSource } from "./safetensors.ts";
import { positiveInt } from "./towers.ts";

// transformers' CLIPTextConfig and SiglipTextConfig defaults: the hub's files leave out what equals them.
const CLIP_TEXT_DEFAULTS = {
  vocab_size: 49408,
  hidden_size: 512,
  intermediate_size: 2048,
  num_hidden_layers: 12,
  num_attention_heads: 8,
  max_position_embeddings: 77,
  hidden_act: "quick_gelu",
  layer_norm_eps: 1e-5,
  eos_token_id: 49407,
};
const SIGLIP_TEXT_DEFAULTS = {
  vocab_size: 32000,
  hidden_size: 768,
  intermediate_size: 3072,
  num_hidden_layers: 12,
  num_attention_heads: 12,
  max_position_embeddings: 64,
  hidden_act: "gelu_pytorch_tanh",
  layer_norm_eps: 1e-6,
  eos_token_id: 1,
};
// CLIPTextTransformer: configs with this eos_token_id (openai's) pool at the largest id instead.
const LEGACY_EOS_TOKEN_ID = 2;

type Json = Record<string, unknown>;

// Where the tokenizer files come from: convert.ts's CheckpointSource.
export interface TokenizerSource {
  checkpoint: string;
  file(file: string): Promise<Uint8Array | null>;
}

// The tokenizer files read, in the order the bundle's source record lists them.
export const TOKENIZER_FILES = ["vocab.json", "merges.txt", "spiece.model", "tokenizer_config.json"];

export interface TextTower {
  section: TextParts;
  tokenizer: Tokenizer;
  files: string[]; // the tokenizer files it was made from (TOKENIZER_FILES' order)
  recipes: Recipes; // every f32 and Linear tensor of the section; the token embedding and tokenizer apart
  tokenEmbedding: string; // the checkpoint's token embedding table
}

function withDefaults<T extends Record<string, unknown>>(defaults: T, cfg: unknown): T {
  const out: Record<string, unknown> = { ...defaults };
  for (const [k, v] of Object.entries((cfg ?? {}) as Json)) if (v !== null && v !== undefined) out[k] = v;
  return out as T;
}

// The checkpoint's optional small files, each read once; `read` lists the ones it had.
class TokenizerFiles {
  readonly read = new Set<string>();
  readonly source: TokenizerSource;
  constructor(source: TokenizerSource) {
    this.source = source;
  }

  async bytes(name: string): Promise<Uint8Array | null> {
    const bytes = await this.source.file(name);
    if (bytes) this.read.add(name);
    return bytes;
  }

  async config(): Promise<Json | undefined> {
    const bytes = await this.bytes("tokenizer_config.json");
    if (!bytes) return undefined;
    try {
      return JSON.parse(new TextDecoder().decode(bytes)) as Json;
    } catch (e) {
      throw new ConvertError(`${this.source.checkpoint}: tokenizer_config.json is not JSON: ${(e as Error).message}`);
    }
  }
}

// The tokenizer files a family needs; null when the checkpoint has none of them (an image-only bundle).
async function readTokenizer(
  files: TokenizerFiles,
  family: "clip" | "siglip",
  positions: number,
): Promise<Tokenizer | null> {
  const where = files.source.checkpoint;
  try {
    if (family === "clip") {
      const vocab = await files.bytes("vocab.json");
      const merges = await files.bytes("merges.txt");
      if (!vocab && !merges) return null;
      if (!vocab || !merges) throw new ConvertError(`${where}: a CLIP tokenizer needs both vocab.json and merges.txt`);
      const text = new TextDecoder();
      const config = await files.config();
      return loadClipTokenizer({
        vocab: text.decode(vocab),
        merges: text.decode(merges),
        config,
        maxLength: positions,
      });
    }
    const spiece = await files.bytes("spiece.model");
    if (!spiece) return null;
    return loadSiglipTokenizer({ spiece, config: await files.config(), maxLength: positions });
  } catch (e) {
    if (e instanceof TokenizerError) throw new ConvertError(`${where}: ${e.message}`);
    throw e;
  }
}

function hiddenAct(v: unknown): HiddenAct {
  if (!HIDDEN_ACTS.includes(v as HiddenAct)) {
    throw new ConvertError(`config.json: text_config.hidden_act ${JSON.stringify(v)} is not one the engine computes`);
  }
  return v as HiddenAct;
}

// A scalar parameter of the checkpoint (logit_scale, logit_bias: shape [] or [1]).
async function scalar(ckpt: TensorSource, name: string): Promise<number> {
  const data = await ckpt.read(name);
  if (data.length !== 1 || !Number.isFinite(data[0]))
    throw new ConvertError(`model.safetensors: ${name} must be one finite number`);
  return data[0];
}

// The text tower of a CLIPModel or SiglipModel checkpoint, or null when the checkpoint has no tokenizer
// files (the bundle then holds the image tower alone).
export async function textTowerFor(source: TokenizerSource, cfg: Json, ckpt: TensorSource): Promise<TextTower | null> {
  const family = cfg.model_type === "clip" ? "clip" : cfg.model_type === "siglip" ? "siglip" : null;
  if (!family) return null;
  const t = withDefaults(family === "clip" ? CLIP_TEXT_DEFAULTS : SIGLIP_TEXT_DEFAULTS, cfg.text_config);
  const positions = positiveInt(t.max_position_embeddings, "text_config.max_position_embeddings");
  const files = new TokenizerFiles(source);
  const tokenizer = await readTokenizer(files, family, positions);
  if (!tokenizer) return null;
  const dim = positiveInt(t.hidden_size, "text_config.hidden_size");
  const vocab = positiveInt(t.vocab_size, "text_config.vocab_size");
  const m = "text_model.";
  const head = family === "clip" ? "text_projection" : `${m}head`;
  if (!ckpt.has(`${head}.weight`)) throw new ConvertError(`model.safetensors: no ${head}.weight for the text tower`);
  const projection = ckpt.info(`${head}.weight`).shape[0];
  const eosTokenId = Number(t.eos_token_id);
  const config: TextConfig = {
    vocab,
    positions,
    dim,
    heads: positiveInt(t.num_attention_heads, "text_config.num_attention_heads"),
    hidden: positiveInt(t.intermediate_size, "text_config.intermediate_size"),
    layers: positiveInt(t.num_hidden_layers, "text_config.num_hidden_layers"),
    eps: Number(t.layer_norm_eps),
    hiddenAct: hiddenAct(t.hidden_act),
    causal: family === "clip",
    pooling: family === "siglip" ? "last" : eosTokenId === LEGACY_EOS_TOKEN_ID ? "argmax" : "eos",
    eosTokenId,
    projection,
    logitScale: await scalar(ckpt, "logit_scale"),
    logitBias: family === "siglip" ? await scalar(ckpt, "logit_bias") : 0,
    tokenizerBytes: tokenizerToBytes(tokenizer).length,
  };
  if (tokenizer.vocabSize > vocab) {
    throw new ConvertError(
      `the tokenizer has ${tokenizer.vocabSize} tokens, more than the text tower's ${vocab} embeddings`,
    );
  }
  if (config.dim % config.heads !== 0)
    throw new ConvertError(`config.json: text_config.hidden_size ${dim} is not divisible by its heads`);
  const r = new Recipes();
  r.f32("embeddings.position_embedding", `${m}embeddings.position_embedding.weight`, [positions, dim]);
  for (let l = 0; l < config.layers; l++) {
    const s = `${m}encoder.layers.${l}.`,
      p = `encoder.layer.${l}`;
    r.norm(`${p}.layernorm_before`, `${s}layer_norm1`, dim);
    const a = `${s}self_attn.`;
    r.linear(`${p}.attention.qkv`, [`${a}q_proj`, `${a}k_proj`, `${a}v_proj`], dim, 3 * dim);
    r.linear(`${p}.attention.output.dense`, [`${a}out_proj`], dim, dim);
    r.norm(`${p}.layernorm_after`, `${s}layer_norm2`, dim);
    r.linear(`${p}.intermediate.dense`, [`${s}mlp.fc1`], dim, config.hidden);
    r.linear(`${p}.output.dense`, [`${s}mlp.fc2`], config.hidden, dim);
  }
  r.norm("final_layer_norm", `${m}final_layer_norm`, dim);
  r.linear("projection", [head], dim, projection, family === "clip"); // CLIP's text_projection has no bias
  const tokenEmbedding = `${m}embeddings.token_embedding.weight`;
  const missing = [tokenEmbedding, ...[...r.values()].flatMap(required)].filter((n) => !ckpt.has(n));
  if (missing.length) {
    throw new ConvertError(`model.safetensors lacks the text tower's ${missing.slice(0, 8).join(", ")}`);
  }
  const shape = ckpt.info(tokenEmbedding).shape;
  if (shape[0] !== vocab || shape[1] !== dim) {
    throw new ConvertError(
      `model.safetensors: ${tokenEmbedding} has shape [${shape.join(", ")}], config.json implies [${vocab}, ${dim}]`,
    );
  }
  const kind = family === "clip" ? "clip-text" : "siglip-text";
  return {
    section: { name: "text", kind, config },
    tokenizer,
    files: TOKENIZER_FILES.filter((f) => files.read.has(f)),
    recipes: r,
    tokenEmbedding,
  };
}

// Round to nearest, ties away from zero, as pack.ts quantizes.
const roundHalfAway = (x: number) => Math.sign(x) * Math.floor(Math.abs(x) + 0.5);

// The token embedding table [vocab][dim] as int8 rows, each with its scale max|row| / 127: a quarter of
// its f32 size (CLIP B/32's 25M parameters take 24 MiB instead of 96). `table` holds rows first.., written
// into q and scale from row `first` on.
export function quantizeRows(table: Float32Array, dim: number, q: Int8Array, scale: Float32Array, first = 0): void {
  const rows = table.length / dim;
  for (let r = 0; r < rows; r++) {
    const row = table.subarray(r * dim, (r + 1) * dim);
    let maxAbs = 0;
    for (let d = 0; d < dim; d++) maxAbs = Math.max(maxAbs, Math.abs(row[d]));
    const s = Math.fround(maxAbs / 127);
    scale[first + r] = s;
    if (s === 0) continue;
    const out = (first + r) * dim;
    for (let d = 0; d < dim; d++) q[out + d] = Math.max(-127, Math.min(127, roundHalfAway(row[d] / s)));
  }
}

// Rows of the token embedding read at a time: the whole table in f32, beside its raw bytes, would be
// several times the int8 table (CLIP B/32's: 2 x 97 MiB beside 24), more than the Worker's import holds.
export const EMBEDDING_ROWS = 2048;

// What textTensors holds at once for the token embedding: the int8 table, its scales and one piece of rows
// (raw and decoded).
export function textPeakBytes(tower: TextTower, ckpt: TensorSource): number {
  const { vocab, dim } = tower.section.config;
  const info = ckpt.info(tower.tokenEmbedding);
  const rows = Math.min(EMBEDDING_ROWS, vocab);
  return vocab * dim + 4 * vocab + ((info.end - info.begin) / vocab) * rows + 4 * rows * dim;
}

// How textTensors reads the checkpoint: finite f32 values (convert.ts refuses NaN and Inf), whole or by rows.
export interface TextReader {
  read(name: string): Promise<Float32Array>;
  readRows(name: string, first: number, end: number): Promise<Float32Array>;
  has(name: string): boolean; // a bias
}

// The section's tensors in layout order, each read and packed as it is reached.
export async function* textTensors(tower: TextTower, reader: TextReader): AsyncGenerator<[string, ArrayBufferView]> {
  const c = tower.section.config;
  let packed: PackedLinear | null = null;
  let scale: Float32Array | null = null;
  for (const entry of textLayout(c).tensors) {
    const source = entry.source;
    if (source.kind === "i8") {
      const q = new Int8Array(c.vocab * c.dim);
      scale = new Float32Array(c.vocab);
      for (let first = 0; first < c.vocab; first += EMBEDDING_ROWS) {
        const end = Math.min(c.vocab, first + EMBEDDING_ROWS);
        quantizeRows(await reader.readRows(tower.tokenEmbedding, first, end), c.dim, q, scale, first);
      }
      yield [entry.name, q];
    } else if (entry.name === "embeddings.token_embedding.scale") {
      yield [entry.name, scale as Float32Array];
    } else if (source.kind === "u8") {
      yield [entry.name, tokenizerToBytes(tower.tokenizer)];
    } else if (source.kind === "f32") {
      const r = tower.recipes.get(entry.name);
      if (r?.kind !== "f32") throw new Error(`no recipe for ${entry.name}`);
      yield [entry.name, await reader.read(r.from)];
    } else {
      const module = entry.name.slice(0, entry.name.lastIndexOf("."));
      if (source.part === "weight") {
        const r = tower.recipes.get(module);
        if (r?.kind !== "linear") throw new Error(`no recipe for ${module}`);
        const rows = await Promise.all(r.weights.map((n) => reader.read(n)));
        const weight = rows.length === 1 ? rows[0] : concatRows(rows);
        const biases = r.biases.every((n) => reader.has(n))
          ? await Promise.all(r.biases.map((n) => reader.read(n)))
          : null;
        packed = packLinear(weight, biases ? concatRows(biases) : null, r.n, r.k);
      }
      yield [entry.name, (packed as PackedLinear)[source.part]];
    }
  }
}
