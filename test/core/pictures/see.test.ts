// The pieces behind "what the model sees", against values computed by hand: the attention rollout reference
// (Abnar & Zuidema 2020) the engine's running product is tested against, the heat-map ramp and blending, the APNG container (read back with node:zlib), and the
// preprocessed image recovered from pixel_values.

import { describe, expect, test } from "vitest";
import { crc32 as zlibCrc32, inflateSync } from "node:zlib";
import { heatMap, minMax, rampColor, resizeNearest } from "../../../core/pictures/heatmap.ts";
import { encodeApng, encodeFrames, PNG_SIGNATURE } from "../../../core/pictures/png.ts";
import { rollout } from "./rollout-reference.ts";
import { pixelsToRgb } from "../../../core/pictures/see.ts";
import { valueTable } from "../../../core/preprocess/preprocess.ts";
import type { Preprocessing } from "../../../core/bundle/format.ts";

describe("attention rollout", () => {
  // A1 = [[0.6, 0.4], [0.2, 0.8]] -> A1' = 0.5 A1 + 0.5 I = [[0.8, 0.2], [0.1, 0.9]];
  // A2 = [[0, 1], [1, 0]] -> A2' = [[0.5, 0.5], [0.5, 0.5]]; R = A2' A1' = [[0.45, 0.55], [0.45, 0.55]]
  // (the other order, A1' A2', would be all 0.5).
  const mean = [0.6, 0.4, 0.2, 0.8, 0, 1, 1, 0];

  test("one layer is half the attention plus half the identity", () => {
    expect(Array.from(rollout(mean, 2, 1))).toEqual([0.8, 0.2, 0.1, 0.9].map((v) => expect.closeTo(v, 12)));
  });

  test("layers compose later times earlier", () => {
    expect(Array.from(rollout(mean, 2, 2))).toEqual([0.45, 0.55, 0.45, 0.55].map((v) => expect.closeTo(v, 12)));
  });

  test("rows are renormalised", () => {
    // [[1, 1], [0, 2]] -> 0.5 A + 0.5 I = [[1, 0.5], [0, 1.5]] -> [[2/3, 1/3], [0, 1]]
    expect(Array.from(rollout([1, 1, 0, 2], 2, 1))).toEqual([2 / 3, 1 / 3, 0, 1].map((v) => expect.closeTo(v, 12)));
  });
});

describe("heat map", () => {
  test("the ramp hits its stops and interpolates between them", () => {
    expect(rampColor(0)).toEqual([0, 0, 4]);
    expect(rampColor(0.5)).toEqual([188, 55, 84]);
    expect(rampColor(1)).toEqual([252, 255, 164]);
    // halfway between [0, 0, 4] and [87, 16, 110]: [43.5, 8, 57]
    expect(rampColor(0.125)).toEqual([44, 8, 57]);
    expect(rampColor(-1)).toEqual([0, 0, 4]);
    expect(rampColor(Number.NaN)).toEqual([0, 0, 4]);
  });

  test("min-max scaling, and all zeros when flat", () => {
    expect(Array.from(minMax([2, 4, 3]))).toEqual([0, 1, 0.5]);
    expect(Array.from(minMax([5, 5]))).toEqual([0, 0]);
  });

  test("each patch a square of its colour blended over the image", () => {
    const base = new Uint8Array(4 * 4 * 3).fill(100);
    const out = heatMap([0, 1, 2, 3], 2, base, 4, 0.5);
    const at = (x: number, y: number) => Array.from(out.subarray((y * 4 + x) * 3, (y * 4 + x) * 3 + 3));
    // value 0 -> [0, 0, 4]: 0.5 * 100 + 0.5 * c
    expect(at(0, 0)).toEqual([50, 50, 52]);
    expect(at(1, 1)).toEqual([50, 50, 52]);
    // value 3 -> 1 -> [252, 255, 164]
    expect(at(3, 3)).toEqual([176, 178, 132]);
    // value 1 -> 1/3 -> between stops 1 and 2 at 1/3: [87 + 101/3, 16 + 13, 110 - 26/3] = [120.7, 29, 101.3]
    expect(at(2, 0)).toEqual([Math.round(50 + 0.5 * 121), Math.round(50 + 0.5 * 29), Math.round(50 + 0.5 * 101)]);
  });

  test("nearest-neighbour upscale repeats pixels", () => {
    const rgb = Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]); // 2x2
    const out = resizeNearest(rgb, 2, 2, 4);
    expect(Array.from(out.subarray(0, 12))).toEqual([1, 2, 3, 1, 2, 3, 4, 5, 6, 4, 5, 6]);
    expect(Array.from(out.subarray(36, 48))).toEqual([7, 8, 9, 7, 8, 9, 10, 11, 12, 10, 11, 12]);
  });
});

// Chunks of a PNG stream, CRCs checked against node:zlib.
function chunks(png: Uint8Array): { type: string; data: Uint8Array }[] {
  expect(Array.from(png.subarray(0, 8))).toEqual(Array.from(PNG_SIGNATURE));
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  const out: { type: string; data: Uint8Array }[] = [];
  for (let at = 8; at < png.length; ) {
    const length = view.getUint32(at);
    const type = new TextDecoder().decode(png.subarray(at + 4, at + 8));
    expect(view.getUint32(at + 8 + length)).toBe(zlibCrc32(png.subarray(at + 4, at + 8 + length)));
    out.push({ type, data: png.subarray(at + 8, at + 8 + length) });
    at += 12 + length;
  }
  return out;
}

describe("APNG", () => {
  test("acTL, one fcTL per frame, IDAT then fdAT with one sequence, frames inflate to their rows", async () => {
    const frames = [0, 1, 2].map((f) => Uint8Array.from({ length: 2 * 3 * 3 }, (_, i) => (i * 7 + f * 50) & 255));
    const png = await encodeApng(frames, 3, 2, { delayMs: 600 });
    const list = chunks(png);
    expect(list.map((c) => c.type)).toEqual(["IHDR", "acTL", "fcTL", "IDAT", "fcTL", "fdAT", "fcTL", "fdAT", "IEND"]);
    const u32 = (d: Uint8Array, at: number) => new DataView(d.buffer, d.byteOffset).getUint32(at);
    const u16 = (d: Uint8Array, at: number) => new DataView(d.buffer, d.byteOffset).getUint16(at);
    expect([u32(list[1].data, 0), u32(list[1].data, 4)]).toEqual([3, 0]); // 3 frames, loop forever
    const sequence = list.filter((c) => c.type === "fcTL" || c.type === "fdAT").map((c) => u32(c.data, 0));
    expect(sequence).toEqual([0, 1, 2, 3, 4]);
    for (const fctl of list.filter((c) => c.type === "fcTL")) {
      expect(fctl.data).toHaveLength(26);
      expect([u32(fctl.data, 4), u32(fctl.data, 8), u32(fctl.data, 12), u32(fctl.data, 16)]).toEqual([3, 2, 0, 0]);
      expect([u16(fctl.data, 20), u16(fctl.data, 22), fctl.data[24], fctl.data[25]]).toEqual([600, 1000, 0, 0]);
    }
    const data = [list[3].data, list[5].data.subarray(4), list[7].data.subarray(4)];
    data.forEach((d, f) => {
      const raw = inflateSync(d);
      const rows = [0, 1].map((y) => Array.from(raw.subarray(y * 10, (y + 1) * 10)));
      expect(rows).toEqual([0, 1].map((y) => [0, ...frames[f].subarray(y * 9, (y + 1) * 9)]));
    });
  });

  test("refuses no frames and out-of-range delays", async () => {
    await expect(encodeApng([], 1, 1, { delayMs: 10 })).rejects.toThrow(RangeError);
    await expect(encodeApng([new Uint8Array(3)], 1, 1, { delayMs: 70_000 })).rejects.toThrow(RangeError);
    await expect(encodeFrames([], 1, 1, { delayMs: 10 })).rejects.toThrow(RangeError);
  });

  test("encodeFrames deflates each frame once for its PNG and the APNG, which inflate to the frames", async () => {
    const frames = [0, 1, 2].map((f) => Uint8Array.from({ length: 2 * 3 * 3 }, (_, i) => (i * 5 + f * 40) & 255));
    const Real = globalThis.CompressionStream;
    let streams = 0;
    globalThis.CompressionStream = class extends Real {
      constructor(format: CompressionFormat) {
        super(format);
        streams++;
      }
    };
    let out: { pngs: Uint8Array[]; apng: Uint8Array };
    try {
      out = await encodeFrames(frames, 3, 2, { delayMs: 600 });
    } finally {
      globalThis.CompressionStream = Real;
    }
    expect(streams).toBe(3);
    const rowsOf = (zlib: Uint8Array) => {
      const raw = inflateSync(zlib);
      return [0, 1].map((y) => Array.from(raw.subarray(y * 10, (y + 1) * 10)));
    };
    const want = (f: number) => [0, 1].map((y) => [0, ...frames[f].subarray(y * 9, (y + 1) * 9)]);
    out.pngs.forEach((png, f) => {
      const list = chunks(png);
      expect(list.map((c) => c.type)).toEqual(["IHDR", "IDAT", "IEND"]);
      expect(rowsOf(list[1].data)).toEqual(want(f));
    });
    const list = chunks(out.apng);
    expect(list.map((c) => c.type)).toEqual(["IHDR", "acTL", "fcTL", "IDAT", "fcTL", "fdAT", "fcTL", "fdAT", "IEND"]);
    [list[3].data, list[5].data.subarray(4), list[7].data.subarray(4)].forEach((d, f) => {
      expect(rowsOf(d)).toEqual(want(f));
    });
  });
});

describe("preprocessed image from pixel_values", () => {
  const pp: Preprocessing = {
    doResize: false,
    size: { height: 2, width: 2 },
    resample: 2,
    doCenterCrop: false,
    cropSize: null,
    doRescale: true,
    rescaleFactor: 1 / 255,
    doNormalize: true,
    imageMean: [0.485, 0.456, 0.406],
    imageStd: [0.229, 0.224, 0.225],
  };

  test("every byte comes back from the preprocessor's float for it", () => {
    const lut = valueTable(pp);
    const width = 256;
    const pixels = new Float32Array(3 * width);
    for (let c = 0; c < 3; c++)
      for (let v = 0; v < 256; v++) pixels[c * width + v] = lut[c * 256 + ((v * 7 + c) & 255)];
    const rgb = pixelsToRgb(pixels, pp, width, 1);
    for (let c = 0; c < 3; c++) for (let v = 0; v < 256; v++) expect(rgb[v * 3 + c]).toBe((v * 7 + c) & 255);
  });
});
