// PNG decode + preprocess (to google/vit-base's 224x224 bilinear pixel_values) in Node against Pillow
// (Image.open(f).convert("RGB").resize((224, 224), BILINEAR), Debian's /usr/bin/python3), same files,
// same run. The files are test/tools/phone_photos.py's PNGs, made into .cache/photos/ when missing.
//
//   node bench/png.ts [--rounds N]      # under npm run, or with npx node

import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { VIT_BASE_PREPROCESSING } from "../models/presets.ts";
import { DEFAULT_LIMITS } from "../core/limits.ts";
import { openImageBytes } from "../core/image/open.ts";
import { outputSize } from "../core/preprocess/preprocess.ts";
import { StreamingPreprocessor } from "../core/preprocess/stream.ts";
import { summarize } from "./stats.ts";

const root = new URL("..", import.meta.url).pathname;
const { values } = parseArgs({ options: { rounds: { type: "string", default: "3" } } });
const rounds = Number(values.rounds);
const photos = join(root, ".cache", "photos");
if (!existsSync(join(photos, "done"))) {
  execFileSync("/usr/bin/python3", [join(root, "test", "tools", "phone_photos.py"), photos]);
}
const files = ["rgb.png", "rgba.png", "palette.png", "gray.png", "gray-alpha.png"].map((f) => join(photos, f));
const big = join(root, ".cache", "memory", "24mp.png"); // made by scripts/measure-memory.ts
if (existsSync(big)) files.push(big);

const VIT = VIT_BASE_PREPROCESSING;

async function ours(bytes: Uint8Array): Promise<number> {
  const started = performance.now();
  const decoder = openImageBytes(bytes, DEFAULT_LIMITS);
  const stream = new StreamingPreprocessor(VIT, decoder.header, decoder.header.orientation);
  await decoder.decode(1, stream.sink);
  const size = outputSize(VIT, stream.oriented);
  stream.finish(new Float32Array(3 * size.width * size.height));
  return performance.now() - started;
}

const PILLOW = `
import sys, time
from PIL import Image
path, rounds = sys.argv[1], int(sys.argv[2])
times = []
for _ in range(rounds + 1):
    t = time.perf_counter()
    Image.open(path).convert("RGB").resize((224, 224), Image.BILINEAR)
    times.append((time.perf_counter() - t) * 1000)
print(" ".join(f"{x:.2f}" for x in times[1:]))
`;

console.log(
  `${cpus()[0].model}, load average ${loadavg()
    .map((x) => x.toFixed(1))
    .join(" ")}, ${rounds} rounds`,
);
console.log("| file | size | edgevit (Node) median ms | Pillow median ms |");
console.log("| --- | --- | --- | --- |");
for (const file of files) {
  const bytes: Uint8Array = readFileSync(file);
  const decoder = openImageBytes(bytes, DEFAULT_LIMITS);
  await ours(bytes); // warm-up
  const times: number[] = [];
  for (let i = 0; i < rounds; i++) times.push(await ours(bytes));
  const pillow = execFileSync("/usr/bin/python3", ["-c", PILLOW, file, String(rounds)], { encoding: "utf8" })
    .trim()
    .split(" ")
    .map(Number);
  const { width, height } = decoder.header;
  console.log(
    `| ${file.split("/").pop()} | ${width}x${height}, ${(bytes.length / 2 ** 20).toFixed(1)} MiB | ` +
      `${summarize(times).median.toFixed(0)} | ${summarize(pillow).median.toFixed(0)} |`,
  );
}
