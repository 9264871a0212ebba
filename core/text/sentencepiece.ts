// SentencePiece unigram models (spiece.model) as Google's sentencepiece encodes with them: the model's
// protobuf (pieces with score and type, normalizer spec), the normalizer (the precompiled charsmap, a
// darts-clone double array, then whitespace handling: normalizer.cc), the Viterbi segmentation
// (unigram_model.cc EncodeOptimized, scores summed in float32 as there) and the unknown-piece handling
// of sentencepiece_processor.cc (a run of unknown pieces is one <unk>; byte fallback when trained so).
import { readFields } from "./protobuf.ts";
import { TokenizerError } from "./tokenizer.ts";

// ModelProto.SentencePiece.Type
export const NORMAL = 1;
export const UNKNOWN = 2;
export const CONTROL = 3;
export const USER_DEFINED = 4;
export const UNUSED = 5;
export const BYTE = 6;

const UNIGRAM = 1; // TrainerSpec.ModelType
const UNK_PENALTY = 10; // unigram_model.cc kUnkPenalty
const SPACE_BYTES = [0xe2, 0x96, 0x81];

export interface NormalizerSpec {
  name: string;
  precompiledCharsmap: Uint8Array; // <trie bytes: u32><double array: u32 units><NUL-terminated replacements>
  addDummyPrefix: boolean;
  removeExtraWhitespaces: boolean;
  escapeWhitespaces: boolean;
}

// What encoding needs from a spiece.model; also what a serialised tokenizer stores.
export interface SentencePieceData {
  pieces: string[]; // (vocab)
  scores: Float32Array; // (vocab)
  types: Uint8Array; // (vocab): NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE
  normalizer: NormalizerSpec;
  treatWhitespaceAsSuffix: boolean;
  byteFallback: boolean;
}

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

export function parseSentencePieceModel(bytes: Uint8Array): SentencePieceData {
  const pieces: string[] = [];
  const scores: number[] = [];
  const types: number[] = [];
  const normalizer: NormalizerSpec = {
    name: "",
    precompiledCharsmap: new Uint8Array(0),
    addDummyPrefix: true,
    removeExtraWhitespaces: true,
    escapeWhitespaces: true,
  };
  let modelType = UNIGRAM;
  let treatWhitespaceAsSuffix = false;
  let byteFallback = false;
  readFields(bytes, "spiece.model", (f) => {
    if (f.number === 1 && f.wire === 2) {
      let piece = "";
      let score = 0;
      let type = NORMAL;
      readFields(f.bytes, "spiece.model piece", (p) => {
        if (p.number === 1 && p.wire === 2) piece = fromUtf8.decode(p.bytes);
        else if (p.number === 2 && p.wire === 5) score = p.float;
        else if (p.number === 3 && p.wire === 0) type = p.varint;
      });
      if (piece === "") throw new TokenizerError(`spiece.model: piece ${pieces.length} is empty`);
      if (type < NORMAL || type > BYTE) {
        throw new TokenizerError(`spiece.model: piece ${pieces.length} has type ${type}, not one of 1..6`);
      }
      pieces.push(piece);
      scores.push(score);
      types.push(type);
    } else if (f.number === 2 && f.wire === 2) {
      readFields(f.bytes, "spiece.model trainer_spec", (t) => {
        if (t.number === 3 && t.wire === 0) modelType = t.varint;
        else if (t.number === 24 && t.wire === 0) treatWhitespaceAsSuffix = t.varint !== 0;
        else if (t.number === 35 && t.wire === 0) byteFallback = t.varint !== 0;
      });
    } else if (f.number === 3 && f.wire === 2) {
      readFields(f.bytes, "spiece.model normalizer_spec", (n) => {
        if (n.number === 1 && n.wire === 2) normalizer.name = fromUtf8.decode(n.bytes);
        else if (n.number === 2 && n.wire === 2) normalizer.precompiledCharsmap = n.bytes.slice();
        else if (n.number === 3 && n.wire === 0) normalizer.addDummyPrefix = n.varint !== 0;
        else if (n.number === 4 && n.wire === 0) normalizer.removeExtraWhitespaces = n.varint !== 0;
        else if (n.number === 5 && n.wire === 0) normalizer.escapeWhitespaces = n.varint !== 0;
      });
    }
  });
  if (modelType !== UNIGRAM) {
    throw new TokenizerError(`spiece.model: model type ${modelType} is not unigram (1), the only one read here`);
  }
  if (pieces.length === 0) throw new TokenizerError("spiece.model: no pieces");
  return {
    pieces,
    scores: Float32Array.from(scores),
    types: Uint8Array.from(types),
    normalizer,
    treatWhitespaceAsSuffix,
    byteFallback,
  };
}

// The precompiled charsmap: a darts-clone double array from UTF-8 prefixes to offsets of NUL-terminated
// replacement strings.
class Charsmap {
  private readonly units: Uint32Array;
  private readonly replacements: Uint8Array;

  constructor(blob: Uint8Array) {
    const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
    const trieBytes = blob.length >= 4 ? view.getUint32(0, true) : 0;
    if (blob.length <= 4 || trieBytes % 4 !== 0 || 4 + trieBytes >= blob.length) {
      throw new TokenizerError(`spiece.model: precompiled_charsmap is broken (${blob.length} bytes)`);
    }
    this.units = new Uint32Array(trieBytes / 4);
    for (let i = 0; i < this.units.length; i++) this.units[i] = view.getUint32(4 + 4 * i, true);
    this.replacements = blob.subarray(4 + trieBytes);
  }

  // The longest rule matching bytes[pos..]: [replacement, bytes consumed], or null.
  longest(bytes: Uint8Array, pos: number): [Uint8Array, number] | null {
    const units = this.units;
    let node = offset(units[0]);
    let length = 0;
    let value = 0;
    for (let i = pos; i < bytes.length; i++) {
      node ^= bytes[i];
      if (node >= units.length) break;
      const unit = units[node];
      if ((unit & 0x800000ff) >>> 0 !== bytes[i]) break; // label mismatch
      node ^= offset(unit);
      if ((unit >>> 8) & 1) {
        length = i + 1 - pos;
        value = units[node] & 0x7fffffff;
      }
    }
    if (length === 0) return null;
    let end = value;
    while (end < this.replacements.length && this.replacements[end] !== 0) end++;
    return [this.replacements.subarray(value, end), length];
  }
}

// darts-clone's unit layout: the offset to the children, 21 bits, scaled by 256 when bit 9 is set.
function offset(unit: number): number {
  return (unit >>> 10) << ((unit & 0x200) >>> 6);
}

export interface SentencePieceOptions {
  addDummyPrefix?: boolean; // overrides the model's normalizer spec (SigLIP's tokenizer turns it off)
}

export class SentencePiece {
  readonly data: SentencePieceData;
  readonly unkId: number;
  private readonly ids = new Map<string, number>(); // NORMAL, USER_DEFINED, UNUSED: what the lattice sees
  private readonly reserved = new Map<string, number>(); // CONTROL, UNKNOWN, BYTE
  private readonly userDefined: Uint8Array[] = [];
  private readonly charsmap: Charsmap | null;
  private readonly addDummyPrefix: boolean;
  private readonly maxPieceLength: number; // UTF-16 units
  private readonly minScore: number;
  private readonly maxScore: number;

  constructor(data: SentencePieceData, options: SentencePieceOptions = {}) {
    this.data = data;
    const n = data.pieces.length;
    if (n === 0 || data.scores.length !== n || data.types.length !== n) {
      throw new TokenizerError(
        `SentencePiece model has ${n} pieces, ${data.scores.length} scores, ${data.types.length} types`,
      );
    }
    let unkId = -1;
    let maxPieceLength = 1;
    // unigram_model.cc: FLT_MAX and FLT_MIN (the smallest positive float) before the NORMAL pieces
    let minScore = 3.4028234663852886e38;
    let maxScore = 1.1754943508222875e-38;
    for (let id = 0; id < data.pieces.length; id++) {
      const piece = data.pieces[id];
      const type = data.types[id];
      if (type < NORMAL || type > BYTE) throw new TokenizerError(`piece ${id} has type ${type}, not one of 1..6`);
      if (type === NORMAL || type === USER_DEFINED || type === UNUSED) {
        if (this.ids.has(piece)) throw new TokenizerError(`spiece.model: piece ${JSON.stringify(piece)} repeats`);
        this.ids.set(piece, id);
        maxPieceLength = Math.max(maxPieceLength, piece.length);
      } else {
        this.reserved.set(piece, id);
      }
      if (type === USER_DEFINED) this.userDefined.push(utf8.encode(piece));
      if (type === UNKNOWN) unkId = id;
      if (type === NORMAL) {
        minScore = Math.min(minScore, data.scores[id]);
        maxScore = Math.max(maxScore, data.scores[id]);
      }
    }
    if (unkId < 0) throw new TokenizerError("spiece.model: no piece of type UNKNOWN");
    this.unkId = unkId;
    this.maxPieceLength = maxPieceLength;
    this.minScore = minScore;
    this.maxScore = maxScore;
    const blob = data.normalizer.precompiledCharsmap;
    this.charsmap = blob.length > 0 ? new Charsmap(blob) : null;
    this.addDummyPrefix = options.addDummyPrefix ?? data.normalizer.addDummyPrefix;
  }

  get vocabSize(): number {
    return this.data.pieces.length;
  }

  pieceToId(piece: string): number {
    return this.reserved.get(piece) ?? this.ids.get(piece) ?? this.unkId;
  }

  // normalizer.cc Normalize: charsmap rules, whitespace collapsed and trimmed, " " escaped to "▁".
  normalize(text: string): string {
    const input = utf8.encode(text);
    const spec = this.data.normalizer;
    const out: number[] = [];
    let pos = 0;
    if (spec.removeExtraWhitespaces) {
      while (pos < input.length) {
        const [sp, consumed] = this.normalizePrefix(input, pos);
        if (!(sp.length === 1 && sp[0] === 0x20)) break;
        pos += consumed;
      }
    }
    if (pos >= input.length) return "";
    const addSpace = () => {
      if (spec.escapeWhitespaces) out.push(...SPACE_BYTES);
      else out.push(0x20);
    };
    if (!this.data.treatWhitespaceAsSuffix && this.addDummyPrefix) addSpace();
    let prevSpace = spec.removeExtraWhitespaces;
    while (pos < input.length) {
      const [sp, consumed] = this.normalizePrefix(input, pos);
      let start = 0;
      if (prevSpace) while (start < sp.length && sp[start] === 0x20) start++;
      if (start < sp.length) {
        for (let i = start; i < sp.length; i++) {
          if (spec.escapeWhitespaces && sp[i] === 0x20) out.push(...SPACE_BYTES);
          else out.push(sp[i]);
        }
        prevSpace = sp[sp.length - 1] === 0x20;
      }
      pos += consumed;
      if (!spec.removeExtraWhitespaces) prevSpace = false;
    }
    if (spec.removeExtraWhitespaces) {
      const space = spec.escapeWhitespaces ? SPACE_BYTES : [0x20];
      while (out.length >= space.length && space.every((b, i) => out[out.length - space.length + i] === b)) {
        out.length -= space.length;
      }
    }
    if (this.data.treatWhitespaceAsSuffix && this.addDummyPrefix) addSpace();
    return fromUtf8.decode(Uint8Array.from(out));
  }

  // normalizer.cc NormalizePrefix: a user-defined symbol as it is, else the longest charsmap rule, else
  // one character unchanged.
  private normalizePrefix(input: Uint8Array, pos: number): [ArrayLike<number>, number] {
    let userLength = 0;
    for (const symbol of this.userDefined) {
      if (symbol.length > userLength && startsWith(input, pos, symbol)) userLength = symbol.length;
    }
    if (userLength > 0) return [input.subarray(pos, pos + userLength), userLength];
    const rule = this.charsmap?.longest(input, pos);
    if (rule) return rule;
    const length = Math.min(charLength(input[pos]), input.length - pos);
    return [input.subarray(pos, pos + length), length];
  }

  // The pieces and ids of `text`, normalized first.
  encodePieces(text: string): { pieces: string[]; ids: number[] } {
    return this.encodeNormalized(this.normalize(text));
  }

  encode(text: string): number[] {
    return this.encodePieces(text).ids;
  }

  // unigram_model.cc EncodeOptimized: the best path ending at each character, scores in float32; then
  // sentencepiece_processor.cc's handling of unknown pieces. This loop is the tokenizer's hot spot.
  encodeNormalized(normalized: string): { pieces: string[]; ids: number[] } {
    const bounds: number[] = [];
    for (let i = 0; i < normalized.length; i++) {
      bounds.push(i);
      const c = normalized.charCodeAt(i);
      if (c >= 0xd800 && c < 0xdc00 && i + 1 < normalized.length) i++;
    }
    const chars = bounds.length;
    bounds.push(normalized.length);
    const best = new Float64Array(chars + 1); // float32 values, except after a user-defined piece (as C++)
    const startsAt = new Int32Array(chars + 1).fill(-1);
    const pieceIds = new Int32Array(chars + 1);
    const unkScore = Math.fround(this.minScore - UNK_PENALTY);
    const { scores, types } = this.data;
    for (let c = 0; c < chars; c++) {
      const start = bounds[c];
      const base = best[c];
      let hasSingle = false;
      for (let e = c + 1; e <= chars && bounds[e] - start <= this.maxPieceLength; e++) {
        const id = this.ids.get(normalized.slice(start, bounds[e]));
        if (id === undefined || types[id] === UNUSED) continue;
        // A user-defined symbol gets a bonus that always selects it; the C++ sums it in double.
        const candidate =
          types[id] === USER_DEFINED
            ? Math.fround(utf8Length(normalized, start, bounds[e]) * this.maxScore) - 0.1 + base
            : Math.fround(scores[id] + base);
        if (startsAt[e] === -1 || candidate > best[e]) {
          best[e] = Math.fround(candidate);
          startsAt[e] = c;
          pieceIds[e] = id;
        }
        if (e === c + 1) hasSingle = true;
      }
      if (!hasSingle) {
        const candidate = Math.fround(unkScore + base);
        if (startsAt[c + 1] === -1 || candidate > best[c + 1]) {
          best[c + 1] = candidate;
          startsAt[c + 1] = c;
          pieceIds[c + 1] = this.unkId;
        }
      }
    }
    const path: number[] = [];
    for (let end = chars; end > 0; end = startsAt[end]) path.push(end);
    path.reverse();
    const pieces: string[] = [];
    const ids: number[] = [];
    let prevUnk = false;
    let from = 0;
    for (const end of path) {
      const piece = normalized.slice(bounds[from], bounds[end]);
      const id = pieceIds[end];
      const unk = id === this.unkId;
      if (unk && this.data.byteFallback) {
        for (const b of utf8.encode(piece)) {
          const bytePiece = `<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`;
          pieces.push(bytePiece);
          ids.push(this.pieceToId(bytePiece));
        }
      } else if (unk && prevUnk) {
        pieces[pieces.length - 1] += piece; // a run of unknown pieces is one
      } else {
        pieces.push(piece);
        ids.push(id);
      }
      prevUnk = unk;
      from = end;
    }
    return { pieces, ids };
  }
}

export function loadSentencePiece(bytes: Uint8Array, options: SentencePieceOptions = {}): SentencePiece {
  return new SentencePiece(parseSentencePieceModel(bytes), options);
}

function startsWith(input: Uint8Array, pos: number, symbol: Uint8Array): boolean {
  if (pos + symbol.length > input.length) return false;
  for (let i = 0; i < symbol.length; i++) if (input[pos + i] !== symbol[i]) return false;
  return true;
}

// string_util::OneCharLen: the length a UTF-8 lead byte announces.
function charLength(lead: number): number {
  return [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4][lead >>> 4];
}

function utf8Length(s: string, start: number, end: number): number {
  let n = 0;
  for (let i = start; i < end; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c < 0xdc00 && i + 1 < end) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}
