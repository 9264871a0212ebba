// PNG and APNG read back for the picture routes' tests: chunks, filter-0 rows, one picture.
import { expect } from "vitest";
import { crc32 } from "../../core/crc32.ts";
import { PNG_SIGNATURE } from "../../core/pictures/png.ts";

// PNG or APNG chunks in order.
export function chunks(png: Uint8Array): { type: string; data: Uint8Array }[] {
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  const out: { type: string; data: Uint8Array }[] = [];
  for (let at = 8; at < png.length; at += 12 + view.getUint32(at)) {
    out.push({
      type: new TextDecoder().decode(png.subarray(at + 4, at + 8)),
      data: png.subarray(at + 8, at + 8 + view.getUint32(at)),
    });
  }
  return out;
}

// zlib data of filter-0 RGB rows -> [height][width][3].
export async function rows(zlib: Uint8Array, width: number, height: number): Promise<Uint8Array> {
  const stream = new Blob([zlib as Uint8Array<ArrayBuffer>]).stream().pipeThrough(new DecompressionStream("deflate"));
  const raw = new Uint8Array(await new Response(stream).arrayBuffer());
  expect(raw).toHaveLength(height * (width * 3 + 1));
  const rgb = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    expect(raw[y * (width * 3 + 1)]).toBe(0);
    rgb.set(raw.subarray(y * (width * 3 + 1) + 1, (y + 1) * (width * 3 + 1)), y * width * 3);
  }
  return rgb;
}

// An 8-bit RGB, non-interlaced PNG (what the encoder writes), every chunk's CRC-32 checked -> its first picture.
export async function decodePng(png: Uint8Array): Promise<{ width: number; height: number; rgb: Uint8Array }> {
  expect(Array.from(png.subarray(0, 8))).toEqual(Array.from(PNG_SIGNATURE));
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  for (let at = 8; at < png.length; at += 12 + view.getUint32(at)) {
    const length = view.getUint32(at);
    expect(view.getUint32(at + 8 + length)).toBe(crc32(png.subarray(at + 4, at + 8 + length)));
  }
  const list = chunks(png);
  expect(list[0].type).toBe("IHDR");
  const ihdr = new DataView(list[0].data.buffer, list[0].data.byteOffset, 13);
  const [width, height] = [ihdr.getUint32(0), ihdr.getUint32(4)];
  expect([ihdr.getUint8(8), ihdr.getUint8(9), ihdr.getUint8(12)]).toEqual([8, 2, 0]);
  return { width, height, rgb: await rows(list.find((c) => c.type === "IDAT")!.data, width, height) };
}
