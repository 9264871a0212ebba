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
