// JPEG decoding side by side in one run: the streaming decoder (core/image/jpeg) at full scale and with
// DCT-domain scaling, jpeg-js (full scale only), and Pillow 9.4 / libjpeg-turbo (Debian's /usr/bin/python3,
// timing Image.open + draft + load). The test photos are made with Pillow into .cache/bench-decode/
// (bench/artifacts.ts preparePhonePhotos): a fixture upscaled to 12 MP with added detail, quality 90, 4:2:0,
// baseline, one copy with EXIF orientation 6, and a progressive copy; the same picture as a PNG for the upload table (a PNG has no
// DCT scaling: its fast and exact paths are the same). Every result of ours is checked against Pillow's pixels (sha256)
// before it is timed. Each figure is wall time / CPU time of this process (medians): on a shared machine the
// CPU time is the steadier of the two.
//
//   npm run bench:decode [-- --runs 5]

import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { cpus } from "node:os";
import { decode as jpegJsDecode } from "jpeg-js";
import { VIT_BASE_PREPROCESSING } from "../models/presets.ts";
import { decodeJpeg } from "../core/image/jpeg/fallback.ts";
import { openJpeg } from "../core/image/jpeg/index.ts";
import { openImageBytes } from "../core/image/open.ts";
import { installNodeDecodeKernels } from "../cli/node-engine.ts";
import { preprocess } from "../core/preprocess/preprocess.ts";
import { chooseScale, type DecodeMode, StreamingPreprocessor } from "../core/preprocess/stream.ts";
import { preparePhonePhotos } from "./artifacts.ts";
import { summarize } from "./stats.ts";

const PYTHON = "/usr/bin/python3";
const runsArg = process.argv.indexOf("--runs");
const RUNS = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 5;

// Pillow's time and its pixels' sha256 for each scale, in one Python process (the import is not timed).
const PILLOW = `
import sys, time, hashlib, json
from PIL import Image
path, runs = sys.argv[1], int(sys.argv[2])
out = {}
for scale in (1, 2, 4, 8):
    wall, cpu = [], []
    for _ in range(runs):
        t, c = time.perf_counter(), time.process_time()
        im = Image.open(path)
        if scale > 1:
            im.draft("RGB", (im.size[0] // scale, im.size[1] // scale))
        im.load()
        wall.append((time.perf_counter() - t) * 1000)
        cpu.append((time.process_time() - c) * 1000)
    digest = hashlib.sha256(im.convert("RGB").tobytes()).hexdigest()
    out[scale] = {"wall": sorted(wall)[runs // 2], "cpu": sorted(cpu)[runs // 2], "sha256": digest}
print(json.dumps(out))
`;

// The whole upload path to google/vit-base-patch16-224's pixel_values (224x224 bilinear, mean = std = 0.5)
// in Pillow + the Hugging Face processor's arithmetic: open, draft (fast: the scaled image at least twice
// the target, as edgevit's decode=fast picks), exif_transpose, convert("RGB"), resize, rescale, normalize.
const PILLOW_UPLOAD = `
import sys, time, json
import numpy as np
from PIL import Image, ImageOps
path, runs, fast = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "fast"
wall, cpu = [], []
for _ in range(runs):
    t, c = time.perf_counter(), time.process_time()
    im = Image.open(path)
    if fast:
        im.draft("RGB", (448, 448))
    im = ImageOps.exif_transpose(im).convert("RGB").resize((224, 224), Image.BILINEAR)
    x = ((np.asarray(im, dtype=np.float64) * (1 / 255)).astype(np.float32) - 0.5) / 0.5
    x = x.transpose(2, 0, 1)
    wall.append((time.perf_counter() - t) * 1000)
    cpu.append((time.process_time() - c) * 1000)
print(json.dumps({"wall": sorted(wall)[runs // 2], "cpu": sorted(cpu)[runs // 2]}))
`;

const VIT = VIT_BASE_PREPROCESSING;

// edgevit's upload path without the model: openImage, the decode scale `mode` picks, rows streamed through
// the preprocessor into pixel_values.
async function uploadPath(bytes: Uint8Array, mode: DecodeMode, out: Float32Array): Promise<void> {
  const decoder = openImageBytes(bytes, { maxPixels: 50_000_000 });
  const scale = chooseScale(decoder.header, VIT, mode);
  const { width, height, orientation } = decoder.header;
  const stream = new StreamingPreprocessor(
    VIT,
    { width: Math.ceil(width / scale), height: Math.ceil(height / scale) },
    orientation,
  );
  await decoder.decode(scale, stream.sink);
  stream.finish(out);
}

interface Timing {
  wall: number;
  cpu: number;
}

function ensurePhotos(): string[] {
  const photos = preparePhonePhotos();
  return [photos.baseline, photos.orient6, photos.progressive, photos.png];
}

async function time(fn: () => unknown): Promise<Timing> {
  const cpu = process.cpuUsage();
  const t = performance.now();
  await fn();
  const wall = performance.now() - t;
  const used = process.cpuUsage(cpu);
  return { wall, cpu: (used.user + used.system) / 1000 };
}

async function median(fn: () => unknown): Promise<Timing> {
  await fn(); // warm-up (JIT)
  const runs: Timing[] = [];
  for (let i = 0; i < RUNS; i++) runs.push(await time(fn));
  return { wall: summarize(runs.map((r) => r.wall)).median, cpu: summarize(runs.map((r) => r.cpu)).median };
}

async function ours(bytes: Uint8Array, scale: number): Promise<{ sha256: string; ms: Timing }> {
  const d = openJpeg(bytes, { maxPixels: 50_000_000 });
  const width = Math.ceil(d.header.width / scale);
  const hash = createHash("sha256");
  await d.decode(scale, (rows, _first, count) => hash.update(rows.subarray(0, count * width * 3)));
  const sha256 = hash.digest("hex");
  // Timed without hashing: the sink only counts the rows.
  const height = Math.ceil(d.header.height / scale);
  const ms = await median(async () => {
    let rows = 0;
    await openJpeg(bytes, { maxPixels: 50_000_000 }).decode(scale, (_rows, _first, count) => {
      rows += count;
    });
    if (rows !== height) throw new Error(`decode pushed ${rows} rows, not ${height}`);
  });
  return { sha256, ms };
}

const fmt = (t: Timing) => `${t.wall.toFixed(0)} / ${t.cpu.toFixed(0)} ms`;

async function main(): Promise<void> {
  const cpu = cpus()[0]?.model ?? "unknown CPU";
  console.log(`JPEG decode, median of ${RUNS} runs; ${cpu}, ${cpus().length} cores (shared machine)`);
  console.log("Each cell: wall / CPU time.");
  console.log("| file | MB | scale | ours | jpeg-js | Pillow | ours = Pillow |");
  console.log("| --- | --- | --- | --- | --- | --- | --- |");
  for (const path of ensurePhotos().filter((p) => p.endsWith(".jpg"))) {
    const bytes = new Uint8Array(readFileSync(path));
    const pillow: Record<string, Timing & { sha256: string }> = JSON.parse(
      execFileSync(PYTHON, ["-c", PILLOW, path, String(RUNS)]).toString(),
    );
    const jpegJs = await median(() =>
      jpegJsDecode(bytes, { useTArray: true, formatAsRGBA: false, maxMemoryUsageInMB: 2048 }),
    );
    const name = path.split("/").pop();
    for (const scale of [1, 2, 4, 8]) {
      const mine = await ours(bytes, scale);
      const p = pillow[String(scale)];
      const same = mine.sha256 === p.sha256 ? "bit-exact" : "DIFFERENT";
      const js = scale === 1 ? fmt(jpegJs) : "-";
      const mb = (bytes.length / 1e6).toFixed(2);
      console.log(`| ${name} | ${mb} | 1/${scale} | ${fmt(mine.ms)} | ${js} | ${fmt(p)} | ${same} |`);
    }
  }
}

// Decode + preprocess of each photo to pixel_values, as an upload to a 224x224 model: edgevit fast and exact,
// jpeg-js (JPEGs: full decode, then the same whole-image preprocessing), Pillow fast (draft) and exact.
async function uploads(): Promise<void> {
  console.log("");
  console.log("Decode + preprocess to google/vit-base's 224x224 pixel_values, median; wall / CPU time.");
  console.log("| file | edgevit fast | edgevit exact | jpeg-js + preprocess | Pillow fast (draft) | Pillow exact |");
  console.log("| --- | --- | --- | --- | --- | --- |");
  const out = new Float32Array(3 * 224 * 224);
  for (const path of ensurePhotos()) {
    const bytes = new Uint8Array(readFileSync(path));
    const pillow = (mode: string): Timing =>
      JSON.parse(execFileSync(PYTHON, ["-c", PILLOW_UPLOAD, path, String(RUNS), mode]).toString());
    const fast = await median(() => uploadPath(bytes, "fast", out));
    const exact = await median(() => uploadPath(bytes, "exact", out));
    const jpeg = path.endsWith(".jpg");
    const jpegJs = jpeg
      ? fmt(
          await median(() =>
            preprocess(decodeJpeg(bytes, { maxPixels: 50_000_000, maxJpegJsMemoryMB: 2048 }), VIT, out),
          ),
        )
      : "-";
    const name = path.split("/").pop();
    console.log(
      `| ${name} | ${fmt(fast)} | ${fmt(exact)} | ${jpegJs} | ${fmt(pillow("fast"))} | ${fmt(pillow("exact"))} |`,
    );
  }
}

// The decoders run with their wasm kernels, as in the Worker.
await installNodeDecodeKernels();
await main();
await uploads();
