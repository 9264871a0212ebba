// A decoder's picture at full scale, gathered from the rows it pushes: each batch must follow the last, and
// every row must come.
import { expect } from "vitest";
import type { ImageDecoder } from "../../../core/image/source.ts";

export async function decodeRows(decoder: ImageDecoder) {
  const { width, height } = decoder.header;
  const rgb = new Uint8Array(width * height * 3);
  let next = 0;
  const size = await decoder.decode(1, (rows, first, count) => {
    expect(first).toBe(next);
    rgb.set(rows.subarray(0, count * width * 3), first * width * 3);
    next += count;
  });
  expect(next).toBe(height);
  return { ...size, rgb };
}
