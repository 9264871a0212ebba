// A decoder's picture at 1/scale (full scale by default), gathered from the rows it pushes: each batch must
// follow the last, and every row must come.
import { expect } from "vitest";
import type { ImageDecoder } from "../../../core/image/source.ts";

export async function decodeRows(decoder: ImageDecoder, scale = 1) {
  const width = Math.ceil(decoder.header.width / scale);
  const height = Math.ceil(decoder.header.height / scale);
  const rgb = new Uint8Array(width * height * 3);
  let next = 0;
  const size = await decoder.decode(scale, (rows, first, count) => {
    expect(first).toBe(next);
    rgb.set(rows.subarray(0, count * width * 3), first * width * 3);
    next += count;
  });
  expect(next).toBe(height);
  return { ...size, rgb };
}

// The bytes as a stream of `chunk`-byte pieces, so that a decoder runs out of bytes mid-row and resumes.
export function chunked(bytes: Uint8Array, chunk: number): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      for (let i = 0; i < bytes.length; i += chunk) controller.enqueue(bytes.slice(i, i + chunk));
      controller.close();
    },
  });
}
