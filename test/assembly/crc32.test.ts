// CRC-32 against Node's zlib.crc32 (the same function Python's zlib.crc32 computes).
import { crc32 as zlibCrc32 } from "node:zlib";
import { expect, test } from "vitest";
import { BUILDS, loadEngine, put, rng } from "./engine.ts";

const engines = BUILDS.map(loadEngine);

test("known vector: crc32('123456789') = 0xCBF43926", () => {
  for (const e of engines) {
    const p = put(e, new TextEncoder().encode("123456789"));
    expect(e.crc32(0, p, 9) >>> 0).toBe(0xcbf43926);
    expect(e.crc32Scalar(0, p, 9) >>> 0).toBe(0xcbf43926);
  }
});

test("slicing-by-8 and bitwise twin equal zlib.crc32, whole and incremental, any length and alignment", () => {
  const random = rng(7);
  for (const e of engines) {
    for (const len of [0, 1, 7, 8, 9, 15, 16, 17, 1000, 100_003]) {
      const data = new Uint8Array(len + 3);
      for (let i = 0; i < data.length; i++) data[i] = Math.floor(random() * 256);
      const base = put(e, data);
      for (const offset of [0, 3]) {
        const view = data.subarray(offset, offset + len);
        const want = zlibCrc32(view);
        expect(e.crc32(0, base + offset, len) >>> 0).toBe(want);
        expect(e.crc32Scalar(0, base + offset, len) >>> 0).toBe(want);
        const cut = Math.floor(len / 3);
        const first = e.crc32(0, base + offset, cut);
        expect(e.crc32(first, base + offset + cut, len - cut) >>> 0).toBe(want);
        // The bitwise twin continues too, from either form's partial result.
        expect(e.crc32Scalar(e.crc32Scalar(0, base + offset, cut), base + offset + cut, len - cut) >>> 0).toBe(want);
        expect(e.crc32Scalar(first, base + offset + cut, len - cut) >>> 0).toBe(want);
      }
    }
  }
});
