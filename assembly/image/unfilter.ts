// PNG's row filters undone in place (core/image/png/index.ts unfilter is the JavaScript twin): `row` holds
// a row's `n` filtered bytes, `prev` the previous unfiltered row of the same pass (zeros for the first),
// `bpp` the bytes per complete pixel (at least 1). Both have 16 bytes of slack after them.
//
// Sub, Average and Paeth depend on the pixel to the left, so the SIMD version goes a pixel at a time with
// its bytes in i16 lanes (as libpng's SSE2 filters do) for 3 and 4 bytes per pixel, whose fourth lane
// (3 bytes per pixel) carries the next pixel's byte through unchanged; Up is sixteen bytes at a time.

@lazy const NONE: i32 = 0;
@lazy const SUB: i32 = 1;
@lazy const UP: i32 = 2;
@lazy const AVERAGE: i32 = 3;
@lazy const PAETH: i32 = 4;

/** Scalar twin of unfilterRow. */
export function unfilterRowScalar(type: i32, row: usize, prev: usize, bpp: i32, n: i32): void {
  const start = <usize>bpp;
  const end = <usize>n;
  if (type == SUB) {
    for (let i = start; i < end; i++) store<u8>(row + i, load<u8>(row + i) + load<u8>(row + i - start));
  } else if (type == UP) {
    for (let i: usize = 0; i < end; i++) store<u8>(row + i, load<u8>(row + i) + load<u8>(prev + i));
  } else if (type == AVERAGE) {
    for (let i: usize = 0; i < start && i < end; i++) {
      store<u8>(row + i, load<u8>(row + i) + (load<u8>(prev + i) >> 1));
    }
    for (let i = start; i < end; i++) {
      const avg = (<u32>load<u8>(row + i - start) + <u32>load<u8>(prev + i)) >> 1;
      store<u8>(row + i, load<u8>(row + i) + <u8>avg);
    }
  } else if (type == PAETH) {
    for (let i: usize = 0; i < start && i < end; i++) store<u8>(row + i, load<u8>(row + i) + load<u8>(prev + i));
    for (let i = start; i < end; i++) {
      const a = <i32>load<u8>(row + i - start);
      const b = <i32>load<u8>(prev + i);
      const c = <i32>load<u8>(prev + i - start);
      const pa = abs<i32>(b - c);
      const pb = abs<i32>(a - c);
      const pc = abs<i32>(a + b - c - c);
      const p = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      store<u8>(row + i, load<u8>(row + i) + <u8>p);
    }
  }
}

/** Undoes filter `type` on row[0, n) in place (see the file's comment). */
export function unfilterRow(type: i32, row: usize, prev: usize, bpp: i32, n: i32): void {
  if (type == NONE) return;
  if (type == UP) {
    let i = 0;
    for (; i + 16 <= n; i += 16) {
      const at = <usize>i;
      v128.store(row + at, i8x16.add(v128.load(row + at), v128.load(prev + at)));
    }
    for (; i < n; i++) store<u8>(row + <usize>i, load<u8>(row + <usize>i) + load<u8>(prev + <usize>i));
    return;
  }
  if (bpp != 3 && bpp != 4) {
    unfilterRowScalar(type, row, prev, bpp, n);
    return;
  }
  // The predictor's fourth byte is zero for 3 bytes per pixel: the next pixel's byte stays as it is.
  const keep = bpp == 3 ? i32x4(0x00ffffff, 0, 0, 0) : i32x4(-1, 0, 0, 0);
  const step = <usize>bpp;
  const end = <usize>n;
  let a = i16x8.splat(0); // the pixel to the left, unfiltered (zero before the first)
  let c = i16x8.splat(0); // the one above it
  if (type == SUB) {
    let left = i16x8.splat(0);
    for (let i: usize = 0; i < end; i += step) {
      const x = v128.load32_zero(row + i);
      left = i8x16.add(x, v128.and(left, keep));
      v128.store32_lane(row + i, left, 0);
    }
    return;
  }
  for (let i: usize = 0; i < end; i += step) {
    const b = i16x8.extend_low_i8x16_u(v128.load32_zero(prev + i));
    let p: v128;
    if (type == AVERAGE) {
      p = i16x8.shr_u(i16x8.add(a, b), 1);
    } else {
      // |p - a| = |b - c|, |p - b| = |a - c|, |p - c| = |a + b - 2c|
      const bc = i16x8.sub(b, c);
      const ac = i16x8.sub(a, c);
      const pa = i16x8.abs(bc);
      const pb = i16x8.abs(ac);
      const pc = i16x8.abs(i16x8.add(bc, ac));
      const takeA = v128.and(i16x8.le_s(pa, pb), i16x8.le_s(pa, pc));
      const bOrC = v128.bitselect(b, c, i16x8.le_s(pb, pc));
      p = v128.bitselect(a, bOrC, takeA);
    }
    const x = v128.load32_zero(row + i);
    const out = i8x16.add(x, v128.and(i8x16.narrow_i16x8_u(p, p), keep));
    v128.store32_lane(row + i, out, 0);
    a = i16x8.extend_low_i8x16_u(v128.and(out, keep));
    c = b;
  }
}
