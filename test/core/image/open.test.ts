// openImage tells the format from the bytes and names the formats it does not decode.

import { expect, test } from "vitest";
import { EdgevitError } from "../../../core/errors.ts";
import { openImage, sniffFormat } from "../../../core/image/open.ts";
import { fixture } from "./goldens.ts";

const text = (s: string) => new TextEncoder().encode(s);
const LIMITS = { maxPixels: 1e8 };

test.each([
  ["WebP", text("RIFF\x24\0\0\0WEBPVP8 ")],
  ["GIF", text("GIF89a\x01\0\x01\0")],
  ["HEIC", Uint8Array.of(0, 0, 0, 24, ...text("ftypheic\0\0\0\0mif1"))],
  ["AVIF", Uint8Array.of(0, 0, 0, 28, ...text("ftypavif\0\0\0\0avifmif1"))],
  ["BMP", text("BM\x36\0\0\0\0\0")],
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
    new RegExp(`^This is an? ${format} image; edgevit accepts JPEG and PNG\\.$`),
  );
});

test("JPEG and PNG open whatever they are called; other bytes are invalid_image", () => {
  expect(openImage(fixture("cat-baseline-420.jpg"), LIMITS).header).toMatchObject({ format: "jpeg", width: 451 });
  expect(openImage(fixture("cat.png"), LIMITS).header).toMatchObject({ format: "png", width: 451, height: 300 });
  expect(() => openImage(fixture("invalid-random-bytes.jpg"), LIMITS)).toThrow(/not a JPEG or PNG/);
  expect(() => openImage(new Uint8Array(0), LIMITS)).toThrow(/empty/);
});
