// Finite check over f32 data: a value is NaN or +-Inf exactly when its exponent bits are all ones. The
// loader runs it over every float tensor of a bundle in place, after streaming (no copy out of memory);
// the host runs it over the logits and hidden states before they leave the engine.

@lazy const EXPONENT: i32 = 0x7f800000;

/** Index of the first non-finite of `count` f32 values at `ptr`, or -1 when all are finite. */
export function nonFinite(ptr: usize, count: i32): i32 {
  const mask = i32x4.splat(EXPONENT);
  let i = 0;
  // four lanes at a time; only a block that has a non-finite value is searched lane by lane
  for (; i + 4 <= count; i += 4) {
    const bits = v128.and(v128.load(ptr + (<usize>i << 2)), mask);
    if (v128.any_true(i32x4.eq(bits, mask))) return i + nonFiniteScalar(ptr + (<usize>i << 2), 4);
  }
  const rest = nonFiniteScalar(ptr + (<usize>i << 2), count - i);
  return rest < 0 ? -1 : i + rest;
}

/** Scalar twin of nonFinite. */
export function nonFiniteScalar(ptr: usize, count: i32): i32 {
  for (let i = 0; i < count; i++) {
    if ((load<i32>(ptr + (<usize>i << 2)) & EXPONENT) == EXPONENT) return i;
  }
  return -1;
}
