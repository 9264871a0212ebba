// GIF input: the first frame, as Pillow 9.4's GifImagePlugin reads it and convert("RGB") converts it.
//   canvas       the logical screen, grown to hold the first frame when the frame reaches past it
//   mode         P with the frame's palette (local, else global), L (gray = index) when there is none or
//                the palette is the identity ramp; a palette shorter than an index is ramp-gray past its end
//   outside the frame   the transparent index when the frame declares one, else index 0; the frame itself
//                is written whole (convert("RGB") drops transparency, so a transparent pixel is its colour)
//   LZW          Pillow's decoder: codes grow to 12 bits without early change, a full table stops growing,
//                an end code before the last pixel reads on into whatever bytes follow (as Pillow feeds its
//                decoder more of the file), and running out of bytes is a refusal
// Rows are pushed as the LZW stream completes them; an interlaced frame is held (one byte per pixel) and
// pushed at the end.

import { EdgevitError } from "../../errors.ts";
import type { Limits } from "../../limits.ts";
import { yieldToOthers } from "../bytes.ts";
import type { DecodedSize, ImageDecoder, RowSink } from "../source.ts";
import { WholeFileDecoder } from "../whole-file.ts";

export type GifLimits = Pick<Limits, "maxPixels">;

// Pillow's ImageFile.load hands its decoder the file in pieces of this size; an early end code reads on
// only into bytes beyond the pieces already handed over.
const PILLOW_BLOCK = 65536;
const TABLE = 4096; // LZW codes of up to 12 bits
// Pixels decoded between yields to the event loop.
const SLICE_PIXELS = 1 << 20;

export interface GifInfo {
  width: number; // the canvas
  height: number;
  frame: { x: number; y: number; width: number; height: number }; // where the first frame is decoded
  interlaced: boolean;
  lut: Uint8Array; // [256][3]: index to RGB (the palette, or gray)
  fill: number; // the index outside the frame
  minCodeSize: number;
  dataOffset: number; // the first sub-block of the frame's LZW data
}

function refuse(what: string): EdgevitError {
  return new EdgevitError("invalid_image", `The GIF ${what}.`);
}

function truncated(where: string): EdgevitError {
  return refuse(`is truncated inside ${where}`);
}

const u16 = (b: Uint8Array, at: number) => b[at] | (b[at + 1] << 8);

// Pillow keeps a palette only when it is not the identity ramp (entry i = (i, i, i)).
function isRamp(p: Uint8Array): boolean {
  for (let i = 0; i < p.length; i += 3) {
    if (p[i] !== i / 3) return false;
    if (i + 1 >= p.length) throw truncated("a palette");
    if (p[i + 1] !== p[i]) return false;
    if (i + 2 >= p.length) throw truncated("a palette");
    if (p[i + 2] !== p[i]) return false;
  }
  return true;
}

function lutOf(palette: Uint8Array | null): Uint8Array {
  const lut = new Uint8Array(256 * 3);
  for (let i = 0; i < 256; i++) lut.fill(i, 3 * i, 3 * i + 3);
  if (palette) lut.set(palette.subarray(0, Math.floor(palette.length / 3) * 3));
  return lut;
}

function readInfo(b: Uint8Array): GifInfo {
  const sig = String.fromCharCode(...b.subarray(0, 6));
  if (sig !== "GIF87a" && sig !== "GIF89a") throw refuse("signature is neither GIF87a nor GIF89a");
  if (b.length < 13) throw truncated("its screen descriptor");
  let width = u16(b, 6);
  let height = u16(b, 8);
  let pos = 13;
  let global: Uint8Array | null = null;
  if (b[10] & 0x80) {
    const p = b.subarray(pos, Math.min(b.length, pos + (3 << ((b[10] & 7) + 1))));
    pos += p.length;
    if (!isRamp(p)) global = p;
  }
  // The blocks before the first image: extensions (only the graphic control's transparency matters here)
  // and any stray byte, which Pillow skips.
  let fill = 0; // the transparent index, when a graphic control extension declares one
  const skipSubBlocks = () => {
    for (;;) {
      if (pos >= b.length) return;
      const size = b[pos++];
      if (size === 0) return;
      pos += size;
    }
  };
  // One sub-block, as Pillow's data(): null for a zero size or the end of the file.
  const subBlock = (): Uint8Array | null => {
    if (pos >= b.length || b[pos] === 0) {
      if (pos < b.length) pos++;
      return null;
    }
    const size = b[pos++];
    const block = b.subarray(pos, Math.min(b.length, pos + size));
    pos += size;
    return block;
  };
  for (;;) {
    if (pos >= b.length || b[pos] === 0x3b) throw refuse("has no image: it ends before its first frame");
    const tag = b[pos++];
    if (tag === 0x21) {
      if (pos >= b.length) throw truncated("an extension");
      const label = b[pos++];
      const block = subBlock();
      if (label === 0xf9) {
        if (block === null || block.length < 3 || (block[0] & 1 && block.length < 4)) {
          throw refuse("has a graphic control extension too short for its fields");
        }
        if (block[0] & 1) fill = block[3];
      } else if (label === 0xfe) {
        for (let more = block; more !== null; ) more = subBlock();
        continue;
      } else if (label === 0xff) {
        if (block === null) throw refuse("has an empty application extension");
        if (String.fromCharCode(...block.subarray(0, 11)) === "NETSCAPE2.0" && subBlock() === null) {
          throw refuse("has a NETSCAPE2.0 extension without its data");
        }
      }
      skipSubBlocks();
    } else if (tag === 0x2c) {
      if (pos + 9 > b.length) throw truncated("an image descriptor");
      const x = u16(b, pos);
      const y = u16(b, pos + 2);
      const fw = u16(b, pos + 4);
      const fh = u16(b, pos + 6);
      const flags = b[pos + 8];
      pos += 9;
      width = Math.max(width, x + fw);
      height = Math.max(height, y + fh);
      let local: Uint8Array | null | false = null;
      if (flags & 0x80) {
        const p = b.subarray(pos, Math.min(b.length, pos + (3 << ((flags & 7) + 1))));
        pos += p.length;
        local = isRamp(p) ? false : p;
      }
      if (pos >= b.length) throw truncated("an image descriptor");
      const minCodeSize = b[pos++];
      if (minCodeSize > 12) throw refuse(`declares an LZW code size of ${minCodeSize} bits (at most 12)`);
      // Pillow's mode follows the frame's palette; when a ramp local palette hides the global one, the
      // global one still reaches the image (Pillow puts it on the L image, which makes it P).
      const palette = local || global;
      // Pillow decodes a tile whose left edge and right edge are both 0 over the whole canvas.
      const frame = x === 0 && fw === 0 ? { x: 0, y: 0, width, height } : { x, y, width: fw, height: fh };
      if (frame.width <= 0 || frame.height <= 0) throw refuse(`has an empty first frame (${fw}x${fh})`);
      return {
        width,
        height,
        frame,
        interlaced: (flags & 0x40) !== 0,
        lut: lutOf(palette),
        fill,
        minCodeSize,
        dataOffset: pos,
      };
    }
  }
}

// Pillow's LZW decoder (GifDecode.c) over the frame's sub-blocks, calling `row(y)` with each completed row
// of `out` (the frame's rows, or one row reused when `interlaced` is false).
async function decodeLzw(b: Uint8Array, info: GifInfo, out: Uint8Array, rowDone: (y: number) => void): Promise<void> {
  const { width: xsize, height: ysize } = info.frame;
  const bits = info.minCodeSize;
  const clear = 1 << bits;
  const end = clear + 1;
  const link = new Uint16Array(TABLE);
  const data = new Uint8Array(TABLE);
  const stack = new Uint8Array(TABLE); // a code's string but its first byte, filled from the right
  let stackTop = TABLE;
  let next = 0;
  let codeSize = 0;
  let codeMask = 0;
  let state = 1; // 1: reset the table, 2: first code after a clear, 3: decoding
  let lastCode = 0;
  let lastData = 0;

  let pos = info.dataOffset;
  let handed = Math.min(b.length, pos + PILLOW_BLOCK); // the file as far as Pillow has read it
  let blockLeft = 0;
  let bitBuffer = 0;
  let bitCount = 0;
  // Pillow's decoder returns to be fed more at an end code or a sub-block not yet read whole; at the
  // file's end that is "image file is truncated".
  const readMore = () => {
    if (handed >= b.length) throw refuse("is truncated: its first frame's data ends before the last pixel");
    handed = Math.min(b.length, handed + PILLOW_BLOCK);
  };

  let x = 0;
  let y = 0;
  let step = info.interlaced ? 8 : 1;
  let pass = info.interlaced ? 1 : 0;
  let rowAt = 0; // where row y starts in `out`
  const place = (yy: number) => (info.interlaced ? yy * xsize : 0);

  let sinceYield = 0;
  // Writes one pixel; returns true when the last row is done.
  const put = (v: number): boolean => {
    out[rowAt + x] = v;
    if (++x < xsize) return false;
    rowDone(y);
    sinceYield += xsize;
    x = 0;
    y += step;
    while (y >= ysize) {
      if (pass === 1) {
        y = 4;
        pass = 2;
      } else if (pass === 2) {
        y = 2;
        step = 4;
        pass = 3;
      } else if (pass === 3) {
        y = 1;
        step = 2;
        pass = 0;
      } else {
        return true;
      }
    }
    rowAt = place(y);
    return false;
  };

  for (;;) {
    if (sinceYield >= SLICE_PIXELS) {
      sinceYield = 0;
      await yieldToOthers();
    }
    if (state === 1) {
      next = clear + 2;
      codeSize = bits + 1;
      codeMask = (1 << codeSize) - 1;
      stackTop = TABLE;
      state = 2;
    }
    if (stackTop < TABLE) {
      for (let i = stackTop; i < TABLE; i++) if (put(stack[i])) return;
      stackTop = TABLE;
      continue;
    }
    while (bitCount < codeSize) {
      if (blockLeft > 0) {
        bitBuffer |= b[pos++] << bitCount;
        bitCount += 8;
        blockLeft--;
      } else {
        while (pos >= handed || pos + b[pos] + 1 > handed) readMore();
        blockLeft = b[pos++];
      }
    }
    let c = bitBuffer & codeMask;
    bitBuffer >>>= codeSize;
    bitCount -= codeSize;
    if (c === clear) {
      if (state !== 2) state = 1;
      continue;
    }
    if (c === end) {
      readMore();
      continue;
    }
    if (state === 2) {
      if (c > clear) throw refuse("has damaged LZW data (a code past the table after a clear code)");
      lastData = c & 255;
      lastCode = c;
      state = 3;
    } else {
      const thisCode = c;
      if (c > next) throw refuse("has damaged LZW data (a code past the table)");
      if (c === next) {
        stack[--stackTop] = lastData;
        c = lastCode;
      }
      while (c >= clear) {
        if (stackTop <= 0 || c >= TABLE) throw refuse("has damaged LZW data (a string longer than the table)");
        stack[--stackTop] = data[c];
        c = link[c];
      }
      lastData = c & 255;
      if (next < TABLE) {
        data[next] = c;
        link[next] = lastCode;
        if (next === codeMask && codeSize < 12) {
          codeSize++;
          codeMask = (1 << codeSize) - 1;
        }
        next++;
      }
      lastCode = thisCode;
    }
    if (put(lastData)) return;
  }
}

class GifDecoder extends WholeFileDecoder<GifInfo> {
  constructor(bytes: Uint8Array, limits: GifLimits) {
    super("gif", bytes, readInfo(bytes), limits.maxPixels);
  }

  // The file, one RGB row, the frame's indices (one row, or the whole frame when interlaced), the tables.
  memoryBytes(scale: number): number {
    this.checkScale(scale);
    const { width, frame, interlaced } = this.info;
    return this.bytes.length + width * 3 + frame.width * (interlaced ? frame.height : 1) + 4 * TABLE;
  }

  async decode(scale: number, sink: RowSink): Promise<DecodedSize> {
    this.checkScale(scale);
    const { info } = this;
    const { width, height, frame, lut, fill } = info;
    const rgb = new Uint8Array(width * 3);
    // The canvas row y: fill outside the frame, the frame's indices (from `indices` at `at`) inside it.
    const emit = (y: number, indices: Uint8Array | null, at: number) => {
      for (let x = 0; x < width; x++) {
        const inside = indices !== null && x >= frame.x && x < frame.x + frame.width;
        const v = inside ? indices[at + x - frame.x] : fill;
        rgb[3 * x] = lut[3 * v];
        rgb[3 * x + 1] = lut[3 * v + 1];
        rgb[3 * x + 2] = lut[3 * v + 2];
      }
      sink(rgb, y, 1);
    };
    const frameEnd = frame.y + frame.height;
    for (let y = 0; y < frame.y; y++) emit(y, null, 0);
    if (info.interlaced) {
      const indices = new Uint8Array(frame.width * frame.height);
      await decodeLzw(this.bytes, info, indices, () => {});
      for (let y = frame.y; y < frameEnd; y++) emit(y, indices, (y - frame.y) * frame.width);
    } else {
      const row = new Uint8Array(frame.width);
      await decodeLzw(this.bytes, info, row, (y) => emit(frame.y + y, row, 0));
    }
    for (let y = frameEnd; y < height; y++) emit(y, null, 0);
    return { width, height };
  }
}

// Reads the screen descriptor and the blocks up to the first frame's data; no pixel memory is spent
// until decode.
export function openGif(bytes: Uint8Array, limits: GifLimits): ImageDecoder & { info: GifInfo } {
  return new GifDecoder(bytes, limits);
}
