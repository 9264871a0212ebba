// The orientation ImageOps.exif_transpose applies, read where Pillow 9.4's Image.getexif() reads it, for
// every decoder: the EXIF block (JPEG's first APP1 "Exif\0" payload, PNG's eXIf chunk or a tEXt chunk named
// "exif", WebP's EXIF chunk: the same TIFF structure, "Exif\0\0" in front or not); without one, PNG's "Raw
// profile type exif" text (ImageMagick's hex dump of the block); and when the block has no Orientation tag,
// the first tiff:Orientation in a PNG's XMP text "XML:com.adobe.xmp" (Pillow 9.4 reads XMP from no other
// format). Where getexif raises, exif_transpose raises and transformers' load_image fails: those files are
// refused.

import { EdgevitError } from "../errors.ts";

export interface ImageMetadata {
  // info["exif"]; a string for a compressed or international text chunk named "exif", which getexif fails on
  exif?: Uint8Array | string;
  rawExif?: string; // PNG text "Raw profile type exif"
  xmp?: string; // PNG text "XML:com.adobe.xmp"
}

const ORIENTATION = 0x0112;
// TIFF field types Pillow reads, with the bytes per value; values of other types are skipped.
const TYPE_BYTES: Record<number, number> = {
  1: 1,
  2: 1,
  3: 2,
  4: 4,
  5: 8,
  6: 1,
  7: 1,
  8: 2,
  9: 4,
  10: 8,
  11: 4,
  12: 8,
  13: 4,
  16: 8,
};

function damaged(format: string, what: string): EdgevitError {
  return new EdgevitError("invalid_image", `The ${format}'s EXIF data is damaged: ${what}.`);
}

// The Orientation tag's value as Pillow reads it from a TIFF structure (`data`, "Exif\0\0" in front or not):
// null when the tag is absent (or the IFD ends before it); 0 for a value of a type that is no number.
// Throws where Pillow raises: a header shorter than 8 bytes or a BigTIFF one (struct.error), or no TIFF
// header at all (SyntaxError), which `swallowSyntax` reads as no tags, as Pillow's JPEG plugin does when
// it has read the block while opening the file.
function exifOrientationTag(data: Uint8Array, format = "image", swallowSyntax = false): number | null {
  let tiff = data;
  if (tiff.length >= 6 && String.fromCharCode(...tiff.subarray(0, 6)) === "Exif\0\0") tiff = tiff.subarray(6);
  if (tiff.length === 0) return null;
  const magic = String.fromCharCode(...tiff.subarray(0, 4));
  if (!["MM\0*", "II*\0", "MM*\0", "II\0*", "MM\0+", "II+\0"].includes(magic)) {
    if (swallowSyntax) return null;
    throw damaged(format, "its EXIF block does not start with a TIFF header");
  }
  if (tiff.length < 8 || magic.includes("+")) throw damaged(format, "its EXIF block's TIFF header is cut short");
  const little = tiff[0] === 0x49;
  const view = new DataView(tiff.buffer, tiff.byteOffset, tiff.byteLength);
  const u16 = (o: number) => view.getUint16(o, little);
  const u32 = (o: number) => view.getUint32(o, little);
  // Pillow keeps every entry read before the IFD ends early, and the last of a repeated tag.
  let found: { type: number; count: number; at: number } | null = null;
  let at = u32(4);
  if (at + 2 > tiff.length) return null;
  const count = u16(at);
  at += 2;
  for (let i = 0; i < count; i++, at += 12) {
    if (at + 12 > tiff.length) break;
    const tag = u16(at);
    const type = u16(at + 2);
    const n = u32(at + 4);
    const size = TYPE_BYTES[type] === undefined ? -1 : n * TYPE_BYTES[type];
    if (size <= 0) continue; // an unknown type, or no values
    let value = at + 8;
    if (size > 4) {
      value = u32(at + 8);
      if (value + size > tiff.length) break; // Pillow stops at a value past the end
    }
    if (tag === ORIENTATION) found = { type, count: n, at: value };
  }
  if (found === null) return null;
  const { type, at: v } = found;
  switch (type) {
    case 3:
      return u16(v);
    case 4:
    case 13:
      return u32(v);
    case 6:
      return view.getInt8(v);
    case 8:
      return view.getInt16(v, little);
    case 9:
      return view.getInt32(v, little);
    case 5:
    case 10: {
      const [num, den] = type === 5 ? [u32(v), u32(v + 4)] : [view.getInt32(v, little), view.getInt32(v + 4, little)];
      return den === 0 ? 0 : num / den;
    }
    case 11:
      return view.getFloat32(v, little);
    case 12:
      return view.getFloat64(v, little);
    case 16:
      return Number(view.getBigUint64(v, little));
    default:
      return 0; // BYTE, ASCII, UNDEFINED: bytes or text, which never equal an orientation
  }
}

// The orientation 1..8 exif_transpose applies (1 for none) from a TIFF structure alone.
export function readExifOrientation(data: Uint8Array, format = "image", swallowSyntax = false): number {
  return transposeOf(exifOrientationTag(data, format, swallowSyntax));
}

const transposeOf = (value: number | null) =>
  value !== null && Number.isInteger(value) && value >= 2 && value <= 8 ? value : 1;

// bytes.fromhex: pairs of hex digits, ASCII whitespace allowed between pairs; null where Python raises.
function fromHex(text: string): Uint8Array | null {
  const out = new Uint8Array(text.length >> 1);
  let n = 0;
  for (let i = 0; i < text.length; ) {
    if (/[ \t\n\v\f\r]/.test(text[i])) {
      i++;
      continue;
    }
    const byte = /^[0-9a-fA-F]{2}$/.test(text.slice(i, i + 2)) ? Number.parseInt(text.slice(i, i + 2), 16) : -1;
    if (byte < 0) return null;
    out[n++] = byte;
    i += 2;
  }
  return out.subarray(0, n);
}

// The orientation 1..8 exif_transpose applies to an image with this metadata, as Image.getexif() finds it.
export function metadataOrientation(meta: ImageMetadata, format: string): number {
  let block: Uint8Array | null = null;
  if (typeof meta.exif === "string") throw damaged(format, 'its text chunk "exif" is text, not an EXIF block');
  if (meta.exif !== undefined) block = meta.exif;
  else if (meta.rawExif !== undefined) {
    block = fromHex(meta.rawExif.split("\n").slice(3).join(""));
    if (block === null) throw damaged(format, 'its "Raw profile type exif" text is not hexadecimal');
  }
  const tag = block === null ? null : exifOrientationTag(block, format);
  if (tag !== null) return transposeOf(tag);
  const xmp = meta.xmp?.match(/tiff:Orientation(="|>)([0-9])/);
  return xmp ? transposeOf(Number(xmp[2])) : 1;
}
