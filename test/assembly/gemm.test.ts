// The int8 path: A-side quantizer, run-time B packer, and the GEMM, each against its scalar twin
// (exactly), across the two builds (exactly), and against plain float64 references of the documented math.
import { describe, expect, test } from "vitest";
import { packLinear } from "../../core/bundle/pack.ts";
import {
  DOT,
  DOT_VARIANTS,
  type Engine,
  K16,
  N4,
  f32,
  i32,
  i8,
  loadEngine,
  loadVariant,
  put,
  randomF32,
  rng,
  u8,
} from "./engine.ts";

// the baseline build and both dot spellings of the relaxed build
const engines = DOT_VARIANTS.map(loadVariant);

/** Round half to even, as wasm's f32.nearest. */
function nearestEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x - Math.trunc(x)) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** The A-side quantization of docs/ARCHITECTURE.md in f32 arithmetic, one row. */
function quantizeRowReference(x: Float32Array) {
  const fr = Math.fround;
  let lo = 0,
    hi = 0;
  for (const v of x) {
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  let s = fr(fr(hi - lo) / 255);
  if (s === 0) s = 1;
  const z = nearestEven(fr(-128 - fr(lo / s)));
  const q = Array.from(x, (v) => Math.min(127, Math.max(-128, nearestEven(fr(v / s)) + z)));
  return { s, z, q, sum: q.reduce((a, b) => a + b, 0) };
}

interface QuantizedA {
  q: number;
  sa: number;
  za: number;
  asum: number;
  rows: number;
}

function quantizeA(e: Engine, x: Float32Array, ldx: number, M: number, K: number, scalar: boolean): QuantizedA {
  const rows = Math.ceil(M / e.gemmRowTile()) * e.gemmRowTile();
  const src = put(e, x);
  // Fill the outputs with garbage first: the quantizer must write every byte, padding included.
  const q = put(e, new Uint8Array(rows * K16(K)).fill(0x5a));
  const sa = put(e, new Float32Array(rows).fill(7)),
    za = put(e, new Int32Array(rows).fill(7)),
    asum = put(e, new Int32Array(rows).fill(7));
  (scalar ? e.quantizeRowsScalar : e.quantizeRows)(src, ldx, M, K, q, sa, za, asum);
  return { q, sa, za, asum, rows };
}

const quantShapes = [
  [1, 1],
  [2, 15],
  [3, 17],
  [5, 33],
  [4, 64],
  [9, 100],
  [197, 64],
  [13, 768],
];

describe("quantizeRows (A side, per row asymmetric int8)", () => {
  for (const e of engines) {
    test(`${e.name}: fast == scalar == reference, padding zeroed`, () => {
      const random = rng(1);
      for (const [M, K] of quantShapes) {
        const ldx = K + 3;
        const x = randomF32(random, M * ldx, -3, 5);
        if (M > 2) {
          for (let k = 0; k < K; k++) x[ldx + k] = 0; // all-zero row: s = 1
          for (let k = 0; k < K; k++) x[2 * ldx + k] = Math.abs(x[2 * ldx + k]); // all-positive row: z = -128
        }
        const fast = quantizeA(e, x, ldx, M, K, false);
        const slow = quantizeA(e, x, ldx, M, K, true);
        const bytes = fast.rows * K16(K);
        expect(i8(e, fast.q, bytes)).toEqual(i8(e, slow.q, bytes));
        expect(f32(e, fast.sa, fast.rows)).toEqual(f32(e, slow.sa, fast.rows));
        expect(i32(e, fast.za, fast.rows)).toEqual(i32(e, slow.za, fast.rows));
        expect(i32(e, fast.asum, fast.rows)).toEqual(i32(e, slow.asum, fast.rows));
        for (let m = 0; m < fast.rows; m++) {
          const row = Array.from(i8(e, fast.q + m * K16(K), K16(K)));
          if (m >= M) {
            expect(row.every((v) => v === 0)).toBe(true);
            expect([
              f32(e, fast.sa, fast.rows)[m],
              i32(e, fast.za, fast.rows)[m],
              i32(e, fast.asum, fast.rows)[m],
            ]).toEqual([0, 0, 0]);
            continue;
          }
          const ref = quantizeRowReference(x.subarray(m * ldx, m * ldx + K));
          expect(row.slice(0, K)).toEqual(ref.q);
          expect(row.slice(K).every((v) => v === 0)).toBe(true);
          expect(f32(e, fast.sa, fast.rows)[m]).toBe(ref.s);
          expect(i32(e, fast.za, fast.rows)[m]).toBe(ref.z);
          expect(i32(e, fast.asum, fast.rows)[m]).toBe(ref.sum);
        }
      }
    });
  }
});

describe("packRows (B side at run time, per row symmetric 7-bit)", () => {
  for (const e of engines) {
    test(`${e.name}: fast and scalar, K (row-major) and V^T (column-major), match core/bundle/pack.ts`, () => {
      const random = rng(2);
      for (const [N, K] of [
        [1, 1],
        [5, 12],
        [10, 16],
        [197, 64],
        [13, 197],
        [7, 33],
        [12, 40],
        [64, 197],
      ]) {
        const W = randomF32(random, N * K, -2, 2);
        W[0] = 0;
        if (N > 3) for (let k = 0; k < K; k++) W[3 * K + k] = 0; // an all-zero row: scale 0
        const expected = packLinear(W, null, N, K);
        // K layout: element (n, k) at n * ld + k; V^T layout: the same matrix stored transposed.
        const ld = K + 5;
        const rowMajor = new Float32Array(N * ld);
        const colMajor = new Float32Array(K * (N + 2));
        for (let n = 0; n < N; n++) {
          for (let k = 0; k < K; k++) {
            rowMajor[n * ld + k] = W[n * K + k];
            colMajor[k * (N + 2) + n] = W[n * K + k];
          }
        }
        // The fast kernel has a path per layout and the scalar twin a general one; a stride pair that fits
        // neither fast path (strided rows of a transposed copy) exercises the fast kernel's fallback.
        const strided = new Float32Array(K * (N + 2) * 2);
        for (let i = 0; i < colMajor.length; i++) strided[2 * i] = colMajor[i];
        const layouts = [
          [rowMajor, ld, 1],
          [colMajor, 1, N + 2],
          [strided, 2, 2 * (N + 2)],
        ] as const;
        for (const [src, strideN, strideK] of layouts) {
          for (const kernel of [e.packRows, e.packRowsScalar]) {
            const out = put(e, new Uint8Array(N4(N) * K16(K)).fill(0xee));
            const sb = put(e, new Float32Array(N4(N)).fill(9)),
              bsum = put(e, new Int32Array(N4(N)).fill(9));
            kernel(put(e, src), strideN, strideK, N, K, out, sb, bsum);
            expect(u8(e, out, N4(N) * K16(K))).toEqual(expected.weight);
            expect(f32(e, sb, N4(N))).toEqual(expected.scale);
            expect(i32(e, bsum, N4(N))).toEqual(expected.wsum);
          }
        }
      }
    });
  }
});

interface GemmCase {
  M: number;
  K: number;
  N: number;
  accumulate: number;
  bias: boolean;
}

const gemmCases: GemmCase[] = [
  { M: 1, K: 1, N: 1, accumulate: 0, bias: true },
  { M: 3, K: 17, N: 5, accumulate: 1, bias: true },
  { M: 7, K: 50, N: 13, accumulate: 0, bias: false },
  { M: 33, K: 200, N: 30, accumulate: 1, bias: true },
  { M: 197, K: 64, N: 197, accumulate: 0, bias: false },
  { M: 10, K: 197, N: 12, accumulate: 0, bias: false },
  { M: 64, K: 768, N: 36, accumulate: 1, bias: true },
  // three K chunks (one pair, then the odd one) with a three-column tail; one chunk exactly, no padding
  { M: 4, K: 48, N: 7, accumulate: 1, bias: true },
  { M: 2, K: 16, N: 3, accumulate: 0, bias: false },
];

/** Runs one GEMM case on an engine; returns C (with its ldc padding columns) and the quantized operands. */
function runGemm(e: Engine, c: GemmCase, scalar: boolean) {
  const random = rng(c.M * 1000 + c.K * 10 + c.N);
  const x = randomF32(random, c.M * c.K, -2, 3);
  const W = randomF32(random, c.N * c.K, -0.5, 0.5);
  const bias = randomF32(random, c.N, -1, 1);
  const packed = packLinear(W, c.bias ? bias : null, c.N, c.K);
  const A = quantizeA(e, x, c.K, c.M, c.K, false);
  const ldc = c.N + 3;
  const C0 = randomF32(random, c.M * ldc, -1, 1);
  const C = put(e, C0);
  const args = [
    A.q,
    A.sa,
    A.za,
    A.asum,
    c.M,
    K16(c.K),
    put(e, packed.weight),
    put(e, packed.scale),
    put(e, packed.wsum),
    c.bias ? put(e, packed.bias) : 0,
    c.N,
    C,
    ldc,
    c.accumulate,
  ] as const;
  (scalar ? e.gemmScalar : e.gemm)(...args);
  return {
    C: f32(e, C, c.M * ldc).slice(),
    C0,
    ldc,
    x,
    W,
    bias,
    packed,
    qa: i8(e, A.q, A.rows * K16(c.K)).slice(),
    sa: f32(e, A.sa, c.M).slice(),
    za: i32(e, A.za, c.M).slice(),
    asum: i32(e, A.asum, c.M).slice(),
  };
}

describe("gemm (int8 x w7, dequantizing epilogue)", () => {
  for (const c of gemmCases) {
    const label = `M=${c.M} K=${c.K} N=${c.N} accumulate=${c.accumulate} bias=${c.bias}`;
    test(`${label}: fast == scalar on every dot path, paths identical, matches the documented math`, () => {
      const results = engines.flatMap((e) => [runGemm(e, c, false), runGemm(e, c, true)]);
      for (const r of results.slice(1))
        expect(new Uint32Array(r.C.buffer)).toEqual(new Uint32Array(results[0].C.buffer));
      const { C, C0, ldc, qa, sa, za, packed, x, W, bias } = results[0];
      let errMax = 0,
        refMax = 0,
        floatErr = 0,
        floatNorm = 0;
      for (let m = 0; m < c.M; m++) {
        for (let n = 0; n < ldc; n++) {
          const got = C[m * ldc + n];
          if (n >= c.N) {
            expect(got).toBe(C0[m * ldc + n]); // columns beyond N are untouched
            continue;
          }
          // sa * sb * sum_k (qa - za) * qb + bias, qb = stored - 64, in float64.
          let dot = 0,
            exact = 0;
          for (let k = 0; k < c.K; k++) {
            const qb =
              packed.weight[(Math.floor(n / 4) * (K16(c.K) / 16) + Math.floor(k / 16)) * 64 + (n % 4) * 16 + (k % 16)] -
              64;
            dot += (qa[m * K16(c.K) + k] - za[m]) * qb;
            exact += x[m * c.K + k] * W[n * c.K + k];
          }
          const b = c.bias ? bias[n] : 0;
          const ref = sa[m] * packed.scale[n] * dot + b + (c.accumulate ? C0[m * ldc + n] : 0);
          errMax = Math.max(errMax, Math.abs(got - ref));
          refMax = Math.max(refMax, Math.abs(ref));
          floatErr += (got - (exact + b + (c.accumulate ? C0[m * ldc + n] : 0))) ** 2;
          floatNorm += (exact + b) ** 2;
        }
      }
      // f32 rounding of the epilogue only.
      expect(errMax).toBeLessThanOrEqual(1e-5 * Math.max(1, refMax));
      // And the quantized product approximates the float product (7-bit weights, 8-bit activations).
      expect(Math.sqrt(floatErr / floatNorm)).toBeLessThan(0.02);
    });
  }
});

describe("dot path (assembly/kernels/dot.ts)", () => {
  test("the probe tells the lowering; fused exactly where it is one instruction", () => {
    const relaxed = loadEngine("engine-relaxed.wasm");
    const probe = relaxed.probeDot();
    // 4 * 127 * 255 (vpdpbusd), 4 * 127 * -1 (vpdpbssd, sdot), or two i16 pairs saturating at 32767 (pmaddubsw)
    expect([4 * 127 * 255, 4 * 127 * -1, 2 * 32767]).toContain(probe);
    expect(relaxed.dotPath()).toBe(probe === 2 * 32767 ? DOT.split : DOT.fused);
    const baseline = loadEngine("engine.wasm");
    expect([baseline.probeDot(), baseline.dotPath()]).toEqual([0, DOT.i16]);
    // a path a build lacks is refused: the instance keeps the probe's choice
    expect(baseline.setDotPath(DOT.fused)).toBe(DOT.i16);
    expect(relaxed.setDotPath(DOT.i16)).toBe(relaxed.dotPath());
  });
});
