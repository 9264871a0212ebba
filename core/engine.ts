// Engine host: instantiates the wasm engine, streams a bundle's payload straight into wasm memory
// (length and CRC-32 checked, no JS copy of the payload), runs the forward pass and copies outputs out.
// Shared by the CLI (Node) and the Worker (workerd): it takes compiled modules (Workers cannot compile
// bytes at run time; the CLI compiles in cli/node-engine.ts) and uses no host's globals.
import {
  BundleError,
  PREFIX_BYTES,
  checkPayload,
  describe,
  floatTensors,
  headerTruncated,
  nonFinite,
  parsePrefix,
  pastPayload,
  tokens,
  weightSlots,
  type BundleHeader,
  type ModelConfig,
  type TensorEntry,
} from "../models/bundle.ts";
import { EdgevitError } from "./errors.ts";
import { sizeText } from "./sizes.ts";

// The exports of assembly/index.ts this host uses (docs/ARCHITECTURE.md, "Engine ABI").
export interface EngineExports {
  memory: WebAssembly.Memory;
  alloc(bytes: number): number;
  crc32(crc: number, ptr: number, len: number): number;
  nonFinite(ptr: number, count: number): number; // index of the first NaN/Inf f32, or -1
  gemmRowTile(): number;
  init(config: number, weights: number): number;
  inputPtr(): number;
  forward(capture: number, flags: number, attentionLayer: number): void;
  logitsPtr(): number;
  outputPtr(): number;
  capturedPtr(): number;
  tokens(): number;
  enableCapture(flags: number): void;
  hiddenStatesPtr(): number;
  clsAttentionPtr(): number;
  meanAttentionPtr(): number;
  attentionsPtr(): number;
  probeDot(): number;
  dotPath(): number;
  setDotPath(path: number): number;
}

// The int8 dot step the GEMM takes (assembly/kernels/dot.ts): "fused" (one relaxed_dot_i8x16_i7x16_add_s,
// where the runtime lowers it to vpdpbusd / vpdpbssd / sdot), "split" (relaxed dot to i16, then widen) or
// "i16" (the baseline build's sign-extending loads and dot_i16x8_s). All give the same outputs.
export type DotPath = "i16" | "split" | "fused";
const DOT_PATHS: readonly DotPath[] = ["i16", "split", "fused"];

export interface DotInfo {
  path: DotPath;
  // lane 0 of relaxed_dot_i8x16_i7x16_add_s(127s, 0xFFs, 0) in this runtime: 65534 (pmaddubsw), 129540
  // (vpdpbusd), -508 (vpdpbssd, sdot); 0 in the baseline build
  probe: number;
}

export interface EngineOptions {
  dot?: DotPath; // force a path the build has (tests, benchmarks); default: the probe's choice
}

// The config struct init() reads (assembly/model.ts, ConfigStruct): 4-byte little-endian fields at these
// byte offsets, the struct's own size first. Written by name, so no two fields can trade places.
const CONFIG_FIELDS = {
  bytes: 0,
  channels: 4,
  imageSize: 8,
  patchSize: 12,
  dim: 16,
  heads: 20,
  hidden: 24,
  layers: 28,
  classes: 32,
  distilled: 36,
  eps: 40,
} as const;
const CONFIG_BYTES = 44;
// The weight table (assembly/model.ts, WeightBinder): payload pointer, payload bytes, slot count, offsets.
const TABLE_HEADER_WORDS = 3;
const ABSENT = 0xffffffff;

// What init() returned, as a sentence (assembly/model.ts's ERR_ codes).
const INIT_ERRORS: Record<number, string> = {
  1:
    "the engine cannot run this configuration (a size is not positive, dim is not a multiple of heads, " +
    "or the patch is larger than the image)",
  2: "the payload is not 64-byte aligned in engine memory",
  3: "the engine instance already holds a model",
  4: "the host and the engine disagree on the config struct or the weight table size (mismatched builds)",
  5: "a tensor of the header's table is missing, misaligned or ends past the payload",
};

export function initError(code: number): string {
  return INIT_ERRORS[code] ?? `init returned the unknown code ${code}`;
}

// Writes the config struct and the weight table (each tensor's offset looked up by name in the header's
// tensor table, in the engine's slot order) into engine memory and calls init. Returns init's code.
export function initEngine(
  e: Pick<EngineExports, "memory" | "alloc" | "init">,
  config: ModelConfig,
  payload: { ptr: number; bytes: number; tensors: readonly TensorEntry[] },
): number {
  const configPtr = e.alloc(CONFIG_BYTES);
  const view = new DataView(e.memory.buffer, configPtr, CONFIG_BYTES);
  view.setInt32(CONFIG_FIELDS.bytes, CONFIG_BYTES, true);
  for (const key of ["channels", "imageSize", "patchSize", "dim", "heads", "hidden", "layers", "classes"] as const) {
    view.setInt32(CONFIG_FIELDS[key], config[key], true);
  }
  view.setInt32(CONFIG_FIELDS.distilled, config.distilled ? 1 : 0, true);
  view.setFloat32(CONFIG_FIELDS.eps, config.eps, true);

  const offsets = new Map(payload.tensors.map((t) => [t.name, t.offset]));
  const slots = weightSlots(config);
  const tablePtr = e.alloc(4 * (TABLE_HEADER_WORDS + slots.length));
  const table = new Uint32Array(e.memory.buffer, tablePtr, TABLE_HEADER_WORDS + slots.length);
  table.set([payload.ptr, payload.bytes, slots.length]);
  slots.forEach((name, i) => {
    table[TABLE_HEADER_WORDS + i] = name === null ? ABSENT : (offsets.get(name) ?? ABSENT);
  });
  return e.init(configPtr, tablePtr);
}

export interface LoadOptions {
  // Called once the header is read, before any wasm memory is grown for the model: may refuse the plan
  // (throw) or make room for it.
  reserve?: (plan: MemoryPlan, header: BundleHeader) => void;
}

// What a model's instance will hold in wasm memory, from its config alone (mirrors init() in
// assembly/model.ts; test/models/limits.test.ts checks it against the memory loads really take).
export interface MemoryPlan {
  payloadBytes: number;
  activationBytes: number; // activations, quantized operands and the engine's per-layer records
  totalBytes: number; // the instance's memory after init: its heap before the load, plus both, in whole pages
}

const PAGE = 65536;
// Each alloc() takes 64 bytes for alignment, the stub runtime's 16-byte block header and its own 16-byte
// rounding beside its request.
const ALLOC_SLACK = 96;
// Per layer, the engine's Layer record and its four Linear records (a few dozen bytes each, with headers).
const LAYER_RECORD_BYTES = 512;

export function memoryPlan(c: ModelConfig, payloadBytes: number, heapTop: number, rowTile: number): MemoryPlan {
  const k16 = (k: number) => Math.ceil(k / 16) * 16;
  const n4 = (n: number) => Math.ceil(n / 4) * 4;
  const t = tokens(c);
  const patches = (c.imageSize / c.patchSize) ** 2;
  const patchDim = c.channels * c.patchSize * c.patchSize;
  const headDim = c.dim / c.heads;
  const rows = Math.ceil(t / rowTile) * rowTile;
  const f32s = [
    c.channels * c.imageSize * c.imageSize, // input
    patches * patchDim, // patch rows
    t * c.dim, // x
    t * c.dim, // norm
    t * 3 * c.dim, // qkv
    t * t, // scores
    t * c.dim, // context
    t * c.hidden, // MLP hidden
    t * c.dim, // output
    t * c.dim, // captured
    c.classes, // logits
    c.classes, // distillation logits
    rows, // qa scale
    rows, // qa zero
    rows, // qa sum
    n4(Math.max(t, headDim)), // qb scale
    n4(Math.max(t, headDim)), // qb sum
  ];
  const bytes = [
    ...f32s.map((n) => 4 * n),
    rows * Math.max(k16(c.dim), k16(c.hidden), k16(patchDim), k16(t)), // qa
    Math.max(n4(t) * k16(headDim), n4(headDim) * k16(t)), // qb
  ];
  const activationBytes = bytes.reduce((sum, b) => sum + b + ALLOC_SLACK, 0) + (c.layers + 4) * LAYER_RECORD_BYTES;
  const totalBytes = Math.ceil((heapTop + payloadBytes + ALLOC_SLACK + activationBytes) / PAGE) * PAGE;
  return { payloadBytes, activationBytes, totalBytes };
}

// The model's memory plan does not fit what the caller allows, or the runtime would not grow memory to it.
export class MemoryLimitError extends Error {
  readonly plan: MemoryPlan;
  constructor(plan: MemoryPlan, message: string) {
    super(message);
    this.name = "MemoryLimitError";
    this.plan = plan;
  }
}

export { sizeText } from "./sizes.ts";

// assembly/model.ts's CAPTURE_* bits.
const CAPTURE_HIDDEN_STATES = 1;
const CAPTURE_ATTENTION = 2;
const CAPTURE_LAYER = 4;

const captureKinds = (options: RunOptions): number =>
  (options.hiddenStates ? CAPTURE_HIDDEN_STATES : 0) |
  (options.attention ? CAPTURE_ATTENTION : 0) |
  (options.attentionLayer ? CAPTURE_LAYER : 0);

// The f32 buffers enableCapture() in assembly/model.ts allocates for `kinds`, each followed by the 128 bytes
// its alloc() grows memory for beside the request: what memory can grow by, from the config alone.
function kindsBytes(c: ModelConfig, kinds: number): number {
  const t = tokens(c);
  const layers = Math.max(c.layers, 1);
  const buffers = [
    kinds & CAPTURE_HIDDEN_STATES ? (c.layers + 1) * t * c.dim : 0,
    kinds & CAPTURE_ATTENTION ? layers * c.heads * t : 0, // class token's rows
    kinds & CAPTURE_ATTENTION ? layers * t * t : 0, // head means
    kinds & CAPTURE_LAYER ? c.heads * t * t : 0,
  ].filter((n) => n > 0);
  return buffers.reduce((sum, n) => sum + 4 * n + 128, 0);
}

// At most how much the capture buffers `options` asks for grow a model's memory, in whole pages: a host can
// budget them before run() grows memory for them (they are allocated once, the first time they are asked for).
export function captureBytes(c: ModelConfig, options: RunOptions): number {
  return Math.ceil(kindsBytes(c, captureKinds(options)) / PAGE) * PAGE;
}

// Hugging Face's numbering: hidden state N = output of layer N (0 = embeddings), attention of layer N =
// `output_attentions[N - 1]`.
export interface RunOptions {
  capture?: number; // layer whose output to keep: 0 = embeddings, L = last layer
  hiddenStates?: boolean; // keep every hidden state 0..L
  attention?: boolean; // keep per layer the class token's attention rows and the head-mean matrix
  attentionLayer?: number; // 1..L: keep that layer's attention probabilities, every head
  pixels?: boolean; // return a copy of the preprocessed input
  // Reads the captures (hiddenStates, clsAttention, meanAttention, attentions, pixels) in place instead
  // of copying them: called synchronously with views into wasm memory that are valid only during the
  // call (the next run overwrites them); run() then returns no captures. Saves their copies (7.5 MiB of
  // hidden states for a ViT-B/16).
  read?: (captures: RunResult) => void;
}

export interface RunResult {
  logits: Float32Array; // [classes]
  output: Float32Array; // [tokens][dim]: last_hidden_state
  captured?: Float32Array; // [tokens][dim]: hidden_states[capture]
  hiddenStates?: Float32Array; // [layers + 1][tokens][dim]
  clsAttention?: Float32Array; // [layers][heads][tokens]: row 0 of each head's softmax probabilities
  meanAttention?: Float32Array; // [layers][tokens][tokens]: the probabilities averaged over heads
  attentions?: Float32Array; // [heads][tokens][tokens]: layer attentionLayer's probabilities
  pixels?: Float32Array; // [channels][imageSize][imageSize]: pixel_values
}

export class Engine {
  readonly module: WebAssembly.Module;
  readonly options: EngineOptions;
  // the dot path this runtime's instances take, read from the first instance
  dot: DotInfo = { path: "i16", probe: 0 };

  private constructor(module: WebAssembly.Module, options: EngineOptions) {
    this.module = module;
    this.options = options;
  }

  // Checks the module instantiates and exports the ABI; each load gets its own instance and memory.
  static async instantiate(module: WebAssembly.Module, options: EngineOptions = {}): Promise<Engine> {
    const engine = new Engine(module, options);
    const e = engine.exportsOf(await engine.newInstance());
    engine.dot = { path: DOT_PATHS[e.dotPath()] ?? "i16", probe: e.probeDot() };
    return engine;
  }

  // The relaxed-SIMD build when this runtime accepts it (its bytes validate), else the baseline.
  static async pick(
    baseline: { module: WebAssembly.Module },
    relaxed: { module: WebAssembly.Module; bytes?: BufferSource },
    options: EngineOptions = {},
  ): Promise<Engine> {
    if (relaxed.bytes && !WebAssembly.validate(relaxed.bytes)) return Engine.instantiate(baseline.module, options);
    try {
      return await Engine.instantiate(relaxed.module, options);
    } catch {
      return Engine.instantiate(baseline.module, options);
    }
  }

  // The builds import nothing (scripts/build-wasm.ts: a failed allocation traps rather than calling abort).
  private newInstance(): Promise<WebAssembly.Instance> {
    return WebAssembly.instantiate(this.module, {});
  }

  // The instance's exports, its dot path forced when the options ask for one.
  private exportsOf(instance: WebAssembly.Instance): EngineExports {
    const e = instance.exports as unknown as EngineExports;
    for (const name of [
      "memory",
      "alloc",
      "crc32",
      "nonFinite",
      "gemmRowTile",
      "init",
      "inputPtr",
      "forward",
      "logitsPtr",
      "outputPtr",
      "capturedPtr",
      "tokens",
      "enableCapture",
      "hiddenStatesPtr",
      "clsAttentionPtr",
      "meanAttentionPtr",
      "attentionsPtr",
      "probeDot",
      "dotPath",
      "setDotPath",
    ] as const) {
      if (!(name in e)) throw new Error(`engine module does not export ${name}`);
    }
    const forced = this.options.dot;
    if (forced !== undefined && e.setDotPath(DOT_PATHS.indexOf(forced)) !== DOT_PATHS.indexOf(forced)) {
      throw new Error(`this engine build has no ${forced} dot path`);
    }
    return e;
  }

  async load(source: Uint8Array | ReadableStream<Uint8Array>, options: LoadOptions = {}): Promise<Model> {
    const exports = this.exportsOf(await this.newInstance());
    const loader = new PayloadLoader(exports, options);
    if (source instanceof Uint8Array) {
      loader.push(source);
    } else {
      await pump(source, loader);
    }
    const { header, weights } = loader.end();
    const c = header.config;
    const code = grow(loader.plan!, () =>
      initEngine(exports, c, { ptr: weights, bytes: header.payload.length, tensors: header.tensors }),
    );
    if (code !== 0) {
      throw new BundleError("bad_header", `engine refused ${header.name} (${describe(c)}): ${initError(code)}`);
    }
    if (exports.tokens() !== tokens(c)) {
      throw new Error(`engine planned ${exports.tokens()} tokens, the config implies ${tokens(c)}`);
    }
    return new Model(exports, header, loader.largestJsBuffer);
  }
}

// Runs an engine call that grows memory: a failed grow traps (the builds have no abort import), which is
// reported as the plan that did not fit rather than as the trap.
function grow<T>(plan: MemoryPlan, call: () => T): T {
  try {
    return call();
  } catch (error) {
    if (!(error instanceof WebAssembly.RuntimeError)) throw error;
    throw new MemoryLimitError(
      plan,
      `the runtime would not grow wasm memory to the ${sizeText(plan.totalBytes)} the model needs ` +
        `(${sizeText(plan.payloadBytes)} of weights, ${sizeText(plan.activationBytes)} of activations)`,
    );
  }
}

// Bytes per read from a byte stream. An R2 body read with a default reader arrives in 4 KiB chunks
// (21,510 reads for a ViT-B/16, ~0.5 s of per-read cost in workerd); a BYOB read fills up to 64 KiB,
// the most workerd hands out per read, into one buffer reused for the whole load.
const READ_BYTES = 64 * 1024;

// Reads the stream to its end into the loader: BYOB into a reused buffer when it is a byte stream (an R2
// body), else chunk by chunk as the stream makes them.
async function pump(source: ReadableStream<Uint8Array>, loader: PayloadLoader): Promise<void> {
  let byob: ReadableStreamBYOBReader | undefined;
  try {
    byob = source.getReader({ mode: "byob" });
  } catch {
    // not a byte stream
  }
  const reader = byob ?? source.getReader();
  let buffer = new ArrayBuffer(READ_BYTES);
  if (byob) loader.largestJsBuffer = READ_BYTES;
  const read = byob
    ? () => byob.read(new Uint8Array(buffer))
    : () => (reader as ReadableStreamDefaultReader<Uint8Array>).read();
  try {
    for (;;) {
      const { done, value } = await read();
      if (done) break;
      loader.push(value);
      // the read transferred the buffer: the view it returned now owns it
      if (byob) buffer = value.buffer as ArrayBuffer;
    }
  } catch (error) {
    // stop the source (an R2 body, a file) instead of leaving it half read
    await reader.cancel(error).catch(() => {});
    throw error;
  } finally {
    reader.releaseLock();
  }
}

// Feeds stream chunks through: the prefix and header are gathered in a small JS buffer, every payload
// byte goes straight to its place in wasm memory and through the wasm CRC-32.
class PayloadLoader {
  largestJsBuffer = 0;
  plan: MemoryPlan | null = null;
  private readonly e: EngineExports;
  private readonly options: LoadOptions;
  private head = new Uint8Array(0); // prefix and header bytes gathered so far
  private need = PREFIX_BYTES; // bytes the prefix parser needs before it can tell more
  private header: BundleHeader | null = null;
  private weights = 0;
  private received = 0; // payload bytes copied
  private crc = 0;

  constructor(exports: EngineExports, options: LoadOptions) {
    this.e = exports;
    this.options = options;
  }

  push(chunk: Uint8Array): void {
    this.largestJsBuffer = Math.max(this.largestJsBuffer, chunk.byteLength);
    if (!this.header) {
      chunk = this.gatherHead(chunk);
      if (!this.header) return;
    }
    if (this.received + chunk.length > this.header.payload.length) throw pastPayload(this.header);
    if (chunk.length === 0) return;
    const at = this.weights + this.received;
    new Uint8Array(this.e.memory.buffer, at, chunk.length).set(chunk);
    this.crc = this.e.crc32(this.crc, at, chunk.length) >>> 0;
    this.received += chunk.length;
  }

  // Collects the prefix and header (at most payloadOffset bytes are copied; a chunk that holds the
  // whole header is parsed in place). Returns the payload bytes that follow in this chunk.
  private gatherHead(chunk: Uint8Array): Uint8Array {
    for (;;) {
      if (this.head.length === 0 && chunk.length >= this.need) {
        const result = parsePrefix(chunk);
        if ("need" in result) {
          this.need = result.need;
          continue;
        }
        return this.start(result.header, chunk.subarray(result.payloadOffset));
      }
      const take = Math.min(this.need - this.head.length, chunk.length);
      const joined = new Uint8Array(this.head.length + take);
      joined.set(this.head);
      joined.set(chunk.subarray(0, take), this.head.length);
      this.head = joined;
      this.largestJsBuffer = Math.max(this.largestJsBuffer, joined.length);
      chunk = chunk.subarray(take);
      if (this.head.length < this.need) return chunk;
      const result = parsePrefix(this.head);
      if ("need" in result) {
        this.need = result.need;
        continue;
      }
      return this.start(result.header, chunk);
    }
  }

  private start(header: BundleHeader, rest: Uint8Array): Uint8Array {
    // alloc(0) is the top of the heap (it takes a few bytes): what the instance holds before the model
    const plan = memoryPlan(header.config, header.payload.length, this.e.alloc(0), this.e.gemmRowTile());
    this.options.reserve?.(plan, header);
    this.plan = plan;
    this.header = header;
    this.head = new Uint8Array(0);
    this.weights = grow(plan, () => this.e.alloc(header.payload.length));
    return rest;
  }

  end(): { header: BundleHeader; weights: number } {
    if (!this.header) throw headerTruncated(this.head.length);
    checkPayload(this.header, this.received, this.crc);
    // In place in wasm memory, after the CRC: the payload is the one the header describes.
    for (const entry of floatTensors(this.header.config)) {
      const at = this.weights + entry.offset;
      const index = this.e.nonFinite(at, entry.bytes / 4);
      if (index >= 0) throw nonFinite(entry, index, new Float32Array(this.e.memory.buffer, at + 4 * index, 1)[0]);
    }
    return { header: this.header, weights: this.weights };
  }
}

export class Model {
  readonly header: BundleHeader;
  readonly largestJsBuffer: number; // bytes: the largest JS buffer held while loading
  private readonly e: EngineExports;
  private captureKinds = 0; // the CAPTURE_* buffers allocated so far

  constructor(exports: EngineExports, header: BundleHeader, largestJsBuffer: number) {
    this.e = exports;
    this.header = header;
    this.largestJsBuffer = largestJsBuffer;
  }

  get memoryBytes(): number {
    return this.e.memory.buffer.byteLength;
  }

  get tokens(): number {
    return this.e.tokens();
  }

  // captureBytes for the buffers of `options` this instance has not allocated yet (0 once it has).
  captureGrowth(options: RunOptions): number {
    const missing = captureKinds(options) & ~this.captureKinds;
    return Math.ceil(kindsBytes(this.header.config, missing) / PAGE) * PAGE;
  }

  // f32 [channels][imageSize][imageSize]: write the preprocessed image here before run().
  input(): Float32Array {
    const c = this.header.config;
    return new Float32Array(this.e.memory.buffer, this.e.inputPtr(), c.channels * c.imageSize * c.imageSize);
  }

  // The capture buffers of `kinds` (CAPTURE_* bits), allocated once: a failed grow traps (the builds have
  // no abort import), reported as the memory that could not be had.
  private enableCapture(kinds: number): void {
    try {
      this.e.enableCapture(kinds);
      this.captureKinds |= kinds;
    } catch (error) {
      if (!(error instanceof WebAssembly.RuntimeError)) throw error;
      const bytes = kindsBytes(this.header.config, kinds & ~this.captureKinds);
      throw new EdgevitError(
        "model_unavailable",
        `model ${this.header.name} cannot keep what this request asks for: the runtime would not grow its ` +
          `memory by ${sizeText(bytes)}`,
        { cause: error },
      );
    }
  }

  run(options: RunOptions = {}): RunResult {
    const c = this.header.config;
    const capture = options.capture ?? -1;
    if (!Number.isInteger(capture) || capture < -1 || capture > c.layers) {
      throw new RangeError(`capture must be -1 or a layer 0..${c.layers}, got ${capture}`);
    }
    const attentionLayer = options.attentionLayer ?? 0;
    if (!Number.isInteger(attentionLayer) || attentionLayer < 0 || attentionLayer > c.layers) {
      throw new RangeError(`attentionLayer must be a layer 1..${c.layers}, got ${attentionLayer}`);
    }
    const flags = (options.hiddenStates ? CAPTURE_HIDDEN_STATES : 0) | (options.attention ? CAPTURE_ATTENTION : 0);
    if (flags !== 0 || attentionLayer !== 0) this.enableCapture(flags | (attentionLayer !== 0 ? CAPTURE_LAYER : 0));
    this.e.forward(capture, flags, attentionLayer);
    const buffer = this.e.memory.buffer;
    const t = this.e.tokens();
    const size = t * c.dim;
    // Finite weights can still overflow on some input; such numbers are not an answer.
    const outputs: [string, number, number][] = [
      ["scores", this.e.logitsPtr(), c.classes],
      ["hidden states", this.e.outputPtr(), size],
    ];
    if (capture >= 0) outputs.push([`layer ${capture} hidden states`, this.e.capturedPtr(), size]);
    for (const [what, ptr, count] of outputs) {
      if (this.e.nonFinite(ptr, count) >= 0) {
        throw new EdgevitError(
          "model_unavailable",
          `model ${this.header.name} computed non-finite ${what} for this image: its weights overflow`,
        );
      }
    }
    const copy = (ptr: number, length: number) => new Float32Array(buffer, ptr, length).slice();
    const result: RunResult = {
      logits: copy(this.e.logitsPtr(), c.classes),
      output: copy(this.e.outputPtr(), size),
    };
    if (capture >= 0) result.captured = copy(this.e.capturedPtr(), size);
    const take = options.read ? (ptr: number, length: number) => new Float32Array(buffer, ptr, length) : copy;
    const captures: RunResult = options.read ? { ...result } : result;
    if (options.hiddenStates) captures.hiddenStates = take(this.e.hiddenStatesPtr(), (c.layers + 1) * size);
    if (options.attention) {
      captures.clsAttention = take(this.e.clsAttentionPtr(), c.layers * c.heads * t);
      captures.meanAttention = take(this.e.meanAttentionPtr(), c.layers * t * t);
    }
    if (attentionLayer !== 0) captures.attentions = take(this.e.attentionsPtr(), c.heads * t * t);
    if (options.pixels) captures.pixels = options.read ? this.input() : this.input().slice();
    options.read?.(captures);
    return result;
  }
}
