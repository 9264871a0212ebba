// The BMP, GIF and WebP decoders through openImage against Pillow 9.4's Image.open(f).convert("RGB")
// (test/tools/format_goldens.py): every file Pillow decodes gives its pixels bit for bit, every file Pillow
// refuses is refused as invalid_image with a sentence about the file.

import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { describe, expect, test } from "vitest";
import { EdgevitError } from "../../../core/errors.ts";
import { type ImageInput, openImage } from "../../../core/image/open.ts";
import { MAX_TABLE_BYTES } from "../../../core/image/webp/vp8l.ts";
import { decodeRows } from "./decode-rows.ts";

const LIMITS = { maxPixels: 1e8 };

interface Case {
  width?: number;
  height?: number;
  mode?: string;
  sha256?: string;
  error?: string;
}

async function decodeAll(bytes: ImageInput) {
  const decoder = await openImage(bytes, LIMITS);
  return { ...(await decodeRows(decoder)), header: decoder.header };
}

for (const [format, ext] of [
  ["bmp", "bmp"],
  ["gif", "gif"],
  ["webp", "webp"],
] as const) {
  const dir = new URL(`../../goldens/preprocess/${format}/`, import.meta.url).pathname;
  if (!existsSync(`${dir}cases.json`)) continue;
  const goldens: { pillow: string; cases: Record<string, Case> } = JSON.parse(readFileSync(`${dir}cases.json`, "utf8"));

  describe(`${format} against Pillow`, () => {
    test("the goldens were made by Pillow 9.4", () => {
      expect(goldens.pillow).toBe("9.4.0");
    });

    test.each(Object.entries(goldens.cases))("%s", async (name, c) => {
      const bytes = new Uint8Array(readFileSync(`${dir}${name}.${ext}`));
      if (c.error) {
        let error: unknown;
        try {
          await decodeAll(bytes);
        } catch (e) {
          error = e;
        }
        expect(error, `Pillow refuses it (${c.error})`).toBeInstanceOf(EdgevitError);
        const e = error as EdgevitError;
        expect(e.code).toBe("invalid_image");
        expect(e.message).toMatch(/^[A-Z].{20,}[.)]$/);
        return;
      }
      const { width, height, rgb, header } = await decodeAll(bytes);
      expect(header.format).toBe(format);
      expect([width, height]).toEqual([c.width, c.height]);
      expect(createHash("sha256").update(rgb).digest("hex")).toBe(c.sha256);
    });
  });
}

describe("limits", () => {
  const file = (format: string, name: string) =>
    new Uint8Array(readFileSync(new URL(`../../goldens/preprocess/${format}/${name}.${format}`, import.meta.url)));

  test.each([
    ["bmp", "rle8"],
    ["bmp", "pal4-topdown"],
    ["gif", "lzw-runs"],
    ["gif", "frame-inside-interlaced"],
    ["webp", "lossy-alpha"],
    ["webp", "animated-offset"],
  ])("%s %s: a body streamed in 7-byte pieces gives the same pixels", async (format, name) => {
    const bytes = file(format, name);
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < bytes.length; i += 7) controller.enqueue(bytes.slice(i, i + 7));
        controller.close();
      },
    });
    const whole = await decodeAll(bytes);
    const streamed = await decodeAll(stream);
    expect(Buffer.from(streamed.rgb).equals(Buffer.from(whole.rgb))).toBe(true);
  });

  test.each([
    ["bmp", "rgb24-topdown"],
    ["bmp", "rle8"],
    ["gif", "frame-past-screen"],
    ["webp", "lossy-q50-101x67"],
    ["webp", "lossless-101x67"],
    ["webp", "animated-offset"],
  ])("%s %s: over the pixel limit from the header, and the memory stated before decoding", async (format, name) => {
    const bytes = file(format, name);
    const decoder = await openImage(bytes, LIMITS);
    const { width, height } = decoder.header;
    // The file, and at most what the format must hold: indices (RLE BMP, interlaced GIF), ARGB (lossless
    // WebP) or the planes (lossy WebP), with the LZW tables and a few rows of slack; lossless WebP also its
    // sub-images (under a byte a pixel), caches and prefix codes (at most MAX_TABLE_BYTES for the image's).
    const codes = name.startsWith("lossless") ? width * height + MAX_TABLE_BYTES + 128 * 1024 : 0;
    expect(decoder.memoryBytes(1)).toBeGreaterThanOrEqual(bytes.length + width * 3);
    expect(decoder.memoryBytes(1)).toBeLessThanOrEqual(bytes.length + width * 3 + width * height * 4 + 32768 + codes);
    await expect(openImage(bytes, { maxPixels: width * height - 1 })).rejects.toThrow(
      expect.objectContaining({ code: "image_too_large" }),
    );
  });
});

describe("a lossy WebP is pushed a macroblock row at a time", () => {
  const bytes = new Uint8Array(
    readFileSync(new URL("../../goldens/preprocess/webp/photo-lossy-q90.webp", import.meta.url)),
  );
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);

  test("the planes it holds are a few rows, whatever the height", async () => {
    const decoder = await openImage(bytes, LIMITS);
    const { width, height } = decoder.header;
    // 24 luma and 2 x 13 chroma rows of whole macroblock columns, a macroblock row's modes (22 bytes a
    // macroblock), work buffers and 4 RGB rows the kernels convert, beside the file.
    const columns = Math.ceil(width / 16) * 16;
    const bound = columns * 37 + (columns / 16) * 22 + width * 31 + 4096;
    expect(decoder.memoryBytes(1) - bytes.length).toBeLessThan(bound + 1);
    // The whole frame's planes would be 1.5 bytes per pixel.
    expect(decoder.memoryBytes(1) - bytes.length).toBeLessThan(width * height * 1.5 * 0.25);
  });

  test("rows decoded before the data runs out have gone to the sink when it is refused", async () => {
    // The simple format's VP8 payload cut by 2000 bytes, the RIFF and chunk sizes made to agree: the
    // header opens, the last token partition ends early some macroblock rows in.
    const cut = bytes.slice(0, bytes.length - 2000);
    const dv = new DataView(cut.buffer);
    dv.setUint32(4, view.getUint32(4, true) - 2000, true);
    dv.setUint32(16, view.getUint32(16, true) - 2000, true);
    const decoder = await openImage(cut, LIMITS);
    let rows = 0;
    const err = await decoder
      .decode(1, (_rgb, _first, count) => {
        rows += count;
      })
      .then(
        () => null,
        (e: unknown) => e,
      );
    expect(err).toBeInstanceOf(EdgevitError);
    expect((err as EdgevitError).message).toMatch(
      /^The WebP image data is damaged \(a token partition ends early\)\.$/,
    );
    expect(rows).toBeGreaterThan(16);
    expect(rows).toBeLessThan(decoder.header.height);
    expect(rows % 16).toBe(8);
  });
});
