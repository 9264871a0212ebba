// The 8x8 "islow" inverse DCT as libjpeg-turbo's AVX2 version computes it (jidctint-avx2.asm), which is
// what Pillow runs on x86: core/image/jpeg/idct.ts idct8 is the JavaScript form of the same arithmetic.
// Coefficients are dequantized and wrapped to 16 bits; the column pass forms some sums in 16-bit lanes
// (wrapping), its products in 32-bit ones, and saturates its results to 16 bits; a block whose rows 1..7
// are all zero takes each column's DC shifted in 16 bits (wrapping). The row pass descales by 2^18 and
// saturates (value + 128) to 0..255.
//
// Blocks come as 64 i32 coefficients in natural order, 256 bytes each, laid out as a band of `rows` block
// rows of `blocksPerRow` blocks; block (row, bx) goes to out + row * 8 * stride + bx * 8. The coefficients
// are zeroed after use, so the host can decode the next band into the same memory.

@lazy const F_0_298: i32 = 2446;
@lazy const F_0_390: i32 = 3196;
@lazy const F_0_541: i32 = 4433;
@lazy const F_0_765: i32 = 6270;
@lazy const F_0_899: i32 = 7373;
@lazy const F_1_175: i32 = 9633;
@lazy const F_1_501: i32 = 12299;
@lazy const F_1_847: i32 = 15137;
@lazy const F_1_961: i32 = 16069;
@lazy const F_2_053: i32 = 16819;
@lazy const F_2_562: i32 = 20995;
@lazy const F_3_072: i32 = 25172;

/** Between the passes: 8 rows of 8 i16 (and the transposed copy), 16-byte aligned. */
@lazy const WS: usize = memory.data(256, 16);
/** The scalar twin's workspace, i32 (8 rows, 8 columns). */
@lazy const WS32: usize = memory.data(256, 16);

// ---- scalar twin ----

@inline function wrap16(v: i32): i32 {
  return (v << 16) >> 16;
}

@inline function sat16(v: i32): i32 {
  return v < -32768 ? -32768 : v > 32767 ? 32767 : v;
}

@inline function sat8(v: i32): u8 {
  const x = v + 128;
  return <u8>(x < 0 ? 0 : x > 255 ? 255 : x);
}

@inline function ws(i: i32): i32 {
  return load<i32>(WS32 + (<usize>i << 2));
}

@inline function setWs(i: i32, v: i32): void {
  store<i32>(WS32 + (<usize>i << 2), v);
}

@inline function even0(d0: i32, d4: i32): i32 {
  return wrap16(d0 + d4) * 8192;
}

function idctScalarBlock(coefs: usize, out: usize, stride: i32): void {
  let ac = 0;
  for (let i = 8; i < 64; i++) ac |= load<i32>(coefs + (<usize>i << 2));
  for (let c = 0; c < 8; c++) {
    if (ac == 0) {
      const dc = wrap16(load<i32>(coefs + (<usize>c << 2)) << 2);
      for (let r = 0; r < 8; r++) setWs(r * 8 + c, dc);
      continue;
    }
    const d0 = wrap16(load<i32>(coefs + (<usize>c << 2)));
    const d1 = wrap16(load<i32>(coefs + (<usize>(c + 8) << 2)));
    const d2 = wrap16(load<i32>(coefs + (<usize>(c + 16) << 2)));
    const d3 = wrap16(load<i32>(coefs + (<usize>(c + 24) << 2)));
    const d4 = wrap16(load<i32>(coefs + (<usize>(c + 32) << 2)));
    const d5 = wrap16(load<i32>(coefs + (<usize>(c + 40) << 2)));
    const d6 = wrap16(load<i32>(coefs + (<usize>(c + 48) << 2)));
    const d7 = wrap16(load<i32>(coefs + (<usize>(c + 56) << 2)));
    const z1e = (d2 + d6) * F_0_541;
    const tmp2e = z1e - d6 * F_1_847;
    const tmp3e = z1e + d2 * F_0_765;
    const tmp0e = even0(d0, d4);
    const tmp1e = wrap16(d0 - d4) * 8192;
    const tmp10 = tmp0e + tmp3e;
    const tmp13 = tmp0e - tmp3e;
    const tmp11 = tmp1e + tmp2e;
    const tmp12 = tmp1e - tmp2e;
    const s73 = wrap16(d7 + d3);
    const s51 = wrap16(d5 + d1);
    const z5 = (s73 + s51) * F_1_175;
    const z1 = (d7 + d1) * -F_0_899;
    const z2 = (d5 + d3) * -F_2_562;
    const z3 = s73 * -F_1_961 + z5;
    const z4 = s51 * -F_0_390 + z5;
    const tmp0 = d7 * F_0_298 + z1 + z3;
    const tmp1 = d5 * F_2_053 + z2 + z4;
    const tmp2 = d3 * F_3_072 + z2 + z3;
    const tmp3 = d1 * F_1_501 + z1 + z4;
    setWs(c, sat16((tmp10 + tmp3 + 1024) >> 11));
    setWs(c + 56, sat16((tmp10 - tmp3 + 1024) >> 11));
    setWs(c + 8, sat16((tmp11 + tmp2 + 1024) >> 11));
    setWs(c + 48, sat16((tmp11 - tmp2 + 1024) >> 11));
    setWs(c + 16, sat16((tmp12 + tmp1 + 1024) >> 11));
    setWs(c + 40, sat16((tmp12 - tmp1 + 1024) >> 11));
    setWs(c + 24, sat16((tmp13 + tmp0 + 1024) >> 11));
    setWs(c + 32, sat16((tmp13 - tmp0 + 1024) >> 11));
  }
  for (let r = 0; r < 8; r++) {
    const w = r * 8;
    const o = out + <usize>(r * stride);
    const d0 = ws(w);
    const d1 = ws(w + 1);
    const d2 = ws(w + 2);
    const d3 = ws(w + 3);
    const d4 = ws(w + 4);
    const d5 = ws(w + 5);
    const d6 = ws(w + 6);
    const d7 = ws(w + 7);
    const z1e = (d2 + d6) * F_0_541;
    const tmp2e = z1e - d6 * F_1_847;
    const tmp3e = z1e + d2 * F_0_765;
    const tmp0e = even0(d0, d4);
    const tmp1e = wrap16(d0 - d4) * 8192;
    const tmp10 = tmp0e + tmp3e;
    const tmp13 = tmp0e - tmp3e;
    const tmp11 = tmp1e + tmp2e;
    const tmp12 = tmp1e - tmp2e;
    const s73 = wrap16(d7 + d3);
    const s51 = wrap16(d5 + d1);
    const z5 = (s73 + s51) * F_1_175;
    const z1 = (d7 + d1) * -F_0_899;
    const z2 = (d5 + d3) * -F_2_562;
    const z3 = s73 * -F_1_961 + z5;
    const z4 = s51 * -F_0_390 + z5;
    const tmp0 = d7 * F_0_298 + z1 + z3;
    const tmp1 = d5 * F_2_053 + z2 + z4;
    const tmp2 = d3 * F_3_072 + z2 + z3;
    const tmp3 = d1 * F_1_501 + z1 + z4;
    store<u8>(o, sat8((tmp10 + tmp3 + 131072) >> 18));
    store<u8>(o, sat8((tmp10 - tmp3 + 131072) >> 18), 7);
    store<u8>(o, sat8((tmp11 + tmp2 + 131072) >> 18), 1);
    store<u8>(o, sat8((tmp11 - tmp2 + 131072) >> 18), 6);
    store<u8>(o, sat8((tmp12 + tmp1 + 131072) >> 18), 2);
    store<u8>(o, sat8((tmp12 - tmp1 + 131072) >> 18), 5);
    store<u8>(o, sat8((tmp13 + tmp0 + 131072) >> 18), 3);
    store<u8>(o, sat8((tmp13 - tmp0 + 131072) >> 18), 4);
  }
  memory.fill(coefs, 0, 256);
}

/** Scalar twin of idct8Band. */
export function idct8BandScalar(coefs: usize, blocksPerRow: i32, rows: i32, out: usize, stride: i32): void {
  for (let r = 0; r < rows; r++) {
    for (let bx = 0; bx < blocksPerRow; bx++) {
      const blk = coefs + (<usize>(r * blocksPerRow + bx) << 8);
      idctScalarBlock(blk, out + <usize>(r * 8 * stride + bx * 8), stride);
    }
  }
}

// ---- SIMD ----

// Row k of a block's i32 coefficients as 8 i16 lanes, wrapped (the low half of each lane).
@inline function row16(coefs: usize, k: usize): v128 {
  const lo = v128.load(coefs + k * 32);
  const hi = v128.load(coefs + k * 32 + 16);
  return i8x16.shuffle(lo, hi, 0, 1, 4, 5, 8, 9, 12, 13, 16, 17, 20, 21, 24, 25, 28, 29);
}

@inline function lo32(v: v128): v128 {
  return i32x4.extend_low_i16x8_s(v);
}

@inline function hi32(v: v128): v128 {
  return i32x4.extend_high_i16x8_s(v);
}

@inline function k32(k: i32): v128 {
  return i32x4.splat(k);
}

// One 1-D pass over 8 lanes, 4 at a time (`half` 0: lanes 0..3, 1: lanes 4..7): inputs are 8 vectors of
// i16 at src (src + 16 * k is input k across the lanes); the 8 results (i32, descaled by `shift` with its
// rounding bias) go to dst32 + 16 * k. The i16 sums that wrap are formed before widening.
@inline function halfPass(src: usize, dst32: usize, half: i32, shift: i32): void {
  const D0 = v128.load(src);
  const D1 = v128.load(src, 16);
  const D2 = v128.load(src, 32);
  const D3 = v128.load(src, 48);
  const D4 = v128.load(src, 64);
  const D5 = v128.load(src, 80);
  const D6 = v128.load(src, 96);
  const D7 = v128.load(src, 112);
  const S04 = i16x8.add(D0, D4);
  const M04 = i16x8.sub(D0, D4);
  const S73 = i16x8.add(D7, D3);
  const S51 = i16x8.add(D5, D1);
  let d1: v128, d2: v128, d3: v128, d5: v128, d6: v128, d7: v128;
  let s04: v128, m04: v128, s73: v128, s51: v128;
  if (half == 0) {
    d1 = lo32(D1); d2 = lo32(D2); d3 = lo32(D3); d5 = lo32(D5); d6 = lo32(D6); d7 = lo32(D7);
    s04 = lo32(S04); m04 = lo32(M04); s73 = lo32(S73); s51 = lo32(S51);
  } else {
    d1 = hi32(D1); d2 = hi32(D2); d3 = hi32(D3); d5 = hi32(D5); d6 = hi32(D6); d7 = hi32(D7);
    s04 = hi32(S04); m04 = hi32(M04); s73 = hi32(S73); s51 = hi32(S51);
  }
  const z1e = i32x4.mul(i32x4.add(d2, d6), k32(F_0_541));
  const tmp2e = i32x4.sub(z1e, i32x4.mul(d6, k32(F_1_847)));
  const tmp3e = i32x4.add(z1e, i32x4.mul(d2, k32(F_0_765)));
  const tmp0e = i32x4.shl(s04, 13);
  const tmp1e = i32x4.shl(m04, 13);
  const bias = k32(1 << (shift - 1));
  const tmp10 = i32x4.add(i32x4.add(tmp0e, tmp3e), bias);
  const tmp13 = i32x4.add(i32x4.sub(tmp0e, tmp3e), bias);
  const tmp11 = i32x4.add(i32x4.add(tmp1e, tmp2e), bias);
  const tmp12 = i32x4.add(i32x4.sub(tmp1e, tmp2e), bias);
  const z5 = i32x4.mul(i32x4.add(s73, s51), k32(F_1_175));
  const z1 = i32x4.mul(i32x4.add(d7, d1), k32(-F_0_899));
  const z2 = i32x4.mul(i32x4.add(d5, d3), k32(-F_2_562));
  const z3 = i32x4.add(i32x4.mul(s73, k32(-F_1_961)), z5);
  const z4 = i32x4.add(i32x4.mul(s51, k32(-F_0_390)), z5);
  const tmp0 = i32x4.add(i32x4.add(i32x4.mul(d7, k32(F_0_298)), z1), z3);
  const tmp1 = i32x4.add(i32x4.add(i32x4.mul(d5, k32(F_2_053)), z2), z4);
  const tmp2 = i32x4.add(i32x4.add(i32x4.mul(d3, k32(F_3_072)), z2), z3);
  const tmp3 = i32x4.add(i32x4.add(i32x4.mul(d1, k32(F_1_501)), z1), z4);
  const o = dst32 + <usize>(half * 16);
  v128.store(o, i32x4.shr_s(i32x4.add(tmp10, tmp3), shift), 0);
  v128.store(o, i32x4.shr_s(i32x4.sub(tmp10, tmp3), shift), 7 * 32);
  v128.store(o, i32x4.shr_s(i32x4.add(tmp11, tmp2), shift), 1 * 32);
  v128.store(o, i32x4.shr_s(i32x4.sub(tmp11, tmp2), shift), 6 * 32);
  v128.store(o, i32x4.shr_s(i32x4.add(tmp12, tmp1), shift), 2 * 32);
  v128.store(o, i32x4.shr_s(i32x4.sub(tmp12, tmp1), shift), 5 * 32);
  v128.store(o, i32x4.shr_s(i32x4.add(tmp13, tmp0), shift), 3 * 32);
  v128.store(o, i32x4.shr_s(i32x4.sub(tmp13, tmp0), shift), 4 * 32);
}

/** i32 results of a pass: 8 outputs x 8 lanes, 256 bytes. */
@lazy const R32: usize = memory.data(256, 16);
/** A block's rows as i16 for the column pass; the transposed workspace for the row pass. */
@lazy const ROWS: usize = memory.data(128, 16);
@lazy const COLS: usize = memory.data(128, 16);

// Output k of a pass, saturated to i16 lanes.
@inline function result16(k: usize): v128 {
  return i16x8.narrow_i32x4_s(v128.load(R32 + k * 32), v128.load(R32 + k * 32 + 16));
}

// 8x8 transpose of i16: a[k] lane j -> b[j] lane k.
@inline function transpose(a: v128, b: v128, c: v128, d: v128, e: v128, f: v128, g: v128, h: v128, dst: usize): void {
  const ab0 = i16x8.shuffle(a, b, 0, 8, 1, 9, 2, 10, 3, 11);
  const ab1 = i16x8.shuffle(a, b, 4, 12, 5, 13, 6, 14, 7, 15);
  const cd0 = i16x8.shuffle(c, d, 0, 8, 1, 9, 2, 10, 3, 11);
  const cd1 = i16x8.shuffle(c, d, 4, 12, 5, 13, 6, 14, 7, 15);
  const ef0 = i16x8.shuffle(e, f, 0, 8, 1, 9, 2, 10, 3, 11);
  const ef1 = i16x8.shuffle(e, f, 4, 12, 5, 13, 6, 14, 7, 15);
  const gh0 = i16x8.shuffle(g, h, 0, 8, 1, 9, 2, 10, 3, 11);
  const gh1 = i16x8.shuffle(g, h, 4, 12, 5, 13, 6, 14, 7, 15);
  const q0 = v128.shuffle<i32>(ab0, cd0, 0, 4, 1, 5);
  const q1 = v128.shuffle<i32>(ab0, cd0, 2, 6, 3, 7);
  const q2 = v128.shuffle<i32>(ab1, cd1, 0, 4, 1, 5);
  const q3 = v128.shuffle<i32>(ab1, cd1, 2, 6, 3, 7);
  const q4 = v128.shuffle<i32>(ef0, gh0, 0, 4, 1, 5);
  const q5 = v128.shuffle<i32>(ef0, gh0, 2, 6, 3, 7);
  const q6 = v128.shuffle<i32>(ef1, gh1, 0, 4, 1, 5);
  const q7 = v128.shuffle<i32>(ef1, gh1, 2, 6, 3, 7);
  v128.store(dst, v128.shuffle<i64>(q0, q4, 0, 2), 0);
  v128.store(dst, v128.shuffle<i64>(q0, q4, 1, 3), 16);
  v128.store(dst, v128.shuffle<i64>(q1, q5, 0, 2), 32);
  v128.store(dst, v128.shuffle<i64>(q1, q5, 1, 3), 48);
  v128.store(dst, v128.shuffle<i64>(q2, q6, 0, 2), 64);
  v128.store(dst, v128.shuffle<i64>(q2, q6, 1, 3), 80);
  v128.store(dst, v128.shuffle<i64>(q3, q7, 0, 2), 96);
  v128.store(dst, v128.shuffle<i64>(q3, q7, 1, 3), 112);
}

function idctSimdBlock(coefs: usize, out: usize, stride: i32): void {
  const r0 = row16(coefs, 0);
  const r1 = row16(coefs, 1);
  const r2 = row16(coefs, 2);
  const r3 = row16(coefs, 3);
  const r4 = row16(coefs, 4);
  const r5 = row16(coefs, 5);
  const r6 = row16(coefs, 6);
  const r7 = row16(coefs, 7);
  // The whole-block test reads the coefficients before their 16-bit wrap, as idct8 does.
  let ac = v128.load(coefs, 32);
  for (let i: usize = 48; i < 256; i += 16) ac = v128.or(ac, v128.load(coefs + i));
  // Pass 1 on columns (lanes); its 8 outputs are the workspace's rows. Then transposed for pass 2.
  if (!v128.any_true(ac)) {
    const dc = i16x8.shl(r0, 2);
    transpose(dc, dc, dc, dc, dc, dc, dc, dc, COLS);
  } else {
    v128.store(ROWS, r0, 0);
    v128.store(ROWS, r1, 16);
    v128.store(ROWS, r2, 32);
    v128.store(ROWS, r3, 48);
    v128.store(ROWS, r4, 64);
    v128.store(ROWS, r5, 80);
    v128.store(ROWS, r6, 96);
    v128.store(ROWS, r7, 112);
    halfPass(ROWS, R32, 0, 11);
    halfPass(ROWS, R32, 1, 11);
    transpose(
      result16(0), result16(1), result16(2), result16(3), result16(4), result16(5), result16(6), result16(7), COLS,
    );
  }
  // Pass 2 on rows (lanes = rows, input k = workspace column k); output k is output column k.
  halfPass(COLS, R32, 0, 18);
  halfPass(COLS, R32, 1, 18);
  const c128 = i16x8.splat(128);
  transpose(
    i16x8.add(result16(0), c128), i16x8.add(result16(1), c128), i16x8.add(result16(2), c128),
    i16x8.add(result16(3), c128), i16x8.add(result16(4), c128), i16x8.add(result16(5), c128),
    i16x8.add(result16(6), c128), i16x8.add(result16(7), c128), ROWS,
  );
  // Rows as i16, two at a time narrowed (saturating) to u8.
  for (let r = 0; r < 8; r += 2) {
    const px = i8x16.narrow_i16x8_u(v128.load(ROWS + (<usize>r << 4)), v128.load(ROWS + (<usize>(r + 1) << 4)));
    const o = out + <usize>(r * stride);
    v128.store64_lane(o, px, 0);
    v128.store64_lane(o + <usize>stride, px, 1);
  }
  const zero = v128.splat<i32>(0);
  for (let i: usize = 0; i < 256; i += 16) v128.store(coefs + i, zero);
}

/** A band of blocks through the 8x8 IDCT (see the top of this file), one block at a time in i16/i32 lanes. */
export function idct8Band(coefs: usize, blocksPerRow: i32, rows: i32, out: usize, stride: i32): void {
  for (let r = 0; r < rows; r++) {
    for (let bx = 0; bx < blocksPerRow; bx++) {
      const blk = coefs + (<usize>(r * blocksPerRow + bx) << 8);
      idctSimdBlock(blk, out + <usize>(r * 8 * stride + bx * 8), stride);
    }
  }
}
