// exp on f32 and f32x4 (Cephes expf): exp(a + b) = 2^n * p(r), n = nearest((a + b) / ln2),
// r = ((a - n * LN2_HI) + b) - n * LN2_LO. LN2_HI has 9 significant bits, so n * LN2_HI and a - n * LN2_HI
// are exact: `a` may carry a large exact part and `b` a small correction (GELU's exp(-x^2 / 2) uses this).
// Relative error about 2 ulp; results below 2^-126 flush to 0. The scalar and vector forms perform the
// same operations in the same order, so they agree bit for bit.

import {
  EXP_MAX, EXP_MIN, LN2_HI, LN2_LO, LOG2E, P0, P1, P2, P3, P4, P5,
  K_EXPONENT_BIAS_BITS, K_EXP_MAX, K_EXP_MIN, K_LN2_HI, K_LN2_LO, K_LOG2E, K_ONE, K_P0, K_ROUNDER, k,
} from "./constants";

/** exp(a + b) for scalars. */
export function expSplit(a: f32, b: f32): f32 {
  const x = min<f32>(a + b, EXP_MAX);
  if (x < EXP_MIN) return 0;
  const n = nearest<f32>(x * LOG2E);
  const r = ((a - n * LN2_HI) + b) - n * LN2_LO;
  const r2 = r * r;
  const p = (((((P0 * r + P1) * r + P2) * r + P3) * r + P4) * r + P5) * r2 + r + 1;
  return p * reinterpret<f32>((<i32>n + 127) << 23);
}

/** exp(a + b) lane-wise, the scalar form's operations in the same order. */
@inline export function expSplit4(a: v128, b: v128): v128 {
  // pmin(a, b) = b < a ? b : a is one minps in V8, min is seven with its NaN rules; with a constant second
  // operand both return the same value for every input, NaN included.
  const x = f32x4.pmin(f32x4.add(a, b), k(K_EXP_MAX));
  // n = nearest(x / ln2) without f32x4.nearest and i32x4.trunc_sat (slow in V8): adding ROUNDER leaves
  // the rounded value in j, and its integer in j's low bits.
  const j = f32x4.add(f32x4.mul(x, k(K_LOG2E)), k(K_ROUNDER));
  const n = f32x4.sub(j, k(K_ROUNDER));
  const r = f32x4.sub(f32x4.add(f32x4.sub(a, f32x4.mul(n, k(K_LN2_HI))), b), f32x4.mul(n, k(K_LN2_LO)));
  const r2 = f32x4.mul(r, r);
  let p = f32x4.add(f32x4.mul(k(K_P0), r), k(K_P0 + 1));
  // Horner's scheme written out: the compiler keeps a loop over the constants as a loop.
  p = f32x4.add(f32x4.mul(p, r), k(K_P0 + 2));
  p = f32x4.add(f32x4.mul(p, r), k(K_P0 + 3));
  p = f32x4.add(f32x4.mul(p, r), k(K_P0 + 4));
  p = f32x4.add(f32x4.mul(p, r), k(K_P0 + 5));
  p = f32x4.add(f32x4.add(f32x4.mul(p, r2), r), k(K_ONE));
  const scale = i32x4.shl(i32x4.sub(j, k(K_EXPONENT_BIAS_BITS)), 23); // 2^n
  // Lanes below EXP_MIN are 0 (their 2^n would not be a normal number).
  return v128.and(f32x4.mul(p, scale), f32x4.ge(x, k(K_EXP_MIN)));
}
