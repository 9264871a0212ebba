// The PNG decoder against Pillow 9.4's Image.open(f).convert("RGB") (test/tools/png_goldens.py): every
// colour type and bit depth, all five filters, Adam7, tRNS, short palettes, many IDAT chunks.

import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { describe, expect, test } from "vitest";
import { pngChunk } from "../../../png-chunk.ts";
import { decodeRows } from "../decode-rows.ts";
import { EdgevitError } from "../../../../core/errors.ts";
import { applyOrientation } from "../../../../core/image/orientation.ts";
import { openPng } from "../../../../core/image/png/index.ts";

const DIR = new URL("../../../goldens/preprocess/png/", import.meta.url).pathname;
const goldens: {
  pillow: string;
  cases: Record<
    string,
    {
      width: number;
      height: number;
      mode: string;
      sha256: string;
      rgb?: string;
      orientation?: number;
      transposed?: string;
    }
  >;
} = JSON.parse(readFileSync(`${DIR}cases.json`, "utf8"));

const LIMITS = { maxPixels: 1e8 };

const decodeAll = (bytes: Uint8Array, limits = LIMITS) => decodeRows(openPng(bytes, limits));

async function refusal(promise: Promise<unknown> | (() => unknown)): Promise<EdgevitError> {
  try {
    await (typeof promise === "function" ? promise() : promise);
  } catch (e) {
    expect(e).toBeInstanceOf(EdgevitError);
    return e as EdgevitError;
  }
  throw new Error("expected a refusal");
}

// A PNG from raw parts: IHDR fields, the zlib stream, optional extra chunks before IDAT.

function png(width: number, height: number, depth: number, colorType: number, zlib: Uint8Array): Uint8Array {
  const ihdr = new Uint8Array(13);
  new DataView(ihdr.buffer).setUint32(0, width);
  new DataView(ihdr.buffer).setUint32(4, height);
  ihdr.set([depth, colorType, 0, 0, 0], 8);
  const parts = [
    Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a),
    pngChunk("IHDR", ihdr),
    pngChunk("IDAT", zlib),
    pngChunk("IEND", new Uint8Array(0)),
  ];
  return new Uint8Array(parts.flatMap((p) => [...p]));
}

async function deflate(data: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([data as Uint8Array<ArrayBuffer>]).stream().pipeThrough(new CompressionStream("deflate"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

describe("against Pillow", () => {
  test("the goldens were made by Pillow 9.4", () => {
    expect(goldens.pillow).toBe("9.4.0");
    expect(Object.keys(goldens.cases).length).toBeGreaterThanOrEqual(36);
  });

  test.each(Object.entries(goldens.cases))("%s: bit-exact with convert('RGB')", async (name, c) => {
    const bytes = new Uint8Array(readFileSync(`${DIR}${name}.png`));
    const { width, height, rgb } = await decodeAll(bytes);
    expect([width, height]).toEqual([c.width, c.height]);
    if (c.rgb) expect(Buffer.from(rgb).toString("base64")).toBe(c.rgb);
    expect(createHash("sha256").update(rgb).digest("hex")).toBe(c.sha256);
    // eXIf: the header carries the orientation, and applying it gives Pillow's exif_transpose.
    const { orientation } = openPng(bytes, LIMITS).header;
    expect(orientation).toBe(c.orientation ?? 1);
    if (c.transposed) {
      const turned = applyOrientation({ width, height, data: rgb }, orientation);
      expect(createHash("sha256").update(turned.data).digest("hex")).toBe(c.transposed);
    }
  });
});

describe("refusals", () => {
  const file = () => new Uint8Array(readFileSync(`${DIR}rgb-8.png`));

  test("a bad chunk CRC", async () => {
    const bytes = file();
    bytes[40] ^= 1;
    expect((await refusal(() => openPng(bytes, LIMITS))).message).toMatch(/CRC does not match/);
  });

  test("over the pixel limit, from IHDR", async () => {
    const e = await refusal(() => openPng(file(), { maxPixels: 100 }));
    expect(e.code).toBe("image_too_large");
  });

  test("a side over 65535 pixels, whatever the area", async () => {
    const e = await refusal(() => openPng(png(70000, 1, 8, 0, new Uint8Array(0)), LIMITS));
    expect(e.code).toBe("image_too_large");
    expect(e.message).toMatch(/up to 65535 pixels on a side/);
  });

  test("a 1 MB file that inflates to 1 GiB is refused at the first byte past IHDR's size", async () => {
    // IHDR says 16x16 gray; the zlib stream holds 1 GiB of zeros (deflate of zeros is ~1030:1).
    const zeros = new Uint8Array(1 << 20);
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        controller.enqueue(zeros);
      },
    });
    let fed = 0;
    const limited = stream.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, controller) {
          if (fed >= 1 << 30) controller.terminate();
          else {
            fed += chunk.length;
            controller.enqueue(chunk);
          }
        },
      }),
    );
    const zlib = new Uint8Array(
      await new Response(
        limited.pipeThrough(new CompressionStream("deflate") as unknown as TransformStream<Uint8Array, Uint8Array>),
      ).arrayBuffer(),
    );
    const bytes = png(16, 16, 8, 0, zlib);
    expect(bytes.length).toBeLessThan(2e6);
    const e = await refusal(decodeAll(bytes));
    expect(e.message).toMatch(/more than IHDR's size needs/);
  });

  test("truncated image data", async () => {
    const raw = new Uint8Array(17 * 16);
    const zlib = await deflate(raw);
    const e = await refusal(decodeAll(png(16, 17, 8, 0, zlib)));
    expect(e.message).toMatch(/truncated/);
  });

  test("an unknown filter type", async () => {
    const raw = new Uint8Array(17 * 16);
    raw[17 * 3] = 7;
    const e = await refusal(decodeAll(png(16, 16, 8, 0, await deflate(raw))));
    expect(e.message).toMatch(/row 3 uses an unknown filter type 7/);
  });

  test("IHDR fields", async () => {
    const zlib = await deflate(new Uint8Array(17));
    for (const [depth, type, pattern] of [
      [16, 3, /bit depth of 16/],
      [8, 5, /color type 5/],
      [3, 0, /bit depth of 3/],
    ] as const) {
      const e = await refusal(() => openPng(png(16, 1, depth, type, zlib), LIMITS));
      expect(e.message).toMatch(pattern);
    }
    expect((await refusal(() => openPng(png(0, 1, 8, 0, zlib), LIMITS))).message).toMatch(/impossible size/);
  });

  test("a palette image without PLTE", async () => {
    const e = await refusal(() => openPng(png(16, 1, 8, 3, new Uint8Array(0)), LIMITS));
    expect(e.message).toMatch(/no PLTE/);
  });
});
