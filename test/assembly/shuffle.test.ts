// Idefics3's pixel shuffle folded into the quantization of the connector's A operand (quantizeShuffled):
// the same bytes, scales, zero points and sums as quantizeRowsScalar on the shuffled matrix, which is built
// here as transformers' Idefics3Connector.pixel_shuffle builds it (view, permute, reshape, permute).
import { describe, expect, test } from "vitest";
import { BUILDS, f32, i32, i8, K16, loadEngine, put, randomF32, rng } from "./engine.ts";

// pixel_shuffle on one image's (seq, dim), step by step as the modeling code writes it.
function pixelShuffle(x: Float32Array, grid: number, dim: number, s: number): Float32Array {
  // (h, w, d) -> (h, w / s, d s): contiguous, a view
  // permute -> (w / s, h, d s); reshape -> (w / s, h / s, d s s); permute -> (h / s, w / s, d s s)
  const side = grid / s;
  const out = new Float32Array(grid * grid * dim);
  const a = (h: number, wb: number, e: number) => x[(h * grid + wb * s) * dim + e]; // (h, w / s, d s)
  for (let hb = 0; hb < side; hb++) {
    for (let wb = 0; wb < side; wb++) {
      for (let f = 0; f < dim * s * s; f++) {
        // (w / s, h / s, d s s)[wb][hb][f] = (w / s, h, d s)[wb][hb s + f / (d s)][f % (d s)]
        const h = hb * s + Math.floor(f / (dim * s));
        out[(hb * side + wb) * dim * s * s + f] = a(h, wb, f % (dim * s));
      }
    }
  }
  return out;
}

describe("quantizeShuffled", () => {
  for (const file of BUILDS) {
    test(`${file}: quantizeRowsScalar on the shuffled rows, padding included`, () => {
      const e = loadEngine(file);
      const random = rng(3);
      for (const [grid, dim, s] of [
        [4, 8, 2],
        [8, 32, 2],
        [8, 12, 4],
        [6, 5, 3],
        [32, 48, 4],
      ]) {
        const x = randomF32(random, grid * grid * dim, -4, 3);
        x.fill(0, 0, dim * s); // a zero run
        const M = (grid / s) ** 2,
          K = dim * s * s;
        const rows = Math.ceil(M / e.gemmRowTile()) * e.gemmRowTile();
        const outs = [0, 1].map(() => ({
          q: put(e, new Int8Array(rows * K16(K)).fill(0x5a)),
          sa: put(e, new Float32Array(rows).fill(7)),
          za: put(e, new Int32Array(rows).fill(7)),
          asum: put(e, new Int32Array(rows).fill(7)),
        }));
        const [got, want] = outs;
        e.quantizeShuffled(put(e, x), grid, dim, s, got.q, got.sa, got.za, got.asum);
        e.quantizeRowsScalar(put(e, pixelShuffle(x, grid, dim, s)), K, M, K, want.q, want.sa, want.za, want.asum);
        expect(i8(e, got.q, rows * K16(K))).toEqual(i8(e, want.q, rows * K16(K)));
        expect(f32(e, got.sa, rows)).toEqual(f32(e, want.sa, rows));
        expect(i32(e, got.za, rows)).toEqual(i32(e, want.za, rows));
        expect(i32(e, got.asum, rows)).toEqual(i32(e, want.asum, rows));
      }
    });
  }
});
