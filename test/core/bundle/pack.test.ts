// core/bundle/pack.ts against hand-computed vectors: the 7-bit symmetric quantization (ties away from zero),
// the row sums, the padding, and the interleaved byte layout of docs/ARCHITECTURE.md.
import { expect, test } from "vitest";
import { K16, N4, packLinear, packedIndex, packedSizes } from "../../../core/bundle/pack.ts";

test("sizes: K padded to 16, N to 4", () => {
  expect([K16(1), K16(16), K16(17), N4(1), N4(4), N4(5)]).toEqual([16, 16, 32, 4, 4, 8]);
  expect(packedSizes(5, 20)).toEqual({ weight: 8 * 32, scale: 32, wsum: 32, bias: 32 });
});

test("quantization: s = max|w| / 63, q = round(w / s) ties away from zero, stored q + 64", () => {
  // Row maxima 63/64 and 63/32 make the scales 1/64 and 1/32 exactly, so w / s is exact.
  const W = new Float32Array([
    0.5,
    -0.5 / 64,
    1.5 / 64,
    -63 / 64, // q = 32, -0.5 -> -1, 1.5 -> 2, -63
    0,
    0,
    0,
    0, // all zero: s = 0, q = 0
    63 / 32,
    -1.5 / 32,
    0.5 / 32,
    2.5 / 32, // q = 63, -1.5 -> -2, 0.5 -> 1, 2.5 -> 3
  ]);
  const p = packLinear(W, new Float32Array([1, 2, 3]), 3, 4);
  expect(Array.from(p.scale)).toEqual([1 / 64, 0, 1 / 32, 0]);
  expect(Array.from(p.wsum)).toEqual([32 - 1 + 2 - 63, 0, 63 - 2 + 1 + 3, 0]);
  expect(Array.from(p.bias)).toEqual([1, 2, 3, 0]);
  const expected = new Uint8Array(64).fill(64);
  expected.set([96, 63, 66, 1], 0);
  expected.set([127, 62, 65, 67], 32);
  expect(p.weight).toEqual(expected);
});

test("layout: [N4/4][K16/16][4][16], rows n..n+3 interleaved in 16-byte K chunks", () => {
  // N = 5, K = 20: two row groups, two K chunks each.
  expect(packedIndex(0, 0, 20)).toBe(0);
  expect(packedIndex(1, 0, 20)).toBe(16);
  expect(packedIndex(0, 16, 20)).toBe(64);
  expect(packedIndex(3, 19, 20)).toBe(64 + 48 + 3);
  expect(packedIndex(4, 17, 20)).toBe(3 * 64 + 1);
  const W = new Float32Array(5 * 20);
  W[4 * 20 + 17] = -1; // q = -63 in row 4, the only value of its row
  W[1 * 20 + 0] = 1;
  const p = packLinear(W, null, 5, 20);
  expect(p.weight.length).toBe(8 * 32);
  expect(p.weight[3 * 64 + 1]).toBe(1);
  expect(p.weight[16]).toBe(127);
  expect(p.weight.filter((b) => b !== 64).length).toBe(2);
  expect(Array.from(p.wsum)).toEqual([0, 63, 0, 0, -63, 0, 0, 0]);
});
