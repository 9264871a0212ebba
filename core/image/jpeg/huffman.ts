// Huffman entropy decoding: the bit reader, sequential blocks, and the four progressive scan kinds (DC first,
// DC refine, AC first, AC refine) exactly as libjpeg-turbo's jdhuff.c / jdphuff.c read them, including what
// they do with damaged data: a marker met inside the entropy data ends it, the missing bits read as zeros,
// and the rest of the segment decodes as zero coefficients (a flat gray), with a warning that Pillow ignores.
// The end of the file inside entropy data is different: Pillow reports "image file is truncated".

import { truncatedJpeg } from "./errors.ts";
import { ZIGZAG } from "./zigzag.ts";

const LOOKAHEAD = 9;
const FAST_BITS = 11; // AC codes and their value bits decoded in one lookup when they fit in this many bits

export interface HuffmanTable {
  valid: boolean; // false when the code lengths overflow (libjpeg refuses such a table when a scan uses it)
  maxSymbol: number;
  lookup: Uint16Array; // (512) by the next 9 bits: length << 8 | symbol, 0 for longer codes
  maxCode: Int32Array; // (18) largest code of each length, -1 if none; [17] is a sentinel
  valOffset: Int32Array; // (18) symbol index of the first code of each length minus that code
  symbols: Uint8Array;
  // (2048) by the next 11 bits, for AC codes whose code and value bits both fit in them: value << 8 |
  // run << 4 | bits used; 0 otherwise. Most AC coefficients of a photo decode through this one lookup.
  fastAc: Int32Array;
}

// What one table holds (lookup, maxCode, valOffset, at most 256 symbols, fastAc): a decoder holds at most
// eight at once, four DC and four AC slots (a DHT between scans replaces one).
export const HUFFMAN_TABLE_BYTES = (1 << LOOKAHEAD) * 2 + 2 * 18 * 4 + 256 + (1 << FAST_BITS) * 4;

export function buildHuffmanTable(counts: Uint8Array, symbols: Uint8Array): HuffmanTable {
  const lookup = new Uint16Array(1 << LOOKAHEAD);
  const maxCode = new Int32Array(18).fill(-1);
  const valOffset = new Int32Array(18);
  let code = 0;
  let k = 0;
  let valid = true;
  let maxSymbol = 0;
  for (let i = 0; i < symbols.length; i++) maxSymbol = Math.max(maxSymbol, symbols[i]);
  for (let len = 1; len <= 16; len++) {
    const n = counts[len - 1];
    valOffset[len] = k - code;
    for (let i = 0; i < n; i++, k++, code++) {
      if (len <= LOOKAHEAD) {
        const shift = LOOKAHEAD - len;
        const entry = (len << 8) | symbols[k];
        for (let j = code << shift, stop = (code + 1) << shift; j < stop && j < lookup.length; j++) lookup[j] = entry;
      }
    }
    if (n > 0) maxCode[len] = code - 1;
    // A code may not be all ones, so the next code must still fit in len bits.
    if (code >= 1 << len) valid = false;
    code <<= 1;
  }
  maxCode[17] = 0x7fffffff;
  const fastAc = new Int32Array(1 << FAST_BITS);
  for (let peek = 0; peek < fastAc.length; peek++) {
    for (let len = 1; len <= FAST_BITS; len++) {
      const c = peek >> (FAST_BITS - len);
      if (c > maxCode[len]) continue;
      const symbol = symbols[c + valOffset[len]];
      const run = symbol >> 4;
      const size = symbol & 15;
      if (size !== 0 && len + size <= FAST_BITS) {
        const bits = (peek >> (FAST_BITS - len - size)) & ((1 << size) - 1);
        const value = bits < 1 << (size - 1) ? bits - (1 << size) + 1 : bits;
        fastAc[peek] = (value << 8) | (run << 4) | (len + size);
      }
      break;
    }
  }
  return { valid, maxSymbol, lookup, maxCode, valOffset, symbols: symbols.slice(), fastAc };
}

export class BitReader {
  data: Uint8Array;
  pos: number; // next byte to read; at a marker, the marker's code byte
  acc = 0; // the low `bits` bits are unread
  bits = 0;
  pad = 0; // how many of those are zeros made up after a marker
  atMarker = false;

  constructor(data: Uint8Array, pos: number) {
    this.data = data;
    this.pos = pos;
  }

  // Tops the buffer up to at least 25 bits (libjpeg's MIN_GET_BITS). The plain bytes of entropy data in
  // a local loop; a 0xFF (stuffed zero or marker) through the careful path.
  fill(): void {
    const d = this.data;
    const n = d.length;
    let p = this.pos;
    let acc = this.acc;
    let bits = this.bits;
    if (!this.atMarker) {
      while (bits <= 24 && p < n) {
        const byte = d[p];
        if (byte === 0xff) break;
        acc = (acc << 8) | byte;
        bits += 8;
        p++;
      }
      this.pos = p;
      this.acc = acc;
      this.bits = bits;
      if (bits > 24) return;
    }
    while (this.bits <= 24) {
      let byte = 0;
      if (this.atMarker) {
        this.pad += 8;
      } else {
        const p = this.pos;
        if (p >= n) throw truncatedJpeg();
        byte = d[p];
        if (byte !== 0xff) {
          this.pos = p + 1;
        } else {
          let q = p + 1;
          while (q < n && d[q] === 0xff) q++;
          if (q >= n) throw truncatedJpeg();
          if (d[q] === 0) {
            this.pos = q + 1;
          } else {
            this.atMarker = true;
            this.pos = q;
            this.pad += 8;
            byte = 0;
          }
        }
      }
      this.acc = (this.acc << 8) | byte;
      this.bits += 8;
    }
  }

  // True once a bit past the real data was consumed: libjpeg's insufficient_data.
  get exhausted(): boolean {
    return this.bits < this.pad;
  }

  // Drops buffered bits, as a restart marker or the end of a scan does.
  reset(): void {
    this.acc = 0;
    this.bits = 0;
    this.pad = 0;
  }

  bit(): number {
    if (this.bits < 1) this.fill();
    this.bits--;
    return (this.acc >>> this.bits) & 1;
  }

  // Skips n bits and reads the one after them, as skip(n) then bit() read them.
  bitAfter(n: number): number {
    while (n > 16) {
      this.getBits(16);
      n -= 16;
    }
    if (this.bits <= n) this.fill();
    this.bits -= n + 1;
    return (this.acc >>> this.bits) & 1;
  }

  skip(n: number): void {
    if (n === 0) return;
    while (n > 16) {
      this.getBits(16);
      n -= 16;
    }
    if (n > 0) this.getBits(n);
  }

  getBits(n: number): number {
    if (this.bits < n) this.fill();
    this.bits -= n;
    return (this.acc >>> this.bits) & ((1 << n) - 1);
  }

  // An n-bit magnitude category value, sign-extended (JPEG's EXTEND).
  receiveExtend(n: number): number {
    if (this.bits < n) this.fill();
    this.bits -= n;
    const v = (this.acc >>> this.bits) & ((1 << n) - 1);
    return v < 1 << (n - 1) ? v - (1 << n) + 1 : v;
  }

  decode(t: HuffmanTable): number {
    if (this.bits < 16) this.fill();
    const e = t.lookup[(this.acc >>> (this.bits - LOOKAHEAD)) & ((1 << LOOKAHEAD) - 1)];
    if (e !== 0) {
      this.bits -= e >> 8;
      return e & 0xff;
    }
    const maxCode = t.maxCode;
    for (let len = LOOKAHEAD + 1; len <= 16; len++) {
      const code = (this.acc >>> (this.bits - len)) & ((1 << len) - 1);
      if (code <= maxCode[len]) {
        this.bits -= len;
        return t.symbols[(code + t.valOffset[len]) & 0xff];
      }
    }
    // No code matches: libjpeg warns, drops 17 bits (it reaches its sentinel length) and reads symbol 0.
    if (this.bits < 17) this.fill();
    this.bits -= 17;
    return 0;
  }
}

// One sequential block into blk[off..off + 64) (natural order, dequantized by q, zeroed by the caller).
// Returns the new DC predictor. The DC coefficient is kept as a 16-bit value, wrapping as libjpeg's JCOEF
// does.
export function decodeBlock(
  r: BitReader,
  dc: HuffmanTable,
  ac: HuffmanTable,
  blk: Int32Array,
  off: number,
  q: Int32Array,
  pred: number,
): number {
  const s = r.decode(dc);
  const dcv = (pred + (s === 0 ? 0 : r.receiveExtend(s))) | 0;
  blk[off] = ((dcv << 16) >> 16) * q[0];
  const fast = ac.fastAc;
  // The hot loop of decoding: the reader's bit buffer is kept in locals and written back around calls.
  let acc = r.acc;
  let bits = r.bits;
  for (let k = 1; k < 64; k++) {
    if (bits < 16) {
      r.bits = bits;
      r.fill();
      acc = r.acc;
      bits = r.bits;
    }
    const f = fast[(acc >>> (bits - FAST_BITS)) & ((1 << FAST_BITS) - 1)];
    if (f !== 0) {
      bits -= f & 15;
      k += (f >> 4) & 15;
      const z = ZIGZAG[k];
      blk[off + z] = (f >> 8) * q[z];
      continue;
    }
    r.bits = bits;
    const rs = r.decode(ac);
    const run = rs >> 4;
    const size = rs & 15;
    if (size !== 0) {
      k += run;
      const z = ZIGZAG[k];
      blk[off + z] = r.receiveExtend(size) * q[z];
    } else if (run !== 15) {
      acc = r.acc;
      bits = r.bits;
      break;
    } else {
      k += 15;
    }
    acc = r.acc;
    bits = r.bits;
  }
  r.bits = bits;
  return dcv;
}

// A sequential block whose AC coefficients no IDCT reads (scaled DCT size 1): they are parsed and dropped,
// as libjpeg-turbo does. Returns the new DC predictor; the DC value itself is the predictor, as int16.
export function skipBlockAc(r: BitReader, dc: HuffmanTable, ac: HuffmanTable, pred: number): number {
  const s = r.decode(dc);
  const dcv = (pred + (s === 0 ? 0 : r.receiveExtend(s))) | 0;
  const fast = ac.fastAc;
  for (let k = 1; k < 64; k++) {
    if (r.bits < 16) r.fill();
    const f = fast[(r.acc >>> (r.bits - FAST_BITS)) & ((1 << FAST_BITS) - 1)];
    if (f !== 0) {
      r.bits -= f & 15;
      k += (f >> 4) & 15;
      continue;
    }
    const rs = r.decode(ac);
    const size = rs & 15;
    if (size !== 0) {
      k += rs >> 4;
      r.skip(size);
    } else {
      if (rs >> 4 !== 15) break;
      k += 15;
    }
  }
  return dcv;
}

export function decodeDcFirst(r: BitReader, dc: HuffmanTable, blk: Int16Array, off: number, pred: number, al: number) {
  const s = r.decode(dc);
  const dcv = (pred + (s === 0 ? 0 : r.receiveExtend(s))) | 0;
  blk[off] = dcv << al;
  return dcv;
}

export function decodeDcRefine(r: BitReader, blk: Int16Array, off: number, al: number): void {
  if (r.bit()) blk[off] |= 1 << al;
}

// AC first scan of one block; eobrun in, eobrun out. last[nb] keeps the block's highest zigzag index that
// may be nonzero, so that refinement can stop there.
export function decodeAcFirst(
  r: BitReader,
  ac: HuffmanTable,
  blk: Int16Array,
  off: number,
  last: Uint8Array,
  nb: number,
  ss: number,
  se: number,
  al: number,
  eobrun: number,
): number {
  if (eobrun > 0) return eobrun - 1;
  for (let k = ss; k <= se; k++) {
    const rs = r.decode(ac);
    const run = rs >> 4;
    const size = rs & 15;
    if (size !== 0) {
      k += run;
      blk[off + ZIGZAG[k]] = r.receiveExtend(size) * (1 << al);
      const at = Math.min(k, 63);
      if (at > last[nb]) last[nb] = at;
    } else if (run === 15) {
      k += 15;
    } else {
      let n = 1 << run;
      if (run !== 0) n += r.getBits(run);
      return n - 1;
    }
  }
  return 0;
}

// AC refinement scan of one block (the correction-bit pass); eobrun in, eobrun out.
export function decodeAcRefine(
  r: BitReader,
  ac: HuffmanTable,
  blk: Int16Array,
  off: number,
  last: Uint8Array,
  nb: number,
  ss: number,
  se: number,
  al: number,
  eobrun: number,
): number {
  const p1 = 1 << al;
  let k = ss;
  if (eobrun === 0) {
    for (; k <= se; k++) {
      const rs = r.decode(ac);
      let run = rs >> 4;
      const size = rs & 15;
      let value = 0;
      if (size !== 0) {
        value = r.bit() ? p1 : -p1;
      } else if (run !== 15) {
        eobrun = 1 << run;
        if (run !== 0) eobrun += r.getBits(run);
        break;
      }
      do {
        const z = off + ZIGZAG[k];
        const c = blk[z];
        if (c !== 0) {
          if (r.bit() && (c & p1) === 0) blk[z] = c >= 0 ? c + p1 : c - p1;
        } else if (--run < 0) {
          break;
        }
        k++;
      } while (k <= se);
      if (value !== 0) {
        blk[off + ZIGZAG[k]] = value;
        const at = Math.min(k, 63);
        if (at > last[nb]) last[nb] = at;
      }
    }
  }
  if (eobrun > 0) {
    // The hot loop of refinement: past the block's last nonzero coefficient there is nothing to correct.
    const stop = Math.min(se, last[nb]);
    for (; k <= stop; k++) {
      const z = off + ZIGZAG[k];
      const c = blk[z];
      if (c !== 0 && r.bit() && (c & p1) === 0) blk[z] = c >= 0 ? c + p1 : c - p1;
    }
    eobrun--;
  }
  return eobrun;
}

// The same two AC scans for a compact block store (DCT scaling keeps only the coefficients its IDCT reads):
// the kept coefficient at zigzag index k is coefs[o + keep[k]], every other one only a nonzero bit, bit k of
// the pair nz[2 * nb], nz[2 * nb + 1] (zigzag order). Refinement needs no more: it reads a correction bit for
// each nonzero coefficient and places new ones on zero positions; a dropped coefficient's value is never read.
// `keep` is indexed by zigzag position here.

export function decodeAcFirstCompact(
  r: BitReader,
  ac: HuffmanTable,
  coefs: Int16Array,
  o: number,
  keep: Int8Array,
  nz: Uint32Array,
  nb: number,
  ss: number,
  se: number,
  al: number,
  eobrun: number,
): number {
  if (eobrun > 0) return eobrun - 1;
  let lo = nz[2 * nb];
  let hi = nz[2 * nb + 1];
  let k = ss;
  for (; k <= se; k++) {
    const rs = r.decode(ac);
    const run = rs >> 4;
    const size = rs & 15;
    if (size !== 0) {
      k += run;
      const at = Math.min(k, 63);
      const v = r.receiveExtend(size) * (1 << al);
      const slot = keep[at];
      if (slot >= 0) coefs[o + slot] = v;
      else if ((v << 16) >> 16 !== 0) {
        if (at < 32) lo |= 1 << at;
        else hi |= 1 << (at - 32);
      } else if (at < 32) lo &= ~(1 << at);
      else hi &= ~(1 << (at - 32));
    } else if (run === 15) {
      k += 15;
    } else {
      eobrun = 1 << run;
      if (run !== 0) eobrun += r.getBits(run);
      eobrun--;
      break;
    }
  }
  nz[2 * nb] = lo;
  nz[2 * nb + 1] = hi;
  return k > se ? 0 : eobrun;
}

export function decodeAcRefineCompact(
  r: BitReader,
  ac: HuffmanTable,
  coefs: Int16Array,
  o: number,
  keep: Int8Array,
  keptZigzag: Int8Array, // zigzag indices of the kept coefficients, ascending
  nz: Uint32Array,
  nb: number,
  ss: number,
  se: number,
  al: number,
  eobrun: number,
): number {
  const p1 = 1 << al;
  let lo = nz[2 * nb];
  let hi = nz[2 * nb + 1];
  let k = ss;
  if (eobrun === 0) {
    for (; k <= se; k++) {
      const rs = r.decode(ac);
      let run = rs >> 4;
      const size = rs & 15;
      let value = 0;
      if (size !== 0) {
        value = r.bit() ? p1 : -p1;
      } else if (run !== 15) {
        eobrun = 1 << run;
        if (run !== 0) eobrun += r.getBits(run);
        break;
      }
      // Correction bits of dropped coefficients are only skipped; they are counted and skipped together.
      let pending = 0;
      do {
        const slot = keep[k];
        if (slot >= 0) {
          const c = coefs[o + slot];
          if (c !== 0) {
            if (r.bitAfter(pending) && (c & p1) === 0) coefs[o + slot] = c >= 0 ? c + p1 : c - p1;
            pending = 0;
          } else if (--run < 0) {
            break;
          }
        } else if (((k < 32 ? lo >>> k : hi >>> (k - 32)) & 1) === 1) {
          pending++;
        } else if (--run < 0) {
          break;
        }
        k++;
      } while (k <= se);
      r.skip(pending);
      if (value !== 0) {
        const at = Math.min(k, 63);
        const slot = keep[at];
        if (slot >= 0) coefs[o + slot] = value;
        else if (at < 32) lo |= 1 << at;
        else hi |= 1 << (at - 32);
      }
    }
  }
  if (eobrun > 0) {
    // The hot path of refinement at reduced scale: the correction bits of dropped coefficients are counted
    // off the nonzero bits between kept nonzero ones and skipped with the read of the next kept one's bit.
    for (let i = 0; i < keptZigzag.length; i++) {
      const kz = keptZigzag[i];
      if (kz < k) continue;
      if (kz > se) break;
      const slot = keep[kz];
      const c = coefs[o + slot];
      if (c === 0) continue;
      if (r.bitAfter(countBetween(lo, hi, k, kz)) && (c & p1) === 0) coefs[o + slot] = c >= 0 ? c + p1 : c - p1;
      k = kz + 1;
    }
    if (k <= se) r.skip(countBetween(lo, hi, k, se + 1));
    eobrun--;
  }
  nz[2 * nb] = lo;
  nz[2 * nb + 1] = hi;
  return eobrun;
}

// Refinement of a band in which no coefficient is kept (AC scans at scaled DCT size 1): only the nonzero
// bits change and every correction bit is skipped.
export function decodeAcRefineDropped(
  r: BitReader,
  ac: HuffmanTable,
  nz: Uint32Array,
  nb: number,
  ss: number,
  se: number,
  eobrun: number,
): number {
  let lo = nz[2 * nb];
  let hi = nz[2 * nb + 1];
  let k = ss;
  if (eobrun === 0) {
    for (; k <= se; k++) {
      const rs = r.decode(ac);
      let run = rs >> 4;
      const size = rs & 15;
      if (size !== 0) {
        r.bit(); // the new coefficient's sign
      } else if (run !== 15) {
        eobrun = 1 << run;
        if (run !== 0) eobrun += r.getBits(run);
        break;
      }
      let pending = 0;
      do {
        if (((k < 32 ? lo >>> k : hi >>> (k - 32)) & 1) === 1) pending++;
        else if (--run < 0) break;
        k++;
      } while (k <= se);
      r.skip(pending);
      if (size !== 0) {
        const at = Math.min(k, 63);
        if (at < 32) lo |= 1 << at;
        else hi |= 1 << (at - 32);
      }
    }
  }
  if (eobrun > 0) {
    if (k <= se) r.skip(countBetween(lo, hi, k, se + 1));
    eobrun--;
  }
  nz[2 * nb] = lo;
  nz[2 * nb + 1] = hi;
  return eobrun;
}

function popcount(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return Math.imul((x + (x >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24;
}

// Bits at positions >= k of the low and high words, k = 0..64.
const FROM_LO = Uint32Array.from({ length: 65 }, (_, k) => (k >= 32 ? 0 : (0xffffffff << k) >>> 0));
const FROM_HI = Uint32Array.from({ length: 65 }, (_, k) =>
  k <= 32 ? 0xffffffff : k >= 64 ? 0 : (0xffffffff << (k - 32)) >>> 0,
);

// How many set bits of (lo, hi) lie at positions [from, to).
function countBetween(lo: number, hi: number, from: number, to: number): number {
  return popcount(lo & FROM_LO[from] & ~FROM_LO[to]) + popcount(hi & FROM_HI[from] & ~FROM_HI[to]);
}
