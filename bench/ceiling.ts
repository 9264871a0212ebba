// The int8 SIMD ceiling of this CPU in wasm on one thread: the engine's register-only dot loop
// (`dotCeiling`, the measurement bench/kernels.ts reports), in the build the engine host picks.
import { readFileSync } from "node:fs";
import { join } from "node:path";

interface CeilingExports {
  alloc(bytes: number): number;
  memory: WebAssembly.Memory;
  dotCeiling?(ptr: number, iterations: number): number;
  dotCeilingMacs?(): number;
}

const root = new URL("..", import.meta.url).pathname;

// GMAC/s, best of repeated runs over ~1 s; null when the engine has no ceiling export.
export function int8CeilingGmacs(): number | null {
  const relaxed = readFileSync(join(root, "build/engine-relaxed.wasm"));
  const bytes = WebAssembly.validate(relaxed) ? relaxed : readFileSync(join(root, "build/engine.wasm"));
  const e = new WebAssembly.Instance(new WebAssembly.Module(bytes), {}).exports as unknown as CeilingExports;
  if (!e.dotCeiling || !e.dotCeilingMacs) return null;

  // Operand lanes as the GEMM sees them: activations any int8, weights in [0, 127].
  const ptr = e.alloc(64);
  const lanes = new Int8Array(e.memory.buffer, ptr, 64);
  for (let i = 0; i < 32; i++) lanes[i] = ((i * 37) % 256) - 128;
  for (let i = 32; i < 64; i++) lanes[i] = (i * 29) % 128;

  const iterations = 2_000_000;
  const macs = iterations * e.dotCeilingMacs();
  e.dotCeiling(ptr, iterations);
  let best = Infinity;
  const deadline = performance.now() + 1000;
  do {
    const t0 = performance.now();
    e.dotCeiling(ptr, iterations);
    best = Math.min(best, performance.now() - t0);
  } while (performance.now() < deadline);
  return macs / (best / 1000) / 1e9;
}
