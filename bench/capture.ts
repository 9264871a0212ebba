// What capture costs: the forward pass of the engine without capture support (built from a git ref, by
// default 4feaf9f, the last commit whose engine has none: `main` has capture since it merged) against this
// tree's engine with capture off (what /v1/classify runs), with the capture /v1/see asks for of the engine
// (class-token rows, their head mean, the running rollout), and with one layer's full attention (/v1/attentions). Same
// process, same random weights, the four engines in alternating runs.
// Usage: npm run bench:capture [-- --base <git-ref>] [--runs N] [--model vit-b16|deit-tiny]
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { layout } from "../core/bundle/layout.ts";
import type { ModelConfig } from "../core/bundle/format.ts";
import { summarize } from "./stats.ts";
import { initEngine, initError } from "../core/engine/abi.ts";

interface Asc {
  main(args: string[], options: object): Promise<{ error: Error | null; stderr: { toString(): string } }>;
}
const ascModule = "assemblyscript/asc";
const asc = ((await import(ascModule)) as { default: Asc }).default;

interface Exports {
  memory: WebAssembly.Memory;
  alloc(bytes: number): number;
  init(...args: number[]): number;
  inputPtr(): number;
  forward(capture: number, flags?: number, attentionLayer?: number): void;
  enableCapture?(flags: number): void;
}

const root = new URL("..", import.meta.url).pathname;
const { values: opts } = parseArgs({
  options: {
    base: { type: "string", default: "4feaf9f" },
    runs: { type: "string", default: "9" },
    model: { type: "string", default: "vit-b16" },
  },
});
const base = opts.base;
const runs = Number(opts.runs);
if (!(Number.isInteger(runs) && runs >= 1)) throw new Error(`--runs must be a whole number of runs, got ${opts.runs}`);
const CONFIGS: Record<string, ModelConfig> = {
  "vit-b16": {
    imageSize: 224,
    patchSize: 16,
    channels: 3,
    dim: 768,
    heads: 12,
    hidden: 3072,
    layers: 12,
    classes: 1000,
    eps: 1e-12,
    distilled: false,
  },
  "deit-tiny": {
    imageSize: 224,
    patchSize: 16,
    channels: 3,
    dim: 192,
    heads: 3,
    hidden: 768,
    layers: 12,
    classes: 1000,
    eps: 1e-12,
    distilled: true,
  },
};
const config = CONFIGS[opts.model];
if (!config) throw new Error(`--model must be one of ${Object.keys(CONFIGS).join(", ")}`);

// The relaxed-SIMD build of `sourceDir`, with build-wasm.ts's flags.
async function build(sourceDir: string, outFile: string): Promise<Uint8Array<ArrayBuffer>> {
  const args = [join(sourceDir, "index.ts"), "--outFile", outFile, "-O3", "--runtime", "stub", "--noAssert"];
  const { error, stderr } = await asc.main(
    [...args, "--use", "abort=", "--enable", "simd", "--enable", "relaxed-simd"],
    {},
  );
  if (error) throw new Error(`${outFile}: ${stderr.toString()}`);
  return new Uint8Array(readFileSync(outFile));
}

const scratch = join(root, ".cache", "bench-capture");
const baseSource = join(scratch, "base");
mkdirSync(baseSource, { recursive: true });
const archive = execFileSync("git", ["-C", root, "archive", base, "assembly"]);
execFileSync("tar", ["-x", "-C", baseSource], { input: archive });
const baseWasm = await build(join(baseSource, "assembly"), join(scratch, "base.wasm"));
const headWasm = await build(join(root, "assembly"), join(scratch, "head.wasm"));

let seed = 12345;
const random = () => {
  seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
  return seed / 2 ** 32;
};

// An instance with a random model of `config` loaded (the weights do not change the work).
function instance(wasm: Uint8Array<ArrayBuffer>): Exports {
  seed = 12345;
  const e = new WebAssembly.Instance(new WebAssembly.Module(wasm), {}).exports as unknown as Exports;
  const plan = layout(config);
  const payload = e.alloc(plan.length);
  for (const t of plan.tensors) {
    const at = payload + t.offset;
    if (t.source.kind === "linear" && t.source.part === "weight") {
      const view = new Uint8Array(e.memory.buffer, at, t.bytes);
      for (let i = 0; i < view.length; i++) view[i] = 1 + Math.floor(random() * 127);
    } else if (t.source.kind === "linear" && t.source.part === "scale") {
      new Float32Array(e.memory.buffer, at, t.bytes / 4).fill(0.75 / 63 / Math.sqrt(t.source.k));
    } else if (t.source.kind === "f32") {
      const view = new Float32Array(e.memory.buffer, at, t.bytes / 4);
      const layernorm = t.name.includes("layernorm");
      for (let i = 0; i < view.length; i++) view[i] = layernorm ? 0.9 + 0.2 * random() : random() - 0.5;
    } else {
      new Uint8Array(e.memory.buffer, at, t.bytes).fill(0);
    }
  }
  const c = config;
  // The base (4feaf9f) takes the config as positional numbers; this tree's engine takes a config struct and
  // a weight table (core/engine/abi.ts, initEngine).
  const code =
    "probeDot" in e
      ? initEngine(e as unknown as Parameters<typeof initEngine>[0], c, {
          ptr: payload,
          bytes: plan.length,
          tensors: plan.tensors,
        })
      : e.init(
          payload,
          c.channels,
          c.imageSize,
          c.patchSize,
          c.dim,
          c.heads,
          c.hidden,
          c.layers,
          c.classes,
          c.distilled ? 1 : 0,
          c.eps,
        );
  if (code !== 0) throw new Error(`init returned ${code}: ${initError(code)}`);
  const input = new Float32Array(e.memory.buffer, e.inputPtr(), c.channels * c.imageSize ** 2);
  for (let i = 0; i < input.length; i++) input[i] = random() * 2 - 1;
  pixels.set(e, input.slice());
  return e;
}

// Each instance's pixels, written again before each run: this tree's pass overwrites its input.
const pixels = new Map<Exports, Float32Array>();
function forward(e: Exports, flags: number, attentionLayer: number): void {
  const input = pixels.get(e)!;
  new Float32Array(e.memory.buffer, e.inputPtr(), input.length).set(input);
  e.forward(-1, flags, attentionLayer);
}

const baseEngine = instance(baseWasm);
const headEngine = instance(headWasm);
const captureEngine = instance(headWasm);
captureEngine.enableCapture!(6); // every CAPTURE_* kind (assembly/model.ts)
const variants = [
  { name: `${base}: no capture support, forward(-1)`, run: () => forward(baseEngine, 0, 0) },
  { name: "this tree: capture off, forward(-1, 0, 0)", run: () => forward(headEngine, 0, 0) },
  {
    name: "this tree: /v1/see's engine capture (attention summaries + rollout)",
    run: () => forward(captureEngine, 2, 0),
  },
  { name: `this tree: one layer's full attention`, run: () => forward(captureEngine, 0, config.layers) },
];
for (const v of variants) v.run(); // warm up
const times: number[][] = variants.map(() => []);
for (let r = 0; r < runs; r++) {
  variants.forEach((v, i) => {
    const t0 = performance.now();
    v.run();
    times[i].push(performance.now() - t0);
  });
}
const load = readFileSync("/proc/loadavg", "utf8").trim();
console.log(`Date: ${new Date().toISOString()}; CPU: ${cpus()[0]?.model}; Node ${process.version}; loadavg ${load}`);
console.log(
  `Model: ${opts.model} (random weights), ${runs} alternating runs of each engine, base ${base}, ms per forward pass`,
);
console.log("| engine | median | min | max |\n| --- | --- | --- | --- |");
variants.forEach((v, i) => {
  const s = summarize(times[i]);
  console.log(`| ${v.name} | ${s.median.toFixed(1)} | ${s.min.toFixed(1)} | ${s.max.toFixed(1)} |`);
});
