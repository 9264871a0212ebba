// Node side of the engine host: the wasm builds from build/ and bundles streamed from disk.
import { createReadStream } from "node:fs";
import { readFile } from "node:fs/promises";
import { Readable } from "node:stream";
import { Engine } from "../core/engine/index.ts";
import { installDecodeKernels } from "../core/image/kernels.ts";
import type { Model } from "../core/engine/model.ts";
import { DEFAULT_LIMITS, type Limits } from "../core/limits.ts";

const root = new URL("..", import.meta.url);

export const DEFAULT_MODEL = new URL("models/default/fashion-vit.evit", root).pathname;

// What the CLI accepts: the Worker's defaults (core/limits.ts).
export const CLI_LIMITS: Limits = DEFAULT_LIMITS;

const read = (name: string) =>
  readFile(new URL(`build/${name}`, root)).catch(() => {
    throw new Error(`build/${name} is missing: run \`npm run build:wasm\``);
  });

// The image decoders' wasm kernels (build/decode.wasm), as the Worker installs them.
export async function installNodeDecodeKernels(): Promise<void> {
  installDecodeKernels(await WebAssembly.compile(await read("decode.wasm")));
}

// The relaxed-SIMD build when this Node accepts it, else the baseline SIMD build; the decode kernels with it.
export async function nodeEngine(): Promise<Engine> {
  await installNodeDecodeKernels();
  const [baseline, relaxed] = await Promise.all([read("engine.wasm"), read("engine-relaxed.wasm")]);
  const bytes = WebAssembly.validate(relaxed) ? relaxed : baseline;
  return Engine.instantiate(await WebAssembly.compile(bytes));
}

// Streams the file through the same loader the Worker uses on an R2 body.
export async function loadModelFile(engine: Engine, path: string): Promise<Model> {
  const stream = Readable.toWeb(createReadStream(path, { highWaterMark: 1 << 20 })) as ReadableStream<Uint8Array>;
  return engine.load(stream);
}
