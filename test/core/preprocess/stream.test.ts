// The streaming preprocessor against the whole-image path (exif_transpose, then PIL's resize, crop and
// normalize, itself checked against Pillow + transformers by preprocess.test.ts): bit-exact on the golden
// photos and on random images in every orientation, filter and direction of scaling.

import { readFileSync } from "node:fs";
import { describe, expect, test } from "vitest";
import type { Preprocessing } from "../../../core/bundle/format.ts";
import { decodeJpegStored, readJpegInfo } from "../../../core/image/jpeg/fallback.ts";
import type { RgbImage } from "../../../core/image/source.ts";
import { installDecodeKernels } from "../../../core/image/kernels.ts";
import { applyOrientation } from "../../../core/image/orientation.ts";
import { outputSize, preprocess, resizedSize } from "../../../core/preprocess/preprocess.ts";
import { EdgevitError } from "../../../core/errors.ts";
import { chooseScale, StreamingPreprocessor } from "../../../core/preprocess/stream.ts";
import { fixture, goldens, sha256 } from "../image/goldens.ts";

// Runs fn with the decode kernels uninstalled, then puts them back.
const kernelModule = new WebAssembly.Module(readFileSync(new URL("../../../build/decode.wasm", import.meta.url)));
function withoutKernels(fn: () => void): void {
  installDecodeKernels(null);
  try {
    fn();
  } finally {
    installDecodeKernels(kernelModule);
  }
}

// Pushes the stored image's rows in uneven batches, as decoders do (one row, MCU rows, all at once).
function streamed(stored: RgbImage, orientation: number, pp: Preprocessing, batches = [1, 7, 16]): Float32Array {
  const p = new StreamingPreprocessor(pp, stored, orientation);
  const stride = stored.width * 3;
  const scratch = new Uint8Array(16 * stride);
  for (let y = 0, i = 0; y < stored.height; i++) {
    const n = Math.min(batches[i % batches.length], stored.height - y);
    scratch.set(stored.data.subarray(y * stride, (y + n) * stride));
    p.sink(scratch, y, n);
    scratch.fill(0xaa); // the buffer is reused after the call: nothing may be read from it later
    y += n;
  }
  const { height, width } = outputSize(pp, p.oriented);
  const out = new Float32Array(3 * height * width);
  expect(p.finish(out)).toEqual({ height, width });
  return out;
}

function whole(stored: RgbImage, orientation: number, pp: Preprocessing): Float32Array {
  const image = applyOrientation(stored, orientation);
  const { height, width } = outputSize(pp, image);
  const out = new Float32Array(3 * height * width);
  preprocess(image, pp, out);
  return out;
}

describe("the golden photos (PIL + transformers pixel_values, bit-exact)", () => {
  test.each(goldens.cases.map((c) => [c.photo, c.config, c] as const))("%s %s", (photo, config, c) => {
    const bytes = fixture(photo);
    const info = readJpegInfo(bytes);
    const stored = decodeJpegStored(bytes);
    expect(sha256(streamed(stored, info.orientation, goldens.configs[config]))).toBe(c.sha256);
  });
});

function randomImage(width: number, height: number, seed: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  let s = seed >>> 0;
  for (let i = 0; i < data.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    // Smooth plus noise, so both over- and undershooting filters clip somewhere.
    data[i] = (((i / 3) % width) * 5 + (s >>> 26)) & 255;
  }
  return { width, height, data };
}

describe("random images: streamed equals whole-image, every orientation", () => {
  const base = goldens.configs.vit;
  const filters = { nearest: 0, lanczos: 1, bilinear: 2, bicubic: 3, box: 4, hamming: 5 };
  const sizes: [number, number][] = [
    [300, 171], // down in both
    [97, 460], // down, tall
    [37, 23], // up in both
    [224, 500], // one side already at the target width
    [1, 1],
  ];
  for (const [fname, resample] of Object.entries(filters)) {
    test.each(sizes)(`${fname}: %ix%i`, (w, h) => {
      const stored = randomImage(w, h, w * 31 + h);
      for (let o = 1; o <= 8; o++) {
        for (const pp of [
          { ...base, resample },
          { ...goldens.configs.deit, resample },
          { ...goldens.configs.short256, resample },
        ]) {
          const want = sha256(whole(stored, o, pp));
          expect(sha256(streamed(stored, o, pp)), `orientation ${o}`).toBe(want);
          // The resize passes in JavaScript, as without the decode kernels.
          withoutKernels(() => expect(sha256(streamed(stored, o, pp)), `orientation ${o}, JavaScript`).toBe(want));
        }
      }
    });
  }

  test("identity sizes and no resize step", () => {
    const stored = randomImage(224, 160, 5);
    for (let o = 1; o <= 8; o++) {
      const fixed = { ...base, size: { height: 224, width: 160 } };
      expect(sha256(streamed(stored, o, fixed))).toBe(sha256(whole(stored, o, fixed)));
      const none = { ...base, doResize: false };
      expect(sha256(streamed(stored, o, none))).toBe(sha256(whole(stored, o, none)));
    }
  });
});

describe("decode scale", () => {
  const header = (width: number, height: number, orientation = 1) => ({
    format: "jpeg" as const,
    width,
    height,
    orientation,
    scales: [1, 2, 4, 8],
  });
  test("fast: the largest scale keeping at least twice the resize target", () => {
    const vit = goldens.configs.vit; // 224x224
    expect(chooseScale(header(4000, 3000), vit, "fast")).toBe(4); // 1000x750; 1/8 = 500x375 < 448
    expect(chooseScale(header(4032, 3024), vit, "fast")).toBe(4);
    expect(chooseScale(header(8000, 6000), vit, "fast")).toBe(8);
    expect(chooseScale(header(800, 600), vit, "fast")).toBe(1); // 400x300 < 448
    expect(chooseScale(header(4000, 3000), vit, "exact")).toBe(1);
    // shortest edge 256: the target follows the scaled image's aspect
    const short = goldens.configs.short256;
    expect(resizedSize(short, { width: 500, height: 375 })).toEqual({ width: 341, height: 256 });
    expect(chooseScale(header(4000, 3000), short, "fast")).toBe(4);
    expect(chooseScale(header(4000, 400, 6), vit, "fast")).toBe(1);
  });
});

test("an aspect ratio too extreme to resize within memory is image_too_large, before any row", () => {
  const strip = () => new StreamingPreprocessor(goldens.configs.short256, { width: 1, height: 30000 }, 1);
  expect(strip).toThrow(EdgevitError);
  expect(strip).toThrow(/aspect ratio is too extreme/);
  // a fixed 224x224 resize of the same height keeps only the rows one output row reads (537 of 30000)
  expect(() => new StreamingPreprocessor(goldens.configs.vit, { width: 10, height: 30000 }, 1)).not.toThrow();
  expect(StreamingPreprocessor.memoryBytes(goldens.configs.vit, { width: 10, height: 30000 }, 1)).toBeLessThan(1 << 20);
  expect(() => new StreamingPreprocessor(goldens.configs.vit, { width: 4000, height: 6000 }, 6)).not.toThrow();
  // one output row reading all of 3000 rows of 2048 columns: a ring of 18.4 MB
  const flat = { ...goldens.configs.vit, size: { height: 1, width: 2048 } };
  expect(() => new StreamingPreprocessor(flat, { width: 2048, height: 3000 }, 1)).toThrow(
    /aspect ratio is too extreme/,
  );
});

test("finish frees the preprocessor's picture and its resize buffers at once, in every orientation", () => {
  // What finish lets go is detached (ArrayBuffer.prototype.transfer(0), core/buffers.ts's freeNow), not left
  // for the collector: the bytes it frees cover the resized picture and more (the resize's own buffers).
  const transfer = Object.getOwnPropertyDescriptor(ArrayBuffer.prototype, "transfer")!;
  const pp = goldens.configs.vit;
  // 300x171 in every orientation; 400x224 transposed, whose T (224 wide) has no horizontal pass at 224: the
  // vertical pass alone, down each column.
  expect(resizedSize(pp, { width: 224, height: 400 }).width).toBe(224);
  const cases = [
    { stored: randomImage(300, 171, 11), orientations: [1, 2, 3, 4, 5, 6, 7, 8] },
    { stored: randomImage(400, 224, 12), orientations: [5, 6, 7, 8] },
  ];
  for (const { stored, orientations } of cases) {
    for (const o of orientations) {
      let freed = 0;
      Object.defineProperty(ArrayBuffer.prototype, "transfer", {
        ...transfer,
        value(this: ArrayBuffer, length?: number) {
          if (length === 0) freed += this.byteLength;
          return transfer.value.call(this, length);
        },
      });
      let out: Float32Array;
      try {
        out = streamed(stored, o, pp);
      } finally {
        Object.defineProperty(ArrayBuffer.prototype, "transfer", transfer);
      }
      const { width, height } = stored;
      const resized = resizedSize(pp, o >= 5 ? { width: height, height: width } : { width, height });
      expect(freed, `${width}x${height}, orientation ${o}`).toBeGreaterThan(resized.width * resized.height * 3);
      expect(sha256(out)).toBe(sha256(whole(stored, o, pp)));
    }
  }
});
