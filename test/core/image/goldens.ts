// Loads the PIL/numpy goldens written by test/tools/preprocess_goldens.py.

import { readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { createHash } from "node:crypto";
import type { Preprocessing } from "../../../core/bundle/format.ts";
import { decodeJpeg } from "../../../core/image/jpeg/fallback.ts";
import type { RgbImage } from "../../../core/image/source.ts";

const root = new URL("../../../", import.meta.url).pathname;
export const FIXTURES = `${root}test/fixtures/images/`;
const GOLDENS = `${root}test/goldens/preprocess/`;

export interface Case {
  photo: string;
  config: string;
  file: string;
  input: { height: number; width: number; sha256: string };
  output: { height: number; width: number };
  sha256: string; // of the float32 CHW pixel_values, little-endian
}

export interface EndToEnd {
  photo: string;
  config: string;
  file: string;
  decoded: { height: number; width: number };
  decodedMean: number[];
  decodedGray: boolean;
}

export interface Goldens {
  configs: Record<string, Preprocessing>;
  tables: Record<string, number[][]>; // [channel][uint8 value]
  cases: Case[];
  endToEnd: EndToEnd[];
  orientation: Record<string, { orientation: number; width: number; height: number }>;
  decoded: Record<string, { width: number; height: number }>; // PIL's full decode in <name>.pil.u8.gz
}

export const goldens: Goldens = JSON.parse(readFileSync(`${GOLDENS}cases.json`, "utf8"));

export function goldenBytes(file: string): Uint8Array {
  return new Uint8Array(gunzipSync(readFileSync(GOLDENS + file)));
}

export function fixture(name: string): Uint8Array {
  return new Uint8Array(readFileSync(FIXTURES + name));
}

export function sha256(bytes: ArrayBufferView): string {
  return createHash("sha256")
    .update(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength))
    .digest("hex");
}

const decodedCache = new Map<string, RgbImage>();
export function decodedPhoto(name: string): RgbImage {
  let image = decodedCache.get(name);
  if (!image) {
    image = decodeJpeg(fixture(name));
    decodedCache.set(name, image);
  }
  return image;
}

// pixel_values [3][h][w] from a uint8 HWC image through a per-channel value table.
export function tensorFromTable(u8: Uint8Array, height: number, width: number, table: number[][]): Float32Array {
  const plane = height * width;
  const out = new Float32Array(3 * plane);
  for (let i = 0; i < plane; i++) {
    for (let c = 0; c < 3; c++) out[c * plane + i] = table[c][u8[i * 3 + c]];
  }
  return out;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): { max: number; mean: number } {
  let max = 0;
  let sum = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    sum += d;
    if (d > max) max = d;
  }
  return { max, mean: sum / a.length };
}
