// CLIP's byte-level BPE as transformers' CLIPTokenizerFast runs it (the tokenizer.json the hub ships, built
// by convert_slow_tokenizer.py's CLIPConverter): normalizer NFC, whitespace runs to one space, lowercase
// one character at a time (Rust's char::to_lowercase); the special tokens found in the normalized text;
// pre-tokenizer Split(CLIP's regex, invert: the matches are the words) then byte-level (GPT-2's
// bytes_to_unicode); BPE with "</w>" on each word's last symbol; <|startoftext|> ... <|endoftext|>,
// truncated to keep the end token, padded to 77 with the pad token (<|endoftext|> for openai/clip-*).
import {
  type Encoded,
  type TextTokenizer,
  TokenizerError,
  escapeRegExp,
  lowerEachCharacter,
  padRow,
  tokenContent,
} from "./tokenizer.ts";

export const CLIP_MAX_LENGTH = 77;
const END_OF_WORD = "</w>";
const utf8 = new TextEncoder();
// transformers' CLIPTokenizer reads this many merges from merges.txt, whatever follows them.
const CLIP_MERGES = 49152 - 256 - 2;

// Unicode White_Space: what \s matches in Oniguruma, the Rust crate's regex engine (JavaScript's \s
// differs by U+0085 and U+FEFF).
const WS = "\\t\\n\\v\\f\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";
const WS_RUN = new RegExp(`[${WS}]+`, "g");
const WORDS = new RegExp(`'s|'t|'re|'ve|'m|'ll|'d|\\p{L}+|\\p{N}|[^${WS}\\p{L}\\p{N}]+`, "gu");

export interface ClipOptions {
  maxLength: number;
  bosToken: string;
  eosToken: string;
  padToken: string;
  unkToken: string;
}

// What encoding needs, without the token strings; also what a serialised tokenizer stores.
export interface ClipTables {
  vocabSize: number;
  byteIds: Int32Array; // (512): the id of each byte's symbol, then of each byte's symbol + "</w>" (-1: none)
  merges: Int32Array; // (merges, 3): left id, right id, merged id, in rank order
  specials: Record<string, number>; // added tokens matched in the normalized text, with their ids
}

// Options from a hub tokenizer_config.json, with CLIPTokenizer's defaults where it says nothing.
export function clipOptions(tokenizerConfig: Record<string, unknown> = {}, maxLength?: number): ClipOptions {
  const configured = tokenizerConfig.model_max_length;
  // Some configs carry transformers' "no limit" placeholder (1e30) here; the text tower has 77 positions.
  const fromConfig = typeof configured === "number" && configured <= 4096 ? configured : CLIP_MAX_LENGTH;
  return {
    maxLength: maxLength ?? fromConfig,
    bosToken: tokenContent(tokenizerConfig.bos_token, "<|startoftext|>"),
    eosToken: tokenContent(tokenizerConfig.eos_token, "<|endoftext|>"),
    padToken: tokenContent(tokenizerConfig.pad_token, "<|endoftext|>"),
    unkToken: tokenContent(tokenizerConfig.unk_token, "<|endoftext|>"),
  };
}

// GPT-2's reversible map from bytes to printable characters (bytes_to_unicode).
export function byteSymbols(): string[] {
  const symbols: string[] = new Array(256);
  let next = 256;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    symbols[b] = String.fromCharCode(printable ? b : next++);
  }
  return symbols;
}

// The tables from vocab.json (its text or parsed) and merges.txt, with the special tokens of `options`.
export function clipTables(vocab: string | Record<string, number>, merges: string, options: ClipOptions): ClipTables {
  let ids: Record<string, number>;
  try {
    ids = typeof vocab === "string" ? JSON.parse(vocab) : vocab;
  } catch (e) {
    throw new TokenizerError(`vocab.json is not JSON: ${(e as Error).message}`);
  }
  const vocabSize = Object.keys(ids).length;
  for (const [token, id] of Object.entries(ids)) {
    if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
      throw new TokenizerError(`vocab.json: ${JSON.stringify(token)} has id ${id}, not one of 0..${vocabSize - 1}`);
    }
  }
  const idOf = (token: string, where: string): number => {
    const id = Object.hasOwn(ids, token) ? ids[token] : undefined;
    if (id === undefined) throw new TokenizerError(`${where}: ${JSON.stringify(token)} is not in vocab.json`);
    return id;
  };
  const symbols = byteSymbols();
  const byteIds = new Int32Array(512).fill(-1);
  symbols.forEach((s, b) => {
    if (Object.hasOwn(ids, s)) byteIds[b] = ids[s];
    if (Object.hasOwn(ids, s + END_OF_WORD)) byteIds[256 + b] = ids[s + END_OF_WORD];
  });
  const lines = merges.trim().split("\n");
  const start = lines[0]?.startsWith("#version") ? 1 : 0;
  const used = lines.slice(start, start + CLIP_MERGES).filter((line) => line.trim() !== "");
  const table = new Int32Array(used.length * 3);
  used.forEach((line, rank) => {
    const parts = line.trim().split(/ +/);
    if (parts.length !== 2) throw new TokenizerError(`merges.txt line ${rank + start + 1} is not two tokens`);
    const where = `merges.txt line ${rank + start + 1}`;
    table[3 * rank] = idOf(parts[0], where);
    table[3 * rank + 1] = idOf(parts[1], where);
    table[3 * rank + 2] = idOf(parts[0] + parts[1], where);
  });
  const specials: Record<string, number> = {};
  for (const token of [options.bosToken, options.eosToken, options.unkToken, options.padToken]) {
    specials[token] = idOf(token, "tokenizer_config.json special token");
  }
  return { vocabSize, byteIds, merges: table, specials };
}

export class ClipTokenizer implements TextTokenizer {
  readonly family = "clip";
  readonly maxLength: number;
  readonly options: ClipOptions;
  readonly tables: ClipTables;
  readonly bosId: number;
  readonly eosId: number;
  readonly padId: number;
  private readonly unkId: number;
  private readonly ranks = new Map<number, number>(); // left * vocabSize + right -> rank
  private readonly specialSplit: RegExp;
  private readonly cache = new Map<string, Int32Array>(); // word -> its ids
  private static readonly CACHE_WORDS = 10_000;

  constructor(tables: ClipTables, options: ClipOptions) {
    this.tables = tables;
    this.options = options;
    this.maxLength = options.maxLength;
    if (!Number.isInteger(this.maxLength) || this.maxLength < 2) {
      throw new TokenizerError(`CLIP max_length ${options.maxLength} is below the two special tokens`);
    }
    const special = (token: string): number => {
      const id = tables.specials[token];
      if (id === undefined) throw new TokenizerError(`special token ${JSON.stringify(token)} has no id`);
      return id;
    };
    this.bosId = special(options.bosToken);
    this.eosId = special(options.eosToken);
    this.padId = special(options.padToken);
    this.unkId = special(options.unkToken);
    const { merges, vocabSize, byteIds } = tables;
    if (byteIds.length !== 512 || byteIds.some((id) => id < -1 || id >= vocabSize)) {
      throw new TokenizerError(`the byte symbols' ids are not 512 ids below the vocabulary's ${vocabSize}`);
    }
    if (merges.length % 3 !== 0 || merges.some((id) => id < 0 || id >= vocabSize)) {
      throw new TokenizerError(`the merges are not id triples below the vocabulary's ${vocabSize}`);
    }
    for (let rank = merges.length / 3 - 1; rank >= 0; rank--) {
      this.ranks.set(merges[3 * rank] * vocabSize + merges[3 * rank + 1], rank); // the first listing wins
    }
    const names = Object.keys(tables.specials).sort((a, b) => b.length - a.length);
    this.specialSplit = new RegExp(`(${names.map(escapeRegExp).join("|")})`);
  }

  get vocabSize(): number {
    return this.tables.vocabSize;
  }

  // The text's ids without <|startoftext|> and <|endoftext|>.
  tokenize(text: string): number[] {
    const normalized = lowerEachCharacter(text.normalize("NFC").replace(WS_RUN, " "));
    const ids: number[] = [];
    normalized.split(this.specialSplit).forEach((part, i) => {
      if (i % 2 === 1) {
        ids.push(this.tables.specials[part]);
        return;
      }
      for (const match of part.matchAll(WORDS)) ids.push(...this.word(match[0]));
    });
    return ids;
  }

  encode(texts: readonly string[]): Encoded {
    const inputIds: Int32Array[] = [];
    const attentionMask: Uint8Array[] = [];
    for (const text of texts) {
      const ids = [this.bosId, ...this.tokenize(text).slice(0, this.maxLength - 2), this.eosId];
      const [row, mask] = padRow(ids, this.maxLength, this.padId);
      inputIds.push(row);
      attentionMask.push(mask);
    }
    return { inputIds, attentionMask };
  }

  // One pre-tokenized word through byte-level BPE: repeatedly merge every occurrence of the adjacent pair
  // with the lowest rank, left to right. This is the tokenizer's hot spot; the cache makes repeats free.
  private word(word: string): Int32Array {
    const cached = this.cache.get(word);
    if (cached) return cached;
    const bytes = utf8.encode(word);
    const { byteIds, merges, vocabSize } = this.tables;
    let symbols: number[] = [];
    bytes.forEach((b, i) => {
      const id = byteIds[i === bytes.length - 1 ? 256 + b : b];
      symbols.push(id < 0 ? this.unkId : id);
    });
    while (symbols.length > 1) {
      let bestRank = -1;
      for (let i = 0; i + 1 < symbols.length; i++) {
        const rank = this.ranks.get(symbols[i] * vocabSize + symbols[i + 1]);
        if (rank !== undefined && (bestRank < 0 || rank < bestRank)) bestRank = rank;
      }
      if (bestRank < 0) break;
      const [left, right, merged] = [merges[3 * bestRank], merges[3 * bestRank + 1], merges[3 * bestRank + 2]];
      const next: number[] = [];
      for (let i = 0; i < symbols.length; i++) {
        if (symbols[i] === left && symbols[i + 1] === right) {
          next.push(merged);
          i++;
        } else {
          next.push(symbols[i]);
        }
      }
      symbols = next;
    }
    const ids = Int32Array.from(symbols);
    if (this.cache.size >= ClipTokenizer.CACHE_WORDS) this.cache.clear();
    this.cache.set(word, ids);
    return ids;
  }
}

export interface ClipFiles {
  vocab: string | Record<string, number>; // vocab.json
  merges: string; // merges.txt
  config?: Record<string, unknown>; // tokenizer_config.json
  maxLength?: number;
}

export function loadClipTokenizer(files: ClipFiles): ClipTokenizer {
  const options = clipOptions(files.config, files.maxLength);
  return new ClipTokenizer(clipTables(files.vocab, files.merges, options), options);
}
