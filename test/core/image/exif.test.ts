// The one EXIF orientation reader, on TIFF structures built by hand: both byte orders, the types the tag
// may use, every way the tag can be missing or wrong, which mean 1 (no transform) as in Pillow's
// exif_transpose, and the blocks Pillow's getexif raises on. Then where the orientation is looked for:
// the EXIF block, ImageMagick's hex profile, XMP.
import { expect, test } from "vitest";
import { metadataOrientation, readExifOrientation } from "../../../core/image/exif.ts";

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
  expect(readExifOrientation(tiff(true, [[ORIENTATION, 1, 6]]))).toBe(1); // BYTE: Pillow reads bytes, no number
  expect(readExifOrientation(tiff(true, [[ORIENTATION, 7, 6]]))).toBe(1); // UNDEFINED: bytes too
  const whole = tiff(true, [[ORIENTATION, SHORT, 6]]);
  expect(readExifOrientation(whole.subarray(0, whole.length - 8))).toBe(1); // the entry is cut
  expect(readExifOrientation(tiff(true, [[ORIENTATION, SHORT, 6]], 4000).subarray(0, 100))).toBe(1); // IFD past the end
  expect(readExifOrientation(new Uint8Array(0))).toBe(1);
});

test("signed types and a repeated tag are read as Pillow reads them (the last of a repeated tag wins)", () => {
  expect(readExifOrientation(tiff(true, [[ORIENTATION, 8, 3]]))).toBe(3); // SSHORT
  expect(readExifOrientation(tiff(false, [[ORIENTATION, 9, 8]]))).toBe(8); // SLONG
  expect(readExifOrientation(tiff(true, [[ORIENTATION, 6, 6]]))).toBe(6); // SBYTE
  const twice: [number, number, number][] = [
    [ORIENTATION, SHORT, 6],
    [ORIENTATION, SHORT, 3],
  ];
  expect(readExifOrientation(tiff(true, twice))).toBe(3);
  // An IFD declaring more entries than it holds keeps the ones before its end (hopper_bad_exif.jpg).
  const cut = tiff(true, [[ORIENTATION, SHORT, 5]]);
  cut[8] = 40;
  expect(readExifOrientation(cut)).toBe(5);
});

test("a block with no TIFF header is refused, as getexif raises on it, unless the JPEG plugin swallowed it", () => {
  const whole = tiff(true, [[ORIENTATION, SHORT, 6]]);
  const noOrder = whole.slice();
  noOrder[0] = noOrder[1] = 0x41;
  expect(() => readExifOrientation(noOrder, "PNG")).toThrow(/^The PNG's EXIF data is damaged: .*\.$/);
  expect(readExifOrientation(noOrder, "JPEG", true)).toBe(1);
  // Cut inside the header: struct.error, which nothing swallows.
  expect(() => readExifOrientation(whole.subarray(0, 6), "JPEG", true)).toThrow(/cut short/);
  const exif = new Uint8Array([0x45, 0x78, 0x69, 0x66, 0, 0, ...whole]);
  expect(readExifOrientation(exif)).toBe(6);
});

test("metadata: the EXIF block first, else ImageMagick's hex profile, and XMP only without the tag", () => {
  const six = tiff(true, [[ORIENTATION, SHORT, 6]]);
  const one = tiff(false, [[ORIENTATION, SHORT, 1]]);
  const none = tiff(true, [[0x010f, 2, 0]]);
  const hex = (b: Uint8Array) =>
    `\nexif\n      ${b.length + 6}\n457869660000${Buffer.from(b)
      .toString("hex")
      .replace(/(.{72})/g, "$1\n")}\n`;
  const xmp = '<x:xmpmeta><rdf:Description tiff:Orientation="8"/></x:xmpmeta>';
  expect(metadataOrientation({ exif: six, xmp }, "PNG")).toBe(6);
  expect(metadataOrientation({ exif: one, xmp }, "PNG")).toBe(1); // the tag is there: XMP is not read
  expect(metadataOrientation({ exif: none, xmp }, "PNG")).toBe(8);
  expect(metadataOrientation({ rawExif: hex(six), xmp }, "PNG")).toBe(6);
  expect(metadataOrientation({ exif: none, rawExif: hex(six) }, "PNG")).toBe(1); // "exif" wins over the profile
  expect(metadataOrientation({ xmp: "<tiff:Orientation>3</tiff:Orientation>" }, "PNG")).toBe(3);
  expect(metadataOrientation({ xmp: 'tiff:Orientation="9"' }, "PNG")).toBe(1);
  expect(() => metadataOrientation({ rawExif: "\nexif\n 4\nzz\n" }, "PNG")).toThrow(/not hexadecimal/);
  expect(() => metadataOrientation({ exif: "text" }, "PNG")).toThrow(/is text/);
});
