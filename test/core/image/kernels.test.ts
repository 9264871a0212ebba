// The image decoders' wasm kernels (assembly/image/, core/image/kernels.ts) against their scalar twins and
// the JavaScript steps they replace, on random and extreme rows; and whole decodes with and without them.
import { readdirSync, readFileSync } from "node:fs";
import { afterAll, describe, expect, test } from "vitest";
import { upsampleRow, yccToRgb } from "../../../core/image/jpeg/color.ts";
import { idct2, idct4, idct8 } from "../../../core/image/jpeg/idct.ts";
import { openJpeg } from "../../../core/image/jpeg/index.ts";
import { openImage } from "../../../core/image/open.ts";
import { DEFAULT_LIMITS } from "../../../core/limits.ts";
import { decodeKernels, installDecodeKernels } from "../../../core/image/kernels.ts";
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
    for (const name of ["images/retina-restart-markers.jpg", "images/cat-baseline-420.jpg"]) {
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
