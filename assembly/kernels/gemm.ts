// int8 GEMM, the hot spot of the engine: C[m][n] = sum_k A[m][k] * B[n][k] (both row-major over K).
//
// A: int8 [rows][K16], quantized per row (scale sa, zero point za, row sum asum); rows padded to a
//    multiple of GEMM_ROWS.
// B: the packed layout of docs/ARCHITECTURE.md, u8 [N4/4][K16/16][4][16] holding q + 64 (q in [-63, 63]),
//    with per-row scale sb and signed row sum bsum.
// Epilogue: y = sa[m] * sb[n] * (acc - 64 * asum[m] - za[m] * bsum[n]) + bias[n], stored into C or added to
// it (residual), C f32 with leading dimension ldc.
//
// The micro-kernel computes a GEMM_ROWS x 4 tile of C. Each of its 8 accumulators is an i32x4 holding
// four partial sums of one (m, n) pair over 16-byte K chunks; they are reduced horizontally once per tile.
// 8 accumulators, 2 A chunks, the B chunks and a register of ones about fill x86's 16 xmm registers; other
// tile shapes measured the same or slower, 3 x 4 leaving V8 no register to spare (BENCHMARKS.md, "Kernels",
// "Dot paths and workerd").
//
// Relaxed build: the dot step of dot.ts, split or fused as the instance chose at start (one branch per
// call, outside the loops; each spelling has its own copy of the tile loop). Baseline build:
// sign-extending 8-byte loads and i32x4.dot_i16x8_s. Every path computes the same integers.

/** Rows of A per micro-kernel tile; quantized A buffers hold their rows padded to a multiple of it. */
export const GEMM_ROWS: i32 = 2;

/** K rounded up to a multiple of 16: the bytes of one row of A or of B (K16 in docs/ARCHITECTURE.md). */
@inline export function k16(k: i32): i32 {
  return (k + 15) & ~15;
}

/** N rounded up to a multiple of 4: the rows of packed B and the length of sb, bsum and bias (N4). */
@inline export function n4(n: i32): i32 {
  return (n + 3) & ~3;
}

/** M rounded up to a multiple of GEMM_ROWS: the rows a quantized A buffer holds. */
@inline export function rowsPadded(m: i32): i32 {
  return (m + GEMM_ROWS - 1) / GEMM_ROWS * GEMM_ROWS;
}

import { dotAdd, fused } from "./dot";

/** Offset of the stored B bytes: stored = q + 64. */
@lazy const B_OFFSET: i32 = 64;

/** Lane j = sum of the four lanes of cj: the horizontal sums of four accumulators in one vector. */
@inline function reduce4(c0: v128, c1: v128, c2: v128, c3: v128): v128 {
  // [c0.0+c0.2, c1.0+c1.2, c0.1+c0.3, c1.1+c1.3]
  const t01 = i32x4.add(i32x4.shuffle(c0, c1, 0, 4, 1, 5), i32x4.shuffle(c0, c1, 2, 6, 3, 7));
  const t23 = i32x4.add(i32x4.shuffle(c2, c3, 0, 4, 1, 5), i32x4.shuffle(c2, c3, 2, 6, 3, 7));
  return i32x4.add(i32x4.shuffle(t01, t23, 0, 1, 4, 5), i32x4.shuffle(t01, t23, 2, 3, 6, 7));
}

/**
 * Epilogue for row m and the four columns n..n+3 (only `cols` of them are stored). `sbn`, `bsumn`, `biasn`:
 * sb, bsum and bias at n, loaded once per group of columns by the caller (`biasn` unused without bias).
 */
@inline function storeRow(
  acc: v128, m: i32, n: i32, cols: i32,
  sa: usize, za: usize, asum: usize, sbn: v128, bsumn: v128, bias: usize, biasn: v128,
  C: usize, ldc: i32, accumulate: bool,
): void {
  const correction = i32x4.add(
    i32x4.splat(B_OFFSET * load<i32>(asum + (<usize>m << 2))),
    i32x4.mul(i32x4.splat(load<i32>(za + (<usize>m << 2))), bsumn),
  );
  const exact = i32x4.sub(acc, correction);
  const scale = f32x4.mul(f32x4.splat(load<f32>(sa + (<usize>m << 2))), sbn);
  let y = f32x4.mul(scale, f32x4.convert_i32x4_s(exact));
  if (bias) y = f32x4.add(y, biasn);
  const dst = C + ((<usize>m * ldc + n) << 2);
  if (cols == 4) {
    if (accumulate) y = f32x4.add(v128.load(dst), y);
    v128.store(dst, y);
  } else {
    // The last group of a C whose N is not a multiple of 4: 1 to 3 columns.
    storeValue(dst, f32x4.extract_lane(y, 0), accumulate);
    if (cols > 1) storeValue(dst + 4, f32x4.extract_lane(y, 1), accumulate);
    if (cols > 2) storeValue(dst + 8, f32x4.extract_lane(y, 2), accumulate);
  }
}

@inline function storeValue(p: usize, y: f32, accumulate: bool): void {
  store<f32>(p, accumulate ? load<f32>(p) + y : y);
}

/**
 * C[M][N] (=|+=) dequant(A[M][K16] x B^T). `bias` may be 0 (none). `K16` is the padded depth in bytes.
 * A must hold ceil(M / GEMM_ROWS) * GEMM_ROWS rows; sb, bsum and bias hold N4 values; K16 >= 16.
 */
export function gemm(
  A: usize, sa: usize, za: usize, asum: usize, M: i32, K16: i32,
  B: usize, sb: usize, bsum: usize, bias: usize, N: i32,
  C: usize, ldc: i32, accumulate: bool,
): void {
  if (fused()) gemmFused(A, sa, za, asum, M, K16, B, sb, bsum, bias, N, C, ldc, accumulate);
  else gemmSplit(A, sa, za, asum, M, K16, B, sb, bsum, bias, N, C, ldc, accumulate);
}

// The two spellings as functions of their own (exported, so that the compiler keeps them apart instead of
// inlining both into gemm): V8 compiles one function holding both loops worse (BENCHMARKS.md, "Dot paths
// and workerd").

/** gemm on the split dot step (the relaxed build) or the sign-extending loads (the baseline build). */
export function gemmSplit(
  A: usize, sa: usize, za: usize, asum: usize, M: i32, K16: i32,
  B: usize, sb: usize, bsum: usize, bias: usize, N: i32,
  C: usize, ldc: i32, accumulate: bool,
): void {
  gemmTiles(A, sa, za, asum, M, K16, B, sb, bsum, bias, N, C, ldc, accumulate, false);
}

/** gemm on the fused dot step (the relaxed build; the baseline build has only gemmSplit's loop). */
export function gemmFused(
  A: usize, sa: usize, za: usize, asum: usize, M: i32, K16: i32,
  B: usize, sb: usize, bsum: usize, bias: usize, N: i32,
  C: usize, ldc: i32, accumulate: bool,
): void {
  if (ASC_FEATURE_RELAXED_SIMD) gemmTiles(A, sa, za, asum, M, K16, B, sb, bsum, bias, N, C, ldc, accumulate, true);
  else gemmTiles(A, sa, za, asum, M, K16, B, sb, bsum, bias, N, C, ldc, accumulate, false);
}

/** gemm's tile loop with the dot step's spelling fixed (`fusedStep`: a constant at both call sites). */
@inline function gemmTiles(
  A: usize, sa: usize, za: usize, asum: usize, M: i32, K16: i32,
  B: usize, sb: usize, bsum: usize, bias: usize, N: i32,
  C: usize, ldc: i32, accumulate: bool, fusedStep: bool,
): void {
  const kBytes = <usize>K16;
  const panelBytes = kBytes << 2; // one group of 4 B rows
  const ones = i16x8.splat(1);
  // n outer: a 4-row B panel (K16 * 4 bytes) stays in L1 while all rows of A stream past it.
  for (let n = 0; n < N; n += 4) {
    const panel = B + (<usize>(n >> 2)) * panelBytes;
    const cols = min(4, N - n);
    // The epilogue's per-column vectors, the same for every row of this group of columns.
    const sbn = v128.load(sb + (<usize>n << 2));
    const bsumn = v128.load(bsum + (<usize>n << 2));
    const biasn = bias ? v128.load(bias + (<usize>n << 2)) : i32x4.splat(0);
    for (let m = 0; m < M; m += GEMM_ROWS) {
      // pa walks row m's 16-byte chunks; row m + 1 is kBytes further.
      let pa = A + <usize>m * kBytes;
      const end = pa + kBytes;
      let c00 = i32x4.splat(0), c01 = i32x4.splat(0), c02 = i32x4.splat(0), c03 = i32x4.splat(0);
      let c10 = i32x4.splat(0), c11 = i32x4.splat(0), c12 = i32x4.splat(0), c13 = i32x4.splat(0);
      if (ASC_FEATURE_RELAXED_SIMD) {
        let pb = panel;
        // Two 16-byte chunks per iteration, then the odd one: workerd's V8 checks every memory access
        // explicitly and does not unroll a loop holding those checks, so this halves the loop's own cost
        // per dot step; four chunks make V8 spill accumulators (BENCHMARKS.md, "Bounds checks in workerd").
        const pairsEnd = pa + (kBytes & ~31);
        while (pa < pairsEnd) {
          let x0 = v128.load(pa);
          let x1 = v128.load(pa + kBytes);
          let b = v128.load(pb);
          c00 = dotAdd(x0, b, c00, ones, fusedStep);
          c10 = dotAdd(x1, b, c10, ones, fusedStep);
          b = v128.load(pb, 16);
          c01 = dotAdd(x0, b, c01, ones, fusedStep);
          c11 = dotAdd(x1, b, c11, ones, fusedStep);
          b = v128.load(pb, 32);
          c02 = dotAdd(x0, b, c02, ones, fusedStep);
          c12 = dotAdd(x1, b, c12, ones, fusedStep);
          b = v128.load(pb, 48);
          c03 = dotAdd(x0, b, c03, ones, fusedStep);
          c13 = dotAdd(x1, b, c13, ones, fusedStep);
          x0 = v128.load(pa, 16);
          x1 = v128.load(pa + kBytes, 16);
          b = v128.load(pb, 64);
          c00 = dotAdd(x0, b, c00, ones, fusedStep);
          c10 = dotAdd(x1, b, c10, ones, fusedStep);
          b = v128.load(pb, 80);
          c01 = dotAdd(x0, b, c01, ones, fusedStep);
          c11 = dotAdd(x1, b, c11, ones, fusedStep);
          b = v128.load(pb, 96);
          c02 = dotAdd(x0, b, c02, ones, fusedStep);
          c12 = dotAdd(x1, b, c12, ones, fusedStep);
          b = v128.load(pb, 112);
          c03 = dotAdd(x0, b, c03, ones, fusedStep);
          c13 = dotAdd(x1, b, c13, ones, fusedStep);
          pa += 32;
          pb += 128;
        }
        if (pa < end) {
          const x0 = v128.load(pa);
          const x1 = v128.load(pa + kBytes);
          let b = v128.load(pb);
          c00 = dotAdd(x0, b, c00, ones, fusedStep);
          c10 = dotAdd(x1, b, c10, ones, fusedStep);
          b = v128.load(pb, 16);
          c01 = dotAdd(x0, b, c01, ones, fusedStep);
          c11 = dotAdd(x1, b, c11, ones, fusedStep);
          b = v128.load(pb, 32);
          c02 = dotAdd(x0, b, c02, ones, fusedStep);
          c12 = dotAdd(x1, b, c12, ones, fusedStep);
          b = v128.load(pb, 48);
          c03 = dotAdd(x0, b, c03, ones, fusedStep);
          c13 = dotAdd(x1, b, c13, ones, fusedStep);
        }
      } else {
        // Two passes over K, columns n, n+1 then n+2, n+3: with sign-extended halves a 2 x 4 tile needs
        // more registers than x86 has and V8 spills; two 2 x 2 passes measured 5-15% faster.
        const start = pa;
        let pb = panel;
        do {
          let x0 = v128.load8x8_s(pa), x1 = v128.load8x8_s(pa + kBytes);
          let b = v128.load8x8_s(pb);
          c00 = i32x4.add(c00, i32x4.dot_i16x8_s(x0, b)); c10 = i32x4.add(c10, i32x4.dot_i16x8_s(x1, b));
          b = v128.load8x8_s(pb, 16);
          c01 = i32x4.add(c01, i32x4.dot_i16x8_s(x0, b)); c11 = i32x4.add(c11, i32x4.dot_i16x8_s(x1, b));
          x0 = v128.load8x8_s(pa, 8); x1 = v128.load8x8_s(pa + kBytes, 8);
          b = v128.load8x8_s(pb, 8);
          c00 = i32x4.add(c00, i32x4.dot_i16x8_s(x0, b)); c10 = i32x4.add(c10, i32x4.dot_i16x8_s(x1, b));
          b = v128.load8x8_s(pb, 24);
          c01 = i32x4.add(c01, i32x4.dot_i16x8_s(x0, b)); c11 = i32x4.add(c11, i32x4.dot_i16x8_s(x1, b));
          pa += 16;
          pb += 64;
        } while (pa < end);
        pa = start;
        pb = panel + 32;
        do {
          let x0 = v128.load8x8_s(pa), x1 = v128.load8x8_s(pa + kBytes);
          let b = v128.load8x8_s(pb);
          c02 = i32x4.add(c02, i32x4.dot_i16x8_s(x0, b)); c12 = i32x4.add(c12, i32x4.dot_i16x8_s(x1, b));
          b = v128.load8x8_s(pb, 16);
          c03 = i32x4.add(c03, i32x4.dot_i16x8_s(x0, b)); c13 = i32x4.add(c13, i32x4.dot_i16x8_s(x1, b));
          x0 = v128.load8x8_s(pa, 8); x1 = v128.load8x8_s(pa + kBytes, 8);
          b = v128.load8x8_s(pb, 8);
          c02 = i32x4.add(c02, i32x4.dot_i16x8_s(x0, b)); c12 = i32x4.add(c12, i32x4.dot_i16x8_s(x1, b));
          b = v128.load8x8_s(pb, 24);
          c03 = i32x4.add(c03, i32x4.dot_i16x8_s(x0, b)); c13 = i32x4.add(c13, i32x4.dot_i16x8_s(x1, b));
          pa += 16;
          pb += 64;
        } while (pa < end);
      }
      storeRow(reduce4(c00, c01, c02, c03), m, n, cols, sa, za, asum, sbn, bsumn, bias, biasn, C, ldc, accumulate);
      if (m + 1 < M) {
        storeRow(
          reduce4(c10, c11, c12, c13), m + 1, n, cols, sa, za, asum, sbn, bsumn, bias, biasn, C, ldc, accumulate,
        );
      }
    }
  }
}

/** Scalar twin of gemm: the specification, one dot product per output. */
export function gemmScalar(
  A: usize, sa: usize, za: usize, asum: usize, M: i32, K16: i32,
  B: usize, sb: usize, bsum: usize, bias: usize, N: i32,
  C: usize, ldc: i32, accumulate: bool,
): void {
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let acc: i32 = 0;
      for (let k = 0; k < K16; k++) {
        // Packed index of (n, k): group n/4, chunk k/16, row n%4, byte k%16.
        const b = load<u8>(B + ((((n >> 2) * (K16 >> 4) + (k >> 4)) * 4 + (n & 3)) * 16 + (k & 15)));
        acc += <i32>load<i8>(A + m * K16 + k) * <i32>b;
      }
      const exact = acc - B_OFFSET * load<i32>(asum + (m << 2)) - load<i32>(za + (m << 2)) * load<i32>(bsum + (n << 2));
      let y = load<f32>(sa + (m << 2)) * load<f32>(sb + (n << 2)) * <f32>exact;
      if (bias) y += load<f32>(bias + (n << 2));
      const dst = C + ((m * ldc + n) << 2);
      store<f32>(dst, accumulate ? load<f32>(dst) + y : y);
    }
  }
}
