import { describe, expect, test } from "vitest";
import { BICUBIC, BILINEAR, BOX, HAMMING, LANCZOS, NEAREST, resize } from "../../../core/image/resize.ts";
import { fancyUpsampleChroma, ycbcrToRgb } from "../../../core/image/color.ts";
import { decodedPhoto, goldenBytes, goldens, sha256 } from "./goldens.ts";

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

describe("libjpeg colour steps by hand", () => {
  test("YCbCr -> RGB rounds as jdcolor.c", () => {
    const data = new Uint8Array([128, 128, 128, 100, 128, 228, 0, 255, 0, 255, 0, 255]);
    ycbcrToRgb(data);
    expect(Array.from(data)).toEqual([128, 128, 128, 240, 29, 100, 0, 48, 225, 255, 208, 28]);
  });

  // One chroma channel replicated as jpeg-js returns it; Y and the other chroma channel are zero.
  function replicated(plane: number[][], hs: number, vs: number, width: number, height: number): Uint8Array {
    const data = new Uint8Array(width * height * 3);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) data[(y * width + x) * 3 + 1] = plane[Math.floor(y / vs)][Math.floor(x / hs)];
    }
    return data;
  }
  const cb = (data: Uint8Array, width: number, y: number) =>
    Array.from({ length: width }, (_, x) => data[(y * width + x) * 3 + 1]);

  test("h2v1: 3/4 nearer + 1/4 farther, biases 1 and 2, edges repeat", () => {
    const data = replicated([[0, 100, 200]], 2, 1, 6, 1);
    fancyUpsampleChroma(data, 6, 1, 2, 1);
    expect(cb(data, 6, 0)).toEqual([0, 25, 75, 125, 175, 200]);
  });

  test("h2v2: column sums 3:1 with the row above/below, then 3:1 across, biases 8 and 7", () => {
    const data = replicated(
      [
        [0, 100, 200],
        [40, 40, 40],
      ],
      2,
      2,
      6,
      4,
    );
    fancyUpsampleChroma(data, 6, 4, 2, 2);
    expect(cb(data, 6, 0)).toEqual([0, 25, 75, 125, 175, 200]);
    expect(cb(data, 6, 1)).toEqual([10, 29, 66, 104, 141, 160]);
  });

  test("h1v2 with an odd height: biases 1 and 2, the top row repeats itself", () => {
    const data = replicated([[0], [100]], 1, 2, 1, 3);
    fancyUpsampleChroma(data, 1, 3, 1, 2);
    expect(cb(data, 1, 0).concat(cb(data, 1, 1), cb(data, 1, 2))).toEqual([0, 25, 75]);
  });
});
