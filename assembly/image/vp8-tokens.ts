// Lossy WebP's coefficient tokens for a macroblock row, as libwebp 1.2.4's vp8_dec.c reads them (the
// boolean decoder with its end-of-data rule, GetCoeffs, GetLargeValue, ParseResiduals with its non-zero
// contexts, the inverse WHT of a 16x16-predicted macroblock's DCs). core/image/webp/vp8.ts BoolReader
// coefficients and parseResiduals are the JavaScript twin (the fallback without the kernels).
//
// `data` holds the token partition's bytes from the reader's position; the reader's state is 6 i32 at
// `state`: value, range, bits, position and end (relative to data), end of data reached. When `final` is 0
// the bytes stop before the partition's end: the call stops before a macroblock that could read past
// `length` bytes, and the host calls again with the bytes from there.
//
// Per macroblock column, 4 bytes at mbs: segment, skip flag, 4x4-predicted, and, written back, whether it
// has no non-zero coefficient; its 384 i16 coefficients to coeffs + 768 * x and 24 AC flags to hasAc + 24 * x
// (as assembly/image/vp8-reconstruct.ts reads them). topNz and topNzDc hold a byte per column, `left` the
// row's left contexts (2 i32). quant holds 6 i32 per segment: Y1 DC and AC, Y2 DC and AC, UV DC and AC.
// Returns the column reached (mbTo when all were parsed), or -1 - x when the data ran out at column x.

@lazy const ZIGZAG: usize = memory.data<u8>([0, 1, 4, 8, 5, 2, 3, 6, 9, 12, 13, 10, 7, 11, 14, 15]);
@lazy const BANDS: usize = memory.data<u8>([0, 1, 2, 3, 6, 4, 5, 6, 6, 6, 6, 6, 6, 6, 6, 7, 0]);
@lazy const CAT3: usize = memory.data<u8>([173, 148, 140, 0]);
@lazy const CAT4: usize = memory.data<u8>([176, 155, 140, 135, 0]);
@lazy const CAT5: usize = memory.data<u8>([180, 157, 141, 134, 130, 0]);
@lazy const CAT6: usize = memory.data<u8>([254, 254, 243, 230, 196, 177, 153, 140, 133, 130, 129, 0]);

// The most bytes one macroblock's tokens can take: 25 blocks of 16 positions, each at most 20 decisions
// of at most 7 bits.
@lazy const MB_BYTES: i32 = 25 * 16 * 20;

// The reader, loaded from state at each call and stored back.
let data: usize = 0;
let value: i32 = 0;
let range: i32 = 0;
let bits: i32 = 0;
let pos: i32 = 0;
let end: i32 = 0;
let eof: i32 = 0;

function refill(): void {
  if (pos + 3 <= end) {
    bits += 24;
    const p = data + <usize>pos;
    value = (value << 24) | (<i32>load<u8>(p) << 16) | (<i32>load<u8>(p, 1) << 8) | <i32>load<u8>(p, 2);
    pos += 3;
  } else if (pos < end) {
    bits += 8;
    value = <i32>load<u8>(data + <usize>pos) | (value << 8);
    pos++;
  } else if (!eof) {
    value <<= 8;
    bits += 8;
    eof = 1;
  } else {
    bits = 0;
  }
}

// refill() for a caller holding value and bits in locals: returns the new value, bits is the new count.
@inline function refilled(val: i32, bts: i32): i32 {
  value = val;
  bits = bts;
  refill();
  return value;
}

@inline function bit(prob: i32): i32 {
  if (bits < 0) refill();
  const split = (range * prob) >>> 8;
  let b = 0;
  if (value >>> bits > split) {
    range -= split;
    value -= (split + 1) << bits;
    b = 1;
  } else {
    range = split + 1;
  }
  const shift = 7 ^ (31 - clz<i32>(range));
  bits -= shift;
  range = (range << shift) - 1;
  return b;
}

function largeValue(p: usize): i32 {
  if (!bit(load<u8>(p, 3))) return !bit(load<u8>(p, 4)) ? 2 : 3 + bit(load<u8>(p, 5));
  if (!bit(load<u8>(p, 6))) {
    return !bit(load<u8>(p, 7)) ? 5 + bit(159) : 7 + 2 * bit(165) + bit(145);
  }
  const bit1 = bit(load<u8>(p, 8));
  const bit0 = bit(load<u8>(p + <usize>(9 + bit1)));
  const cat = 2 * bit1 + bit0;
  const probas = cat == 0 ? CAT3 : cat == 1 ? CAT4 : cat == 2 ? CAT5 : CAT6;
  let v = 0;
  for (let i: usize = 0; load<u8>(probas + i) != 0; i++) v = 2 * v + bit(load<u8>(probas + i));
  return v + 3 + (8 << cat);
}

// One block's tokens from position n, dequantized into out (i16, natural order); returns the end of block
// position (16 when the block runs to its end), as GetCoeffs. The decisions nearly every coefficient takes
// (end of block, zero, one, sign) run on the registers held in locals, as bit() would.
function coefficients(proba: usize, type: i32, ctx: i32, dc: i32, ac: i32, n: i32, out: usize): i32 {
  let p = proba + <usize>(((type * 8 + <i32>load<u8>(BANDS + <usize>n)) * 3 + ctx) * 11);
  let val = value;
  let rng = range;
  let bts = bits;
  let split: i32;
  let shift: i32;
  for (; n < 16; n++) {
    // End of block?
    if (bts < 0) {
      val = refilled(val, bts);
      bts = bits;
    }
    split = (rng * <i32>load<u8>(p)) >>> 8;
    if (val >>> bts > split) {
      rng -= split;
      val -= (split + 1) << bts;
    } else {
      rng = split + 1;
      shift = 7 ^ (31 - clz<i32>(rng));
      bts -= shift;
      rng = (rng << shift) - 1;
      value = val;
      range = rng;
      bits = bts;
      return n;
    }
    shift = 7 ^ (31 - clz<i32>(rng));
    bts -= shift;
    rng = (rng << shift) - 1;
    // Zeros, each moving to the next position's probabilities.
    for (;;) {
      if (bts < 0) {
        val = refilled(val, bts);
        bts = bits;
      }
      split = (rng * <i32>load<u8>(p, 1)) >>> 8;
      const nonzero = val >>> bts > split;
      if (nonzero) {
        rng -= split;
        val -= (split + 1) << bts;
      } else rng = split + 1;
      shift = 7 ^ (31 - clz<i32>(rng));
      bts -= shift;
      rng = (rng << shift) - 1;
      if (nonzero) break;
      n++;
      if (n == 16) {
        value = val;
        range = rng;
        bits = bts;
        return 16;
      }
      p = proba + <usize>((type * 8 + <i32>load<u8>(BANDS + <usize>n)) * 3 * 11);
    }
    const next = (type * 8 + <i32>load<u8>(BANDS + <usize>(n + 1))) * 3;
    // One, or more.
    if (bts < 0) {
      val = refilled(val, bts);
      bts = bits;
    }
    split = (rng * <i32>load<u8>(p, 2)) >>> 8;
    let v = 1;
    const large = val >>> bts > split;
    if (large) {
      rng -= split;
      val -= (split + 1) << bts;
    } else rng = split + 1;
    shift = 7 ^ (31 - clz<i32>(rng));
    bts -= shift;
    rng = (rng << shift) - 1;
    if (large) {
      value = val;
      range = rng;
      bits = bts;
      v = largeValue(p);
      val = value;
      rng = range;
      bts = bits;
      p = proba + <usize>((next + 2) * 11);
    } else {
      p = proba + <usize>((next + 1) * 11);
    }
    // The sign (VP8GetSigned).
    if (bts < 0) {
      val = refilled(val, bts);
      bts = bits;
    }
    split = rng >>> 1;
    const mask = (split - (val >>> bts)) >> 31;
    rng = (rng + mask) | 1;
    val -= ((split + 1) & mask) << bts;
    bts -= 1;
    const signed = (v ^ mask) - mask;
    store<i16>(out + (<usize>load<u8>(ZIGZAG + <usize>n) << 1), <i16>(signed * (n > 0 ? ac : dc)));
  }
  value = val;
  range = rng;
  bits = bts;
  return 16;
}

// The inverse WHT of the 16 DCs at inp into the DC of each luma block of out.
const TMP: usize = memory.data(64, 16);
function inverseWht(inp: usize, out: usize): void {
  for (let i = 0; i < 4; i++) {
    const q = inp + <usize>(2 * i);
    const i0 = <i32>load<i16>(q);
    const i4 = <i32>load<i16>(q, 8);
    const i8 = <i32>load<i16>(q, 16);
    const i12 = <i32>load<i16>(q, 24);
    const a0 = i0 + i12;
    const a1 = i4 + i8;
    const a2 = i4 - i8;
    const a3 = i0 - i12;
    const t = TMP + <usize>(4 * i);
    store<i32>(t, a0 + a1);
    store<i32>(t, a0 - a1, 32);
    store<i32>(t, a3 + a2, 16);
    store<i32>(t, a3 - a2, 48);
  }
  for (let i = 0; i < 4; i++) {
    const t = TMP + <usize>(16 * i);
    const dc = load<i32>(t) + 3;
    const a0 = dc + load<i32>(t, 12);
    const a1 = load<i32>(t, 4) + load<i32>(t, 8);
    const a2 = load<i32>(t, 4) - load<i32>(t, 8);
    const a3 = dc - load<i32>(t, 12);
    const o = out + <usize>(i * 128);
    store<i16>(o, <i16>((a0 + a1) >> 3));
    store<i16>(o, <i16>((a3 + a2) >> 3), 32);
    store<i16>(o, <i16>((a0 - a1) >> 3), 64);
    store<i16>(o, <i16>((a3 - a2) >> 3), 96);
  }
}

// The Y2 block's coefficients.
const DC: usize = memory.data(32, 16);

/** A macroblock row's tokens (see the file's comment). */
export function vp8ParseRow(
  chunk: usize, length: i32, final: i32, state: usize, proba: usize, quant: usize,
  mbs: usize, mbFrom: i32, mbTo: i32, topNz: usize, topNzDc: usize, left: usize,
  coeffs: usize, hasAc: usize,
): i32 {
  data = chunk;
  value = load<i32>(state);
  range = load<i32>(state, 4);
  bits = load<i32>(state, 8);
  pos = load<i32>(state, 12);
  end = load<i32>(state, 16);
  eof = load<i32>(state, 20);
  let leftNz = load<i32>(left);
  let leftNzDc = load<i32>(left, 4);
  let x = mbFrom;
  let result = mbTo;
  for (; x < mbTo; x++) {
    if (!final && length - pos < MB_BYTES) {
      result = x;
      break;
    }
    const mb = mbs + <usize>(4 * x);
    const i4x4 = load<u8>(mb, 2) != 0;
    const c = coeffs + <usize>(768 * x);
    const ac = hasAc + <usize>(24 * x);
    memory.fill(c, 0, 768);
    memory.fill(ac, 0, 24);
    let noneNonZero = true;
    if (load<u8>(mb, 1) != 0) {
      // skipped: no tokens
      leftNz = 0;
      store<u8>(topNz + <usize>x, 0);
      if (!i4x4) {
        leftNzDc = 0;
        store<u8>(topNzDc + <usize>x, 0);
      }
    } else {
      const q = quant + <usize>(24 * <i32>load<u8>(mb));
      let first = 0;
      let acType = 3;
      if (!i4x4) {
        memory.fill(DC, 0, 32);
        const ctx = <i32>load<u8>(topNzDc + <usize>x) + leftNzDc;
        const nz = coefficients(proba, 1, ctx, load<i32>(q, 8), load<i32>(q, 12), 0, DC);
        leftNzDc = nz > 0 ? 1 : 0;
        store<u8>(topNzDc + <usize>x, <u8>leftNzDc);
        if (nz > 1) {
          inverseWht(DC, c);
        } else {
          const dc0 = <i16>((<i32>load<i16>(DC) + 3) >> 3);
          for (let i: usize = 0; i < 16; i++) store<i16>(c + 32 * i, dc0);
        }
        first = 1;
        acType = 0;
      }
      const y1dc = load<i32>(q);
      const y1ac = load<i32>(q, 4);
      let tnz = <i32>load<u8>(topNz + <usize>x) & 0x0f;
      let lnz = leftNz & 0x0f;
      for (let y = 0; y < 4; y++) {
        let l = lnz & 1;
        for (let bx = 0; bx < 4; bx++) {
          const at = y * 4 + bx;
          const blk = c + <usize>(32 * at);
          const nz = coefficients(proba, acType, l + (tnz & 1), y1dc, y1ac, first, blk);
          l = nz > first ? 1 : 0;
          tnz = (tnz >> 1) | (l << 7);
          store<u8>(ac + <usize>at, nz > 1 ? 1 : 0);
          if (nz > 1 || load<i16>(blk) != 0) noneNonZero = false;
        }
        tnz >>= 4;
        lnz = (lnz >> 1) | (l << 7);
      }
      let outT = tnz;
      let outL = lnz >> 4;
      const uvdc = load<i32>(q, 16);
      const uvac = load<i32>(q, 20);
      for (let ch = 0; ch < 4; ch += 2) {
        tnz = <i32>load<u8>(topNz + <usize>x) >> (4 + ch);
        lnz = leftNz >> (4 + ch);
        for (let y = 0; y < 2; y++) {
          let l = lnz & 1;
          for (let bx = 0; bx < 2; bx++) {
            const at = 16 + ch * 2 + y * 2 + bx;
            const blk = c + <usize>(32 * at);
            const nz = coefficients(proba, 2, l + (tnz & 1), uvdc, uvac, 0, blk);
            l = nz > 0 ? 1 : 0;
            tnz = (tnz >> 1) | (l << 3);
            store<u8>(ac + <usize>at, nz > 1 ? 1 : 0);
            if (nz > 1 || load<i16>(blk) != 0) noneNonZero = false;
          }
          tnz >>= 2;
          lnz = (lnz >> 1) | (l << 5);
        }
        outT |= (tnz << 4) << ch;
        outL |= (lnz & 0xf0) << ch;
      }
      store<u8>(topNz + <usize>x, <u8>outT);
      leftNz = outL;
    }
    store<u8>(mb, noneNonZero ? 1 : 0, 3);
    if (eof) {
      result = -1 - x;
      break;
    }
  }
  store<i32>(state, value);
  store<i32>(state, range, 4);
  store<i32>(state, bits, 8);
  store<i32>(state, pos, 12);
  store<i32>(state, eof, 20);
  store<i32>(left, leftNz);
  store<i32>(left, leftNzDc, 4);
  return result;
}
