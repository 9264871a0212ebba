// The reduced inverse DCTs of DCT-domain scaling, as libjpeg-turbo computes them (jidctred.c): 4x4 output
// from the 8x8 coefficients ignoring row and column 4, 2x2 reading rows and columns 0, 1, 3, 5, 7. The
// same arithmetic as core/image/jpeg/idct.ts idct4 and idct2: 32-bit, no 16-bit wrapping, and the result's
// range-limit index masked to 10 bits as libjpeg masks it. A column or row whose AC inputs are all zero
// takes jidctred.c's shortcut (its DC shifted, which wraps differently from the full sum for huge values). Bands of blocks as in ./idct.ts (64 i32 each,
// zeroed after use); block (row, bx) of a size-s band goes to out + row * s * stride + bx * s.

@lazy const F_0_211: i32 = 1730;
@lazy const F_0_509: i32 = 4176;
@lazy const F_0_601: i32 = 4926;
@lazy const F_0_720: i32 = 5906;
@lazy const F_0_765: i32 = 6270;
@lazy const F_0_850: i32 = 6967;
@lazy const F_0_899: i32 = 7373;
@lazy const F_1_061: i32 = 8697;
@lazy const F_1_272: i32 = 10426;
@lazy const F_1_451: i32 = 11893;
@lazy const F_1_847: i32 = 15137;
@lazy const F_2_172: i32 = 17799;
@lazy const F_2_562: i32 = 20995;
@lazy const F_3_624: i32 = 29692;

/** The column pass's output: up to 4 rows of 8 i32. */
@lazy const WS: usize = memory.data(128, 16);

// (value + 128) clamped to 0..255, for value sign-extended from its low 10 bits (libjpeg's masked index).
@inline function masked(v: i32): u8 {
  const x = ((v << 22) >> 22) + 128;
  return <u8>(x < 0 ? 0 : x > 255 ? 255 : x);
}

@inline function c(coefs: usize, i: i32): i32 {
  return load<i32>(coefs + (<usize>i << 2));
}

@inline function w(i: i32): i32 {
  return load<i32>(WS + (<usize>i << 2));
}

@inline function setW(i: i32, v: i32): void {
  store<i32>(WS + (<usize>i << 2), v);
}

// The 4x4 row pass from WS (rows 0..3), shared by both forms.
@inline function rows4(out: usize, stride: i32): void {
  for (let r = 0; r < 4; r++) {
    const b = r * 8;
    const o = out + <usize>(r * stride);
    if ((w(b + 1) | w(b + 2) | w(b + 3) | w(b + 5) | w(b + 6) | w(b + 7)) == 0) {
      const v = masked((w(b) + 16) >> 5);
      store<u8>(o, v);
      store<u8>(o, v, 1);
      store<u8>(o, v, 2);
      store<u8>(o, v, 3);
      continue;
    }
    let tmp0 = w(b) * 16384;
    let tmp2 = w(b + 2) * F_1_847 - w(b + 6) * F_0_765;
    const tmp10 = tmp0 + tmp2;
    const tmp12 = tmp0 - tmp2;
    const z1 = w(b + 7);
    const z2 = w(b + 5);
    const z3 = w(b + 3);
    const z4 = w(b + 1);
    tmp0 = -z1 * F_0_211 + z2 * F_1_451 - z3 * F_2_172 + z4 * F_1_061;
    tmp2 = -z1 * F_0_509 - z2 * F_0_601 + z3 * F_0_899 + z4 * F_2_562;
    store<u8>(o, masked((tmp10 + tmp2 + 262144) >> 19));
    store<u8>(o, masked((tmp10 - tmp2 + 262144) >> 19), 3);
    store<u8>(o, masked((tmp12 + tmp0 + 262144) >> 19), 1);
    store<u8>(o, masked((tmp12 - tmp0 + 262144) >> 19), 2);
  }
}

// The 2x2 row pass from WS (rows 0, 1).
@inline function rows2(out: usize, stride: i32): void {
  for (let r = 0; r < 2; r++) {
    const b = r * 8;
    const o = out + <usize>(r * stride);
    if ((w(b + 1) | w(b + 3) | w(b + 5) | w(b + 7)) == 0) {
      const v = masked((w(b) + 16) >> 5);
      store<u8>(o, v);
      store<u8>(o, v, 1);
      continue;
    }
    const tmp10 = w(b) * 32768;
    const tmp0 = -w(b + 7) * F_0_720 + w(b + 5) * F_0_850 - w(b + 3) * F_1_272 + w(b + 1) * F_3_624;
    store<u8>(o, masked((tmp10 + tmp0 + 524288) >> 20));
    store<u8>(o, masked((tmp10 - tmp0 + 524288) >> 20), 1);
  }
}

function idct4ScalarBlock(coefs: usize, out: usize, stride: i32): void {
  for (let i = 0; i < 8; i++) {
    if (i == 4) continue;
    if ((c(coefs, i + 8) | c(coefs, i + 16) | c(coefs, i + 24) | c(coefs, i + 40) | c(coefs, i + 48) | c(coefs, i + 56)) == 0) {
      const dc = c(coefs, i) << 2;
      setW(i, dc);
      setW(i + 8, dc);
      setW(i + 16, dc);
      setW(i + 24, dc);
      continue;
    }
    let tmp0 = c(coefs, i) * 16384;
    let tmp2 = c(coefs, i + 16) * F_1_847 - c(coefs, i + 48) * F_0_765;
    const tmp10 = tmp0 + tmp2;
    const tmp12 = tmp0 - tmp2;
    const z1 = c(coefs, i + 56);
    const z2 = c(coefs, i + 40);
    const z3 = c(coefs, i + 24);
    const z4 = c(coefs, i + 8);
    tmp0 = -z1 * F_0_211 + z2 * F_1_451 - z3 * F_2_172 + z4 * F_1_061;
    tmp2 = -z1 * F_0_509 - z2 * F_0_601 + z3 * F_0_899 + z4 * F_2_562;
    setW(i, (tmp10 + tmp2 + 2048) >> 12);
    setW(i + 24, (tmp10 - tmp2 + 2048) >> 12);
    setW(i + 8, (tmp12 + tmp0 + 2048) >> 12);
    setW(i + 16, (tmp12 - tmp0 + 2048) >> 12);
  }
  rows4(out, stride);
  memory.fill(coefs, 0, 256);
}

function idct2ScalarBlock(coefs: usize, out: usize, stride: i32): void {
  for (let i = 0; i < 8; i++) {
    if (i == 2 || i == 4 || i == 6) continue;
    if ((c(coefs, i + 8) | c(coefs, i + 24) | c(coefs, i + 40) | c(coefs, i + 56)) == 0) {
      const dc = c(coefs, i) << 2;
      setW(i, dc);
      setW(i + 8, dc);
      continue;
    }
    const tmp10 = c(coefs, i) * 32768;
    const tmp0 =
      -c(coefs, i + 56) * F_0_720 + c(coefs, i + 40) * F_0_850 - c(coefs, i + 24) * F_1_272 + c(coefs, i + 8) * F_3_624;
    setW(i, (tmp10 + tmp0 + 4096) >> 13);
    setW(i + 8, (tmp10 - tmp0 + 4096) >> 13);
  }
  rows2(out, stride);
  memory.fill(coefs, 0, 256);
}

// The column passes on 4 columns at a time (lanes), `half` 0 for columns 0..3, 1 for 4..7 (column 4 is
// computed and never read).
@inline function row(coefs: usize, k: usize, half: usize): v128 {
  return v128.load(coefs + k * 32 + half * 16);
}

@inline function k32(k: i32): v128 {
  return i32x4.splat(k);
}

// (v + 128) clamped to 0..255 for v sign-extended from its low 10 bits (masked, 4 lanes).
@inline function masked4(v: v128): v128 {
  const x = i32x4.add(i32x4.shr_s(i32x4.shl(v, 22), 22), k32(128));
  return i32x4.min_s(i32x4.max_s(x, k32(0)), k32(255));
}

// Both passes in i32 lanes: the column pass on 4 columns at a time (lanes = columns), the 4 x 8 result
// transposed so that the row pass runs on the 4 rows at once (lanes = rows), the same arithmetic again.
function idct4SimdBlock(coefs: usize, out: usize, stride: i32): void {
  // Column pass: rows 0..3 of columns 0..3 (lo) and 4..7 (hi).
  let r0lo = k32(0), r1lo = k32(0), r2lo = k32(0), r3lo = k32(0);
  let r0hi = k32(0), r1hi = k32(0), r2hi = k32(0), r3hi = k32(0);
  for (let half: usize = 0; half < 2; half++) {
    const tmp0e = i32x4.shl(row(coefs, 0, half), 14);
    const tmp2e = i32x4.sub(i32x4.mul(row(coefs, 2, half), k32(F_1_847)), i32x4.mul(row(coefs, 6, half), k32(F_0_765)));
    const bias = k32(2048);
    const tmp10 = i32x4.add(i32x4.add(tmp0e, tmp2e), bias);
    const tmp12 = i32x4.add(i32x4.sub(tmp0e, tmp2e), bias);
    const z1 = row(coefs, 7, half);
    const z2 = row(coefs, 5, half);
    const z3 = row(coefs, 3, half);
    const z4 = row(coefs, 1, half);
    const tmp0 = i32x4.add(
      i32x4.sub(i32x4.mul(z2, k32(F_1_451)), i32x4.mul(z1, k32(F_0_211))),
      i32x4.sub(i32x4.mul(z4, k32(F_1_061)), i32x4.mul(z3, k32(F_2_172))),
    );
    const tmp2 = i32x4.add(
      i32x4.sub(i32x4.mul(z3, k32(F_0_899)), i32x4.mul(z1, k32(F_0_509))),
      i32x4.sub(i32x4.mul(z4, k32(F_2_562)), i32x4.mul(z2, k32(F_0_601))),
    );
    // Lanes whose AC inputs are all zero take the shortcut.
    const ac = v128.or(v128.or(v128.or(z1, z2), v128.or(z3, z4)), v128.or(row(coefs, 2, half), row(coefs, 6, half)));
    const flat = i32x4.eq(ac, k32(0));
    const dc = i32x4.shl(row(coefs, 0, half), 2);
    const a = v128.bitselect(dc, i32x4.shr_s(i32x4.add(tmp10, tmp2), 12), flat);
    const b = v128.bitselect(dc, i32x4.shr_s(i32x4.add(tmp12, tmp0), 12), flat);
    const c = v128.bitselect(dc, i32x4.shr_s(i32x4.sub(tmp12, tmp0), 12), flat);
    const d = v128.bitselect(dc, i32x4.shr_s(i32x4.sub(tmp10, tmp2), 12), flat);
    if (half == 0) {
      r0lo = a;
      r1lo = b;
      r2lo = c;
      r3lo = d;
    } else {
      r0hi = a;
      r1hi = b;
      r2hi = c;
      r3hi = d;
    }
  }
  // Transposed: w_c holds column c of rows 0..3 (column 4 is not read).
  const t01lo = i32x4.shuffle(r0lo, r1lo, 0, 4, 1, 5); // r0c0 r1c0 r0c1 r1c1
  const t23lo = i32x4.shuffle(r2lo, r3lo, 0, 4, 1, 5);
  const u01lo = i32x4.shuffle(r0lo, r1lo, 2, 6, 3, 7); // r0c2 r1c2 r0c3 r1c3
  const u23lo = i32x4.shuffle(r2lo, r3lo, 2, 6, 3, 7);
  const w0 = i32x4.shuffle(t01lo, t23lo, 0, 1, 4, 5);
  const w1 = i32x4.shuffle(t01lo, t23lo, 2, 3, 6, 7);
  const w2 = i32x4.shuffle(u01lo, u23lo, 0, 1, 4, 5);
  const w3 = i32x4.shuffle(u01lo, u23lo, 2, 3, 6, 7);
  const t01hi = i32x4.shuffle(r0hi, r1hi, 1, 5, 2, 6); // r0c5 r1c5 r0c6 r1c6
  const t23hi = i32x4.shuffle(r2hi, r3hi, 1, 5, 2, 6);
  const w5 = i32x4.shuffle(t01hi, t23hi, 0, 1, 4, 5);
  const w6 = i32x4.shuffle(t01hi, t23hi, 2, 3, 6, 7);
  const w7 = i32x4.shuffle(i32x4.shuffle(r0hi, r1hi, 3, 7, 3, 7), i32x4.shuffle(r2hi, r3hi, 3, 7, 3, 7), 0, 1, 4, 5);
  // Row pass (rows4), lanes = rows.
  const tmp0e = i32x4.shl(w0, 14);
  const tmp2e = i32x4.sub(i32x4.mul(w2, k32(F_1_847)), i32x4.mul(w6, k32(F_0_765)));
  const bias = k32(262144);
  const tmp10 = i32x4.add(i32x4.add(tmp0e, tmp2e), bias);
  const tmp12 = i32x4.add(i32x4.sub(tmp0e, tmp2e), bias);
  const tmp0 = i32x4.add(
    i32x4.sub(i32x4.mul(w5, k32(F_1_451)), i32x4.mul(w7, k32(F_0_211))),
    i32x4.sub(i32x4.mul(w1, k32(F_1_061)), i32x4.mul(w3, k32(F_2_172))),
  );
  const tmp2 = i32x4.add(
    i32x4.sub(i32x4.mul(w3, k32(F_0_899)), i32x4.mul(w7, k32(F_0_509))),
    i32x4.sub(i32x4.mul(w1, k32(F_2_562)), i32x4.mul(w5, k32(F_0_601))),
  );
  const ac = v128.or(v128.or(v128.or(w1, w2), v128.or(w3, w5)), v128.or(w6, w7));
  const flat = i32x4.eq(ac, k32(0));
  const dc = i32x4.shr_s(i32x4.add(w0, k32(16)), 5);
  const x0 = masked4(v128.bitselect(dc, i32x4.shr_s(i32x4.add(tmp10, tmp2), 19), flat));
  const x1 = masked4(v128.bitselect(dc, i32x4.shr_s(i32x4.add(tmp12, tmp0), 19), flat));
  const x2 = masked4(v128.bitselect(dc, i32x4.shr_s(i32x4.sub(tmp12, tmp0), 19), flat));
  const x3 = masked4(v128.bitselect(dc, i32x4.shr_s(i32x4.sub(tmp10, tmp2), 19), flat));
  // Byte 4x + r is output column x of row r; regrouped by row, 4 bytes each.
  const bytes = i8x16.narrow_i16x8_u(i16x8.narrow_i32x4_s(x0, x1), i16x8.narrow_i32x4_s(x2, x3));
  const rows = i8x16.shuffle(bytes, bytes, 0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  v128.store32_lane(out, rows, 0);
  v128.store32_lane(out + <usize>stride, rows, 1);
  v128.store32_lane(out + <usize>(2 * stride), rows, 2);
  v128.store32_lane(out + <usize>(3 * stride), rows, 3);
  const zero = v128.splat<i32>(0);
  for (let i: usize = 0; i < 256; i += 16) v128.store(coefs + i, zero);
}

// The column pass on 4 columns at a time as above; the row pass on both rows at once (lanes = row 0, row 1,
// and two lanes unused).
function idct2SimdBlock(coefs: usize, out: usize, stride: i32): void {
  let r0lo = k32(0), r1lo = k32(0), r0hi = k32(0), r1hi = k32(0);
  for (let half: usize = 0; half < 2; half++) {
    const tmp10 = i32x4.add(i32x4.shl(row(coefs, 0, half), 15), k32(4096));
    const tmp0 = i32x4.add(
      i32x4.sub(i32x4.mul(row(coefs, 5, half), k32(F_0_850)), i32x4.mul(row(coefs, 7, half), k32(F_0_720))),
      i32x4.sub(i32x4.mul(row(coefs, 1, half), k32(F_3_624)), i32x4.mul(row(coefs, 3, half), k32(F_1_272))),
    );
    const ac = v128.or(v128.or(row(coefs, 1, half), row(coefs, 3, half)), v128.or(row(coefs, 5, half), row(coefs, 7, half)));
    const flat = i32x4.eq(ac, k32(0));
    const dc = i32x4.shl(row(coefs, 0, half), 2);
    const a = v128.bitselect(dc, i32x4.shr_s(i32x4.add(tmp10, tmp0), 13), flat);
    const b = v128.bitselect(dc, i32x4.shr_s(i32x4.sub(tmp10, tmp0), 13), flat);
    if (half == 0) {
      r0lo = a;
      r1lo = b;
    } else {
      r0hi = a;
      r1hi = b;
    }
  }
  // Columns 0, 1, 3 (from lo) and 5, 7 (from hi) of rows 0 and 1 in lanes 0 and 1.
  const lo01 = i32x4.shuffle(r0lo, r1lo, 0, 4, 1, 5); // c0 of r0 r1, c1 of r0 r1
  const w0 = lo01;
  const w1 = i32x4.shuffle(lo01, lo01, 2, 3, 2, 3);
  const w3 = i32x4.shuffle(r0lo, r1lo, 3, 7, 3, 7);
  const w5 = i32x4.shuffle(r0hi, r1hi, 1, 5, 1, 5);
  const w7 = i32x4.shuffle(r0hi, r1hi, 3, 7, 3, 7);
  const tmp10 = i32x4.add(i32x4.shl(w0, 15), k32(524288));
  const tmp0 = i32x4.add(
    i32x4.sub(i32x4.mul(w5, k32(F_0_850)), i32x4.mul(w7, k32(F_0_720))),
    i32x4.sub(i32x4.mul(w1, k32(F_3_624)), i32x4.mul(w3, k32(F_1_272))),
  );
  const flat = i32x4.eq(v128.or(v128.or(w1, w3), v128.or(w5, w7)), k32(0));
  const dc = i32x4.shr_s(i32x4.add(w0, k32(16)), 5);
  const x0 = v128.bitselect(dc, i32x4.shr_s(i32x4.add(tmp10, tmp0), 20), flat);
  const x1 = v128.bitselect(dc, i32x4.shr_s(i32x4.sub(tmp10, tmp0), 20), flat);
  // r0x0 r0x1 r1x0 r1x1
  const v = masked4(i32x4.shuffle(x0, x1, 0, 4, 1, 5));
  const bytes = i8x16.narrow_i16x8_u(i16x8.narrow_i32x4_s(v, v), i16x8.narrow_i32x4_s(v, v));
  v128.store16_lane(out, bytes, 0);
  v128.store16_lane(out + <usize>stride, bytes, 1);
  const zero = v128.splat<i32>(0);
  for (let i: usize = 0; i < 256; i += 16) v128.store(coefs + i, zero);
}

/** A band of blocks through the 4x4 IDCT: the column pass in i32 lanes, the row pass scalar. */
export function idct4Band(coefs: usize, blocksPerRow: i32, rows: i32, out: usize, stride: i32): void {
  for (let r = 0; r < rows; r++) {
    for (let bx = 0; bx < blocksPerRow; bx++) {
      idct4SimdBlock(coefs + (<usize>(r * blocksPerRow + bx) << 8), out + <usize>(r * 4 * stride + bx * 4), stride);
    }
  }
}

/** Scalar twin of idct4Band. */
export function idct4BandScalar(coefs: usize, blocksPerRow: i32, rows: i32, out: usize, stride: i32): void {
  for (let r = 0; r < rows; r++) {
    for (let bx = 0; bx < blocksPerRow; bx++) {
      idct4ScalarBlock(coefs + (<usize>(r * blocksPerRow + bx) << 8), out + <usize>(r * 4 * stride + bx * 4), stride);
    }
  }
}

/** A band of blocks through the 2x2 IDCT: the column pass in i32 lanes, the row pass scalar. */
export function idct2Band(coefs: usize, blocksPerRow: i32, rows: i32, out: usize, stride: i32): void {
  for (let r = 0; r < rows; r++) {
    for (let bx = 0; bx < blocksPerRow; bx++) {
      idct2SimdBlock(coefs + (<usize>(r * blocksPerRow + bx) << 8), out + <usize>(r * 2 * stride + bx * 2), stride);
    }
  }
}

/** Scalar twin of idct2Band. */
export function idct2BandScalar(coefs: usize, blocksPerRow: i32, rows: i32, out: usize, stride: i32): void {
  for (let r = 0; r < rows; r++) {
    for (let bx = 0; bx < blocksPerRow; bx++) {
      idct2ScalarBlock(coefs + (<usize>(r * blocksPerRow + bx) << 8), out + <usize>(r * 2 * stride + bx * 2), stride);
    }
  }
}
