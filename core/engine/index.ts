// The engine host: a compiled engine module, and the models loaded into instances of it. Shared by the CLI
// (Node) and the Worker (workerd): it takes compiled modules (Workers cannot compile bytes at run time;
// the CLI compiles in cli/node-engine.ts) and uses no host's globals. The ABI is abi.ts, the memory plan
// memory.ts, loading load.ts and running a model model.ts.
import { DOT_PATHS, engineExports, type DotInfo, type DotPath, type EngineExports } from "./abi.ts";
import { loadModel, type LoadOptions } from "./load.ts";
import type { Model } from "./model.ts";
import { loadTextModel, type TextLoadOptions, type TextModel } from "./text.ts";
import type { BundleHeader } from "../bundle/format.ts";

export interface EngineOptions {
  dot?: DotPath; // force a path the build has (tests, benchmarks); default: the probe's choice
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
    const e = await engine.newInstance();
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

  // Streams a bundle into a fresh instance (length, CRC-32 and finite floats checked) and initializes it.
  async load(source: Uint8Array | ReadableStream<Uint8Array>, options: LoadOptions = {}): Promise<Model> {
    return loadModel(await this.newInstance(), source, options);
  }

  // Streams a bundle's section `name` (its bytes alone: a ranged read) into a fresh instance, the header
  // already read (the catalogue's ranged read of the prefix and header).
  async loadText(
    header: BundleHeader,
    name: string,
    source: Uint8Array | ReadableStream<Uint8Array>,
    options: TextLoadOptions = {},
  ): Promise<TextModel> {
    return loadTextModel(await this.newInstance(), header, name, source, options);
  }

  // A fresh instance's exports, its dot path forced when the options ask for one. The builds import
  // nothing (scripts/build-wasm.ts: a failed allocation traps rather than calling abort).
  private async newInstance(): Promise<EngineExports> {
    const e = engineExports(await WebAssembly.instantiate(this.module, {}));
    const forced = this.options.dot;
    if (forced !== undefined && e.setDotPath(DOT_PATHS.indexOf(forced)) !== DOT_PATHS.indexOf(forced)) {
      throw new Error(`this engine build has no ${forced} dot path`);
    }
    return e;
  }
}
