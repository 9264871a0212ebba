// A synchronous zlib inflater (RFC 1950/1951) for PNG's compressed text chunks, which are read when the file
// is opened (the image data goes through DecompressionStream as it decodes). It answers as Python's
// zlib.decompressobj().decompress(data, limit) does for Pillow's _safe_zlib_decompress: the output up to
// where the data ends (a truncated stream is no error), "error" for what zlib.error reports (a bad header,
// a preset dictionary, a bad block, a wrong Adler-32), "over" when the output would reach the limit with
// compressed data left.

export type Inflated = Uint8Array | "error" | "over";

// Length and distance codes: base values and extra bits (RFC 1951, 3.2.5).
const LENGTH_BASE = [
  3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258,
];
const LENGTH_EXTRA = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0];
const DIST_BASE = [
  1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145,
  8193, 12289, 16385, 24577,
];
const DIST_EXTRA = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13];
const CL_ORDER = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15];

class Truncated extends Error {}
class Invalid extends Error {}
class Over extends Error {}
// A canonical Huffman code: counts per length and the symbols in code order, decoded bit by bit.
interface Code {
  counts: Uint16Array; // [16]
  symbols: Uint16Array;
}

// As zlib's inflate_table: an over-subscribed code is refused, and so is an incomplete one, except a literal
// or distance code of one 1-bit code (the fixed codes are built as they are); a code of no symbols is
// accepted until a symbol is read with it.
function code(lengths: ArrayLike<number>, n: number, check: "lengths" | "symbols" | "fixed"): Code {
  const counts = new Uint16Array(16);
  for (let i = 0; i < n; i++) counts[lengths[i]]++;
  counts[0] = 0;
  let max = 0;
  let left = 1;
  for (let len = 1; len < 16; len++) {
    left = (left << 1) - counts[len];
    if (left < 0) throw new Invalid();
    if (counts[len]) max = len;
  }
  if (check !== "fixed" && left > 0 && max > 0 && (check === "lengths" || max !== 1)) throw new Invalid();
  const offsets = new Uint16Array(16);
  for (let len = 1; len < 15; len++) offsets[len + 1] = offsets[len] + counts[len];
  const symbols = new Uint16Array(n);
  for (let i = 0; i < n; i++) if (lengths[i] !== 0) symbols[offsets[lengths[i]]++] = i;
  return { counts, symbols };
}

let FIXED: { lit: Code; dist: Code } | null = null;
function fixed(): { lit: Code; dist: Code } {
  if (FIXED === null) {
    const lengths = new Uint8Array(288);
    lengths.fill(8, 0, 144).fill(9, 144, 256).fill(7, 256, 280).fill(8, 280, 288);
    FIXED = { lit: code(lengths, 288, "fixed"), dist: code(new Uint8Array(30).fill(5), 30, "fixed") };
  }
  return FIXED;
}

export function inflateZlib(data: Uint8Array, limit: number): Inflated {
  let pos = 0;
  let bitBuf = 0;
  let bitCount = 0;
  let out = new Uint8Array(Math.min(limit, Math.max(1024, data.length * 4)));
  let n = 0;

  const bits = (need: number): number => {
    while (bitCount < need) {
      if (pos >= data.length) throw new Truncated();
      bitBuf |= data[pos++] << bitCount;
      bitCount += 8;
    }
    const v = bitBuf & ((1 << need) - 1);
    bitBuf >>>= need;
    bitCount -= need;
    return v;
  };
  const decode = (c: Code): number => {
    let value = 0;
    let first = 0;
    let index = 0;
    for (let len = 1; len < 16; len++) {
      value |= bits(1);
      const count = c.counts[len];
      if (value - first < count) return c.symbols[index + value - first];
      index += count;
      first = (first + count) << 1;
      value <<= 1;
    }
    throw new Invalid();
  };
  const put = (byte: number) => {
    if (n >= limit) throw new Over();
    if (n === out.length) {
      const grown = new Uint8Array(Math.min(limit, out.length * 2));
      grown.set(out);
      out = grown;
    }
    out[n++] = byte;
  };

  try {
    if (data.length < 2) return out.subarray(0, 0);
    const cmf = data[0];
    const flg = data[1];
    if ((cmf & 15) !== 8 || cmf >> 4 > 7 || (cmf * 256 + flg) % 31 !== 0 || flg & 0x20) return "error";
    pos = 2;
    for (let last = 0; !last; ) {
      last = bits(1);
      const type = bits(2);
      if (type === 0) {
        bitBuf = 0;
        bitCount = 0;
        if (pos + 4 > data.length) throw new Truncated();
        const len = data[pos] | (data[pos + 1] << 8);
        if ((len ^ 0xffff) !== (data[pos + 2] | (data[pos + 3] << 8))) return "error";
        pos += 4;
        for (let i = 0; i < len; i++) {
          if (pos >= data.length) throw new Truncated();
          put(data[pos++]);
        }
        continue;
      }
      if (type === 3) return "error";
      let lit: Code;
      let dist: Code;
      if (type === 1) ({ lit, dist } = fixed());
      else {
        const nlen = bits(5) + 257;
        const ndist = bits(5) + 1;
        const ncode = bits(4) + 4;
        if (nlen > 286 || ndist > 30) return "error";
        const cl = new Uint8Array(19);
        for (let i = 0; i < ncode; i++) cl[CL_ORDER[i]] = bits(3);
        const clCode = code(cl, 19, "lengths");
        const lengths = new Uint8Array(nlen + ndist);
        for (let i = 0; i < nlen + ndist; ) {
          const sym = decode(clCode);
          if (sym < 16) lengths[i++] = sym;
          else {
            let repeat: number;
            let value = 0;
            if (sym === 16) {
              if (i === 0) return "error";
              value = lengths[i - 1];
              repeat = 3 + bits(2);
            } else repeat = sym === 17 ? 3 + bits(3) : 11 + bits(7);
            if (i + repeat > nlen + ndist) return "error";
            lengths.fill(value, i, i + repeat);
            i += repeat;
          }
        }
        if (lengths[256] === 0) return "error";
        lit = code(lengths.subarray(0, nlen), nlen, "symbols");
        dist = code(lengths.subarray(nlen), ndist, "symbols");
      }
      for (;;) {
        const sym = decode(lit);
        if (sym < 256) put(sym);
        else if (sym === 256) break;
        else {
          const l = sym - 257;
          if (l >= 29) return "error";
          const length = LENGTH_BASE[l] + bits(LENGTH_EXTRA[l]);
          const d = decode(dist);
          if (d >= 30) return "error";
          const distance = DIST_BASE[d] + bits(DIST_EXTRA[d]);
          if (distance > n) return "error";
          for (let i = 0; i < length; i++) put(out[n - distance]);
        }
      }
    }
    // The Adler-32 after the last block, big-endian; a stream cut inside it is only truncated.
    pos = Math.min(pos, data.length);
    if (pos + 4 <= data.length) {
      let a = 1;
      let b = 0;
      for (let i = 0; i < n; i++) {
        a = (a + out[i]) % 65521;
        b = (b + a) % 65521;
      }
      const stored = ((data[pos] << 24) | (data[pos + 1] << 16) | (data[pos + 2] << 8) | data[pos + 3]) >>> 0;
      if (stored !== ((b << 16) | a) >>> 0) return "error";
    }
    return out.subarray(0, n);
  } catch (e) {
    if (e instanceof Truncated) return out.subarray(0, n);
    if (e instanceof Invalid) return "error";
    if (e instanceof Over) return "over";
    throw e;
  }
}
