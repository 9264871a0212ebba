// Lossy WebP's loop filter over one macroblock row, as libwebp 1.2.4's dec.c (DoFilter with the simple or
// complex filter): core/image/webp/vp8.ts filterMb is the JavaScript twin, vp8FilterRowScalar the scalar one.
//
// `y` is the row's first luma row (16 rows `yStride` apart, the 4 above it readable), `u` and `v` its
// chroma rows (8 rows `uvStride` apart, 4 above readable); `info` holds 4 bytes per macroblock column:
// limit (0: not filtered), interior limit, high edge variance threshold, and whether inner edges are filtered.
//
// An edge's 16 lines go across it in the 16 lanes of a vector, one tap position per vector: p3 p2 p1 p0 on
// one side, q0 q1 q2 q3 on the other. Along a horizontal edge a tap is a row; along a vertical one the 16
// rows' 8 bytes around it are transposed into tap vectors and back. Chroma filters U in lanes 0-7 and V in
// lanes 8-15, as libwebp's SSE2 code does. The arithmetic runs in i16 halves, as the C code's ints.

// The tap vectors of the edge being filtered (p3 at 0 .. q3 at 112).
const TAPS: usize = memory.data(128, 16);

@inline function absDiff(a: v128, b: v128): v128 {
  return v128.or(i8x16.sub_sat_u(a, b), i8x16.sub_sat_u(b, a));
}

@inline function sclip1(v: v128): v128 {
  return i16x8.min_s(i16x8.max_s(v, i16x8.splat(-128)), i16x8.splat(127));
}

@inline function sclip2(v: v128): v128 {
  return i16x8.min_s(i16x8.max_s(v, i16x8.splat(-16)), i16x8.splat(15));
}

// 4 * |p0 - q0| + |p1 - q1| <= 2 * thresh + 1, per lane (libwebp's NeedsFilter).
@inline function needsFilter(p1: v128, p0: v128, q0: v128, q1: v128, thresh: i32): v128 {
  const d0 = absDiff(p0, q0);
  const d1 = absDiff(p1, q1);
  const t2 = i16x8.splat(<i16>(2 * thresh + 1));
  const lo = i16x8.add(i16x8.shl(i16x8.extend_low_i8x16_u(d0), 2), i16x8.extend_low_i8x16_u(d1));
  const hi = i16x8.add(i16x8.shl(i16x8.extend_high_i8x16_u(d0), 2), i16x8.extend_high_i8x16_u(d1));
  return i8x16.narrow_i16x8_s(i16x8.le_s(lo, t2), i16x8.le_s(hi, t2));
}

// DoFilter2's new p0 and q0 in one i16 half (which: 0 low, 1 high).
@inline function lo16(v: v128): v128 {
  return i16x8.extend_low_i8x16_u(v);
}
@inline function hi16(v: v128): v128 {
  return i16x8.extend_high_i8x16_u(v);
}

// The simple filter on the taps p1..q1.
function simpleTaps(thresh: i32): void {
  const p1 = v128.load(TAPS, 32);
  const p0 = v128.load(TAPS, 48);
  const q0 = v128.load(TAPS, 64);
  const q1 = v128.load(TAPS, 80);
  const mask = needsFilter(p1, p0, q0, q1, thresh);
  if (!v128.any_true(mask)) return;
  // a = 3 * (q0 - p0) + sclip1(p1 - q1); p0 += sclip2((a + 3) >> 3); q0 -= sclip2((a + 4) >> 3)
  const aLo = i16x8.add(i16x8.mul(i16x8.sub(lo16(q0), lo16(p0)), i16x8.splat(3)), sclip1(i16x8.sub(lo16(p1), lo16(q1))));
  const aHi = i16x8.add(i16x8.mul(i16x8.sub(hi16(q0), hi16(p0)), i16x8.splat(3)), sclip1(i16x8.sub(hi16(p1), hi16(q1))));
  const np0 = i8x16.narrow_i16x8_u(
    i16x8.add(lo16(p0), sclip2(i16x8.shr_s(i16x8.add(aLo, i16x8.splat(3)), 3))),
    i16x8.add(hi16(p0), sclip2(i16x8.shr_s(i16x8.add(aHi, i16x8.splat(3)), 3))),
  );
  const nq0 = i8x16.narrow_i16x8_u(
    i16x8.sub(lo16(q0), sclip2(i16x8.shr_s(i16x8.add(aLo, i16x8.splat(4)), 3))),
    i16x8.sub(hi16(q0), sclip2(i16x8.shr_s(i16x8.add(aHi, i16x8.splat(4)), 3))),
  );
  v128.store(TAPS, v128.bitselect(np0, p0, mask), 48);
  v128.store(TAPS, v128.bitselect(nq0, q0, mask), 64);
}

// One i16 half of the complex filter: the taps' new values where `filter` (all lanes' masks, -1 or 0),
// with DoFilter2 where `hev` and DoFilter6 (edge) or DoFilter4 (inner) elsewhere. Writes p2..q2 into
// out[0..6) as i16 vectors.
@inline function complexHalf(
  p2: v128, p1: v128, p0: v128, q0: v128, q1: v128, q2: v128,
  hev: v128, edge: bool, out: usize,
): void {
  const d = i16x8.mul(i16x8.sub(q0, p0), i16x8.splat(3));
  const s = sclip1(i16x8.sub(p1, q1));
  // DoFilter2 (hev) and DoFilter4 (inner without hev) differ only in the sclip1(p1 - q1) term.
  const a2 = edge ? i16x8.add(d, s) : i16x8.add(d, v128.and(s, hev));
  const f1 = sclip2(i16x8.shr_s(i16x8.add(a2, i16x8.splat(4)), 3));
  const f2 = sclip2(i16x8.shr_s(i16x8.add(a2, i16x8.splat(3)), 3));
  let np2 = p2;
  let np1: v128;
  let np0 = i16x8.add(p0, f2);
  let nq0 = i16x8.sub(q0, f1);
  let nq1: v128;
  let nq2 = q2;
  if (edge) {
    // DoFilter6 where not hev.
    const w = sclip1(i16x8.add(d, s));
    const w27 = i16x8.shr_s(i16x8.add(i16x8.mul(w, i16x8.splat(27)), i16x8.splat(63)), 7);
    const w18 = i16x8.shr_s(i16x8.add(i16x8.mul(w, i16x8.splat(18)), i16x8.splat(63)), 7);
    const w9 = i16x8.shr_s(i16x8.add(i16x8.mul(w, i16x8.splat(9)), i16x8.splat(63)), 7);
    np2 = v128.bitselect(p2, i16x8.add(p2, w9), hev);
    np1 = v128.bitselect(p1, i16x8.add(p1, w18), hev);
    np0 = v128.bitselect(np0, i16x8.add(p0, w27), hev);
    nq0 = v128.bitselect(nq0, i16x8.sub(q0, w27), hev);
    nq1 = v128.bitselect(q1, i16x8.sub(q1, w18), hev);
    nq2 = v128.bitselect(q2, i16x8.sub(q2, w9), hev);
  } else {
    // DoFilter4's outer taps where not hev.
    const f3 = i16x8.shr_s(i16x8.add(f1, i16x8.splat(1)), 1);
    np1 = v128.bitselect(p1, i16x8.add(p1, f3), hev);
    nq1 = v128.bitselect(q1, i16x8.sub(q1, f3), hev);
  }
  v128.store(out, np2);
  v128.store(out, np1, 16);
  v128.store(out, np0, 32);
  v128.store(out, nq0, 48);
  v128.store(out, nq1, 64);
  v128.store(out, nq2, 80);
}

// The halves' results before narrowing: 6 low then 6 high i16 vectors.
const HALVES: usize = memory.data(192, 16);

// The complex filter on the taps (FilterLoop26 for a macroblock edge, FilterLoop24 for an inner one).
function complexTaps(thresh: i32, ithresh: i32, hevThresh: i32, edge: bool): void {
  const p3 = v128.load(TAPS);
  const p2 = v128.load(TAPS, 16);
  const p1 = v128.load(TAPS, 32);
  const p0 = v128.load(TAPS, 48);
  const q0 = v128.load(TAPS, 64);
  const q1 = v128.load(TAPS, 80);
  const q2 = v128.load(TAPS, 96);
  const q3 = v128.load(TAPS, 112);
  const dp = absDiff(p1, p0);
  const dq = absDiff(q1, q0);
  let m = i8x16.max_u(absDiff(p3, p2), absDiff(p2, p1));
  m = i8x16.max_u(m, i8x16.max_u(dp, dq));
  m = i8x16.max_u(m, i8x16.max_u(absDiff(q3, q2), absDiff(q2, q1)));
  const mask = v128.and(i8x16.le_u(m, i8x16.splat(<u8>ithresh)), needsFilter(p1, p0, q0, q1, thresh));
  if (!v128.any_true(mask)) return;
  const hev = i8x16.gt_u(i8x16.max_u(dp, dq), i8x16.splat(<u8>hevThresh));
  complexHalf(lo16(p2), lo16(p1), lo16(p0), lo16(q0), lo16(q1), lo16(q2), i16x8.extend_low_i8x16_s(hev), edge, HALVES);
  complexHalf(hi16(p2), hi16(p1), hi16(p0), hi16(q0), hi16(q1), hi16(q2), i16x8.extend_high_i8x16_s(hev), edge, HALVES + 96);
  for (let k: usize = 0; k < 6; k++) {
    const at = TAPS + 16 + 16 * k;
    const n = i8x16.narrow_i16x8_u(v128.load(HALVES + 16 * k), v128.load(HALVES + 96 + 16 * k));
    v128.store(at, v128.bitselect(n, v128.load(at), mask));
  }
}

// The taps of a horizontal edge: rows above and below `a` (lanes 0-7) and `b` (lanes 8-15), or 16 bytes of
// `a` when b is 0.
@inline function loadRows(a: usize, b: usize, stride: usize): void {
  for (let k: usize = 0; k < 8; k++) {
    const off = k * stride - 4 * stride;
    const t = b == 0 ? v128.load(a + off) : v128.load64_lane(b + off, v128.load64_zero(a + off), 1);
    v128.store(TAPS + 16 * k, t);
  }
}
@inline function storeRows(a: usize, b: usize, stride: usize, from: usize, to: usize): void {
  for (let k = from; k < to; k++) {
    const off = k * stride - 4 * stride;
    const t = v128.load(TAPS + 16 * k);
    if (b == 0) v128.store(a + off, t);
    else {
      v128.store64_lane(a + off, t, 0);
      v128.store64_lane(b + off, t, 1);
    }
  }
}

// An 8x8 transpose of i16 elements, in place over 8 vectors at p (an involution).
@inline function transpose16(p: usize): void {
  const b0 = v128.load(p);
  const b1 = v128.load(p, 16);
  const b2 = v128.load(p, 32);
  const b3 = v128.load(p, 48);
  const b4 = v128.load(p, 64);
  const b5 = v128.load(p, 80);
  const b6 = v128.load(p, 96);
  const b7 = v128.load(p, 112);
  const c0 = i8x16.shuffle(b0, b1, 0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23);
  const c1 = i8x16.shuffle(b0, b1, 8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31);
  const c2 = i8x16.shuffle(b2, b3, 0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23);
  const c3 = i8x16.shuffle(b2, b3, 8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31);
  const c4 = i8x16.shuffle(b4, b5, 0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23);
  const c5 = i8x16.shuffle(b4, b5, 8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31);
  const c6 = i8x16.shuffle(b6, b7, 0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23);
  const c7 = i8x16.shuffle(b6, b7, 8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31);
  const d0 = i8x16.shuffle(c0, c2, 0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23);
  const d1 = i8x16.shuffle(c0, c2, 8, 9, 10, 11, 24, 25, 26, 27, 12, 13, 14, 15, 28, 29, 30, 31);
  const d2 = i8x16.shuffle(c1, c3, 0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23);
  const d3 = i8x16.shuffle(c1, c3, 8, 9, 10, 11, 24, 25, 26, 27, 12, 13, 14, 15, 28, 29, 30, 31);
  const d4 = i8x16.shuffle(c4, c6, 0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23);
  const d5 = i8x16.shuffle(c4, c6, 8, 9, 10, 11, 24, 25, 26, 27, 12, 13, 14, 15, 28, 29, 30, 31);
  const d6 = i8x16.shuffle(c5, c7, 0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23);
  const d7 = i8x16.shuffle(c5, c7, 8, 9, 10, 11, 24, 25, 26, 27, 12, 13, 14, 15, 28, 29, 30, 31);
  v128.store(p, i8x16.shuffle(d0, d4, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23));
  v128.store(p, i8x16.shuffle(d0, d4, 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31), 16);
  v128.store(p, i8x16.shuffle(d1, d5, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23), 32);
  v128.store(p, i8x16.shuffle(d1, d5, 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31), 48);
  v128.store(p, i8x16.shuffle(d2, d6, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23), 64);
  v128.store(p, i8x16.shuffle(d2, d6, 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31), 80);
  v128.store(p, i8x16.shuffle(d3, d7, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23), 96);
  v128.store(p, i8x16.shuffle(d3, d7, 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31), 112);
}

// The taps of a vertical edge at column `a` (rows 0-7 of it) and `b` (rows 8-15, a + 8 rows for luma):
// vector k first holds row k's 8 bytes from 4 left of the edge and row k + 8's, interleaved byte by byte,
// so that after the i16 transpose tap vector j holds column j of rows 0, 8, 1, 9, ... 7, 15.
@inline function loadColumns(a: usize, b: usize, stride: usize): void {
  for (let k: usize = 0; k < 8; k++) {
    const t = v128.load64_lane(b + k * stride - 4, v128.load64_zero(a + k * stride - 4), 1);
    v128.store(TAPS + 16 * k, i8x16.shuffle(t, t, 0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15));
  }
  transpose16(TAPS);
}
@inline function storeColumns(a: usize, b: usize, stride: usize): void {
  transpose16(TAPS);
  for (let k: usize = 0; k < 8; k++) {
    const v = v128.load(TAPS + 16 * k);
    const t = i8x16.shuffle(v, v, 0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
    v128.store64_lane(a + k * stride - 4, t, 0);
    v128.store64_lane(b + k * stride - 4, t, 1);
  }
}

@inline function simpleH(a: usize, stride: usize, thresh: i32): void {
  loadRows(a, 0, stride);
  simpleTaps(thresh);
  storeRows(a, 0, stride, 3, 5);
}
@inline function simpleV(a: usize, stride: usize, thresh: i32): void {
  loadColumns(a, a + 8 * stride, stride);
  simpleTaps(thresh);
  storeColumns(a, a + 8 * stride, stride);
}
@inline function complexH(a: usize, b: usize, stride: usize, t: i32, it: i32, hev: i32, edge: bool): void {
  loadRows(a, b, stride);
  complexTaps(t, it, hev, edge);
  storeRows(a, b, stride, 1, 7);
}
@inline function complexV(a: usize, b: usize, stride: usize, t: i32, it: i32, hev: i32, edge: bool): void {
  loadColumns(a, b, stride);
  complexTaps(t, it, hev, edge);
  storeColumns(a, b, stride);
}

/** The loop filter of a macroblock row (see the file's comment); `simple` picks the simple filter. */
export function vp8FilterRow(
  y: usize, yStride: i32, u: usize, v: usize, uvStride: i32,
  info: usize, mbW: i32, mbY: i32, simple: i32,
): void {
  const ys = <usize>yStride;
  const uvs = <usize>uvStride;
  for (let mbX = 0; mbX < mbW; mbX++) {
    const f = info + <usize>(4 * mbX);
    const limit = <i32>load<u8>(f);
    if (limit == 0) continue;
    const ilevel = <i32>load<u8>(f, 1);
    const hev = <i32>load<u8>(f, 2);
    const inner = load<u8>(f, 3) != 0;
    const y0 = y + <usize>(mbX * 16);
    if (simple) {
      // Horizontal filtering across the vertical edges first, then vertical filtering across rows.
      if (mbX > 0) simpleV(y0, ys, limit + 4);
      if (inner) for (let k: usize = 4; k < 16; k += 4) simpleV(y0 + k, ys, limit);
      if (mbY > 0) simpleH(y0, ys, limit + 4);
      if (inner) for (let k: usize = 4; k < 16; k += 4) simpleH(y0 + k * ys, ys, limit);
      continue;
    }
    const u0 = u + <usize>(mbX * 8);
    const v0 = v + <usize>(mbX * 8);
    if (mbX > 0) {
      complexV(y0, y0 + 8 * ys, ys, limit + 4, ilevel, hev, true);
      complexV(u0, v0, uvs, limit + 4, ilevel, hev, true);
    }
    if (inner) {
      for (let k: usize = 4; k < 16; k += 4) complexV(y0 + k, y0 + k + 8 * ys, ys, limit, ilevel, hev, false);
      complexV(u0 + 4, v0 + 4, uvs, limit, ilevel, hev, false);
    }
    if (mbY > 0) {
      complexH(y0, 0, ys, limit + 4, ilevel, hev, true);
      complexH(u0, v0, uvs, limit + 4, ilevel, hev, true);
    }
    if (inner) {
      for (let k: usize = 4; k < 16; k += 4) complexH(y0 + k * ys, 0, ys, limit, ilevel, hev, false);
      complexH(u0 + 4 * uvs, v0 + 4 * uvs, uvs, limit, ilevel, hev, false);
    }
  }
}

// The scalar twin, line by line as core/image/webp/vp8.ts.

@inline function clip8(v: i32): u8 {
  return <u8>(v < 0 ? 0 : v > 255 ? 255 : v);
}
@inline function sclip1s(v: i32): i32 {
  return v < -128 ? -128 : v > 127 ? 127 : v;
}
@inline function sclip2s(v: i32): i32 {
  return v < -16 ? -16 : v > 15 ? 15 : v;
}

@inline function filter2(p: usize, step: usize): void {
  const p1 = <i32>load<u8>(p - 2 * step);
  const p0 = <i32>load<u8>(p - step);
  const q0 = <i32>load<u8>(p);
  const q1 = <i32>load<u8>(p + step);
  const a = 3 * (q0 - p0) + sclip1s(p1 - q1);
  store<u8>(p - step, clip8(p0 + sclip2s((a + 3) >> 3)));
  store<u8>(p, clip8(q0 - sclip2s((a + 4) >> 3)));
}

function simpleScalar(p: usize, step: usize, along: usize, thresh: i32): void {
  const t2 = 2 * thresh + 1;
  for (let i = 0; i < 16; i++, p += along) {
    const p1 = <i32>load<u8>(p - 2 * step);
    const p0 = <i32>load<u8>(p - step);
    const q0 = <i32>load<u8>(p);
    const q1 = <i32>load<u8>(p + step);
    if (4 * abs(p0 - q0) + abs(p1 - q1) <= t2) filter2(p, step);
  }
}

function complexScalar(
  p: usize, step: usize, along: usize, size: i32, thresh: i32, ithresh: i32, hevThresh: i32, edge: bool,
): void {
  const t2 = 2 * thresh + 1;
  for (let i = 0; i < size; i++, p += along) {
    const p1 = <i32>load<u8>(p - 2 * step);
    const p0 = <i32>load<u8>(p - step);
    const q0 = <i32>load<u8>(p);
    const q1 = <i32>load<u8>(p + step);
    if (4 * abs(p0 - q0) + abs(p1 - q1) > t2) continue;
    const p3 = <i32>load<u8>(p - 4 * step);
    const p2 = <i32>load<u8>(p - 3 * step);
    const q2 = <i32>load<u8>(p + 2 * step);
    const q3 = <i32>load<u8>(p + 3 * step);
    if (
      abs(p3 - p2) > ithresh || abs(p2 - p1) > ithresh || abs(p1 - p0) > ithresh ||
      abs(q3 - q2) > ithresh || abs(q2 - q1) > ithresh || abs(q1 - q0) > ithresh
    ) continue;
    if (abs(p1 - p0) > hevThresh || abs(q1 - q0) > hevThresh) {
      filter2(p, step);
    } else if (edge) {
      const a = sclip1s(3 * (q0 - p0) + sclip1s(p1 - q1));
      const a1 = (27 * a + 63) >> 7;
      const a2 = (18 * a + 63) >> 7;
      const a3 = (9 * a + 63) >> 7;
      store<u8>(p - 3 * step, clip8(p2 + a3));
      store<u8>(p - 2 * step, clip8(p1 + a2));
      store<u8>(p - step, clip8(p0 + a1));
      store<u8>(p, clip8(q0 - a1));
      store<u8>(p + step, clip8(q1 - a2));
      store<u8>(p + 2 * step, clip8(q2 - a3));
    } else {
      const a = 3 * (q0 - p0);
      const a1 = sclip2s((a + 4) >> 3);
      const a2 = sclip2s((a + 3) >> 3);
      const a3 = (a1 + 1) >> 1;
      store<u8>(p - 2 * step, clip8(p1 + a3));
      store<u8>(p - step, clip8(p0 + a2));
      store<u8>(p, clip8(q0 - a1));
      store<u8>(p + step, clip8(q1 - a3));
    }
  }
}

/** Scalar twin of vp8FilterRow. */
export function vp8FilterRowScalar(
  y: usize, yStride: i32, u: usize, v: usize, uvStride: i32,
  info: usize, mbW: i32, mbY: i32, simple: i32,
): void {
  const ys = <usize>yStride;
  const uvs = <usize>uvStride;
  for (let mbX = 0; mbX < mbW; mbX++) {
    const f = info + <usize>(4 * mbX);
    const limit = <i32>load<u8>(f);
    if (limit == 0) continue;
    const ilevel = <i32>load<u8>(f, 1);
    const hev = <i32>load<u8>(f, 2);
    const inner = load<u8>(f, 3) != 0;
    const y0 = y + <usize>(mbX * 16);
    if (simple) {
      if (mbX > 0) simpleScalar(y0, 1, ys, limit + 4);
      if (inner) for (let k: usize = 4; k < 16; k += 4) simpleScalar(y0 + k, 1, ys, limit);
      if (mbY > 0) simpleScalar(y0, ys, 1, limit + 4);
      if (inner) for (let k: usize = 4; k < 16; k += 4) simpleScalar(y0 + k * ys, ys, 1, limit);
      continue;
    }
    const u0 = u + <usize>(mbX * 8);
    const v0 = v + <usize>(mbX * 8);
    if (mbX > 0) {
      complexScalar(y0, 1, ys, 16, limit + 4, ilevel, hev, true);
      complexScalar(u0, 1, uvs, 8, limit + 4, ilevel, hev, true);
      complexScalar(v0, 1, uvs, 8, limit + 4, ilevel, hev, true);
    }
    if (inner) {
      for (let k: usize = 4; k < 16; k += 4) complexScalar(y0 + k, 1, ys, 16, limit, ilevel, hev, false);
      complexScalar(u0 + 4, 1, uvs, 8, limit, ilevel, hev, false);
      complexScalar(v0 + 4, 1, uvs, 8, limit, ilevel, hev, false);
    }
    if (mbY > 0) {
      complexScalar(y0, ys, 1, 16, limit + 4, ilevel, hev, true);
      complexScalar(u0, uvs, 1, 8, limit + 4, ilevel, hev, true);
      complexScalar(v0, uvs, 1, 8, limit + 4, ilevel, hev, true);
    }
    if (inner) {
      for (let k: usize = 4; k < 16; k += 4) complexScalar(y0 + k * ys, ys, 1, 16, limit, ilevel, hev, false);
      complexScalar(u0 + 4 * uvs, uvs, 1, 8, limit, ilevel, hev, false);
      complexScalar(v0 + 4 * uvs, uvs, 1, 8, limit, ilevel, hev, false);
    }
  }
}
