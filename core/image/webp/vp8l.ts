// WebP lossless (VP8L), as libwebp 1.2.4 decodes it: the header, the transforms (predictor, cross-colour,
// subtract-green, colour-indexing), the colour cache, the prefix codes (simple and normal, grouped by a
// meta prefix image), LZ77 backward references with the 2-D distance map. Every bitstream error libwebp
// reports (an incomplete or over-full code, a copy before the first pixel or past the last, reading past
// the end of the data) is thrown as WebpError. The ALPH chunk's lossless alpha is the same stream
// without its header, its pixels' green channel being the alpha.

import { EdgevitError } from "../../errors.ts";
import { yieldToOthers } from "../bytes.ts";

export class WebpError extends Error {}

// Pixels decoded between yields to the event loop.
const SLICE_PIXELS = 1 << 20;

const NUM_LITERAL_CODES = 256;
const NUM_LENGTH_CODES = 24;
const NUM_DISTANCE_CODES = 40;
const MAX_CACHE_BITS = 11;
const MAX_GREEN_CODES = NUM_LITERAL_CODES + NUM_LENGTH_CODES + (1 << MAX_CACHE_BITS);
const CODE_LENGTH_ORDER = [17, 18, 0, 1, 2, 3, 4, 5, 16, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];
// (dy, 8 - dx) pairs of the 120 short distance codes, packed as dy << 4 | (8 - dx).
const CODE_TO_PLANE = [
  0x18, 0x07, 0x17, 0x19, 0x28, 0x06, 0x27, 0x29, 0x16, 0x1a, 0x26, 0x2a, 0x38, 0x05, 0x37, 0x39, 0x15, 0x1b, 0x36,
  0x3a, 0x25, 0x2b, 0x48, 0x04, 0x47, 0x49, 0x14, 0x1c, 0x35, 0x3b, 0x46, 0x4a, 0x24, 0x2c, 0x58, 0x45, 0x4b, 0x34,
  0x3c, 0x03, 0x57, 0x59, 0x13, 0x1d, 0x56, 0x5a, 0x23, 0x2d, 0x44, 0x4c, 0x55, 0x5b, 0x33, 0x3d, 0x68, 0x02, 0x67,
  0x69, 0x12, 0x1e, 0x66, 0x6a, 0x22, 0x2e, 0x54, 0x5c, 0x43, 0x4d, 0x65, 0x6b, 0x32, 0x3e, 0x78, 0x01, 0x77, 0x79,
  0x53, 0x5d, 0x11, 0x1f, 0x64, 0x6c, 0x42, 0x4e, 0x76, 0x7a, 0x21, 0x2f, 0x75, 0x7b, 0x31, 0x3f, 0x63, 0x6d, 0x52,
  0x5e, 0x00, 0x74, 0x7c, 0x41, 0x4f, 0x10, 0x20, 0x62, 0x6e, 0x30, 0x73, 0x7d, 0x51, 0x5f, 0x40, 0x72, 0x7e, 0x61,
  0x6f, 0x50, 0x71, 0x7f, 0x60, 0x70,
];

const PREDICTOR = 0;
const CROSS_COLOR = 1;
const SUBTRACT_GREEN = 2;
const COLOR_INDEXING = 3;

// LSB-first bits. Past the end it reads zeros; libwebp's reader notices the overrun only once more bits
// are consumed than the data holds, and never for the first 64 bits.
class BitReader {
  private pos = 0; // bits consumed
  private readonly limit: number;
  private readonly data: Uint8Array;
  constructor(data: Uint8Array) {
    this.data = data;
    this.limit = Math.max(64, data.length * 8);
  }
  get eos(): boolean {
    return this.pos > this.limit;
  }
  read(n: number): number {
    let v = 0;
    for (let i = 0; i < n; i++) v |= this.bit() << i;
    return v >>> 0;
  }
  bit(): number {
    const p = this.pos++;
    const byte = p >> 3;
    return byte < this.data.length ? (this.data[byte] >> (p & 7)) & 1 : 0;
  }
  // Up to 8 bits ahead without consuming them.
  peek8(): number {
    const p = this.pos;
    const byte = p >> 3;
    const d = this.data;
    const word = (d[byte] ?? 0) | ((d[byte + 1] ?? 0) << 8);
    return (word >> (p & 7)) & 0xff;
  }
  skip(n: number): void {
    this.pos += n;
  }
}

// Memory. A decode holds its pixels (4 bytes each, libwebp too: a backward reference may reach any earlier
// pixel), the transforms' sub-images and the meta prefix image (each at most one pixel per 4x4 tile), the
// colour caches and the prefix codes. A code's table is one Uint16Array, sized from its lengths: nothing for
// a one-symbol code; else 2^min(8, longest) lookup entries, and for codes longer than 8 bits the 16 counts
// and every symbol, which the walk past the lookup reads. V8's headers are reckoned at 320 bytes for a code
// with a table (its object, the array and its buffer), 64 for one without and for a group's array of five.
const CODE_OBJECT_BYTES = 320;
const SINGLE_CODE_BYTES = 64;
const GROUP_OBJECT_BYTES = 64;
const codeMaxBytes = (alphabet: number) => 2 * (256 + 16 + alphabet) + CODE_OBJECT_BYTES;
// The most one group holds: green (with the length codes and a colour cache of up to 2^11), red, blue,
// alpha, distance: 10,656 bytes.
export const GROUP_MAX_BYTES =
  GROUP_OBJECT_BYTES +
  codeMaxBytes(MAX_GREEN_CODES) +
  3 * codeMaxBytes(NUM_LITERAL_CODES) +
  codeMaxBytes(NUM_DISTANCE_CODES);
// Every group whose codes are kept costs at least 20 bits of the stream (five simple one-symbol codes of 4
// bits each), and is named by one of the meta image's cells.
const MIN_GROUP_BITS = 20;
// The main image's codes are refused past this (image_too_large). libwebp 1.2.4 keeps every group the meta
// image names, up to 65536 (~12-20 KiB of tables each, as much as its malloc gives); its encoder merges the
// histograms of at most 2600 tiles towards 100 groups at most (MAX_HISTO_GREEDY), and its files decode
// within the cap (test/core/image/vp8l-limits.test.ts: a photo and noise at methods 0, 3 and 6).
// Reserving libwebp's worst (65536 groups at 10 KiB, 0.7 GiB) for every lossless upload is impossible in an
// isolate's 128 MB; 1 MiB, what a lossless upload reserves for them at most, holds 98 groups at their worst
// or 2730 of one-symbol codes. (A reservation grown as the codes are read, as a source that keeps its whole file asks
// the host through its `reserve` option, would take libwebp's files at their cost; a decoder has no such
// hook, and this figure, known before decoding, costs an ordinary file its 1 MiB at most.)
export const MAX_TABLE_BYTES = 1 << 20;
// Sub-images: a predictor's, a cross-colour transform's, the colour map's and the meta prefix image, each
// with one group of codes and a colour cache.
const SUB_IMAGES = 4;

const subSample = (size: number, bits: number) => (size + (1 << bits) - 1) >> bits;

// The most the main image's prefix codes hold for a width x height image in a stream of `streamBytes`: the
// groups kept (at most one per meta cell, at most one per 20 bits of the stream, plus one partly read when
// the stream fails) at their worst, and at most MAX_TABLE_BYTES.
export function vp8lTableBytes(width: number, height: number, streamBytes: number): number {
  const cells = subSample(width, 2) * subSample(height, 2);
  const bits = Math.max(64, streamBytes * 8);
  const groups = Math.min(cells, Math.floor(bits / MIN_GROUP_BITS) + 1);
  return Math.min(groups * GROUP_MAX_BYTES, MAX_TABLE_BYTES);
}

// The most decoding a VP8L stream (a VP8L chunk, or an ALPH chunk's lossless data) of `streamBytes` bytes for
// a width x height image holds, from its first bit to its last row: what memoryBytes reserves. The pixels;
// three sub-images of at most a pixel per 4x4 tile (a predictor's, a cross-colour transform's, the meta
// prefix image) and the meta image's dense group numbers (2 bytes a cell); the colour map (its 256 stored
// entries and the map, 1 KiB each); five colour caches of up to 2^11 entries; the sub-images' codes; the
// main image's codes (vp8lTableBytes); each transform's output row and its previous one (32 bytes a column
// for the four transforms).
export function vp8lMemoryBytes(width: number, height: number, streamBytes: number): number {
  const cells = subSample(width, 2) * subSample(height, 2);
  return (
    width * height * 4 +
    cells * (3 * 4 + 2) +
    2 * 1024 +
    (SUB_IMAGES + 1) * (4 << MAX_CACHE_BITS) +
    SUB_IMAGES * GROUP_MAX_BYTES +
    vp8lTableBytes(width, height, streamBytes) +
    width * 32
  );
}

// Code lengths as the stream gives them, checked: the counts per length (into COUNT), how many symbols are
// used and the longest length. Shared scratch: codes are read synchronously, one at a time.
const COUNT = new Uint16Array(16);
const OFFSETS = new Uint16Array(16);
const NEXT_CODE = new Uint16Array(16);
const LENGTHS = new Uint8Array(MAX_GREEN_CODES);
const LENGTH_LENGTHS = new Uint8Array(19);
// The code-length code's table (lengths of at most 7 bits: a lookup of 128 entries).
const LENGTH_CODE_TABLE = new Uint16Array(128);
const NO_TABLE = new Uint16Array(0);

function checkLengths(lengths: Uint8Array, n: number): { used: number; longest: number } {
  const count = COUNT;
  count.fill(0);
  let used = 0;
  let longest = 0;
  for (let s = 0; s < n; s++) {
    const len = lengths[s];
    if (len > 15) throw new WebpError("a code length over 15");
    count[len]++;
    if (len) {
      used++;
      if (len > longest) longest = len;
    }
  }
  if (used === 0) throw new WebpError("a prefix code without symbols");
  if (used === 1) return { used, longest };
  let left = 1; // Kraft: the code must fill the tree exactly
  for (let len = 1; len <= 15; len++) {
    left = left * 2 - count[len];
    if (left < 0) throw new WebpError("an over-subscribed prefix code");
  }
  if (left !== 0) throw new WebpError("an incomplete prefix code");
  return { used, longest };
}

// The Uint16Array entries a code of these lengths keeps.
const tableEntries = (used: number, longest: number) =>
  used === 1 ? 0 : (1 << Math.min(8, longest)) + (longest > 8 ? 16 + used : 0);

// A canonical prefix code: a lookup of up to 8 bits, which holds every code of a code no longer than that;
// the count/symbol walk (as in zlib's puff) for longer ones. A code with one symbol takes no bits.
class PrefixCode {
  // The lookup (symbol << 4 | length, or 0 for a longer code), then, for a code longer than 8 bits, the
  // counts per length and the symbols in canonical order. One array: each is a V8 object of its own.
  private readonly table: Uint16Array;
  private readonly mask: number;
  readonly single: number; // the symbol of a one-symbol code, else -1

  // From lengths that passed checkLengths (COUNT holds their counts); `table` has tableEntries() entries.
  constructor(lengths: Uint8Array, n: number, shape: { used: number; longest: number }, table: Uint16Array) {
    const { used, longest } = shape;
    this.table = table;
    if (used === 1) {
      let s = 0;
      while (lengths[s] === 0) s++;
      this.single = s;
      this.mask = 0;
      return;
    }
    this.single = -1;
    const size = 1 << Math.min(8, longest);
    this.mask = size - 1;
    const long = longest > 8;
    const count = COUNT;
    if (long) table.set(count, size);
    const offsets = OFFSETS;
    const next = NEXT_CODE;
    offsets[1] = size + 16;
    next[1] = 0;
    for (let len = 1; len < 15; len++) {
      offsets[len + 1] = offsets[len] + count[len];
      next[len + 1] = (next[len] + count[len]) << 1;
    }
    // Symbols in canonical order (by length, then symbol) for the walk; codes of up to 8 bits bit-reversed
    // into the lookup (the stream sends a code's first bit first).
    for (let s = 0; s < n; s++) {
      const len = lengths[s];
      if (len === 0) continue;
      if (long) table[offsets[len]++] = s;
      const code = next[len]++;
      if (len <= 8) {
        let rev = 0;
        for (let b = 0; b < len; b++) rev |= ((code >> b) & 1) << (len - 1 - b);
        for (let r = rev; r < size; r += 1 << len) table[r] = (s << 4) | len;
      }
    }
  }

  read(br: BitReader): number {
    if (this.single >= 0) return this.single;
    const table = this.table;
    const hit = table[br.peek8() & this.mask];
    if (hit !== 0) {
      br.skip(hit & 15);
      return hit >> 4;
    }
    // Longer than 8 bits: the lookup has 256 entries, the counts follow.
    let code = 0;
    let first = 0;
    let index = 256 + 16;
    for (let len = 1; len <= 15; len++) {
      code |= br.bit();
      const count = table[256 + len];
      if (code - count < first) return table[index + (code - first)];
      index += count;
      first = (first + count) << 1;
      code <<= 1;
    }
    throw new WebpError("an invalid prefix code");
  }
}

// Green (with lengths and cache), red, blue, alpha, distance.
type Group = [PrefixCode, PrefixCode, PrefixCode, PrefixCode, PrefixCode];

const REPEAT_EXTRA = [2, 3, 7];
const REPEAT_OFFSET = [3, 3, 11];

function readCodeLengths(br: BitReader, lengthCode: PrefixCode, n: number, out: Uint8Array): void {
  let max = n;
  if (br.read(1)) {
    const bits = 2 + 2 * br.read(3);
    max = 2 + br.read(bits);
    if (max > n) throw new WebpError("more code lengths than symbols");
  }
  let prev = 8;
  let s = 0;
  while (s < n) {
    if (max-- === 0) break;
    const len = lengthCode.read(br);
    if (len < 16) {
      out[s++] = len;
      if (len !== 0) prev = len;
    } else {
      const repeat = br.read(REPEAT_EXTRA[len - 16]) + REPEAT_OFFSET[len - 16];
      if (s + repeat > n) throw new WebpError("a code length repeat past the alphabet");
      out.fill(len === 16 ? prev : 0, s, s + repeat);
      s += repeat;
    }
  }
}

// What the main image's codes may hold (vp8lTableBytes); sub-images' codes are not counted here.
class TableBudget {
  used = 0;
  readonly limit: number;
  constructor(limit: number) {
    this.limit = limit;
  }

  charge(bytes: number, groups: number): void {
    this.used += bytes;
    if (this.used > this.limit) {
      const mib = (this.limit / 2 ** 20).toFixed(1);
      throw new EdgevitError(
        "image_too_large",
        `The WebP image's lossless data uses ${groups} groups of prefix codes, which need more than ${mib} MiB ` +
          `of tables: more than edgevit holds for one image's codes (encoders' files use a few dozen groups, ` +
          `well under that).`,
      );
    }
  }
}

// One prefix code of an alphabet of n symbols: checked, then kept (its table charged to `budget`, when
// given) or, for a group no tile uses, dropped as libwebp drops it.
function readPrefixCode(br: BitReader, n: number, keep: boolean, budget: TableBudget | null, groups: number) {
  // The simple code may name a symbol past the alphabet (libwebp's buffer is the largest alphabet's).
  const lengths = LENGTHS;
  lengths.fill(0, 0, Math.max(n, 256));
  if (br.read(1)) {
    const two = br.read(1);
    lengths[br.read(br.read(1) ? 8 : 1)] = 1;
    if (two) lengths[br.read(8)] = 1;
  } else {
    const count = br.read(4) + 4;
    const lengthLengths = LENGTH_LENGTHS;
    lengthLengths.fill(0);
    for (let i = 0; i < count; i++) lengthLengths[CODE_LENGTH_ORDER[i]] = br.read(3);
    const shape = checkLengths(lengthLengths, 19);
    readCodeLengths(br, new PrefixCode(lengthLengths, 19, shape, LENGTH_CODE_TABLE), n, lengths);
  }
  if (br.eos) throw new WebpError("the data ends inside a prefix code");
  const shape = checkLengths(lengths, n);
  if (!keep) return null;
  const entries = tableEntries(shape.used, shape.longest);
  budget?.charge(entries === 0 ? SINGLE_CODE_BYTES : 2 * entries + CODE_OBJECT_BYTES, groups);
  return new PrefixCode(lengths, n, shape, entries === 0 ? NO_TABLE : new Uint16Array(entries));
}

interface Transform {
  type: number;
  bits: number;
  xsize: number; // the width the transform's output has
  data: Uint32Array; // the sub-image (predictor, cross-colour) or the colour map
}

// The entropy-coded image: the prefix codes and, for the main image, the groups' layout.
interface Codes {
  groups: Group[];
  meta: Uint32Array | null; // group index per tile, numbered densely
  metaBits: number;
  metaWidth: number;
  cacheBits: number;
}

function readCodes(
  br: BitReader,
  xsize: number,
  ysize: number,
  cacheBits: number,
  level0: boolean,
  budget: TableBudget | null,
): Codes {
  let meta: Uint32Array | null = null;
  let metaBits = 0;
  let metaWidth = 0;
  let numGroups = 1;
  // The groups the meta image names, ascending: kept and numbered 0.. in that order. Groups it never names
  // are read (and checked) but not kept, as libwebp does.
  let named: Uint16Array | null = null;
  let kept = 1;
  if (level0 && br.read(1)) {
    metaBits = br.read(3) + 2;
    metaWidth = subSample(xsize, metaBits);
    meta = decodeImageStream(br, metaWidth, subSample(ysize, metaBits), null).data;
    named = new Uint16Array(meta.length);
    for (let i = 0; i < meta.length; i++) {
      const group = (meta[i] >> 8) & 0xffff;
      meta[i] = named[i] = group;
      numGroups = Math.max(numGroups, group + 1);
    }
    named.sort();
    kept = 0;
    for (let i = 0; i < named.length; i++) if (i === 0 || named[i] !== named[i - 1]) named[kept++] = named[i];
    for (let i = 0; i < meta.length; i++) {
      const group = meta[i];
      let lo = 0;
      let hi = kept - 1;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (named[mid] < group) lo = mid + 1;
        else hi = mid;
      }
      meta[i] = lo;
    }
  }
  if (br.eos) throw new WebpError("the data ends inside the meta prefix image");
  const cacheSize = cacheBits > 0 ? 1 << cacheBits : 0;
  const sizes = [NUM_LITERAL_CODES + NUM_LENGTH_CODES + cacheSize, 256, 256, 256, NUM_DISTANCE_CODES];
  const groups: Group[] = new Array(kept);
  let next = 0; // the next kept group
  for (let g = 0; g < numGroups; g++) {
    if (named === null || (next < kept && named[next] === g)) {
      budget?.charge(GROUP_OBJECT_BYTES, kept);
      groups[next++] = sizes.map((n) => readPrefixCode(br, n, true, budget, kept)) as Group;
    } else {
      for (const n of sizes) readPrefixCode(br, n, false, budget, kept);
    }
  }
  return { groups, meta, metaBits, metaWidth, cacheBits };
}

// The LZ77 + prefix-coded pixels of an xsize x ysize image (ARGB), decoded a slice at a time: run(budget)
// decodes at least `budget` pixels (or to the end) and says whether the image is complete.
class PixelDecoder {
  readonly data: Uint32Array;
  private pos = 0;
  private col = 0;
  private row = 0;
  private cached = 0;
  private readonly cache: Uint32Array | null;
  private readonly cacheShift: number;
  private readonly mask: number;
  private group: Group;
  private readonly br: BitReader;
  private readonly xsize: number;
  private readonly codes: Codes;

  constructor(br: BitReader, xsize: number, ysize: number, codes: Codes) {
    this.br = br;
    this.xsize = xsize;
    this.codes = codes;
    this.data = new Uint32Array(xsize * ysize);
    this.cache = codes.cacheBits > 0 ? new Uint32Array(1 << codes.cacheBits) : null;
    this.cacheShift = 32 - codes.cacheBits;
    this.mask = codes.meta ? (1 << codes.metaBits) - 1 : -1;
    this.group = this.groupAt(0, 0);
  }

  private groupAt(x: number, y: number): Group {
    const { meta, metaBits, metaWidth, groups } = this.codes;
    return meta ? groups[meta[(y >> metaBits) * metaWidth + (x >> metaBits)]] : groups[0];
  }

  // The colour cache holds every pixel before `pos`, inserted in order.
  private insert(): void {
    const { data, cache } = this;
    while (this.cached < this.pos) {
      const argb = data[this.cached++];
      cache![Math.imul(argb, 0x1e35a7bd) >>> this.cacheShift] = argb;
    }
  }

  run(budget: number): boolean {
    const { br, data, xsize, cache, mask } = this;
    const end = data.length;
    const lengthLimit = NUM_LITERAL_CODES + NUM_LENGTH_CODES;
    const stop = Math.min(end, this.pos + budget);
    while (this.pos < stop) {
      if ((this.col & mask) === 0) this.group = this.groupAt(this.col, this.row);
      const group = this.group;
      const code = group[0].read(br);
      if (br.eos) break;
      if (code < NUM_LITERAL_CODES || code >= lengthLimit) {
        if (code < NUM_LITERAL_CODES) {
          const red = group[1].read(br);
          const blue = group[2].read(br);
          const alpha = group[3].read(br);
          if (br.eos) break;
          data[this.pos] = ((alpha << 24) | (red << 16) | (code << 8) | blue) >>> 0;
        } else {
          if (cache === null) throw new WebpError("a colour cache code without a colour cache");
          this.insert();
          data[this.pos] = cache[code - lengthLimit];
        }
        this.pos++;
        if (++this.col >= xsize) {
          this.col = 0;
          this.row++;
          if (cache) this.insert();
        }
      } else {
        const length = copyDistance(code - NUM_LITERAL_CODES, br);
        const distCode = copyDistance(group[4].read(br), br);
        let dist: number;
        if (distCode > 120) dist = distCode - 120;
        else {
          const d = CODE_TO_PLANE[distCode - 1];
          dist = Math.max(1, (d >> 4) * xsize + 8 - (d & 15));
        }
        if (br.eos) break;
        if (this.pos < dist || end - this.pos < length) throw new WebpError("a backward reference outside the image");
        data.copyWithin(this.pos, this.pos - dist, this.pos - dist + Math.min(length, dist));
        for (let i = dist; i < length; i++) data[this.pos + i] = data[this.pos + i - dist];
        this.pos += length;
        this.col += length;
        while (this.col >= xsize) {
          this.col -= xsize;
          this.row++;
        }
        if (this.col & mask) this.group = this.groupAt(this.col, this.row);
        if (cache) this.insert();
      }
    }
    if (br.eos) throw new WebpError("the data ends before the last pixel");
    return this.pos >= end;
  }
}

function decodePixels(br: BitReader, xsize: number, ysize: number, codes: Codes): Uint32Array {
  const decoder = new PixelDecoder(br, xsize, ysize, codes);
  decoder.run(Number.POSITIVE_INFINITY);
  return decoder.data;
}

function copyDistance(symbol: number, br: BitReader): number {
  if (symbol < 4) return symbol + 1;
  const extra = (symbol - 2) >> 1;
  const offset = (2 + (symbol & 1)) << extra;
  return offset + br.read(extra) + 1;
}

// An image stream: for the main image (level0: the one with a budget for its codes) its transforms first;
// then the colour cache and codes; then the pixels (sub-images only: the main image's pixels are read by
// the caller).
function decodeImageStream(
  br: BitReader,
  xsize: number,
  ysize: number,
  budget: TableBudget | null,
  transforms: Transform[] = [],
): { data: Uint32Array; codes: Codes; xsize: number } {
  const level0 = budget !== null;
  let width = xsize;
  if (level0) {
    let seen = 0;
    while (br.read(1)) {
      const type = br.read(2);
      if (seen & (1 << type)) throw new WebpError("a transform used twice");
      seen |= 1 << type;
      const t: Transform = { type, bits: 0, xsize: width, data: new Uint32Array(0) };
      if (type === PREDICTOR || type === CROSS_COLOR) {
        t.bits = br.read(3) + 2;
        t.data = decodeImageStream(br, subSample(width, t.bits), subSample(ysize, t.bits), null).data;
      } else if (type === COLOR_INDEXING) {
        const colors = br.read(8) + 1;
        t.bits = colors > 16 ? 0 : colors > 4 ? 1 : colors > 2 ? 2 : 3;
        width = subSample(width, t.bits);
        const stored = decodeImageStream(br, colors, 1, null).data;
        // Delta-coded entries, then transparent black up to the indices' range.
        const map = new Uint8Array(4 << (8 >> t.bits));
        const bytes = new Uint8Array(stored.buffer);
        map.set(bytes.subarray(0, 4));
        for (let i = 4; i < 4 * colors; i++) map[i] = (bytes[i] + map[i - 4]) & 255;
        t.data = new Uint32Array(map.buffer);
      }
      transforms.push(t);
    }
  }
  let cacheBits = 0;
  if (br.read(1)) {
    cacheBits = br.read(4);
    if (cacheBits < 1 || cacheBits > MAX_CACHE_BITS) throw new WebpError(`a colour cache of ${cacheBits} bits`);
  }
  const codes = readCodes(br, width, ysize, cacheBits, level0, budget);
  if (level0) return { data: new Uint32Array(0), codes, xsize: width };
  const data = decodePixels(br, width, ysize, codes);
  if (br.eos) throw new WebpError("the data ends inside a sub-image");
  return { data, codes, xsize: width };
}

const average2 = (a: number, b: number) => ((((a ^ b) & 0xfefefefe) >>> 1) + (a & b)) >>> 0;

function addPixels(a: number, b: number): number {
  const ag = ((a & 0xff00ff00) >>> 0) + ((b & 0xff00ff00) >>> 0);
  const rb = (a & 0x00ff00ff) + (b & 0x00ff00ff);
  return ((ag & 0xff00ff00) | (rb & 0x00ff00ff)) >>> 0;
}

const clip255 = (v: number) => (v < 0 ? 0 : Math.min(v, 255));

function select(t: number, l: number, tl: number): number {
  let d = 0;
  for (let s = 0; s < 32; s += 8) {
    const a = (t >>> s) & 255;
    const b = (l >>> s) & 255;
    const c = (tl >>> s) & 255;
    d += Math.abs(b - c) - Math.abs(a - c);
  }
  return d <= 0 ? t : l;
}

function clampedFull(a: number, b: number, c: number): number {
  let out = 0;
  for (let s = 0; s < 32; s += 8) {
    out |= clip255(((a >>> s) & 255) + ((b >>> s) & 255) - ((c >>> s) & 255)) << s;
  }
  return out >>> 0;
}

function clampedHalf(ave: number, c: number): number {
  let out = 0;
  for (let s = 0; s < 32; s += 8) {
    const a = (ave >>> s) & 255;
    const b = (c >>> s) & 255;
    out |= clip255(a + Math.trunc((a - b) / 2)) << s;
  }
  return out >>> 0;
}

// Predictor mode m of pixel x, given the row so far (`cur`) and the row above (`top`).
function predict(m: number, cur: Uint32Array, top: Uint32Array, x: number, width: number): number {
  const L = cur[x - 1];
  const T = top[x];
  const TL = top[x - 1];
  const TR = x + 1 < width ? top[x + 1] : cur[0]; // the last column's top-right is this row's first pixel
  switch (m) {
    case 1:
      return L;
    case 2:
      return T;
    case 3:
      return TR;
    case 4:
      return TL;
    case 5:
      return average2(average2(L, TR), T);
    case 6:
      return average2(L, TL);
    case 7:
      return average2(L, T);
    case 8:
      return average2(TL, T);
    case 9:
      return average2(T, TR);
    case 10:
      return average2(average2(L, TL), average2(T, TR));
    case 11:
      return select(T, L, TL);
    case 12:
      return clampedFull(L, T, TL);
    case 13:
      return clampedHalf(average2(L, T), TL);
    default:
      return 0xff000000; // 0, and the unused 14 and 15
  }
}

const delta = (pred: number, color: number) => (((pred << 24) >> 24) * ((color << 24) >> 24)) >> 5;

// One row through one inverse transform: `src` (the transform's input row) to `dst`; `top` is the
// transform's previous output row (predictor only).
function inverse(
  t: Transform,
  y: number,
  width: number,
  src: Uint32Array,
  dst: Uint32Array,
  top: Uint32Array | null,
): void {
  switch (t.type) {
    case PREDICTOR: {
      const tiles = subSample(width, t.bits);
      const modes = t.data.subarray((y >> t.bits) * tiles, (y >> t.bits) * tiles + tiles);
      for (let x = 0; x < width; x++) {
        let p: number;
        if (y === 0) p = x === 0 ? 0xff000000 : dst[x - 1];
        else if (x === 0) p = top![0];
        else p = predict((modes[x >> t.bits] >> 8) & 15, dst, top!, x, width);
        dst[x] = addPixels(src[x], p);
      }
      return;
    }
    case CROSS_COLOR: {
      const tiles = subSample(width, t.bits);
      const row = (y >> t.bits) * tiles;
      for (let x = 0; x < width; x++) {
        const m = t.data[row + (x >> t.bits)];
        const argb = src[x];
        const green = (argb >> 8) & 255;
        let red = (argb >> 16) & 255;
        let blue = argb & 255;
        red = (red + delta(m & 255, green)) & 255;
        blue = (blue + delta((m >> 8) & 255, green)) & 255;
        blue = (blue + delta((m >> 16) & 255, red)) & 255;
        dst[x] = ((argb & 0xff00ff00) | (red << 16) | blue) >>> 0;
      }
      return;
    }
    case SUBTRACT_GREEN:
      for (let x = 0; x < width; x++) {
        const argb = src[x];
        const green = (argb >> 8) & 255;
        const rb = ((argb & 0x00ff00ff) + ((green << 16) | green)) & 0x00ff00ff;
        dst[x] = ((argb & 0xff00ff00) | rb) >>> 0;
      }
      return;
    default: {
      // Colour indexing: 1, 2, 4 or 8 bits of index per pixel, packed into the input's green.
      const bits = t.bits;
      const bitsPerPixel = 8 >> bits;
      const mask = (1 << bitsPerPixel) - 1;
      const within = (1 << bits) - 1;
      for (let x = 0; x < width; x++) {
        const packed = (src[x >> bits] >> 8) & 255;
        dst[x] = t.data[(packed >> (bitsPerPixel * (x & within))) & mask];
      }
    }
  }
}

export interface Vp8lImage {
  width: number;
  height: number;
  // ARGB of the next row, top to bottom (the array is reused).
  nextRow(): Uint32Array;
}

// Reads the transforms, codes and every pixel (libwebp holds them too: a backward reference may reach
// any earlier pixel), yielding between slices; rows come out through the inverse transforms one at a time.
// The main image's codes are refused past what vp8lTableBytes reserves for them.
async function decodeStream(width: number, height: number, br: BitReader, streamBytes: number): Promise<Vp8lImage> {
  const transforms: Transform[] = [];
  const budget = new TableBudget(vp8lTableBytes(width, height, streamBytes));
  const { codes, xsize } = decodeImageStream(br, width, height, budget, transforms);
  const decoder = new PixelDecoder(br, xsize, height, codes);
  while (!decoder.run(SLICE_PIXELS)) await yieldToOthers();
  const pixels = decoder.data;
  // Per transform, counted from the last applied: its output row and (predictor) its previous output.
  const stages = transforms
    .map((t) => ({ t, out: new Uint32Array(t.xsize), prev: new Uint32Array(t.xsize) }))
    .reverse();
  let y = 0;
  return {
    width,
    height,
    nextRow() {
      let row = pixels.subarray(y * xsize, (y + 1) * xsize);
      for (const stage of stages) {
        [stage.out, stage.prev] = [stage.prev, stage.out];
        inverse(stage.t, y, stage.t.xsize, row, stage.out, stage.prev);
        row = stage.out;
      }
      y++;
      return row;
    },
  };
}

export function vp8lInfo(data: Uint8Array): { width: number; height: number; alpha: boolean } {
  if (data.length < 5 || data[0] !== 0x2f || data[4] >> 5 !== 0) {
    throw new WebpError("a lossless header with a bad signature or version");
  }
  const br = new BitReader(data);
  br.read(8);
  const width = br.read(14) + 1;
  const height = br.read(14) + 1;
  const alpha = br.read(1) === 1;
  return { width, height, alpha };
}

export function decodeVp8l(data: Uint8Array): Promise<Vp8lImage> {
  const { width, height } = vp8lInfo(data);
  const br = new BitReader(data);
  br.read(40);
  return decodeStream(width, height, br, data.length);
}

// The ALPH chunk's lossless stream (no header): every row decoded, so that damage is found as libwebp
// finds it; the values are not needed (convert("RGB") drops alpha).
export async function checkLosslessAlpha(data: Uint8Array, width: number, height: number): Promise<void> {
  const image = await decodeStream(width, height, new BitReader(data), data.length);
  for (let y = 0; y < height; y++) image.nextRow();
}
