// BMP input, read as Pillow 9.4's BmpImagePlugin reads it and then converted as convert("RGB") converts:
//   headers      OS/2 v1 (12 bytes: 16-bit sides, 3-byte palette entries), Windows v3/v4/v5 and OS/2 v2
//                (40, 108, 124, 64 bytes); a height whose top byte is 0xFF is top-down, else bottom-up
//   1, 4, 8 bits a palette (ramp-gray past its end, as Pillow pads it), or gray when the palette is the
//                identity ramp (Pillow opens such files as L, or as 1 for two entries of black and white)
//   16 bits      5-5-5 (BI_RGB) or the 5-6-5 and 5-5-5 BITFIELDS masks, scaled as v * 255 / max
//   24, 32 bits  BGR, BGRX, and the BITFIELDS byte orders Pillow knows; alpha is dropped
//   RLE8, RLE4   Pillow's own run decoder, quirks included (a delta reads four bytes and uses the last
//                two, absolute runs align to even file offsets, an odd RLE4 absolute run loses its last
//                pixel); too few pixels is a refusal
// Every other depth, compression and bitfields layout is refused, as Pillow refuses it.
//
// Uncompressed rows are read in place from the file's bytes (in either direction), so the decoder holds one
// RGB row; RLE files are expanded into one byte per pixel first, the order of their rows being the file's.

import { EdgevitError } from "../../errors.ts";
import type { Limits } from "../../limits.ts";
import { yieldToOthers } from "../bytes.ts";
import type { DecodedSize, ImageDecoder, RowSink } from "../source.ts";
import { WholeFileDecoder } from "../whole-file.ts";

// Pixels converted between yields to the event loop.
const SLICE_PIXELS = 1 << 20;

const RAW = 0;
const RLE8 = 1;
const RLE4 = 2;
const BITFIELDS = 3;

// How the stored pixels become RGB: Pillow's raw modes, by the bits each reads per pixel.
type RawMode = "1" | "L" | "P;1" | "P;4" | "P" | "BGR;15" | "BGR;16" | "BGR" | "BGRX" | "XBGR" | "RGBA" | "BGRA";
const RAW_BITS: Record<RawMode, number> = {
  "1": 1,
  L: 8,
  "P;1": 1,
  "P;4": 4,
  P: 8,
  "BGR;15": 16,
  "BGR;16": 16,
  BGR: 24,
  BGRX: 32,
  XBGR: 32,
  RGBA: 32,
  BGRA: 32,
};
const BIT_MODES: Record<number, RawMode> = { 1: "P;1", 4: "P;4", 8: "P", 16: "BGR;15", 24: "BGR", 32: "BGRX" };

// The BITFIELDS masks Pillow reads, keyed "bits:r,g,b[,a]" (hex), and the raw mode each means.
const MASKS: Record<string, RawMode> = {
  "32:ff0000,ff00,ff,0": "BGRX",
  "32:ff000000,ff0000,ff00,0": "XBGR",
  "32:ff000000,ff0000,ff00,ff": "XBGR", // ABGR: the same bytes, alpha dropped
  "32:ff,ff00,ff0000,ff000000": "RGBA",
  "32:ff0000,ff00,ff,ff000000": "BGRA",
  "32:0,0,0,0": "BGRA",
  "24:ff0000,ff00,ff": "BGR",
  "16:f800,7e0,1f": "BGR;16",
  "16:7c00,3e0,1f": "BGR;15",
};

export interface BmpInfo {
  width: number;
  height: number;
  bits: number; // per stored pixel
  compression: number;
  topDown: boolean;
  rawMode: RawMode;
  palette: Uint8Array | null; // [256][3]: the file's entries, then the ramp
  dataOffset: number; // where the pixels start
  stride: number; // bytes per stored row (uncompressed)
}

export type BmpLimits = Pick<Limits, "maxPixels">;

function refuse(what: string): EdgevitError {
  return new EdgevitError("invalid_image", `The BMP ${what}.`);
}

const u16 = (b: Uint8Array, at: number) => b[at] | (b[at + 1] << 8);
const u32 = (b: Uint8Array, at: number) => (b[at] | (b[at + 1] << 8) | (b[at + 2] << 16) | (b[at + 3] << 24)) >>> 0;

function readInfo(b: Uint8Array): BmpInfo {
  if (b.length < 18) throw refuse("is truncated inside its file header");
  let dataOffset = u32(b, 10);
  const headerSize = u32(b, 14);
  if (b.length < 14 + Math.max(4, headerSize)) throw refuse("is truncated inside its bitmap header");
  const h = 18; // the header's fields, after its size
  let width: number;
  let height: number;
  let bits: number;
  let compression = RAW;
  let topDown = false;
  let colors: number;
  let entryBytes = 4;
  let at = 14 + headerSize; // what follows the header: masks (40-byte BITFIELDS), then the palette
  let masks: number[] | null = null;
  if (headerSize === 12) {
    width = u16(b, h);
    height = u16(b, h + 2);
    bits = u16(b, h + 6);
    colors = 0;
    entryBytes = 3;
  } else if (headerSize === 40 || headerSize === 64 || headerSize === 108 || headerSize === 124) {
    topDown = b[h + 7] === 0xff;
    width = u32(b, h);
    height = topDown ? 2 ** 32 - u32(b, h + 4) : u32(b, h + 4);
    bits = u16(b, h + 10);
    compression = u32(b, h + 12);
    colors = u32(b, h + 28);
    if (compression === BITFIELDS) {
      if (headerSize >= 56) {
        masks = [0, 1, 2, 3].map((i) => u32(b, h + 36 + 4 * i));
      } else {
        if (b.length < at + 12) throw refuse("is truncated inside its bitfields masks");
        masks = [u32(b, at), u32(b, at + 4), u32(b, at + 8), 0];
        at += 12;
      }
    }
  } else {
    throw refuse(`has a header of ${headerSize} bytes, which is no BMP header type`);
  }
  if (colors === 0) colors = 2 ** bits;
  if (dataOffset === 14 + headerSize && bits <= 8) dataOffset += 4 * colors;

  let rawMode = BIT_MODES[bits];
  if (rawMode === undefined) throw refuse(`has ${bits} bits per pixel, which Pillow does not read`);
  if (compression === BITFIELDS) {
    const [r, g, bl, a] = masks!.map((m) => m.toString(16));
    const key = bits === 32 ? `32:${r},${g},${bl},${a}` : `${bits}:${r},${g},${bl}`;
    const mode = bits >= 16 ? MASKS[key] : undefined;
    if (mode === undefined) throw refuse("uses a bitfields layout that Pillow does not read");
    rawMode = mode;
  } else if (compression !== RAW && compression !== RLE8 && compression !== RLE4) {
    const names: Record<number, string> = { 4: " (embedded JPEG)", 5: " (embedded PNG)" };
    throw refuse(`uses compression ${compression}${names[compression] ?? ""}, which Pillow does not read`);
  }

  let palette: Uint8Array | null = null;
  if (bits <= 8) {
    if (!(colors > 0 && colors <= 65536)) throw refuse(`declares a palette of ${colors} colors`);
    const stored = b.subarray(at, Math.min(b.length, at + entryBytes * colors));
    // Pillow drops a palette that is the identity ramp (two entries: black then white) and reads gray.
    let gray = true;
    for (let i = 0; i < colors && gray; i++) {
      const value = (colors === 2 ? i * 255 : i) & 255;
      const e = i * entryBytes;
      if (e + 3 > stored.length || stored[e] !== value || stored[e + 1] !== value || stored[e + 2] !== value) {
        gray = false;
      }
    }
    if (gray) {
      rawMode = colors === 2 ? "1" : "L";
    } else {
      const entries = Math.floor(stored.length / entryBytes);
      if (entries > 256) throw refuse(`has a palette of ${entries} colors, more than the 256 Pillow takes`);
      palette = new Uint8Array(256 * 3);
      for (let i = 0; i < 256; i++) palette.fill(i, i * 3, i * 3 + 3);
      for (let i = 0; i < entries; i++) {
        palette[i * 3] = stored[i * entryBytes + 2];
        palette[i * 3 + 1] = stored[i * entryBytes + 1];
        palette[i * 3 + 2] = stored[i * entryBytes];
      }
    }
  }
  if (compression === RLE8 || compression === RLE4) {
    if (rawMode !== "L" && palette === null) {
      throw refuse(`is run-length encoded at ${bits} bits per pixel, which Pillow does not read`);
    }
  }
  if (width === 0 || height === 0) throw refuse(`declares an empty image of ${width}x${height}`);
  return {
    width,
    height,
    bits,
    compression,
    topDown,
    rawMode,
    palette,
    // No offset: the pixels follow what Pillow has read (the palette, for up to 8 bits).
    dataOffset: dataOffset || Math.min(b.length, at + (bits <= 8 ? entryBytes * colors : 0)),
    stride: (Math.floor((width * bits + 31) / 32) * 32) / 8,
  };
}

// One stored row (or RLE indices) to RGB.
function converter(info: BmpInfo): (src: Uint8Array, at: number, rgb: Uint8Array) => void {
  const { width, palette } = info;
  const mode = info.compression === RAW || info.compression === BITFIELDS ? info.rawMode : "P";
  const lut = palette ?? new Uint8Array(256 * 3).map((_, i) => Math.floor(i / 3));
  const scale5 = Uint8Array.from({ length: 32 }, (_, v) => Math.floor((v * 255) / 31));
  const scale6 = Uint8Array.from({ length: 64 }, (_, v) => Math.floor((v * 255) / 63));
  switch (mode) {
    case "1":
    case "P;1":
    case "P;4": {
      const depth = RAW_BITS[mode];
      const perByte = 8 / depth;
      const mask = (1 << depth) - 1;
      const one = mode === "1";
      return (src, at, rgb) => {
        for (let x = 0; x < width; x++) {
          let v = (src[at + Math.floor(x / perByte)] >> (8 - depth * ((x % perByte) + 1))) & mask;
          if (one) v *= 255;
          rgb[3 * x] = lut[3 * v];
          rgb[3 * x + 1] = lut[3 * v + 1];
          rgb[3 * x + 2] = lut[3 * v + 2];
        }
      };
    }
    case "L":
    case "P":
      return (src, at, rgb) => {
        for (let x = 0; x < width; x++) {
          const v = src[at + x];
          rgb[3 * x] = lut[3 * v];
          rgb[3 * x + 1] = lut[3 * v + 1];
          rgb[3 * x + 2] = lut[3 * v + 2];
        }
      };
    case "BGR;15":
    case "BGR;16": {
      const six = mode === "BGR;16";
      return (src, at, rgb) => {
        for (let x = 0, s = at; x < width; x++, s += 2) {
          const p = src[s] | (src[s + 1] << 8);
          rgb[3 * x] = six ? scale5[(p >> 11) & 31] : scale5[(p >> 10) & 31];
          rgb[3 * x + 1] = six ? scale6[(p >> 5) & 63] : scale5[(p >> 5) & 31];
          rgb[3 * x + 2] = scale5[p & 31];
        }
      };
    }
    default: {
      // Byte positions of R, G, B within each pixel.
      const [r, g, b] = { BGR: [2, 1, 0], BGRX: [2, 1, 0], BGRA: [2, 1, 0], XBGR: [3, 2, 1], RGBA: [0, 1, 2] }[mode];
      const step = RAW_BITS[mode] / 8;
      return (src, at, rgb) => {
        for (let x = 0, s = at; x < width; x++, s += step) {
          rgb[3 * x] = src[s + r];
          rgb[3 * x + 1] = src[s + g];
          rgb[3 * x + 2] = src[s + b];
        }
      };
    }
  }
}

// Pillow's BmpRleDecoder: width * height indices in file order, or a refusal. Pillow's loop may run past
// the last pixel (it checks the count only between steps); what lies past it is never read.
function expandRle(b: Uint8Array, info: BmpInfo): Uint8Array {
  const { width, height } = info;
  const rle4 = info.compression === RLE4;
  const total = width * height;
  const data = new Uint8Array(total);
  let n = 0;
  let x = 0;
  let pos = info.dataOffset;
  const put = (v: number) => {
    if (n < total) data[n] = v;
    n++;
  };
  while (n < total) {
    if (pos + 2 > b.length) break;
    const count = b[pos];
    const byte = b[pos + 1];
    pos += 2;
    if (count > 0) {
      const run = x + count > width ? Math.max(0, width - x) : count;
      if (rle4) {
        for (let i = 0; i < run; i++) put(i % 2 === 0 ? byte >> 4 : byte & 15);
      } else {
        data.fill(byte, n, Math.min(total, n + run));
        n += run;
      }
      x += run;
    } else if (byte === 0) {
      n = Math.ceil(n / width) * width; // end of line: zeros to the row's end
      x = 0;
    } else if (byte === 1) {
      break;
    } else if (byte === 2) {
      // Pillow reads two bytes, checks them, then reads the two after them as the offsets.
      if (pos + 2 > b.length) break;
      if (pos + 4 > b.length) throw refuse("is truncated inside a run-length delta");
      n += b[pos + 2] + b[pos + 3] * width;
      pos += 4;
      x = n % width;
    } else {
      const want = rle4 ? byte >> 1 : byte;
      const got = Math.min(want, Math.max(0, b.length - pos));
      for (let i = 0; i < got; i++) {
        if (rle4) {
          put(b[pos + i] >> 4);
          put(b[pos + i] & 15);
        } else {
          put(b[pos + i]);
        }
      }
      pos += got;
      if (got < want) break;
      x += byte;
      if (pos % 2 !== 0) pos++;
    }
  }
  if (n < total) throw refuse("is truncated: its run-length data ends before the last pixel");
  return data;
}

class BmpDecoder extends WholeFileDecoder<BmpInfo> {
  constructor(bytes: Uint8Array, limits: BmpLimits) {
    super("bmp", bytes, readInfo(bytes), limits.maxPixels);
  }

  // The file, one RGB row, and one index per pixel for RLE files.
  memoryBytes(scale: number): number {
    this.checkScale(scale);
    const { width, height, compression } = this.info;
    const rle = compression === RLE8 || compression === RLE4;
    return this.bytes.length + width * 3 + (rle ? width * height : 0);
  }

  async decode(scale: number, sink: RowSink): Promise<DecodedSize> {
    this.checkScale(scale);
    const { info, bytes } = this;
    const { width, height, topDown, compression } = info;
    const toRgb = converter(info);
    const rgb = new Uint8Array(width * 3);
    // The stored row holding image row y.
    const stored = (y: number) => (topDown ? y : height - 1 - y);
    const slice = Math.max(1, Math.floor(SLICE_PIXELS / width));
    if (compression === RLE8 || compression === RLE4) {
      const indices = expandRle(bytes, info);
      for (let y = 0; y < height; y++) {
        toRgb(indices, stored(y) * width, rgb);
        sink(rgb, y, 1);
        if (y % slice === slice - 1) await yieldToOthers();
      }
    } else {
      const rowBytes = Math.ceil((width * RAW_BITS[info.rawMode]) / 8);
      if (rowBytes > info.stride) throw refuse("declares rows shorter than its pixels");
      const needed = info.dataOffset + (height - 1) * info.stride + rowBytes;
      if (needed > bytes.length) throw refuse("is truncated: its pixel data ends before the last row");
      for (let y = 0; y < height; y++) {
        toRgb(bytes, info.dataOffset + stored(y) * info.stride, rgb);
        sink(rgb, y, 1);
        if (y % slice === slice - 1) await yieldToOthers();
      }
    }
    return { width, height };
  }
}

// Reads the headers and the palette; no pixel memory is spent until decode.
export function openBmp(bytes: Uint8Array, limits: BmpLimits): ImageDecoder & { info: BmpInfo } {
  return new BmpDecoder(bytes, limits);
}
