// The image decoders' wasm kernels (assembly/image/, core/image/kernels.ts) against their scalar twins and
// the JavaScript steps they replace, on random and extreme rows; and whole decodes with and without them.
import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { afterAll, describe, expect, test } from "vitest";
import { upsampleRow, yccToRgb } from "../../../core/image/jpeg/color.ts";
import { isTruncation } from "../../../core/image/jpeg/errors.ts";
import {
  BitReader,
  buildHuffmanTable,
  decodeAcFirst,
  decodeAcFirstCompact,
  decodeAcRefine,
  decodeAcRefineCompact,
  decodeAcRefineDropped,
  decodeDcFirst,
  decodeDcRefine,
  type HuffmanTable,
} from "../../../core/image/jpeg/huffman.ts";
import { idct2, idct4, idct8 } from "../../../core/image/jpeg/idct.ts";
import { installStandardTables, newTables } from "../../../core/image/jpeg/markers.ts";
import { ZIGZAG } from "../../../core/image/jpeg/zigzag.ts";
import { openJpeg } from "../../../core/image/jpeg/index.ts";
import { openImage, openImageBytes } from "../../../core/image/open.ts";
import { filterRow, upsampleLine } from "../../../core/image/webp/vp8.ts";
import { DEFAULT_LIMITS } from "../../../core/limits.ts";
import {
  AC_FIRST_COMPACT,
  AC_FIRST_FULL,
  AC_REFINE_COMPACT,
  AC_REFINE_DROPPED,
  AC_REFINE_FULL,
  type DcComponent,
  type DecodeKernels,
  decodeKernels,
  installDecodeKernels,
  MCUS_TRUNCATED,
} from "../../../core/image/kernels.ts";
import {
  BICUBIC,
  BILINEAR,
  BOX,
  coefficients,
  filterOf,
  HAMMING,
  horizontalRow,
  LANCZOS,
  verticalRow,
} from "../../../core/preprocess/resize.ts";
import { prng as random } from "../../prng.ts";

const root = new URL("../../../", import.meta.url);
const module = new WebAssembly.Module(readFileSync(new URL("build/decode.wasm", root)));
installDecodeKernels(module);
const kernels = decodeKernels();
if (!kernels) throw new Error("no kernels");
afterAll(() => installDecodeKernels(module));

type Fill = (rand: () => number, i: number) => number;
const FILLS: Record<string, Fill> = {
  random: (rand) => Math.floor(rand() * 256),
  zeros: () => 0,
  full: () => 255,
  // Saturates every channel both ways: chroma and luma at opposite extremes in alternate columns.
  alternating: (_, i) => (i & 1 ? 255 : 0),
  ramp: (_, i) => (i * 37) & 255,
};

describe("h2v2YccRow: 4:2:0 fancy upsampling + YCbCr -> RGB", () => {
  // The unfused JavaScript steps: the h2v2 upsampled rows, then the conversion.
  function reference(y: Uint8Array, cb: Uint8Array, cr: Uint8Array, cw: number, width: number, odd: boolean) {
    const cbUp = new Uint8Array(2 * cw + 8);
    const crUp = new Uint8Array(2 * cw + 8);
    upsampleRow("h2v2", 2, cw, cb, 0, cw, odd, cbUp, width);
    upsampleRow("h2v2", 2, cw, cr, 0, cw, odd, crUp, width);
    const out = new Uint8Array(3 * width);
    yccToRgb(y, 0, cbUp, 0, crUp, 0, out, 0, width);
    return out;
  }

  const widths = [5, 6, 7, 16, 17, 18, 19, 20, 33, 34, 35, 36, 100, 101, 4000, 4001];
  for (const [name, fill] of Object.entries(FILLS)) {
    test(`${name} rows, widths ${widths.join(", ")}: SIMD = scalar twin = upsampleRow + yccToRgb`, () => {
      const rand = random(widths.length + name.length);
      for (const width of widths) {
        const cw = Math.ceil(width / 2);
        const y = Uint8Array.from({ length: width }, (_, i) => fill(rand, i));
        // Rows near then far, one after the other; chroma from another stretch of the pattern.
        const cb = Uint8Array.from({ length: 2 * cw }, (_, i) => fill(rand, i + 1));
        const cr = Uint8Array.from({ length: 2 * cw }, (_, i) => fill(rand, 3 * i));
        const want = reference(y, cb, cr, cw, width, false);
        const simd = new Uint8Array(3 * width);
        const scalar = new Uint8Array(3 * width);
        kernels.h2v2YccRow(y, 0, cb, 0, cw, cr, 0, cw, cw, simd, 0, width);
        kernels.h2v2YccRow(y, 0, cb, 0, cw, cr, 0, cw, cw, scalar, 0, width, true);
        expect(scalar, `scalar, width ${width}`).toEqual(want);
        expect(simd, `SIMD, width ${width}`).toEqual(want);
      }
    });
  }

  test("rows at offsets inside larger buffers, output at an offset", () => {
    const rand = random(7);
    const width = 257;
    const cw = 129;
    const y = Uint8Array.from({ length: 1000 }, () => Math.floor(rand() * 256));
    const plane = Uint8Array.from({ length: 1000 }, () => Math.floor(rand() * 256));
    const out = new Uint8Array(3 * width + 30).fill(7);
    kernels.h2v2YccRow(y, 300, plane, 11, 500, plane, 200, 700, cw, out, 30, width);
    const want = reference(
      y.subarray(300),
      Uint8Array.of(...plane.subarray(11, 11 + cw), ...plane.subarray(500, 500 + cw)),
      Uint8Array.of(...plane.subarray(200, 200 + cw), ...plane.subarray(700, 700 + cw)),
      cw,
      width,
      false,
    );
    expect(out.subarray(30)).toEqual(want);
    expect(Array.from(out.subarray(0, 30))).toEqual(new Array(30).fill(7));
  });
});

describe("yccRows: YCbCr -> RGB at full chroma resolution", () => {
  const widths = [1, 5, 15, 16, 17, 31, 32, 33, 100, 1000, 4001];
  for (const [name, fill] of Object.entries(FILLS)) {
    test(`${name} rows, widths ${widths.join(", ")}: SIMD = scalar twin = yccToRgb`, () => {
      const rand = random(widths.length * 3 + name.length);
      for (const width of widths) {
        for (const rows of [1, 2, 4]) {
          // Planes with strides past the width, rows starting at an offset; chroma from other stretches.
          const yStride = width + 3;
          const cStride = width + 8;
          const y = Uint8Array.from({ length: rows * yStride + 5 }, (_, i) => fill(rand, i));
          const cb = Uint8Array.from({ length: rows * cStride + 9 }, (_, i) => fill(rand, i + 1));
          const cr = Uint8Array.from({ length: rows * cStride + 2 }, (_, i) => fill(rand, 3 * i));
          const want = new Uint8Array(3 * width * rows + 6).fill(7);
          for (let r = 0; r < rows; r++) {
            yccToRgb(y, 5 + r * yStride, cb, 9 + r * cStride, cr, 2 + r * cStride, want, 6 + 3 * width * r, width);
          }
          for (const scalar of [false, true]) {
            const got = new Uint8Array(3 * width * rows + 6).fill(7);
            kernels.yccRows(y, 5, yStride, cb, 9, cr, 2, cStride, got, 6, width, rows, scalar);
            expect(got, `${scalar ? "scalar" : "SIMD"}, width ${width}, ${rows} rows`).toEqual(want);
          }
        }
      }
    });
  }
});

describe("idctBand: the 8x8 islow IDCT and the reduced 4x4 and 2x2 ones", () => {
  // Coefficient blocks of each kind: photo-like (few, small, low-frequency), dense, DC only (the
  // whole-block shortcut), a lone coefficient per column, and extremes that wrap and saturate in 16 bits.
  type Block = (rand: () => number) => Int32Array;
  const int = (rand: () => number, lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
  const KINDS: Record<string, Block> = {
    photo: (rand) =>
      Int32Array.from({ length: 64 }, (_, i) => (i === 0 || rand() < 8 / (i + 4) ? int(rand, -1024, 1023) : 0)),
    dense: (rand) => Int32Array.from({ length: 64 }, () => int(rand, -2048, 2047)),
    "DC only": (rand) => Int32Array.from({ length: 64 }, (_, i) => (i === 0 ? int(rand, -40000, 40000) : 0)),
    "row 0 only": (rand) => Int32Array.from({ length: 64 }, (_, i) => (i < 8 ? int(rand, -20000, 20000) : 0)),
    "one per column": (rand) =>
      Int32Array.from({ length: 64 }, (_, i) => (i >> 3 === (i & 7) ? int(rand, -32768, 32767) : 0)),
    extreme: (rand) =>
      Int32Array.from({ length: 64 }, () => [32767, -32768, 65535, -65536, 1 << 20, 0, 255 * 65535][int(rand, 0, 6)]),
    "16-bit": (rand) => Int32Array.from({ length: 64 }, () => int(rand, -32768, 32767)),
    // Nonzero only above 16 bits: the whole-block test sees them, the transform reads zeros.
    "high bits": (rand) =>
      Int32Array.from({ length: 64 }, (_, i) => (i === 0 ? int(rand, -9000, 9000) : rand() < 0.2 ? 65536 : 0)),
  };

  const IDCTS = { 8: idct8, 4: idct4, 2: idct2 } as const;
  for (const size of [8, 4, 2] as const) {
    for (const [name, make] of Object.entries(KINDS)) {
      test(`${size}x${size}, ${name} blocks: SIMD = scalar twin = idct${size}`, () => {
        const rand = random(name.length * 101 + size);
        // A band of 2 block rows of 5 blocks, as the decoder lays out a component's MCU row.
        const perRow = 5;
        const rows = 2;
        const stride = perRow * size + 3;
        for (let round = 0; round < 40; round++) {
          const blocks = Array.from({ length: perRow * rows }, () => make(rand));
          const want = new Uint8Array(rows * size * stride);
          blocks.forEach((b, n) => {
            IDCTS[size](b, want, Math.floor(n / perRow) * size * stride + (n % perRow) * size, stride);
          });
          for (const scalar of [false, true]) {
            const { view, at } = kernels.coefficients(perRow * rows);
            blocks.forEach((b, n) => view.set(b, at + n * 64));
            const got = new Uint8Array(rows * size * stride);
            kernels.idctBand(size, at, perRow, rows, got, 0, stride, scalar);
            // The band comes back zeroed for the next one.
            expect(view.subarray(at, at + perRow * rows * 64).every((v) => v === 0)).toBe(true);
            kernels.released();
            for (let y = 0; y < rows * size; y++) {
              const w = want.subarray(y * stride, y * stride + perRow * size);
              const g = got.subarray(y * stride, y * stride + perRow * size);
              expect(g, `${scalar ? "scalar" : "SIMD"}, row ${y}`).toEqual(w);
            }
          }
        }
      });
    }
  }
});

describe("horizontalRow: the resize's horizontal pass", () => {
  const FILTERS = { BILINEAR, BICUBIC, LANCZOS, BOX, HAMMING };
  // Downscales as uploads need them, an upscale, and the same size.
  const SIZES = [
    [4000, 224],
    [1000, 224],
    [333, 100],
    [224, 224],
    [50, 173],
    [7, 3],
  ];
  for (const [name, filter] of Object.entries(FILTERS)) {
    for (const fill of ["random", "full", "alternating"] as const) {
      test(`${name}, ${fill} rows: SIMD = scalar twin = horizontalRow`, () => {
        const rand = random(name.length + fill.length);
        for (const [inW, outW] of SIZES) {
          const c = coefficients(inW, outW, filterOf(filter));
          const row = Uint8Array.from({ length: 3 * inW + 9 }, (_, i) => FILLS[fill](rand, i));
          const want = new Uint8Array(3 * outW + 6);
          horizontalRow(row, 9, want, 6, outW, c);
          for (const scalar of [false, true]) {
            const got = new Uint8Array(3 * outW + 6);
            kernels.horizontalRow(row, 9, inW, got, 6, outW, c, scalar);
            expect(got, `${scalar ? "scalar" : "SIMD"}, ${inW} -> ${outW}`).toEqual(want);
          }
        }
      });
    }
  }
});

describe("verticalRow: the resize's vertical pass (and the transposed horizontal one)", () => {
  const FILTERS = { BILINEAR, BICUBIC, LANCZOS, BOX, HAMMING };
  // Output rows' windows from downscales as uploads need them, an upscale and the same size; row lengths
  // around the kernel's 16-byte steps.
  const SIZES = [
    [4000, 224],
    [1000, 224],
    [333, 100],
    [224, 224],
    [50, 173],
    [7, 3],
  ];
  const LENGTHS = [1, 3, 15, 16, 17, 48, 672, 3000];
  for (const [name, filter] of Object.entries(FILTERS)) {
    for (const fill of ["random", "full", "alternating"] as const) {
      test(`${name}, ${fill} rows: SIMD = scalar twin = verticalRow`, () => {
        const rand = random(name.length * 7 + fill.length);
        for (const [inH, outH] of SIZES) {
          const c = coefficients(inH, outH, filterOf(filter));
          for (const length of LENGTHS) {
            // The input rows in a ring, out of order, at offsets that are not multiples of 16.
            const rows = c.ksize;
            const src = Uint8Array.from({ length: rows * (length + 5) + 5 }, (_, i) => FILLS[fill](rand, i));
            const at = Int32Array.from({ length: rows }, (_, y) => 5 + ((y * 3) % rows) * (length + 5));
            for (const yy of [0, outH >> 1, outH - 1]) {
              const count = c.bounds[yy * 2 + 1];
              const want = new Uint8Array(length + 7);
              verticalRow(src, at, count, c.weights, yy * c.ksize, length, want, 7);
              for (const scalar of [false, true]) {
                const got = new Uint8Array(length + 7);
                kernels.verticalRow(src, at, count, c.weights, yy * c.ksize, length, got, 7, scalar);
                expect(got, `${scalar ? "scalar" : "SIMD"}, ${inH} -> ${outH}, row ${yy}, ${length} bytes`).toEqual(
                  want,
                );
              }
            }
          }
        }
      });
    }
  }
});

describe("whole decodes with and without the kernels", () => {
  const photos = ["cat-420-99x65.jpg", "cat-baseline-420.jpg", "coffee-progressive.jpg", "rocket-exif-orient6.jpg"];
  async function pixels(bytes: Uint8Array, scale: number): Promise<Uint8Array> {
    const d = openJpeg(bytes, { maxPixels: 1 << 26 });
    const width = Math.ceil(d.header.width / scale);
    const out = new Uint8Array(width * Math.ceil(d.header.height / scale) * 3);
    await d.decode(scale, (rows, first, count) => out.set(rows.subarray(0, count * width * 3), first * width * 3));
    return out;
  }
  for (const name of photos) {
    test(`${name} at every scale: the same pixels`, async () => {
      const bytes = new Uint8Array(readFileSync(new URL(`test/fixtures/images/${name}`, root)));
      for (const scale of [1, 2, 4, 8]) {
        installDecodeKernels(null);
        expect(decodeKernels()).toBeNull();
        const js = await pixels(bytes, scale);
        installDecodeKernels(module);
        const wasm = await pixels(bytes, scale);
        expect(wasm.length).toBe(js.length);
        expect(Buffer.compare(wasm, js), `1/${scale}`).toBe(0);
      }
    });
  }
});

describe("Huffman decoding in the kernels against the JavaScript decoder", () => {
  const fixtures = new URL("test/fixtures/", root);
  const files = readdirSync(fixtures, { recursive: true, encoding: "utf8" })
    .filter((f) => /\.jpe?g$/i.test(f))
    .sort();

  // The decode's pixels, or its error's code and message: both paths must give the same one.
  async function outcome(input: Uint8Array | ReadableStream<Uint8Array>, scale: number): Promise<string> {
    try {
      const d = await openImage(input, { ...DEFAULT_LIMITS, maxPixels: 1 << 26 });
      const width = Math.ceil(d.header.width / scale);
      const out = new Uint8Array(width * Math.ceil(d.header.height / scale) * 3);
      await d.decode(scale, (rows, first, count) => out.set(rows.subarray(0, count * width * 3), first * width * 3));
      return `pixels ${Buffer.from(out).toString("base64")}`;
    } catch (error) {
      return `error ${(error as { code?: string }).code} ${(error as Error).message}`;
    }
  }

  async function bothWays(bytes: Uint8Array, scale: number): Promise<{ js: string; wasm: string }> {
    installDecodeKernels(null);
    const js = await outcome(bytes, scale);
    installDecodeKernels(module);
    const wasm = await outcome(bytes, scale);
    return { js, wasm };
  }

  test("the fixtures include baseline files with restart markers", () => {
    expect(files.filter((f) => f.includes("restart")).length).toBeGreaterThan(1);
    expect(files.length).toBeGreaterThan(50);
  });

  for (const name of files) {
    test(`${name}: the same pixels or error at every scale`, async () => {
      const bytes = new Uint8Array(readFileSync(new URL(name, fixtures)));
      for (const scale of [1, 2, 4, 8]) {
        const { js, wasm } = await bothWays(bytes, scale);
        expect(wasm === js, `1/${scale}: ${wasm.slice(0, 80)} vs ${js.slice(0, 80)}`).toBe(true);
      }
    });
  }

  const damaged = [
    "images/cat-baseline-420.jpg",
    "images/retina-restart-markers.jpg",
    "jpeg/baseline-restart-420-50x40.jpg",
    "jpeg/baseline-mixed-2x2-1x2-2x1-41x27.jpg",
    "jpeg/baseline-411-45x21.jpg",
    "images/coffee-progressive.jpg",
    "jpeg/progressive-restart-420-50x40.jpg",
    "jpeg/progressive-420-64x48.jpg",
    "jpeg/progressive-gray-45x30.jpg",
  ];
  for (const name of damaged) {
    test(`${name}: truncated and corrupted copies decode or fail alike`, async () => {
      const bytes = new Uint8Array(readFileSync(new URL(name, fixtures)));
      const rand = random(name.length);
      const sos = bytes.findIndex((b, i) => b === 0xff && bytes[i + 1] === 0xda);
      expect(sos).toBeGreaterThan(0);
      for (let i = 0; i < 12; i++) {
        // Cut inside the entropy data, and a copy with bytes overwritten there (0xFF among them: stuffing,
        // stray markers, restart markers out of order).
        const cut = sos + 12 + Math.floor(rand() * (bytes.length - sos - 12));
        const truncated = bytes.slice(0, cut);
        const corrupted = bytes.slice();
        for (let j = 0; j < 1 + i; j++) {
          const at = sos + 12 + Math.floor(rand() * (bytes.length - sos - 14));
          corrupted[at] = rand() < 0.3 ? 0xff : rand() < 0.2 ? 0xd0 + Math.floor(rand() * 8) : Math.floor(rand() * 256);
        }
        for (const scale of [1, 4, 8]) {
          for (const [kind, copy] of [
            ["truncated", truncated],
            ["corrupted", corrupted],
          ] as const) {
            const { js, wasm } = await bothWays(copy, scale);
            expect(wasm === js, `${kind} ${i} at 1/${scale}: ${wasm.slice(0, 80)} vs ${js.slice(0, 80)}`).toBe(true);
          }
        }
      }
    });
  }

  test("entropy bytes copied a few at a time: the same pixels or error", async () => {
    for (const name of damaged) {
      const bytes = new Uint8Array(readFileSync(new URL(name, fixtures)));
      for (const scale of [2, 8]) {
        installDecodeKernels(null);
        const js = await outcome(bytes, scale);
        for (const chunk of [1, 7, 64]) {
          installDecodeKernels(module);
          const small = decodeKernels() as NonNullable<ReturnType<typeof decodeKernels>>;
          small.chunkBytes = chunk;
          expect((await outcome(bytes, scale)) === js, `${name} at 1/${scale}, ${chunk} bytes`).toBe(true);
        }
      }
    }
    installDecodeKernels(module);
  });

  test("streamed a few bytes at a time: the same pixels as the whole file in JavaScript", async () => {
    for (const name of [
      "images/retina-restart-markers.jpg",
      "images/cat-baseline-420.jpg",
      "images/coffee-progressive.jpg",
      "jpeg/progressive-restart-420-50x40.jpg",
    ]) {
      const bytes = new Uint8Array(readFileSync(new URL(name, fixtures)));
      installDecodeKernels(null);
      const js = await outcome(bytes, 4);
      installDecodeKernels(module);
      const rand = random(7);
      let at = 0;
      const stream = new ReadableStream<Uint8Array>({
        pull(controller) {
          if (at >= bytes.length) return controller.close();
          const end = Math.min(bytes.length, at + 1 + Math.floor(rand() * 700));
          controller.enqueue(bytes.slice(at, end));
          at = end;
        },
      });
      expect((await outcome(stream, 4)) === js, name).toBe(true);
    }
  });

  test("streamed slower than it decodes: each MCU row decoded about once, not again after every chunk", async () => {
    // 512x512, 4:4:4: 64 MCU rows of about 2 KB; a refill reads 16 KiB at least.
    const bytes = new Uint8Array(readFileSync(new URL("images/astronaut-444.jpg", fixtures)));
    const whole = await outcome(bytes, 1);
    const rows = 64;
    // 512-byte chunks, each a turn of the event loop after the last: the decoder keeps catching up.
    let at = 0;
    const stream = new ReadableStream<Uint8Array>({
      async pull(controller) {
        await new Promise((resolve) => setImmediate(resolve));
        if (at >= bytes.length) return controller.close();
        controller.enqueue(bytes.slice(at, at + 512));
        at += 512;
      },
    });
    const k = decodeKernels() as NonNullable<ReturnType<typeof decodeKernels>>;
    const decodeMcus = k.decodeMcus.bind(k);
    let calls = 0;
    k.decodeMcus = (...args) => {
      calls++;
      return decodeMcus(...args);
    };
    try {
      expect((await outcome(stream, 1)) === whole).toBe(true);
    } finally {
      k.decodeMcus = decodeMcus;
    }
    // A row's bytes are awaited before it runs (the largest row's so far), so few rows run twice.
    expect(calls).toBeGreaterThanOrEqual(rows);
    expect(calls).toBeLessThan(rows + 3);
  });
});

describe("progressive scans in the kernels against the JavaScript twins", () => {
  // The coefficient layouts the decoder keeps: all 64 (with a last-nonzero index per block), the 25 the 2x2
  // IDCT reads (nonzero bits for the others), the DC alone (every AC coefficient a nonzero bit).
  function layout(kept: 64 | 25 | 1): Int8Array {
    const keepNatural = new Int8Array(64).fill(-1);
    let slot = 0;
    for (let i = 0; i < 64; i++) {
      const keep = (n: number) => kept === 64 || (kept === 25 ? n % 2 === 1 || n === 0 : i === 0);
      if (keep(i >> 3) && keep(i & 7)) keepNatural[i] = slot++;
    }
    return Int8Array.from(ZIGZAG.subarray(0, 64), (z) => keepNatural[z]);
  }
  const keptZigzagOf = (keep: Int8Array) => Int8Array.from(Array.from(keep.keys()).filter((k) => keep[k] >= 0));

  // Entropy data: random bytes, some of them 0xFF as a stuffed zero, a restart or other marker (the data
  // ends there), or a file cut short inside the data (no marker at all).
  function entropy(rand: () => number, length: number, ending: "marker" | "truncated"): Uint8Array {
    const out: number[] = [];
    while (out.length < length) {
      const byte = Math.floor(rand() * 256);
      if (byte !== 0xff) out.push(byte);
      else if (rand() < 0.9) out.push(0xff, 0x00);
      else out.push(0xff, 0xff, 0x00); // fill bytes before a stuffed zero
    }
    if (ending === "marker") out.push(0xff, rand() < 0.5 ? 0xd0 + Math.floor(rand() * 8) : 0xd9);
    return Uint8Array.from(out);
  }

  // Huffman tables for AC scans: the standard one (first scans' sizes 1..10) and random ones, whose symbols
  // in a refinement may have sizes above 1 (a damaged file: read as size 1).
  function tables(rand: () => number): HuffmanTable[] {
    const std = newTables();
    installStandardTables(std);
    const out = [std.ac[0] as HuffmanTable, std.ac[1] as HuffmanTable];
    for (let i = 0; i < 4; i++) {
      const symbols = Array.from({ length: 40 }, () => Math.floor(rand() * 256));
      const counts = new Uint8Array(16);
      // A complete-enough code: lengths from 2 bits up, two codes each until the symbols run out.
      let left = symbols.length;
      for (let len = 2; len <= 16 && left > 0; len++) {
        counts[len - 1] = Math.min(left, len < 6 ? 2 : 4);
        left -= counts[len - 1];
      }
      out.push(buildHuffmanTable(counts, Uint8Array.from(symbols)));
    }
    return out.filter((t) => t.valid);
  }

  interface AcCase {
    kind: number;
    kept: 64 | 25 | 1;
    ss: number;
    se: number;
    al: number;
  }
  // The reader's state after the last whole block, the store, and how the run ended.
  interface Outcome {
    coefs: Int16Array;
    aux: Uint8Array | Uint32Array;
    reader: number[];
    eobrun: number;
    blocks: number;
    truncated: boolean;
  }
  const readerState = (r: BitReader) => [r.pos, r.acc, r.bits, r.pad, r.atMarker ? 1 : 0];

  function acByJavaScript(
    c: AcCase,
    table: HuffmanTable,
    data: Uint8Array,
    coefs0: Int16Array,
    aux0: Uint8Array | Uint32Array,
    blocks: number,
  ): Outcome {
    const coefs = coefs0.slice();
    const aux = aux0.slice();
    const keep = layout(c.kept);
    const keptZigzag = keptZigzagOf(keep);
    const r = new BitReader(data, 0);
    const eobrun = [0];
    let done = 0;
    let truncated = false;
    let state = readerState(r);
    for (; done < blocks; done++) {
      // A block cut short goes back to what it was, as the decoder's retried rows put it back.
      const savedCoefs = coefs.slice(done * c.kept, (done + 1) * c.kept);
      const per = c.kept === 64 ? 1 : 2;
      const savedAux = aux.slice(done * per, (done + 1) * per);
      try {
        const o = done * c.kept;
        const nb = done;
        const run = eobrun[0];
        const last = aux as Uint8Array;
        const nz = aux as Uint32Array;
        if (c.kind === AC_FIRST_FULL) eobrun[0] = decodeAcFirst(r, table, coefs, o, last, nb, c.ss, c.se, c.al, run);
        else if (c.kind === AC_REFINE_FULL)
          eobrun[0] = decodeAcRefine(r, table, coefs, o, last, nb, c.ss, c.se, c.al, run);
        else if (c.kind === AC_FIRST_COMPACT)
          eobrun[0] = decodeAcFirstCompact(r, table, coefs, o, keep, nz, nb, c.ss, c.se, c.al, run);
        else if (c.kind === AC_REFINE_COMPACT)
          eobrun[0] = decodeAcRefineCompact(r, table, coefs, o, keep, keptZigzag, nz, nb, c.ss, c.se, c.al, run);
        else eobrun[0] = decodeAcRefineDropped(r, table, nz, nb, c.ss, c.se, run);
      } catch (error) {
        if (!isTruncation(error)) throw error;
        coefs.set(savedCoefs, done * c.kept);
        aux.set(savedAux as never, done * per);
        truncated = true;
        break;
      }
      state = readerState(r);
      if (r.exhausted) {
        done++;
        break;
      }
    }
    return { coefs, aux, reader: state, eobrun: eobrun[0], blocks: done, truncated };
  }

  function acByKernel(
    k: DecodeKernels,
    c: AcCase,
    table: HuffmanTable,
    data: Uint8Array,
    coefs0: Int16Array,
    aux0: Uint8Array | Uint32Array,
    blocks: number,
  ): Outcome {
    const coefs = coefs0.slice();
    const aux = aux0.slice();
    const keep = layout(c.kept);
    k.progressiveTables([table], c.kept === 64 ? null : keep);
    const per = c.kept === 64 ? 1 : 2;
    const keptCoefs = c.kind === AC_REFINE_DROPPED ? 0 : blocks * c.kept;
    expect(k.progressiveBand(coefs, 0, keptCoefs, aux, 0, blocks * per)).toBe(true);
    const r = new BitReader(data, 0);
    const eobrun = new Int32Array(1);
    let done = k.decodeAcBlocks(r, eobrun, 0, blocks, c.kind, c.kept, c.ss, c.se, c.al);
    k.progressiveBandBack();
    const truncated = done === MCUS_TRUNCATED;
    if (truncated) {
      // How far it got: the reader stands at the end of the last whole block.
      done = -1;
    }
    return { coefs, aux, reader: readerState(r), eobrun: eobrun[0], blocks: done, truncated };
  }

  const KINDS: [string, number, 64 | 25 | 1][] = [
    ["AC first, all kept", AC_FIRST_FULL, 64],
    ["AC refinement, all kept", AC_REFINE_FULL, 64],
    ["AC first, 25 kept", AC_FIRST_COMPACT, 25],
    ["AC refinement, 25 kept", AC_REFINE_COMPACT, 25],
    ["AC first, DC kept", AC_FIRST_COMPACT, 1],
    ["AC refinement, none kept", AC_REFINE_DROPPED, 1],
  ];
  for (const [name, kind, kept] of KINDS) {
    test(`${name}: random stores and data, the same coefficients, reader and errors`, () => {
      const rand = random(kind * 100 + kept);
      const k = decodeKernels() as DecodeKernels;
      const all = tables(rand);
      for (let round = 0; round < 60; round++) {
        const blocks = 1 + Math.floor(rand() * 40);
        const ss = 1 + Math.floor(rand() * 63);
        const se = rand() < 0.5 ? 63 : ss + Math.floor(rand() * (64 - ss));
        const al = Math.floor(rand() * 4);
        const c: AcCase = { kind, kept, ss, se, al };
        // A store as the decoder keeps one: coefficients with bit al clear or set, many zeros; nonzero bits
        // at random, for dropped positions only.
        const coefs = Int16Array.from({ length: blocks * kept }, () =>
          rand() < 0.6 ? 0 : (rand() < 0.5 ? -1 : 1) * (Math.floor(rand() * 40) << (al + (rand() < 0.5 ? 1 : 0))),
        );
        const keep = layout(kept);
        const aux =
          kept === 64
            ? Uint8Array.from({ length: blocks }, () => Math.floor(rand() * 64))
            : Uint32Array.from({ length: 2 * blocks }, (_, i) => {
                let word = 0;
                for (let bit = 0; bit < 32; bit++) {
                  if (keep[(i & 1) * 32 + bit] < 0 && rand() < 0.3) word |= 1 << bit;
                }
                return word >>> 0;
              });
        const data = entropy(rand, 8 + Math.floor(rand() * 600), rand() < 0.7 ? "marker" : "truncated");
        const table = all[Math.floor(rand() * all.length)];
        const js = acByJavaScript(c, table, data, coefs, aux, blocks);
        for (const chunk of [1 << 15, 5, 64]) {
          k.chunkBytes = chunk;
          const wasm = acByKernel(k, c, table, data, coefs, aux, blocks);
          const what = `round ${round}, ${JSON.stringify(c)}, ${blocks} blocks, ${chunk}-byte copies`;
          expect(wasm.truncated, what).toBe(js.truncated);
          if (!js.truncated) {
            expect(wasm.blocks, what).toBe(js.blocks);
            expect(wasm.reader, what).toEqual(js.reader);
            expect(wasm.eobrun, what).toBe(js.eobrun);
          }
          expect(wasm.coefs, what).toEqual(js.coefs);
          expect(wasm.aux, what).toEqual(js.aux);
        }
      }
      installDecodeKernels(module);
    });
  }

  test("DC first and refinement: random interleaved MCUs, the same coefficients, predictors, reader and errors", () => {
    const rand = random(99);
    const std = newTables();
    installStandardTables(std);
    const dcs = [std.dc[0] as HuffmanTable, std.dc[1] as HuffmanTable, std.dc[1] as HuffmanTable];
    for (let round = 0; round < 60; round++) {
      const k = decodeKernels() as DecodeKernels;
      // Components of 2x2, 1x1, 1x1 blocks per MCU (or one, non-interleaved), each a band of DC values.
      const sampling =
        rand() < 0.7
          ? [
              [2, 2],
              [1, 1],
              [1, 1],
            ]
          : [[1, 1]];
      const mcus = 1 + Math.floor(rand() * 30);
      const refine = rand() < 0.5;
      const al = Math.floor(rand() * 4);
      const bands = sampling.map(([h, v]) =>
        Int16Array.from({ length: h * v * mcus }, () => Math.floor(rand() * 2000) - 1000),
      );
      const data = entropy(rand, 4 + Math.floor(rand() * 200), rand() < 0.7 ? "marker" : "truncated");
      // JavaScript: block (y, x) of MCU mx of component i at bands[i][y * h * mcus + mx * h + x].
      const jsBands = bands.map((b) => b.slice());
      const r = new BitReader(data, 0);
      const preds = new Int32Array(sampling.length);
      let state = readerState(r);
      let statePreds = Array.from(preds);
      let done = 0;
      let truncated = false;
      for (; done < mcus; done++) {
        try {
          sampling.forEach(([h, v], i) => {
            for (let y = 0; y < v; y++) {
              for (let x = 0; x < h; x++) {
                const off = y * h * mcus + done * h + x;
                if (refine) decodeDcRefine(r, jsBands[i], off, al);
                else preds[i] = decodeDcFirst(r, dcs[i], jsBands[i], off, preds[i], al);
              }
            }
          });
        } catch (error) {
          if (!isTruncation(error)) throw error;
          truncated = true;
          break;
        }
        state = readerState(r);
        statePreds = Array.from(preds);
        if (r.exhausted) {
          done++;
          break;
        }
      }
      for (const chunk of [1 << 15, 3]) {
        k.chunkBytes = chunk;
        k.progressiveTables(dcs.slice(0, sampling.length), null);
        const total = bands.reduce((n, b) => n + b.length, 0);
        const area = k.progressiveScratch(2 * total);
        expect(area).not.toBeNull();
        const { view, at } = area as { view: Int16Array; at: number };
        const components: DcComponent[] = [];
        let o = at;
        sampling.forEach(([h, v], i) => {
          view.set(bands[i], o);
          components.push({ h, v, at: 2 * o, perRow: h * mcus, blockBytes: 2 });
          o += bands[i].length;
        });
        const wr = new BitReader(data, 0);
        const wPreds = new Int32Array(sampling.length);
        const got = k.decodeDcMcus(wr, wPreds, components, 0, mcus, refine, al);
        const what = `round ${round}, ${chunk}-byte copies`;
        expect(got === MCUS_TRUNCATED, what).toBe(truncated);
        if (!truncated) {
          expect(got, what).toBe(done);
          expect(readerState(wr), what).toEqual(state);
          expect(Array.from(wPreds), what).toEqual(statePreds);
          // A truncated MCU may be partly written on either side (a retried row writes it again).
          const after = k.int16View();
          let p = at;
          sampling.forEach((_, i) => {
            expect(after.subarray(p, p + bands[i].length), `${what}, component ${i}`).toEqual(jsBands[i]);
            p += bands[i].length;
          });
        }
      }
      installDecodeKernels(module);
    }
  });
});

describe("vp8FilterRow: lossy WebP's loop filter over a macroblock row", () => {
  // Planes as vp8.ts keeps them: 8 luma rows above the macroblock row (the filter reads 4), 5 chroma rows.
  const Y_ROW = 8;
  const UV_ROW = 5;
  // Smooth content with noise of the given amplitude (so that the filters' thresholds pass in some lines and
  // not in others), around `base`; amplitude 256 is uniform noise.
  function plane(rand: () => number, stride: number, rows: number, base: number, amplitude: number): Uint8Array {
    const p = new Uint8Array(stride * rows);
    for (let i = 0; i < p.length; i++) {
      const x = i % stride;
      const y = Math.floor(i / stride);
      const smooth = base + 20 * Math.sin(x / 7) + 15 * Math.cos(y / 5);
      const v = amplitude >= 256 ? rand() * 256 : smooth + (rand() - 0.5) * 2 * amplitude;
      p[i] = Math.max(0, Math.min(255, Math.round(v)));
    }
    return p;
  }

  const cases: [string, number, number][] = [
    ["mid-grey, noise 2", 128, 2],
    ["mid-grey, noise 8", 128, 8],
    ["mid-grey, noise 30", 128, 30],
    ["near black, noise 12", 6, 12],
    ["near white, noise 12", 250, 12],
    ["uniform noise", 128, 256],
  ];
  for (const filterType of [1, 2]) {
    for (const [name, base, amplitude] of cases) {
      test(`${filterType === 1 ? "simple" : "complex"} filter, ${name}: SIMD = scalar twin = filterRow`, () => {
        const rand = random(filterType * 1000 + base + amplitude);
        let changed = 0;
        for (const mbW of [1, 2, 5, 17]) {
          for (const mbY of [0, 1]) {
            const yStride = 16 * mbW;
            const uvStride = 8 * mbW;
            const Y = plane(rand, yStride, Y_ROW + 16, base, amplitude);
            const U = plane(rand, uvStride, UV_ROW + 8, base, amplitude);
            const V = plane(rand, uvStride, UV_ROW + 8, 255 - base, amplitude);
            // Every column's own strengths: limit (sometimes 0), interior limit, hev threshold, inner edges.
            const info = new Uint8Array(4 * mbW);
            for (let x = 0; x < mbW; x++) {
              const level = rand() < 0.1 ? 0 : 1 + Math.floor(rand() * 63);
              const ilevel = 1 + Math.floor(rand() * Math.min(level || 1, 9));
              info[4 * x] = level === 0 ? 0 : 2 * level + ilevel;
              info[4 * x + 1] = ilevel;
              info[4 * x + 2] = level >= 40 ? 2 : level >= 15 ? 1 : 0;
              info[4 * x + 3] = rand() < 0.7 ? 1 : 0;
            }
            const want = [Y.slice(), U.slice(), V.slice()];
            filterRow(want[0], want[1], want[2], yStride, uvStride, Y_ROW, UV_ROW, info, mbW, mbY, filterType);
            for (const scalar of [true, false]) {
              const got = [Y.slice(), U.slice(), V.slice()];
              const [y, u, v] = got;
              kernels.vp8FilterRow(y, u, v, yStride, uvStride, Y_ROW, UV_ROW, info, mbW, mbY, filterType === 1, scalar);
              const what = `${scalar ? "scalar" : "SIMD"}, ${mbW} macroblocks, row ${mbY}`;
              for (let i = 0; i < 3; i++) expect(Buffer.compare(got[i], want[i]), `${what}, plane ${i}`).toBe(0);
            }
            changed += Number(Buffer.compare(want[0], Y) !== 0);
          }
        }
        // The filter did change the planes where the noise is within its interior limits (at most 9).
        if (amplitude <= 12) expect(changed).toBeGreaterThan(0);
      });
    }
  }

  // Real files: Pillow's pixels (sha256 of its RGB, Pillow 9.4 / libwebp 1.2.4), with and without the kernels.
  const files: [string, string][] = [
    // cwebp 1.2.4 -q 60 -nostrong -f 60 (the simple filter) on astronaut-444.jpg cropped (40, 30, 243, 181).
    ["webp-simple-filter-203x151.webp", "0bdeca9880ecf6f4326a764aa290e7fe69b35a1d8635829e2de896dcdac27518"],
    // cwebp 1.2.4 -q 40 -strong -f 100 -sharpness 5 -segments 4 (the complex filter, every segment's own).
    ["webp-strong-filter-203x151.webp", "470e5ede863b3e00d65a7c2b4b100fc07c19789b89c34cfc9f64e4f27cef1175"],
    // cwebp 1.2.4 -q 50 -f 40 -sharpness 2: too wide for the row kernel's scratch (tokens and prediction in
    // JavaScript), the filter and upsampler kernels still used.
    ["webp-wide-5408x34.webp", "d67499e58b68b7577141d041cce10c2051f4eb6ff43d9bf15df67f47c81f6085"],
  ];
  test("the wide file takes the row kernel's JavaScript twin and the filter and upsampler kernels", () => {
    const mbW = Math.ceil(5408 / 16);
    expect(kernels.fitsVp8DecodeRow(mbW, 16 * mbW, 8 * mbW)).toBe(false);
    expect(kernels.fitsVp8Filter(16 * mbW, 8 * mbW)).toBe(true);
    expect(kernels.fitsVp8Upsample(5408, 4, 16 * mbW, 8 * mbW)).toBe(true);
  });
  async function pixels(bytes: Uint8Array): Promise<Uint8Array> {
    const d = openImageBytes(bytes, { maxPixels: 1 << 26 });
    const { width, height } = d.header;
    const out = new Uint8Array(width * height * 3);
    await d.decode(1, (rows, first, count) => out.set(rows.subarray(0, count * width * 3), first * width * 3));
    return out;
  }
  for (const [name, sha256] of files) {
    test(`${name}: Pillow's pixels with and without the kernels`, async () => {
      const bytes = new Uint8Array(readFileSync(new URL(`test/fixtures/images/${name}`, root)));
      installDecodeKernels(null);
      const js = await pixels(bytes);
      installDecodeKernels(module);
      const wasm = await pixels(bytes);
      expect(createHash("sha256").update(js).digest("hex")).toBe(sha256);
      expect(createHash("sha256").update(wasm).digest("hex")).toBe(sha256);
    });
  }
  // Damaged token data: random modes, coefficients of every size, early ends; the same rows or error.
  test("lossy files with bytes changed at random: the same rows and outcome with and without the kernels", async () => {
    const names = ["photo-lossy-q90", "lossy-q95-101x67", "lossy-q5-64x48", "lossy-method6"];
    const rand = random(4099);
    async function outcome(bytes: Uint8Array): Promise<string> {
      const d = openImageBytes(bytes, { maxPixels: 1 << 26 });
      const { width, height } = d.header;
      const out = new Uint8Array(width * height * 3);
      let rows = 0;
      try {
        await d.decode(1, (r, first, count) => {
          out.set(r.subarray(0, count * width * 3), first * width * 3);
          rows = first + count;
        });
      } catch (e) {
        return `${rows} rows, ${(e as Error).message}: ${createHash("sha256").update(out).digest("hex")}`;
      }
      return createHash("sha256").update(out).digest("hex");
    }
    let decoded = 0;
    for (const name of names) {
      const original = new Uint8Array(readFileSync(new URL(`test/goldens/preprocess/webp/${name}.webp`, root)));
      for (let k = 0; k < 25; k++) {
        const bytes = original.slice();
        // Past the RIFF, chunk and frame headers (30 bytes), into the partitions.
        for (let i = 0; i < 1 + (k % 4); i++) bytes[40 + Math.floor(rand() * (bytes.length - 40))] ^= 1 << (k % 8);
        installDecodeKernels(null);
        const js = await outcome(bytes);
        installDecodeKernels(module);
        const wasm = await outcome(bytes);
        expect(wasm, `${name}, mutation ${k}`).toBe(js);
        decoded += Number(!js.includes("rows,"));
      }
    }
    expect(decoded).toBeGreaterThan(10);
  });

  test("token bytes copied a macroblock's most at a time: Pillow's pixels, the same as without the kernels", async () => {
    const names = ["webp-simple-filter-203x151.webp", "webp-strong-filter-203x151.webp"];
    const photo = new Uint8Array(readFileSync(new URL("test/goldens/preprocess/webp/photo-lossy-q90.webp", root)));
    try {
      kernels.vp8TokenBytes = 0; // the least a call copies: one macroblock's most
      for (const [i, name] of names.entries()) {
        const bytes = new Uint8Array(readFileSync(new URL(`test/fixtures/images/${name}`, root)));
        expect(
          createHash("sha256")
            .update(await pixels(bytes))
            .digest("hex"),
          name,
        ).toBe(files[i][1]);
      }
      const whole = await pixels(photo);
      installDecodeKernels(null);
      const js = await pixels(photo);
      installDecodeKernels(module);
      expect(Buffer.compare(whole, js)).toBe(0);
      // The photo's tokens (15 KB, one partition) take several copies.
      expect(photo.length).toBeGreaterThan(8016);
    } finally {
      kernels.vp8TokenBytes = 64 << 10;
    }
  });

  test("every lossy WebP golden: the same pixels with and without the kernels", async () => {
    const dir = new URL("test/goldens/preprocess/webp/", root);
    const cases: Record<string, { error?: string }> = JSON.parse(
      readFileSync(new URL("cases.json", dir), "utf8"),
    ).cases;
    const names = Object.keys(cases).filter((n) => !cases[n].error && !n.includes("lossless"));
    expect(names.length).toBeGreaterThan(20);
    for (const name of names) {
      const bytes = new Uint8Array(readFileSync(new URL(`${name}.webp`, dir)));
      installDecodeKernels(null);
      const js = await pixels(bytes);
      installDecodeKernels(module);
      const wasm = await pixels(bytes);
      expect(Buffer.compare(wasm, js), name).toBe(0);
    }
  });
});

describe("vp8UpsampleRows: lossy WebP's fancy upsampling + YUV -> RGB", () => {
  const widths = [1, 2, 3, 4, 15, 16, 17, 18, 31, 32, 33, 34, 35, 49, 50, 100, 101, 4000, 4001];
  for (const [name, fill] of Object.entries(FILLS)) {
    test(`${name} planes, widths ${widths.join(", ")}: SIMD = scalar twin = upsampleLine`, () => {
      const rand = random(widths.length * 7 + name.length);
      for (const width of widths) {
        const uvW = (width + 1) >> 1;
        const yStride = Math.ceil(width / 16) * 16;
        const uvStride = yStride / 2;
        // 6 luma and 5 chroma rows; each line its own luma row and a near and far chroma row (or the same).
        const Y = Uint8Array.from({ length: 6 * yStride }, (_, i) => fill(rand, i));
        const U = Uint8Array.from({ length: 5 * uvStride }, (_, i) => fill(rand, i + 3));
        const V = Uint8Array.from({ length: 5 * uvStride }, (_, i) => fill(rand, 7 * i + 1));
        const rows = 5;
        const lines = Int32Array.from({ length: 3 * rows }, (_, i) =>
          i % 3 === 0 ? 1 + i / 3 : Math.floor(rand() * 5),
        );
        lines[5] = lines[4]; // a line whose near and far rows are one (the last row of an odd height)
        const want = new Uint8Array(3 * width * rows);
        for (let r = 0; r < rows; r++) {
          const [y, n, f] = [lines[3 * r] * yStride, lines[3 * r + 1] * uvStride, lines[3 * r + 2] * uvStride];
          const out = want.subarray(3 * width * r, 3 * width * (r + 1));
          upsampleLine(
            Y.subarray(y, y + width),
            U.subarray(n, n + uvW),
            V.subarray(n, n + uvW),
            U.subarray(f, f + uvW),
            V.subarray(f, f + uvW),
            out,
            width,
          );
        }
        for (const scalar of [true, false]) {
          const got = new Uint8Array(3 * width * rows);
          kernels.vp8UpsampleRows(Y, U, V, yStride, uvStride, lines, rows, width, got, scalar);
          expect(Buffer.compare(got, want), `${scalar ? "scalar" : "SIMD"}, width ${width}`).toBe(0);
        }
      }
    });
  }

  test("every chroma pair and luma value: SIMD = upsampleLine (the conversion's clamps both ways)", () => {
    // 256 luma values along a line against chroma sweeping 0..255 one way in U and the other in V.
    const width = 512;
    const uvW = width / 2;
    for (const phase of [0, 64, 128, 192]) {
      const Y = Uint8Array.from({ length: width }, (_, i) => (i + phase) & 255);
      const U = Uint8Array.from({ length: 2 * uvW }, (_, i) => (i * 3 + phase) & 255);
      const V = Uint8Array.from({ length: 2 * uvW }, (_, i) => 255 - ((i * 5 + phase) & 255));
      const want = new Uint8Array(3 * width);
      upsampleLine(Y, U.subarray(0, uvW), V.subarray(0, uvW), U.subarray(uvW), V.subarray(uvW), want, width);
      const got = new Uint8Array(3 * width);
      kernels.vp8UpsampleRows(Y, U, V, width, uvW, Int32Array.of(0, 0, 1), 1, width, got);
      expect(Buffer.compare(got, want), `phase ${phase}`).toBe(0);
    }
  });
});
