// openImage tells the format from the bytes and names the formats it does not decode.

import { readFileSync } from "node:fs";
import { expect, test } from "vitest";
import { EdgevitError } from "../../../core/errors.ts";
import { decodeJpegStored } from "../../../core/image/jpeg/fallback.ts";
import { openJpeg } from "../../../core/image/jpeg/index.ts";
import { openImage as openImageStream, openImageBytes as openImage, sniffFormat } from "../../../core/image/open.ts";
import { chunked, decodeRows } from "./decode-rows.ts";
import { fixture } from "./goldens.ts";

const text = (s: string) => new TextEncoder().encode(s);
const LIMITS = { maxPixels: 1e8 };

test.each([
  ["HEIC", Uint8Array.of(0, 0, 0, 24, ...text("ftypheic\0\0\0\0mif1"))],
  ["AVIF", Uint8Array.of(0, 0, 0, 28, ...text("ftypavif\0\0\0\0avifmif1"))],
  ["TIFF", text("II*\0\x08\0\0\0")],
  ["JPEG XL", Uint8Array.of(0xff, 0x0a, 0xfa, 0x7f)],
  ["SVG", text('<svg xmlns="http://www.w3.org/2000/svg">')],
] as const)("%s is named in a 415 sentence", (format, bytes) => {
  expect(sniffFormat(bytes)).toBe(format);
  let error: unknown;
  try {
    openImage(bytes, LIMITS);
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(EdgevitError);
  expect((error as EdgevitError).code).toBe("unsupported_media_type");
  expect((error as EdgevitError).message).toMatch(
    new RegExp(`^This is an? ${format} image; edgevit accepts JPEG, PNG, WebP, GIF and BMP\\.$`),
  );
});

test.each([
  ["webp", text("RIFF\x24\0\0\0WEBPVP8 ")],
  ["gif", text("GIF89a\x01\0\x01\0")],
  ["bmp", text("BM\x36\0\0\0\0\0")],
] as const)(
  "%s is sniffed from the bytes and opened by its decoder (these few bytes are refused as broken)",
  (format, bytes) => {
    expect(sniffFormat(bytes)).toBe(format);
    expect(() => openImage(bytes, LIMITS)).toThrow(
      expect.objectContaining({ code: "invalid_image", message: expect.stringMatching(/^The (WebP|GIF|BMP) /) }),
    );
  },
);

test("images open whatever they are called; other bytes are invalid_image", () => {
  expect(openImage(fixture("cat-baseline-420.jpg"), LIMITS).header).toMatchObject({ format: "jpeg", width: 451 });
  expect(openImage(fixture("cat.png"), LIMITS).header).toMatchObject({ format: "png", width: 451, height: 300 });
  expect(() => openImage(fixture("invalid-random-bytes.jpg"), LIMITS)).toThrow(/not a JPEG, PNG, WebP, GIF or BMP/);
  expect(() => openImage(new Uint8Array(0), LIMITS)).toThrow(/empty/);
});

const jpegFixture = (name: string) =>
  new Uint8Array(readFileSync(new URL(`../../fixtures/jpeg/${name}`, import.meta.url)));

test("a progressive JPEG that stops early is the streaming decoder's own at every scale (no jpeg-js)", async () => {
  // A DC scan alone: libjpeg smooths its blocks, and so does the streaming decoder (Pillow's pixels in
  // test/core/image/jpeg/decoder.test.ts and smoothing.test.ts).
  for (const name of ["progressive-dc-only.jpg", "arithmetic-progressive-dc-only.jpg"]) {
    const bytes = jpegFixture(name);
    for (const scale of [1, 2, 4, 8]) {
      const decoder = openImage(bytes, LIMITS);
      const width = Math.ceil(decoder.header.width / scale);
      const height = Math.ceil(decoder.header.height / scale);
      const { rgb: gathered, ...size } = await decodeRows(decoder, scale);
      expect(size).toEqual({ width, height });
      const { rgb: own } = await decodeRows(openJpeg(bytes, LIMITS), scale);
      expect(Buffer.from(gathered).equals(Buffer.from(own)), `${name} at 1/${scale}`).toBe(true);
      if (scale === 1 && !name.startsWith("arithmetic")) {
        expect(Buffer.from(gathered).equals(Buffer.from(decodeJpegStored(bytes).data))).toBe(false);
      }
    }
  }
});

// The frame header's marker rewritten: libjpeg-turbo 2.1 (Pillow 9.4) refuses lossless and hierarchical
// processes ("Unsupported JPEG process"), and so does edgevit, whole or streamed.
test.each([
  ["lossless", 0xc3],
  ["hierarchical", 0xc5],
  ["arithmetic lossless", 0xcb],
])("a %s JPEG is refused as invalid_image, as Pillow refuses it", async (_, marker) => {
  const bytes = fixture("cat-baseline-420.jpg").slice();
  const sof = bytes.findIndex((b, i) => b === 0xff && bytes[i + 1] === 0xc0);
  bytes[sof + 1] = marker;
  const whole = (() => {
    try {
      openImage(bytes, LIMITS);
    } catch (e) {
      return e;
    }
  })();
  expect(whole).toMatchObject({ code: "invalid_image", message: expect.stringMatching(/^The JPEG is a .{20,}\.$/) });
  await expect(openImageStream(chunked(bytes, 97), LIMITS)).rejects.toMatchObject({ code: "invalid_image" });
});
