// The int8 dot step of the relaxed build, in one of two spellings chosen once per instance:
//
// split: i16x8.relaxed_dot_i8x16_i7x16_s (pmaddubsw on x86), then i32x4.dot_i16x8_s with a register of
//   ones (one pmaddwd) to widen into the accumulator. Two instructions on every x86.
// fused: i32x4.relaxed_dot_i8x16_i7x16_add_s. One vpdpbusd (AVX-VNNI) or vpdpbssd (AVX-VNNI-INT8, Arm
//   sdot) where the runtime lowers it natively, as V8 15 does; elsewhere (V8 12, or no VNNI) V8 spells it
//   as five instructions and reloads a constant at every use, 0.75-0.82x the split form.
//
// Both give the same integers for b in [0, 127], as every B byte is (q + 64, q in [-63, 63]): no i16 lane
// of the split form saturates (|2 * 128 * 127| < 2^15), and vpdpbusd's unsigned b equals the signed one.
// They differ for b = 0xFF, which is how probeDot() tells the lowering apart.

/** dotPath() values. */
export const DOT_SPLIT_I16: i32 = 0; // baseline build: sign-extending loads and i32x4.dot_i16x8_s
export const DOT_SPLIT: i32 = 1; // relaxed build, split spelling
export const DOT_FUSED: i32 = 2; // relaxed build, fused spelling

/** probeDot() values of lane 0 for a = 127 in every lane, b = 0xFF, acc = 0. */
@lazy const PROBE_PMADDUBSW: i32 = 65534; // b unsigned, products summed in saturating i16 pairs
@lazy const PROBE_VPDPBUSD: i32 = 129540; // b unsigned, 4 * 127 * 255 straight into i32
@lazy const PROBE_VPDPBSSD: i32 = -508; // b signed: 4 * 127 * -1

// The probe's operands, in memory so that the compiler cannot evaluate the instruction ahead of time.
@lazy const PROBE_OPERANDS: usize = memory.data<u8>([127, 0xff], 16);

/**
 * Lane 0 of i32x4.relaxed_dot_i8x16_i7x16_add_s(splat 127, splat 0xFF, 0) as this runtime computes it
 * (0 in the baseline build, which has no relaxed SIMD).
 */
export function probeDot(): i32 {
  if (!ASC_FEATURE_RELAXED_SIMD) return 0;
  const a = i8x16.splat(load<i8>(PROBE_OPERANDS));
  const b = i8x16.splat(load<i8>(PROBE_OPERANDS, 1));
  return i32x4.extract_lane(i32x4.relaxed_dot_i8x16_i7x16_add_s(a, b, i32x4.splat(0)), 0);
}

/** The path a probe value calls for: fused where one instruction does the whole step. */
function pathFor(probe: i32): i32 {
  if (!ASC_FEATURE_RELAXED_SIMD) return DOT_SPLIT_I16;
  return probe == PROBE_VPDPBUSD || probe == PROBE_VPDPBSSD ? DOT_FUSED : DOT_SPLIT;
}

// Set once when the instance starts (and by setDotPath in tests and benchmarks); read by the GEMM and
// the ceiling outside their inner loops.
let path: i32 = pathFor(probeDot());

/** The dot path the kernels take: DOT_SPLIT_I16, DOT_SPLIT or DOT_FUSED. */
export function dotPath(): i32 {
  return path;
}

/**
 * Forces a path (tests, benchmarks): DOT_SPLIT or DOT_FUSED in the relaxed build, DOT_SPLIT_I16 in the
 * baseline; -1 (a path this build lacks, or no path) reverts to the probe's choice. Returns the path taken.
 */
export function setDotPath(wanted: i32): i32 {
  const available = ASC_FEATURE_RELAXED_SIMD ? wanted == DOT_SPLIT || wanted == DOT_FUSED : wanted == DOT_SPLIT_I16;
  path = available ? wanted : pathFor(probeDot());
  return path;
}

/** Whether the kernels take the fused spelling. */
@inline export function fused(): bool {
  return ASC_FEATURE_RELAXED_SIMD && path == DOT_FUSED;
}

/**
 * acc + the relaxed dot of a (i8) and b (i7): four sums of four products per lane. `ones` is
 * i16x8.splat(1), kept in a register by the caller for the split spelling (the widening pairwise add is
 * then one pmaddwd). `fusedStep` is a constant at every call site, so each caller compiles to one spelling.
 */
@inline export function dotAdd(a: v128, b: v128, acc: v128, ones: v128, fusedStep: bool): v128 {
  if (fusedStep) return i32x4.relaxed_dot_i8x16_i7x16_add_s(a, b, acc);
  return i32x4.add(acc, i32x4.dot_i16x8_s(i16x8.relaxed_dot_i8x16_i7x16_s(a, b), ones));
}
