// A whole model with random weights in an engine instance, ready to time (the weights do not change the
// work): for bench/kernels.ts in Node and bench/kernels-worker.ts in workerd, so no Node or Workers APIs.
import { type EngineExports, initEngine, initError } from "../core/engine/abi.ts";
import { layout } from "../core/bundle/layout.ts";
import type { ModelConfig } from "../core/bundle/format.ts";

// The benchmark shapes: the presets of models/tools/make-random-vit.ts (Hugging Face ViT layout).
const vit = (dim: number, heads: number): ModelConfig => ({
  imageSize: 224,
  patchSize: 16,
  channels: 3,
  dim,
  heads,
  hidden: 4 * dim,
  layers: 12,
  classes: 1000,
  eps: 1e-12,
  distilled: false,
});
export const BENCH_MODELS: Record<string, ModelConfig> = {
  "vit-b16": vit(768, 12),
  "deit-small": vit(384, 6),
  "deit-tiny": vit(192, 3),
};

type Exports = Pick<EngineExports, "memory" | "alloc" | "init" | "inputPtr" | "forward">;

export function randomSource(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

export function fillBytes(e: Exports, random: () => number, ptr: number, n: number, lo: number, hi: number): void {
  const view = new Int8Array(e.memory.buffer, ptr, n);
  for (let i = 0; i < n; i++) view[i] = lo + Math.floor(random() * (hi - lo + 1));
}

export function fillF32(e: Exports, random: () => number, ptr: number, n: number, lo: number, hi: number): void {
  const view = new Float32Array(e.memory.buffer, ptr, n);
  for (let i = 0; i < n; i++) view[i] = lo + random() * (hi - lo);
}

// Binds a random model of `config` in `e` (a fresh instance) and returns one forward pass to time.
export function randomForward(e: Exports, config: ModelConfig, random = randomSource(12345)): () => void {
  const plan = layout(config);
  const payload = e.alloc(plan.length);
  const bytes = new Uint8Array(e.memory.buffer, payload, plan.length);
  for (const t of plan.tensors) {
    const at = payload + t.offset;
    if (t.source.kind === "linear" && t.source.part === "weight") fillBytes(e, random, at, t.bytes, 1, 127);
    else if (t.source.kind === "linear" && t.source.part === "scale")
      fillF32(e, random, at, t.bytes / 4, 0.5 / 63 / Math.sqrt(t.source.k), 1 / 63 / Math.sqrt(t.source.k));
    else if (t.source.kind === "f32") {
      const norm = t.name.includes("layernorm");
      fillF32(e, random, at, t.bytes / 4, norm ? 0.9 : -0.5, norm ? 1.1 : 0.5);
    } else bytes.fill(0, t.offset, t.offset + t.bytes);
  }
  const code = initEngine(e, config, { ptr: payload, bytes: plan.length, tensors: plan.tensors });
  if (code !== 0) throw new Error(initError(code));
  const size = config.channels * config.imageSize * config.imageSize;
  fillF32(e, random, e.inputPtr(), size, -1, 1);
  // the pass overwrites its input: the same pixels written before each run
  const pixels = new Float32Array(e.memory.buffer, e.inputPtr(), size).slice();
  return () => {
    new Float32Array(e.memory.buffer, e.inputPtr(), size).set(pixels);
    e.forward(-1, 0, 0);
  };
}
