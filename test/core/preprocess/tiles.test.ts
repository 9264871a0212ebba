// Idefics3's frames (SmolVLM-256M's processor: longest edge 2048, 512 px tiles, Lanczos) for phone-sized
// photos, made as rows arrive and a band of tiles at a time, against the whole-image path built from
// resize() (PIL's Image.resize, checked against Pillow by resize.test.ts): exif_transpose, the resize by the
// longest edge, the resize to whole tiles, the tiles cut from it and the global view resized from all of it.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { applyOrientation } from "../../../core/image/orientation.ts";
import type { ImageDecoder, RgbImage } from "../../../core/image/source.ts";
import { DEFAULT_LIMITS } from "../../../core/limits.ts";
import { preprocessFrames } from "../../../core/pipeline.ts";
import { valueTable } from "../../../core/preprocess/preprocess.ts";
import { resize } from "../../../core/preprocess/resize.ts";
import { encoderSize, longestEdgeSize, Tiles } from "../../../core/preprocess/tiles.ts";
import { normalizePreprocessing } from "../../../models/convert-folder.ts";

const root = new URL("../../../", import.meta.url).pathname;
const processor = JSON.parse(readFileSync(join(root, "test/goldens/vlm/preprocess.json"), "utf8")).processor;
const TILE = 512;
const pp = normalizePreprocessing(processor, "hf-idefics3", {
  imageSize: TILE,
  patchSize: 16,
  channels: 3,
  dim: 768,
  heads: 12,
  hidden: 3072,
  layers: 1,
  classes: 0,
  eps: 1e-6,
  distilled: false,
});

// A photo-like image: smooth gradients, edges and noise, so the Lanczos lobes clip somewhere.
function photo(width: number, height: number, seed: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  let s = seed >>> 0;
  for (let y = 0, i = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      const edge = (x >> 7) % 2 === (y >> 7) % 2 ? 60 : 0;
      data[i++] = ((x * 255) / width + edge + (s >>> 28)) & 255;
      data[i++] = ((y * 255) / height + (s >>> 29)) & 255;
      data[i++] = (((x + y) >> 3) * 7 + edge) & 255;
    }
  }
  return { width, height, data };
}

// The stored image's rows pushed as a decoder pushes them (16 at a time), EXIF `orientation` in its header.
function decoderOf(stored: RgbImage, orientation: number): ImageDecoder {
  return {
    header: { format: "jpeg", width: stored.width, height: stored.height, orientation, scales: [1] },
    memoryBytes: () => 0,
    decode: async (_scale, sink) => {
      const stride = stored.width * 3;
      for (let y = 0; y < stored.height; y += 16) {
        const n = Math.min(16, stored.height - y);
        sink(stored.data.slice(y * stride, (y + n) * stride), y, n);
      }
      return { width: stored.width, height: stored.height };
    },
  };
}

// The whole-image path: every frame's uint8 pixels.
function wholeFrames(stored: RgbImage, orientation: number): RgbImage[] {
  const oriented = applyOrientation(stored, orientation);
  const first = longestEdgeSize(oriented, pp.splitting!.longestEdge);
  const step1 = resize(oriented, first.width, first.height, pp.resample);
  const size = encoderSize(step1, TILE);
  const step2 = resize(step1, size.width, size.height, pp.resample);
  const frames: RgbImage[] = [];
  for (let top = 0; top < size.height; top += TILE) {
    for (let left = 0; left < size.width; left += TILE) {
      const data = new Uint8Array(TILE * TILE * 3);
      for (let y = 0; y < TILE; y++) {
        const from = ((top + y) * size.width + left) * 3;
        data.set(step2.data.subarray(from, from + TILE * 3), y * TILE * 3);
      }
      frames.push({ width: TILE, height: TILE, data });
    }
  }
  frames.push(resize(step2, TILE, TILE, pp.resample));
  return frames;
}

function pixelValues(frame: RgbImage, lut: Float32Array): Float32Array {
  const plane = TILE * TILE;
  const out = new Float32Array(3 * plane);
  for (let o = 0, s = 0; o < plane; o++, s += 3) {
    out[o] = lut[frame.data[s]];
    out[plane + o] = lut[256 + frame.data[s + 1]];
    out[2 * plane + o] = lut[512 + frame.data[s + 2]];
  }
  return out;
}

const same = (a: Float32Array, b: Float32Array) =>
  Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

describe("SmolVLM's frames of a 12 MP photo, streamed, equal the whole-image path", () => {
  test.each([
    ["4000x3000 (step 1 is whole tiles: read from it, no band)", 4000, 3000, 1, 3, 4],
    ["3000x2000 (3:2: step 1 is 2048x1366, resized a band at a time)", 3000, 2000, 1, 3, 4],
    ["3000x4000 (portrait)", 3000, 4000, 1, 4, 3],
    ["stored 4000x3000, EXIF orientation 6 (a phone held upright)", 4000, 3000, 6, 4, 3],
    ["stored 4000x3000, EXIF orientation 3 (rows arrive bottom-up)", 4000, 3000, 3, 3, 4],
  ])("%s", async (_name, width, height, orientation, rows, cols) => {
    const stored = photo(width, height, width + orientation);
    const frames = await preprocessFrames(pp, decoderOf(stored, orientation), DEFAULT_LIMITS, { decode: "exact" });
    expect(frames.grid).toEqual({ rows, cols, frames: rows * cols + 1 });
    const want = wholeFrames(stored, orientation);
    const lut = valueTable(pp);
    const out = new Float32Array(3 * TILE * TILE);
    for (let i = 0; i < frames.grid.frames; i++) {
      frames.write(i, out);
      expect(same(out, pixelValues(want[i], lut)), `frame ${i}`).toBe(true);
    }
    // split=false: the global view alone, the same bytes
    const global = await preprocessFrames(pp, decoderOf(stored, orientation), DEFAULT_LIMITS, {
      decode: "exact",
      split: false,
    });
    expect(global.grid).toEqual({ rows: 0, cols: 0, frames: 1 });
    global.write(0, out);
    expect(same(out, pixelValues(want.at(-1)!, lut))).toBe(true);
  });
});

describe("Tiles", () => {
  // 1000x700 to 1024x1024 (upscaled: one row of step 1 can complete several of step 2), 2x2 tiles
  const image = photo(1000, 700, 3);
  const splitting = { ...pp, splitting: pp.splitting! };

  test("the frames are written in order, each once", () => {
    const tiles = new Tiles(image, splitting);
    const out = new Float32Array(3 * TILE * TILE);
    expect(tiles.grid).toEqual({ rows: 2, cols: 2, frames: 5 });
    expect(() => tiles.write(1, out)).toThrow(/in order, 0 next/);
    tiles.write(0, out);
    expect(() => tiles.write(0, out)).toThrow(/in order, 1 next/);
  });

  test("an upscale whose pushes complete several rows keeps the band intact", () => {
    const size = encoderSize(image, TILE);
    expect(size).toEqual({ width: 1024, height: 1024 });
    const step2 = resize(image, size.width, size.height, pp.resample);
    const lut = valueTable(pp);
    const tiles = new Tiles(image, splitting);
    const out = new Float32Array(3 * TILE * TILE);
    for (let i = 0; i < 4; i++) {
      tiles.write(i, out);
      const data = new Uint8Array(TILE * TILE * 3);
      const top = Math.floor(i / 2) * TILE;
      const left = (i % 2) * TILE;
      for (let y = 0; y < TILE; y++) {
        const from = ((top + y) * size.width + left) * 3;
        data.set(step2.data.subarray(from, from + TILE * 3), y * TILE * 3);
      }
      expect(same(out, pixelValues({ width: TILE, height: TILE, data }, lut)), `tile ${i}`).toBe(true);
    }
    tiles.write(4, out);
    expect(same(out, pixelValues(resize(step2, TILE, TILE, pp.resample), lut))).toBe(true);
  });

  test("what the frames hold beside step 1's image: the global view, and a band of 2048 columns unless step 1 is whole tiles", () => {
    const global = TILE * TILE * 3;
    // a 12 MP 4:3 photo: 2048x1536 is whole tiles already, the tiles are read from it
    const whole = Tiles.memoryBytes({ width: 2048, height: 1536 }, pp.splitting!, pp.resample);
    expect(whole).toBeGreaterThan(global);
    expect(whole).toBeLessThan(global + (1 << 20));
    // a 24 MP 3:2 photo: 2048x1366 up to 2048x1536, made a band of 512 rows (and a push's burst) at a time
    const banded = Tiles.memoryBytes({ width: 2048, height: 1366 }, pp.splitting!, pp.resample);
    const band = 512 * 2048 * 3;
    expect(banded).toBeGreaterThan(band + global);
    expect(banded).toBeLessThan(band + global + (1 << 20));
    expect(banded).toBeLessThan(2048 * 1536 * 3); // the whole step-2 image it replaced: 9 MiB
    // the global view alone: no band
    expect(Tiles.memoryBytes({ width: 2048, height: 1366 }, pp.splitting!, pp.resample, false)).toBeLessThan(
      global + (1 << 20),
    );
  });
});
