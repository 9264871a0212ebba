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

function idct4SimdBlock(coefs: usize, out: usize, stride: i32): void {
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
    const o = WS + half * 16;
    v128.store(o, v128.bitselect(dc, i32x4.shr_s(i32x4.add(tmp10, tmp2), 12), flat), 0);
    v128.store(o, v128.bitselect(dc, i32x4.shr_s(i32x4.sub(tmp10, tmp2), 12), flat), 96);
    v128.store(o, v128.bitselect(dc, i32x4.shr_s(i32x4.add(tmp12, tmp0), 12), flat), 32);
    v128.store(o, v128.bitselect(dc, i32x4.shr_s(i32x4.sub(tmp12, tmp0), 12), flat), 64);
  }
  rows4(out, stride);
  const zero = v128.splat<i32>(0);
  for (let i: usize = 0; i < 256; i += 16) v128.store(coefs + i, zero);
}

function idct2SimdBlock(coefs: usize, out: usize, stride: i32): void {
  for (let half: usize = 0; half < 2; half++) {
    const tmp10 = i32x4.add(i32x4.shl(row(coefs, 0, half), 15), k32(4096));
    const tmp0 = i32x4.add(
      i32x4.sub(i32x4.mul(row(coefs, 5, half), k32(F_0_850)), i32x4.mul(row(coefs, 7, half), k32(F_0_720))),
      i32x4.sub(i32x4.mul(row(coefs, 1, half), k32(F_3_624)), i32x4.mul(row(coefs, 3, half), k32(F_1_272))),
    );
    const ac = v128.or(v128.or(row(coefs, 1, half), row(coefs, 3, half)), v128.or(row(coefs, 5, half), row(coefs, 7, half)));
    const flat = i32x4.eq(ac, k32(0));
    const dc = i32x4.shl(row(coefs, 0, half), 2);
    const o = WS + half * 16;
    v128.store(o, v128.bitselect(dc, i32x4.shr_s(i32x4.add(tmp10, tmp0), 13), flat), 0);
    v128.store(o, v128.bitselect(dc, i32x4.shr_s(i32x4.sub(tmp10, tmp0), 13), flat), 32);
  }
  rows2(out, stride);
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
