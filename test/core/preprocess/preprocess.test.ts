import { describe, expect, test } from "vitest";
import type { Preprocessing } from "../../../core/bundle/format.ts";
import { decodeJpeg } from "../../../core/image/jpeg/fallback.ts";
import { outputSize, preprocess, resizedSize, valueTable } from "../../../core/preprocess/preprocess.ts";
import { decodedPhoto, fixture, goldenBytes, goldens, maxAbsDiff, sha256, tensorFromTable } from "../image/goldens.ts";

const vit = goldens.configs.vit;
const deit = goldens.configs.deit;
const short256 = goldens.configs.short256;

function run(image: Parameters<typeof preprocess>[0], pp: Preprocessing): Float32Array {
  const { height, width } = outputSize(pp, resizedSize(pp, image));
  const out = new Float32Array(3 * height * width);
  expect(preprocess(image, pp, out)).toEqual({ height, width });
  return out;
}

describe("sizes", () => {
  test("get_resize_output_image_size: short side to 256, long side truncated", () => {
    expect(resizedSize(short256, { width: 451, height: 300 })).toEqual({ width: 384, height: 256 }); // 384.85
    expect(resizedSize(short256, { width: 427, height: 640 })).toEqual({ width: 256, height: 383 }); // 383.70
    expect(resizedSize(short256, { width: 37, height: 23 })).toEqual({ width: 411, height: 256 }); // 411.83
    expect(resizedSize(short256, { width: 512, height: 512 })).toEqual({ width: 256, height: 256 });
    expect(resizedSize(vit, { width: 451, height: 300 })).toEqual({ width: 224, height: 224 });
  });

  test("outputSize is the crop, the fixed resize, or else depends on the image", () => {
    expect(outputSize(vit)).toEqual({ height: 224, width: 224 });
    expect(outputSize(deit)).toEqual({ height: 224, width: 224 });
    const noCrop = { ...short256, doCenterCrop: false, cropSize: null };
    expect(() => outputSize(noCrop)).toThrow(RangeError);
    expect(outputSize(noCrop, { width: 451, height: 300 })).toEqual({ height: 256, width: 384 });
  });

  test("a wrongly sized output buffer is refused", () => {
    expect(() => preprocess(decodedPhoto("cat-tiny-37x23.jpg"), vit, new Float32Array(3 * 224 * 223))).toThrow(
      RangeError,
    );
  });
});

describe("rescale and normalize in transformers' precision", () => {
  test.each(Object.keys(goldens.tables))("%s: every uint8 value in every channel equals numpy's float32", (name) => {
    const ours = valueTable(goldens.configs[name]);
    const theirs = goldens.tables[name];
    for (let c = 0; c < 3; c++) {
      for (let v = 0; v < 256; v++) expect(ours[c * 256 + v]).toBe(Math.fround(theirs[c][v]));
    }
  });
});

describe("preprocess against PIL + transformers (goldens, same decoded pixels)", () => {
  test.each(goldens.cases.map((c) => [c.photo, c.config, c] as const))("%s %s", (_photo, config, c) => {
    const input = decodedPhoto(c.photo);
    expect(sha256(input.data), "jpeg-js decodes the photo as when the goldens were made").toBe(c.input.sha256);
    const out = run(input, goldens.configs[config]);
    const expected = tensorFromTable(goldenBytes(c.file), c.output.height, c.output.width, goldens.tables[config]);
    const { max } = maxAbsDiff(out, expected);
    expect(max).toBeLessThanOrEqual(1 / 255);
    // Bit-exact: the same float32 pixel_values numpy computed, hashed.
    expect(sha256(out)).toBe(c.sha256);
  });
});

describe("end to end against PIL's own decoder", () => {
  // jpeg-js + libjpeg's colour steps vs libjpeg-turbo differ only in IDCT rounding (up to 3 levels on a
  // pixel, 0.06-0.17 on average over these photos).
  const MEAN_LEVELS = 0.25;
  const MAX_LEVELS = 3;
  test.each(goldens.endToEnd.map((e) => [e.photo, e] as const))("%s: vit pixel_values", (photo, e) => {
    const out = run(decodeJpeg(fixture(photo)), goldens.configs[e.config]);
    const expected = tensorFromTable(goldenBytes(e.file), 224, 224, goldens.tables[e.config]);
    const levels = 255 * vit.imageStd[0]; // one uint8 level = 1 / (255 * std) in pixel_values
    const { max, mean } = maxAbsDiff(out, expected);
    console.log(`${photo}: mean |d| ${(mean * levels).toFixed(3)} levels, max ${(max * levels).toFixed(1)} levels`);
    expect(mean * levels).toBeLessThan(MEAN_LEVELS);
    expect(max * levels).toBeLessThan(MAX_LEVELS + 0.01);
  });
});

test("throughput on a 2 MP photo (printed, not asserted)", () => {
  const bytes = fixture("retina-restart-markers.jpg");
  const time = (fn: () => void, runs = 3) => {
    fn();
    const start = performance.now();
    for (let i = 0; i < runs; i++) fn();
    return (performance.now() - start) / runs;
  };
  const image = decodeJpeg(bytes);
  const out = new Float32Array(3 * 224 * 224);
  const decodeMs = time(() => decodeJpeg(bytes));
  const vitMs = time(() => preprocess(image, vit, out));
  const deitMs = time(() => preprocess(image, deit, out));
  const mp = (image.width * image.height) / 1e6;
  console.log(
    `${image.width}x${image.height} (${mp.toFixed(2)} MP): decode ${decodeMs.toFixed(0)} ms, ` +
      `preprocess vit ${vitMs.toFixed(1)} ms (${((mp / vitMs) * 1000).toFixed(0)} MP/s), deit ${deitMs.toFixed(1)} ms`,
  );
  expect(out.some((v) => v !== 0)).toBe(true);
});
