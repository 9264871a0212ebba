// The horizontal pass of Pillow's two-pass resize (Resample.c ImagingResampleHorizontal_8bpc) on one RGB
// row: each output pixel is the fixed-point weighted sum of `count` input pixels from xmin, plus half,
// shifted down by 22 bits and clamped to 0..255 (clip8). core/preprocess/resize.ts horizontalRow is the
// same arithmetic; Pillow's accumulators are 32-bit ints, as here.
//
// bounds: [outWidth][2] i32 (xmin, count); weights: [outWidth][ksize] i32.

@lazy const PRECISION_BITS: i32 = 22;
@lazy const HALF: i32 = 1 << (PRECISION_BITS - 1);

@inline function clip8(ss: i32): u8 {
  const v = ss >> PRECISION_BITS;
  return <u8>(v < 0 ? 0 : v > 255 ? 255 : v);
}

/** Scalar twin of horizontalRow. */
export function horizontalRowScalar(
  src: usize, out: usize, outWidth: i32, bounds: usize, weights: usize, ksize: i32,
): void {
  for (let xx = 0; xx < outWidth; xx++) {
    const xmin = load<i32>(bounds + (<usize>xx << 3));
    const count = load<i32>(bounds + (<usize>xx << 3), 4);
    const k = weights + (<usize>(xx * ksize) << 2);
    let p = src + <usize>(xmin * 3);
    let ss0 = HALF;
    let ss1 = HALF;
    let ss2 = HALF;
    for (let x = 0; x < count; x++, p += 3) {
      const w = load<i32>(k + (<usize>x << 2));
      ss0 += <i32>load<u8>(p) * w;
      ss1 += <i32>load<u8>(p, 1) * w;
      ss2 += <i32>load<u8>(p, 2) * w;
    }
    const o = out + <usize>(xx * 3);
    store<u8>(o, clip8(ss0));
    store<u8>(o, clip8(ss1), 1);
    store<u8>(o, clip8(ss2), 2);
  }
}

/**
 * One row, an output pixel at a time with its three channels in i32 lanes (the fourth lane reads the next
 * pixel's red and is dropped); two taps per step. Writes 4 bytes per pixel, so out needs one byte of room
 * past the row, and src one byte past its last pixel.
 */
export function horizontalRow(
  src: usize, out: usize, outWidth: i32, bounds: usize, weights: usize, ksize: i32,
): void {
  for (let xx = 0; xx < outWidth; xx++) {
    const xmin = load<i32>(bounds + (<usize>xx << 3));
    const count = load<i32>(bounds + (<usize>xx << 3), 4);
    const k = weights + (<usize>(xx * ksize) << 2);
    let p = src + <usize>(xmin * 3);
    let acc0 = i32x4.splat(HALF);
    let acc1 = i32x4.splat(0);
    let x = 0;
    for (; x + 2 <= count; x += 2, p += 6) {
      // Pixels x and x + 1: bytes 0..2 and 3..5 of an 8-byte load, widened.
      const two = v128.load8x8_u(p);
      const a = i32x4.extend_low_i16x8_u(two);
      const b = i32x4.extend_low_i16x8_u(i16x8.shuffle(two, two, 3, 4, 5, 6, 0, 0, 0, 0));
      acc0 = i32x4.add(acc0, i32x4.mul(a, i32x4.splat(load<i32>(k + (<usize>x << 2)))));
      acc1 = i32x4.add(acc1, i32x4.mul(b, i32x4.splat(load<i32>(k + (<usize>x << 2), 4))));
    }
    if (x < count) {
      const a = i32x4.extend_low_i16x8_u(v128.load8x8_u(p));
      acc0 = i32x4.add(acc0, i32x4.mul(a, i32x4.splat(load<i32>(k + (<usize>x << 2)))));
    }
    const v = i32x4.shr_s(i32x4.add(acc0, acc1), PRECISION_BITS);
    const v16 = i16x8.narrow_i32x4_s(v, v);
    const px = i8x16.narrow_i16x8_u(v16, v16);
    v128.store32_lane(out + <usize>(xx * 3), px, 0);
  }
}

// The vertical pass (Resample.c ImagingResampleVertical_8bpc) on one output row: rows holds `count` input
// rows `rowBytes` apart, weights their `count` i32 weights; byte i of the output is the weighted sum of byte
// i of each row, plus half, through clip8. Also the horizontal pass of an image whose rows arrive as its
// columns (core/preprocess/stream.ts, EXIF orientations 5-8). core/preprocess/resize.ts verticalRow is the
// same arithmetic.

/** Scalar twin of verticalRow. */
export function verticalRowScalar(rows: usize, rowBytes: i32, count: i32, weights: usize, out: usize, length: i32): void {
  for (let i = 0; i < length; i++) {
    let ss = HALF;
    for (let y = 0; y < count; y++) {
      ss += <i32>load<u8>(rows + <usize>(y * rowBytes + i)) * load<i32>(weights + (<usize>y << 2));
    }
    store<u8>(out + <usize>i, clip8(ss));
  }
}

/**
 * 16 output bytes per step, each in an i32 lane; the last step reads and writes up to 15 bytes past
 * `length` (the rows and out need that room).
 */
export function verticalRow(rows: usize, rowBytes: i32, count: i32, weights: usize, out: usize, length: i32): void {
  for (let i = 0; i < length; i += 16) {
    let a0 = i32x4.splat(HALF);
    let a1 = a0;
    let a2 = a0;
    let a3 = a0;
    let p = rows + <usize>i;
    for (let y = 0; y < count; y++, p += <usize>rowBytes) {
      const k = i32x4.splat(load<i32>(weights + (<usize>y << 2)));
      const v = v128.load(p);
      const lo = i16x8.extend_low_i8x16_u(v);
      const hi = i16x8.extend_high_i8x16_u(v);
      a0 = i32x4.add(a0, i32x4.mul(i32x4.extend_low_i16x8_u(lo), k));
      a1 = i32x4.add(a1, i32x4.mul(i32x4.extend_high_i16x8_u(lo), k));
      a2 = i32x4.add(a2, i32x4.mul(i32x4.extend_low_i16x8_u(hi), k));
      a3 = i32x4.add(a3, i32x4.mul(i32x4.extend_high_i16x8_u(hi), k));
    }
    // >> 22, then the two saturating narrowings clamp to 0..255 as clip8 does.
    const lo16 = i16x8.narrow_i32x4_s(i32x4.shr_s(a0, PRECISION_BITS), i32x4.shr_s(a1, PRECISION_BITS));
    const hi16 = i16x8.narrow_i32x4_s(i32x4.shr_s(a2, PRECISION_BITS), i32x4.shr_s(a3, PRECISION_BITS));
    v128.store(out + <usize>i, i8x16.narrow_i16x8_u(lo16, hi16));
  }
}
