// PNG and APNG read back for the picture routes' tests: chunks, filter-0 rows, one picture.
import { expect } from "vitest";

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

export async function decodePng(png: Uint8Array): Promise<{ width: number; height: number; rgb: Uint8Array }> {
  const list = chunks(png);
  const ihdr = new DataView(list[0].data.buffer, list[0].data.byteOffset, 13);
  const [width, height] = [ihdr.getUint32(0), ihdr.getUint32(4)];
  return { width, height, rgb: await rows(list.find((c) => c.type === "IDAT")!.data, width, height) };
}
