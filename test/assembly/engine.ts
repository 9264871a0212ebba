// Loads both engine builds for the kernel tests and gives typed access to their exports and memory.
import { readFileSync } from "node:fs";
import type { EngineExports } from "../../core/engine/abi.ts";

// The host's ABI (core/engine/abi.ts) plus the kernel exports the tests and benchmarks call directly.
// C[M][N] (=|+=) A[M][K16] B[N][K16]^T with the w7a8 epilogue (docs/ARCHITECTURE.md); pointers into memory.
type Gemm = (
  A: number,
  sa: number,
  za: number,
  asum: number,
  M: number,
  K16: number,
  B: number,
  sb: number,
  bsum: number,
  bias: number,
  N: number,
  C: number,
  ldc: number,
  accumulate: number,
) => void;

export interface Engine extends EngineExports {
  name: string;
  crc32Scalar(crc: number, ptr: number, len: number): number;
  nonFiniteScalar(ptr: number, count: number): number;
  gemmRowTile(): number;
  relaxed(): number;
  gemm: Gemm;
  gemmScalar: Gemm;
  quantizeRows(x: number, ldx: number, M: number, K: number, q: number, sa: number, za: number, asum: number): void;
  quantizeRowsScalar(
    x: number,
    ldx: number,
    M: number,
    K: number,
    q: number,
    sa: number,
    za: number,
    asum: number,
  ): void;
  quantizeShuffled(
    x: number,
    grid: number,
    dim: number,
    s: number,
    q: number,
    sa: number,
    za: number,
    asum: number,
  ): void;
  packRows(
    x: number,
    strideN: number,
    strideK: number,
    N: number,
    K: number,
    out: number,
    sb: number,
    bsum: number,
  ): void;
  packRowsScalar(
    x: number,
    strideN: number,
    strideK: number,
    N: number,
    K: number,
    out: number,
    sb: number,
    bsum: number,
  ): void;
  layerNorm(x: number, M: number, D: number, w: number, b: number, eps: number, out: number): void;
  layerNormScalar(x: number, M: number, D: number, w: number, b: number, eps: number, out: number): void;
  softmax(x: number, M: number, N: number, ld: number, scale: number): void;
  softmaxScalar(x: number, M: number, N: number, ld: number, scale: number): void;
  softmaxQuantize(
    x: number,
    M: number,
    N: number,
    ld: number,
    scale: number,
    q: number,
    sa: number,
    za: number,
    asum: number,
  ): void;
  gelu(x: number, n: number): void;
  geluScalar(x: number, n: number): void;
  quickGelu(x: number, n: number): void;
  quickGeluScalar(x: number, n: number): void;
  geluTanh(x: number, n: number): void;
  geluTanhScalar(x: number, n: number): void;
}

const buildDir = new URL("../../build/", import.meta.url);

export const BUILDS = ["engine.wasm", "engine-relaxed.wasm"] as const;

export function loadEngine(file: (typeof BUILDS)[number]): Engine {
  const module = new WebAssembly.Module(readFileSync(new URL(file, buildDir)));
  const exports = new WebAssembly.Instance(module, {}).exports as unknown as Engine;
  return Object.assign(Object.create(exports), { name: file });
}

// dotPath() / setDotPath() values (assembly/kernels/dot.ts).
export const DOT = { i16: 0, split: 1, fused: 2 } as const;

// Every GEMM path: the baseline build, and the relaxed build forced to each spelling of its dot step
// (whatever this runtime's probe would choose).
export const DOT_VARIANTS = [
  { file: "engine.wasm", dot: DOT.i16 },
  { file: "engine-relaxed.wasm", dot: DOT.split },
  { file: "engine-relaxed.wasm", dot: DOT.fused },
] as const;

export function loadVariant(v: (typeof DOT_VARIANTS)[number]): Engine {
  const e = loadEngine(v.file);
  if (e.setDotPath(v.dot) !== v.dot) throw new Error(`${v.file} has no dot path ${v.dot}`);
  const path = Object.keys(DOT).find((k) => DOT[k as keyof typeof DOT] === v.dot);
  return Object.assign(e, { name: `${v.file} (${path})` });
}

/** Views are made on demand: memory.grow detaches earlier ones. */
export const f32 = (e: Engine, ptr: number, n: number) => new Float32Array(e.memory.buffer, ptr, n);
export const i32 = (e: Engine, ptr: number, n: number) => new Int32Array(e.memory.buffer, ptr, n);
export const i8 = (e: Engine, ptr: number, n: number) => new Int8Array(e.memory.buffer, ptr, n);
export const u8 = (e: Engine, ptr: number, n: number) => new Uint8Array(e.memory.buffer, ptr, n);

/** Copies `data` into fresh engine memory; returns the pointer. */
export function put(e: Engine, data: Float32Array | Int32Array | Uint8Array | Int8Array): number {
  const ptr = e.alloc(Math.max(data.byteLength, 1));
  new Uint8Array(e.memory.buffer, ptr, data.byteLength).set(
    new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
  );
  return ptr;
}

/** Deterministic PRNG (LCG), uniform in [0, 1). */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

export function randomF32(random: () => number, n: number, lo: number, hi: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * random();
  return out;
}

export { K16, N4 } from "../../core/bundle/pack.ts";
