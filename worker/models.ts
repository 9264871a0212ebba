// Models for this isolate: bundles streamed from R2 straight into wasm memory, loaded once and shared by
// every request, evicted least recently used when the wasm memory budget would be exceeded.

import relaxedModule from "../build/engine-relaxed.wasm";
import baselineModule from "../build/engine.wasm";
import { BundleError } from "../models/bundle.ts";
import { keyOf } from "../core/names.ts";
import { type DotInfo, Engine, type Model } from "../core/engine.ts";
import { EdgevitError } from "../core/errors.ts";

const MiB = 1 << 20;

// A module with one relaxed-SIMD instruction (`i8x16.relaxed_swizzle`): it validates exactly where the
// relaxed build can run. Validating compiles nothing, so it is allowed where compiling fetched bytes is not.
const RELAXED_PROBE = new Uint8Array([
  0x00,
  0x61,
  0x73,
  0x6d,
  0x01,
  0x00,
  0x00,
  0x00, // magic, version
  0x01,
  0x05,
  0x01,
  0x60,
  0x00,
  0x01,
  0x7b, // type: () -> v128
  0x03,
  0x02,
  0x01,
  0x00, // one function of that type
  0x0a,
  0x2b,
  0x01,
  0x29,
  0x00, // code: one 41-byte body, no locals
  0xfd,
  0x0c,
  ...new Array(16).fill(0), // v128.const 0
  0xfd,
  0x0c,
  ...new Array(16).fill(0), // v128.const 0
  0xfd,
  0x80,
  0x02, // i8x16.relaxed_swizzle
  0x0b, // end
]);

// One engine per isolate, chosen on first use (instantiating is not allowed at global scope).
let engine: Promise<Engine> | undefined;

function getEngine(): Promise<Engine> {
  engine ??= Engine.pick({ module: baselineModule }, { module: relaxedModule, bytes: RELAXED_PROBE });
  return engine;
}

export async function engineBuild(): Promise<string> {
  return (await getEngine()).module === relaxedModule ? "relaxed-simd" : "simd";
}

// The int8 dot path this isolate's engine took, and the probe value it chose it by.
export async function engineDot(): Promise<DotInfo> {
  return (await getEngine()).dot;
}

export interface LoadedSummary {
  name: string;
  memoryBytes: number; // the model's wasm memory: payload, activations, engine data
  largestLoadBufferBytes: number; // the largest JS buffer its load held (the read buffer, a stream chunk or the header)
}

// The models of this isolate. `loaded` keeps least recently used first: a use moves its entry to the end.
class ModelCache {
  private readonly loaded = new Map<string, Model>();
  private readonly loading = new Map<string, Promise<Model>>();
  // Loads run one at a time, so each one's eviction sees every byte already committed to wasm memory.
  private lastLoad: Promise<unknown> = Promise.resolve();

  // The model, loading it if needed. Concurrent callers share one load; a failed load is forgotten, so
  // the next request tries again (fixing the object in R2 fixes the service).
  async get(name: string, bucket: R2Bucket, budgetBytes: number): Promise<Model> {
    const hit = this.loaded.get(name);
    if (hit) {
      this.loaded.delete(name);
      this.loaded.set(name, hit);
      return hit;
    }
    let pending = this.loading.get(name);
    if (!pending) {
      const load = this.lastLoad.then(() => this.load(name, bucket, budgetBytes));
      this.lastLoad = load.catch(() => undefined);
      pending = load.finally(() => this.loading.delete(name));
      this.loading.set(name, pending);
    }
    return pending;
  }

  summary(): LoadedSummary[] {
    return [...this.loaded].map(([name, model]) => ({
      name,
      memoryBytes: model.memoryBytes,
      largestLoadBufferBytes: model.largestJsBuffer,
    }));
  }

  usedBytes(): number {
    let used = 0;
    for (const model of this.loaded.values()) used += model.memoryBytes;
    return used;
  }

  private async load(name: string, bucket: R2Bucket, budgetBytes: number): Promise<Model> {
    const object = await bucket.get(keyOf(name));
    if (!object) throw new EdgevitError("model_not_found", `no model ${JSON.stringify(name)} in the bucket`);
    // The payload is most of the memory a model needs: make room for it before streaming it in.
    if (object.size > budgetBytes) {
      await object.body.cancel();
      throw overBudget(name, object.size, budgetBytes);
    }
    this.evictFor(object.size, budgetBytes);

    let model: Model;
    try {
      model = await (await getEngine()).load(object.body);
    } catch (error) {
      await object.body.cancel().catch(() => {});
      if (!(error instanceof BundleError)) console.error(`loading model ${name}:`, error);
      throw new EdgevitError("model_unavailable", `model ${name} cannot be loaded: ${(error as Error).message}`, {
        cause: error,
      });
    }
    // Now with the activations the engine planned; the memory does not grow after init.
    if (model.memoryBytes > budgetBytes) throw overBudget(name, model.memoryBytes, budgetBytes);
    this.evictFor(model.memoryBytes, budgetBytes);
    this.loaded.set(name, model);
    return model;
  }

  // Drops least recently used models until `bytes` more fit. A request that already holds an evicted
  // model finishes with it; its memory goes when the last reference does.
  private evictFor(bytes: number, budgetBytes: number): void {
    for (const name of this.loaded.keys()) {
      if (this.usedBytes() + bytes <= budgetBytes) return;
      this.loaded.delete(name);
    }
  }
}

function overBudget(name: string, bytes: number, budgetBytes: number): EdgevitError {
  return new EdgevitError(
    "model_unavailable",
    `model ${name} needs ${(bytes / MiB).toFixed(1)} MiB, more than MODEL_MEMORY_BUDGET_MB (${budgetBytes / MiB})`,
  );
}

const cache = new ModelCache();

export function budgetBytes(env: Env): number {
  return Number(env.MODEL_MEMORY_BUDGET_MB) * MiB;
}

export function getModel(env: Env, name: string): Promise<Model> {
  return cache.get(name, env.MODELS, budgetBytes(env));
}

export function loadedModels(): { models: LoadedSummary[]; usedBytes: number } {
  return { models: cache.summary(), usedBytes: cache.usedBytes() };
}
