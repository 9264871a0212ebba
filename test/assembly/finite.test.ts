// nonFinite: the SIMD kernel and its scalar twin find the first NaN or +-Inf, in every lane position and
// in the tail after the last full vector; finite extremes (the largest float, subnormals, -0) pass.
import { describe, expect, test } from "vitest";
import { BUILDS, loadEngine, put } from "./engine.ts";

const engines = BUILDS.map(loadEngine);

describe("nonFinite", () => {
  for (const e of engines) {
    const kernels = [e.nonFinite, e.nonFiniteScalar];
    test(`${e.name}: -1 for finite data, including the extremes`, () => {
      const data = Float32Array.from([
        3.4028234663852886e38,
        -3.4028234663852886e38,
        1e-45,
        -0,
        0,
        1,
        -1,
        2 ** -126,
        7,
      ]);
      const ptr = put(e, data);
      for (const kernel of kernels) {
        for (let n = 0; n <= data.length; n++) expect(kernel(ptr, n)).toBe(-1);
      }
    });

    test(`${e.name}: the index of the first non-finite value, wherever it is`, () => {
      for (const bad of [NaN, Infinity, -Infinity, new Float32Array(new Uint32Array([0x7fc00001]).buffer)[0]]) {
        for (const n of [1, 3, 4, 5, 8, 13, 64, 67]) {
          for (let at = 0; at < n; at++) {
            const data = Float32Array.from({ length: n }, (_, i) => i * 0.25 - 3);
            data[at] = bad;
            if (at + 2 < n) data[at + 2] = NaN; // a later one does not change the answer
            const ptr = put(e, data);
            for (const kernel of kernels) expect(kernel(ptr, n)).toBe(at);
            // a count that stops before it sees none
            for (const kernel of kernels) expect(kernel(ptr, at)).toBe(-1);
          }
        }
      }
    });
  }
});
