// SigLIP's tokenizer: transformers' SiglipTokenizer (models/siglip/tokenization_siglip.py) around a
// SentencePiece model with add_dummy_prefix switched off, padded to 64 with </s> as the SigLIP processor
// and zero-shot pipeline pad (padding="max_length", max_length=64, truncation=True).
import { SentencePiece, type SentencePieceData, parseSentencePieceModel } from "./sentencepiece.ts";
import {
  type Encoded,
  type TextTokenizer,
  TokenizerError,
  escapeRegExp,
  lowerEachCharacter,
  padRow,
  tokenContent,
} from "./tokenizer.ts";

export const SIGLIP_MAX_LENGTH = 64;

export interface SiglipOptions {
  maxLength: number;
  doLowerCase: boolean;
  eosToken: string;
  unkToken: string;
  padToken: string;
}

// Python's str.isspace(), which `re`'s \s and str.strip() use: Unicode White_Space plus U+001C..U+001F.
const PY_WS = "\\t\\n\\v\\f\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";
const PY_WS_RUN = new RegExp(`[${PY_WS}]+`, "g");
const PY_WS_START = new RegExp(`^[${PY_WS}]+`);
const PY_WS_END = new RegExp(`[${PY_WS}]+$`);
// Python's string.punctuation: the ASCII punctuation canonicalize_text removes.
const PUNCTUATION = /[!"#$%&'()*+,\-./:;<=>?@[\\\]^_`{|}~]/g;
const SPIECE_UNDERLINE = "\u2581";

// Options from a hub tokenizer_config.json, with SiglipTokenizer's defaults where it says nothing.
export function siglipOptions(tokenizerConfig: Record<string, unknown> = {}, maxLength?: number): SiglipOptions {
  const lower = tokenizerConfig.do_lower_case;
  return {
    maxLength: maxLength ?? SIGLIP_MAX_LENGTH,
    doLowerCase: typeof lower === "boolean" ? lower : true,
    eosToken: tokenContent(tokenizerConfig.eos_token, "</s>"),
    unkToken: tokenContent(tokenizerConfig.unk_token, "<unk>"),
    padToken: tokenContent(tokenizerConfig.pad_token, "</s>"),
  };
}

export class SiglipTokenizer implements TextTokenizer {
  readonly family = "siglip";
  readonly maxLength: number;
  readonly options: SiglipOptions;
  readonly sentencePiece: SentencePiece;
  readonly eosId: number;
  readonly padId: number;
  private readonly specials: string[];
  private readonly specialSplit: RegExp;
  private readonly unkLength: number; // pieces of the "<unk>" prefix put before each text

  constructor(data: SentencePieceData, options: SiglipOptions) {
    this.sentencePiece = new SentencePiece(data, { addDummyPrefix: false });
    this.options = options;
    this.maxLength = options.maxLength;
    if (!Number.isInteger(this.maxLength) || this.maxLength < 1) {
      throw new TokenizerError(`SigLIP max_length ${options.maxLength} is not a positive integer`);
    }
    const sp = this.sentencePiece;
    for (const token of [options.eosToken, options.unkToken, options.padToken]) {
      if (sp.pieceToId(token) === sp.unkId && token !== options.unkToken) {
        throw new TokenizerError(`spiece.model has no piece ${JSON.stringify(token)} for a special token`);
      }
    }
    this.eosId = sp.pieceToId(options.eosToken);
    this.padId = sp.pieceToId(options.padToken);
    this.specials = [...new Set([options.eosToken, options.unkToken, options.padToken])];
    this.specialSplit = new RegExp(`(${this.specials.map(escapeRegExp).join("|")})`);
    this.unkLength = sp.encodePieces(options.unkToken).pieces.length;
  }

  get vocabSize(): number {
    return this.sentencePiece.vocabSize;
  }

  // SiglipTokenizer.tokenize then convert_tokens_to_ids, without the end token.
  tokenize(text: string): number[] {
    let s = SPIECE_UNDERLINE + text.replaceAll(SPIECE_UNDERLINE, " ");
    if (this.options.doLowerCase) s = lowerEachCharacter(s);
    // Special tokens strip the whitespace on both sides of them (AddedToken lstrip and rstrip).
    const chunks = s.split(this.specialSplit);
    for (let i = 1; i < chunks.length; i += 2) {
      chunks[i + 1] = chunks[i + 1].replace(PY_WS_START, "");
      chunks[i - 1] = chunks[i - 1].replace(PY_WS_END, "");
    }
    const pieces: string[] = [];
    const ids: number[] = [];
    chunks.forEach((chunk, i) => {
      if (chunk === "") return;
      if (i % 2 === 1) {
        pieces.push(chunk);
        ids.push(this.sentencePiece.pieceToId(chunk));
        return;
      }
      const encoded = this.encodeChunk(chunk);
      pieces.push(...encoded.pieces);
      ids.push(...encoded.ids);
    });
    if (pieces.length > 1 && pieces[0] === SPIECE_UNDERLINE && this.specials.includes(pieces[1])) ids.shift();
    return ids;
  }

  // SiglipTokenizer._tokenize: canonicalize_text, then sentencepiece on "<unk>" + text with the
  // "<unk>" pieces dropped (its way of encoding without a dummy prefix).
  private encodeChunk(chunk: string): { pieces: string[]; ids: number[] } {
    const text = chunk.replace(PUNCTUATION, "").replace(PY_WS_RUN, " ").replace(PY_WS_START, "").replace(PY_WS_END, "");
    const { pieces, ids } = this.sentencePiece.encodePieces(this.options.unkToken + text);
    if (pieces.length < this.unkLength) return { pieces, ids };
    return { pieces: pieces.slice(this.unkLength), ids: ids.slice(this.unkLength) };
  }

  // Truncated to keep the end token, which is added unless the text already ends with it; padded with
  // the pad token.
  encode(texts: readonly string[]): Encoded {
    const inputIds: Int32Array[] = [];
    const attentionMask: Uint8Array[] = [];
    for (const text of texts) {
      const ids = this.tokenize(text).slice(0, this.maxLength - 1);
      if (ids.length === 0 || ids[ids.length - 1] !== this.eosId) ids.push(this.eosId);
      const [row, mask] = padRow(ids, this.maxLength, this.padId);
      inputIds.push(row);
      attentionMask.push(mask);
    }
    return { inputIds, attentionMask };
  }
}

export interface SiglipFiles {
  spiece: Uint8Array; // spiece.model
  config?: Record<string, unknown>; // tokenizer_config.json
  maxLength?: number;
}

export function loadSiglipTokenizer(files: SiglipFiles): SiglipTokenizer {
  return new SiglipTokenizer(parseSentencePieceModel(files.spiece), siglipOptions(files.config, files.maxLength));
}
