// `node bench/first-request.ts [model.evit] [image.jpg]`: the CPU a request costs in a fresh isolate
// (engine instance, bundle load with its CRC check, first image) and warm, in Node, median of 7 rounds.
// The deploy notes in README.md compare it with the Free plan's 10 ms.
import { readFileSync } from "node:fs";
import { Engine } from "../core/engine/index.ts";
import { runImage } from "../core/pipeline.ts";

const root = new URL("..", import.meta.url).pathname;
const bundlePath = process.argv[2] ?? `${root}models/default/fashion-vit.evit`;
const imagePath = process.argv[3] ?? `${root}models/default/samples/bag.jpg`;
const bundle = new Uint8Array(readFileSync(bundlePath));
const jpeg = new Uint8Array(readFileSync(imagePath));
const module = await WebAssembly.compile(readFileSync(`${root}build/engine-relaxed.wasm`));
const limits = { maxPixels: 1 << 20 };

const first: number[] = [];
const warm: number[] = [];
for (let round = 0; round < 7; round++) {
  const t0 = performance.now();
  const model = await (await Engine.instantiate(module)).load(bundle);
  await runImage(model, jpeg, limits);
  const t1 = performance.now();
  for (let i = 0; i < 20; i++) await runImage(model, jpeg, limits);
  first.push(t1 - t0);
  warm.push((performance.now() - t1) / 20);
}
const median = (xs: number[]) => xs.sort((a, b) => a - b)[xs.length >> 1].toFixed(2);
console.log(`${bundlePath} on ${imagePath}: first request ${median(first)} ms, warm ${median(warm)} ms (median of 7)`);
