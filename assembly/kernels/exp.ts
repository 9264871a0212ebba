// exp on f32 and f32x4 (Cephes expf): exp(a + b) = 2^n * p(r), n = nearest((a + b) / ln2),
// r = ((a - n * LN2_HI) + b) - n * LN2_LO. LN2_HI has 9 significant bits, so n * LN2_HI and a - n * LN2_HI
// are exact: `a` may carry a large exact part and `b` a small correction (GELU's exp(-x^2 / 2) uses this).
// Relative error about 2 ulp; results below 2^-126 flush to 0. The scalar and vector forms perform the
// same operations in the same order, so they agree bit for bit.

@lazy const LOG2E: f32 = 1.44269504088896341;
@lazy const LN2_HI: f32 = 0.693359375;
@lazy const LN2_LO: f32 = -2.12194440e-4;
/** Below this, exp is under 2^-126: return 0. */
@lazy const EXP_MIN: f32 = -87.33;
/** Above this, 2^n would overflow the exponent field. */
@lazy const EXP_MAX: f32 = 88.3;
/** 1.5 * 2^23: adding it rounds an f32 of magnitude < 2^22 to an integer (ties to even) in the low mantissa bits. */
@lazy const ROUNDER: f32 = 12582912;
@lazy const ROUNDER_BITS: i32 = 0x4b400000;
/** ROUNDER_BITS - 127: subtracting it from the rounded bits gives n + 127, the biased exponent of 2^n. */
@lazy const EXPONENT_BIAS_BITS: i32 = ROUNDER_BITS - 127;
@lazy const ONE: f32 = 1;
@lazy const P0: f32 = 1.9875691500e-4;
@lazy const P1: f32 = 1.3981999507e-3;
@lazy const P2: f32 = 8.3334519073e-3;
@lazy const P3: f32 = 4.1665795894e-2;
@lazy const P4: f32 = 1.6666665459e-1;
@lazy const P5: f32 = 5.0000001201e-1;

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

// The vector constants, each as four equal lanes in memory: V8 rebuilds a v128.const at every use
// (three instructions), while a load from here is one and can fold into the arithmetic.
@lazy const VECTOR_CONSTANTS: usize = memory.data<f32>([
  EXP_MAX, EXP_MAX, EXP_MAX, EXP_MAX,
  EXP_MIN, EXP_MIN, EXP_MIN, EXP_MIN,
  LOG2E, LOG2E, LOG2E, LOG2E,
  ROUNDER, ROUNDER, ROUNDER, ROUNDER,
  LN2_HI, LN2_HI, LN2_HI, LN2_HI,
  LN2_LO, LN2_LO, LN2_LO, LN2_LO,
  ONE, ONE, ONE, ONE,
  P0, P0, P0, P0,
  P1, P1, P1, P1,
  P2, P2, P2, P2,
  P3, P3, P3, P3,
  P4, P4, P4, P4,
  P5, P5, P5, P5,
  reinterpret<f32>(EXPONENT_BIAS_BITS), reinterpret<f32>(EXPONENT_BIAS_BITS),
  reinterpret<f32>(EXPONENT_BIAS_BITS), reinterpret<f32>(EXPONENT_BIAS_BITS),
], 16);

/** The vector constant in row `row` of VECTOR_CONSTANTS. */
@inline function k(row: usize): v128 {
  return v128.load(VECTOR_CONSTANTS + (row << 4));
}
@lazy const K_EXP_MAX: usize = 0;
@lazy const K_EXP_MIN: usize = 1;
@lazy const K_LOG2E: usize = 2;
@lazy const K_ROUNDER: usize = 3;
@lazy const K_LN2_HI: usize = 4;
@lazy const K_LN2_LO: usize = 5;
@lazy const K_ONE: usize = 6;
@lazy const K_P0: usize = 7; // P0..P5 in rows 7..12
@lazy const K_EXPONENT_BIAS_BITS: usize = 13;

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
