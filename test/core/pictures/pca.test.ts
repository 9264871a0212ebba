// PCA of patch tokens against data built on known axes, and the PNG encoder against node:zlib.

import { describe, expect, test } from "vitest";
import { crc32 as zlibCrc32, inflateSync } from "node:zlib";
import { patchPicture, pca, pcaColors } from "../../../core/pictures/pca.ts";
import { encodePng, PNG_SIGNATURE } from "../../../core/pictures/png.ts";

// Orthonormal vectors by Gram-Schmidt from fixed, generic ones.
function orthonormal(count: number, dim: number): Float64Array[] {
  const basis: Float64Array[] = [];
  for (let c = 0; c < count; c++) {
    const v = Float64Array.from({ length: dim }, (_, i) => Math.sin(1 + 3.7 * c + 1.3 * i * (c + 1)));
    for (const b of basis) {
      const d = v.reduce((s, x, i) => s + x * b[i], 0);
      for (let i = 0; i < dim; i++) v[i] -= d * b[i];
    }
    const norm = Math.hypot(...v);
    basis.push(v.map((x) => x / norm));
  }
  return basis;
}

// Every combination of LEVELS on three axes (so the coordinates are uncorrelated and centered), scaled
// by SIGMA per axis, along orthonormal axes in `dim` dimensions, plus a constant offset: 64 rows.
const LEVELS = [-3, -1, 0, 4]; // mean 0, sum of squares 26; the largest magnitude is positive
const SIGMA = [3, 2, 1];
function axesData(dim: number) {
  const axes = orthonormal(3, dim);
  const coords: number[][] = [];
  for (const a of LEVELS)
    for (const b of LEVELS) for (const c of LEVELS) coords.push([a * SIGMA[0], b * SIGMA[1], c * SIGMA[2]]);
  const x = new Float64Array(coords.length * dim);
  coords.forEach((t, r) => {
    for (let d = 0; d < dim; d++)
      x[r * dim + d] = 5 - 0.25 * d + t[0] * axes[0][d] + t[1] * axes[1][d] + t[2] * axes[2][d];
  });
  return { x, rows: coords.length, axes, coords };
}

describe("pca", () => {
  // dim 5 < 64 rows goes through the covariance, dim 80 > 64 rows through the Gram matrix.
  test.each([5, 80])("recovers the axes, variances and projections (dim %i)", (dim) => {
    const { x, rows, axes, coords } = axesData(dim);
    const { components, variance, projections } = pca(x, rows, dim);
    for (let c = 0; c < 3; c++) {
      // Each level appears 16 times on each axis: variance = SIGMA^2 * 16 * 26 / (rows - 1).
      expect(variance[c]).toBeCloseTo((SIGMA[c] ** 2 * 16 * 26) / (rows - 1), 9);
      for (let d = 0; d < dim; d++) expect(components[c][d]).toBeCloseTo(axes[c][d], 9);
      for (let r = 0; r < rows; r++) expect(projections[r * 3 + c]).toBeCloseTo(coords[r][c], 7);
    }
  });

  test("is deterministic", () => {
    const { x, rows } = axesData(80);
    const first = pca(x, rows, 80);
    const second = pca(Float64Array.from(x), rows, 80);
    expect(Array.from(second.projections)).toEqual(Array.from(first.projections));
    expect(Array.from(second.variance)).toEqual(Array.from(first.variance));
    expect(second.components.map((v) => Array.from(v))).toEqual(first.components.map((v) => Array.from(v)));
  });

  test("sign: the largest-magnitude projection of each component is positive", () => {
    // One axis: values 1, 2, 3, 10 center to -3, -2, -1, 6 along +axis; their negation centers to 3, 2, 1, -6
    // along +axis, so the component flips to -axis and the projections are again -3, -2, -1, 6.
    const axis = orthonormal(1, 4)[0];
    for (const [values, sign] of [
      [[1, 2, 3, 10], 1],
      [[-1, -2, -3, -10], -1],
    ] as const) {
      const x = values.flatMap((v) => Array.from(axis, (a) => v * a));
      const { components, projections, variance } = pca(x, 4, 4);
      for (let r = 0; r < 4; r++) expect(projections[r * 3]).toBeCloseTo([-3, -2, -1, 6][r], 9);
      for (let d = 0; d < 4; d++) expect(components[0][d]).toBeCloseTo(sign * axis[d], 9);
      expect(variance[0]).toBeCloseTo((9 + 4 + 1 + 36) / 3, 9);
      // Rank 1: the other two components are zero.
      expect(Array.from(variance.subarray(1))).toEqual([0, 0]);
      for (let r = 0; r < 4; r++) expect([projections[r * 3 + 1], projections[r * 3 + 2]]).toEqual([0, 0]);
    }
  });

  test("colours: each component min-max scaled to 0..255", () => {
    const { x, rows, coords } = axesData(5);
    const colors = pcaColors(x, rows, 5);
    // Levels -3, -1, 0, 4 over the range 7: (t + 3) / 7 * 255 -> 0, 73, 109, 255 on every axis.
    const byLevel = new Map([
      [-3, 0],
      [-1, 73],
      [0, 109],
      [4, 255],
    ]);
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < 3; c++) expect(colors[r * 3 + c]).toBe(byLevel.get(coords[r][c] / SIGMA[c]));
    }
  });

  test("picture: prefix tokens dropped, patches in row-major order, nearest-neighbour upscale", () => {
    // 2x2 grid, dim 5, one prefix token that would dominate the PCA if it were kept.
    const { x } = axesData(5);
    const patches = x.subarray(0, 4 * 5);
    const states = new Float32Array(5 * 5);
    states.fill(1e6, 0, 5);
    states.set(patches, 5);
    const colors = pcaColors(Float32Array.from(patches), 4, 5);
    const size = 5;
    const rgb = patchPicture(states, 5, 2, size);
    expect(rgb).toHaveLength(size * size * 3);
    // Rows and columns 0..2 map to patch 0 of the grid, 3..4 to patch 1 (floor(i * 2 / 5)).
    const cell = [0, 0, 0, 1, 1];
    for (let y = 0; y < size; y++) {
      for (let xx = 0; xx < size; xx++) {
        const patch = cell[y] * 2 + cell[xx];
        expect(Array.from(rgb.subarray((y * size + xx) * 3, (y * size + xx) * 3 + 3))).toEqual(
          Array.from(colors.subarray(patch * 3, patch * 3 + 3)),
        );
      }
    }
  });
});

describe("encodePng", () => {
  test("round trip through node:zlib: signature, IHDR, chunk CRCs, pixels", async () => {
    const width = 7;
    const height = 5;
    const rgb = Uint8Array.from({ length: width * height * 3 }, (_, i) => (i * 37 + 11) & 0xff);
    const png = await encodePng(rgb, width, height);
    expect(Array.from(png.subarray(0, 8))).toEqual(Array.from(PNG_SIGNATURE));
    expect(Array.from(png.subarray(0, 8))).toEqual([137, 80, 78, 71, 13, 10, 26, 10]);

    const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
    const chunks: { type: string; data: Uint8Array }[] = [];
    for (let at = 8; at < png.length; ) {
      const length = view.getUint32(at);
      const type = new TextDecoder().decode(png.subarray(at + 4, at + 8));
      const data = png.subarray(at + 8, at + 8 + length);
      expect(view.getUint32(at + 8 + length)).toBe(zlibCrc32(png.subarray(at + 4, at + 8 + length)));
      chunks.push({ type, data });
      at += 12 + length;
    }
    expect(chunks.map((c) => c.type)).toEqual(["IHDR", "IDAT", "IEND"]);
    const ihdr = new DataView(chunks[0].data.buffer, chunks[0].data.byteOffset, 13);
    expect([ihdr.getUint32(0), ihdr.getUint32(4)]).toEqual([width, height]);
    expect(Array.from(chunks[0].data.subarray(8))).toEqual([8, 2, 0, 0, 0]);
    expect(chunks[2].data).toHaveLength(0);

    const raw = inflateSync(chunks[1].data);
    expect(raw).toHaveLength(height * (width * 3 + 1));
    for (let y = 0; y < height; y++) {
      expect(raw[y * (width * 3 + 1)]).toBe(0);
      expect(Array.from(raw.subarray(y * (width * 3 + 1) + 1, (y + 1) * (width * 3 + 1)))).toEqual(
        Array.from(rgb.subarray(y * width * 3, (y + 1) * width * 3)),
      );
    }
  });

  test("refuses a buffer of the wrong size", async () => {
    await expect(encodePng(new Uint8Array(10), 2, 2)).rejects.toThrow(RangeError);
  });
});
