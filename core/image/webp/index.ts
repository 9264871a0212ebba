// WebP input, as Pillow 9.4 reads it: libwebp's WebPAnimDecoder (demux, then WebPDecode of the first
// frame into an RGBA canvas), then convert("RGB").
//   container   the RIFF chunks as libwebp's demuxer checks them: a simple file (VP8 or VP8L, an ALPH
//               chunk ignored without VP8X), an extended one (VP8X: canvas size, flags; one image exactly
//               the canvas's size, or ANIM then ANMF frames inside the canvas); bytes past the RIFF size
//               are ignored, a file shorter than it is refused
//   first frame decoded into a transparent black canvas at its offset (an animation's canvas may be larger
//               than its first frame: the rest is black once alpha is dropped)
//   lossy       ./vp8.ts, libwebp's fancy upsampling and YUV->RGB; an ALPH chunk is decoded to find the
//               damage libwebp refuses, its values then dropped as convert("RGB") drops them
//   lossless    ./vp8l.ts
// Every pixel of a lossless image is held while decoding, as libwebp holds them; a lossy one is pushed a
// macroblock row at a time (a few rows of its planes held). Rows are pushed top to bottom.

import { EdgevitError } from "../../errors.ts";
import type { Limits } from "../../limits.ts";
import { yieldToOthers } from "../bytes.ts";
import type { DecodedSize, ImageDecoder, RowSink } from "../source.ts";
import { WholeFileDecoder } from "../whole-file.ts";
import { decodeVp8, vp8Info, vp8PlaneBytes } from "./vp8.ts";
import { readExifOrientation } from "../exif.ts";
import { checkLosslessAlpha, decodeVp8l, vp8lInfo, vp8lMemoryBytes, WebpError } from "./vp8l.ts";

export type WebpLimits = Pick<Limits, "maxPixels">;

const MAX_CHUNK_PAYLOAD = 0xfffffff6;
const FLAG_ANIMATION = 0x02;
const FLAG_ALPHA = 0x10;
const FLAG_EXIF = 0x08;
const VALID_FLAGS = 0x3e;
// Pixels pushed between yields to the event loop.
const SLICE_PIXELS = 1 << 20;

interface Chunk {
  fourcc: string;
  start: number; // of the payload
  size: number; // unpadded
}

// A VP8 or VP8L chunk with the size its header declares, read once when the chunk is found.
interface ImageChunk extends Chunk {
  width: number;
  height: number;
}

export interface WebpInfo {
  width: number; // the canvas
  height: number;
  frame: { x: number; y: number; width: number; height: number; lossless: boolean };
  image: ImageChunk; // the first frame's VP8 or VP8L payload
  alpha: Chunk | null; // its ALPH payload, when libwebp decodes it
  exif: Uint8Array | null; // the first EXIF chunk's payload, which the demuxer keeps with VP8X's EXIF flag
}

function refuse(what: string): EdgevitError {
  return new EdgevitError("invalid_image", `The WebP ${what}.`);
}

const u32 = (b: Uint8Array, at: number) => (b[at] | (b[at + 1] << 8) | (b[at + 2] << 16) | (b[at + 3] << 24)) >>> 0;
const u24 = (b: Uint8Array, at: number) => b[at] | (b[at + 1] << 8) | (b[at + 2] << 16);
const tag = (b: Uint8Array, at: number) => String.fromCharCode(b[at], b[at + 1], b[at + 2], b[at + 3]);

// The size libwebp's WebPGetFeatures reads from an image chunk, or a refusal where it fails.
function imageSize(b: Uint8Array, c: Chunk): { width: number; height: number } {
  const data = b.subarray(c.start, c.start + c.size);
  try {
    return c.fourcc === "VP8L" ? vp8lInfo(data) : vp8Info(data);
  } catch (e) {
    if (e instanceof WebpError) throw refuse(`image chunk has an invalid header (${e.message})`);
    throw e;
  }
}

// The chunk header at pos, checked against the RIFF chunk's end: its tag, its payload's size, and that
// size padded to even (the distance to the next chunk, less the 8 header bytes).
function chunkHeader(b: Uint8Array, pos: number, end: number): { fourcc: string; size: number; padded: number } {
  if (end - pos < 8) throw refuse("is truncated inside a chunk header");
  const fourcc = tag(b, pos);
  const size = u32(b, pos + 4);
  if (size > MAX_CHUNK_PAYLOAD) throw refuse(`has a ${fourcc} chunk of an impossible size`);
  const padded = size + (size & 1);
  if (padded > end - pos - 8) throw refuse(`is truncated: its ${fourcc} chunk ends past the file's end`);
  return { fourcc, size, padded };
}

// One frame's chunks as the demuxer's StoreFrame collects them from `pos`: an optional ALPH, then VP8 or
// VP8L; any other chunk ends the frame. Returns the frame and where its chunks end.
function storeFrame(
  b: Uint8Array,
  pos: number,
  end: number,
): { alpha: Chunk | null; image: ImageChunk | null; pos: number } {
  let alpha: Chunk | null = null;
  let image: ImageChunk | null = null;
  for (;;) {
    const { fourcc, size, padded } = chunkHeader(b, pos, end);
    const chunk = { fourcc, start: pos + 8, size };
    if (fourcc === "ALPH" && alpha === null && image === null) {
      alpha = chunk;
    } else if ((fourcc === "VP8 " || fourcc === "VP8L") && image === null) {
      if (fourcc === "VP8L" && alpha !== null) throw refuse("has an ALPH chunk before a lossless image");
      image = { ...chunk, ...imageSize(b, chunk) };
    } else {
      return { alpha, image, pos };
    }
    pos += 8 + padded;
    if (pos === end) return { alpha, image, pos };
  }
}

function readInfo(b: Uint8Array): WebpInfo {
  if (b.length < 20) throw refuse("is truncated inside its RIFF header");
  const first = tag(b, 12);
  if (first !== "VP8 " && first !== "VP8L" && first !== "VP8X") {
    throw refuse(`starts with a ${JSON.stringify(first)} chunk, not VP8, VP8L or VP8X`);
  }
  const riffSize = u32(b, 4);
  if (riffSize < 8 || riffSize > MAX_CHUNK_PAYLOAD) throw refuse("has an impossible RIFF size");
  const end = riffSize + 8; // bytes past the RIFF chunk are not read
  if (b.length < end) throw refuse("is truncated: the file is shorter than its RIFF size");

  if (first !== "VP8X") {
    // A simple file: its image is the canvas; an ALPH chunk without VP8X's alpha flag is ignored.
    const { image } = storeFrame(b, 12, end);
    const { width, height } = image!;
    const frame = { x: 0, y: 0, width, height, lossless: image!.fourcc === "VP8L" };
    return { width, height, frame, image: image!, alpha: null, exif: null };
  }

  const vp8xSize = u32(b, 16);
  if (vp8xSize < 10 || vp8xSize > MAX_CHUNK_PAYLOAD) throw refuse("has a VP8X chunk of an invalid size");
  const vp8xPadded = vp8xSize + (vp8xSize & 1);
  if (vp8xPadded > end - 20) throw refuse("is truncated inside its VP8X chunk");
  const flags = b[20];
  const width = u24(b, 24) + 1;
  const height = u24(b, 27) + 1;
  if (width * height >= 2 ** 32) throw refuse(`declares a canvas of ${width}x${height}`);
  const animated = (flags & FLAG_ANIMATION) !== 0;
  let pos = 20 + vp8xPadded;
  if (end - pos < 8) throw refuse("has no image after its VP8X chunk");

  let first_: { alpha: Chunk | null; image: ImageChunk; x: number; y: number } | null = null;
  let frames = 0;
  let anim = false;
  let previousComplete = true;
  let exif: Uint8Array | null = null;
  while (pos < end) {
    const { fourcc, size, padded } = chunkHeader(b, pos, end);
    if (fourcc === "VP8X") throw refuse("has two VP8X chunks");
    if (fourcc === "ALPH" || fourcc === "VP8 " || fourcc === "VP8L") {
      if (anim || animated) throw refuse("has an image outside the frames of its animation");
      if (frames > 0) throw refuse("has two images");
      const f = storeFrame(b, pos, end);
      if (f.image === null) throw refuse("has an ALPH chunk without an image");
      // Without the alpha flag the demuxer drops the ALPH chunk.
      first_ = { alpha: flags & FLAG_ALPHA ? f.alpha : null, image: f.image, x: 0, y: 0 };
      frames = 1;
      pos = f.pos;
    } else if (fourcc === "ANIM") {
      if (padded < 6) throw refuse("has an ANIM chunk of an invalid size");
      anim = true;
      pos += 8 + padded;
    } else if (fourcc === "ANMF") {
      if (!anim) throw refuse("has an animation frame before its ANIM chunk");
      if (padded < 16) throw refuse("has an ANMF chunk of an invalid size");
      const x = 2 * u24(b, pos + 8);
      const y = 2 * u24(b, pos + 11);
      const fw = u24(b, pos + 14) + 1;
      const fh = u24(b, pos + 17) + 1;
      if (fw * fh >= 2 ** 32) throw refuse(`has a frame of ${fw}x${fh}`);
      const start = pos + 24;
      if (end - start < Math.max(8, padded - 16)) throw refuse("is truncated inside an animation frame");
      const f = storeFrame(b, start, end);
      if (f.pos - start > padded - 16) throw refuse("has an animation frame whose image overruns it");
      if (animated && (f.image !== null || f.alpha !== null)) {
        if (!previousComplete) throw refuse("has an animation frame without its image");
        previousComplete = f.image !== null;
        if (f.image !== null) {
          if (x + f.image.width > width || y + f.image.height > height) {
            throw refuse("has an animation frame reaching past its canvas");
          }
        }
        if (frames === 0 && f.image !== null) first_ = { alpha: f.alpha, image: f.image, x, y };
        frames++;
      }
      // What the frame's chunks leave of its payload is read as further chunks, as the demuxer does.
      pos = f.pos;
    } else {
      if (fourcc === "EXIF" && flags & FLAG_EXIF && exif === null) exif = b.subarray(pos + 8, pos + 8 + size);
      pos += 8 + padded;
    }
  }
  if (flags & ~VALID_FLAGS) throw refuse("has unknown flags in its VP8X chunk");
  if (first_ === null || !previousComplete) throw refuse("has no complete image");
  const { image, alpha, x, y } = first_;
  const frame = { x, y, width: image.width, height: image.height, lossless: image.fourcc === "VP8L" };
  if (!animated && (image.width !== width || image.height !== height)) {
    throw refuse(`declares a canvas of ${width}x${height} for an image of ${image.width}x${image.height}`);
  }
  return { width, height, frame, image, alpha, exif };
}

// An ALPH chunk as libwebp's alpha decoder checks it: the header byte, then the raw plane's size or the
// lossless stream.
async function checkAlpha(b: Uint8Array, alpha: Chunk, width: number, height: number): Promise<void> {
  const data = b.subarray(alpha.start, alpha.start + alpha.size);
  if (data.length <= 1) throw refuse("has an empty ALPH chunk");
  const method = data[0] & 3;
  const filter = (data[0] >> 2) & 3;
  const pre = (data[0] >> 4) & 3;
  if (method > 1 || pre > 1 || data[0] >> 6 !== 0 || filter > 3)
    throw refuse("has an ALPH chunk with an invalid header");
  if (method === 0) {
    if (data.length - 1 < width * height) throw refuse("has an ALPH chunk shorter than its alpha plane");
    return;
  }
  await checkLosslessAlpha(data.subarray(1), width, height);
}

class WebpDecoder extends WholeFileDecoder<WebpInfo> {
  constructor(bytes: Uint8Array, limits: WebpLimits) {
    // Pillow's exif_transpose applies the EXIF chunk's orientation.
    super("webp", bytes, readInfo(bytes), limits.maxPixels, (info) =>
      info.exif === null ? 1 : readExifOrientation(info.exif, "WebP"),
    );
  }

  // The file and the canvas's RGB row; lossless: what the VP8L stream's decode holds (./vp8l.ts's
  // vp8lMemoryBytes: every pixel, its sub-images, caches, codes and rows) and the frame's RGB row; lossy: the
  // planes' rows (./vp8.ts), the per-column state and RGB row (16 bytes per column) and, with a compressed
  // ALPH chunk, what its lossless stream's decode holds.
  memoryBytes(scale: number): number {
    this.checkScale(scale);
    const { width, frame, image, alpha } = this.info;
    const compressedAlpha = alpha !== null && alpha.size > 1 && (this.bytes[alpha.start] & 3) === 1;
    const alphaBytes = compressedAlpha ? vp8lMemoryBytes(frame.width, frame.height, alpha.size - 1) : 0;
    const own = frame.lossless
      ? vp8lMemoryBytes(frame.width, frame.height, image.size) + frame.width * 3
      : vp8PlaneBytes(frame.width) + frame.width * 16 + alphaBytes;
    return this.bytes.length + width * 3 + own;
  }

  async decode(scale: number, sink: RowSink): Promise<DecodedSize> {
    this.checkScale(scale);
    const { info, bytes } = this;
    const { width, height, frame, image } = info;
    const data = bytes.subarray(image.start, image.start + image.size);
    const row = new Uint8Array(width * 3); // transparent black outside the frame
    const inside = frame.x === 0 && frame.width === width;
    const slice = Math.max(1, Math.floor(SLICE_PIXELS / width));
    let y = 0;
    const blankRows = async (end: number) => {
      row.fill(0);
      for (; y < end; y++) {
        if (y % slice === slice - 1) await yieldToOthers();
        sink(row, y, 1);
      }
    };
    // One of the frame's rows (RGB, frame.width wide) at the next canvas row.
    const frameRow = (rgb: Uint8Array) => {
      if (inside) {
        sink(rgb, y++, 1);
        return;
      }
      row.fill(0);
      row.set(rgb, frame.x * 3);
      sink(row, y++, 1);
    };
    try {
      if (frame.lossless) {
        const decoded = await decodeVp8l(data);
        const rgb = new Uint8Array(frame.width * 3);
        await blankRows(frame.y);
        for (let r = 0; r < frame.height; r++) {
          if (y % slice === slice - 1) await yieldToOthers();
          const argb = decoded.nextRow();
          for (let x = 0; x < frame.width; x++) {
            const p = argb[x];
            rgb[3 * x] = (p >> 16) & 255;
            rgb[3 * x + 1] = (p >> 8) & 255;
            rgb[3 * x + 2] = p & 255;
          }
          frameRow(rgb);
        }
      } else {
        // libwebp fails on a damaged ALPH chunk whatever its VP8 data holds: checked before any row goes.
        if (info.alpha) await checkAlpha(bytes, info.alpha, frame.width, frame.height);
        await blankRows(frame.y);
        await decodeVp8(data, frameRow);
      }
    } catch (e) {
      if (e instanceof WebpError) throw refuse(`image data is damaged (${e.message})`);
      throw e;
    }
    await blankRows(height);
    return { width, height };
  }
}

// Reads the RIFF chunks and the first frame's image header; no pixel memory is spent until decode.
export function openWebp(bytes: Uint8Array, limits: WebpLimits): ImageDecoder & { info: WebpInfo } {
  return new WebpDecoder(bytes, limits);
}
