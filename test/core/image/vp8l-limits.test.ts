// Lossless WebP streams made to cost a decoder the most memory (test/tools/vp8l_writer.ts): many groups of
// the largest prefix codes, a colour cache of 2^11, transforms and a meta image at their finest tiles (4x4),
// groups the meta image never names. What the decode allocates stays within the figure the ledger reserves
// (decoder.memoryBytes), the pixels are Pillow 9.4's (libwebp 1.2.4), and the one file refused for memory
// is refused as image_too_large with a sentence about it.

import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { EdgevitError } from "../../../core/errors.ts";
import { openImageBytes } from "../../../core/image/open.ts";
import { MAX_TABLE_BYTES } from "../../../core/image/webp/vp8l.ts";
import { prng } from "../../prng.ts";
import {
  type Code,
  type Entropy,
  type Group,
  LITERALS,
  type Transform,
  vp8lStream,
  webpFile,
  withAlpha,
} from "../../tools/vp8l_writer.ts";
import { allocated } from "./allocated.ts";

const LIMITS = { maxPixels: 1e8 };
const scratch = mkdtempSync(join(tmpdir(), "edgevit-vp8l-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

// Pillow's Image.open(f).convert("RGB") bytes, or its error.
const PILLOW = `
import sys
from PIL import Image
try:
    sys.stdout.buffer.write(Image.open(sys.argv[1]).convert("RGB").tobytes())
except Exception as e:
    sys.stdout.buffer.write(b"error: " + str(e).encode())
`;
let files = 0;
function pillow(bytes: Uint8Array): Buffer {
  const path = join(scratch, `${files++}.webp`);
  writeFileSync(path, bytes);
  return execFileSync("/usr/bin/python3", ["-c", PILLOW, path], { maxBuffer: 1 << 28 });
}

// The largest codes for the fewest bits: a green code of 2048 symbols, each 11 bits long (the lookup, the
// counts and every symbol), and red, blue and alpha codes of 256 symbols of 8 bits.
const HEAVY: Group = [
  { kind: "flat", bits: 11 },
  { kind: "flat", bits: 8 },
  { kind: "flat", bits: 8 },
  { kind: "flat", bits: 8 },
  { kind: "single", symbol: 0 },
];

function randomPixels(n: number, seed: number, mask = 0xffffffff): Uint32Array {
  const next = prng(seed);
  return Uint32Array.from({ length: n }, () => (Math.floor(next() * 2 ** 32) & mask) >>> 0);
}

// Predictor (modes 0-13 in green), cross-colour and subtract-green transforms at 4x4 tiles.
function transforms(width: number, height: number, seed: number): Transform[] {
  const tiles = Math.ceil(width / 4) * Math.ceil(height / 4);
  const next = prng(seed);
  const modes = Uint32Array.from({ length: tiles }, () => (Math.floor(next() * 14) << 8) >>> 0);
  return [
    { type: "subtract-green" },
    { type: "predictor", bits: 2, data: modes },
    { type: "cross-colour", bits: 2, data: randomPixels(tiles, seed + 1, 0x00ffffff) },
  ];
}

// The file, with every 4x4 tile its own group (`groups` of them, in reading order) when `meta`.
function file(width: number, height: number, entropy: Entropy, withTransforms: boolean, seed = 1): Uint8Array {
  const residuals = randomPixels(width * height, seed);
  const t = withTransforms ? transforms(width, height, seed + 2) : [];
  return webpFile(vp8lStream(width, height, residuals, t, entropy));
}

const tileGroups = (width: number, height: number, group: Group): Entropy => {
  const across = Math.ceil(width / 4);
  const count = across * Math.ceil(height / 4);
  return {
    cacheBits: 11,
    meta: { bits: 2, groupOf: (x, y) => y * across + x },
    groups: Array.from({ length: count }, () => group),
  };
};

// The decode's allocations (the picture gathered from its rows is the test's, made outside the count) against
// its figure (the file is the caller's).
async function decodeMeasured(bytes: Uint8Array) {
  const decoder = openImageBytes(bytes, LIMITS);
  const { width, height } = decoder.header;
  const figure = decoder.memoryBytes(1) - bytes.length;
  const rgb = new Uint8Array(width * height * 3);
  const sink = (rows: Uint8Array, first: number, count: number) =>
    rgb.set(rows.subarray(0, count * width * 3), first * width * 3);
  const { bytes: used } = await allocated(() => decoder.decode(1, sink));
  return { figure, used, rgb };
}

describe("lossless WebP: what a decode allocates stays within its figure, and its pixels are Pillow's", () => {
  test("as many of the largest groups as the codes' 1 MiB holds, with a 2^11 cache and 4x4 transforms", async () => {
    // 64x32: 128 tiles, 128 groups of 7.4 KiB of tables each (V8's headers reckoned in).
    const bytes = file(64, 32, tileGroups(64, 32, HEAVY), true);
    const { figure, used, rgb } = await decodeMeasured(bytes);
    expect(used).toBeLessThanOrEqual(figure);
    // The codes' tables are most of it (0.79 of their 1 MiB): the figure adds V8's headers of the codes'
    // objects (reckoned at 320 bytes each, 0.17 MiB) and the worst of the caches and sub-images' codes.
    expect(used).toBeGreaterThan(0.75 * MAX_TABLE_BYTES);
    expect(used).toBeGreaterThan(0.7 * figure);
    expect(Buffer.from(rgb).equals(pillow(bytes))).toBe(true);
  });

  test("one group more per row of tiles than that: image_too_large, before the codes outgrow the figure", async () => {
    // 80x32: 160 groups, 1.2 MiB of tables. libwebp decodes it (it keeps up to 65536 groups).
    const bytes = file(80, 32, tileGroups(80, 32, HEAVY), true);
    expect(pillow(bytes).length).toBe(80 * 32 * 3);
    const decoder = openImageBytes(bytes, LIMITS);
    const figure = decoder.memoryBytes(1) - bytes.length;
    let error: unknown;
    const { bytes: used } = await allocated(() => decoder.decode(1, () => {}).catch((e) => (error = e)));
    expect(error).toBeInstanceOf(EdgevitError);
    expect((error as EdgevitError).code).toBe("image_too_large");
    expect((error as EdgevitError).message).toMatch(
      /^The WebP image's lossless data uses 160 groups of prefix codes, which need more than 1.0 MiB/,
    );
    expect(used).toBeLessThanOrEqual(figure);
  });

  test("groups the meta image never names are read and checked, not kept (65536 groups, 5 named)", async () => {
    const named = [0, 1, 2, 3, 65535];
    const groups: (Group | null)[] = Array.from({ length: 65536 }, () => null);
    for (const g of named) groups[g] = g === 65535 ? HEAVY : LITERALS;
    const entropy: Entropy = { cacheBits: 11, meta: { bits: 2, groupOf: (x, y) => named[(x + 3 * y) % 5] }, groups };
    const bytes = file(40, 24, entropy, false);
    const { figure, used, rgb } = await decodeMeasured(bytes);
    expect(used).toBeLessThanOrEqual(figure);
    expect(used).toBeLessThan(128 * 1024);
    expect(Buffer.from(rgb).equals(pillow(bytes))).toBe(true);
  });

  test("a larger image: its sub-images at 4x4 tiles, a meta image of 4x4 tiles naming few groups", async () => {
    const width = 600;
    const height = 400;
    const across = width / 4;
    const few: Code = { kind: "flat", bits: 8 };
    const groups: Group[] = [LITERALS, HEAVY, [few, few, few, few, { kind: "single", symbol: 0 }]];
    const entropy: Entropy = { cacheBits: 11, meta: { bits: 2, groupOf: (x, y) => (x + y * across) % 3 }, groups };
    const bytes = file(width, height, entropy, true, 7);
    const { figure, used, rgb } = await decodeMeasured(bytes);
    expect(used).toBeLessThanOrEqual(figure);
    // The pixels (0.96 MB) and two sub-images and the meta image at a pixel per tile (0.18 MB) are what is
    // allocated; the figure adds the codes' 1 MiB for a file that could hold more groups, and the worst of
    // the rest.
    expect(used).toBeGreaterThan(width * height * (4 + 3 / 4));
    expect(figure - used).toBeLessThan(MAX_TABLE_BYTES + 128 * 1024);
    expect(Buffer.from(rgb).equals(pillow(bytes))).toBe(true);
  });

  test("a lossy image's ALPH chunk: the same stream without its header, in the lossy decode's figure", async () => {
    // 45x29 (12x8 tiles): 96 of the largest groups, 0.69 MiB of tables, and the transforms.
    const lossy = new Uint8Array(
      readFileSync(new URL("../../goldens/preprocess/webp/lossy-alpha.webp", import.meta.url)),
    );
    const entropy = tileGroups(45, 29, HEAVY);
    const stream = vp8lStream(45, 29, randomPixels(45 * 29, 3), transforms(45, 29, 4), entropy, false);
    const bytes = withAlpha(lossy, Uint8Array.from([0x01, ...stream])); // compressed, no filter
    const { figure, used, rgb } = await decodeMeasured(bytes);
    expect(used).toBeLessThanOrEqual(figure);
    expect(used).toBeGreaterThan(0.7 * 96 * 7584);
    // Pillow drops the alpha, which it decodes (a damaged ALPH chunk fails the file): the lossy pixels.
    expect(Buffer.from(rgb).equals(pillow(bytes))).toBe(true);
    expect(Buffer.from(rgb).equals(pillow(lossy))).toBe(true);
  });
});

// libwebp's own encoder (Pillow 9.4's, lossless, every method) on a photo and on noise: real files, whose
// prefix codes the 1 MiB cap takes with room to spare, decode within their figure to Pillow's pixels.
describe("lossless WebP from libwebp's encoder: within the codes' cap", () => {
  const ENCODE = `
import sys, io, random
from PIL import Image
kind, method = sys.argv[1], int(sys.argv[2])
if kind == "photo":
    im = Image.open(sys.argv[3]).convert("RGB")
else:
    random.seed(method)
    im = Image.frombytes("RGB", (256, 192), bytes(random.getrandbits(8) for _ in range(256 * 192 * 3)))
out = io.BytesIO()
im.save(out, "WEBP", lossless=True, method=method, quality=100)
sys.stdout.buffer.write(out.getvalue())
`;
  const photo = new URL("../../fixtures/images/astronaut-444.jpg", import.meta.url).pathname;
  for (const kind of ["photo", "noise"]) {
    for (const method of [0, 3, 6]) {
      test(`${kind}, method ${method}`, async () => {
        const bytes = new Uint8Array(
          execFileSync("/usr/bin/python3", ["-c", ENCODE, kind, String(method), photo], { maxBuffer: 1 << 26 }),
        );
        const { figure, used, rgb } = await decodeMeasured(bytes);
        expect(used).toBeLessThanOrEqual(figure);
        expect(Buffer.from(rgb).equals(pillow(bytes))).toBe(true);
      });
    }
  }
});
