// Row softmax in f32, numerically stable: p = exp(x * scale - max(x * scale)) / sum.
// Attention passes scale = 1 / sqrt(headDim), so the scores are scaled here, as Hugging Face scales them
// before its softmax.
import { expSplit, expSplit4 } from "./exp";
import { k16 } from "./gemm";
import { quantizeRow, rowRange, zeroPaddingRows } from "./quant";

/** In place over M rows of N values (row stride ld floats). */
export function softmax(x: usize, M: i32, N: i32, ld: i32, scale: f32): void {
  for (let m = 0; m < M; m++) softmaxRow(x + ((<usize>m * ld) << 2), N, scale);
}

/**
 * softmax, then quantizeRows of its output (P of attention, f32 kept in x) into q, sa, za, asum, without
 * quantizeRows' pass for the row's range: it is known, 0..1/sum (the row's maximum has exp(0) = 1 exactly,
 * every other probability is e * (1 / sum) with e <= 1). Rows that hold a NaN or an infinity take the range
 * pass. Its specification is softmax followed by quantizeRows, which the tests hold it to bit for bit
 * (those two have scalar twins).
 */
export function softmaxQuantize(
  x: usize, M: i32, N: i32, ld: i32, scale: f32, q: usize, sa: usize, za: usize, asum: usize,
): void {
  const kBytes = k16(N);
  for (let m = 0; m < M; m++) {
    const row = x + ((<usize>m * ld) << 2);
    const inv = softmaxRow(row, N, scale);
    let lo: f32 = 0, hi = inv;
    if (!(inv > 0 && inv <= f32.MAX_VALUE)) {
      const range = rowRange(row, N);
      lo = f32x4.extract_lane(range, 0);
      hi = f32x4.extract_lane(range, 1);
    }
    quantizeRow(row, N, q + <usize>m * kBytes, m, lo, hi, sa, za, asum);
  }
  zeroPaddingRows(M, kBytes, q, sa, za, asum);
}

/** One row of softmax in place; returns 1 / sum, the factor every exponential was multiplied by. */
@inline function softmaxRow(row: usize, N: i32, scale: f32): f32 {
  const N4 = N & ~3;
  const s4 = f32x4.splat(scale);
  // pmax is one instruction in V8 (max is seven, for its NaN and signed-zero rules); NaN is tracked
  // apart so that it still gives hi = NaN. A signed zero that differs from max's changes no output.
  let max4 = f32x4.splat(-Infinity), nan4 = i32x4.splat(0);
  for (let n = 0; n < N4; n += 4) {
    const v = v128.load(row + (<usize>n << 2));
    max4 = f32x4.pmax(max4, v);
    nan4 = v128.or(nan4, f32x4.ne(v, v));
  }
  if (v128.any_true(nan4)) max4 = f32x4.splat(NaN);
  let hi = max(max(f32x4.extract_lane(max4, 0), f32x4.extract_lane(max4, 1)), max(f32x4.extract_lane(max4, 2), f32x4.extract_lane(max4, 3)));
  for (let n = N4; n < N; n++) hi = max(hi, load<f32>(row + (<usize>n << 2)));
  const shift = -(hi * scale);
  const shift4 = f32x4.splat(shift);
  let sum4 = f32x4.splat(0);
  // Four exponentials per iteration, independent chains; the sum keeps its order (bit-identical).
  const N16 = N & ~15;
  let n = 0;
  for (; n < N16; n += 16) {
    const p = row + (<usize>n << 2);
    const e0 = expSplit4(f32x4.mul(v128.load(p), s4), shift4);
    const e1 = expSplit4(f32x4.mul(v128.load(p, 16), s4), shift4);
    const e2 = expSplit4(f32x4.mul(v128.load(p, 32), s4), shift4);
    const e3 = expSplit4(f32x4.mul(v128.load(p, 48), s4), shift4);
    v128.store(p, e0);
    v128.store(p, e1, 16);
    v128.store(p, e2, 32);
    v128.store(p, e3, 48);
    sum4 = f32x4.add(f32x4.add(f32x4.add(f32x4.add(sum4, e0), e1), e2), e3);
  }
  for (; n < N4; n += 4) {
    const p = row + (<usize>n << 2);
    const e = expSplit4(f32x4.mul(v128.load(p), s4), shift4);
    v128.store(p, e);
    sum4 = f32x4.add(sum4, e);
  }
  let sum = (f32x4.extract_lane(sum4, 0) + f32x4.extract_lane(sum4, 1)) + (f32x4.extract_lane(sum4, 2) + f32x4.extract_lane(sum4, 3));
  for (let n = N4; n < N; n++) {
    const p = row + (<usize>n << 2);
    const e = expSplit(load<f32>(p) * scale, shift);
    store<f32>(p, e);
    sum += e;
  }
  const inv4 = f32x4.splat(1 / sum);
  for (let n = 0; n < N4; n += 4) {
    const p = row + (<usize>n << 2);
    v128.store(p, f32x4.mul(v128.load(p), inv4));
  }
  for (let n = N4; n < N; n++) {
    const p = row + (<usize>n << 2);
    store<f32>(p, load<f32>(p) * (1 / sum));
  }
  return 1 / sum;
}

/** Scalar twin of softmax. */
export function softmaxScalar(x: usize, M: i32, N: i32, ld: i32, scale: f32): void {
  for (let m = 0; m < M; m++) {
    const row = x + ((<usize>m * ld) << 2);
    let hi: f32 = -Infinity;
    for (let n = 0; n < N; n++) hi = max(hi, load<f32>(row + (<usize>n << 2)));
    const shift = -(hi * scale);
    let sum: f32 = 0;
    for (let n = 0; n < N; n++) {
      const p = row + (<usize>n << 2);
      const e = expSplit(load<f32>(p) * scale, shift);
      store<f32>(p, e);
      sum += e;
    }
    for (let n = 0; n < N; n++) {
      const p = row + (<usize>n << 2);
      store<f32>(p, load<f32>(p) / sum);
    }
  }
}
