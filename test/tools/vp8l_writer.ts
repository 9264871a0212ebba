// A small VP8L (lossless WebP) writer for tests of the decoder's limits: the header, the predictor,
// cross-colour and subtract-green transforms, a colour cache, a meta prefix image naming any groups, and
// groups of prefix codes of the shapes that cost a decoder the most memory for the fewest bits (every code
// length equal, sent through a one-symbol code-length code). Pixels are literals only, so every code used
// for them is a complete code whose canonical code of symbol s is s (all lengths equal).

export class BitWriter {
  private bytes: number[] = [];
  private bit = 0;

  // `n` bits of `value`, least significant first (VP8L's order for numbers).
  write(value: number, n: number): void {
    for (let i = 0; i < n; i++) {
      if (this.bit === 0) this.bytes.push(0);
      this.bytes[this.bytes.length - 1] |= ((value >>> i) & 1) << this.bit;
      this.bit = (this.bit + 1) & 7;
    }
  }

  // A prefix code's `len`-bit code, its first bit first.
  code(code: number, len: number): void {
    for (let i = len - 1; i >= 0; i--) this.write((code >> i) & 1, 1);
  }

  finish(): Uint8Array {
    return Uint8Array.from(this.bytes);
  }
}

const CODE_LENGTH_ORDER = [17, 18, 0, 1, 2, 3, 4, 5, 16, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];

// How a code is sent, and how its symbols are written.
export type Code =
  | { kind: "single"; symbol: number } // a simple code of one symbol: no bits per symbol
  | { kind: "flat"; bits: number }; // symbols 0 .. 2^bits - 1, each `bits` long (a normal code)

export function writeCode(w: BitWriter, code: Code, alphabet: number): void {
  if (code.kind === "single") {
    w.write(1, 1); // simple
    w.write(0, 1); // one symbol
    const wide = code.symbol > 1;
    w.write(wide ? 1 : 0, 1);
    w.write(code.symbol, wide ? 8 : 1);
    return;
  }
  const count = 1 << code.bits;
  if (count > alphabet) throw new RangeError(`${count} symbols in an alphabet of ${alphabet}`);
  w.write(0, 1); // normal
  // The code-length code: one symbol, `bits`, which takes no bits to read.
  const last = CODE_LENGTH_ORDER.indexOf(code.bits);
  w.write(last + 1 - 4, 4);
  for (let i = 0; i <= last; i++) w.write(i === last ? 1 : 0, 3);
  if (count === alphabet) {
    w.write(0, 1); // every length is read
  } else {
    // max_symbol: `count` lengths are read, the rest are 0.
    w.write(1, 1);
    let k = 0;
    while (2 + 2 * k < 32 - Math.clz32(count - 2)) k++;
    w.write(k, 3);
    w.write(count - 2, 2 + 2 * k);
  }
}

export function writeSymbol(w: BitWriter, code: Code, symbol: number): void {
  if (code.kind === "single") {
    if (symbol !== code.symbol) throw new RangeError(`symbol ${symbol} in a code of ${code.symbol} only`);
    return;
  }
  w.code(symbol, code.bits);
}

// Green, red, blue, alpha, distance.
export type Group = [Code, Code, Code, Code, Code];

const FLAT8: Code = { kind: "flat", bits: 8 };
const NONE: Code = { kind: "single", symbol: 0 };
// Any ARGB pixel at 32 bits.
export const LITERALS: Group = [FLAT8, FLAT8, FLAT8, FLAT8, NONE];

// One entropy-coded image: the colour cache bits, then (main image only) the meta prefix image, the groups
// and the pixels as literals of the group of their tile. `groups[g]` null: a group no tile names, sent as
// five one-symbol codes.
export interface Entropy {
  cacheBits: number;
  meta?: { bits: number; groupOf: (tileX: number, tileY: number) => number };
  groups: (Group | null)[];
}

const ALPHABETS = [256 + 24, 256, 256, 256, 40];

function writeEntropyImage(
  w: BitWriter,
  width: number,
  height: number,
  pixels: Uint32Array,
  e: Entropy,
  main: boolean,
) {
  if (e.cacheBits > 0) {
    w.write(1, 1);
    w.write(e.cacheBits, 4);
  } else {
    w.write(0, 1);
  }
  if (main) {
    if (e.meta) {
      w.write(1, 1);
      w.write(e.meta.bits - 2, 3);
      const mw = Math.ceil(width / (1 << e.meta.bits));
      const mh = Math.ceil(height / (1 << e.meta.bits));
      const cells = new Uint32Array(mw * mh);
      for (let y = 0; y < mh; y++) for (let x = 0; x < mw; x++) cells[y * mw + x] = e.meta.groupOf(x, y) << 8;
      writeEntropyImage(w, mw, mh, cells, { cacheBits: 0, groups: [LITERALS] }, false);
    } else {
      w.write(0, 1);
    }
  }
  const cache = e.cacheBits > 0 ? 1 << e.cacheBits : 0;
  for (const group of e.groups) {
    for (let j = 0; j < 5; j++) {
      writeCode(w, group ? group[j] : NONE, ALPHABETS[j] + (j === 0 ? cache : 0));
    }
  }
  const bits = e.meta?.bits ?? 0;
  const mw = Math.ceil(width / (1 << bits));
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const g = e.meta ? e.meta.groupOf(x >> bits, y >> bits) : 0;
      const group = e.groups[g];
      if (!group) throw new RangeError(`pixel ${x},${y} in unsent group ${g} (of ${mw} tiles a row)`);
      const p = pixels[y * width + x];
      writeSymbol(w, group[0], (p >>> 8) & 255);
      writeSymbol(w, group[1], (p >>> 16) & 255);
      writeSymbol(w, group[2], p & 255);
      writeSymbol(w, group[3], p >>> 24);
    }
  }
}

export interface Transform {
  type: "predictor" | "cross-colour" | "subtract-green";
  bits?: number; // predictor, cross-colour: tiles of 2^bits
  data?: Uint32Array; // their sub-image (ARGB), ceil(w / 2^bits) x ceil(h / 2^bits)
}

// A VP8L stream (the VP8L chunk's payload), its residuals given as ARGB. Without its header (`header`
// false) it is an ALPH chunk's lossless data, the alpha being the green channel.
export function vp8lStream(
  width: number,
  height: number,
  residuals: Uint32Array,
  transforms: Transform[],
  entropy: Entropy,
  header = true,
): Uint8Array {
  const w = new BitWriter();
  if (header) {
    w.write(0x2f, 8);
    w.write(width - 1, 14);
    w.write(height - 1, 14);
    w.write(1, 1); // alpha is used
    w.write(0, 3); // version
  }
  for (const t of transforms) {
    w.write(1, 1);
    w.write({ predictor: 0, "cross-colour": 1, "subtract-green": 2 }[t.type], 2);
    if (t.type !== "subtract-green") {
      const bits = t.bits!;
      w.write(bits - 2, 3);
      const tw = Math.ceil(width / (1 << bits));
      const th = Math.ceil(height / (1 << bits));
      writeEntropyImage(w, tw, th, t.data!, { cacheBits: 0, groups: [LITERALS] }, false);
    }
  }
  w.write(0, 1);
  writeEntropyImage(w, width, height, residuals, entropy, true);
  return w.finish();
}

// `file` (a RIFF WebP) with its ALPH chunk's payload replaced by `payload`.
export function withAlpha(file: Uint8Array, payload: Uint8Array): Uint8Array {
  const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const chunks: Uint8Array[] = [file.subarray(0, 12)];
  for (let pos = 12; pos < file.length; ) {
    const tag = String.fromCharCode(...file.subarray(pos, pos + 4));
    const size = view.getUint32(pos + 4, true);
    const next = pos + 8 + size + (size & 1);
    if (tag === "ALPH") {
      const chunk = new Uint8Array(8 + payload.length + (payload.length & 1));
      chunk.set(file.subarray(pos, pos + 4));
      new DataView(chunk.buffer).setUint32(4, payload.length, true);
      chunk.set(payload, 8);
      chunks.push(chunk);
    } else {
      chunks.push(file.subarray(pos, next));
    }
    pos = next;
  }
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  new DataView(out.buffer).setUint32(4, out.length - 8, true);
  return out;
}

// The stream in a simple WebP file.
export function webpFile(stream: Uint8Array): Uint8Array {
  const padded = stream.length + (stream.length & 1);
  const out = new Uint8Array(20 + padded);
  const view = new DataView(out.buffer);
  out.set([0x52, 0x49, 0x46, 0x46], 0); // RIFF
  view.setUint32(4, 12 + padded, true);
  out.set([0x57, 0x45, 0x42, 0x50, 0x56, 0x50, 0x38, 0x4c], 8); // WEBPVP8L
  view.setUint32(16, stream.length, true);
  out.set(stream, 20);
  return out;
}
