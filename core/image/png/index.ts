// PNG input: the chunk structure and IHDR are read and checked when the file is opened; decode inflates
// the IDAT stream as it arrives (./inflate.ts, or its wasm kernel through ./inflate-kernel.ts), undoes the
// row filters (here, or assembly/image/unfilter.ts) and pushes RGB rows as Pillow 9.4's
// Image.open(f).convert("RGB") makes them:
//   gray 1/2/4 bits  scaled to 0..255 (v * 255, v * 85, v * 17)
//   gray 16 bits     opened as mode I, whose conversion to RGB clips: min(v, 255)
//   RGB, RGBA, gray+alpha 16 bits   the high byte of each sample (alpha dropped, never composited)
//   palette          PLTE entries; an index past the palette's end is gray (i, i, i), as Pillow pads it
//   tRNS             ignored (convert("RGB") drops transparency)
//   metadata         the orientation exif_transpose applies, from eXIf or the text chunks (EXIF, ImageMagick's
//                    hex profile, XMP), and the refusals Pillow raises while reading them (./text.ts)
// The inflated stream's size is known from IHDR: inflating stops with a refusal as soon as it would exceed
// it, so a small file that inflates to gigabytes costs only the compressed bytes fed so far.
//
// Whole bytes are opened as before: every chunk is walked and checked first. A stream (../bytes.ts) is
// opened at its first IDAT chunk, and its IDAT data is inflated as it arrives. So that a stream is refused
// with the answer whole bytes get, a problem in the chunks (a CRC, the order, the end of the file) wins
// over a problem met while inflating (the zlib data, a filter type, too much data), which is held until
// the chunks after it are read.

import { buffers, sizeClass } from "../../buffers.ts";
import { crc32 } from "../../crc32.ts";
import { EdgevitError } from "../../errors.ts";
import { checkPixels, type Limits } from "../../limits.ts";
import { ByteSource, yieldToOthers } from "../bytes.ts";
import { decodeKernels, type DecodeKernels } from "../kernels.ts";
import { Inflater, Inflating, type ZlibStream } from "./inflate.ts";
import { KERNEL_INFLATER_SCRATCH_BYTES, KernelInflater } from "./inflate-kernel.ts";
import { PngMetadata } from "./text.ts";
import type { DecodedSize, ImageDecoder, ImageHeader, RowSink } from "../source.ts";

export const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a] as const;

export type PngLimits = Pick<Limits, "maxPixels" | "maxInterlacedPixels">;

// A side's bound, as JPEG's: it bounds a row's buffers (at most 512 KiB at 16-bit RGBA) whatever the area.
const MAX_SIDE = 65535;

// 8 MP of interlaced RGB is 24 MiB, what a loaded ViT-B/16 leaves in an isolate.
export const DEFAULT_MAX_INTERLACED_PIXELS = 8_000_000;

// Compressed bytes gathered before the inflater runs: a run of the wasm inflater copies the last 32 KiB
// of output in, so each should make more than that.
const PIECE = 32 * 1024;
// The inflater's output: zlib's 32 KiB of history and the output handed on at a time, reused to the end.
const INFLATE_WINDOW_BYTES = 256 * 1024;
// The window, the input (a piece and what a block header cut by its end left, at most twice a piece) and
// the dynamic blocks' tables, with room to spare.
const INFLATE_BYTES = INFLATE_WINDOW_BYTES + 2 * PIECE + 8 * 1024;
// Inflated bytes handled between two yields to the event loop (../bytes.ts).
const SLICE_BYTES = 4 << 20;

export interface PngInfo {
  width: number;
  height: number;
  bitDepth: number;
  colorType: number; // 0 gray, 2 RGB, 3 palette, 4 gray+alpha, 6 RGBA
  interlaced: boolean;
  palette: Uint8Array | null; // [entries][3]
  orientation: number; // 1..8 as exif_transpose finds it (./text.ts), 1 without one
}

// The chunks whose data ./text.ts reads.
const METADATA = new Set(["eXIf", "tEXt", "zTXt", "iTXt", "acTL", "fcTL", "fdAT"]);

const ALLOWED_DEPTHS: Record<number, readonly number[]> = {
  0: [1, 2, 4, 8, 16],
  2: [8, 16],
  3: [1, 2, 4, 8],
  4: [8, 16],
  6: [8, 16],
};
const CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };
const COLOR_NAMES: Record<number, string> = {
  0: "grayscale",
  2: "RGB",
  3: "palette",
  4: "grayscale+alpha",
  6: "RGBA",
};

// Adam7: per pass, the first column and row and the steps between them.
const ADAM7 = [
  { x0: 0, y0: 0, dx: 8, dy: 8 },
  { x0: 4, y0: 0, dx: 8, dy: 8 },
  { x0: 0, y0: 4, dx: 4, dy: 8 },
  { x0: 2, y0: 0, dx: 4, dy: 4 },
  { x0: 0, y0: 2, dx: 2, dy: 4 },
  { x0: 1, y0: 0, dx: 2, dy: 2 },
  { x0: 0, y0: 1, dx: 1, dy: 2 },
];

function corrupt(what: string): EdgevitError {
  return new EdgevitError("invalid_image", `The PNG is corrupt: ${what}.`);
}

function u32(b: Uint8Array, at: number): number {
  return ((b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]) >>> 0;
}

function chunkName(b: Uint8Array, at: number): string | null {
  let name = "";
  for (let i = 0; i < 4; i++) {
    const c = b[at + i];
    if (!((c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a))) return null;
    name += String.fromCharCode(c);
  }
  return name;
}

const truncatedHeader = () => new EdgevitError("invalid_image", "The PNG is truncated inside a chunk header.");
const endsEarly = (name: string) =>
  new EdgevitError("invalid_image", `The PNG is truncated: its ${name} chunk ends early.`);
const crcMismatch = (name: string) => corrupt(`the ${name} chunk's CRC does not match its data`);
const noIdat = () => new EdgevitError("invalid_image", "The PNG has no image data (IDAT).");
const noPalette = () => corrupt("a palette image has no PLTE chunk");

interface Chunks {
  info: PngInfo;
  firstIdat: number; // offset of the first IDAT chunk (its length field)
  meta: PngMetadata;
}

// Walks every chunk of whole bytes, checking the CRCs before the image data, the chunk order PNG requires
// and IHDR's fields.
function readChunks(bytes: Uint8Array): Chunks {
  checkSignature(bytes);
  let info: PngInfo | null = null;
  let meta: PngMetadata | null = null;
  let metaDone = false; // Pillow stops reading at an animated file's next frame
  let firstIdat = -1;
  let idatEnded = false;
  let pos = 8;
  while (pos < bytes.length) {
    if (pos + 8 > bytes.length) throw truncatedHeader();
    const length = u32(bytes, pos);
    const name = chunkName(bytes, pos + 4);
    if (name === null) throw corrupt(`the chunk at byte ${pos} has an invalid name`);
    if (length > 0x7fffffff) throw corrupt(`the ${name} chunk declares an impossible length`);
    const start = pos + 8;
    const end = start + length;
    if (end + 4 > bytes.length) throw endsEarly(name);
    // Pillow checks the CRCs of the chunks before the image data only.
    if (firstIdat < 0 && name !== "IDAT" && crc32(bytes.subarray(pos + 4, end)) !== u32(bytes, end)) {
      throw crcMismatch(name);
    }
    const data = bytes.subarray(start, end);
    const at = pos;
    pos = end + 4;
    if (info === null && name !== "IHDR") throw corrupt("IHDR is not the first chunk");
    if (name === "IHDR") {
      if (info !== null) throw corrupt("it has two IHDR chunks");
      info = readHeader(data);
      meta = new PngMetadata(info.width, info.height);
    } else if (name === "PLTE") {
      if (firstIdat >= 0) throw corrupt("PLTE comes after the image data");
      info!.palette = readPalette(data);
    } else if (name === "IDAT") {
      if (idatEnded) throw corrupt("its image data is split by other chunks");
      if (firstIdat < 0) {
        firstIdat = at;
        meta!.imageStarts();
      }
    } else if (METADATA.has(name) && !metaDone) {
      metaDone = !meta!.read(name, data, firstIdat >= 0);
      if (firstIdat >= 0) idatEnded = true;
    } else if (name === "IEND") {
      break;
    } else if (firstIdat >= 0) {
      idatEnded = true;
    }
  }
  if (info === null) throw new EdgevitError("invalid_image", "The PNG has no IHDR chunk.");
  if (firstIdat < 0) throw noIdat();
  if (info.colorType === 3 && info.palette === null) throw noPalette();
  info.orientation = meta!.orientation();
  return { info, firstIdat, meta: meta! };
}

function checkSignature(bytes: Uint8Array): void {
  for (let i = 0; i < 8; i++) {
    if (bytes[i] !== PNG_SIGNATURE[i]) {
      throw new EdgevitError("invalid_image", "The PNG's signature is damaged (it was perhaps sent as text).");
    }
  }
}

function readPalette(data: Uint8Array): Uint8Array {
  const length = data.length;
  if (length === 0 || length % 3 !== 0 || length > 768) {
    throw corrupt(`its palette has ${length} bytes, not 3 per entry for 1 to 256 entries`);
  }
  return data.slice();
}

// The chunks of a streamed PNG, one at a time, checked as readChunks checks them: a chunk's header and
// the small chunks read whole (IHDR, PLTE, eXIf) must fit the source's window; any other chunk's data
// passes through in pieces, its CRC computed on the way.
class ChunkReader {
  private readonly src: ByteSource;
  pos: number; // in the source's window
  verify: boolean; // false for whole bytes readChunks has already checked, and from the image data on

  constructor(src: ByteSource, pos: number, verify: boolean) {
    this.src = src;
    this.pos = pos;
    this.verify = verify;
  }

  // Whether n bytes from pos are in the window, waiting for them (false: the file ends first).
  private async have(n: number): Promise<boolean> {
    while (this.pos + n > this.src.bytes.length) {
      if (this.src.ended) return false;
      this.pos -= await this.src.more(this.pos, this.pos + n - this.src.bytes.length);
    }
    return true;
  }

  // The next chunk's name and length, or null at the end of the file.
  async next(): Promise<{ name: string; length: number } | null> {
    if (!(await this.have(1))) return null;
    if (!(await this.have(8))) throw truncatedHeader();
    const b = this.src.bytes;
    const length = u32(b, this.pos);
    const name = chunkName(b, this.pos + 4);
    if (name === null) throw corrupt(`the chunk at byte ${this.src.offset + this.pos} has an invalid name`);
    if (length > 0x7fffffff) throw corrupt(`the ${name} chunk declares an impossible length`);
    return { name, length };
  }

  // The chunk's data, whole and checked; a view valid until the next call.
  async whole(name: string, length: number): Promise<Uint8Array> {
    if (!(await this.have(12 + length))) throw endsEarly(name);
    const b = this.src.bytes;
    const end = this.pos + 8 + length;
    if (this.verify && crc32(b.subarray(this.pos + 4, end)) !== u32(b, end)) throw crcMismatch(name);
    const data = b.subarray(this.pos + 8, end);
    this.pos = end + 4;
    return data;
  }

  // The chunk's data handed to `take` piece by piece as it arrives, then its CRC checked.
  async pieces(name: string, length: number, take: (data: Uint8Array) => Promise<void> | void): Promise<void> {
    let crc = this.verify ? crc32(this.src.bytes.subarray(this.pos + 4, this.pos + 8)) : 0;
    this.pos += 8;
    for (let left = length; left > 0; ) {
      if (!(await this.have(1))) throw endsEarly(name);
      const n = Math.min(left, this.src.bytes.length - this.pos);
      const data = this.src.bytes.subarray(this.pos, this.pos + n);
      if (this.verify) crc = crc32(data, crc);
      this.pos += n;
      left -= n;
      await take(data);
    }
    if (!(await this.have(4))) throw endsEarly(name);
    if (this.verify && crc !== u32(this.src.bytes, this.pos)) throw crcMismatch(name);
    this.pos += 4;
  }
}

// A streamed PNG's chunks up to its first IDAT, checked as readChunks checks them; the reader is left at
// that IDAT. A palette image whose PLTE has not come yet is opened all the same: decode then reads the
// rest of the chunks for the refusal whole bytes get (a PLTE after the image data, or none).
async function readStreamHead(src: ByteSource): Promise<Chunks & { reader: ChunkReader }> {
  const reader = new ChunkReader(src, 8, true);
  let info: PngInfo | null = null;
  let meta: PngMetadata | null = null;
  for (;;) {
    const chunk = await reader.next();
    if (chunk === null) break;
    const { name, length } = chunk;
    if (info === null && name !== "IHDR") throw corrupt("IHDR is not the first chunk");
    if (name === "IDAT") {
      reader.verify = false; // as Pillow, which checks the CRCs of the chunks before the image data only
      meta!.imageStarts();
      info!.orientation = meta!.orientation();
      return { info: info!, firstIdat: reader.pos, reader, meta: meta! };
    }
    if (name === "IHDR") {
      const data = await reader.whole(name, length);
      if (info !== null) throw corrupt("it has two IHDR chunks");
      info = readHeader(data);
      meta = new PngMetadata(info.width, info.height);
    } else if (name === "PLTE") {
      info!.palette = readPalette(await reader.whole(name, length));
    } else if (METADATA.has(name)) {
      await readMetadata(reader, meta!, name, length, false);
    } else {
      await reader.pieces(name, length, () => {});
      if (name === "IEND") break;
    }
  }
  if (info === null) throw new EdgevitError("invalid_image", "The PNG has no IHDR chunk.");
  throw noIdat();
}

// A metadata chunk of a stream into `meta`: whole (it must fit the window), except fdAT, of which only the
// sequence number is read. Returns false where Pillow stops reading.
async function readMetadata(
  reader: ChunkReader,
  meta: PngMetadata,
  name: string,
  length: number,
  afterImage: boolean,
): Promise<boolean> {
  if (name !== "fdAT") return meta.read(name, await reader.whole(name, length), afterImage);
  const head = new Uint8Array(Math.min(4, length));
  let got = 0;
  await reader.pieces(name, length, (data) => {
    const n = Math.min(data.length, head.length - got);
    head.set(data.subarray(0, n), got);
    got += n;
  });
  return meta.read(name, head, afterImage);
}

function readHeader(d: Uint8Array): PngInfo {
  if (d.length !== 13) throw corrupt(`IHDR has ${d.length} bytes instead of 13`);
  const width = u32(d, 0);
  const height = u32(d, 4);
  const [bitDepth, colorType, compression, filter, interlace] = d.subarray(8, 13);
  if (width === 0 || height === 0 || width > 0x7fffffff || height > 0x7fffffff) {
    throw corrupt(`IHDR declares an impossible size of ${width}x${height}`);
  }
  const depths = ALLOWED_DEPTHS[colorType];
  if (!depths) throw corrupt(`IHDR declares an unknown color type ${colorType}`);
  if (!depths.includes(bitDepth)) {
    throw corrupt(`IHDR declares a bit depth of ${bitDepth}, which ${COLOR_NAMES[colorType]} images cannot have`);
  }
  if (compression !== 0) throw corrupt(`IHDR declares an unknown compression method ${compression}`);
  if (filter !== 0) throw corrupt(`IHDR declares an unknown filter method ${filter}`);
  if (interlace > 1) throw corrupt(`IHDR declares an unknown interlace method ${interlace}`);
  return { width, height, bitDepth, colorType, interlaced: interlace === 1, palette: null, orientation: 1 };
}

// One pass's geometry (the whole image when not interlaced); passes of zero columns or rows have no bytes.
interface Pass {
  x0: number;
  y0: number;
  dx: number;
  dy: number;
  cols: number;
  rows: number;
  stride: number; // bytes per row, without the filter byte
}

function passesOf(info: PngInfo): Pass[] {
  const bits = info.bitDepth * CHANNELS[info.colorType];
  const layout = info.interlaced ? ADAM7 : [{ x0: 0, y0: 0, dx: 1, dy: 1 }];
  return layout
    .map((p) => {
      const cols = Math.ceil((info.width - p.x0) / p.dx);
      const rows = Math.ceil((info.height - p.y0) / p.dy);
      return {
        ...p,
        cols: Math.max(cols, 0),
        rows: Math.max(rows, 0),
        stride: Math.ceil((Math.max(cols, 0) * bits) / 8),
      };
    })
    .filter((p) => p.cols > 0 && p.rows > 0);
}

// Undoes the row filter in place: `row` holds the filtered bytes, `prev` the previous unfiltered row of
// the same pass (zeros for the first), `bpp` bytes per complete pixel (at least 1). The wasm kernel's twin
// (assembly/image/unfilter.ts).
export function unfilter(type: number, row: Uint8Array, prev: Uint8Array, bpp: number, n: number): void {
  switch (type) {
    case 0:
      return;
    case 1:
      for (let i = bpp; i < n; i++) row[i] = (row[i] + row[i - bpp]) & 255;
      return;
    case 2:
      for (let i = 0; i < n; i++) row[i] = (row[i] + prev[i]) & 255;
      return;
    case 3:
      for (let i = 0; i < bpp; i++) row[i] = (row[i] + (prev[i] >> 1)) & 255;
      for (let i = bpp; i < n; i++) row[i] = (row[i] + ((row[i - bpp] + prev[i]) >> 1)) & 255;
      return;
    case 4:
      for (let i = 0; i < bpp; i++) row[i] = (row[i] + prev[i]) & 255;
      for (let i = bpp; i < n; i++) {
        // Paeth, branch-free (the hot spot of photo PNGs, whose rows are mostly Paeth and whose noise
        // defeats branch prediction): |p - a| = |b - c|, |p - b| = |a - c|, |p - c| = |a + b - 2c|.
        const a = row[i - bpp];
        const b = prev[i];
        const c = prev[i - bpp];
        let d = b - c;
        const pa = (d ^ (d >> 31)) - (d >> 31);
        d = a - c;
        const pb = (d ^ (d >> 31)) - (d >> 31);
        d = a + b - c - c;
        const pc = (d ^ (d >> 31)) - (d >> 31);
        const notA = ((pb - pa) | (pc - pa)) >> 31; // 0 when pa <= pb and pa <= pc
        const notB = (pc - pb) >> 31; // 0 when pb <= pc
        row[i] = (row[i] + ((a & ~notA) | (((b & ~notB) | (c & notB)) & notA))) & 255;
      }
      return;
  }
}

// unfilter by the wasm kernel when it is installed and the rows fit its scratch: the row (and the one
// above it) copied in, the row copied back.
function unfilterRow(
  kernels: DecodeKernels | null,
  type: number,
  row: Uint8Array,
  prev: Uint8Array,
  bpp: number,
  n: number,
): void {
  if (type === 0) return;
  const padded = (n + 31) & ~15;
  if (kernels === null || 2 * padded > kernels.maxScratchBytes) {
    unfilter(type, row, prev, bpp, n);
    return;
  }
  const { at, heap } = kernels.area(2 * padded);
  const prevAt = at + padded;
  heap.set(row.subarray(0, n), at);
  if (type !== 1) heap.set(prev.subarray(0, n), prevAt);
  kernels.exports.unfilterRow(type, at, prevAt, bpp, n);
  row.set(heap.subarray(at, at + n));
}

// The RGB conversion of one unfiltered row of `cols` pixels into rgb[at..], every `step` pixels apart.
type ToRgb = (row: Uint8Array, cols: number, rgb: Uint8Array, at: number, step: number) => void;

function converter(info: PngInfo): ToRgb {
  const { bitDepth: depth, colorType } = info;
  if (colorType === 0 || colorType === 3) {
    // One sample per pixel: a table from the sample to its RGB triple.
    const lut = new Uint8Array(256 * 3);
    const palette = info.palette;
    const entries = palette ? palette.length / 3 : 0;
    for (let v = 0; v < 256; v++) {
      if (colorType === 3) {
        const inside = v < entries;
        for (let c = 0; c < 3; c++) lut[v * 3 + c] = inside ? palette![v * 3 + c] : v;
      } else {
        const g = depth === 1 ? (v ? 255 : 0) : depth === 2 ? v * 85 : depth === 4 ? v * 17 : v;
        lut.fill(g & 255, v * 3, v * 3 + 3);
      }
    }
    if (depth === 16) {
      return (row, cols, rgb, at, step) => {
        for (let x = 0, o = at; x < cols; x++, o += step * 3) {
          const v = row[2 * x] ? 255 : row[2 * x + 1];
          rgb[o] = rgb[o + 1] = rgb[o + 2] = v;
        }
      };
    }
    const perByte = 8 / depth;
    const mask = (1 << depth) - 1;
    return (row, cols, rgb, at, step) => {
      for (let x = 0, o = at; x < cols; x++, o += step * 3) {
        const shift = 8 - depth * ((x % perByte) + 1);
        const v = (row[Math.floor(x / perByte)] >> shift) & mask;
        rgb[o] = lut[v * 3];
        rgb[o + 1] = lut[v * 3 + 1];
        rgb[o + 2] = lut[v * 3 + 2];
      }
    };
  }
  // Gray+alpha, RGB, RGBA at 8 or 16 bits: the (high) bytes of the colour samples.
  const bytesPerSample = depth / 8;
  const pixelBytes = CHANNELS[colorType] * bytesPerSample;
  const gray = colorType === 4;
  if (colorType === 2 && depth === 8) {
    // The row is the RGB row: copied at once when its pixels are adjacent.
    return (row, cols, rgb, at, step) => {
      if (step === 1) {
        rgb.set(row.subarray(0, 3 * cols), at);
        return;
      }
      for (let x = 0, s = 0, o = at; x < cols; x++, s += 3, o += step * 3) {
        rgb[o] = row[s];
        rgb[o + 1] = row[s + 1];
        rgb[o + 2] = row[s + 2];
      }
    };
  }
  return (row, cols, rgb, at, step) => {
    for (let x = 0, s = 0, o = at; x < cols; x++, s += pixelBytes, o += step * 3) {
      if (gray) {
        rgb[o] = rgb[o + 1] = rgb[o + 2] = row[s];
      } else {
        rgb[o] = row[s];
        rgb[o + 1] = row[s + bytesPerSample];
        rgb[o + 2] = row[s + 2 * bytesPerSample];
      }
    }
  };
}

class PngDecoder implements ImageDecoder {
  readonly header: ImageHeader;
  readonly info: PngInfo;
  private readonly src: ByteSource;
  private readonly firstIdat: number; // in the source's window when opened
  private reader: ChunkReader | null; // a stream's, left at its first IDAT
  private readonly meta: PngMetadata;
  private used = false;

  constructor(src: ByteSource, chunks: Chunks, reader: ChunkReader | null, limits: PngLimits) {
    const { info } = chunks;
    checkPixels(info.width, info.height, limits.maxPixels);
    if (info.width > MAX_SIDE || info.height > MAX_SIDE) {
      throw new EdgevitError(
        "image_too_large",
        `The image is ${info.width}x${info.height}; PNGs are accepted up to ${MAX_SIDE} pixels on a side.`,
      );
    }
    const pixels = info.width * info.height;
    const interlacedLimit = limits.maxInterlacedPixels ?? DEFAULT_MAX_INTERLACED_PIXELS;
    if (info.interlaced && pixels > interlacedLimit) {
      throw new EdgevitError(
        "image_too_large",
        `The image is an interlaced PNG of ${info.width}x${info.height} (${(pixels / 1e6).toFixed(1)} MP); ` +
          `interlaced PNGs are accepted up to ${(interlacedLimit / 1e6).toFixed(1)} MP (save it without interlacing).`,
      );
    }
    this.src = src;
    this.info = info;
    this.firstIdat = chunks.firstIdat;
    this.meta = chunks.meta;
    this.reader = reader;
    this.header = {
      format: "png",
      width: info.width,
      height: info.height,
      orientation: info.orientation,
      scales: [1],
    };
  }

  // The two filter rows, the RGB row (or, interlaced, the whole RGB image), the palette's table, the
  // inflater and the source's window.
  memoryBytes(_scale: number): number {
    const { info } = this;
    const maxStride = Math.max(...passesOf(info).map((p) => p.stride));
    const rgb = info.interlaced ? info.width * info.height * 3 : info.width * 3;
    // The rows, the RGB buffer and the inflater's window come from the pool, in its size classes.
    return (
      2 * sizeClass(maxStride + 1) +
      sizeClass(rgb) +
      2 * 768 +
      sizeClass(INFLATE_WINDOW_BYTES) +
      INFLATE_BYTES -
      INFLATE_WINDOW_BYTES +
      this.src.memoryBytes
    );
  }

  // Rows reach `sink` as the data is inflated (not interlaced), or all at the end (interlaced).
  async decode(scale: number, sink: RowSink): Promise<DecodedSize> {
    if (scale !== 1) throw new RangeError(`PNG offers no scale ${scale}, only 1`);
    if (!this.src.whole && this.used) throw new RangeError("a streamed PNG decodes once");
    this.used = true;
    // From the isolate's pool, handed back however the decode ends.
    const held: ArrayBuffer[] = [];
    const pooled = (bytes: number) => {
      held.push(buffers.acquire(bytes));
      return new Uint8Array(held[held.length - 1], 0, bytes);
    };
    try {
      return await this.decodeInto(pooled, sink);
    } finally {
      for (const buffer of held) buffers.release(buffer);
    }
  }

  private async decodeInto(pooled: (bytes: number) => Uint8Array, sink: RowSink): Promise<DecodedSize> {
    const { info } = this;
    const { width, height } = info;
    const passes = passesOf(info);
    const bpp = Math.max(1, (info.bitDepth * CHANNELS[info.colorType]) >> 3);
    const maxStride = Math.max(...passes.map((p) => p.stride));
    let cur = pooled(maxStride + 1); // filter byte, then the row
    let prev = pooled(maxStride + 1);
    // Not interlaced: one output row, reused. Interlaced: the whole image, [height][width][3].
    const rgb = pooled(info.interlaced ? width * height * 3 : width * 3);

    let passIndex = 0;
    let row = 0; // within the pass
    let filled = 0; // bytes of `cur` filled
    const toRgb = converter(info);
    const done = () => passIndex >= passes.length;
    const kernels = decodeKernels();

    const consume = (data: Uint8Array) => {
      let at = 0;
      while (at < data.length) {
        if (done()) throw corrupt("its image data holds more than IHDR's size needs");
        const pass = passes[passIndex];
        const need = pass.stride + 1 - filled;
        const take = Math.min(need, data.length - at);
        cur.set(data.subarray(at, at + take), filled);
        filled += take;
        at += take;
        if (filled < pass.stride + 1) break;
        const type = cur[0];
        if (type > 4) throw corrupt(`row ${row} uses an unknown filter type ${type}`);
        const line = cur.subarray(1);
        unfilterRow(kernels, type, line, prev.subarray(1), bpp, pass.stride);
        if (info.interlaced) {
          const y = pass.y0 + row * pass.dy;
          toRgb(line, pass.cols, rgb, (y * width + pass.x0) * 3, pass.dx);
        } else {
          toRgb(line, width, rgb, 0, 1);
          sink(rgb, row, 1);
        }
        [cur, prev] = [prev, cur];
        filled = 0;
        if (++row === pass.rows) {
          row = 0;
          passIndex++;
          prev.fill(0);
        }
      }
    };

    // A stream's palette image whose PLTE has not come before the image data is not inflated: only its
    // chunks are read, for the refusal.
    const inflater =
      info.colorType === 3 && info.palette === null
        ? null
        : new IdatInflater(kernels, pooled(INFLATE_WINDOW_BYTES), consume, done);
    try {
      await this.readImageData(inflater);
    } catch (error) {
      inflater?.abort();
      throw error;
    } finally {
      this.src.close();
    }
    if (inflater === null) throw noPalette();
    await inflater.finish();
    if (!done()) throw new EdgevitError("invalid_image", "The PNG is truncated: its image data ends early.");
    if (info.interlaced) {
      const stride = width * 3;
      for (let y = 0; y < height; y++) sink(rgb.subarray(y * stride, (y + 1) * stride), y, 1);
    }
    return { width, height };
  }

  // The chunks from the first IDAT on: IDAT data into the inflater, the rest checked as readChunks does.
  private async readImageData(inflater: IdatInflater | null): Promise<void> {
    const streamed = this.reader !== null;
    const reader = this.reader ?? new ChunkReader(this.src, this.firstIdat, false);
    this.reader = null;
    let idatEnded = false;
    let metaDone = false;
    for (;;) {
      const chunk = await reader.next();
      if (chunk === null) break;
      const { name, length } = chunk;
      if (name === "IDAT") {
        if (idatEnded) throw corrupt("its image data is split by other chunks");
        await reader.pieces(name, length, (data) => inflater?.write(data));
      } else if (streamed && METADATA.has(name) && !metaDone) {
        // Whole bytes had these read when opened.
        metaDone = !(await readMetadata(reader, this.meta, name, length, true));
        idatEnded = true;
      } else {
        await reader.pieces(name, length, () => {});
        if (name === "IHDR") throw corrupt("it has two IHDR chunks");
        if (name === "PLTE") throw corrupt("PLTE comes after the image data");
        if (name === "IEND") break;
        idatEnded = true;
      }
    }
    if (streamed && this.meta.orientation() !== this.header.orientation) throw lateOrientation();
  }
}

// Whole bytes read their orientation from every chunk before decoding; a stream's comes from those before
// the image data, and a later one that changes it has come after the rows it turns.
function lateOrientation(): EdgevitError {
  return new EdgevitError(
    "unsupported_media_type",
    "The PNG gives its EXIF orientation after its image data, too late for a streamed upload; save it with its metadata before the image data.",
  );
}

// The IDAT stream inflated as it arrives (./inflate.ts), into a window of output that is reused, each
// piece of output handed to `consume` (which throws to refuse). A damaged end of stream (the Adler-32, a
// missing final block, bytes after it) after every row is in is accepted, as Pillow, which stops reading at
// the last row, accepts it. Once inflating has failed, further pieces are dropped and finish() reports the
// failure.
class IdatInflater {
  private readonly inflater: ZlibStream;
  private failure: unknown = null;
  private stopped = false;
  private sinceYield = 0;
  private readonly consume: (data: Uint8Array) => void;
  private readonly finished: () => boolean;

  // The wasm inflater when the kernels are installed and a run fits their scratch.
  constructor(
    kernels: DecodeKernels | null,
    window: Uint8Array,
    consume: (data: Uint8Array) => void,
    finished: () => boolean,
  ) {
    const wasm = kernels !== null && KERNEL_INFLATER_SCRATCH_BYTES <= kernels.maxScratchBytes;
    this.inflater = wasm ? new KernelInflater(kernels, window, PIECE) : new Inflater(window, PIECE);
    this.consume = consume;
    this.finished = finished;
  }

  // Run once a PIECE of bytes is in hand (and by finish()), so that the inflater's input stays one piece
  // whatever the reads' sizes.
  async write(data: Uint8Array): Promise<void> {
    for (let at = 0; at < data.length && !this.stopped; ) {
      const n = Math.min(data.length - at, Math.max(1, PIECE - this.inflater.unread));
      this.inflater.feed(data.subarray(at, at + n));
      at += n;
      if (this.inflater.unread >= PIECE) await this.drain(false);
    }
  }

  private async drain(final: boolean): Promise<void> {
    for (;;) {
      const state = this.inflater.run(final);
      const out = this.inflater.take();
      try {
        // Past the last row any further byte is refused: the output is bounded by IHDR, not by the stream.
        if (out.length > 0) this.consume(out);
      } catch (error) {
        this.fail(error);
        return;
      }
      this.sinceYield += out.length;
      if (this.sinceYield >= SLICE_BYTES) {
        this.sinceYield = 0;
        await yieldToOthers();
      }
      if (state === Inflating.WindowFull) continue;
      // Bytes after the stream's end are refused as zlib's inflate refuses them.
      if (state === Inflating.Failed || (state === Inflating.End && this.inflater.unread > 0)) {
        if (!this.finished()) this.fail(corrupt("its compressed image data (zlib) is damaged or truncated"));
        this.stopped = true;
      }
      return;
    }
  }

  private fail(error: unknown): void {
    this.failure = error;
    this.stopped = true;
  }

  async finish(): Promise<void> {
    if (!this.stopped) await this.drain(true);
    if (this.failure !== null) throw this.failure;
  }

  abort(): void {
    this.stopped = true;
  }
}

// Reads and checks the chunks and IHDR; no pixel memory is spent until decode. Whole bytes are walked to
// their end first, as before; a source (a stream) is read up to its first IDAT.
export function openPng(bytes: Uint8Array, limits: PngLimits): ImageDecoder & { info: PngInfo };
export function openPng(source: ByteSource, limits: PngLimits): Promise<ImageDecoder & { info: PngInfo }>;
export function openPng(
  input: Uint8Array | ByteSource,
  limits: PngLimits,
): (ImageDecoder & { info: PngInfo }) | Promise<ImageDecoder & { info: PngInfo }> {
  if (input instanceof Uint8Array) return new PngDecoder(ByteSource.of(input), readChunks(input), null, limits);
  return openPngSource(input, limits);
}

async function openPngSource(src: ByteSource, limits: PngLimits): Promise<PngDecoder> {
  while (src.bytes.length < 8 && !src.ended) await src.more(0, 8 - src.bytes.length);
  checkSignature(src.bytes);
  const head = await readStreamHead(src);
  return new PngDecoder(src, head, head.reader, limits);
}
