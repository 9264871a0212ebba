// Lossy WebP's output rows as libwebp 1.2.4 gives Pillow RGB: the fancy upsampler (UpsampleRgbLinePair)
// of the 4:2:0 chroma and the 14-bit fixed-point YUV -> RGB of yuv.h (VP8YUVToR/G/B).
// core/image/webp/vp8.ts upsampleLine is the JavaScript twin, vp8UpsampleRowsScalar the scalar one.
//
// An output line mixes its nearer chroma row 3:1 with the farther one (the row above for the bottom line of
// a pair, below for the top one) and, along the row, chroma column x - 1 and x 3:1 towards the nearer
// column; the first pixel, and the last of an even width, take the vertical mix alone.
//
// `lines` holds 5 i32 per output line: the addresses of its luma row and of the near U, near V, far U and
// far V chroma rows; line r goes to out + r * 3 * width. Rows have 16 bytes of slack after them.

@inline function mulHi(v: i32, coeff: i32): i32 {
  return (v * coeff) >> 8;
}

// VP8Clip8: v >> 6 clamped to 0..255.
@inline function clip(v: i32): u8 {
  return <u8>((v & ~16383) == 0 ? v >> 6 : v < 0 ? 0 : 255);
}

@inline function put(out: usize, y: i32, u: i32, v: i32): void {
  const yy = mulHi(y, 19077);
  store<u8>(out, clip(yy + mulHi(v, 26149) - 14234));
  store<u8>(out, clip(yy - mulHi(u, 6419) - mulHi(v, 13320) + 8708), 1);
  store<u8>(out, clip(yy + mulHi(u, 33050) - 17685), 2);
}

// Output pixels 2x - 1 and 2x of one line (x >= 1), as the JavaScript twin.
@inline function pairScalar(y: usize, nu: usize, nv: usize, fu: usize, fv: usize, out: usize, x: i32): void {
  const i = <usize>x;
  const nlu = <i32>load<u8>(nu + i - 1);
  const nlv = <i32>load<u8>(nv + i - 1);
  const flu = <i32>load<u8>(fu + i - 1);
  const flv = <i32>load<u8>(fv + i - 1);
  const n_u = <i32>load<u8>(nu + i);
  const n_v = <i32>load<u8>(nv + i);
  const f_u = <i32>load<u8>(fu + i);
  const f_v = <i32>load<u8>(fv + i);
  const avgU = nlu + n_u + flu + f_u + 8;
  const avgV = nlv + n_v + flv + f_v + 8;
  const d12u = (avgU + 2 * (n_u + flu)) >> 3;
  const d12v = (avgV + 2 * (n_v + flv)) >> 3;
  const d03u = (avgU + 2 * (nlu + f_u)) >> 3;
  const d03v = (avgV + 2 * (nlv + f_v)) >> 3;
  const px = <usize>(2 * x - 1);
  put(out + 3 * px, <i32>load<u8>(y + px), (d12u + nlu) >> 1, (d12v + nlv) >> 1);
  put(out + 3 * px + 3, <i32>load<u8>(y + px + 1), (d03u + n_u) >> 1, (d03v + n_v) >> 1);
}

@inline function edge(y: usize, nu: usize, nv: usize, fu: usize, fv: usize, out: usize, px: i32, x: i32): void {
  const i = <usize>x;
  const u = (3 * <i32>load<u8>(nu + i) + <i32>load<u8>(fu + i) + 2) >> 2;
  const v = (3 * <i32>load<u8>(nv + i) + <i32>load<u8>(fv + i) + 2) >> 2;
  put(out + <usize>(3 * px), <i32>load<u8>(y + <usize>px), u, v);
}

/** Scalar twin of vp8UpsampleRows. */
export function vp8UpsampleRowsScalar(lines: usize, rows: i32, out: usize, width: i32): void {
  const lastPair = (width - 1) >> 1;
  for (let r = 0; r < rows; r++, lines += 20, out += <usize>(3 * width)) {
    const y = <usize>load<u32>(lines);
    const nu = <usize>load<u32>(lines, 4);
    const nv = <usize>load<u32>(lines, 8);
    const fu = <usize>load<u32>(lines, 12);
    const fv = <usize>load<u32>(lines, 16);
    edge(y, nu, nv, fu, fv, out, 0, 0);
    for (let x = 1; x <= lastPair; x++) pairScalar(y, nu, nv, fu, fv, out, x);
    if (!(width & 1)) edge(y, nu, nv, fu, fv, out, width - 1, lastPair);
  }
}

// One channel's 8 values of chroma columns x - 1 .. x + 6 (left) and x .. x + 7 (this) of the near and far
// rows, upsampled into the 16 output pixels 2x - 1 .. 2x + 14 (two i16 vectors, stored at `to`).
@inline function upsample8(near: usize, far: usize, to: usize): void {
  const nl = v128.load8x8_u(near - 1);
  const n = v128.load8x8_u(near);
  const fl = v128.load8x8_u(far - 1);
  const f = v128.load8x8_u(far);
  const avg = i16x8.add(i16x8.add(i16x8.add(nl, n), i16x8.add(fl, f)), i16x8.splat(8));
  const d12 = i16x8.shr_s(i16x8.add(avg, i16x8.shl(i16x8.add(n, fl), 1)), 3);
  const d03 = i16x8.shr_s(i16x8.add(avg, i16x8.shl(i16x8.add(nl, f), 1)), 3);
  const odd = i16x8.shr_s(i16x8.add(d12, nl), 1); // pixels 2x - 1
  const even = i16x8.shr_s(i16x8.add(d03, n), 1); // pixels 2x
  v128.store(to, i8x16.shuffle(odd, even, 0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23));
  v128.store(to, i8x16.shuffle(odd, even, 8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31), 16);
}

// (v * coeff) >> 8 for 8 i16 lanes (0..255), as two i32 vectors.
@inline function mulHiLo(v: v128, coeff: v128): v128 {
  return i32x4.shr_s(i32x4.extmul_low_i16x8_u(v, coeff), 8);
}
@inline function mulHiHi(v: v128, coeff: v128): v128 {
  return i32x4.shr_s(i32x4.extmul_high_i16x8_u(v, coeff), 8);
}

// R, G and B of 8 pixels (i16 lanes of y, u, v) as i16 vectors clamped to 0..255, stored at to, to + 16,
// to + 32.
@inline function rgb8(y: v128, u: v128, v: v128, to: usize): void {
  const cy = i16x8.splat(19077);
  const yl = mulHiLo(y, cy);
  const yh = mulHiHi(y, cy);
  const crv = i16x8.splat(26149);
  const cgu = i16x8.splat(6419);
  const cgv = i16x8.splat(13320);
  const cbu = i16x8.splat(<i16>33050);
  const r0 = i32x4.shr_s(i32x4.add(i32x4.add(yl, mulHiLo(v, crv)), i32x4.splat(-14234)), 6);
  const r1 = i32x4.shr_s(i32x4.add(i32x4.add(yh, mulHiHi(v, crv)), i32x4.splat(-14234)), 6);
  const g0 = i32x4.shr_s(
    i32x4.add(i32x4.sub(i32x4.sub(yl, mulHiLo(u, cgu)), mulHiLo(v, cgv)), i32x4.splat(8708)),
    6,
  );
  const g1 = i32x4.shr_s(
    i32x4.add(i32x4.sub(i32x4.sub(yh, mulHiHi(u, cgu)), mulHiHi(v, cgv)), i32x4.splat(8708)),
    6,
  );
  const b0 = i32x4.shr_s(i32x4.add(i32x4.add(yl, mulHiLo(u, cbu)), i32x4.splat(-17685)), 6);
  const b1 = i32x4.shr_s(i32x4.add(i32x4.add(yh, mulHiHi(u, cbu)), i32x4.splat(-17685)), 6);
  v128.store(to, i16x8.narrow_i32x4_s(r0, r1));
  v128.store(to, i16x8.narrow_i32x4_s(g0, g1), 16);
  v128.store(to, i16x8.narrow_i32x4_s(b0, b1), 32);
}

// The upsampled chroma (U at 0, V at 32: 16 i16 each) and the RGB of 16 pixels (two rgb8 blocks at 64).
const WORK: usize = memory.data(160, 16);

/** The lines described by `lines` (see the file's comment) through the fancy upsampler into RGB. */
export function vp8UpsampleRows(lines: usize, rows: i32, out: usize, width: i32): void {
  const lastPair = (width - 1) >> 1;
  for (let r = 0; r < rows; r++, lines += 20, out += <usize>(3 * width)) {
    const y = <usize>load<u32>(lines);
    const nu = <usize>load<u32>(lines, 4);
    const nv = <usize>load<u32>(lines, 8);
    const fu = <usize>load<u32>(lines, 12);
    const fv = <usize>load<u32>(lines, 16);
    edge(y, nu, nv, fu, fv, out, 0, 0);
    let x = 1;
    // Chroma columns x .. x + 7: output pixels 2x - 1 .. 2x + 14.
    for (; x + 7 <= lastPair; x += 8) {
      const i = <usize>x;
      upsample8(nu + i, fu + i, WORK);
      upsample8(nv + i, fv + i, WORK + 32);
      const px = <usize>(2 * x - 1);
      const luma = v128.load(y + px);
      rgb8(i16x8.extend_low_i8x16_u(luma), v128.load(WORK), v128.load(WORK, 32), WORK + 64);
      rgb8(i16x8.extend_high_i8x16_u(luma), v128.load(WORK, 16), v128.load(WORK, 48), WORK + 112);
      const R = i8x16.narrow_i16x8_u(v128.load(WORK, 64), v128.load(WORK, 112));
      const G = i8x16.narrow_i16x8_u(v128.load(WORK, 80), v128.load(WORK, 128));
      const B = i8x16.narrow_i16x8_u(v128.load(WORK, 96), v128.load(WORK, 144));
      const o = out + 3 * px;
      const a0 = i8x16.shuffle(R, G, 0, 16, 0, 1, 17, 0, 2, 18, 0, 3, 19, 0, 4, 20, 0, 5);
      v128.store(o, i8x16.shuffle(a0, B, 0, 1, 16, 3, 4, 17, 6, 7, 18, 9, 10, 19, 12, 13, 20, 15));
      const a1 = i8x16.shuffle(R, G, 21, 0, 6, 22, 0, 7, 23, 0, 8, 24, 0, 9, 25, 0, 10, 26);
      v128.store(o, i8x16.shuffle(a1, B, 0, 21, 2, 3, 22, 5, 6, 23, 8, 9, 24, 11, 12, 25, 14, 15), 16);
      const a2 = i8x16.shuffle(R, G, 0, 11, 27, 0, 12, 28, 0, 13, 29, 0, 14, 30, 0, 15, 31, 0);
      v128.store(o, i8x16.shuffle(a2, B, 26, 1, 2, 27, 4, 5, 28, 7, 8, 29, 10, 11, 30, 13, 14, 31), 32);
    }
    for (; x <= lastPair; x++) pairScalar(y, nu, nv, fu, fv, out, x);
    if (!(width & 1)) edge(y, nu, nv, fu, fv, out, width - 1, lastPair);
  }
}
