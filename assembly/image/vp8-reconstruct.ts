// Lossy WebP's reconstruction of one macroblock row, as libwebp 1.2.4's frame_dec.c / dec.c do it for
// Pillow: intra prediction (16x16, 4x4 and chroma modes, with libwebp's borders: 127 above the frame, 129
// left of it) into a work buffer laid out as libwebp's yuv_b_, the 4x4 inverse DCT of each block added to
// it (TransformDC for blocks without AC coefficients), and the rows moved into the planes.
// core/image/webp/vp8.ts reconstruct is the JavaScript twin (the fallback without the kernels).
//
// Per macroblock column: 384 i16 coefficients (16 luma, 4 U, 4 V blocks of 16, dequantized, the luma DCs
// of a 16x16-predicted macroblock already through the inverse WHT) at coeffs; 24 bytes at hasAc, whether
// each block has AC coefficients; 18 bytes at modes: whether it is 4x4-predicted, its chroma mode, and its
// 16 4x4 modes (or the 16x16 mode first). `top` holds the unfiltered bottom luma row of the macroblock row
// above (16 bytes a column), then its U and V rows (8 bytes a column each); it is read and, unless this is
// the last row, replaced. The row's 16 luma rows go to y (yStride apart), its 8 chroma rows to u and v.

@lazy const BPS: i32 = 32;
@lazy const Y_OFF: i32 = BPS + 8;
@lazy const U_OFF: i32 = Y_OFF + BPS * 16 + BPS;
@lazy const V_OFF: i32 = U_OFF + 16;

// The work buffer (each call sets every byte it reads before reading it).
const WORK: usize = memory.data(BPS * 26, 16);

@inline function ld(at: i32): i32 {
  return <i32>load<u8>(WORK + <usize>at);
}
@inline function st(at: i32, v: i32): void {
  store<u8>(WORK + <usize>at, <u8>v);
}
@inline function clip8(v: i32): i32 {
  return v < 0 ? 0 : v > 255 ? 255 : v;
}
@inline function avg3(a: i32, b: i32, c: i32): i32 {
  return (a + 2 * b + c + 2) >> 2;
}
@inline function avg2(a: i32, b: i32): i32 {
  return (a + b + 1) >> 1;
}
@inline function copyBytes(to: i32, from: i32, end: i32): void {
  memory.copy(WORK + <usize>to, WORK + <usize>from, <usize>(end - from));
}
@inline function fillBytes(from: i32, end: i32, v: i32): void {
  memory.fill(WORK + <usize>from, <u8>v, <usize>(end - from));
}

function fill(dst: i32, size: i32, v: i32): void {
  for (let y = 0; y < size; y++) fillBytes(dst + y * BPS, dst + y * BPS + size, v);
}

function trueMotion(dst: i32, size: i32): void {
  const tl = ld(dst - BPS - 1);
  for (let y = 0; y < size; y++) {
    const l = ld(dst + y * BPS - 1);
    for (let x = 0; x < size; x++) st(dst + y * BPS + x, clip8(ld(dst - BPS + x) + l - tl));
  }
}

// The block's scratch between the transform's passes.
const TMP: usize = memory.data(64, 16);

// The 4x4 inverse DCT of the block at c added to the prediction at dst (TransformOne, or TransformDC
// without AC coefficients).
function transform(c: usize, ac: bool, dst: i32): void {
  if (!ac) {
    const dc = <i32>load<i16>(c);
    if (dc == 0) return;
    const v = (dc + 4) >> 3;
    for (let i = 0; i < 4; i++) {
      const row = dst + i * BPS;
      for (let x = 0; x < 4; x++) st(row + x, clip8(ld(row + x) + v));
    }
    return;
  }
  // The vertical pass on the 4 columns at once (lane i: column i), then, transposed, the horizontal pass on
  // the 4 rows at once (lane i: row i), transposed back to rows; i32 lanes wrap as the scalar ints.
  const r0 = v128.load16x4_s(c);
  const r1 = v128.load16x4_s(c, 8);
  const r2 = v128.load16x4_s(c, 16);
  const r3 = v128.load16x4_s(c, 24);
  const a = i32x4.add(r0, r2);
  const b = i32x4.sub(r0, r2);
  const cc = i32x4.sub(mul2x4(r1), mul1x4(r3));
  const d = i32x4.add(mul1x4(r1), mul2x4(r3));
  transpose4(i32x4.add(a, d), i32x4.add(b, cc), i32x4.sub(b, cc), i32x4.sub(a, d));
  const u0 = v128.load(TMP);
  const u1 = v128.load(TMP, 16);
  const u2 = v128.load(TMP, 32);
  const u3 = v128.load(TMP, 48);
  const dc = i32x4.add(u0, i32x4.splat(4));
  const a2 = i32x4.add(dc, u2);
  const b2 = i32x4.sub(dc, u2);
  const cc2 = i32x4.sub(mul2x4(u1), mul1x4(u3));
  const d2 = i32x4.add(mul1x4(u1), mul2x4(u3));
  transpose4(
    i32x4.shr_s(i32x4.add(a2, d2), 3),
    i32x4.shr_s(i32x4.add(b2, cc2), 3),
    i32x4.shr_s(i32x4.sub(b2, cc2), 3),
    i32x4.shr_s(i32x4.sub(a2, d2), 3),
  );
  for (let i = 0; i < 4; i++) {
    const at = WORK + <usize>(dst + i * BPS);
    const px = i32x4.extend_low_i16x8_u(i16x8.extend_low_i8x16_u(v128.load32_zero(at)));
    const sum = i32x4.add(px, v128.load(TMP + <usize>(16 * i)));
    const n16 = i16x8.narrow_i32x4_s(sum, sum);
    v128.store32_lane(at, i8x16.narrow_i16x8_u(n16, n16), 0);
  }
}

@inline function mul1x4(a: v128): v128 {
  return i32x4.add(i32x4.shr_s(i32x4.mul(a, i32x4.splat(20091)), 16), a);
}
@inline function mul2x4(a: v128): v128 {
  return i32x4.shr_s(i32x4.mul(a, i32x4.splat(35468)), 16);
}

// Rows a, b, c, d of a 4x4 i32 matrix, transposed into TMP.
@inline function transpose4(a: v128, b: v128, c: v128, d: v128): void {
  const t0 = i8x16.shuffle(a, b, 0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23);
  const t1 = i8x16.shuffle(a, b, 8, 9, 10, 11, 24, 25, 26, 27, 12, 13, 14, 15, 28, 29, 30, 31);
  const t2 = i8x16.shuffle(c, d, 0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23);
  const t3 = i8x16.shuffle(c, d, 8, 9, 10, 11, 24, 25, 26, 27, 12, 13, 14, 15, 28, 29, 30, 31);
  v128.store(TMP, i8x16.shuffle(t0, t2, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23));
  v128.store(TMP, i8x16.shuffle(t0, t2, 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31), 16);
  v128.store(TMP, i8x16.shuffle(t1, t3, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23), 32);
  v128.store(TMP, i8x16.shuffle(t1, t3, 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31), 48);
}

function predict16(mode: i32, dst: i32): void {
  let dc: i32 = 0;
  switch (mode) {
    case 1:
      trueMotion(dst, 16);
      return;
    case 2:
      for (let y = 0; y < 16; y++) copyBytes(dst + y * BPS, dst - BPS, dst - BPS + 16);
      return;
    case 3:
      for (let y = 0; y < 16; y++) fillBytes(dst + y * BPS, dst + y * BPS + 16, ld(dst + y * BPS - 1));
      return;
    case 0:
      dc = 16;
      for (let j = 0; j < 16; j++) dc += ld(dst - 1 + j * BPS) + ld(dst + j - BPS);
      fill(dst, 16, dc >> 5);
      return;
    case 4:
      dc = 8;
      for (let j = 0; j < 16; j++) dc += ld(dst - 1 + j * BPS);
      fill(dst, 16, dc >> 4);
      return;
    case 5:
      dc = 8;
      for (let j = 0; j < 16; j++) dc += ld(dst + j - BPS);
      fill(dst, 16, dc >> 4);
      return;
    default:
      fill(dst, 16, 0x80);
      return;
  }
}

function predict8(mode: i32, dst: i32): void {
  let dc: i32 = 0;
  switch (mode) {
    case 1:
      trueMotion(dst, 8);
      return;
    case 2:
      for (let y = 0; y < 8; y++) copyBytes(dst + y * BPS, dst - BPS, dst - BPS + 8);
      return;
    case 3:
      for (let y = 0; y < 8; y++) fillBytes(dst + y * BPS, dst + y * BPS + 8, ld(dst + y * BPS - 1));
      return;
    case 0:
      dc = 8;
      for (let i = 0; i < 8; i++) dc += ld(dst + i - BPS) + ld(dst - 1 + i * BPS);
      fill(dst, 8, dc >> 4);
      return;
    case 4: // no top
      dc = 4;
      for (let i = 0; i < 8; i++) dc += ld(dst - 1 + i * BPS);
      fill(dst, 8, dc >> 3);
      return;
    case 5: // no left
      dc = 4;
      for (let i = 0; i < 8; i++) dc += ld(dst + i - BPS);
      fill(dst, 8, dc >> 3);
      return;
    default:
      fill(dst, 8, 0x80);
      return;
  }
}

function predict4(mode: i32, dst: i32): void {
  const X = ld(dst - BPS - 1); // the top-left
  const A = ld(dst - BPS);
  const B = ld(dst - BPS + 1);
  const C = ld(dst - BPS + 2);
  const D = ld(dst - BPS + 3);
  const E = ld(dst - BPS + 4);
  const F = ld(dst - BPS + 5);
  const G = ld(dst - BPS + 6);
  const H = ld(dst - BPS + 7);
  const I = ld(dst - 1);
  const J = ld(dst - 1 + BPS);
  const K = ld(dst - 1 + 2 * BPS);
  const L = ld(dst - 1 + 3 * BPS);
  switch (mode) {
    case 0:
      fill(dst, 4, (4 + A + B + C + D + I + J + K + L) >> 3);
      return;
    case 1:
      trueMotion(dst, 4);
      return;
    case 2: {
      const v0 = avg3(X, A, B);
      const v1 = avg3(A, B, C);
      const v2 = avg3(B, C, D);
      const v3 = avg3(C, D, E);
      for (let y = 0; y < 4; y++) {
        const o = dst + y * BPS;
        st(o, v0);
        st(o + 1, v1);
        st(o + 2, v2);
        st(o + 3, v3);
      }
      return;
    }
    case 3:
      fillBytes(dst, dst + 4, avg3(X, I, J));
      fillBytes(dst + BPS, dst + BPS + 4, avg3(I, J, K));
      fillBytes(dst + 2 * BPS, dst + 2 * BPS + 4, avg3(J, K, L));
      fillBytes(dst + 3 * BPS, dst + 3 * BPS + 4, avg3(K, L, L));
      return;
    case 4: {
      // RD
      st(dst + 3 * BPS, avg3(J, K, L));
      const v1 = avg3(I, J, K);
      st(dst + 1 + 3 * BPS, v1);
      st(dst + 2 * BPS, v1);
      const v2 = avg3(X, I, J);
      st(dst + 2 + 3 * BPS, v2);
      st(dst + 1 + 2 * BPS, v2);
      st(dst + BPS, v2);
      const v3 = avg3(A, X, I);
      st(dst + 3 + 3 * BPS, v3);
      st(dst + 2 + 2 * BPS, v3);
      st(dst + 1 + BPS, v3);
      st(dst, v3);
      const v4 = avg3(B, A, X);
      st(dst + 3 + 2 * BPS, v4);
      st(dst + 2 + BPS, v4);
      st(dst + 1, v4);
      const v5 = avg3(C, B, A);
      st(dst + 3 + BPS, v5);
      st(dst + 2, v5);
      st(dst + 3, avg3(D, C, B));
      return;
    }
    case 5: {
      // VR
      const v0 = avg2(X, A);
      st(dst, v0);
      st(dst + 1 + 2 * BPS, v0);
      const v1 = avg2(A, B);
      st(dst + 1, v1);
      st(dst + 2 + 2 * BPS, v1);
      const v2 = avg2(B, C);
      st(dst + 2, v2);
      st(dst + 3 + 2 * BPS, v2);
      st(dst + 3, avg2(C, D));
      st(dst + 3 * BPS, avg3(K, J, I));
      st(dst + 2 * BPS, avg3(J, I, X));
      const v6 = avg3(I, X, A);
      st(dst + BPS, v6);
      st(dst + 1 + 3 * BPS, v6);
      const v7 = avg3(X, A, B);
      st(dst + 1 + BPS, v7);
      st(dst + 2 + 3 * BPS, v7);
      const v8 = avg3(A, B, C);
      st(dst + 2 + BPS, v8);
      st(dst + 3 + 3 * BPS, v8);
      st(dst + 3 + BPS, avg3(B, C, D));
      return;
    }
    case 6: {
      // LD
      st(dst, avg3(A, B, C));
      const v1 = avg3(B, C, D);
      st(dst + 1, v1);
      st(dst + BPS, v1);
      const v2 = avg3(C, D, E);
      st(dst + 2, v2);
      st(dst + 1 + BPS, v2);
      st(dst + 2 * BPS, v2);
      const v3 = avg3(D, E, F);
      st(dst + 3, v3);
      st(dst + 2 + BPS, v3);
      st(dst + 1 + 2 * BPS, v3);
      st(dst + 3 * BPS, v3);
      const v4 = avg3(E, F, G);
      st(dst + 3 + BPS, v4);
      st(dst + 2 + 2 * BPS, v4);
      st(dst + 1 + 3 * BPS, v4);
      const v5 = avg3(F, G, H);
      st(dst + 3 + 2 * BPS, v5);
      st(dst + 2 + 3 * BPS, v5);
      st(dst + 3 + 3 * BPS, avg3(G, H, H));
      return;
    }
    case 7: {
      // VL
      st(dst, avg2(A, B));
      const v1 = avg2(B, C);
      st(dst + 1, v1);
      st(dst + 2 * BPS, v1);
      const v2 = avg2(C, D);
      st(dst + 2, v2);
      st(dst + 1 + 2 * BPS, v2);
      const v3 = avg2(D, E);
      st(dst + 3, v3);
      st(dst + 2 + 2 * BPS, v3);
      st(dst + BPS, avg3(A, B, C));
      const v5 = avg3(B, C, D);
      st(dst + 1 + BPS, v5);
      st(dst + 3 * BPS, v5);
      const v6 = avg3(C, D, E);
      st(dst + 2 + BPS, v6);
      st(dst + 1 + 3 * BPS, v6);
      const v7 = avg3(D, E, F);
      st(dst + 3 + BPS, v7);
      st(dst + 2 + 3 * BPS, v7);
      st(dst + 3 + 2 * BPS, avg3(E, F, G));
      st(dst + 3 + 3 * BPS, avg3(F, G, H));
      return;
    }
    case 8: {
      // HD
      const v0 = avg2(I, X);
      st(dst, v0);
      st(dst + 2 + BPS, v0);
      const v1 = avg2(J, I);
      st(dst + BPS, v1);
      st(dst + 2 + 2 * BPS, v1);
      const v2 = avg2(K, J);
      st(dst + 2 * BPS, v2);
      st(dst + 2 + 3 * BPS, v2);
      st(dst + 3 * BPS, avg2(L, K));
      st(dst + 3, avg3(A, B, C));
      st(dst + 2, avg3(X, A, B));
      const v6 = avg3(I, X, A);
      st(dst + 1, v6);
      st(dst + 3 + BPS, v6);
      const v7 = avg3(J, I, X);
      st(dst + 1 + BPS, v7);
      st(dst + 3 + 2 * BPS, v7);
      const v8 = avg3(K, J, I);
      st(dst + 1 + 2 * BPS, v8);
      st(dst + 3 + 3 * BPS, v8);
      st(dst + 1 + 3 * BPS, avg3(L, K, J));
      return;
    }
    default: {
      // HU
      st(dst, avg2(I, J));
      const v1 = avg2(J, K);
      st(dst + 2, v1);
      st(dst + BPS, v1);
      const v2 = avg2(K, L);
      st(dst + 2 + BPS, v2);
      st(dst + 2 * BPS, v2);
      st(dst + 1, avg3(I, J, K));
      const v4 = avg3(J, K, L);
      st(dst + 3, v4);
      st(dst + 1 + BPS, v4);
      const v5 = avg3(K, L, L);
      st(dst + 3 + BPS, v5);
      st(dst + 1 + 2 * BPS, v5);
      const v6 = L;
      st(dst + 3 + 2 * BPS, v6);
      st(dst + 2 + 2 * BPS, v6);
      st(dst + 3 * BPS, v6);
      st(dst + 1 + 3 * BPS, v6);
      st(dst + 2 + 3 * BPS, v6);
      st(dst + 3 + 3 * BPS, v6);
    }
  }
}

@inline function checkMode(mbX: i32, mbY: i32, mode: i32): i32 {
  if (mode != 0) return mode;
  if (mbX == 0) return mbY == 0 ? 6 : 5;
  return mbY == 0 ? 4 : 0;
}

@inline function copyWords(from: usize, to: usize, words: i32): void {
  memory.copy(to, from, <usize>(4 * words));
}

/** One macroblock row's reconstruction (see the file's comment). */
export function vp8ReconstructRow(
  coeffs: usize, hasAc: usize, modes: usize, top: usize,
  y: usize, u: usize, v: usize, yStride: i32, uvStride: i32,
  mbW: i32, mbY: i32, mbH: i32,
): void {
  const topY = top;
  const topU = top + <usize>(16 * mbW);
  const topV = topU + <usize>(8 * mbW);
  const W = WORK;
  // The left border (129), and the top border (127) on the first row.
  for (let j = 0; j < 16; j++) st(Y_OFF + j * BPS - 1, 129);
  for (let j = 0; j < 8; j++) {
    st(U_OFF + j * BPS - 1, 129);
    st(V_OFF + j * BPS - 1, 129);
  }
  if (mbY > 0) {
    st(Y_OFF - 1 - BPS, 129);
    st(U_OFF - 1 - BPS, 129);
    st(V_OFF - 1 - BPS, 129);
  } else {
    fillBytes(Y_OFF - BPS - 1, Y_OFF - BPS - 1 + 21, 127);
    fillBytes(U_OFF - BPS - 1, U_OFF - BPS - 1 + 9, 127);
    fillBytes(V_OFF - BPS - 1, V_OFF - BPS - 1 + 9, 127);
  }
  for (let mbX = 0; mbX < mbW; mbX++) {
    const c = coeffs + <usize>(768 * mbX);
    const ac = hasAc + <usize>(24 * mbX);
    const m = modes + <usize>(18 * mbX);
    if (mbX > 0) {
      for (let j = -1; j < 16; j++) copyWords(W + <usize>(Y_OFF + j * BPS + 12), W + <usize>(Y_OFF + j * BPS - 4), 1);
      for (let j = -1; j < 8; j++) {
        copyWords(W + <usize>(U_OFF + j * BPS + 4), W + <usize>(U_OFF + j * BPS - 4), 1);
        copyWords(W + <usize>(V_OFF + j * BPS + 4), W + <usize>(V_OFF + j * BPS - 4), 1);
      }
    }
    if (mbY > 0) {
      copyWords(topY + <usize>(16 * mbX), W + <usize>(Y_OFF - BPS), 4);
      copyWords(topU + <usize>(8 * mbX), W + <usize>(U_OFF - BPS), 2);
      copyWords(topV + <usize>(8 * mbX), W + <usize>(V_OFF - BPS), 2);
    }
    if (load<u8>(m) != 0) {
      const tr = W + <usize>(Y_OFF - BPS + 16);
      if (mbY > 0) {
        const word =
          mbX >= mbW - 1
            ? <u32>load<u8>(topY + <usize>(16 * mbX + 15)) * 0x01010101
            : load<u32>(topY + <usize>(16 * mbX + 16));
        store<u32>(tr, word);
      }
      for (let k = 1; k <= 3; k++) store<u32>(tr + <usize>(k * 4 * BPS), load<u32>(tr));
      for (let n = 0; n < 16; n++) {
        const dst = Y_OFF + (n & 3) * 4 + (n >> 2) * 4 * BPS;
        predict4(<i32>load<u8>(m + <usize>(2 + n)), dst);
        transform(c + <usize>(32 * n), load<u8>(ac + <usize>n) != 0, dst);
      }
    } else {
      predict16(checkMode(mbX, mbY, <i32>load<u8>(m, 2)), Y_OFF);
      for (let n = 0; n < 16; n++) {
        transform(c + <usize>(32 * n), load<u8>(ac + <usize>n) != 0, Y_OFF + (n & 3) * 4 + (n >> 2) * 4 * BPS);
      }
    }
    const uvMode = checkMode(mbX, mbY, <i32>load<u8>(m, 1));
    predict8(uvMode, U_OFF);
    predict8(uvMode, V_OFF);
    for (let n = 0; n < 4; n++) {
      const off = (n & 1) * 4 + (n >> 1) * 4 * BPS;
      transform(c + <usize>(512 + 32 * n), load<u8>(ac + <usize>(16 + n)) != 0, U_OFF + off);
      transform(c + <usize>(640 + 32 * n), load<u8>(ac + <usize>(20 + n)) != 0, V_OFF + off);
    }
    if (mbY < mbH - 1) {
      copyWords(W + <usize>(Y_OFF + 15 * BPS), topY + <usize>(16 * mbX), 4);
      copyWords(W + <usize>(U_OFF + 7 * BPS), topU + <usize>(8 * mbX), 2);
      copyWords(W + <usize>(V_OFF + 7 * BPS), topV + <usize>(8 * mbX), 2);
    }
    for (let j = 0; j < 16; j++) {
      copyWords(W + <usize>(Y_OFF + j * BPS), y + <usize>(j * yStride + mbX * 16), 4);
    }
    for (let j = 0; j < 8; j++) {
      copyWords(W + <usize>(U_OFF + j * BPS), u + <usize>(j * uvStride + mbX * 8), 2);
      copyWords(W + <usize>(V_OFF + j * BPS), v + <usize>(j * uvStride + mbX * 8), 2);
    }
  }
}
