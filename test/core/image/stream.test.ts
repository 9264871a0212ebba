// Uploads streamed into the decoders (core/image/bytes.ts): every JPEG and PNG fixture, fed through
// streams cut in adversarial places, gives what the same bytes give whole (the whole-bytes path is checked
// against Pillow in the decoders' own tests): the same pixels, or the same refusal. A stream that ends
// early answers as the truncated bytes do. Then the bounds (body, window), the yields that let concurrent
// decodes interleave, and the memory figures against what a decode allocates.

import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { describe, expect, test } from "vitest";
import { EdgevitError } from "../../../core/errors.ts";
import { type ByteReader, ByteSource } from "../../../core/image/bytes.ts";
import { openImage, openImageBytes } from "../../../core/image/open.ts";
import type { ImageDecoder } from "../../../core/image/source.ts";
import { prng } from "../../prng.ts";

const FIXTURES = new URL("../../fixtures/", import.meta.url).pathname;
const PNG_DIR = new URL("../../goldens/preprocess/png/", import.meta.url).pathname;
const LIMITS = { maxPixels: 100_000_000 };

const jpegs = [
  ...readdirSync(`${FIXTURES}jpeg`)
    .filter((n) => n.endsWith(".jpg"))
    .map((n) => `jpeg/${n}`),
  ...readdirSync(`${FIXTURES}images`)
    .filter((n) => n.endsWith(".jpg"))
    .map((n) => `images/${n}`),
];
const pngs = readdirSync(PNG_DIR).filter((n) => n.endsWith(".png"));
const read = (path: string) => new Uint8Array(readFileSync(path));

// The bytes as a stream whose chunks end at `cuts` (offsets, ascending).
function streamOf(bytes: Uint8Array, cuts: number[]): ReadableStream<Uint8Array> {
  const ends = [...cuts.filter((c) => c > 0 && c < bytes.length), bytes.length];
  let at = 0;
  let i = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (i >= ends.length) {
        controller.close();
        return;
      }
      // A fresh copy each time: the decoder may not keep a view on a chunk it was handed.
      controller.enqueue(bytes.slice(at, ends[i]));
      at = ends[i++];
    },
  });
}

type Chunking = (bytes: Uint8Array) => number[];
const everyByte: Chunking = (b) => Array.from({ length: b.length }, (_, i) => i + 1);
const randomSizes =
  (seed: number): Chunking =>
  (b) => {
    const r = prng(seed);
    const cuts: number[] = [];
    for (let at = 0; at < b.length; ) cuts.push((at += 1 + Math.floor(r() * r() * 3000)));
    return cuts;
  };
// Right after every 0xFF (inside a marker or a stuffed byte) and right before the last two bytes (EOI).
const atMarkers: Chunking = (b) => {
  const cuts: number[] = [];
  for (let i = 0; i < b.length; i++) if (b[i] === 0xff) cuts.push(i + 1);
  cuts.push(b.length - 2, b.length - 1);
  return cuts.sort((x, y) => x - y);
};

interface Answer {
  size?: string;
  sha256?: string;
  orientation?: number;
  error?: string;
}

async function answer(open: () => Promise<ImageDecoder> | ImageDecoder, scale: number): Promise<Answer> {
  try {
    const decoder = await open();
    const s = decoder.header.scales.includes(scale) ? scale : 1;
    const width = Math.ceil(decoder.header.width / s);
    const height = Math.ceil(decoder.header.height / s);
    const rgb = new Uint8Array(width * height * 3);
    let next = 0;
    const size = await decoder.decode(s, (rows, first, count) => {
      if (first !== next) throw new Error(`rows ${first} after ${next}`);
      rgb.set(rows.subarray(0, count * width * 3), first * width * 3);
      next = first + count;
    });
    if (next !== height) throw new Error(`${next} of ${height} rows`);
    return {
      size: `${size.width}x${size.height}`,
      sha256: createHash("sha256").update(rgb).digest("hex"),
      orientation: decoder.header.orientation,
    };
  } catch (error) {
    if (!(error instanceof EdgevitError)) throw error;
    return { error: `${error.code}: ${error.message}` };
  }
}

const whole = (bytes: Uint8Array, scale: number) => answer(() => openImageBytes(bytes, LIMITS), scale);
const streamed = (bytes: Uint8Array, cuts: number[], scale: number, window?: number) =>
  answer(
    () =>
      openImage(
        ByteSource.from(streamOf(bytes, cuts), { maxBytes: 1 << 26, maxWindowBytes: window, minReadBytes: 1 }),
        LIMITS,
      ),
    scale,
  );

describe("a streamed JPEG answers as its bytes do", () => {
  const chunkings: [string, Chunking][] = [
    ["1-byte chunks", everyByte],
    ["cut after every 0xFF and before EOI", atMarkers],
    ["random sizes", randomSizes(1)],
  ];
  test.each(jpegs.flatMap((n) => chunkings.map(([what, c]) => [n, what, c] as const)))(
    "%s, %s",
    async (name, _what, chunking) => {
      const bytes = read(`${FIXTURES}${name}`);
      const cuts = chunking(bytes);
      for (const scale of [1, 8]) {
        expect(await streamed(bytes, cuts, scale)).toEqual(await whole(bytes, scale));
      }
    },
  );

  test("through a 64 KiB window (bytes released as rows complete), at every scale", async () => {
    for (const name of jpegs) {
      const bytes = read(`${FIXTURES}${name}`);
      for (const scale of [1, 2, 4, 8]) {
        expect({ name, ...(await streamed(bytes, randomSizes(scale)(bytes), scale, 64 * 1024)) }).toEqual({
          name,
          ...(await whole(bytes, scale)),
        });
      }
    }
  });

  test("a stream that ends early answers as the truncated bytes", async () => {
    const r = prng(7);
    for (const name of [
      "images/coffee-progressive.jpg",
      "images/retina-restart-markers.jpg",
      "jpeg/baseline-restart-420-50x40.jpg",
      "jpeg/progressive-restart-420-50x40.jpg",
    ]) {
      const full = read(`${FIXTURES}${name}`);
      const ends = [
        2,
        3,
        100,
        full.length - 2,
        full.length - 1,
        ...Array.from({ length: 12 }, () => Math.floor(r() * full.length)),
      ];
      for (const n of ends) {
        const bytes = full.slice(0, n);
        expect({ name, n, ...(await streamed(bytes, randomSizes(n)(bytes), 2)) }).toEqual({
          name,
          n,
          ...(await whole(bytes, 2)),
        });
      }
    }
  });
});

describe("a streamed PNG answers as its bytes do", () => {
  test.each(pngs.filter((n) => n !== "rgb-8-exif8.png"))("%s", async (name) => {
    const bytes = read(`${PNG_DIR}${name}`);
    const want = await whole(bytes, 1);
    expect(want.sha256).toBeDefined();
    for (const chunking of [everyByte, randomSizes(3)]) {
      expect(await streamed(bytes, chunking(bytes), 1)).toEqual(want);
    }
    expect(await streamed(bytes, randomSizes(4)(bytes), 1, 4096)).toEqual(want);
  });

  test("an eXIf after the image data comes too late for a stream to turn its rows, and says so", async () => {
    const bytes = read(`${PNG_DIR}rgb-8-exif8.png`);
    expect((await whole(bytes, 1)).orientation).toBe(8);
    expect((await streamed(bytes, randomSizes(5)(bytes), 1)).error).toMatch(
      /^unsupported_media_type: The PNG gives its EXIF orientation after its image data/,
    );
  });

  test("damaged and truncated PNGs are refused with the same sentence", async () => {
    const r = prng(11);
    for (const name of ["rgb-8.png", "palette-4.png", "rgba-16-adam7.png"]) {
      const original = read(`${PNG_DIR}${name}`);
      for (let i = 0; i < 40; i++) {
        const bytes = i < 20 ? original.slice(0, Math.floor(r() * original.length)) : original.slice();
        if (i >= 20) bytes[8 + Math.floor(r() * (bytes.length - 8))] ^= 1 << Math.floor(r() * 8);
        expect({ name, i, ...(await streamed(bytes, randomSizes(i)(bytes), 1)) }).toEqual({
          name,
          i,
          ...(await whole(bytes, 1)),
        });
      }
    }
  });
});

describe("bounds", () => {
  test("a body over maxBytes is payload_too_large while it is read", async () => {
    const bytes = read(`${FIXTURES}images/astronaut-444.jpg`);
    const src = ByteSource.from(streamOf(bytes, randomSizes(1)(bytes)), { maxBytes: 50_000 });
    const got = await answer(() => openImage(src, LIMITS), 1);
    expect(got.error).toBe("payload_too_large: the body is larger than the limit of 50000 bytes");
  });

  test("retaining the whole file, the source asks its host to reserve each growth past the window first", async () => {
    const bytes = read(`${FIXTURES}images/hubble-cmyk.jpg`);
    for (const length of [bytes.length, undefined]) {
      const asked: number[] = [];
      const src = ByteSource.from(streamOf(bytes, randomSizes(3)(bytes)), {
        maxBytes: 1 << 20,
        maxWindowBytes: 64 * 1024,
        length,
        reserve: async (n) => void asked.push(n),
      });
      await src.more(0, 64);
      src.retainAll();
      // Known length: what it will hold is that length; unknown: the body limit, until the end has arrived.
      expect(src.memoryBytes).toBe(length ?? 1 << 20);
      expect(await src.rest()).toEqual(bytes);
      expect(asked.length).toBeGreaterThan(0);
      expect(asked.every((n, i) => n > 64 * 1024 && (i === 0 || n > asked[i - 1]))).toBe(true);
      // The buffer never grew past what was reserved, nor (its length known) past the file.
      expect(src.memoryBytes).toBe(asked.at(-1));
      if (length !== undefined) expect(asked.at(-1)).toBe(length);
    }
    // A refusal from the host stops the read and lets the stream go.
    const src = ByteSource.from(streamOf(bytes, [bytes.length]), {
      maxBytes: 1 << 20,
      maxWindowBytes: 64 * 1024,
      reserve: () => Promise.reject(new EdgevitError("busy", "no room")),
    });
    await src.more(0, 64);
    src.retainAll();
    await expect(src.rest()).rejects.toMatchObject({ code: "busy" });
  });

  test("a byte stream is read straight into the window, and decodes as its whole bytes", async () => {
    for (const name of ["images/hubble-cmyk.jpg", "images/coffee-progressive.jpg"]) {
      const bytes = read(`${FIXTURES}${name}`);
      let at = 0;
      const sizes = new Set<number>();
      const stream = new ReadableStream({
        type: "bytes",
        pull(controller) {
          const request = controller.byobRequest!;
          const view = request.view as Uint8Array;
          sizes.add(view.buffer.byteLength);
          const n = Math.min(view.byteLength, 5000, bytes.length - at);
          view.set(bytes.subarray(at, at + n));
          at += n;
          request.respond(n);
          if (at === bytes.length) controller.close();
        },
      });
      const whole = openImageBytes(bytes, LIMITS);
      const want: number[] = [];
      await whole.decode(2, (rows) => void want.push(rows[0]));
      const source = ByteSource.from(stream, { maxBytes: 1 << 20 });
      const decoder = await openImage(source, LIMITS);
      const got: number[] = [];
      await decoder.decode(2, (rows) => void got.push(rows[0]));
      expect(got, name).toEqual(want);
      // Every read landed in the source's one window (a BYOB read transfers it and hands it back).
      expect([...sizes]).toEqual([1 << 20]);
      expect(source.byob).toBe(true);
    }
  });

  test("a ByteReader fills the window in place: one buffer for the whole decode, as its whole bytes", async () => {
    for (const name of ["images/hubble-cmyk.jpg", "images/coffee-progressive.jpg"]) {
      const bytes = read(`${FIXTURES}${name}`);
      let at = 0;
      const buffers = new Set<ArrayBufferLike>();
      let cancelled = false;
      const reader: ByteReader = {
        async read(view) {
          buffers.add(view.buffer);
          const n = Math.min(view.length, 5000, bytes.length - at);
          if (n === 0) return { done: true, value: undefined };
          view.set(bytes.subarray(at, at + n));
          at += n;
          return { done: false, value: view.subarray(0, n) };
        },
        async cancel() {
          cancelled = true;
        },
      };
      const whole = openImageBytes(bytes, LIMITS);
      const want: number[] = [];
      await whole.decode(2, (rows) => void want.push(rows[0]));
      const source = ByteSource.from(reader, { maxBytes: 1 << 20 });
      const decoder = await openImage(source, LIMITS);
      const got: number[] = [];
      await decoder.decode(2, (rows) => void got.push(rows[0]));
      expect(got, name).toEqual(want);
      expect(source.byob).toBe(true);
      // Every read was into the one window, never detached.
      expect(buffers.size).toBe(1);
      expect([...buffers][0].byteLength).toBeGreaterThanOrEqual(1 << 20);
      // It was read to its end: nothing to cancel.
      source.close();
      expect(cancelled).toBe(false);
    }
  });

  test("a header larger than the window is image_too_large", async () => {
    const bytes = read(`${FIXTURES}images/rocket-exif-orient6.jpg`);
    const got = await streamed(bytes, randomSizes(2)(bytes), 1, 1024);
    expect(got.error).toMatch(/^image_too_large: The image needs more than 0\.0 MiB of its file at once/);
  });

  test("a stream's failure is the caller's error, with the bytes read before it", async () => {
    const bytes = read(`${FIXTURES}images/cat-baseline-420.jpg`);
    let sent = 0;
    const failing = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent >= 10_000) controller.error(new Error("reset"));
        else controller.enqueue(bytes.slice(sent, (sent += 5000)));
      },
    });
    const src = ByteSource.from(failing, {
      maxBytes: 1 << 20,
      failed: (received) => new EdgevitError("bad_parameter", `the image stream failed after ${received} bytes`),
    });
    expect((await answer(() => openImage(src, LIMITS), 1)).error).toBe(
      "bad_parameter: the image stream failed after 10000 bytes",
    );
  });
});

describe("fairness", () => {
  test("two decodes with every byte at hand interleave: each yields after a slice of work", async () => {
    const bytes = read(`${FIXTURES}images/hubble-cmyk.jpg`);
    const order: string[] = [];
    const run = async (who: string) => {
      const d = openImageBytes(bytes, LIMITS);
      await d.decode(1, () => {
        if (order.at(-1) !== who) order.push(who);
      });
    };
    await Promise.all([run("a"), run("b")]);
    // Without yields: a then b. With them, the two alternate several times.
    expect(order.length).toBeGreaterThan(3);
  });
});
