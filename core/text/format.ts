// A tokenizer as a bundle stores it: tables the runtime reads as they are, without parsing a 1.6 MB
// vocab.json or a spiece.model. Little-endian:
//
//   0   "EVTK"
//   4   u32 version (TOKENIZER_FORMAT_VERSION)
//   8   u32 header bytes H
//   12  header, UTF-8 JSON: {family, options, sections: [[name, bytes], ...], ...the family's fields}
//   then each section in the header's order, each starting at a multiple of 4 (zero padding)
//
// clip:   byteIds (i32 x 512), merges (left, right, merged ids per merge in rank order; u16 when every id
//         fits, else i32: "idBytes"); header: vocabSize, specials, idBytes.
// siglip: pieces (UTF-8, joined by NUL), scores (f32 per piece), types (u8 per piece), charsmap (the
//         model's precompiled_charsmap as it is); header: normalizer flags, treatWhitespaceAsSuffix,
//         byteFallback.
import { type ClipOptions, ClipTokenizer } from "./clip.ts";
import type { NormalizerSpec } from "./sentencepiece.ts";
import { type SiglipOptions, SiglipTokenizer } from "./siglip.ts";
import { TokenizerError } from "./tokenizer.ts";

export const TOKENIZER_MAGIC = "EVTK";
export const TOKENIZER_FORMAT_VERSION = 1;

export type Tokenizer = ClipTokenizer | SiglipTokenizer;

type Section = [name: string, bytes: Uint8Array];

interface ClipHeader {
  family: "clip";
  options: ClipOptions;
  vocabSize: number;
  specials: Record<string, number>;
  idBytes: 2 | 4;
  sections: [string, number][];
}

interface SiglipHeader {
  family: "siglip";
  options: SiglipOptions;
  normalizer: Omit<NormalizerSpec, "precompiledCharsmap">;
  treatWhitespaceAsSuffix: boolean;
  byteFallback: boolean;
  sections: [string, number][];
}

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

export function tokenizerToBytes(tokenizer: Tokenizer): Uint8Array {
  if (tokenizer instanceof ClipTokenizer) {
    const { vocabSize, byteIds, merges, specials } = tokenizer.tables;
    const idBytes = vocabSize <= 0x10000 ? 2 : 4;
    const sections: Section[] = [
      ["byteIds", int32Bytes(byteIds)],
      ["merges", idBytes === 2 ? uint16Bytes(merges) : int32Bytes(merges)],
    ];
    const header: Omit<ClipHeader, "sections"> = {
      family: "clip",
      options: tokenizer.options,
      vocabSize,
      specials,
      idBytes,
    };
    return pack(header, sections);
  }
  const { pieces, scores, types, normalizer, treatWhitespaceAsSuffix, byteFallback } = tokenizer.sentencePiece.data;
  if (pieces.some((p) => p.includes("\0"))) throw new TokenizerError("a SentencePiece piece contains NUL");
  const { precompiledCharsmap, ...flags } = normalizer;
  const sections: Section[] = [
    ["pieces", utf8.encode(pieces.join("\0"))],
    ["scores", float32Bytes(scores)],
    ["types", types],
    ["charsmap", precompiledCharsmap],
  ];
  const header: Omit<SiglipHeader, "sections"> = {
    family: "siglip",
    options: tokenizer.options,
    normalizer: flags,
    treatWhitespaceAsSuffix,
    byteFallback,
  };
  return pack(header, sections);
}

export function tokenizerFromBytes(bytes: Uint8Array): Tokenizer {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 12 || fromUtf8.decode(bytes.subarray(0, 4)) !== TOKENIZER_MAGIC) {
    throw new TokenizerError(`not a serialised tokenizer: it does not start with "${TOKENIZER_MAGIC}"`);
  }
  const version = view.getUint32(4, true);
  if (version !== TOKENIZER_FORMAT_VERSION) {
    throw new TokenizerError(`tokenizer format version ${version}; this build reads ${TOKENIZER_FORMAT_VERSION}`);
  }
  const headerBytes = view.getUint32(8, true);
  if (12 + headerBytes > bytes.length) throw new TokenizerError("tokenizer header runs past the end");
  let header: ClipHeader | SiglipHeader;
  try {
    header = JSON.parse(fromUtf8.decode(bytes.subarray(12, 12 + headerBytes)));
  } catch (e) {
    throw new TokenizerError(`tokenizer header is not JSON: ${(e as Error).message}`);
  }
  const sections = new Map<string, Uint8Array>();
  let pos = align4(12 + headerBytes);
  for (const [name, length] of header.sections ?? []) {
    if (!Number.isInteger(length) || length < 0 || pos + length > bytes.length) {
      throw new TokenizerError(`tokenizer section ${name} (${length} bytes) runs past the end`);
    }
    sections.set(name, bytes.subarray(pos, pos + length));
    pos = align4(pos + length);
  }
  const section = (name: string, unit: number, count?: number): Uint8Array => {
    const s = sections.get(name);
    if (!s || s.length % unit !== 0 || (count !== undefined && s.length !== count * unit)) {
      throw new TokenizerError(`tokenizer section ${name} is missing or of the wrong length`);
    }
    return s;
  };
  if (header.family === "clip") {
    const mergeBytes = section("merges", 3 * header.idBytes);
    const merges = header.idBytes === 2 ? readUint16(mergeBytes) : readInt32(mergeBytes);
    const byteIds = readInt32(section("byteIds", 4, 512));
    return new ClipTokenizer(
      { vocabSize: header.vocabSize, byteIds, merges, specials: header.specials },
      header.options,
    );
  }
  if (header.family === "siglip") {
    const pieces = fromUtf8.decode(section("pieces", 1)).split("\0");
    const scoreBytes = section("scores", 4, pieces.length);
    const scores = new Float32Array(pieces.length);
    const sv = new DataView(scoreBytes.buffer, scoreBytes.byteOffset, scoreBytes.byteLength);
    for (let i = 0; i < scores.length; i++) scores[i] = sv.getFloat32(4 * i, true);
    const types = section("types", 1, pieces.length).slice();
    const normalizer = { ...header.normalizer, precompiledCharsmap: section("charsmap", 1).slice() };
    const { treatWhitespaceAsSuffix, byteFallback } = header;
    return new SiglipTokenizer(
      { pieces, scores, types, normalizer, treatWhitespaceAsSuffix, byteFallback },
      header.options,
    );
  }
  throw new TokenizerError(`tokenizer family ${JSON.stringify((header as { family: unknown }).family)} is unknown`);
}

function pack(header: object, sections: Section[]): Uint8Array {
  const json = utf8.encode(JSON.stringify({ ...header, sections: sections.map(([n, b]) => [n, b.length]) }));
  let total = align4(12 + json.length);
  for (const [, b] of sections) total = align4(total + b.length);
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  out.set(utf8.encode(TOKENIZER_MAGIC), 0);
  view.setUint32(4, TOKENIZER_FORMAT_VERSION, true);
  view.setUint32(8, json.length, true);
  out.set(json, 12);
  let pos = align4(12 + json.length);
  for (const [, b] of sections) {
    out.set(b, pos);
    pos = align4(pos + b.length);
  }
  return out;
}

function align4(n: number): number {
  return (n + 3) & ~3;
}

function int32Bytes(values: Int32Array): Uint8Array {
  const out = new Uint8Array(values.length * 4);
  const view = new DataView(out.buffer);
  values.forEach((v, i) => view.setInt32(4 * i, v, true));
  return out;
}

function uint16Bytes(values: Int32Array): Uint8Array {
  const out = new Uint8Array(values.length * 2);
  const view = new DataView(out.buffer);
  values.forEach((v, i) => view.setUint16(2 * i, v, true));
  return out;
}

function float32Bytes(values: Float32Array): Uint8Array {
  const out = new Uint8Array(values.length * 4);
  const view = new DataView(out.buffer);
  values.forEach((v, i) => view.setFloat32(4 * i, v, true));
  return out;
}

function readInt32(bytes: Uint8Array): Int32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Int32Array(bytes.length / 4);
  for (let i = 0; i < out.length; i++) out[i] = view.getInt32(4 * i, true);
  return out;
}

function readUint16(bytes: Uint8Array): Int32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Int32Array(bytes.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = view.getUint16(2 * i, true);
  return out;
}
