import { dotAdd, fused } from "./dot";

// The register-only int8 dot-product ceiling, for the benchmark: the GEMM's dot step on register operands
// only (2 A vectors x 3 B vectors, six accumulators), no memory traffic, so the GEMM's GMAC/s can be read
// as a fraction of what the CPU and the wasm engine can do at best. Every (A, B) pair differs, or the
// compiler would compute a repeated product once; six accumulators leave V8 enough registers not to spill.
// The A vectors change every iteration (each xored with a B vector: two independent one-cycle chains
// that run beside the multiplies): with loop-invariant operands V8 hoists the dot steps out of the loop,
// which then times six adds (89 GMAC/s instead of ~57); chaining the two xors (a0 ^= a1, a1 ^= a0)
// measured the baseline build 30% low.

/** MACs done by one iteration of dotCeiling. */
export function dotCeilingMacs(): i32 {
  // 6 dot steps; a relaxed dot step (split or fused) is 16 MACs, a dot_i16x8_s step is 8.
  return ASC_FEATURE_RELAXED_SIMD ? 6 * 16 : 6 * 8;
}

/**
 * Runs `iterations` rounds on 64 bytes at ptr (two A vectors, then two B vectors with lanes in [0, 127]);
 * returns a sum so the work cannot be removed.
 */
export function dotCeiling(ptr: usize, iterations: i32): i32 {
  return fused() ? ceilingLoop(ptr, iterations, true) : ceilingLoop(ptr, iterations, false);
}

/** dotCeiling with the dot step's spelling fixed (dot.ts). */
@inline function ceilingLoop(ptr: usize, iterations: i32, fusedStep: bool): i32 {
  let a0 = v128.load(ptr), a1 = v128.load(ptr, 16);
  const b0 = v128.load(ptr, 32), b1 = v128.load(ptr, 48);
  const b2 = i8x16.avgr_u(b0, b1); // a third B vector, still in [0, 127]
  const ones = i16x8.splat(1);
  let c0 = i32x4.splat(0), c1 = i32x4.splat(0), c2 = i32x4.splat(0);
  let c3 = i32x4.splat(0), c4 = i32x4.splat(0), c5 = i32x4.splat(0);
  for (let i = 0; i < iterations; i++) {
    a0 = v128.xor(a0, b1);
    a1 = v128.xor(a1, b0);
    if (ASC_FEATURE_RELAXED_SIMD) {
      c0 = dotAdd(a0, b0, c0, ones, fusedStep);
      c1 = dotAdd(a0, b1, c1, ones, fusedStep);
      c2 = dotAdd(a0, b2, c2, ones, fusedStep);
      c3 = dotAdd(a1, b0, c3, ones, fusedStep);
      c4 = dotAdd(a1, b1, c4, ones, fusedStep);
      c5 = dotAdd(a1, b2, c5, ones, fusedStep);
    } else {
      c0 = i32x4.add(c0, i32x4.dot_i16x8_s(a0, b0));
      c1 = i32x4.add(c1, i32x4.dot_i16x8_s(a0, b1));
      c2 = i32x4.add(c2, i32x4.dot_i16x8_s(a0, b2));
      c3 = i32x4.add(c3, i32x4.dot_i16x8_s(a1, b0));
      c4 = i32x4.add(c4, i32x4.dot_i16x8_s(a1, b1));
      c5 = i32x4.add(c5, i32x4.dot_i16x8_s(a1, b2));
    }
  }
  const s = i32x4.add(i32x4.add(i32x4.add(c0, c1), i32x4.add(c2, c3)), i32x4.add(c4, c5));
  return i32x4.extract_lane(s, 0) + i32x4.extract_lane(s, 1) + i32x4.extract_lane(s, 2) + i32x4.extract_lane(s, 3);
}
