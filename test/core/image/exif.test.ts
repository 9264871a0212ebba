// The one EXIF orientation reader, on TIFF structures built by hand: both byte orders, both integer types
// the tag may use, and every way the tag can be missing or wrong, which all mean 1 (no transform) as in
// Pillow's exif_transpose.
import { expect, test } from "vitest";
import { readExifOrientation } from "../../../core/image/exif.ts";

// A TIFF header and IFD0 with the given entries: [tag, type, value], the value in the entry's first bytes.
function tiff(little: boolean, entries: [number, number, number][], ifdOffset = 8): Uint8Array {
  const bytes: number[] = [];
  const u16 = (v: number) => (little ? bytes.push(v & 255, v >> 8) : bytes.push(v >> 8, v & 255));
  const u32 = (v: number) => {
    const [first, second] = little ? [v & 0xffff, v >>> 16] : [v >>> 16, v & 0xffff];
    u16(first);
    u16(second);
  };
  bytes.push(...(little ? [0x49, 0x49] : [0x4d, 0x4d]));
  u16(42);
  u32(ifdOffset);
  while (bytes.length < ifdOffset) bytes.push(0);
  u16(entries.length);
  for (const [tag, type, value] of entries) {
    u16(tag);
    u16(type);
    u32(1);
    if (type === 3) {
      u16(value);
      u16(0);
    } else u32(value);
  }
  u32(0); // no next IFD
  return Uint8Array.from(bytes);
}

const ORIENTATION = 0x0112;
const SHORT = 3;
const LONG = 4;

test.each([true, false])("every orientation 1..8 as a SHORT, little-endian %s", (little) => {
  for (let o = 1; o <= 8; o++) expect(readExifOrientation(tiff(little, [[ORIENTATION, SHORT, o]]))).toBe(o);
});

test("a LONG value and a tag after others in the IFD are read", () => {
  expect(readExifOrientation(tiff(true, [[ORIENTATION, LONG, 6]]))).toBe(6);
  const entries: [number, number, number][] = [
    [0x010f, 2, 0], // Make
    [0x0110, 2, 0], // Model
    [ORIENTATION, SHORT, 3],
  ];
  expect(readExifOrientation(tiff(false, entries))).toBe(3);
  expect(readExifOrientation(tiff(true, [[ORIENTATION, SHORT, 5]], 20))).toBe(5);
});

test("absent, out of range, of another type or cut short: 1", () => {
  expect(readExifOrientation(tiff(true, []))).toBe(1);
  expect(readExifOrientation(tiff(true, [[0x010f, 2, 0]]))).toBe(1);
  expect(readExifOrientation(tiff(true, [[ORIENTATION, SHORT, 0]]))).toBe(1);
  expect(readExifOrientation(tiff(false, [[ORIENTATION, SHORT, 9]]))).toBe(1);
  expect(readExifOrientation(tiff(true, [[ORIENTATION, 1, 6]]))).toBe(1); // BYTE: only SHORT and LONG are read
  const whole = tiff(true, [[ORIENTATION, SHORT, 6]]);
  expect(readExifOrientation(whole.subarray(0, whole.length - 8))).toBe(1); // the entry is cut
  expect(readExifOrientation(whole.subarray(0, 7))).toBe(1);
  expect(readExifOrientation(tiff(true, [[ORIENTATION, SHORT, 6]], 4000).subarray(0, 100))).toBe(1); // IFD past the end
  const noOrder = whole.slice();
  noOrder[0] = noOrder[1] = 0x41;
  expect(readExifOrientation(noOrder)).toBe(1);
  expect(readExifOrientation(new Uint8Array(0))).toBe(1);
});
