// WebP lossless (VP8L), as libwebp 1.2.4 decodes it: the header, the transforms (predictor, cross-colour,
// subtract-green, colour-indexing), the colour cache, the prefix codes (simple and normal, grouped by a
// meta prefix image), LZ77 backward references with the 2-D distance map. Every bitstream error libwebp
// reports (an incomplete or over-full code, a copy before the first pixel or past the last, reading past
// the end of the data) is thrown as WebpError. The ALPH chunk's lossless alpha is the same stream
// without its header, its pixels' green channel being the alpha.

import { EdgevitError } from "../../errors.ts";
import { yieldToOthers } from "../bytes.ts";

export class WebpError extends Error {}

// Prefix-code groups kept for one image (each up to ~3 KiB of tables). libwebp allocates ~12 KiB per group
// for as many as the meta image names; encoders use a few hundred at most.
const MAX_GROUPS = 4096;
// Pixels decoded between yields to the event loop.
const SLICE_PIXELS = 1 << 20;

const NUM_LITERAL_CODES = 256;
const NUM_LENGTH_CODES = 24;
const NUM_DISTANCE_CODES = 40;
const MAX_CACHE_BITS = 11;
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

// A canonical prefix code: an 8-bit lookup for short codes, the count/symbol walk (as in zlib's puff) for
// longer ones. A code with one symbol takes no bits.
class PrefixCode {
  private readonly fast = new Uint16Array(256); // symbol << 4 | length, or 0 for a longer code
  private readonly count = new Uint16Array(16);
  private readonly symbols: Uint16Array;
  readonly single: number; // the symbol of a one-symbol code, else -1

  constructor(lengths: Uint8Array, n: number) {
    const count = this.count;
    let used = 0;
    for (let s = 0; s < n; s++) {
      if (lengths[s] > 15) throw new WebpError("a code length over 15");
      count[lengths[s]]++;
      if (lengths[s]) used++;
    }
    if (used === 0) throw new WebpError("a prefix code without symbols");
    const offsets = new Uint16Array(16);
    for (let len = 1; len < 15; len++) offsets[len + 1] = offsets[len] + count[len];
    this.symbols = new Uint16Array(used);
    for (let s = 0; s < n; s++) if (lengths[s]) this.symbols[offsets[lengths[s]]++] = s;
    if (used === 1) {
      this.single = this.symbols[0];
      return;
    }
    this.single = -1;
    let left = 1; // Kraft: the code must fill the tree exactly
    for (let len = 1; len <= 15; len++) {
      left = left * 2 - count[len];
      if (left < 0) throw new WebpError("an over-subscribed prefix code");
    }
    if (left !== 0) throw new WebpError("an incomplete prefix code");
    // Codes of up to 8 bits, bit-reversed into the lookup (the stream sends a code's first bit first).
    let code = 0;
    let k = 0;
    for (let len = 1; len <= 15; len++) {
      for (let i = 0; i < count[len]; i++, k++) {
        if (len <= 8) {
          let rev = 0;
          for (let b = 0; b < len; b++) rev |= ((code >> b) & 1) << (len - 1 - b);
          for (let r = rev; r < 256; r += 1 << len) this.fast[r] = (this.symbols[k] << 4) | len;
        }
        code++;
      }
      code <<= 1;
    }
  }

  read(br: BitReader): number {
    if (this.single >= 0) return this.single;
    const hit = this.fast[br.peek8()];
    if (hit !== 0) {
      br.skip(hit & 15);
      return hit >> 4;
    }
    let code = 0;
    let first = 0;
    let index = 0;
    for (let len = 1; len <= 15; len++) {
      code |= br.bit();
      const count = this.count[len];
      if (code - count < first) return this.symbols[index + (code - first)];
      index += count;
      first = (first + count) << 1;
      code <<= 1;
    }
    throw new WebpError("an invalid prefix code");
  }
}

// Green (with lengths and cache), red, blue, alpha, distance.
type Group = [PrefixCode, PrefixCode, PrefixCode, PrefixCode, PrefixCode];

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
      const extra = [2, 3, 7][len - 16];
      const offset = [3, 3, 11][len - 16];
      const repeat = br.read(extra) + offset;
      if (s + repeat > n) throw new WebpError("a code length repeat past the alphabet");
      out.fill(len === 16 ? prev : 0, s, s + repeat);
      s += repeat;
    }
  }
}

function readPrefixCode(br: BitReader, n: number): PrefixCode {
  // The simple code may name a symbol past the alphabet (libwebp's buffer is the largest alphabet's).
  const lengths = new Uint8Array(Math.max(n, 256));
  if (br.read(1)) {
    const two = br.read(1);
    lengths[br.read(br.read(1) ? 8 : 1)] = 1;
    if (two) lengths[br.read(8)] = 1;
  } else {
    const count = br.read(4) + 4;
    const lengthLengths = new Uint8Array(19);
    for (let i = 0; i < count; i++) lengthLengths[CODE_LENGTH_ORDER[i]] = br.read(3);
    readCodeLengths(br, new PrefixCode(lengthLengths, 19), n, lengths);
  }
  if (br.eos) throw new WebpError("the data ends inside a prefix code");
  return new PrefixCode(lengths, n);
}

const subSample = (size: number, bits: number) => (size + (1 << bits) - 1) >> bits;

interface Transform {
  type: number;
  bits: number;
  xsize: number; // the width the transform's output has
  data: Uint32Array; // the sub-image (predictor, cross-colour) or the colour map
}

// The entropy-coded image: the prefix codes and, for the main image, the groups' layout.
interface Codes {
  groups: Group[];
  meta: Uint32Array | null; // group index per tile
  metaBits: number;
  metaWidth: number;
  cacheBits: number;
}

function readCodes(br: BitReader, xsize: number, ysize: number, cacheBits: number, level0: boolean): Codes {
  let meta: Uint32Array | null = null;
  let metaBits = 0;
  let metaWidth = 0;
  let numGroups = 1;
  if (level0 && br.read(1)) {
    metaBits = br.read(3) + 2;
    metaWidth = subSample(xsize, metaBits);
    meta = decodeImageStream(br, metaWidth, subSample(ysize, metaBits), false).data;
    for (let i = 0; i < meta.length; i++) {
      meta[i] = (meta[i] >> 8) & 0xffff;
      numGroups = Math.max(numGroups, meta[i] + 1);
    }
  }
  if (br.eos) throw new WebpError("the data ends inside the meta prefix image");
  const cacheSize = cacheBits > 0 ? 1 << cacheBits : 0;
  const sizes = [NUM_LITERAL_CODES + NUM_LENGTH_CODES + cacheSize, 256, 256, 256, NUM_DISTANCE_CODES];
  // Groups the meta image never names are read (and checked) but not kept, as libwebp does for large counts.
  const used = new Uint8Array(numGroups);
  if (meta) for (let i = 0; i < meta.length; i++) used[meta[i]] = 1;
  else used[0] = 1;
  let kept = 0;
  for (let g = 0; g < numGroups; g++) kept += used[g];
  if (kept > MAX_GROUPS) {
    throw new EdgevitError(
      "image_too_large",
      `The WebP image uses ${kept} groups of prefix codes; edgevit decodes lossless WebP with up to ${MAX_GROUPS}.`,
    );
  }
  const groups: Group[] = new Array(numGroups);
  for (let g = 0; g < numGroups; g++) {
    const group = sizes.map((n) => readPrefixCode(br, n)) as Group;
    if (used[g]) groups[g] = group;
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

// An image stream: for the main image (level0) its transforms first; then the colour cache and codes;
// then the pixels (sub-images only: the main image's pixels are read by the caller).
function decodeImageStream(
  br: BitReader,
  xsize: number,
  ysize: number,
  level0: boolean,
  transforms: Transform[] = [],
): { data: Uint32Array; codes: Codes; xsize: number } {
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
        t.data = decodeImageStream(br, subSample(width, t.bits), subSample(ysize, t.bits), false).data;
      } else if (type === COLOR_INDEXING) {
        const colors = br.read(8) + 1;
        t.bits = colors > 16 ? 0 : colors > 4 ? 1 : colors > 2 ? 2 : 3;
        width = subSample(width, t.bits);
        const stored = decodeImageStream(br, colors, 1, false).data;
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
  const codes = readCodes(br, width, ysize, cacheBits, level0);
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
async function decodeStream(width: number, height: number, br: BitReader): Promise<Vp8lImage> {
  const transforms: Transform[] = [];
  const { codes, xsize } = decodeImageStream(br, width, height, true, transforms);
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
  return decodeStream(width, height, br);
}

// The ALPH chunk's lossless stream (no header): every row decoded, so that damage is found as libwebp
// finds it; the values are not needed (convert("RGB") drops alpha).
export async function checkLosslessAlpha(data: Uint8Array, width: number, height: number): Promise<void> {
  const image = await decodeStream(width, height, new BitReader(data));
  for (let y = 0; y < height; y++) image.nextRow();
}
