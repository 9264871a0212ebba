// openImage tells the format from the bytes and names the formats it does not decode.

import { readFileSync } from "node:fs";
import { expect, test } from "vitest";
import { EdgevitError } from "../../../core/errors.ts";
import { decodeJpegStored } from "../../../core/image/jpeg/fallback.ts";
import { openImageBytes as openImage, sniffFormat } from "../../../core/image/open.ts";
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

test("what the streaming JPEG decoder declines: jpeg-js at full scale, decode=exact asked for at others", async () => {
  const bytes = jpegFixture("declined-progressive-dc-only.jpg");
  const decoder = openImage(bytes, LIMITS);
  const { width, height } = decoder.header;
  const gathered = new Uint8Array(width * height * 3);
  let next = 0;
  const size = await decoder.decode(1, (rows, first, count) => {
    expect(first).toBe(next);
    gathered.set(rows.subarray(0, count * width * 3), first * width * 3);
    next = first + count;
  });
  expect(size).toEqual({ width, height });
  expect(next).toBe(height);
  expect(Buffer.from(gathered).equals(Buffer.from(decodeJpegStored(bytes).data))).toBe(true);
  await expect(async () => openImage(bytes, LIMITS).decode(2, () => {})).rejects.toThrow(/decode=exact/);
  // An arithmetic-coded JPEG is the streaming decoder's own (jpeg-js reads none), at every scale.
  expect(await openImage(jpegFixture("arithmetic-420-20x12.jpg"), LIMITS).decode(2, () => {})).toEqual({
    width: 10,
    height: 6,
  });
  // So one it declines has no fallback: the streaming decoder's reason is the answer.
  await expect(
    openImage(jpegFixture("declined-arithmetic-progressive-dc-only.jpg"), LIMITS).decode(1, () => {}),
  ).rejects.toMatchObject({ code: "unsupported_media_type", message: expect.stringMatching(/low-frequency/) });
});
