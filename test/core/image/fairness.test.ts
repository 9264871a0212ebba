// Concurrent decodes share one thread fairly: every decoder yields to the event loop after each slice of
// work (core/image/bytes.ts's yieldToOthers), so with N requests decoding 12 MP JPEGs at once, none runs
// more than one slice before the others get theirs, and between two turns of one request each other request
// has at most one. The uploads are streamed, as the Worker reads them. Measured by the order in which the
// decoders push their rows: a turn is a run of one decoder's rows with no other decoder's in between.

import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { expect, test } from "vitest";
import { ByteSource } from "../../../core/image/bytes.ts";
import { openImage } from "../../../core/image/open.ts";
import { openJpeg } from "../../../core/image/jpeg/index.ts";

const root = new URL("../../../", import.meta.url).pathname;
const PHOTOS = `${root}.cache/photos/`;
// Blocks between two yields (core/image/jpeg/decoder.ts's SLICE_BLOCKS).
const SLICE_BLOCKS = 16384;

// The 4000x3000 4:2:0 baseline photo of test/tools/phone_photos.py (Pillow), made once into .cache/photos.
function photo(): Uint8Array {
  if (!existsSync(`${PHOTOS}done`)) execFileSync("/usr/bin/python3", [`${root}test/tools/phone_photos.py`, PHOTOS]);
  return new Uint8Array(readFileSync(`${PHOTOS}baseline-12mp.jpg`));
}

// The file in 64 KiB chunks, every one already arrived.
function streamOf(bytes: Uint8Array): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream({
    pull(controller) {
      if (at >= bytes.length) return controller.close();
      controller.enqueue(bytes.slice(at, (at += 65536)));
    },
  });
}

// N decodes at once; the turns in the order they ran, with the bands (sink calls) each pushed.
async function turns(bytes: Uint8Array, n: number, scale: number): Promise<{ who: number; bands: number }[]> {
  const order: { who: number; bands: number }[] = [];
  const decode = async (who: number) => {
    const src = ByteSource.from(streamOf(bytes), { maxBytes: 16 << 20 });
    const decoder = await openImage(src, { maxPixels: 1 << 25 });
    await decoder.decode(scale, () => {
      const last = order.at(-1);
      if (last?.who === who) last.bands++;
      else order.push({ who, bands: 1 });
    });
  };
  await Promise.all(Array.from({ length: n }, (_, who) => decode(who)));
  return order;
}

test.each([
  [8, 8],
  [4, 1],
])(
  "%i concurrent 12 MP baseline JPEGs at 1/%i: one slice per turn, every other request one turn between",
  async (n, scale) => {
    const bytes = photo();
    const f = openJpeg(bytes, { maxPixels: 1 << 25 }).frame;
    expect([f.width, f.height, f.progressive]).toEqual([4000, 3000, false]);
    // One band per MCU row; a slice ends after the MCU row that reaches SLICE_BLOCKS.
    const blocksPerMcuRow = f.mcusPerLine * f.components.reduce((sum, c) => sum + c.h * c.v, 0);
    const bandsPerSlice = Math.ceil(SLICE_BLOCKS / blocksPerMcuRow);
    const order = await turns(bytes, n, scale);
    // Bands are emitted one MCU row late, and the last band after the loop: a turn may carry one more.
    const longest = Math.max(...order.map((t) => t.bands));
    expect(longest).toBeLessThanOrEqual(bandsPerSlice + 1);
    expect(order.reduce((sum, t) => sum + t.bands, 0)).toBe(n * f.mcusPerColumn);
    // Round robin: between two turns of one request no other request had two.
    for (let i = 0; i < order.length; i++) {
      const next = order.findIndex((t, j) => j > i && t.who === order[i].who);
      if (next < 0) continue;
      const between = order.slice(i + 1, next).map((t) => t.who);
      expect(new Set(between).size, `turns ${i}..${next}`).toBe(between.length);
    }
    // Every request was interleaved with the others from the start to its end, not run through at once.
    expect(order.length).toBeGreaterThanOrEqual(n * Math.floor(f.mcusPerColumn / (bandsPerSlice + 1)));
  },
);
