import { describe, expect, test } from "vitest";
import {
  BICUBIC,
  BILINEAR,
  BOX,
  coefficients,
  filterOf,
  HAMMING,
  LANCZOS,
  maxCount,
  NEAREST,
  RowResize,
  resize,
  rowResizePlan,
} from "../../../core/preprocess/resize.ts";
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

// The ring-buffer vertical pass (RowResize) against resize(), which keeps every row after the horizontal pass.
describe("RowResize: rows pushed one by one equal resize() on the whole image", () => {
  let seed = 12345;
  const random = (n: number) => {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    return seed % n;
  };
  const image = (width: number, height: number) => {
    const data = new Uint8Array(width * height * 3);
    // smooth plus noise, so the filters that overshoot clip somewhere
    for (let i = 0; i < data.length; i++) data[i] = ((i / 3) % width) * 7 + (random(64) - 32) * (i % 5);
    return { width, height, data };
  };
  const streamed = (
    src: ReturnType<typeof image>,
    width: number,
    height: number,
    resample: number,
    reversed: boolean,
  ) => {
    const out = new Uint8Array(width * height * 3).fill(0xaa);
    const emitted: number[] = [];
    const plan = rowResizePlan(src.width, src.height, width, height, resample);
    let pushed = 0;
    const r = new RowResize(
      plan,
      (row, y) => {
        emitted.push(y);
        pushed++;
        out.set(row, y * width * 3);
      },
      reversed,
    );
    const row = new Uint8Array(src.width * 3);
    for (let i = 0; i < src.height; i++) {
      const y = reversed ? src.height - 1 - i : i;
      row.set(src.data.subarray(y * src.width * 3, (y + 1) * src.width * 3));
      pushed = 0;
      r.push(row, y);
      expect(pushed).toBeLessThanOrEqual(plan.burst);
      row.fill(0x55); // the caller's row is reused after push
    }
    // every output row once, in the order the rows came
    expect(emitted).toEqual(Array.from({ length: height }, (_, i) => (reversed ? height - 1 - i : i)));
    return out;
  };

  test.each([NEAREST, LANCZOS, BILINEAR, BICUBIC, BOX, HAMMING])(
    "filter %i on random sizes, both directions",
    (resample) => {
      for (let n = 0; n < 12; n++) {
        const src = image(1 + random(90), 1 + random(90));
        const width = 1 + random(70);
        const height = n % 4 === 0 ? src.height : 1 + random(70); // some keep their height: no vertical pass
        const want = resize(src, width, height, resample).data;
        const at = `${src.width}x${src.height} -> ${width}x${height}`;
        expect(Buffer.from(streamed(src, width, height, resample, false)).equals(want), at).toBe(true);
        expect(Buffer.from(streamed(src, width, height, resample, true)).equals(want), `${at} bottom-up`).toBe(true);
      }
    },
  );

  test("what it holds: the most rows one output row reads, at the output width", () => {
    // 4000x3000 to 2048x1536 by Lanczos (SmolVLM's first step for a 12 MP photo): an output row reads at
    // most 12 of the 3000 rows, so 13 rows of 2048 pixels (the ring and the output row); and both passes'
    // coefficients (13 taps each, and the scratch they are computed in), the vertical pass's 13 row offsets
    expect(maxCount(coefficients(3000, 1536, filterOf(LANCZOS)))).toBe(12);
    const coefficientBytes = (1536 * 2 + 1536 * 13 + 2048 * 2 + 2048 * 13) * 4 + 2 * 13 * 8 + 13 * 4;
    expect(rowResizePlan(4000, 3000, 2048, 1536, LANCZOS).bytes).toBe(13 * 2048 * 3 + coefficientBytes);
  });
});
