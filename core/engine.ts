// Engine host: instantiates the wasm engine, streams a bundle's payload straight into wasm memory
// (length and CRC-32 checked, no JS copy of the payload), runs the forward pass and copies outputs out.
// Shared by the CLI (Node) and the Worker (workerd): it takes compiled modules (Workers cannot compile
// bytes at run time; the CLI compiles in cli/node-engine.ts) and uses no host's globals.
import {
  BundleError,
  PREFIX_BYTES,
  checkPayload,
  describe,
  headerTruncated,
  parsePrefix,
  pastPayload,
  tokens,
  weightSlots,
  type BundleHeader,
  type ModelConfig,
  type TensorEntry,
} from "../models/bundle.ts";

// The exports of assembly/index.ts this host uses (docs/ARCHITECTURE.md, "Engine ABI").
export interface EngineExports {
  memory: WebAssembly.Memory;
  alloc(bytes: number): number;
  crc32(crc: number, ptr: number, len: number): number;
  init(config: number, weights: number): number;
  inputPtr(): number;
  forward(capture: number): void;
  logitsPtr(): number;
  outputPtr(): number;
  capturedPtr(): number;
  tokens(): number;
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

export interface RunOptions {
  capture?: number; // layer whose output to keep: 0 = embeddings, L = last layer
}

export interface RunResult {
  logits: Float32Array; // [classes]
  output: Float32Array; // [tokens][dim]: last_hidden_state
  captured?: Float32Array; // [tokens][dim]: hidden_states[capture]
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
      "init",
      "inputPtr",
      "forward",
      "logitsPtr",
      "outputPtr",
      "capturedPtr",
      "tokens",
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

  async load(source: Uint8Array | ReadableStream<Uint8Array>): Promise<Model> {
    const exports = this.exportsOf(await this.newInstance());
    const loader = new PayloadLoader(exports);
    if (source instanceof Uint8Array) {
      loader.push(source);
    } else {
      await pump(source, loader);
    }
    const { header, weights } = loader.end();
    const c = header.config;
    const code = initEngine(exports, c, { ptr: weights, bytes: header.payload.length, tensors: header.tensors });
    if (code !== 0) {
      throw new BundleError("bad_header", `engine refused ${header.name} (${describe(c)}): ${initError(code)}`);
    }
    if (exports.tokens() !== tokens(c)) {
      throw new Error(`engine planned ${exports.tokens()} tokens, the config implies ${tokens(c)}`);
    }
    return new Model(exports, header, loader.largestJsBuffer);
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
  private readonly e: EngineExports;
  private head = new Uint8Array(0); // prefix and header bytes gathered so far
  private need = PREFIX_BYTES; // bytes the prefix parser needs before it can tell more
  private header: BundleHeader | null = null;
  private weights = 0;
  private received = 0; // payload bytes copied
  private crc = 0;

  constructor(exports: EngineExports) {
    this.e = exports;
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
    this.header = header;
    this.head = new Uint8Array(0);
    this.weights = this.e.alloc(header.payload.length);
    return rest;
  }

  end(): { header: BundleHeader; weights: number } {
    if (!this.header) throw headerTruncated(this.head.length);
    checkPayload(this.header, this.received, this.crc);
    return { header: this.header, weights: this.weights };
  }
}

export class Model {
  readonly header: BundleHeader;
  readonly largestJsBuffer: number; // bytes: the largest JS buffer held while loading
  private readonly e: EngineExports;

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

  // f32 [channels][imageSize][imageSize]: write the preprocessed image here before run().
  input(): Float32Array {
    const c = this.header.config;
    return new Float32Array(this.e.memory.buffer, this.e.inputPtr(), c.channels * c.imageSize * c.imageSize);
  }

  run(options: RunOptions = {}): RunResult {
    const c = this.header.config;
    const capture = options.capture ?? -1;
    if (!Number.isInteger(capture) || capture < -1 || capture > c.layers) {
      throw new RangeError(`capture must be -1 or a layer 0..${c.layers}, got ${capture}`);
    }
    this.e.forward(capture);
    const buffer = this.e.memory.buffer;
    const size = this.e.tokens() * c.dim;
    const result: RunResult = {
      logits: new Float32Array(buffer, this.e.logitsPtr(), c.classes).slice(),
      output: new Float32Array(buffer, this.e.outputPtr(), size).slice(),
    };
    if (capture >= 0) result.captured = new Float32Array(buffer, this.e.capturedPtr(), size).slice();
    return result;
  }
}
