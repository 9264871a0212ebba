// Seeded mutants of the JPEG, PNG, WebP, GIF and BMP fixtures through the upload path (openImage, decode, streaming
// preprocess): each either decodes or is refused with an EdgevitError whose message is a sentence about
// the file. Deterministic: the same mutants on every run. Work is bounded by counting what the decoder
// pushes (never more rows than the header declares, never more pixels than the limit).

import { readdirSync, readFileSync } from "node:fs";
import { expect, test } from "vitest";
import { crc32 } from "../../../core/crc32.ts";
import { EdgevitError } from "../../../core/errors.ts";
import { openImageBytes } from "../../../core/image/open.ts";
import { outputSize } from "../../../core/preprocess/preprocess.ts";
import { StreamingPreprocessor } from "../../../core/preprocess/stream.ts";
import { goldens } from "./goldens.ts";
import { prng } from "../../prng.ts";

const root = new URL("../../../", import.meta.url).pathname;
const LIMITS = { maxPixels: 4_000_000, maxInterlacedPixels: 1_000_000 };
const PP = goldens.configs.vit;

function load(dir: string, names: string[]): [string, Uint8Array][] {
  return names.map((n) => [n, new Uint8Array(readFileSync(`${root}${dir}/${n}`))]);
}

const JPEGS = [
  ...load("test/fixtures/images", ["cat-tiny-37x23.jpg", "cat-420-99x65.jpg", "cat-422-101x67.jpg", "orient-6.jpg"]),
  ...load("test/fixtures/fuzz", readdirSync(`${root}test/fixtures/fuzz`).sort()),
];
// Arithmetic-coded (SOF9, SOF10): restart markers, a progression, DAC conditioning.
const ARITHMETIC_JPEGS = load("test/fixtures/jpeg", [
  "arithmetic-422-restart-50x40.jpg",
  "arithmetic-progressive-restart-420-50x40.jpg",
  "arithmetic-progressive-conditioning-40x30.jpg",
]);
const PNGS = load(
  "test/goldens/preprocess/png",
  readdirSync(`${root}test/goldens/preprocess/png`)
    .filter((f) => f.endsWith(".png") && f !== "rgb-8-large.png")
    .sort(),
).concat(
  // Metadata in every place Pillow reads an orientation from, and compressed text chunks.
  load(
    "test/fixtures/metadata",
    readdirSync(`${root}test/fixtures/metadata`)
      .filter((f) => f.endsWith(".png"))
      .sort(),
  ),
);
// The files of test/tools/format_goldens.py that Pillow decodes (the refused ones are already broken).
function decodable(format: string): [string, Uint8Array][] {
  const dir = `test/goldens/preprocess/${format}`;
  const cases: Record<string, { error?: string }> = JSON.parse(readFileSync(`${root}${dir}/cases.json`, "utf8")).cases;
  return load(
    dir,
    Object.keys(cases)
      .filter((n) => !cases[n].error)
      .map((n) => `${n}.${format}`),
  );
}
const OTHERS = ["webp", "gif", "bmp"].flatMap((f) => decodable(f));

type Rand = ReturnType<typeof prng>;
const int = (r: Rand, n: number) => Math.floor(r() * n);
const pick = <T>(r: Rand, xs: readonly T[]): T => xs[int(r, xs.length)];

// Generic damage any file can suffer.
function generic(r: Rand, b: Uint8Array): [string, Uint8Array] {
  const out = b.slice();
  switch (int(r, 5)) {
    case 0: {
      const flips = 1 + int(r, 8);
      for (let i = 0; i < flips; i++) out[int(r, out.length)] ^= 1 << int(r, 8);
      return ["bit flips", out];
    }
    case 1: {
      const at = int(r, out.length);
      out.fill(pick(r, [0, 0xff, int(r, 256)]), at, at + 1 + int(r, 64));
      return ["byte run", out];
    }
    case 2:
      return ["truncation", b.slice(0, int(r, b.length))];
    case 3: {
      const at = int(r, b.length);
      const n = 1 + int(r, 16);
      return ["deletion", new Uint8Array([...b.subarray(0, at), ...b.subarray(at + n)])];
    }
    default: {
      const at = int(r, b.length);
      const junk = Array.from({ length: 1 + int(r, 16) }, () => int(r, 256));
      return ["insertion", new Uint8Array([...b.subarray(0, at), ...junk, ...b.subarray(at)])];
    }
  }
}

// JPEG marker segments up to the first scan: [marker, payload start, payload end].
function segments(b: Uint8Array): [number, number, number][] {
  const out: [number, number, number][] = [];
  let pos = 2;
  while (pos + 4 <= b.length && b[pos] === 0xff) {
    const marker = b[pos + 1];
    const length = (b[pos + 2] << 8) | b[pos + 3];
    out.push([marker, pos + 4, pos + 2 + length]);
    if (marker === 0xda) break;
    pos += 2 + length;
  }
  return out;
}

function jpegMutant(r: Rand, b: Uint8Array): [string, Uint8Array] {
  const segs = segments(b);
  const find = (m: (x: number) => boolean) => segs.filter(([marker]) => m(marker));
  const out = b.slice();
  const kind = int(r, 9);
  const poke = (name: string, list: [number, number, number][], offset?: (len: number) => number) => {
    if (list.length === 0) return generic(r, b);
    const [, start, end] = pick(r, list);
    const len = end - start;
    const at = start + (offset ? Math.min(offset(len), len - 1) : int(r, len));
    out[at] = pick(r, [0, 1, 0xff, 0x55, int(r, 256)]);
    return [name, out] as [string, Uint8Array];
  };
  switch (kind) {
    case 0:
      return poke(
        "quantization table",
        find((m) => m === 0xdb),
      );
    case 1:
      return poke(
        "Huffman table",
        find((m) => m === 0xc4),
        (len) => (r() < 0.6 ? 1 + int(r, 16) : int(r, len)),
      );
    case 2: // SOF: precision, height, width, components, sampling, table ids
      return poke(
        "frame header",
        find((m) => m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc),
      );
    case 3: // SOS: component count, selectors, Ss, Se, Ah/Al
      return poke(
        "scan header",
        find((m) => m === 0xda),
      );
    case 4:
      return poke(
        "EXIF",
        find((m) => m === 0xe1),
      );
    case 5: {
      // Damage inside the entropy-coded data (after the first SOS).
      const sos = find((m) => m === 0xda)[0];
      if (!sos) return generic(r, b);
      const from = sos[2];
      for (let i = 0; i < 1 + int(r, 4); i++) out[from + int(r, b.length - from)] ^= 1 << int(r, 8);
      return ["scan data", out];
    }
    case 6: {
      // A marker inserted into the scan data (restart, EOI, a stray SOF).
      const sos = find((m) => m === 0xda)[0];
      if (!sos) return generic(r, b);
      const at = sos[2] + int(r, b.length - sos[2]);
      const marker = pick(r, [0xd0 + int(r, 8), 0xd9, 0xc0, 0xda, 0xc4]);
      return ["marker in scan", new Uint8Array([...b.subarray(0, at), 0xff, marker, ...b.subarray(at)])];
    }
    case 7: {
      // A segment's length field.
      if (segs.length === 0) return generic(r, b);
      const [, start] = pick(r, segs);
      out[start - 2] = int(r, 256);
      out[start - 1] = int(r, 256);
      return ["segment length", out];
    }
    default:
      return generic(r, b);
  }
}

// An arithmetic-coded file's damage: its DAC conditioning now and then (table indices, L above U, Kx),
// else what any JPEG suffers.
function arithmeticMutant(r: Rand, b: Uint8Array): [string, Uint8Array] {
  const dac = segments(b).filter(([marker]) => marker === 0xcc);
  if (dac.length === 0 || r() < 0.8) return jpegMutant(r, b);
  const [, start, end] = pick(r, dac);
  const out = b.slice();
  out[start + int(r, end - start)] = pick(r, [0, 0x10, 0x1f, 0x20, 0xf0, 0x0f, int(r, 256)]);
  return ["arithmetic conditioning", out];
}

// PNG chunks: [type, offset of the length field, data length].
function chunks(b: Uint8Array): [string, number, number][] {
  const out: [string, number, number][] = [];
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  for (let pos = 8; pos + 12 <= b.length; ) {
    const length = view.getUint32(pos);
    out.push([String.fromCharCode(...b.subarray(pos + 4, pos + 8)), pos, length]);
    pos += 12 + length;
  }
  return out;
}

function fixCrc(b: Uint8Array, at: number, length: number): void {
  new DataView(b.buffer, b.byteOffset).setUint32(at + 8 + length, crc32(b.subarray(at + 4, at + 8 + length)));
}

function pngMutant(r: Rand, b: Uint8Array): [string, Uint8Array] {
  const list = chunks(b);
  const out = b.slice();
  const recompute = r() < 0.7;
  const named = (t: string) => list.filter(([type]) => type === t);
  const label = (what: string) => `${what}${recompute ? "" : " (stale CRC)"}`;
  switch (int(r, 7)) {
    case 0: {
      // IHDR fields: width, height, depth, colour type, compression, filter, interlace.
      const [[, at]] = named("IHDR");
      const view = new DataView(out.buffer);
      const field = int(r, 7);
      if (field < 2) view.setUint32(at + 8 + 4 * field, pick(r, [0, 1, 2, 0x7fffffff, 0xffffffff, int(r, 70000)]));
      else out[at + 16 + field - 2] = pick(r, [0, 1, 2, 3, 4, 5, 6, 7, 8, 16, 32, int(r, 256)]);
      if (recompute) fixCrc(out, at, 13);
      return [label("IHDR field"), out];
    }
    case 1: {
      // The zlib stream: header bytes, block bits, the Adler-32, truncation.
      const idat = named("IDAT");
      const [, at, length] = pick(r, idat);
      const spot = pick(r, [0, 1, int(r, length), length - 1, length - 4]);
      out[at + 8 + Math.max(0, Math.min(spot, length - 1))] ^= 1 << int(r, 8);
      if (recompute) fixCrc(out, at, length);
      return [label("zlib stream"), out];
    }
    case 2: {
      // Any chunk's data.
      const [type, at, length] = pick(r, list);
      if (length === 0) return generic(r, b);
      out[at + 8 + int(r, length)] = int(r, 256);
      if (recompute) fixCrc(out, at, length);
      return [label(`${type} data`), out];
    }
    case 3: {
      // A chunk dropped (PLTE, IDAT, IEND, IHDR).
      const [type, at, length] = pick(r, list);
      return [`${type} dropped`, new Uint8Array([...b.subarray(0, at), ...b.subarray(at + 12 + length)])];
    }
    case 4: {
      // A chunk duplicated.
      const [type, at, length] = pick(r, list);
      const copy = b.subarray(at, at + 12 + length);
      return [`${type} duplicated`, new Uint8Array([...b.subarray(0, at), ...copy, ...b.subarray(at)])];
    }
    case 5: {
      // A length field.
      const [type, at] = pick(r, list);
      new DataView(out.buffer).setUint32(at, pick(r, [0, 1, 13, 0x7fffffff, 0xffffffff, int(r, 100000)]));
      return [`${type} length`, out];
    }
    default:
      return generic(r, b);
  }
}

// Header damage for the formats whose structure sits in their first bytes (BMP's headers and palette, GIF's
// screen, palette and first descriptor, WebP's RIFF chunks): a byte of the first 128 set to an edge value,
// else generic damage.
function headerMutant(r: Rand, b: Uint8Array): [string, Uint8Array] {
  if (r() < 0.4) return generic(r, b);
  const out = b.slice();
  const at = int(r, Math.min(128, b.length));
  out[at] = pick(r, [0, 1, 2, 0x7f, 0x80, 0xff, int(r, 256)]);
  return [`header byte ${at}`, out];
}

// A sentence a user can read: capitalised, ends with a full stop, names nothing of the code.
const INTERNALS = /undefined|null|NaN|Infinity|Cannot read|is not a function|TypeError|RangeError|\bat \S+ \(|\.ts\b/;

async function attempt(bytes: Uint8Array): Promise<{ ok: boolean; rows: number; error?: unknown }> {
  let rows = 0;
  try {
    const decoder = openImageBytes(bytes, LIMITS);
    const { width, height, orientation } = decoder.header;
    if (!(width * height <= LIMITS.maxPixels)) throw new Error(`opened ${width}x${height} over the limit`);
    const stream = new StreamingPreprocessor(PP, { width, height }, orientation);
    await decoder.decode(1, (data, first, count) => {
      rows += count;
      if (rows > height) throw new Error(`pushed ${rows} rows of a ${height}-row image`);
      stream.sink(data, first, count);
    });
    const size = outputSize(PP, stream.oriented);
    stream.finish(new Float32Array(3 * size.width * size.height));
    return { ok: true, rows };
  } catch (error) {
    return { ok: false, rows, error };
  }
}

test("a few thousand mutants of the JPEG, PNG, WebP, GIF and BMP fixtures: decoded or refused with a sentence", async () => {
  const r = prng(8);
  const failures: string[] = [];
  const tally = { decoded: 0, refused: 0 };
  const codes = new Map<string, number>();
  const runs: [string, Uint8Array, (r: Rand, b: Uint8Array) => [string, Uint8Array], number][] = [
    ...JPEGS.map(([n, b]) => [n, b, jpegMutant, 160] as [string, Uint8Array, typeof jpegMutant, number]),
    ...PNGS.map(([n, b]) => [n, b, pngMutant, 60] as [string, Uint8Array, typeof pngMutant, number]),
    ...OTHERS.map(([n, b]) => [n, b, headerMutant, 30] as [string, Uint8Array, typeof headerMutant, number]),
    ...ARITHMETIC_JPEGS.map(
      ([n, b]) => [n, b, arithmeticMutant, 160] as [string, Uint8Array, typeof jpegMutant, number],
    ),
  ];
  for (const [name, seed, mutate, count] of runs) {
    for (let i = 0; i < count; i++) {
      const [what, bytes] = mutate(r, seed);
      const { ok, error } = await attempt(bytes);
      if (ok) {
        tally.decoded++;
        continue;
      }
      tally.refused++;
      const where = `${name} #${i} (${what})`;
      if (!(error instanceof EdgevitError)) {
        failures.push(`${where}: not an EdgevitError: ${String(error)}`);
        continue;
      }
      codes.set(error.code, (codes.get(error.code) ?? 0) + 1);
      const m = error.message;
      if (!/^[A-Z]/.test(m) || !/[.)]$/.test(m) || m.length < 20 || INTERNALS.test(m)) {
        failures.push(`${where}: ${error.code}: ${JSON.stringify(m)}`);
      }
    }
  }
  console.log(
    `${tally.decoded + tally.refused} mutants: ${tally.decoded} decoded, ${tally.refused} refused`,
    Object.fromEntries(codes),
  );
  expect(failures.slice(0, 20)).toEqual([]);
  expect(tally.decoded + tally.refused).toBeGreaterThan(3000);
  // Both outcomes happen: the mutations reach past the first check.
  expect(tally.decoded).toBeGreaterThan(200);
});
