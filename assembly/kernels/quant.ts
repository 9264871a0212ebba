// Quantizers for the two GEMM operands (scheme "w7a8", docs/ARCHITECTURE.md).
//
// A side (activations, per row, asymmetric int8):
//   lo = min(0, min x), hi = max(0, max x), s = (hi - lo) / 255 (1 if 0), z = nearest(-128 - lo / s),
//   q = clamp(nearest(x / s) + z, -128, 127); the row is padded with 0 to K16 and the rows to a multiple of
//   GEMM_ROWS with zero rows (s = z = sum = 0).
// B side at run time (attention's K and V^T, per row of B, symmetric 7-bit):
//   s = max|x| / 63, q = clamp(round(x / s), -63, 63) with ties away from zero, stored q + 64 in the
//   packed B layout; padding stores 64.
import { k16, n4, rowsPadded } from "./gemm";

/** 1.5 * 2^23: x + ROUNDER holds nearest(x) (ties to even) in its low mantissa bits for |x| < 2^22. */
@lazy const ROUNDER: f32 = 12582912;
@lazy const ROUNDER_BITS: i32 = 0x4b400000;

@inline function quantizeValue(x: f32, s: f32, z: i32): i32 {
  return min(127, max(-128, <i32>nearest<f32>(x / s) + z));
}

/** Zero rows M .. rowsPadded(M) of a quantized A buffer and their parameters. */
export function zeroPaddingRows(M: i32, kBytes: i32, q: usize, sa: usize, za: usize, asum: usize): void {
  for (let m = M; m < rowsPadded(M); m++) {
    memory.fill(q + <usize>m * kBytes, 0, kBytes);
    store<f32>(sa + (<usize>m << 2), 0);
    store<i32>(za + (<usize>m << 2), 0);
    store<i32>(asum + (<usize>m << 2), 0);
  }
}

/** Scale and zero point of a row from its range; returns s, writes z. */
@inline function rowParams(lo: f32, hi: f32, m: i32, sa: usize, za: usize): f32 {
  let s = (hi - lo) / 255;
  if (s == 0) s = 1;
  store<f32>(sa + (<usize>m << 2), s);
  store<i32>(za + (<usize>m << 2), <i32>nearest<f32>(-128 - lo / s));
  return s;
}

/**
 * Quantize rows of x (f32 [M][K], row stride ldx floats) into q (i8 [M padded][K16]) with per-row scale sa
 * (f32), zero point za (i32) and row sum asum (i32, sum of q over the K real columns).
 */
export function quantizeRows(x: usize, ldx: i32, M: i32, K: i32, q: usize, sa: usize, za: usize, asum: usize): void {
  const kBytes = k16(K);
  for (let m = 0; m < M; m++) {
    const row = x + ((<usize>m * ldx) << 2);
    const range = rowRange(row, K);
    quantizeRow(row, K, q + <usize>m * kBytes, m, f32x4.extract_lane(range, 0), f32x4.extract_lane(range, 1), sa, za,
      asum);
  }
  zeroPaddingRows(M, kBytes, q, sa, za, asum);
}

/** [lo, hi, -, -]: lo = min(0, min x), hi = max(0, max x) over row[0..K); a NaN anywhere makes both NaN. */
@inline export function rowRange(row: usize, K: i32): v128 {
  const K4 = K & ~3;
  // pmin / pmax are one instruction each in V8 (min / max are seven, for their NaN and signed-zero
  // rules); NaN lanes are tracked apart so that a NaN still gives lo = hi = NaN as min / max would.
  // Signed zeros may differ from min / max, which changes neither s nor z.
  let lo4 = f32x4.splat(0), hi4 = f32x4.splat(0), nan4 = i32x4.splat(0);
  for (let k = 0; k < K4; k += 4) {
    const v = v128.load(row + (<usize>k << 2));
    lo4 = f32x4.pmin(lo4, v);
    hi4 = f32x4.pmax(hi4, v);
    nan4 = v128.or(nan4, f32x4.ne(v, v));
  }
  if (v128.any_true(nan4)) {
    lo4 = f32x4.splat(NaN);
    hi4 = lo4;
  }
  let lo = min(min(f32x4.extract_lane(lo4, 0), f32x4.extract_lane(lo4, 1)), min(f32x4.extract_lane(lo4, 2), f32x4.extract_lane(lo4, 3)));
  let hi = max(max(f32x4.extract_lane(hi4, 0), f32x4.extract_lane(hi4, 1)), max(f32x4.extract_lane(hi4, 2), f32x4.extract_lane(hi4, 3)));
  for (let k = K4; k < K; k++) {
    const v = load<f32>(row + (<usize>k << 2));
    lo = min(lo, v);
    hi = max(hi, v);
  }
  return f32x4.replace_lane(f32x4.splat(lo), 1, hi);
}

/**
 * Row m of quantizeRows given the row's range lo..hi: writes sa[m], za[m], the K16 bytes at `out` (zero
 * padded) and asum[m].
 */
@inline export function quantizeRow(
  row: usize, K: i32, out: usize, m: i32, lo: f32, hi: f32, sa: usize, za: usize, asum: usize,
): void {
  const kBytes = k16(K);
  const K16 = K & ~15;
  const s = rowParams(lo, hi, m, sa, za);
  const z = load<i32>(za + (<usize>m << 2));
  const s4 = f32x4.splat(s), rounder = f32x4.splat(ROUNDER), zBits = i32x4.splat(z - ROUNDER_BITS);
  let sum4 = i32x4.splat(0);
  for (let k = 0; k < K16; k += 16) {
    const p = row + (<usize>k << 2);
    // nearest(x / s) + z in i32 (|x / s| <= 255, so the rounder is exact), then two saturating narrows:
    // the clamp to [-128, 127].
    const q0 = i32x4.add(f32x4.add(f32x4.div(v128.load(p), s4), rounder), zBits);
    const q1 = i32x4.add(f32x4.add(f32x4.div(v128.load(p, 16), s4), rounder), zBits);
    const q2 = i32x4.add(f32x4.add(f32x4.div(v128.load(p, 32), s4), rounder), zBits);
    const q3 = i32x4.add(f32x4.add(f32x4.div(v128.load(p, 48), s4), rounder), zBits);
    const q8 = i8x16.narrow_i16x8_s(i16x8.narrow_i32x4_s(q0, q1), i16x8.narrow_i32x4_s(q2, q3));
    v128.store(out + k, q8);
    sum4 = i32x4.add(sum4, i32x4.extadd_pairwise_i16x8_s(i16x8.extadd_pairwise_i8x16_s(q8)));
  }
  let sum = i32x4.extract_lane(sum4, 0) + i32x4.extract_lane(sum4, 1) + i32x4.extract_lane(sum4, 2) + i32x4.extract_lane(sum4, 3);
  for (let k = K16; k < K; k++) {
    const v = quantizeValue(load<f32>(row + (<usize>k << 2)), s, z);
    store<i8>(out + k, v);
    sum += v;
  }
  memory.fill(out + K, 0, kBytes - K);
  store<i32>(asum + (<usize>m << 2), sum);
}

/** Scalar twin of quantizeRows. */
export function quantizeRowsScalar(x: usize, ldx: i32, M: i32, K: i32, q: usize, sa: usize, za: usize, asum: usize): void {
  const kBytes = k16(K);
  for (let m = 0; m < M; m++) {
    const row = x + ((<usize>m * ldx) << 2);
    const out = q + <usize>m * kBytes;
    let lo: f32 = 0, hi: f32 = 0;
    for (let k = 0; k < K; k++) {
      const v = load<f32>(row + (<usize>k << 2));
      lo = min(lo, v);
      hi = max(hi, v);
    }
    const s = rowParams(lo, hi, m, sa, za);
    const z = load<i32>(za + (<usize>m << 2));
    let sum = 0;
    for (let k = 0; k < kBytes; k++) {
      const v = k < K ? quantizeValue(load<f32>(row + (<usize>k << 2)), s, z) : 0;
      store<i8>(out + k, v);
      sum += v;
    }
    store<i32>(asum + (<usize>m << 2), sum);
  }
  zeroPaddingRows(M, kBytes, q, sa, za, asum);
}

/** round(r) with ties away from zero, exact for every f32 (r - trunc(r) is exact). */
@inline function roundHalfAway(r: f32): f32 {
  const t = trunc<f32>(r);
  return abs<f32>(r - t) >= 0.5 ? t + copysign<f32>(1, r) : t;
}

/** Stored byte of B value x with row scale s (s > 0). */
@inline function quantizeB(x: f32, s: f32): i32 {
  return <i32>min<f32>(63, max<f32>(-63, roundHalfAway(x / s)));
}

/** Quantize row n of B (zeros when n >= N) into its place in the packed layout; writes sb[n] and bsum[n]. */
function packRowScalar(x: usize, strideN: i32, strideK: i32, n: i32, N: i32, K: i32, out: usize, sb: usize, bsum: usize): void {
  const kBytes = k16(K);
  let s: f32 = 0;
  let sum = 0;
  if (n < N) {
    let maxAbs: f32 = 0;
    for (let k = 0; k < K; k++) maxAbs = max(maxAbs, abs<f32>(load<f32>(x + ((<usize>n * strideN + <usize>k * strideK) << 2))));
    s = maxAbs / 63;
    if (s > 0) {
      const rowBase = out + ((<usize>(n >> 2) * (kBytes >> 4) * 4 + (n & 3)) << 4);
      for (let k = 0; k < K; k++) {
        const q = quantizeB(load<f32>(x + ((<usize>n * strideN + <usize>k * strideK) << 2)), s);
        store<u8>(rowBase + ((<usize>k >> 4) << 6) + (k & 15), q + 64);
        sum += q;
      }
    }
  }
  store<f32>(sb + (<usize>n << 2), s);
  store<i32>(bsum + (<usize>n << 2), sum);
}

/**
 * Quantize and pack B at run time: element (n, k) of B is x[n * strideN + k * strideK] (f32), for N rows of K
 * values; writes the packed bytes (u8 [N4/4][K16/16][4][16]), the scales sb (f32 [N4]) and the signed row
 * sums bsum (i32 [N4]). Attention's K uses (strideN = row stride, strideK = 1): each row is contiguous and
 * is quantized 16 values at a time. V^T uses (1, row stride): four rows of B are four consecutive floats,
 * quantized as one vector. Other strides take the scalar path.
 */
export function packRows(x: usize, strideN: i32, strideK: i32, N: i32, K: i32, out: usize, sb: usize, bsum: usize): void {
  const kBytes = k16(K);
  const rows = n4(N);
  memory.fill(out, 64, <usize>rows * kBytes);
  let n = 0;
  if (strideK == 1) {
    for (; n < N; n++) packContiguousRow(x + ((<usize>n * strideN) << 2), n, K, out, sb, bsum);
  } else if (strideN == 1) {
    for (; n + 4 <= N; n += 4) packFourRows(x + (<usize>n << 2), strideK, n, K, out, sb, bsum);
  }
  for (; n < rows; n++) packRowScalar(x, strideN, strideK, n, N, K, out, sb, bsum);
}

/** quantizeB on four lanes (s4 > 0 in every lane), as i32. */
@inline function quantizeB4(x4: v128, s4: v128): v128 {
  const r = f32x4.div(x4, s4);
  const t = f32x4.trunc(r);
  const away = v128.or(v128.and(r, i32x4.splat(0x80000000)), f32x4.splat(1)); // copysign(1, r)
  const rounded = f32x4.add(t, v128.and(away, f32x4.ge(f32x4.abs(f32x4.sub(r, t)), f32x4.splat(0.5))));
  // pmax / pmin (one instruction each in V8) with `rounded` first return what max / min return for every
  // input, NaN included (NaN goes through, and trunc_sat makes it 0).
  return i32x4.trunc_sat_f32x4_s(f32x4.pmin(f32x4.pmax(rounded, f32x4.splat(-63)), f32x4.splat(63)));
}

/** packRowScalar for a row whose K values are contiguous at `row`. */
function packContiguousRow(row: usize, n: i32, K: i32, out: usize, sb: usize, bsum: usize): void {
  const kBytes = k16(K);
  const K4 = K & ~3, K16 = K & ~15;
  // pmax, with NaN tracked apart, as in quantizeRows.
  let max4 = f32x4.splat(0), nan4 = i32x4.splat(0);
  for (let k = 0; k < K4; k += 4) {
    const v = v128.load(row + (<usize>k << 2));
    max4 = f32x4.pmax(max4, f32x4.abs(v));
    nan4 = v128.or(nan4, f32x4.ne(v, v));
  }
  if (v128.any_true(nan4)) max4 = f32x4.splat(NaN);
  let maxAbs = max(max(f32x4.extract_lane(max4, 0), f32x4.extract_lane(max4, 1)), max(f32x4.extract_lane(max4, 2), f32x4.extract_lane(max4, 3)));
  for (let k = K4; k < K; k++) maxAbs = max(maxAbs, abs<f32>(load<f32>(row + (<usize>k << 2))));
  const s: f32 = maxAbs / 63;
  let sum = 0;
  if (s > 0) {
    const rowBase = out + ((<usize>(n >> 2) * (kBytes >> 4) * 4 + (n & 3)) << 4);
    const s4 = f32x4.splat(s);
    let sum4 = i32x4.splat(0);
    for (let k = 0; k < K16; k += 16) {
      const p = row + (<usize>k << 2);
      const q0 = quantizeB4(v128.load(p), s4), q1 = quantizeB4(v128.load(p, 16), s4);
      const q2 = quantizeB4(v128.load(p, 32), s4), q3 = quantizeB4(v128.load(p, 48), s4);
      sum4 = i32x4.add(sum4, i32x4.add(i32x4.add(q0, q1), i32x4.add(q2, q3)));
      const q8 = i8x16.narrow_i16x8_s(i16x8.narrow_i32x4_s(q0, q1), i16x8.narrow_i32x4_s(q2, q3));
      v128.store(rowBase + ((<usize>k >> 4) << 6), i8x16.add(q8, i8x16.splat(64)));
    }
    sum = i32x4.extract_lane(sum4, 0) + i32x4.extract_lane(sum4, 1) + i32x4.extract_lane(sum4, 2) + i32x4.extract_lane(sum4, 3);
    for (let k = K16; k < K; k++) {
      const q = quantizeB(load<f32>(row + (<usize>k << 2)), s);
      store<u8>(rowBase + ((<usize>k >> 4) << 6) + (k & 15), q + 64);
      sum += q;
    }
  }
  store<f32>(sb + (<usize>n << 2), s);
  store<i32>(bsum + (<usize>n << 2), sum);
}

/** packRowScalar for rows n..n+3 (n a multiple of 4) whose values at each k are four consecutive floats. */
function packFourRows(x: usize, strideK: i32, n: i32, K: i32, out: usize, sb: usize, bsum: usize): void {
  const kBytes = k16(K);
  // pmax, with NaN tracked apart per row (lane), as in quantizeRows.
  let max4 = f32x4.splat(0), nan4 = i32x4.splat(0);
  for (let k = 0; k < K; k++) {
    const v = v128.load(x + ((<usize>k * strideK) << 2));
    max4 = f32x4.pmax(max4, f32x4.abs(v));
    nan4 = v128.or(nan4, f32x4.ne(v, v));
  }
  max4 = v128.bitselect(f32x4.splat(NaN), max4, nan4);
  const s4 = f32x4.div(max4, f32x4.splat(63));
  // A row of zeros has s = 0 and stores q = 0: divide it by 1 instead of 0.
  const zero = f32x4.eq(s4, f32x4.splat(0));
  const divisor = v128.bitselect(f32x4.splat(1), s4, zero);
  const groupBase = out + ((<usize>(n >> 2) * (kBytes >> 4) * 4) << 4);
  let sum4 = i32x4.splat(0);
  for (let k = 0; k < K; k++) {
    const q = quantizeB4(v128.load(x + ((<usize>k * strideK) << 2)), divisor);
    sum4 = i32x4.add(sum4, q);
    const at = groupBase + ((<usize>k >> 4) << 6) + (k & 15);
    store<u8>(at, i32x4.extract_lane(q, 0) + 64);
    store<u8>(at, i32x4.extract_lane(q, 1) + 64, 16);
    store<u8>(at, i32x4.extract_lane(q, 2) + 64, 32);
    store<u8>(at, i32x4.extract_lane(q, 3) + 64, 48);
  }
  v128.store(sb + (<usize>n << 2), s4);
  v128.store(bsum + (<usize>n << 2), sum4);
}

/** Scalar twin of packRows. */
export function packRowsScalar(x: usize, strideN: i32, strideK: i32, N: i32, K: i32, out: usize, sb: usize, bsum: usize): void {
  const kBytes = k16(K);
  const rows = n4(N);
  memory.fill(out, 64, <usize>rows * kBytes);
  for (let n = 0; n < rows; n++) packRowScalar(x, strideN, strideK, n, N, K, out, sb, bsum);
}

/**
 * quantizeRows on the rows of Idefics3's pixel shuffle, read in place instead of copied: x is a grid x grid
 * patch grid (f32 [grid * grid][dim], row-major); output row (i, j), i, j < grid / s, is the s x s block of
 * patches at grid rows i s .. i s + s - 1 and columns j s .. j s + s - 1, concatenated grid row by grid row,
 * so each of its s runs is s consecutive patches (s dim floats). Writes q (i8 [M padded][K16], M = (grid /
 * s)^2, K = s s dim), sa, za and asum exactly as quantizeRows does on the shuffled matrix. Plain loops: it
 * runs once per image on (grid / s)^2 rows, not per layer.
 */
export function quantizeShuffled(
  x: usize, grid: i32, dim: i32, s: i32, q: usize, sa: usize, za: usize, asum: usize,
): void {
  const side = grid / s, run = s * dim, K = s * run, kBytes = k16(K);
  for (let i = 0; i < side; i++) {
    for (let j = 0; j < side; j++) {
      const m = i * side + j;
      // run r starts at patch (i s + r, j s)
      const first = x + (<usize>((i * s * grid + j * s) * dim) << 2);
      const runStride = <usize>(grid * dim) << 2;
      let lo: f32 = 0, hi: f32 = 0;
      for (let r = 0; r < s; r++) {
        const range = rowRange(first + <usize>r * runStride, run);
        lo = min(lo, f32x4.extract_lane(range, 0));
        hi = max(hi, f32x4.extract_lane(range, 1));
      }
      const scale = rowParams(lo, hi, m, sa, za);
      const z = load<i32>(za + (<usize>m << 2));
      const out = q + <usize>m * kBytes;
      let sum = 0;
      for (let r = 0; r < s; r++) {
        const src = first + <usize>r * runStride;
        for (let k = 0; k < run; k++) {
          const v = quantizeValue(load<f32>(src + (<usize>k << 2)), scale, z);
          store<i8>(out + r * run + k, v);
          sum += v;
        }
      }
      memory.fill(out + K, 0, kBytes - K);
      store<i32>(asum + (<usize>m << 2), sum);
    }
  }
  zeroPaddingRows(side * side, kBytes, q, sa, za, asum);
}
