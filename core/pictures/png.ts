// A minimal PNG encoder for 8-bit RGB: signature, IHDR, one IDAT (zlib via CompressionStream, which
// workerd and Node both have), IEND. Every row uses filter 0 (none). encodeApng writes an animated PNG
// (APNG: acTL, then per frame fcTL and IDAT for the first frame, fdAT for the others).

import { crc32 } from "../crc32.ts";

export const PNG_SIGNATURE = Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a);

// length (u32 BE), type, data, CRC-32 of type + data.
function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  out.set(new TextEncoder().encode(type), 4);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

async function deflate(data: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([data as Uint8Array<ArrayBuffer>]).stream().pipeThrough(new CompressionStream("deflate"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

function ihdr(width: number, height: number): Uint8Array {
  const header = new Uint8Array(13);
  const view = new DataView(header.buffer);
  view.setUint32(0, width);
  view.setUint32(4, height);
  header.set([8, 2, 0, 0, 0], 8); // bit depth 8, colour type 2 (RGB), deflate, filter method 0, no interlace
  return chunk("IHDR", header);
}

// The zlib stream of `rgb` ([height][width][3]) as filter-0 rows.
function imageData(rgb: Uint8Array, width: number, height: number): Promise<Uint8Array> {
  if (rgb.length !== width * height * 3)
    throw new RangeError(`expected ${width * height * 3} RGB bytes for ${width}x${height}, got ${rgb.length}`);
  const stride = width * 3;
  const raw = new Uint8Array(height * (stride + 1)); // each row: filter byte 0, then the row
  for (let y = 0; y < height; y++) raw.set(rgb.subarray(y * stride, (y + 1) * stride), y * (stride + 1) + 1);
  return deflate(raw);
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

// A PNG around one image's zlib stream.
function pngOf(data: Uint8Array, width: number, height: number): Uint8Array {
  return concat([PNG_SIGNATURE, ihdr(width, height), chunk("IDAT", data), chunk("IEND", new Uint8Array(0))]);
}

// `rgb` is [height][width][3].
export async function encodePng(rgb: Uint8Array, width: number, height: number): Promise<Uint8Array> {
  return pngOf(await imageData(rgb, width, height), width, height);
}

export interface ApngOptions {
  delayMs: number; // how long each frame shows
  plays?: number; // 0 (default): loop forever
}

// An animated PNG of the frames' zlib streams, all the full canvas size. The first frame is also the default
// image, so a viewer without APNG shows it. Chunk order and fields: the APNG specification (acTL before the
// first IDAT; fcTL and fdAT share one sequence starting at 0).
function apngOf(data: Uint8Array[], width: number, height: number, options: ApngOptions): Uint8Array {
  const delay = Math.round(options.delayMs);
  const actl = new Uint8Array(8);
  new DataView(actl.buffer).setUint32(0, data.length);
  new DataView(actl.buffer).setUint32(4, options.plays ?? 0);
  const parts = [PNG_SIGNATURE, ihdr(width, height), chunk("acTL", actl)];
  let sequence = 0;
  for (let f = 0; f < data.length; f++) {
    const fctl = new Uint8Array(26);
    const view = new DataView(fctl.buffer);
    view.setUint32(0, sequence++);
    view.setUint32(4, width);
    view.setUint32(8, height);
    view.setUint32(12, 0); // x offset
    view.setUint32(16, 0); // y offset
    view.setUint16(20, delay); // delay numerator
    view.setUint16(22, 1000); // delay denominator: milliseconds
    view.setUint8(24, 0); // dispose: none
    view.setUint8(25, 0); // blend: source (each frame replaces the canvas)
    parts.push(chunk("fcTL", fctl));
    if (f === 0) {
      parts.push(chunk("IDAT", data[f]));
    } else {
      const fdat = new Uint8Array(4 + data[f].length);
      new DataView(fdat.buffer).setUint32(0, sequence++);
      fdat.set(data[f], 4);
      parts.push(chunk("fdAT", fdat));
    }
  }
  parts.push(chunk("IEND", new Uint8Array(0)));
  return concat(parts);
}

// Every frame's zlib stream (each [height][width][3]), after checking what the animation needs.
async function framesData(frames: Uint8Array[], width: number, height: number, options: ApngOptions) {
  if (frames.length === 0) throw new RangeError("an animation needs at least one frame");
  const delay = Math.round(options.delayMs);
  if (!(delay >= 0 && delay <= 0xffff)) throw new RangeError(`frame delay must be 0..65535 ms, got ${options.delayMs}`);
  const data: Uint8Array[] = [];
  for (const frame of frames) data.push(await imageData(frame, width, height));
  return data;
}

// An animated PNG of `frames` (each [height][width][3]).
export async function encodeApng(
  frames: Uint8Array[],
  width: number,
  height: number,
  options: ApngOptions,
): Promise<Uint8Array> {
  return apngOf(await framesData(frames, width, height, options), width, height, options);
}

// Each frame as its own PNG and all of them as one APNG, every frame deflated once for both.
export async function encodeFrames(
  frames: Uint8Array[],
  width: number,
  height: number,
  options: ApngOptions,
): Promise<{ pngs: Uint8Array[]; apng: Uint8Array }> {
  const data = await framesData(frames, width, height, options);
  return { pngs: data.map((d) => pngOf(d, width, height)), apng: apngOf(data, width, height, options) };
}
