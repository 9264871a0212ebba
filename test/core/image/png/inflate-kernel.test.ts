// PNG's wasm kernels (assembly/image/inflate.ts, unfilter.ts) against their JavaScript twins: the inflater
// on zlib streams of every block type, long distances and window wraps, cut at every position, damaged
// and truncated (the same output, answers, bytes left unread and refusals); the row filters on random
// rows; and whole PNG files decoded both ways.

import { readdirSync, readFileSync } from "node:fs";
import { constants, createDeflate, deflateSync, inflateSync } from "node:zlib";
import { afterAll, describe, expect, test } from "vitest";
import { decodeKernels, installDecodeKernels } from "../../../../core/image/kernels.ts";
import { unfilter, openPng } from "../../../../core/image/png/index.ts";
import { HISTORY_BYTES, Inflater, Inflating, type ZlibStream } from "../../../../core/image/png/inflate.ts";
import { KernelInflater } from "../../../../core/image/png/inflate-kernel.ts";
import { pngChunk } from "../../../png-chunk.ts";
import { prng } from "../../../prng.ts";
import { decodeRows } from "../decode-rows.ts";

const root = new URL("../../../../", import.meta.url);
const module = new WebAssembly.Module(readFileSync(new URL("build/decode.wasm", root)));
installDecodeKernels(module);
const kernels = decodeKernels();
if (!kernels) throw new Error("no kernels");
afterAll(() => installDecodeKernels(module));

// Photo-like bytes: noisy runs, with copies from up to `reach` bytes back.
function sample(bytes: number, seed: number, reach = 300): Uint8Array {
  const r = prng(seed);
  const out = new Uint8Array(bytes);
  let v = 128;
  for (let i = 0; i < bytes; i++) {
    if (r() < 0.02) v = Math.floor(r() * 256);
    out[i] = (v + (r() < 0.3 ? Math.floor(r() * 5) : 0)) & 255;
    if (r() < 0.002 && i > reach) {
      const from = i - reach + Math.floor(r() * 40);
      const n = Math.min(bytes - i, 3 + Math.floor(r() * 300));
      out.copyWithin(i, from, from + n);
      i += n - 1;
    }
  }
  return out;
}

// One zlib stream of many blocks: stored, fixed and dynamic ones and the empty stored blocks of sync
// flushes, as the parameters change between pieces.
async function mixed(data: Uint8Array): Promise<Uint8Array> {
  const d = createDeflate({ level: 6 });
  const parts: Buffer[] = [];
  d.on("data", (b: Buffer) => parts.push(b));
  const done = new Promise((resolve) => d.on("end", resolve));
  const params = [
    [0, constants.Z_DEFAULT_STRATEGY],
    [6, constants.Z_FIXED],
    [9, constants.Z_DEFAULT_STRATEGY],
    [1, constants.Z_HUFFMAN_ONLY],
    [6, constants.Z_RLE],
  ];
  const step = Math.ceil(data.length / 10);
  for (let i = 0, at = 0; at < data.length; i++, at += step) {
    const [level, strategy] = params[i % params.length];
    await new Promise<void>((resolve) => d.params(level, strategy, () => resolve()));
    d.write(data.subarray(at, at + step));
    await new Promise<void>((resolve) => d.flush(constants.Z_SYNC_FLUSH, () => resolve()));
  }
  d.end();
  await done;
  return new Uint8Array(Buffer.concat(parts));
}

// Piece sizes from 1 to max, a function of the position (both inflaters are cut alike).
const cuts = (seed: number, max: number) => (at: number) => 1 + ((Math.imul(at ^ seed, 2654435761) >>> 7) % max);

type Make = (window: Uint8Array) => ZlibStream;
const js: Make = (window) => new Inflater(window, 16);
const wasm: Make = (window) => new KernelInflater(kernels!, window, 16);

// Feeds `z` in pieces of the sizes `cut` gives, draining after each; the answer after each piece's drain,
// the output so far and the bytes unread, then the same at the end.
function trace(make: Make, z: Uint8Array, cut: (at: number) => number, windowBytes = 64 * 1024) {
  const inflater = make(new Uint8Array(windowBytes));
  const parts: Uint8Array[] = [];
  const steps: string[] = [];
  let written = 0;
  let state = Inflating.NeedInput as Inflating;
  const drain = (final: boolean) => {
    do {
      state = inflater.run(final);
      const out = inflater.take();
      written += out.length;
      parts.push(out.slice());
    } while (state === Inflating.WindowFull);
    // (Where a refusal leaves the input is of no consequence.)
    steps.push(`${state} ${written} ${state === Inflating.Failed ? "" : inflater.unread}`);
  };
  for (let at = 0; at < z.length && state === Inflating.NeedInput; ) {
    const n = Math.max(1, Math.min(z.length - at, cut(at)));
    inflater.feed(z.subarray(at, at + n));
    at += n;
    drain(false);
  }
  if (state === Inflating.NeedInput) drain(true);
  return { state, truncated: inflater.truncated, unread: inflater.unread, steps, out: Buffer.concat(parts) };
}

function same(z: Uint8Array, cut: (at: number) => number, windowBytes?: number) {
  const a = trace(js, z, cut, windowBytes);
  const b = trace(wasm, z, cut, windowBytes);
  expect(b.steps).toEqual(a.steps);
  expect(b.truncated).toBe(a.truncated);
  expect(Buffer.compare(b.out, a.out)).toBe(0);
  return b;
}

describe("KernelInflater = Inflater", () => {
  const data = sample(400_000, 1);
  const far = sample(300_000, 2, HISTORY_BYTES);
  const streams: Record<string, Uint8Array> = {
    "stored blocks": deflateSync(data, { level: 0 }),
    "fixed codes": deflateSync(data, { strategy: constants.Z_FIXED }),
    "dynamic, level 1": deflateSync(data, { level: 1 }),
    "dynamic, level 9": deflateSync(data, { level: 9 }),
    "Huffman only": deflateSync(data, { strategy: constants.Z_HUFFMAN_ONLY }),
    "runs (overlapping matches)": deflateSync(new Uint8Array(200_000).fill(7), { level: 9 }),
    "distances up to 32 KiB": deflateSync(far, { level: 9 }),
    "a 512-byte window": deflateSync(data, { windowBits: 9, memLevel: 1 }),
  };

  for (const [name, z] of Object.entries(streams)) {
    test(`${name}: zlib's output, the same answers and unread bytes however the input is cut`, () => {
      const expected = inflateSync(z);
      for (const windowBytes of [HISTORY_BYTES + 1024, 256 * 1024]) {
        for (const cut of [cuts(1, 9), cuts(2, 70_000), () => z.length]) {
          const got = same(new Uint8Array(z), cut, windowBytes);
          expect(got.state).toBe(Inflating.End);
          expect(Buffer.compare(got.out, expected)).toBe(0);
        }
      }
    });
  }

  test("a stream of stored, fixed and dynamic blocks and empty flushes", async () => {
    const z = await mixed(data);
    const got = same(z, () => 4096);
    expect(got.state).toBe(Inflating.End);
    expect(Buffer.compare(got.out, Buffer.from(data))).toBe(0);
  });

  test("small streams cut at every position, and fed a byte at a time", async () => {
    const small = sample(3000, 3, 100);
    const zs = [
      deflateSync(small.subarray(0, 700), { level: 9 }),
      deflateSync(small.subarray(0, 300), { strategy: constants.Z_FIXED }),
      deflateSync(small.subarray(0, 200), { level: 0 }),
      await mixed(small),
    ];
    for (const z of zs) {
      for (let p = 1; p < z.length; p++) same(z, (at) => (at === 0 ? p : z.length));
      const got = same(z, () => 1);
      expect(got.state).toBe(Inflating.End);
    }
  });

  test("damaged streams: the same output, refusal and truncation", async () => {
    const r = prng(7);
    const sources = [
      deflateSync(data.subarray(0, 60_000), { level: 9 }),
      deflateSync(data.subarray(0, 20_000), { strategy: constants.Z_FIXED }),
      await mixed(data.subarray(0, 50_000)),
    ];
    let failed = 0;
    for (const z of sources) {
      for (let k = 0; k < 150; k++) {
        const bad = new Uint8Array(z);
        // The first bytes (the header and block headers) most of the time, anywhere otherwise.
        const spread = r() < 0.5 ? 64 : bad.length;
        for (let flips = 1 + Math.floor(r() * 3); flips > 0; flips--) {
          bad[Math.floor(r() * Math.min(spread, bad.length))] ^= 1 << Math.floor(r() * 8);
        }
        const got = same(bad, cuts(k, 3000));
        if (got.state === Inflating.Failed) failed++;
      }
      // Truncated streams, and bytes after the end.
      for (const end of [1, 2, 5, z.length >> 1, z.length - 4, z.length - 1]) {
        expect(same(z.subarray(0, end), () => 997)).toMatchObject({ state: Inflating.Failed, truncated: true });
      }
      const after = new Uint8Array([...z, 1, 2, 3]);
      expect(same(after, () => 1000)).toMatchObject({ state: Inflating.End, unread: 3 });
    }
    expect(failed).toBeGreaterThan(100);
  });

  test("refusals: a wrong Adler-32, a preset dictionary, a reserved block type, a distance too far back", () => {
    const z = deflateSync(data.subarray(0, 10_000));
    const adler = new Uint8Array(z);
    adler[adler.length - 1] ^= 1;
    const dictionary = new Uint8Array(z);
    dictionary[1] = 0xbb; // FDICT set, the check bits still right: (0x78 * 256 + 0xbb) % 31 === 0
    const reserved = new Uint8Array([0x78, 0x9c, 0b111]);
    const tooFar = new Uint8Array([0x78, 0x9c, 0b00000011, 0b00000010, 0]);
    for (const bad of [adler, dictionary, reserved, tooFar]) {
      expect(same(bad, () => 3)).toMatchObject({ state: Inflating.Failed, truncated: false });
    }
  });

  test("concurrent streams share the instance: each run copies its own state in and out", () => {
    const a = deflateSync(data, { level: 9 });
    const b = deflateSync(far, { level: 1 });
    const x = wasm(new Uint8Array(64 * 1024));
    const y = wasm(new Uint8Array(64 * 1024));
    const outs: Uint8Array[][] = [[], []];
    const states = [Inflating.NeedInput as Inflating, Inflating.NeedInput as Inflating];
    const step = 5000;
    for (let at = 0; at < Math.max(a.length, b.length); at += step) {
      [x, y].forEach((inflater, i) => {
        const z = i === 0 ? a : b;
        if (at >= z.length) return;
        inflater.feed(z.subarray(at, at + step));
        // The row kernels use the same scratch between runs.
        const { at: scratch, heap } = kernels.area(kernels.maxScratchBytes);
        heap.fill(0xa5, scratch, scratch + kernels.maxScratchBytes);
        do {
          states[i] = inflater.run(at + step >= z.length);
          outs[i].push(inflater.take().slice());
        } while (states[i] === Inflating.WindowFull);
      });
    }
    expect(states).toEqual([Inflating.End, Inflating.End]);
    expect(Buffer.compare(Buffer.concat(outs[0]), Buffer.from(data))).toBe(0);
    expect(Buffer.compare(Buffer.concat(outs[1]), Buffer.from(far))).toBe(0);
  });

  test("adler32 as zlib's, at every length around its vector blocks", () => {
    const bytes = new Uint8Array(20_000).map((_, i) => (i * 2654435761) >>> 24);
    bytes.fill(255, 10_000, 16_000); // the largest sums
    const { at, heap } = kernels.area(bytes.length);
    heap.set(bytes, at);
    const reference = (n: number) => {
      let a = 1;
      let b = 0;
      for (let i = 0; i < n; i++) {
        a = (a + bytes[i]) % 65521;
        b = (b + a) % 65521;
      }
      return ((b << 16) | a) >>> 0;
    };
    for (const n of [0, 1, 15, 16, 17, 255, 4095, 4096, 4097, 5552, 8191, 20_000]) {
      expect(kernels.exports.adler32(at, n, 1) >>> 0).toBe(reference(n));
    }
  });
});

describe("unfilterRow = unfilter", () => {
  test("every filter type, 1 to 8 bytes per pixel, random and extreme rows", () => {
    const r = prng(11);
    const fills: ((i: number) => number)[] = [
      () => Math.floor(r() * 256),
      () => 255,
      () => 0,
      (i) => (i & 1 ? 255 : 0),
    ];
    const { unfilterRow, unfilterRowScalar } = kernels.exports;
    for (const bpp of [1, 2, 3, 4, 6, 8]) {
      for (const type of [0, 1, 2, 3, 4]) {
        for (const n of [bpp, 5 * bpp, 17 * bpp, 300 * bpp]) {
          for (const fill of fills) {
            const row = Uint8Array.from({ length: n }, (_, i) => fill(i));
            const prev = Uint8Array.from({ length: n }, () => fill(Math.floor(r() * 4)));
            const expected = row.slice();
            unfilter(type, expected, prev, bpp, n);
            for (const run of [unfilterRow, unfilterRowScalar]) {
              const { at, heap } = kernels.area(2 * (n + 32));
              const prevAt = at + n + 32;
              heap.set(row, at);
              heap[at + n] = 0x5a; // the byte after the row stays as it is
              heap.set(prev, prevAt);
              run(type, at, prevAt, bpp, n);
              expect(heap.subarray(at, at + n)).toEqual(expected);
              expect(heap[at + n]).toBe(0x5a);
            }
          }
        }
      }
    }
  });
});

describe("PNG files with and without the kernels", () => {
  const dirs = ["test/goldens/preprocess/png/", "test/fixtures/pillow/", "test/fixtures/conformance/"];
  const files = dirs.flatMap((d) =>
    readdirSync(new URL(d, root))
      .filter((f) => f.endsWith(".png"))
      .map((f) => new URL(d + f, root)),
  );

  const decode = async (bytes: Uint8Array) => {
    try {
      const { rgb } = await decodeRows(openPng(bytes, { maxPixels: 1e8 }));
      return { rgb };
    } catch (e) {
      return { error: String(e) };
    }
  };

  const bothWays = async (bytes: Uint8Array) => {
    installDecodeKernels(module);
    const withKernels = await decode(bytes);
    installDecodeKernels(null);
    const without = await decode(bytes);
    installDecodeKernels(module);
    expect(withKernels).toEqual(without);
    return withKernels;
  };

  test.each(files.map((f) => [f.pathname.split("/").slice(-2).join("/"), f]))("%s", async (_, file) => {
    await bothWays(new Uint8Array(readFileSync(file)));
  });

  // A 16x16 gray PNG around a zlib stream.
  const gray16 = (zlib: Uint8Array) => {
    const ihdr = Uint8Array.of(0, 0, 0, 16, 0, 0, 0, 16, 8, 0, 0, 0, 0);
    const signature = Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a);
    const parts = [signature, pngChunk("IHDR", ihdr), pngChunk("IDAT", zlib), pngChunk("IEND", new Uint8Array(0))];
    return new Uint8Array(Buffer.concat(parts));
  };

  test("the same refusals: too much data (a bomb), truncated, damaged, an unknown filter", async () => {
    const rows = new Uint8Array(17 * 16);
    const bomb = await bothWays(gray16(deflateSync(new Uint8Array(64 << 20))));
    expect(bomb.error).toMatch(/more than IHDR's size needs/);
    const cut = await bothWays(gray16(deflateSync(rows.subarray(0, 17 * 9))));
    expect(cut.error).toMatch(/truncated: its image data ends early/);
    const damaged = new Uint8Array(deflateSync(rows));
    damaged[2] |= 0b110; // the first block of the reserved type 3
    expect((await bothWays(gray16(damaged))).error).toMatch(/compressed image data \(zlib\) is damaged/);
    const filter = rows.slice();
    filter[17 * 3] = 7;
    expect((await bothWays(gray16(deflateSync(filter)))).error).toMatch(/row 3 uses an unknown filter type 7/);
    // Every row in, then a wrong Adler-32: accepted, as Pillow accepts it.
    const adler = new Uint8Array(deflateSync(rows));
    adler[adler.length - 1] ^= 1;
    expect((await bothWays(gray16(adler))).rgb).toEqual(new Uint8Array(16 * 16 * 3));
  });
});
