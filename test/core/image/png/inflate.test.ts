// The inflater against Node's zlib (the reference): bit-identical output however the input is cut and
// whatever the window's size, and zlib's refusals (damaged blocks, a wrong Adler-32, a cut stream).

import { deflateSync, inflateSync } from "node:zlib";
import { describe, expect, test } from "vitest";
import { HISTORY_BYTES, Inflater, Inflating, inflateZlib } from "../../../../core/image/png/inflate.ts";
import { prng } from "../../../prng.ts";

// Photo-like rows: smooth runs with noise, so that deflate uses literals, short and long matches.
function sample(bytes: number, seed: number): Uint8Array {
  const r = prng(seed);
  const out = new Uint8Array(bytes);
  let v = 128;
  for (let i = 0; i < bytes; i++) {
    if (r() < 0.02) v = Math.floor(r() * 256);
    out[i] = (v + (r() < 0.3 ? Math.floor(r() * 5) : 0)) & 255;
    if (r() < 0.001 && i > 1000) {
      const from = Math.floor(r() * (i - 300));
      const n = Math.min(bytes - i, Math.floor(r() * 300));
      out.copyWithin(i, from, from + n);
      i += n;
    }
  }
  return out;
}

// Inflates `z` fed in pieces of the sizes `cut` gives, with a window of `windowBytes`.
function inflatePieces(z: Uint8Array, cut: () => number, windowBytes: number) {
  const inflater = new Inflater(new Uint8Array(windowBytes), 16);
  const parts: Uint8Array[] = [];
  let state = Inflating.NeedInput as Inflating;
  const drain = (final: boolean) => {
    do {
      state = inflater.run(final);
      parts.push(inflater.take().slice());
    } while (state === Inflating.WindowFull);
  };
  for (let at = 0; at < z.length && state !== Inflating.Failed; ) {
    const n = Math.max(1, Math.min(z.length - at, cut()));
    inflater.feed(z.subarray(at, at + n));
    at += n;
    drain(false);
  }
  if (state === Inflating.NeedInput) drain(true);
  return { state, truncated: inflater.truncated, out: Buffer.concat(parts) };
}

describe("Inflater", () => {
  const data = sample(600_000, 1);
  const streams = {
    "level 0 (stored)": deflateSync(data, { level: 0 }),
    "level 1": deflateSync(data, { level: 1 }),
    "level 9": deflateSync(data, { level: 9 }),
    "fixed codes": deflateSync(data.subarray(0, 2000), { strategy: 4 }),
    "runs (overlapping matches)": deflateSync(new Uint8Array(300_000).fill(7), { level: 9 }),
  };

  for (const [name, z] of Object.entries(streams)) {
    test(`${name}: bit-identical to zlib however the input is cut`, () => {
      const expected = inflateSync(z);
      for (const [i, windowBytes] of [HISTORY_BYTES + 1024, 256 * 1024].entries()) {
        const r = prng(i + 2);
        for (const cut of [() => 1 + Math.floor(r() * 7), () => 1 + Math.floor(r() * 5000), () => z.length]) {
          const got = inflatePieces(new Uint8Array(z), cut, windowBytes);
          expect(got.state).toBe(Inflating.End);
          expect(Buffer.compare(got.out, expected)).toBe(0);
        }
      }
    });
  }

  test("the window is reused: what run() writes stays within it", () => {
    const z = new Uint8Array(streams["level 1"]);
    const inflater = new Inflater(new Uint8Array(HISTORY_BYTES + 4096), 16);
    inflater.feed(z);
    let pieces = 0;
    for (let state: Inflating = Inflating.WindowFull; state === Inflating.WindowFull; pieces++) {
      state = inflater.run(true);
      const out = inflater.take();
      expect(out.buffer).toBe(inflater.window.buffer);
    }
    expect(pieces).toBeGreaterThan(data.length / 4096);
  });

  test("refusals as zlib's: a wrong Adler-32, a bad block type, a distance too far back, a cut stream", () => {
    const z = new Uint8Array(streams["level 9"]);
    const adler = z.slice();
    adler[adler.length - 1] ^= 1;
    expect(() => inflateSync(adler)).toThrow();
    expect(inflatePieces(adler, () => 999, 64 * 1024)).toMatchObject({ state: Inflating.Failed, truncated: false });

    // A block of type 3 (reserved) right after the header.
    const reserved = new Uint8Array([0x78, 0x9c, 0b111]);
    expect(inflatePieces(reserved, () => 1, 64 * 1024)).toMatchObject({ state: Inflating.Failed, truncated: false });

    // A match before the first byte: fixed codes, length 3 (symbol 257, code 0000001), distance 1 (code 0).
    const far = new Uint8Array([0x78, 0x9c, 0b00000011, 0b00000010, 0]);
    expect(() => inflateSync(far)).toThrow(/distance too far back/);
    expect(inflatePieces(far, () => 2, 64 * 1024)).toMatchObject({ state: Inflating.Failed, truncated: false });

    const cut = z.subarray(0, z.length >> 1);
    const got = inflatePieces(cut, () => 333, 64 * 1024);
    expect(got).toMatchObject({ state: Inflating.Failed, truncated: true });
    // What came before the cut is the stream's output so far.
    expect(Buffer.compare(got.out, Buffer.from(data.subarray(0, got.out.length)))).toBe(0);
    expect(got.out.length).toBeGreaterThan(0);
  });

  test("inflateZlib answers as zlib.decompressobj().decompress(data, limit): output, over, error", () => {
    const z = new Uint8Array(deflateSync(data.subarray(0, 5000)));
    expect(inflateZlib(z, 5000)).toEqual(data.subarray(0, 5000));
    expect(inflateZlib(z, 4999)).toBe("over");
    // A cut stream: what zlib's inflate makes of the bytes there are (Z_SYNC_FLUSH), no error.
    const cut = z.subarray(0, 1500);
    const some = new Uint8Array(inflateSync(cut, { finishFlush: 2 }));
    expect(some.length).toBeGreaterThan(0);
    expect(inflateZlib(cut, 5000)).toEqual(some);
    const bad = z.slice();
    bad[0] = 0x79;
    expect(inflateZlib(bad, 5000)).toBe("error");
  });
});
