import { describe, expect, test } from "vitest";
import { BICUBIC, BILINEAR, BOX, HAMMING, LANCZOS, NEAREST, resize } from "../../../core/preprocess/resize.ts";
import { decodedPhoto, goldenBytes, goldens, sha256 } from "../image/goldens.ts";

const rgb = (width: number, height: number, values: number[]) => ({ width, height, data: new Uint8Array(values) });
const gray = (width: number, values: number[]) =>
  rgb(
    width,
    1,
    values.flatMap((v) => [v, v, v]),
  );
const red = (image: { data: Uint8Array }) => Array.from(image.data.filter((_, i) => i % 3 === 0));

describe("resize by hand", () => {
  test("2x1 -> 1x1 bilinear averages, rounding half up", () => {
    // Both taps weigh 0.5 = 2^21 in 22-bit fixed point; the accumulator starts at 2^21.
    expect(Array.from(resize(rgb(2, 1, [10, 20, 30, 50, 61, 71]), 1, 1, BILINEAR).data)).toEqual([30, 41, 51]);
  });

  test("2x1 -> 4x1 bilinear: edge outputs read one pixel, inner ones 3/4 + 1/4", () => {
    expect(red(resize(gray(2, [0, 200]), 4, 1, BILINEAR))).toEqual([0, 50, 150, 200]);
  });

  test("4x1 -> 2x1 box takes pairwise means; 3x1 -> 1x1 box the mean of three", () => {
    expect(red(resize(gray(4, [0, 10, 100, 201]), 2, 1, BOX))).toEqual([5, 151]);
    expect(red(resize(gray(3, [0, 10, 110]), 1, 1, BOX))).toEqual([40]);
  });

  test("vertical pass alone: 1x2 -> 1x1 bilinear", () => {
    expect(Array.from(resize(rgb(1, 2, [0, 100, 255, 3, 101, 0]), 1, 1, BILINEAR).data)).toEqual([2, 101, 128]);
  });

  test("bicubic overshoot is clipped to 0..255, not wrapped", () => {
    // Upscaling a step with a = -0.5 rings to about -17 and 272 next to the edge; wrapped values
    // would break the staircase's order.
    const out = red(resize(gray(4, [0, 0, 255, 255]), 8, 1, BICUBIC));
    expect(Math.min(...out)).toBe(0);
    expect(Math.max(...out)).toBe(255);
    expect(out).toEqual([...out].sort((a, b) => a - b));
  });

  test("nearest samples pixel centers", () => {
    expect(red(resize(gray(5, [0, 1, 2, 3, 4]), 2, 1, NEAREST))).toEqual([1, 3]);
    expect(red(resize(gray(2, [7, 9]), 5, 1, NEAREST))).toEqual([7, 7, 9, 9, 9]);
  });

  test.each([NEAREST, LANCZOS, BILINEAR, BICUBIC, BOX, HAMMING])(
    "filter %i keeps a constant image constant",
    (filter) => {
      const flat = { width: 37, height: 23, data: new Uint8Array(37 * 23 * 3).fill(77) };
      for (const [w, h] of [
        [224, 224],
        [5, 3],
        [37, 100],
        [1, 1],
      ]) {
        expect(resize(flat, w, h, filter).data.every((v) => v === 77)).toBe(true);
      }
    },
  );

  test("same size is a copy", () => {
    const image = gray(3, [1, 2, 3]);
    const out = resize(image, 3, 1, BICUBIC);
    expect(out.data).not.toBe(image.data);
    expect(Array.from(out.data)).toEqual(Array.from(image.data));
  });
});

describe("resize against PIL's Image.resize (goldens)", () => {
  // Cases without a crop store exactly PIL's resize output.
  const cases = goldens.cases.filter((c) => !goldens.configs[c.config].doCenterCrop);
  test.each(cases.map((c) => [c.photo, c.config, c] as const))("%s %s is bit-exact", (_photo, config, c) => {
    const input = decodedPhoto(c.photo);
    expect(sha256(input.data), "jpeg-js decodes the photo as when the goldens were made").toBe(c.input.sha256);
    const pp = goldens.configs[config];
    const { width, height } = c.output;
    const out = resize(input, width, height, pp.resample);
    const expected = goldenBytes(c.file);
    expect(out.data.length).toBe(expected.length);
    let differing = 0;
    for (let i = 0; i < expected.length; i++) if (out.data[i] !== expected[i]) differing++;
    expect(differing, `resample ${pp.resample} to ${width}x${height}: values differing from PIL`).toBe(0);
  });
});
