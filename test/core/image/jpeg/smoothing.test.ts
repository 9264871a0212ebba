// Progressive JPEGs that stop before their low frequencies are complete (cut after k scans, or inside one),
// whose blocks libjpeg-turbo smooths (jdcoefct.c decompress_smooth_data), through the upload path
// (openImage), whole and streamed, at every DCT scale, against Pillow 9.4's pixels for the same file made at
// test time by test/tools/smoothing_cases.py (Image.open, draft at the scale, convert("RGB")), with the wasm
// kernels (as the Worker decodes) and with the JavaScript paths alone.

import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { describe, expect, test } from "vitest";
import { EdgevitError } from "../../../../core/errors.ts";
import { installDecodeKernels } from "../../../../core/image/kernels.ts";
import { type ImageInput, openImage } from "../../../../core/image/open.ts";
import { chunked, decodeRows } from "../decode-rows.ts";

const root = new URL("../../../../", import.meta.url).pathname;
const DIR = `${root}.cache/smoothing/`;
if (!existsSync(`${DIR}done`)) execFileSync("/usr/bin/python3", [`${root}test/tools/smoothing_cases.py`, DIR]);

interface Cases {
  pillow: string;
  files: Record<string, { error?: string; scales: Record<string, [number, number]> }>;
}
const cases: Cases = JSON.parse(readFileSync(`${DIR}cases.json`, "utf8"));
const kernels = new WebAssembly.Module(readFileSync(`${root}build/decode.wasm`));

// A stream in odd-sized chunks, so that rows of every scan run out of bytes and are decoded again.
const streamed = (bytes: Uint8Array) => chunked(bytes, 97);

async function decode(input: ImageInput, scale: number) {
  const decoder = await openImage(input, { maxPixels: 1e8 });
  const { width, height, rgb } = await decodeRows(decoder, scale);
  expect({ width, height }).toEqual({
    width: Math.ceil(decoder.header.width / scale),
    height: Math.ceil(decoder.header.height / scale),
  });
  return rgb;
}

// The first differing pixel, for a readable failure.
function firstDifference(a: Uint8Array, b: Uint8Array, width: number): string | null {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if (a[i] !== b[i]) return `pixel (${Math.floor(i / 3) % width}, ${Math.floor(i / 3 / width)}): ${a[i]} vs ${b[i]}`;
  }
  return null;
}

describe("block smoothing of progressive JPEGs that stop early, as Pillow 9.4", () => {
  test("the goldens were made by Pillow 9.4", () => expect(cases.pillow).toBe("9.4.0"));

  test("the cases cover cuts after scans and inside them, sampling, restarts and scan scripts", () => {
    const names = Object.keys(cases.files).join(" ");
    const kinds =
      "-scans1 -inside -marker 420- 422- 444- 440- 411- gray- cmyk- gray-2x2 restart spectral dc-refine dc-apart coffee arithmetic";
    for (const kind of kinds.split(" ")) expect(names).toContain(kind);
    expect(Object.keys(cases.files).length).toBeGreaterThan(500);
  });

  test.each(Object.keys(cases.files))("%s", async (name) => {
    const bytes = new Uint8Array(readFileSync(DIR + name));
    const { error } = cases.files[name];
    if (error) {
      const refusal = await decode(bytes, 1).then(
        () => null,
        (e: unknown) => e,
      );
      expect(refusal, `Pillow refuses it (${error})`).toBeInstanceOf(EdgevitError);
      expect((refusal as EdgevitError).code).toBe("invalid_image");
      return;
    }
    try {
      for (const wasm of [true, false]) {
        installDecodeKernels(wasm ? kernels : null);
        for (const scale of [1, 2, 4, 8]) {
          const [width] = cases.files[name].scales[String(scale)];
          const pillow = new Uint8Array(readFileSync(`${DIR}${name}.${scale}.rgb`));
          for (const [how, input] of [
            ["whole", bytes],
            ["streamed", streamed(bytes)],
          ] as const) {
            const ours = await decode(input, scale);
            const where = `${how} at 1/${scale}, ${wasm ? "wasm kernels" : "JavaScript"}`;
            expect(firstDifference(ours, pillow, width), where).toBeNull();
          }
        }
      }
    } finally {
      installDecodeKernels(kernels);
    }
  });
});
