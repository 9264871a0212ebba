// The memory figures a ledger reserves (decoder.memoryBytes, StreamingPreprocessor.memoryBytes) against
// what decoding and preprocessing allocate: every typed array made while they run is counted, by
// replacing the global constructors for the duration. Huffman tables are left out of the count: a DHT
// between scans replaces a table in one of the eight slots the figure holds, so their allocations add up
// while what is held does not.

import { readdirSync, readFileSync } from "node:fs";
import { describe, expect, test } from "vitest";
import { buffers } from "../../../core/buffers.ts";
import { ByteSource } from "../../../core/image/bytes.ts";
import { openImage, openImageBytes } from "../../../core/image/open.ts";
import { chooseScale, StreamingPreprocessor } from "../../../core/preprocess/stream.ts";
import { outputSize } from "../../../core/preprocess/preprocess.ts";
import { Tiles } from "../../../core/preprocess/tiles.ts";
import { VIT_BASE_PREPROCESSING } from "../../../models/presets.ts";
import { allocated } from "./allocated.ts";

const FIXTURES = new URL("../../fixtures/", import.meta.url).pathname;
const PNG_DIR = new URL("../../goldens/preprocess/png/", import.meta.url).pathname;
const WEBP_DIR = new URL("../../goldens/preprocess/webp/", import.meta.url).pathname;
const LIMITS = { maxPixels: 100_000_000 };

const jpegs = [
  ...readdirSync(`${FIXTURES}images`)
    .filter((n) => n.endsWith(".jpg") && !n.startsWith("invalid"))
    .map((n) => `${FIXTURES}images/${n}`),
  ...[
    "progressive-100-scans-gray-48x40.jpg",
    "progressive-restart-420-50x40.jpg",
    "baseline-mixed-2x2-1x2-2x1-41x27.jpg",
    "arithmetic-422-restart-50x40.jpg",
    "arithmetic-progressive-restart-420-50x40.jpg",
    "arithmetic-second-64k-read-40x24.jpg",
    "progressive-dc-only.jpg",
    "arithmetic-progressive-dc-only.jpg",
  ].map((n) => `${FIXTURES}jpeg/${n}`),
];
// The file up to the end of its k-th scan, then EOI: a progressive one that stops early is smoothed.
function cutAfterScans(b: Uint8Array, k: number): Uint8Array {
  let p = 2;
  for (let scans = 0; ; ) {
    const marker = b[p + 1];
    p += 2 + ((b[p + 2] << 8) | b[p + 3]);
    if (marker !== 0xda) continue;
    while (!(b[p] === 0xff && b[p + 1] !== 0 && (b[p + 1] < 0xd0 || b[p + 1] > 0xd7))) p++;
    if (++scans === k) return Uint8Array.of(...b.subarray(0, p), 0xff, 0xd9);
  }
}
const smoothed = [1, 3].map((k) => [
  `images/coffee-progressive.jpg cut after ${k} scans`,
  cutAfterScans(readFileSync(`${FIXTURES}images/coffee-progressive.jpg`), k),
]);

const pngs = ["rgb-8-large.png", "rgba-16-adam7.png", "palette-4.png", "gray-16.png"].map((n) => `${PNG_DIR}${n}`);
// Lossy and lossless WebPs, and a lossy one with a lossless ALPH chunk (./vp8l-limits.test.ts has the
// lossless streams that make a decoder hold the most).
const webps = [
  "photo-lossy-q90.webp",
  "lossy-q95-101x67.webp",
  "animated-offset.webp",
  "animated-lossy.webp",
  "lossy-alpha.webp",
  "photo-lossless.webp",
  "lossless-101x67.webp",
  "lossless-rgba.webp",
  "lossless-200-colors.webp",
  "animated-lossless.webp",
].map((n) => `${WEBP_DIR}${n}`);
const read = (path: string) => new Uint8Array(readFileSync(path));

describe("decoder.memoryBytes(scale) bounds what a decode allocates", () => {
  test.each([...[...jpegs, ...pngs, ...webps].map((p) => [p.split("/").slice(-2).join("/"), p]), ...smoothed] as [
    string,
    string | Uint8Array,
  ][])("%s", async (_name, path) => {
    const bytes = typeof path === "string" ? read(path) : path;
    const decoder = openImageBytes(bytes, LIMITS);
    for (const scale of decoder.header.scales) {
      const figure = decoder.memoryBytes(scale);
      const { bytes: used } = await allocated(() => decoder.decode(scale, () => {}));
      // Whole bytes: the figure counts the body the caller holds, which decoding does not allocate.
      const own = figure - bytes.length;
      expect(used).toBeLessThanOrEqual(own);
      // ...and it is a bound, not a guess many times too large: the tables are most of what it adds.
      expect(own - used).toBeLessThan(8.5 * 1024 * 1024);
    }
  });

  test("the JPEG figure is what is allocated plus the eight table slots", async () => {
    const bytes = read(`${FIXTURES}images/hubble-cmyk.jpg`);
    const decoder = openImageBytes(bytes, LIMITS);
    for (const scale of [1, 8]) {
      const { bytes: used } = await allocated(() => decoder.decode(scale, () => {}));
      const own = decoder.memoryBytes(scale) - bytes.length;
      expect(own - used).toBeGreaterThan(8 * 9000);
      expect(own - used).toBeLessThan(100 * 1024);
    }
  });

  test("a progressive JPEG's coefficients are in the figure, with the undo row of a stream", async () => {
    const bytes = read(`${FIXTURES}images/coffee-progressive.jpg`);
    const whole = openImageBytes(bytes, LIMITS);
    const streamed = await openImage(
      ByteSource.from(new Blob([bytes]).stream(), { maxBytes: 1 << 20, maxWindowBytes: 64 * 1024 }),
      LIMITS,
    );
    // The stream's figure holds its window instead of the body, and one block row of coefficients per
    // component for a refinement row that is retried.
    expect(streamed.memoryBytes(8)).toBeGreaterThan(whole.memoryBytes(8) - bytes.length + 64 * 1024);
    const { bytes: used } = await allocated(() => streamed.decode(8, () => {}));
    expect(used).toBeLessThanOrEqual(streamed.memoryBytes(8));
  });

  test("a stream's window never grows past its bound", async () => {
    const bytes = read(`${FIXTURES}images/retina-restart-markers.jpg`);
    const src = ByteSource.from(new Blob([bytes]).stream(), { maxBytes: 1 << 20, maxWindowBytes: 32 * 1024 });
    const decoder = await openImage(src, LIMITS);
    let largest = 0;
    await decoder.decode(1, () => {
      largest = Math.max(largest, src.bytes.buffer.byteLength);
    });
    expect(largest).toBeLessThanOrEqual(32 * 1024);
    expect(src.offset).toBeGreaterThan(bytes.length / 2);
  });
});

describe("StreamingPreprocessor.memoryBytes bounds what the preprocessing allocates", () => {
  const configs = [
    ["ViT (bilinear, 224)", VIT_BASE_PREPROCESSING],
    ["nearest", { ...VIT_BASE_PREPROCESSING, resample: 0 }],
    [
      "shortest edge 256, crop 224, bicubic",
      {
        ...VIT_BASE_PREPROCESSING,
        size: { shortestEdge: 256 },
        resample: 3,
        doCenterCrop: true,
        cropSize: { height: 224, width: 224 },
      },
    ],
  ] as const;
  test.each(configs.flatMap(([what, pp]) => [1, 3, 6, 8].map((o) => [what, o, pp] as const)))(
    "%s, orientation %d",
    async (_what, orientation, pp) => {
      const bytes = read(`${FIXTURES}images/hubble-cmyk.jpg`);
      const decoder = openImageBytes(bytes, LIMITS);
      const scale = chooseScale(decoder.header, pp, "exact");
      const decoded = {
        width: Math.ceil(decoder.header.width / scale),
        height: Math.ceil(decoder.header.height / scale),
      };
      const figure = StreamingPreprocessor.memoryBytes(pp, decoded, orientation);
      const rows: Uint8Array[] = [];
      await decoder.decode(scale, (data, _first, count) => {
        for (let i = 0; i < count; i++) rows.push(data.slice(i * decoded.width * 3, (i + 1) * decoded.width * 3));
      });
      const { bytes: used } = await allocated(() => {
        const stream = new StreamingPreprocessor(pp, decoded, orientation);
        rows.forEach((row, y) => stream.sink(row, y, 1));
        const size = outputSize(pp, stream.oriented);
        const out = new Float32Array(3 * size.width * size.height);
        const before = out.byteLength;
        stream.finish(out);
        return before;
      });
      const size = outputSize(pp, orientation >= 5 ? { width: decoded.height, height: decoded.width } : decoded);
      // pixel_values is the caller's.
      expect(used - 3 * 4 * size.width * size.height).toBeLessThanOrEqual(figure);
    },
  );
});

describe("Tiles.memoryBytes bounds what making SmolVLM's frames allocates", () => {
  const pp = { ...VIT_BASE_PREPROCESSING, resample: 1, splitting: { longestEdge: 2048, maxImageSize: 512 } };
  test.each([
    [2048, 1536], // a 12 MP photo's step 1: whole tiles already
    [2048, 1366], // a 24 MP photo's: step 2 upscales its height to 1536
    [1000, 700], // upscaled both ways to 1024x1024
  ])("%ix%i", async (width, height) => {
    const resized = { width, height, data: new Uint8Array(width * height * 3).map((_, i) => (i * 7) & 255) };
    const out = new Float32Array(3 * 512 * 512);
    const { bytes } = await allocated(() => {
      const tiles = new Tiles(resized, pp);
      for (let i = 0; i < tiles.grid.frames; i++) tiles.write(i, out);
    });
    const figure = Tiles.memoryBytes(resized, pp.splitting, pp.resample);
    expect(bytes).toBeLessThanOrEqual(figure);
    expect(bytes).toBeGreaterThan(figure - 64 * 1024);
  });
});

describe("the pool's buffers come back however a decode ends", () => {
  const cases: [string, string, (bytes: Uint8Array<ArrayBuffer>) => Uint8Array<ArrayBuffer>][] = [
    ["a progressive JPEG decoded", `${FIXTURES}images/coffee-progressive.jpg`, (b) => b],
    ["a progressive JPEG cut short", `${FIXTURES}images/coffee-progressive.jpg`, (b) => b.slice(0, b.length >> 1)],
    ["a PNG decoded", `${PNG_DIR}rgb-8-large.png`, (b) => b],
    ["a PNG cut short", `${PNG_DIR}rgb-8-large.png`, (b) => b.slice(0, b.length >> 1)],
    ["an interlaced PNG decoded", `${PNG_DIR}rgba-16-adam7.png`, (b) => b],
  ];
  test.each(cases)("%s", async (_name, path, cut) => {
    const bytes = cut(read(path));
    // Decoded, refused, and abandoned mid-decode (a sink that throws: a request that went away).
    for (const failing of [false, true]) {
      const lent = buffers.inUseBytes; // sources of other tests left open
      const source = ByteSource.from(new Blob([new Uint8Array(bytes)]).stream(), { maxBytes: 1 << 24 });
      const decoder = await openImage(source, LIMITS);
      const before = buffers.stats.acquiredBytes;
      const sink = () => {
        if (failing) throw new Error("gone");
      };
      await decoder.decode(decoder.header.scales.at(-1)!, sink).catch(() => {});
      // The caller closes the source, whose window and read buffer the pool also lent.
      source.close();
      expect(buffers.stats.acquiredBytes).toBeGreaterThan(before);
      expect(buffers.inUseBytes).toBe(lent);
    }
  });

  test("the next decode of the same image reuses them", async () => {
    const bytes = read(`${FIXTURES}images/coffee-progressive.jpg`);
    await openImageBytes(bytes, LIMITS).decode(1, () => {});
    const before = { ...buffers.stats };
    await openImageBytes(bytes, LIMITS).decode(1, () => {});
    expect(buffers.stats.allocated).toBe(before.allocated);
    expect(buffers.stats.reused - before.reused).toBeGreaterThan(0);
  });
});
