// Models for this isolate: bundles streamed from R2 straight into wasm memory, loaded once and shared by
// every request, evicted least recently used when the wasm memory budget would be exceeded.

import relaxedModule from "../build/engine-relaxed.wasm";
import baselineModule from "../build/engine.wasm";
import { BundleError } from "../core/bundle/format.ts";
import { keyOf } from "../core/names.ts";
import type { DotInfo } from "../core/engine/abi.ts";
import { Engine } from "../core/engine/index.ts";
import { MemoryLimitError, type MemoryPlan } from "../core/engine/memory.ts";
import type { Model, RunOptions } from "../core/engine/model.ts";
import type { TextModel } from "../core/engine/text.ts";
import type { BundleHeader } from "../core/bundle/format.ts";
import { textSectionNamed } from "../core/bundle/text.ts";
import { readHeader } from "./catalog.ts";
import { EdgevitError } from "../core/errors.ts";
import { sizeText } from "../core/sizes.ts";
import { budgetBytes, ledgerOf, type MemoryLedger } from "./memory.ts";
import type { LoadedListing } from "./types.ts";

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

// What the cache holds: an image model (the bundle's payload) or a text tower (its "text" section), each
// its own wasm instance, counted in the budget and the ledger on its own.
export type Tower = "image" | "text";
interface Cached {
  readonly memoryBytes: number;
  readonly wasmBytes: number;
  readonly largestJsBuffer: number;
  readonly header: BundleHeader;
}

// A loaded model and what revalidating it needs.
export interface LoadedModel<M extends Cached = Model> {
  name: string;
  tower: Tower;
  model: M;
  version: string;
  etag: string;
  checkedAt: number; // Date.now() after the last load or check (workerd's clock moves at I/O only)
  refreshError?: { etag: string; code: string; message: string };
}

export interface CacheOptions {
  bucket: R2Bucket;
  ledger: MemoryLedger; // the isolate's memory: every model kept or dropped here is kept or dropped there
  budgetBytes: number;
  refreshMs: number; // how old a check may be before a request revalidates the object in R2
}

// The cache's key of a model's tower: its name for the image tower, `name#text` for the text tower.
const cacheKey = (name: string, tower: Tower) => (tower === "image" ? name : `${name}#text`);

type Entry = LoadedModel<Cached>;

// The models of this isolate. `loaded` keeps least recently used first: a use moves its entry to the end.
class ModelCache {
  private readonly loaded = new Map<string, Entry>();
  private readonly loading = new Map<string, Promise<Entry>>();
  private readonly checking = new Map<string, Promise<Entry>>();
  // Loads run one at a time, so each one's eviction sees every byte already committed to wasm memory.
  private lastLoad: Promise<unknown> = Promise.resolve();

  // The model, loading it if needed and revalidating it once its last check is older than `refreshMs`.
  // Concurrent callers share one load; a failed load is forgotten, so the next request tries again
  // (fixing the object in R2 fixes the service).
  async get(name: string, options: CacheOptions, tower: Tower = "image"): Promise<Entry> {
    const key = cacheKey(name, tower);
    const hit = this.loaded.get(key);
    if (hit) {
      this.loaded.delete(key);
      this.loaded.set(key, hit);
      if (Date.now() - hit.checkedAt < options.refreshMs) return hit;
      return this.revalidate(hit, options);
    }
    // A swap that had to release the old version first: wait for the new one.
    const swapping = this.checking.get(key);
    if (swapping) return swapping;
    let pending = this.loading.get(key);
    if (!pending) {
      pending = this.serialized(() => this.load(name, tower, options)).finally(() => this.loading.delete(key));
      this.loading.set(key, pending);
    }
    return pending;
  }

  has(name: string, tower: Tower = "image"): boolean {
    return this.loaded.has(cacheKey(name, tower));
  }

  // Every change to the loaded models goes through these two, so the ledger counts what the cache holds.
  private keep(entry: Entry, ledger: MemoryLedger): void {
    this.loaded.set(cacheKey(entry.name, entry.tower), entry);
    ledger.modelKept(entry.model);
  }

  private drop(key: string, ledger: MemoryLedger): void {
    const entry = this.loaded.get(key);
    if (!entry) return;
    this.loaded.delete(key);
    ledger.modelEvicted(entry.model);
  }

  summary(): LoadedListing[] {
    return [...this.loaded.values()].map((entry) => ({
      name: entry.name,
      ...(entry.tower === "text" ? { tower: "text" as const } : {}),
      version: entry.version,
      etag: entry.etag,
      memoryBytes: entry.model.memoryBytes,
      wasmBytes: entry.model.wasmBytes,
      largestLoadBufferBytes: entry.model.largestJsBuffer,
      checkedAt: new Date(entry.checkedAt).toISOString(),
      ...(entry.refreshError ? { refreshError: entry.refreshError } : {}),
    }));
  }

  usedBytes(): number {
    let used = 0;
    for (const entry of this.loaded.values()) used += entry.model.memoryBytes;
    return used;
  }

  private serialized<T>(run: () => Promise<T>): Promise<T> {
    const next = this.lastLoad.then(run);
    this.lastLoad = next.catch(() => undefined);
    return next;
  }

  // Compares the object in R2 with the loaded version by its etag (a HEAD: no body is read when nothing
  // changed). A new object is loaded while the old version keeps answering; requests that already hold
  // the old model finish on it (a model is used only in synchronous stretches, see service.ts). A new version
  // that fails to load leaves the old one serving, with the failure kept for /v1/models; that object is
  // not retried until its etag changes again.
  private revalidate(entry: Entry, options: CacheOptions): Promise<Entry> {
    const key = cacheKey(entry.name, entry.tower);
    let pending = this.checking.get(key);
    if (!pending) {
      pending = this.swapIfChanged(entry, options).finally(() => this.checking.delete(key));
      this.checking.set(key, pending);
    }
    return pending;
  }

  private async swapIfChanged(entry: Entry, options: CacheOptions): Promise<Entry> {
    const key = cacheKey(entry.name, entry.tower);
    let head: R2Object | null;
    try {
      head = await options.bucket.head(keyOf(entry.name));
    } catch (error) {
      // R2 unreachable for a moment: keep serving what is loaded and check again after refreshMs.
      console.error(`checking model ${entry.name}:`, error);
      entry.checkedAt = Date.now();
      return entry;
    }
    // Requests that came during the HEAD wait for it; from here on, later ones get the loaded version at
    // once while this check loads a new one.
    entry.checkedAt = Date.now();
    if (!head) {
      this.drop(key, options.ledger);
      throw new EdgevitError("model_not_found", `no model ${JSON.stringify(entry.name)} in the bucket`);
    }
    if (head.etag === entry.etag || head.etag === entry.refreshError?.etag) return entry;
    try {
      return await this.serialized(() => this.load(entry.name, entry.tower, options, entry));
    } catch (error) {
      const failure = error instanceof EdgevitError ? error : unavailable(entry.name, error);
      if (failure.code === "model_not_found") throw failure;
      entry.refreshError = { etag: head.etag, code: failure.code, message: failure.message };
      // The load may have evicted the old version to make room: the failed instance is garbage now, so
      // the old one goes back if it fits.
      if (!this.loaded.has(key)) {
        this.evictFor(entry.model.memoryBytes, options);
        this.keep(entry, options.ledger);
      }
      return entry;
    }
  }

  // Streams the object into a new wasm instance. `replacing` is the version it supersedes: it stays
  // loaded (and counted) while the new one streams in, and is evicted only when both do not fit.
  private async load(name: string, tower: Tower, options: CacheOptions, replacing?: Entry): Promise<Entry> {
    // The model budget is set aside in the isolate's ledger before anything is read: requests admitted for
    // this model did so already; otherwise the load waits for room like a request (ahead of new ones).
    const key = cacheKey(name, tower);
    const endClaim = await options.ledger.claimLoad(key);
    try {
      return tower === "image"
        ? await this.loadClaimed(name, options, replacing)
        : await this.loadText(name, options, replacing);
    } finally {
      endClaim();
    }
  }

  // A text tower: the prefix and header by a ranged read (as the catalogue reads them), then its section's
  // bytes alone by a second ranged read of that same object (its etag), into a fresh instance.
  private async loadText(name: string, options: CacheOptions, replacing?: Entry): Promise<Entry> {
    const { bucket, ledger } = options;
    let head: R2Object | null;
    let header: BundleHeader;
    try {
      head = await bucket.head(keyOf(name));
      if (!head) throw new EdgevitError("model_not_found", `no model ${JSON.stringify(name)} in the bucket`);
      header = await readHeader(bucket, head);
    } catch (error) {
      if (error instanceof EdgevitError) throw error;
      if (error instanceof BundleError) {
        throw new EdgevitError("model_unavailable", `model ${name} cannot be loaded: ${error.message}`, {
          cause: error,
        });
      }
      throw unavailable(name, error);
    }
    const section = textSectionNamed(header.sections, "text");
    if (!section) {
      throw new EdgevitError(
        "bad_parameter",
        `model ${name} has no text tower: convert a CLIPModel or SiglipModel checkpoint with its tokenizer files ` +
          "(vocab.json and merges.txt, or spiece.model) to answer text",
      );
    }
    let object: R2ObjectBody | R2Object | null;
    try {
      object = await bucket.get(keyOf(name), {
        range: { offset: section.offset, length: section.length },
        onlyIf: { etagMatches: head.etag },
      });
    } catch (error) {
      throw unavailable(name, error);
    }
    if (!object || !("body" in object)) {
      throw new EdgevitError("model_unavailable", `model ${name} changed while its text tower was read; try again`);
    }
    const body = object.body;
    const model = await this.loadBody(name, "text", body, options, async (reserve) =>
      (await getEngine()).loadText(header, "text", body, { reserve }),
    );
    const key = cacheKey(name, "text");
    if (replacing && this.loaded.get(key) === replacing) this.drop(key, ledger);
    this.evictFor(model.memoryBytes, options);
    const entry: Entry = { name, tower: "text", model, version: section.crc32, etag: head.etag, checkedAt: Date.now() };
    this.loaded.set(key, entry);
    ledger.modelLoaded(key, model);
    return entry;
  }

  private async loadClaimed(name: string, options: CacheOptions, replacing?: Entry): Promise<Entry> {
    const { bucket, budgetBytes, ledger } = options;
    let object: R2ObjectBody | null;
    try {
      object = await bucket.get(keyOf(name));
    } catch (error) {
      // R2 itself failed: a 503 the next request retries, not a 500.
      throw unavailable(name, error);
    }
    if (!object) throw new EdgevitError("model_not_found", `no model ${JSON.stringify(name)} in the bucket`);
    // The object's size is not the model's: a two-tower bundle carries its text tower after the image payload,
    // which this load never reads (the stream is cancelled at the payload's end). The header's plan, read
    // before any of the payload, is what is checked against the budget and made room for.

    const body = object.body;
    const model = await this.loadBody(name, "image", body, options, async (reserve) =>
      (await getEngine()).load(body, { reserve }),
    );
    // Now with the activations the engine planned. Later the memory grows only by the capture buffers, once,
    // the first time a request asks for them (/v1/see, /v1/attentions; docs/MEMORY.md): reserveCapture makes
    // room for them first, and usedBytes() reads the live sizes.
    if (model.memoryBytes > budgetBytes) throw overBudget(name, model.memoryBytes, budgetBytes);
    if (replacing && this.loaded.get(name) === replacing) this.drop(name, ledger);
    this.evictFor(model.memoryBytes, options);
    const entry: Entry = {
      name,
      tower: "image",
      model,
      version: model.header.payload.crc32,
      etag: object.etag,
      checkedAt: Date.now(),
    };
    this.loaded.set(name, entry);
    ledger.modelLoaded(name, model);
    return entry;
  }

  // Runs a tower's load from `body`, cancelling the body when it fails. `reserve` gets the header's plan before
  // the payload is streamed: a plan over the whole budget is refused, else room is made for all of it
  // (payload and activations) at once.
  private async loadBody<M>(
    name: string,
    tower: Tower,
    body: ReadableStream,
    options: CacheOptions,
    load: (reserve: (plan: MemoryPlan) => void) => Promise<M>,
  ): Promise<M> {
    const { budgetBytes } = options;
    const text = tower === "text";
    try {
      return await load((plan) => {
        if (plan.totalBytes > budgetBytes)
          throw overBudget(text ? `${name} (text tower)` : name, plan.totalBytes, budgetBytes, plan);
        this.evictFor(plan.totalBytes, options);
      });
    } catch (error) {
      await body.cancel().catch(() => {});
      if (error instanceof EdgevitError) throw error;
      if (error instanceof MemoryLimitError) throw overBudget(name, error.plan.totalBytes, budgetBytes, error.plan);
      // A BundleError is about the bundle's bytes and says so; anything else is ours or R2's: logged, and
      // answered with a fixed sentence.
      if (!(error instanceof BundleError)) throw unavailable(name, error);
      const subject = text ? `model ${name}'s text tower` : `model ${name}`;
      throw new EdgevitError("model_unavailable", `${subject} cannot be loaded: ${error.message}`, { cause: error });
    }
  }

  // Room for `entry`'s memory to grow by `bytes` (capture buffers): other models are evicted, least recently
  // used first; when even alone it would not fit, the request is refused before anything grows.
  makeRoomToGrow(entry: Entry, bytes: number, options: Pick<CacheOptions, "budgetBytes" | "ledger">): void {
    const { budgetBytes } = options;
    const needs = entry.model.memoryBytes + bytes;
    if (needs > budgetBytes) {
      throw new EdgevitError(
        "model_unavailable",
        `model ${entry.name} cannot keep what this request asks for: its ${sizeText(bytes)} of capture buffers ` +
          `would take it to ${sizeText(needs)}, more than MODEL_MEMORY_BUDGET_MB allows (${sizeText(budgetBytes)})`,
      );
    }
    for (const [name, other] of this.loaded) {
      if (this.usedBytes() + bytes <= budgetBytes) return;
      if (other !== entry) this.drop(name, options.ledger);
    }
  }

  // Drops least recently used models until `bytes` more fit. A request that already holds an evicted
  // model finishes with it; its memory goes when the last reference does (the ledger counts it till then).
  private evictFor(bytes: number, options: Pick<CacheOptions, "budgetBytes" | "ledger">): void {
    for (const name of this.loaded.keys()) {
      if (this.usedBytes() + bytes <= options.budgetBytes) return;
      this.drop(name, options.ledger);
    }
  }
}

function overBudget(name: string, bytes: number, budgetBytes: number, plan?: MemoryPlan): EdgevitError {
  const parts = plan
    ? ` (${sizeText(plan.payloadBytes)} of weights, ${sizeText(plan.activationBytes)} of activations)`
    : "";
  return new EdgevitError(
    "model_unavailable",
    `model ${name} is too large: it needs ${sizeText(bytes)} of memory${parts}, more than ` +
      `MODEL_MEMORY_BUDGET_MB allows (${sizeText(budgetBytes)})`,
  );
}

// A failure that is not about the bundle's bytes (R2, the runtime): logged with its cause, answered with a
// sentence that discloses nothing of it.
function unavailable(name: string, cause: unknown): EdgevitError {
  console.error(`loading model ${name}:`, cause);
  return new EdgevitError(
    "model_unavailable",
    `model ${name} cannot be loaded right now; the cause has been logged, try again later`,
    { cause },
  );
}

const cache = new ModelCache();

// How stale a loaded model's check may be (MODEL_REFRESH_SECONDS): a replaced bundle is served at most
// this long after it was replaced, by the first request after that.
export function refreshMs(env: Env): number {
  return Number(env.MODEL_REFRESH_SECONDS ?? 60) * 1000;
}

function cacheOptions(env: Env): CacheOptions {
  return { bucket: env.MODELS, ledger: ledgerOf(env), budgetBytes: budgetBytes(env), refreshMs: refreshMs(env) };
}

export async function getModel(env: Env, name: string): Promise<LoadedModel> {
  return (await cache.get(name, cacheOptions(env))) as LoadedModel;
}

// The text tower of `name` (its bundle's "text" section), loaded alone.
export async function getTextModel(env: Env, name: string): Promise<LoadedModel<TextModel>> {
  return (await cache.get(name, cacheOptions(env), "text")) as LoadedModel<TextModel>;
}

// Whether `name`'s tower is loaded now (a request for a model that is not sets its load's room aside when
// admitted, under the cache's key of that tower).
export function isLoaded(name: string, tower: Tower = "image"): boolean {
  return cache.has(name, tower);
}

export { cacheKey };

// Before a run that may allocate capture buffers (/v1/see, /v1/attentions, /v1/pca?layer=all): they count
// against the budget like the model itself, so room is made (or the request refused) before memory grows.
export function reserveCapture(env: Env, entry: LoadedModel, options: RunOptions): void {
  const growth = entry.model.captureGrowth(options);
  if (growth > 0) cache.makeRoomToGrow(entry, growth, cacheOptions(env));
}

export function loadedModels(): { models: LoadedListing[]; usedBytes: number } {
  return { models: cache.summary(), usedBytes: cache.usedBytes() };
}
