// Progressive Huffman decoding of a band of blocks (DC first, DC refine, AC first, AC refine), the same
// steps as core/image/jpeg/huffman.ts decodeDcFirst, decodeDcRefine, decodeAcFirst(Compact),
// decodeAcRefine(Compact, Dropped), over the same coefficient stores: int16 coefficients, `kept` per block,
// with the highest zigzag index that may be nonzero (one byte per block) for the full store, or the nonzero
// bits of the dropped coefficients (two u32 per block) for the compact one. The buffer is topped up at the
// same points as the JavaScript reader's, so that running out of bytes, a marker inside the entropy data
// and an unmatched code go exactly as they do there. That JavaScript is the scalar twin: tests run both on
// random stores and data, and decode every progressive fixture both ways, whole, damaged, cut short and
// streamed.
//
// The host copies a band of the store (a block row, or an MCU row of each component for DC scans) into
// scratch, the tables into the slots below, the entropy bytes into scratch and the reader's state into
// STATE; a call decodes whole blocks (DC: whole MCUs), saving the state after each, and the host copies
// the band back. The stores themselves stay in JavaScript, counted by the isolate's memory ledger.

// One Huffman table slot, laid out as in ./huffman.ts: fastAc (2048 i32), lookup (512 u16), maxCode
// (18 i32), valOffset (18 i32), symbols (256 u8). A DC scan uses slots 0..3 (its components' tables), an
// AC scan slot 0.
@lazy const FAST: usize = 0;
@lazy const LOOKUP: usize = 8192;
@lazy const MAX_CODE: usize = 9216;
@lazy const VAL_OFFSET: usize = 9288;
@lazy const SYMBOLS: usize = 9360;
@lazy const SLOT_BYTES: usize = 9616;
@lazy const TABLES: usize = memory.data(4 * 9616, 16);
// i32 words: see the S_ offsets.
@lazy const STATE: usize = memory.data(40 * 4, 16);
// The compact store's layout (host-written): zigzag index -> kept slot, -1 if dropped (64 i32). A compact
// store keeps at most 32 coefficients (25, those the 2x2 IDCT reads).
@lazy const KEEP: usize = memory.data(64 * 4, 16);
// Where a store that is not kept goes (a branch-free select of the address).
@lazy const SINK: usize = memory.data(16, 16);
// The compact store's kept slots as zigzag positions: for each byte of a 32-bit mask of slots (4 x 256
// u64), the zigzag positions of the slots it holds. Built from KEEP when the host marks it changed.
@lazy const SLOT_BYTES_ZZ: usize = memory.data(4 * 256 * 8, 16);

@lazy const S_POS: usize = 0; // next byte in data; at a marker, its code byte
@lazy const S_ACC: usize = 1; // the low S_BITS bits are unread
@lazy const S_BITS: usize = 2;
@lazy const S_PAD: usize = 3; // zero bits made up after a marker
@lazy const S_AT_MARKER: usize = 4;
@lazy const S_EOBRUN: usize = 5; // AC scans: blocks left in the current end-of-band run
@lazy const S_STATUS: usize = 6;
@lazy const S_PREDS: usize = 7; // DC scans: 4 predictors
@lazy const S_COMPONENTS: usize = 11; // DC scans: components in the scan
@lazy const S_MX: usize = 12; // DC scans: the next MCU's column
@lazy const S_COMPONENT: usize = 13; // DC scans: 4 x (h, v, band address, blocks per band row, bytes per block)
@lazy const S_LAYOUT: usize = 33; // AC scans: set when the host changed KEEP

// How a call ended (S_STATUS), as in ./huffman.ts.
@lazy const DONE: i32 = 0; // all blocks (MCUs) decoded
@lazy const EXHAUSTED: i32 = 1; // stopped after a block (MCU) that read past the segment's data
@lazy const NEED_MORE: i32 = 2; // the copied bytes ran out before the data did: call again with more
@lazy const TRUNCATED: i32 = 3; // the data itself ran out

// The AC scan kinds of decodeAcBlocks.
@lazy const FIRST_FULL: i32 = 0;
@lazy const FIRST_COMPACT: i32 = 1;
@lazy const REFINE_FULL: i32 = 2;
@lazy const REFINE_COMPACT: i32 = 3;
@lazy const REFINE_DROPPED: i32 = 4;

// Natural index of zigzag position k, 16 extra entries at 63 for runs that overshoot.
@lazy const ZIGZAG: usize = memory.data<i32>([
  0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28,
  35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47,
  55, 62, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63,
]);

// The reader, in globals for the length of a call.
let data: usize = 0;
let len: i32 = 0;
let final: bool = false;
let pos: i32 = 0;
let acc: i32 = 0;
let bits: i32 = 0;
let pad: i32 = 0;
let atMarker: bool = false;
let status: i32 = DONE;
let slotsMask: i32 = 0; // the compact store's kept slots, as bits

/** Where the host writes the tables, the reader state and the compact store's layout. */
export function progressiveTables(): usize {
  return TABLES;
}

export function progressiveState(): usize {
  return STATE;
}

export function progressiveKeep(): usize {
  return KEEP;
}

// Tops the buffer up to at least 25 bits (BitReader.fill); false (status set) when the bytes ran out first.
function fill(): bool {
  if (!atMarker) {
    // The plain bytes in a tight loop; a 0xFF (stuffed zero or marker) through the careful path below.
    const d = data;
    let p = pos;
    let a = acc;
    let b = bits;
    while (b <= 24 && p < len) {
      const byte = <i32>load<u8>(d + <usize>p);
      if (byte == 0xff) break;
      a = (a << 8) | byte;
      b += 8;
      p++;
    }
    pos = p;
    acc = a;
    bits = b;
    if (b > 24) return true;
  }
  while (bits <= 24) {
    let byte: i32 = 0;
    if (atMarker) {
      pad += 8;
    } else {
      if (pos >= len) {
        status = final ? TRUNCATED : NEED_MORE;
        return false;
      }
      byte = <i32>load<u8>(data + <usize>pos);
      if (byte != 0xff) {
        pos++;
      } else {
        let q = pos + 1;
        while (q < len && load<u8>(data + <usize>q) == 0xff) q++;
        if (q >= len) {
          status = final ? TRUNCATED : NEED_MORE;
          return false;
        }
        if (load<u8>(data + <usize>q) == 0) {
          pos = q + 1;
        } else {
          atMarker = true;
          pos = q;
          pad += 8;
          byte = 0;
        }
      }
    }
    acc = (acc << 8) | byte;
    bits += 8;
  }
  return true;
}

// BitReader.decode: the next symbol of table t, or -1 when the bytes ran out.
function decodeSymbol(t: usize): i32 {
  if (bits < 16 && !fill()) return -1;
  const e = <i32>load<u16>(t + LOOKUP + (<usize>((acc >>> (bits - 9)) & 511) << 1));
  if (e != 0) {
    bits -= e >> 8;
    return e & 0xff;
  }
  for (let l = 10; l <= 16; l++) {
    const code = (acc >>> (bits - l)) & ((1 << l) - 1);
    if (code <= load<i32>(t + MAX_CODE + (<usize>l << 2))) {
      bits -= l;
      return <i32>load<u8>(t + SYMBOLS + <usize>((code + load<i32>(t + VAL_OFFSET + (<usize>l << 2))) & 0xff));
    }
  }
  if (bits < 17 && !fill()) return -1;
  bits -= 17;
  return 0;
}

// BitReader.bit: 0 or 1, or -1 when the bytes ran out.
@inline function readBit(): i32 {
  if (bits < 1 && !fill()) return -1;
  bits--;
  return (acc >>> bits) & 1;
}

// BitReader.getBits (n <= 16), or -1.
@inline function getBits(n: i32): i32 {
  if (bits < n && !fill()) return -1;
  bits -= n;
  return (acc >>> bits) & ((1 << n) - 1);
}

// BitReader.receiveExtend (n >= 1), or status set on failure.
@inline function receiveExtend(n: i32): i32 {
  if (bits < n && !fill()) return 0;
  bits -= n;
  const v = (acc >>> bits) & ((1 << n) - 1);
  return v < 1 << (n - 1) ? v - (1 << n) + 1 : v;
}

// BitReader.skip: false when the bytes ran out.
function skip(n: i32): bool {
  if (n == 0) return true;
  while (n > 16) {
    if (getBits(16) < 0) return false;
    n -= 16;
  }
  return getBits(n) >= 0;
}

@lazy const ONES: u64 = 0xffffffffffffffff;

@inline function natural(k: i32): usize {
  return <usize>load<i32>(ZIGZAG + (<usize>k << 2));
}

// decodeAcFirst: one block of 64 coefficients at blk, its last-nonzero byte at last; the new EOB run, or -1.
function acFirstFull(fast: usize, t: usize, blk: usize, last: usize, ss: i32, se: i32, al: i32, eobrun: i32): i32 {
  if (eobrun > 0) return eobrun - 1;
  let top = <i32>load<u8>(last);
  for (let k = ss; k <= se; k++) {
    // A code and its value bits within 11 bits in one lookup: the same fills as decode + receiveExtend.
    if (bits < 16 && !fill()) return -1;
    const f = load<i32>(fast + (<usize>((acc >>> (bits - 11)) & 2047) << 2));
    let value: i32;
    if (f != 0) {
      bits -= f & 15;
      k += (f >> 4) & 15;
      value = f >> 8;
    } else {
      const rs = decodeSymbol(t);
      if (rs < 0) return -1;
      const run = rs >> 4;
      const size = rs & 15;
      if (size == 0) {
        if (run == 15) {
          k += 15;
          continue;
        }
        store<u8>(last, top);
        let n = 1 << run;
        if (run != 0) {
          const extra = getBits(run);
          if (extra < 0) return -1;
          n += extra;
        }
        return n - 1;
      }
      k += run;
      value = receiveExtend(size);
      if (status != DONE) return -1;
    }
    store<i16>(blk + (natural(k) << 1), value * (1 << al));
    const at = k < 63 ? k : 63;
    if (at > top) top = at;
  }
  store<u8>(last, top);
  return 0;
}

// decodeAcFirstCompact: the kept coefficients at blk, the nonzero bits at nz.
function acFirstCompact(fast: usize, t: usize, blk: usize, nz: usize, ss: i32, se: i32, al: i32, eobrun: i32): i32 {
  if (eobrun > 0) return eobrun - 1;
  let bitsNz = load<u64>(nz);
  let k = ss;
  for (; k <= se; k++) {
    if (bits < 16 && !fill()) return -1;
    const f = load<i32>(fast + (<usize>((acc >>> (bits - 11)) & 2047) << 2));
    let value: i32;
    if (f != 0) {
      bits -= f & 15;
      k += (f >> 4) & 15;
      value = f >> 8;
    } else {
      const rs = decodeSymbol(t);
      if (rs < 0) return -1;
      const run = rs >> 4;
      const size = rs & 15;
      if (size == 0) {
        if (run == 15) {
          k += 15;
          continue;
        }
        eobrun = 1 << run;
        if (run != 0) {
          const extra = getBits(run);
          if (extra < 0) return -1;
          eobrun += extra;
        }
        eobrun--;
        break;
      }
      k += run;
      value = receiveExtend(size);
      if (status != DONE) return -1;
    }
    const at = k < 63 ? k : 63;
    const v = value * (1 << al);
    const slot = load<i32>(KEEP + (<usize>at << 2));
    if (slot >= 0) store<i16>(blk + (<usize>slot << 1), v);
    else if ((v << 16) >> 16 != 0) bitsNz |= <u64>1 << <u64>at;
    else bitsNz &= ~(<u64>1 << <u64>at);
  }
  store<u64>(nz, bitsNz);
  return k > se ? 0 : eobrun;
}

// decodeAcRefine: correction bits for the nonzero coefficients, new ones placed on zero positions.
function acRefineFull(t: usize, blk: usize, last: usize, ss: i32, se: i32, al: i32, eobrun: i32): i32 {
  const p1 = 1 << al;
  let top = <i32>load<u8>(last);
  let k = ss;
  if (eobrun == 0) {
    for (; k <= se; k++) {
      const rs = decodeSymbol(t);
      if (rs < 0) return -1;
      let run = rs >> 4;
      const size = rs & 15;
      let value = 0;
      if (size != 0) {
        const sign = readBit();
        if (sign < 0) return -1;
        value = sign != 0 ? p1 : -p1;
      } else if (run != 15) {
        eobrun = 1 << run;
        if (run != 0) {
          const extra = getBits(run);
          if (extra < 0) return -1;
          eobrun += extra;
        }
        break;
      }
      do {
        const z = blk + (natural(k) << 1);
        const c = <i32>load<i16>(z);
        if (c != 0) {
          const b = readBit();
          if (b < 0) return -1;
          if (b != 0 && (c & p1) == 0) store<i16>(z, c >= 0 ? c + p1 : c - p1);
        } else if (--run < 0) {
          break;
        }
        k++;
      } while (k <= se);
      if (value != 0) {
        store<i16>(blk + (natural(k) << 1), value);
        const at = k < 63 ? k : 63;
        if (at > top) top = at;
      }
    }
  }
  if (eobrun > 0) {
    // Past the block's last nonzero coefficient there is nothing to correct.
    const stop = se < top ? se : top;
    for (; k <= stop; k++) {
      const z = blk + (natural(k) << 1);
      const c = <i32>load<i16>(z);
      if (c != 0) {
        const b = readBit();
        if (b < 0) return -1;
        if (b != 0 && (c & p1) == 0) store<i16>(z, c >= 0 ? c + p1 : c - p1);
      }
    }
    eobrun--;
  }
  store<u8>(last, top);
  return eobrun;
}

// decodeAcRefineCompact: as acRefineFull on the kept coefficients; a dropped one's correction bit is skipped.
// The hot loop of progressive decoding. Instead of walking the block position by position, it works on
// 64-bit masks in zigzag order (which positions are nonzero, kept or dropped): the zeros a run skips are
// counted off with bit operations and only the kept nonzero coefficients are visited, each read with the
// correction bits of the dropped ones before it skipped, as the JavaScript reads them (the store's nonzero
// bits are set at dropped positions only, as the decoder keeps them). The bit buffer is in locals, written
// back around fill() at the JavaScript reader's fill points.
function acRefineCompact(fast: usize, t: usize, blk: usize, nz: usize, ss: i32, se: i32, al: i32, eobrun: i32): i32 {
  const p1 = 1 << al;
  let dropped = load<u64>(nz);
  // The kept nonzero coefficients, from the block's slots (at most 32 kept) in one pass of vector compares,
  // each byte of the slot mask turned into zigzag positions by a table.
  const zero = i16x8.splat(0);
  const lo = i8x16.narrow_i16x8_s(i16x8.ne(v128.load(blk), zero), i16x8.ne(v128.load(blk, 16), zero));
  const hi = i8x16.narrow_i16x8_s(i16x8.ne(v128.load(blk, 32), zero), i16x8.ne(v128.load(blk, 48), zero));
  const slots = (i8x16.bitmask(lo) | (i8x16.bitmask(hi) << 16)) & slotsMask;
  let kept =
    load<u64>(SLOT_BYTES_ZZ + (<usize>(slots & 255) << 3)) |
    load<u64>(SLOT_BYTES_ZZ + 2048 + (<usize>((slots >>> 8) & 255) << 3)) |
    load<u64>(SLOT_BYTES_ZZ + 4096 + (<usize>((slots >>> 16) & 255) << 3)) |
    load<u64>(SLOT_BYTES_ZZ + 6144 + (<usize>(slots >>> 24) << 3));
  // Positions up to se.
  const upper = se >= 63 ? ONES : (<u64>1 << <u64>(se + 1)) - 1;
  let a = acc;
  let b = bits;
  let k = ss;
  if (eobrun == 0) {
    for (; k <= se; k++) {
      // decode(t), then bit() for a new coefficient's sign: a code of up to 10 bits and its sign in one
      // lookup (fastAc's value is that sign); bit() would not have filled after a decode that short.
      if (b < 16) {
        if (!topUp(a, b)) return -1;
        a = acc;
        b = bits;
      }
      const f = load<i32>(fast + (<usize>((a >>> (b - 11)) & 2047) << 2));
      let run: i32;
      let value = 0;
      // Only a symbol of size 1 (value +-1) reads one bit after its code; a damaged file's larger sizes
      // are read as size 1, so they take the path below.
      if (f != 0 && <u32>((f >> 8) + 1) <= 2) {
        b -= f & 15;
        run = (f >> 4) & 15;
        value = select(p1, -p1, f > 0);
      } else {
        const e = <i32>load<u16>(t + LOOKUP + (<usize>((a >>> (b - 9)) & 511) << 1));
        let rs: i32;
        if (e != 0) {
          b -= e >> 8;
          rs = e & 0xff;
        } else {
          acc = a;
          bits = b;
          rs = decodeSymbol(t);
          if (rs < 0) return -1;
          a = acc;
          b = bits;
        }
        run = rs >> 4;
        const size = rs & 15;
        if (size != 0) {
          // bit()
          if (b < 1) {
            if (!topUp(a, b)) return -1;
            a = acc;
            b = bits;
          }
          b--;
          value = ((a >>> b) & 1) != 0 ? p1 : -p1;
        } else if (run != 15) {
          eobrun = 1 << run;
          if (run != 0) {
            // getBits(run)
            if (b < run) {
              if (!topUp(a, b)) return -1;
              a = acc;
              b = bits;
            }
            b -= run;
            eobrun += (a >>> b) & ((1 << run) - 1);
          }
          break;
        }
      }
      // The run's zeros passed, the next zero is where it stops (or past se when there is none).
      let zeros = ~(kept | dropped) & (ONES << <u64>k) & upper;
      if (run <= 2) {
        // Short runs, the usual ones, without a branch.
        zeros &= select(zeros - 1, ONES, run >= 1);
        zeros &= select(zeros - 1, ONES, run >= 2);
      } else {
        for (let r = run; r > 0; r--) zeros &= zeros - 1;
      }
      const stop = select(<i32>ctz(zeros), se + 1, zeros != 0);
      // The correction bits of the nonzero coefficients in [k, stop): `range` is what is left of it.
      let range = (ONES << <u64>k) & upper & ((zeros & (0 - zeros)) - 1);
      let visit = kept & range;
      while (visit != 0) {
        const low = visit & (0 - visit);
        // bitAfter(the dropped nonzero ones before it)
        let n = <i32>popcnt<u64>(dropped & range & (low - 1));
        while (n > 16) {
          if (b < 16) {
            if (!topUp(a, b)) return -1;
            a = acc;
            b = bits;
          }
          b -= 16;
          n -= 16;
        }
        if (b <= n) {
          if (!topUp(a, b)) return -1;
          a = acc;
          b = bits;
        }
        b -= n + 1;
        // A set bit adds p1 away from zero unless the coefficient has it already; no branch on the bit.
        const z = blk + (<usize>load<i32>(KEEP + (<usize>ctz(visit) << 2)) << 1);
        const c = <i32>load<i16>(z);
        const add = select(p1, -p1, c >= 0) & -(((a >>> b) & 1) & <i32>((c & p1) == 0));
        store<i16>(z, c + add);
        range &= ~((low << 1) - 1);
        visit &= visit - 1;
      }
      // skip(the dropped nonzero ones after the last kept one)
      // (skip(0) reads nothing and does not fill: the same as the steps below with n = 0.)
      let n = <i32>popcnt<u64>(dropped & range);
      while (n > 16) {
        if (b < 16) {
          if (!topUp(a, b)) return -1;
          a = acc;
          b = bits;
        }
        b -= 16;
        n -= 16;
      }
      if (b < n) {
        if (!topUp(a, b)) return -1;
        a = acc;
        b = bits;
      }
      b -= n;
      k = stop;
      if (value != 0) {
        // The new coefficient, kept or dropped, without a branch (a dropped one's value goes to SINK).
        const at = k < 63 ? k : 63;
        const slot = load<i32>(KEEP + (<usize>at << 2));
        const isKept = slot >= 0;
        const bit = <u64>1 << <u64>at;
        store<i16>(select(blk + (<usize>slot << 1), SINK, isKept), value);
        kept |= select<u64>(bit, 0, isKept);
        dropped |= select<u64>(0, bit, isKept);
      }
    }
  }
  if (eobrun > 0) {
    // The end of the band: only correction bits, for the nonzero coefficients in [k, se], as above.
    if (k <= se) {
      let range = (ONES << <u64>k) & upper;
      let visit = kept & range;
      while (visit != 0) {
        const low = visit & (0 - visit);
        let n = <i32>popcnt<u64>(dropped & range & (low - 1));
        while (n > 16) {
          if (b < 16) {
            if (!topUp(a, b)) return -1;
            a = acc;
            b = bits;
          }
          b -= 16;
          n -= 16;
        }
        if (b <= n) {
          if (!topUp(a, b)) return -1;
          a = acc;
          b = bits;
        }
        b -= n + 1;
        const z = blk + (<usize>load<i32>(KEEP + (<usize>ctz(visit) << 2)) << 1);
        const c = <i32>load<i16>(z);
        const add = select(p1, -p1, c >= 0) & -(((a >>> b) & 1) & <i32>((c & p1) == 0));
        store<i16>(z, c + add);
        range &= ~((low << 1) - 1);
        visit &= visit - 1;
      }
      let n = <i32>popcnt<u64>(dropped & range);
      if (n != 0) {
        while (n > 16) {
          if (b < 16) {
            if (!topUp(a, b)) return -1;
            a = acc;
            b = bits;
          }
          b -= 16;
          n -= 16;
        }
        if (b < n) {
          if (!topUp(a, b)) return -1;
          a = acc;
          b = bits;
        }
        b -= n;
      }
    }
    eobrun--;
  }
  acc = a;
  bits = b;
  store<u64>(nz, dropped);
  return eobrun;
}

// The bit buffer from a kernel's locals into the reader, topped up (fill()).
@inline function topUp(a: i32, b: i32): bool {
  acc = a;
  bits = b;
  return fill();
}

// Positions [from, to) of a 64-bit mask, 0 <= from <= to <= 64.
@inline function between(from: i32, to: i32): u64 {
  const above = from >= 64 ? <u64>0 : ONES << <u64>from;
  const below = to >= 64 ? ONES : ~(ONES << <u64>to);
  return above & below;
}

// decodeAcRefineDropped: a band with no kept coefficient; only the nonzero bits change.
function acRefineDropped(t: usize, nz: usize, ss: i32, se: i32, eobrun: i32): i32 {
  let bitsNz = load<u64>(nz);
  let k = ss;
  if (eobrun == 0) {
    for (; k <= se; k++) {
      const rs = decodeSymbol(t);
      if (rs < 0) return -1;
      let run = rs >> 4;
      const size = rs & 15;
      if (size != 0) {
        if (readBit() < 0) return -1; // the new coefficient's sign
      } else if (run != 15) {
        eobrun = 1 << run;
        if (run != 0) {
          const extra = getBits(run);
          if (extra < 0) return -1;
          eobrun += extra;
        }
        break;
      }
      let pending = 0;
      do {
        if (((bitsNz >> <u64>k) & 1) != 0) pending++;
        else if (--run < 0) break;
        k++;
      } while (k <= se);
      if (!skip(pending)) return -1;
      if (size != 0) bitsNz |= <u64>1 << <u64>(k < 63 ? k : 63);
    }
  }
  if (eobrun > 0) {
    if (k <= se && !skip(<i32>popcnt<u64>(bitsNz & between(k, se + 1)))) return -1;
    eobrun--;
  }
  store<u64>(nz, bitsNz);
  return eobrun;
}

@inline function loadReader(dataPtr: usize, length: i32, isFinal: i32): void {
  data = dataPtr;
  len = length;
  final = isFinal != 0;
  pos = load<i32>(STATE + (S_POS << 2));
  acc = load<i32>(STATE + (S_ACC << 2));
  bits = load<i32>(STATE + (S_BITS << 2));
  pad = load<i32>(STATE + (S_PAD << 2));
  atMarker = load<i32>(STATE + (S_AT_MARKER << 2)) != 0;
  status = DONE;
}

@inline function saveReader(): void {
  store<i32>(STATE + (S_POS << 2), pos);
  store<i32>(STATE + (S_ACC << 2), acc);
  store<i32>(STATE + (S_BITS << 2), bits);
  store<i32>(STATE + (S_PAD << 2), pad);
  store<i32>(STATE + (S_AT_MARKER << 2), atMarker ? 1 : 0);
}

/**
 * Decodes up to `blocks` consecutive blocks of an AC scan of kind `kind` (FIRST_FULL ... REFINE_DROPPED)
 * over the spectral range [ss, se] at bit position al, from the copied entropy bytes data[0..length) (`isFinal`:
 * they reach the end of the bytes there are). Block i's coefficients are at coefs + i * kept * 2; its
 * last-nonzero byte at aux + i (full store) or its nonzero bits at aux + 8 * i (compact). The reader's
 * state and the EOB run are read from STATE and written back after each whole block: a call that stops
 * inside a block (NEED_MORE, TRUNCATED) leaves them at the end of the last whole one, and that block's
 * coefficients partly changed (the host copies it in again). Returns the blocks decoded.
 */
export function decodeAcBlocks(
  dataPtr: usize,
  length: i32,
  isFinal: i32,
  blocks: i32,
  coefs: usize,
  aux: usize,
  kind: i32,
  kept: i32,
  ss: i32,
  se: i32,
  al: i32,
): i32 {
  loadReader(dataPtr, length, isFinal);
  let eobrun = load<i32>(STATE + (S_EOBRUN << 2));
  const t = TABLES;
  const fast = TABLES + FAST;
  const blockBytes = <usize>kept << 1;
  if (kind == REFINE_COMPACT) {
    slotsMask = kept >= 32 ? -1 : (1 << kept) - 1;
    if (load<i32>(STATE + (S_LAYOUT << 2)) != 0) {
      memory.fill(SLOT_BYTES_ZZ, 0, 4 * 256 * 8);
      for (let kz = 0; kz < 64; kz++) {
        const slot = load<i32>(KEEP + (<usize>kz << 2));
        if (slot < 0 || slot >= 32) continue;
        const table = SLOT_BYTES_ZZ + (<usize>(slot >> 3) << 11);
        for (let byte = 0; byte < 256; byte++) {
          if ((byte >> (slot & 7)) & 1) {
            const at = table + (<usize>byte << 3);
            store<u64>(at, load<u64>(at) | (<u64>1 << <u64>kz));
          }
        }
      }
      store<i32>(STATE + (S_LAYOUT << 2), 0);
    }
  }
  let done = 0;
  let blk = coefs;
  let savedPos = pos;
  let savedAcc = acc;
  let savedBits = bits;
  let savedPad = pad;
  let savedAtMarker = atMarker;
  while (done < blocks) {
    let run: i32;
    if (kind == REFINE_COMPACT) run = acRefineCompact(fast, t, blk, aux + (<usize>done << 3), ss, se, al, eobrun);
    else if (kind == REFINE_FULL) run = acRefineFull(t, blk, aux + <usize>done, ss, se, al, eobrun);
    else if (kind == FIRST_COMPACT) run = acFirstCompact(fast, t, blk, aux + (<usize>done << 3), ss, se, al, eobrun);
    else if (kind == FIRST_FULL) run = acFirstFull(fast, t, blk, aux + <usize>done, ss, se, al, eobrun);
    else run = acRefineDropped(t, aux + (<usize>done << 3), ss, se, eobrun);
    if (run < 0) break;
    eobrun = run;
    done++;
    blk += blockBytes;
    // The state after this whole block, kept in locals until the call ends.
    savedPos = pos;
    savedAcc = acc;
    savedBits = bits;
    savedPad = pad;
    savedAtMarker = atMarker;
    if (bits < pad) {
      status = EXHAUSTED;
      break;
    }
  }
  store<i32>(STATE + (S_POS << 2), savedPos);
  store<i32>(STATE + (S_ACC << 2), savedAcc);
  store<i32>(STATE + (S_BITS << 2), savedBits);
  store<i32>(STATE + (S_PAD << 2), savedPad);
  store<i32>(STATE + (S_AT_MARKER << 2), savedAtMarker ? 1 : 0);
  store<i32>(STATE + (S_EOBRUN << 2), eobrun);
  store<i32>(STATE + (S_STATUS << 2), status);
  return done;
}

/**
 * Decodes up to `mcus` MCUs of a DC scan (first when `refine` is 0, else refinement) at bit position al,
 * from MCU column S_MX; the components' layout and DC predictors are in STATE (block (y, x) of component
 * i's part of MCU column mx at its band address + ((y * perRow) + mx * h + x) * blockBytes). The reader's state, the predictors and the column are written back after each whole MCU.
 * A DC first scan assigns and a refinement ORs a bit, so an MCU decoded again gives the same values.
 * Returns the MCUs decoded.
 */
export function decodeDcMcus(dataPtr: usize, length: i32, isFinal: i32, mcus: i32, refine: i32, al: i32): i32 {
  loadReader(dataPtr, length, isFinal);
  const n = load<i32>(STATE + (S_COMPONENTS << 2));
  let mx = load<i32>(STATE + (S_MX << 2));
  let p0 = load<i32>(STATE + (S_PREDS << 2));
  let p1 = load<i32>(STATE + ((S_PREDS + 1) << 2));
  let p2 = load<i32>(STATE + ((S_PREDS + 2) << 2));
  let p3 = load<i32>(STATE + ((S_PREDS + 3) << 2));
  let done = 0;
  let failed = false;
  while (done < mcus) {
    let q0 = p0;
    let q1 = p1;
    let q2 = p2;
    let q3 = p3;
    for (let i = 0; i < n && !failed; i++) {
      const cd = STATE + ((S_COMPONENT + <usize>i * 5) << 2);
      const h = load<i32>(cd);
      const v = load<i32>(cd, 4);
      const base = <usize>load<i32>(cd, 8);
      const perRow = load<i32>(cd, 12);
      const blockBytes = <usize>load<i32>(cd, 16);
      const t = TABLES + <usize>i * SLOT_BYTES;
      let pred = i == 0 ? q0 : i == 1 ? q1 : i == 2 ? q2 : q3;
      for (let y = 0; y < v && !failed; y++) {
        for (let x = 0; x < h; x++) {
          const blk = base + <usize>(y * perRow + mx * h + x) * blockBytes;
          if (refine != 0) {
            const b = readBit();
            if (b < 0) {
              failed = true;
              break;
            }
            if (b != 0) store<i16>(blk, <i32>load<i16>(blk) | (1 << al));
            continue;
          }
          const s = decodeSymbol(t);
          if (s < 0) {
            failed = true;
            break;
          }
          if (s != 0) {
            pred += receiveExtend(s);
            if (status != DONE) {
              failed = true;
              break;
            }
          }
          store<i16>(blk, pred << al);
        }
      }
      if (i == 0) q0 = pred;
      else if (i == 1) q1 = pred;
      else if (i == 2) q2 = pred;
      else q3 = pred;
    }
    if (failed) break;
    p0 = q0;
    p1 = q1;
    p2 = q2;
    p3 = q3;
    done++;
    mx++;
    saveReader();
    if (bits < pad) {
      status = EXHAUSTED;
      break;
    }
  }
  store<i32>(STATE + (S_PREDS << 2), p0);
  store<i32>(STATE + ((S_PREDS + 1) << 2), p1);
  store<i32>(STATE + ((S_PREDS + 2) << 2), p2);
  store<i32>(STATE + ((S_PREDS + 3) << 2), p3);
  store<i32>(STATE + (S_MX << 2), mx);
  store<i32>(STATE + (S_STATUS << 2), status);
  return done;
}

// dequantizeBlocks' tables (host-written): the quantization table in natural order, then the natural index
// of each kept slot (64 i32 each).
@lazy const QUANT: usize = memory.data(128 * 4, 16);
@lazy const NATURAL: usize = QUANT + 64 * 4;

export function progressiveQuant(): usize {
  return QUANT;
}

/**
 * The coefficient store's blocks for the IDCT: `blocks` blocks of int16 coefficients, `kept` per block,
 * from src into the band at dst (64 i32 per block, natural order, zero where nothing is kept), dequantized:
 * slot i to natural index NATURAL[i], times QUANT there. All 64 kept: eight at a time, widened to i32.
 */
export function dequantizeBlocks(src: usize, kept: i32, blocks: i32, dst: usize): void {
  if (kept == 64) {
    for (let b = 0; b < blocks; b++) {
      for (let i: usize = 0; i < 128; i += 16) {
        const c = v128.load(src + i);
        const q = i << 1;
        v128.store(dst + q, i32x4.mul(i32x4.extend_low_i16x8_s(c), v128.load(QUANT + q)));
        v128.store(dst + q + 16, i32x4.mul(i32x4.extend_high_i16x8_s(c), v128.load(QUANT + q + 16)));
      }
      src += 128;
      dst += 256;
    }
    return;
  }
  for (let b = 0; b < blocks; b++) {
    for (let i = 0; i < kept; i++) {
      const z = <usize>load<i32>(NATURAL + (<usize>i << 2)) << 2;
      store<i32>(dst + z, <i32>load<i16>(src + (<usize>i << 1)) * load<i32>(QUANT + z));
    }
    src += <usize>kept << 1;
    dst += 256;
  }
}
