// Every dot path a model runs on (the baseline build, the relaxed build split and fused): the fidelity
// tests run each and check that they agree bit for bit.
import { readFileSync } from "node:fs";
import type { EngineOptions } from "../../core/engine/index.ts";

const build = (name: string) => new WebAssembly.Module(readFileSync(new URL(`../../build/${name}`, import.meta.url)));
export const engineModules = { baseline: build("engine.wasm"), relaxed: build("engine-relaxed.wasm") };

export const DOT_VARIANTS: [WebAssembly.Module, EngineOptions][] = [
  [engineModules.baseline, { dot: "i16" }],
  [engineModules.relaxed, { dot: "split" }],
  [engineModules.relaxed, { dot: "fused" }],
];
