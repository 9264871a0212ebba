// libjpeg-turbo's default path for 4:2:0 photos in one pass: h2v2 "fancy" chroma upsampling (jdsample.c:
// vertical sums 3 * near + far, then the horizontal triangle with biases 8 and 7) and the YCbCr -> RGB
// conversion with libjpeg's 16-bit fixed-point constants (jdcolor.c build_ycc_rgb_table), clamped to
// 0..255. The same arithmetic as core/image/jpeg/color.ts h2v2YccRow; the scalar twin is the reference.
//
// Rows are pointers into memory: y (width samples), the chroma rows near and far (chromaWidth samples each,
// far being the row above for even output rows, below for odd ones), out (width * 3 bytes, RGB).

@lazy const CR_R: i32 = 91881; // round(1.402 * 2^16)
@lazy const CB_B: i32 = 116130; // round(1.772 * 2^16)
@lazy const CR_G: i32 = -46802; // -round(0.71414 * 2^16)
@lazy const CB_G: i32 = -22554; // -round(0.34414 * 2^16)
@lazy const HALF: i32 = 32768;

// 3 * near + far of chroma column x.
@inline function sum(near: usize, far: usize, x: i32): i32 {
  return <i32>load<u8>(near + x) * 3 + <i32>load<u8>(far + x);
}

@inline function clamp(v: i32): u8 {
  return <u8>(v < 0 ? 0 : v > 255 ? 255 : v);
}

// One RGB pixel from luma l and upsampled chroma b, r (0..255).
@inline function pixel(out: usize, l: i32, b: i32, r: i32): void {
  const cb = b - 128;
  const cr = r - 128;
  store<u8>(out, clamp(l + ((CR_R * cr + HALF) >> 16)));
  store<u8>(out, clamp(l + ((CB_G * cb + HALF + CR_G * cr) >> 16)), 1);
  store<u8>(out, clamp(l + ((CB_B * cb + HALF) >> 16)), 2);
}

// Output pixels 2x and 2x + 1 (when below width) of chroma column x; the neighbours past either end repeat
// the edge column, as libjpeg's edge cases compute.
@inline function column(
  y: usize, cbNear: usize, cbFar: usize, crNear: usize, crFar: usize,
  chromaWidth: i32, out: usize, width: i32, x: i32,
): void {
  const left = x > 0 ? x - 1 : 0;
  const right = x < chromaWidth - 1 ? x + 1 : x;
  const cbThis = sum(cbNear, cbFar, x);
  const crThis = sum(crNear, crFar, x);
  const px = 2 * x;
  pixel(
    out + <usize>(3 * px),
    load<u8>(y + px),
    (cbThis * 3 + sum(cbNear, cbFar, left) + 8) >> 4,
    (crThis * 3 + sum(crNear, crFar, left) + 8) >> 4,
  );
  if (px + 1 >= width) return;
  pixel(
    out + <usize>(3 * px + 3),
    load<u8>(y + px + 1),
    (cbThis * 3 + sum(cbNear, cbFar, right) + 7) >> 4,
    (crThis * 3 + sum(crNear, crFar, right) + 7) >> 4,
  );
}

/** Scalar twin of h2v2YccRow: one chroma column (two output pixels) at a time. */
export function h2v2YccRowScalar(
  y: usize, cbNear: usize, cbFar: usize, crNear: usize, crFar: usize,
  chromaWidth: i32, out: usize, width: i32,
): void {
  for (let x = 0; x < chromaWidth; x++) column(y, cbNear, cbFar, crNear, crFar, chromaWidth, out, width, x);
}

// 3 * near + far of the 8 chroma columns from x (i16 lanes).
@inline function sums8(near: usize, far: usize, x: usize): v128 {
  return i16x8.add(i16x8.mul(v128.load8x8_u(near + x), i16x8.splat(3)), v128.load8x8_u(far + x));
}

// The triangle filter for 8 chroma columns from x: 3 * this + neighbour + bias, >> 4 (i16 lanes, 0..255);
// `side` is -1 for the even output pixels (left neighbour, bias 8), +1 for the odd ones (right, bias 7).
@inline function triangle(near: usize, far: usize, x: usize, side: i32): v128 {
  const here = i16x8.mul(sums8(near, far, x), i16x8.splat(3));
  const bias = i16x8.splat(side < 0 ? 8 : 7);
  return i16x8.shr_u(i16x8.add(i16x8.add(here, sums8(near, far, x + side)), bias), 4);
}

// (c * k + bias) >> 16 for 8 chroma values (i16 lanes, centred), narrowed back to i16.
@inline function term(c: v128, k: i32, bias: i32): v128 {
  const kk = i32x4.splat(k);
  const b = i32x4.splat(bias);
  const lo = i32x4.shr_s(i32x4.add(i32x4.mul(i32x4.extend_low_i16x8_s(c), kk), b), 16);
  const hi = i32x4.shr_s(i32x4.add(i32x4.mul(i32x4.extend_high_i16x8_s(c), kk), b), 16);
  return i16x8.narrow_i32x4_s(lo, hi);
}

// The green term, (cb * CB_G + 32768 + cr * CR_G) >> 16, for 8 pixels.
@inline function greenTerm(cb: v128, cr: v128): v128 {
  const kb = i32x4.splat(CB_G);
  const kr = i32x4.splat(CR_G);
  const half = i32x4.splat(HALF);
  const lo = i32x4.add(
    i32x4.add(i32x4.mul(i32x4.extend_low_i16x8_s(cb), kb), half),
    i32x4.mul(i32x4.extend_low_i16x8_s(cr), kr),
  );
  const hi = i32x4.add(
    i32x4.add(i32x4.mul(i32x4.extend_high_i16x8_s(cb), kb), half),
    i32x4.mul(i32x4.extend_high_i16x8_s(cr), kr),
  );
  return i16x8.narrow_i32x4_s(i32x4.shr_s(lo, 16), i32x4.shr_s(hi, 16));
}

/**
 * One output row: 16 pixels (8 chroma columns) per step in i16/i32 lanes; the first column and the last
 * ones through the scalar path. Luma plus each chroma term saturates to 0..255 in the u8 narrowing, which
 * is the clamp.
 */
export function h2v2YccRow(
  y: usize, cbNear: usize, cbFar: usize, crNear: usize, crFar: usize,
  chromaWidth: i32, out: usize, width: i32,
): void {
  if (chromaWidth < 2) {
    h2v2YccRowScalar(y, cbNear, cbFar, crNear, crFar, chromaWidth, out, width);
    return;
  }
  column(y, cbNear, cbFar, crNear, crFar, chromaWidth, out, width, 0);
  const center = i16x8.splat(128);
  let x = 1;
  // Column x + 7's right neighbour x + 8 must be a real column (the last one repeats itself).
  for (; x + 8 <= chromaWidth - 1; x += 8) {
    const ux = <usize>x;
    const cbEven = triangle(cbNear, cbFar, ux, -1);
    const cbOdd = triangle(cbNear, cbFar, ux, 1);
    const crEven = triangle(crNear, crFar, ux, -1);
    const crOdd = triangle(crNear, crFar, ux, 1);
    // Pixels 0..7 and 8..15 of the 16, chroma centred on 0.
    const cb0 = i16x8.sub(i16x8.shuffle(cbEven, cbOdd, 0, 8, 1, 9, 2, 10, 3, 11), center);
    const cb1 = i16x8.sub(i16x8.shuffle(cbEven, cbOdd, 4, 12, 5, 13, 6, 14, 7, 15), center);
    const cr0 = i16x8.sub(i16x8.shuffle(crEven, crOdd, 0, 8, 1, 9, 2, 10, 3, 11), center);
    const cr1 = i16x8.sub(i16x8.shuffle(crEven, crOdd, 4, 12, 5, 13, 6, 14, 7, 15), center);
    const px = <usize>(2 * x);
    const l0 = v128.load8x8_u(y + px);
    const l1 = v128.load8x8_u(y + px + 8);
    const r = i8x16.narrow_i16x8_u(i16x8.add(l0, term(cr0, CR_R, HALF)), i16x8.add(l1, term(cr1, CR_R, HALF)));
    const g = i8x16.narrow_i16x8_u(i16x8.add(l0, greenTerm(cb0, cr0)), i16x8.add(l1, greenTerm(cb1, cr1)));
    const b = i8x16.narrow_i16x8_u(i16x8.add(l0, term(cb0, CB_B, HALF)), i16x8.add(l1, term(cb1, CB_B, HALF)));
    // Interleave R, G, B into 48 bytes.
    const rgLo = i8x16.shuffle(r, g, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const rgHi = i8x16.shuffle(r, g, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    const o = out + 3 * px;
    v128.store(o, i8x16.shuffle(rgLo, b, 0, 1, 16, 2, 3, 17, 4, 5, 18, 6, 7, 19, 8, 9, 20, 10));
    const mid = i8x16.shuffle(rgLo, rgHi, 11, 0, 12, 13, 0, 14, 15, 0, 16, 17, 0, 18, 19, 0, 20, 21);
    v128.store(o, i8x16.shuffle(mid, b, 0, 21, 2, 3, 22, 5, 6, 23, 8, 9, 24, 11, 12, 25, 14, 15), 16);
    v128.store(o, i8x16.shuffle(rgHi, b, 26, 6, 7, 27, 8, 9, 28, 10, 11, 29, 12, 13, 30, 14, 15, 31), 32);
  }
  for (; x < chromaWidth; x++) column(y, cbNear, cbFar, crNear, crFar, chromaWidth, out, width, x);
}

// YCbCr -> RGB without upsampling (chroma at full resolution: a 4:4:4 file, or 4:2:0 decoded at 1/2 and
// below, where the chroma IDCT is scaled up instead): core/image/jpeg/color.ts yccToRgb on `rows` rows.
// y, cb, cr each hold `rows` rows `yStride` / `cStride` bytes apart (cb and cr alike), out width * 3 bytes
// per row, packed.

/** Scalar twin of yccRows. */
export function yccRowsScalar(
  y: usize, yStride: i32, cb: usize, cr: usize, cStride: i32, out: usize, width: i32, rows: i32,
): void {
  for (let r = 0; r < rows; r++) {
    const yr = y + <usize>(r * yStride);
    const cbr = cb + <usize>(r * cStride);
    const crr = cr + <usize>(r * cStride);
    const o = out + <usize>(r * width * 3);
    for (let x = 0; x < width; x++) {
      pixel(o + <usize>(3 * x), load<u8>(yr + x), load<u8>(cbr + x), load<u8>(crr + x));
    }
  }
}

/** 16 pixels per step in i16/i32 lanes, the last few of a row through the scalar path. */
export function yccRows(
  y: usize, yStride: i32, cb: usize, cr: usize, cStride: i32, out: usize, width: i32, rows: i32,
): void {
  const center = i16x8.splat(128);
  for (let r = 0; r < rows; r++) {
    const yr = y + <usize>(r * yStride);
    const cbr = cb + <usize>(r * cStride);
    const crr = cr + <usize>(r * cStride);
    const or = out + <usize>(r * width * 3);
    let x = 0;
    for (; x + 16 <= width; x += 16) {
      const ux = <usize>x;
      const cb0 = i16x8.sub(v128.load8x8_u(cbr + ux), center);
      const cb1 = i16x8.sub(v128.load8x8_u(cbr + ux + 8), center);
      const cr0 = i16x8.sub(v128.load8x8_u(crr + ux), center);
      const cr1 = i16x8.sub(v128.load8x8_u(crr + ux + 8), center);
      const l0 = v128.load8x8_u(yr + ux);
      const l1 = v128.load8x8_u(yr + ux + 8);
      const red = i8x16.narrow_i16x8_u(i16x8.add(l0, term(cr0, CR_R, HALF)), i16x8.add(l1, term(cr1, CR_R, HALF)));
      const g = i8x16.narrow_i16x8_u(i16x8.add(l0, greenTerm(cb0, cr0)), i16x8.add(l1, greenTerm(cb1, cr1)));
      const b = i8x16.narrow_i16x8_u(i16x8.add(l0, term(cb0, CB_B, HALF)), i16x8.add(l1, term(cb1, CB_B, HALF)));
      const rgLo = i8x16.shuffle(red, g, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
      const rgHi = i8x16.shuffle(red, g, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
      const o = or + 3 * ux;
      v128.store(o, i8x16.shuffle(rgLo, b, 0, 1, 16, 2, 3, 17, 4, 5, 18, 6, 7, 19, 8, 9, 20, 10));
      const mid = i8x16.shuffle(rgLo, rgHi, 11, 0, 12, 13, 0, 14, 15, 0, 16, 17, 0, 18, 19, 0, 20, 21);
      v128.store(o, i8x16.shuffle(mid, b, 0, 21, 2, 3, 22, 5, 6, 23, 8, 9, 24, 11, 12, 25, 14, 15), 16);
      v128.store(o, i8x16.shuffle(rgHi, b, 26, 6, 7, 27, 8, 9, 28, 10, 11, 29, 12, 13, 30, 14, 15, 31), 32);
    }
    for (; x < width; x++) pixel(or + <usize>(3 * x), load<u8>(yr + x), load<u8>(cbr + x), load<u8>(crr + x));
  }
}
