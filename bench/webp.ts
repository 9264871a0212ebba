// WebP lossy decoding side by side in one run: edgevit's decoder (core/image/webp, whole bytes, rows pushed
// to a sink that keeps nothing) and Pillow 9.4 / libwebp 1.2.4 (Debian's /usr/bin/python3, timing
// Image.open + convert("RGB")), on a 12 MP photo made with Pillow into .cache/bench-webp/ (a fixture
// upscaled to 4000x3000 with added detail, quality 85); ours with the decode kernels installed, as in the
// Worker. Our pixels are checked against Pillow's (sha256)
// before they are timed. Each figure is the median wall time / CPU time of its process; on a shared machine
// the CPU time is the steadier of the two.
//
//   npx node bench/webp.ts [--runs 5]

import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { loadavg } from "node:os";
import { installNodeDecodeKernels } from "../cli/node-engine.ts";
import { openImageBytes } from "../core/image/open.ts";
import { summarize } from "./stats.ts";

const CACHE = ".cache/bench-webp";
const FILE = `${CACHE}/photo-12mp-q85.webp`;
const PYTHON = "/usr/bin/python3";
const runsArg = process.argv.indexOf("--runs");
const RUNS = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 5;

const MAKE = `
import sys
from PIL import Image, ImageFilter
src, out = sys.argv[1], sys.argv[2]
im = Image.open(src).convert("RGB").resize((4000, 3000), Image.BICUBIC)
noise = Image.effect_noise((4000, 3000), 24).convert("RGB")
im = Image.blend(im, noise, 0.12).filter(ImageFilter.SHARPEN)
im.save(out, quality=85)
`;

const PILLOW = `
import sys, time, hashlib, json
from PIL import Image
path, runs = sys.argv[1], int(sys.argv[2])
wall, cpu = [], []
for _ in range(runs + 1):
    t, c = time.perf_counter(), time.process_time()
    im = Image.open(path).convert("RGB")
    wall.append((time.perf_counter() - t) * 1000)
    cpu.append((time.process_time() - c) * 1000)
wall, cpu = sorted(wall[1:]), sorted(cpu[1:])
print(json.dumps({"wall": wall[runs // 2], "cpu": cpu[runs // 2], "sha256": hashlib.sha256(im.tobytes()).hexdigest()}))
`;

interface Timing {
  wall: number;
  cpu: number;
}

// Decodes at full scale; with `rgb`, gathers the rows for the pixel check.
async function decode(bytes: Uint8Array, rgb?: Uint8Array): Promise<void> {
  const decoder = openImageBytes(bytes, { maxPixels: 50_000_000 });
  const width = decoder.header.width;
  await decoder.decode(1, (rows, first, count) => rgb?.set(rows.subarray(0, count * width * 3), first * width * 3));
}

async function time(fn: () => unknown): Promise<Timing> {
  const cpu = process.cpuUsage();
  const t = performance.now();
  await fn();
  const wall = performance.now() - t;
  const used = process.cpuUsage(cpu);
  return { wall, cpu: (used.user + used.system) / 1000 };
}

async function main(): Promise<void> {
  // The decoders run with their wasm kernels, as in the Worker.
  await installNodeDecodeKernels();
  if (!existsSync(FILE)) {
    mkdirSync(CACHE, { recursive: true });
    execFileSync(PYTHON, ["-c", MAKE, "test/fixtures/images/rocket-exif-orient6.jpg", FILE], { stdio: "inherit" });
  }
  const bytes = new Uint8Array(readFileSync(FILE));
  const load = () => loadavg()[0].toFixed(2);
  console.log(`load average at start: ${load()}`);
  const pillow = JSON.parse(execFileSync(PYTHON, ["-c", PILLOW, FILE, String(RUNS)]).toString());
  const { width, height } = openImageBytes(bytes, { maxPixels: 50_000_000 }).header;
  const rgb = new Uint8Array(width * height * 3);
  await decode(bytes, rgb);
  if (createHash("sha256").update(rgb).digest("hex") !== pillow.sha256) throw new Error("pixels differ from Pillow's");
  const runs: Timing[] = [];
  for (let i = 0; i < RUNS; i++) runs.push(await time(() => decode(bytes)));
  const ours = { wall: summarize(runs.map((r) => r.wall)).median, cpu: summarize(runs.map((r) => r.cpu)).median };
  const ms = (t: Timing) => `${t.wall.toFixed(0)} / ${t.cpu.toFixed(0)} ms`;
  console.log(`| file | edgevit (wall / CPU) | Pillow (wall / CPU) | CPU ratio |`);
  console.log(`| --- | --- | --- | --- |`);
  console.log(
    `| ${width}x${height} lossy WebP, ${(bytes.length / 1048576).toFixed(1)} MiB | ${ms(ours)} | ${ms(pillow)} | ${(ours.cpu / pillow.cpu).toFixed(2)}x |`,
  );
  console.log(`load average at end: ${load()}`);
}

await main();
