// Float kernels (LayerNorm, softmax, GELU): the SIMD kernel against its scalar twin and against float64
// references, on sizes that are not multiples of 4; GELU also against hand-computed values.
import { describe, expect, test } from "vitest";
import { BUILDS, f32, i32, i8, K16, loadEngine, put, randomF32, rng } from "./engine.ts";
import * as ref from "./reference.ts";

const engines = BUILDS.map(loadEngine);
const [baseline, relaxed] = engines;

function maxRelErr(got: ArrayLike<number>, want: ArrayLike<number>, floor: number): number {
  let worst = 0;
  for (let i = 0; i < want.length; i++)
    worst = Math.max(worst, Math.abs(got[i] - want[i]) / Math.max(Math.abs(want[i]), floor));
  return worst;
}

describe("layerNorm", () => {
  for (const e of engines) {
    test(`${e.name}: SIMD and scalar within 2e-6 of float64 (relative; absolute where |y| < 1)`, () => {
      const random = rng(3);
      for (const [M, D, eps] of [
        [1, 1, 1e-5],
        [3, 7, 1e-12],
        [10, 96, 1e-6],
        [197, 768, 1e-12],
        [5, 1001, 1e-12],
      ]) {
        const x = randomF32(random, M * D, -4, 6);
        const w = randomF32(random, D, 0.5, 1.5),
          b = randomF32(random, D, -0.2, 0.2);
        const want = ref.layerNorm(Float64Array.from(x), M, D, w, b, eps);
        const wp = put(e, w),
          bp = put(e, b);
        for (const kernel of [e.layerNorm, e.layerNormScalar]) {
          const src = put(e, x),
            out = e.alloc(M * D * 4);
          kernel(src, M, D, wp, bp, eps, out);
          expect(maxRelErr(f32(e, out, M * D), want, 1)).toBeLessThan(2e-6);
          kernel(src, M, D, wp, bp, eps, src); // in place
          expect(f32(e, src, M * D)).toEqual(f32(e, out, M * D));
        }
      }
    });
  }
});

describe("softmax", () => {
  for (const e of engines) {
    test(`${e.name}: SIMD and scalar within 1e-6 (relative) of float64, rows sum to 1`, () => {
      const random = rng(4);
      for (const [M, N, ld, scale] of [
        [1, 1, 1, 1],
        [3, 5, 7, 0.125],
        [10, 197, 197, 0.125],
        [4, 50, 53, 0.35],
        [2, 9, 9, 30],
      ]) {
        const x = randomF32(random, M * ld, -40, 40);
        const packed = new Float32Array(M * N);
        for (let m = 0; m < M; m++) for (let n = 0; n < N; n++) packed[m * N + n] = x[m * ld + n];
        const want = ref.softmax(packed, M, N, scale);
        for (const kernel of [e.softmax, e.softmaxScalar]) {
          const p = put(e, x);
          kernel(p, M, N, ld, scale);
          const y = f32(e, p, M * ld);
          const got = new Float64Array(M * N);
          for (let m = 0; m < M; m++) {
            for (let n = 0; n < N; n++) got[m * N + n] = y[m * ld + n];
            for (let n = N; n < ld; n++) expect(y[m * ld + n]).toBe(x[m * ld + n]); // stride gap untouched
            // Tiny probabilities (below 2^-126 relative to the max) flush to 0: compare with an absolute floor.
          }
          expect(maxRelErr(got, want, 1e-30)).toBeLessThan(1e-6 + Number.EPSILON);
          for (let m = 0; m < M; m++) {
            let sum = 0;
            for (let n = 0; n < N; n++) sum += got[m * N + n];
            expect(Math.abs(sum - 1)).toBeLessThan(1e-6);
          }
        }
      }
    });
  }
});

describe("gelu (exact erf form)", () => {
  // Hand-computed: x * Phi(x) with Phi from erf tables (Phi(1) = 0.8413447460685429, Phi(-3) = 0.0013498980316301).
  const known: [number, number][] = [
    [0, 0],
    [1, 0.8413447460685429],
    [-1, -0.15865525393145707],
    [0.5, 0.34573123063700656],
    [2, 1.9544997361036416],
    [-3, -0.0040496940948903],
  ];
  for (const e of engines) {
    test(`${e.name}: known values within 1e-6 relative`, () => {
      for (const kernel of [e.gelu, e.geluScalar]) {
        const p = put(
          e,
          Float32Array.from(known, ([x]) => x),
        );
        kernel(p, known.length);
        const got = f32(e, p, known.length);
        known.forEach(([, want], i) => expect(Math.abs(got[i] - want)).toBeLessThanOrEqual(1e-6 * Math.abs(want)));
      }
    });

    test(`${e.name}: |err| < 1e-6 relative to float64 GELU on [-12, 12], SIMD == scalar`, () => {
      // Every f32 on a fine grid plus random values; the reference is evaluated at the same f32 inputs.
      const random = rng(5);
      const n = 60001;
      const x = new Float32Array(n + 20000);
      for (let i = 0; i < n; i++) x[i] = -12 + (24 * i) / (n - 1);
      for (let i = n; i < x.length; i++) x[i] = (random() - 0.5) * 24;
      const want = Array.from(x, ref.gelu);
      const fast = put(e, x),
        slow = put(e, x);
      e.gelu(fast, x.length);
      e.geluScalar(slow, x.length);
      const a = f32(e, fast, x.length),
        b = f32(e, slow, x.length);
      expect(maxRelErr(a, want, 1e-30)).toBeLessThan(1e-6);
      expect(ref.sameBits(a, b)).toBe(true);
    });
  }
  test("large magnitudes saturate: gelu(x) = x for x >> 0 and 0 for x << 0", () => {
    const p = put(relaxed, new Float32Array([30, -30, 1e6, -1e6]));
    relaxed.gelu(p, 4);
    expect(Array.from(f32(relaxed, p, 4))).toEqual([30, -0, 1e6, -0]);
  });
});

// The sigmoid-form GELUs of CLIP (quick_gelu) and SigLIP (gelu_pytorch_tanh), against their definitions in
// float64 (transformers' activations.py): quick_gelu(x) = x * sigmoid(1.702 x),
// gelu_pytorch_tanh(x) = 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))).
const quickGelu64 = (x: number) => x / (1 + Math.exp(-1.702 * x));
const geluTanh64 = (x: number) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));

describe.each([
  {
    name: "quickGelu" as const,
    reference: quickGelu64,
    // x / (1 + e^(-1.702 x)): e.g. 1 / (1 + e^-1.702) = 1 / 1.18231 = 0.845796
    known: [
      [0, 0],
      [1, 0.8457957659328212],
      [-1, -0.1542042340671787],
      [0.5, 0.35038843660638014],
      [2, 1.9356586231442083],
      [-3, -0.01807130970778597],
    ],
  },
  {
    name: "geluTanh" as const,
    reference: geluTanh64,
    // 0.5 x (1 + tanh(0.7978846 (x + 0.044715 x^3))): e.g. at 1, tanh(0.8335624) = 0.6823840, so 0.8411920
    known: [
      [0, 0],
      [1, 0.8411919906082768],
      [-1, -0.15880800939172324],
      [0.5, 0.34571400982514394],
      [2, 1.954597694087775],
      [-3, -0.0036373920817729943],
    ],
  },
])("$name", ({ name, reference, known }) => {
  for (const e of engines) {
    const kernels = [e[name], e[`${name}Scalar`]];
    test(`${e.name}: known values within 2e-6 relative`, () => {
      for (const kernel of kernels) {
        const p = put(
          e,
          Float32Array.from(known, ([x]) => x),
        );
        kernel(p, known.length);
        const got = f32(e, p, known.length);
        known.forEach(([, want], i) => expect(Math.abs(got[i] - want)).toBeLessThanOrEqual(2e-6 * Math.abs(want)));
      }
    });

    test(`${e.name}: within 2e-6 of float64 on [-12, 12] (relative, absolute below 1e-3), SIMD == scalar`, () => {
      const random = rng(9);
      const n = 60001;
      const x = new Float32Array(n + 20003); // not a multiple of 4: the scalar tail runs too
      for (let i = 0; i < n; i++) x[i] = -12 + (24 * i) / (n - 1);
      for (let i = n; i < x.length; i++) x[i] = (random() - 0.5) * 24;
      const want = Array.from(x, reference);
      const fast = put(e, x),
        slow = put(e, x);
      e[name](fast, x.length);
      e[`${name}Scalar`](slow, x.length);
      const a = f32(e, fast, x.length),
        b = f32(e, slow, x.length);
      expect(maxRelErr(a, want, 1e-3)).toBeLessThan(2e-6);
      expect(ref.sameBits(a, b)).toBe(true);
    });
  }

  test("large magnitudes: x for x >> 0, under 1e-18 in magnitude and not positive for x << 0, NaN stays NaN", () => {
    const p = put(relaxed, new Float32Array([30, -30, 1e6, -1e6, 1e20, -1e20, Number.NaN, 0]));
    relaxed[name](p, 8);
    const got = Array.from(f32(relaxed, p, 8));
    expect(got.slice(0, 6).filter((_, i) => i % 2 === 0)).toEqual([30, 1e6, Math.fround(1e20)]);
    for (const v of got.slice(0, 6).filter((_, i) => i % 2 === 1)) {
      expect(Math.abs(v)).toBeLessThan(1e-18);
      expect(v <= 0).toBe(true);
    }
    expect(got[6]).toBeNaN();
    expect(got[7]).toBe(0);
  });
});

test("float kernels are bit-identical across the two builds", () => {
  const random = rng(6);
  const x = randomF32(random, 3 * 301, -8, 8),
    w = randomF32(random, 301, 0.5, 1.5),
    b = randomF32(random, 301, -1, 1);
  const run = (e: typeof baseline) => {
    const g = put(e, x),
      s = put(e, x),
      l = put(e, x),
      q = put(e, x),
      t = put(e, x);
    e.gelu(g, x.length);
    e.softmax(s, 3, 301, 301, 0.2);
    e.layerNorm(l, 3, 301, put(e, w), put(e, b), 1e-12, l);
    e.quickGelu(q, x.length);
    e.geluTanh(t, x.length);
    return [g, s, l, q, t].map((p) => f32(e, p, x.length).slice());
  };
  const first = run(baseline),
    second = run(relaxed);
  first.forEach((v, i) => expect(ref.sameBits(v, second[i])).toBe(true));
});

describe("softmaxQuantize (attention's P, quantized as it is normalized)", () => {
  for (const e of engines) {
    test(`${e.name}: bit for bit softmax then quantizeRows, NaN and infinite rows included`, () => {
      const random = rng(8);
      for (const [M, N] of [
        [1, 1],
        [3, 13],
        [5, 16],
        [7, 197],
        [4, 301],
      ]) {
        const ld = N + 3;
        const x = randomF32(random, M * ld, -30, 30);
        if (M > 3) {
          x[1 * ld + 2] = Number.NaN;
          x[2 * ld] = Number.POSITIVE_INFINITY;
          for (let n = 0; n < N; n++) x[3 * ld + n] = Number.NEGATIVE_INFINITY;
        }
        const rows = Math.ceil(M / e.gemmRowTile()) * e.gemmRowTile();
        const run = (fused: boolean) => {
          const p = put(e, x);
          const q = e.alloc(rows * K16(N)),
            sa = e.alloc(rows * 4),
            za = e.alloc(rows * 4),
            asum = e.alloc(rows * 4);
          if (fused) e.softmaxQuantize(p, M, N, ld, 0.3, q, sa, za, asum);
          else {
            e.softmax(p, M, N, ld, 0.3);
            e.quantizeRows(p, ld, M, N, q, sa, za, asum);
          }
          return [
            f32(e, p, M * ld).slice(),
            i8(e, q, rows * K16(N)).slice(),
            f32(e, sa, rows).slice(),
            i32(e, za, rows).slice(),
            i32(e, asum, rows).slice(),
          ];
        };
        const [fused, separate] = [run(true), run(false)];
        fused.forEach((a, i) => {
          const b = separate[i];
          expect(ref.sameBits(new Float32Array(a.buffer), new Float32Array(b.buffer))).toBe(true);
        });
      }
    });
  }
});
