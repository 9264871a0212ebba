// The float kernels' constants (exp.ts, gelu.ts), as scalars and as one table of vector constants.
// A vector constant is stored as four equal lanes in memory: V8 rebuilds a v128.const at every use (three
// instructions), while a load from here is one and can fold into the arithmetic.

// exp (Cephes expf; exp.ts explains the range reduction)
@lazy export const LOG2E: f32 = 1.44269504088896341;
@lazy export const LN2_HI: f32 = 0.693359375;
@lazy export const LN2_LO: f32 = -2.12194440e-4;
/** Below this, exp is under 2^-126: return 0. */
@lazy export const EXP_MIN: f32 = -87.33;
/** Above this, 2^n would overflow the exponent field. */
@lazy export const EXP_MAX: f32 = 88.3;
/** 1.5 * 2^23: adding it rounds an f32 of magnitude < 2^22 to an integer (ties to even) in the low mantissa bits. */
@lazy export const ROUNDER: f32 = 12582912;
@lazy const ROUNDER_BITS: i32 = 0x4b400000;
/** ROUNDER_BITS - 127: subtracting it from the rounded bits gives n + 127, the biased exponent of 2^n. */
@lazy const EXPONENT_BIAS_BITS: i32 = ROUNDER_BITS - 127;
@lazy export const P0: f32 = 1.9875691500e-4;
@lazy export const P1: f32 = 1.3981999507e-3;
@lazy export const P2: f32 = 8.3334519073e-3;
@lazy export const P3: f32 = 4.1665795894e-2;
@lazy export const P4: f32 = 1.6666665459e-1;
@lazy export const P5: f32 = 5.0000001201e-1;

// GELU (the erfc fit of gelu.ts)
@lazy export const SQRT1_2: f32 = 0.7071067811865476;
@lazy export const C0: f32 = -1.26551223;
@lazy export const C1: f32 = 1.00002368;
@lazy export const C2: f32 = 0.37409196;
@lazy export const C3: f32 = 0.09678418;
@lazy export const C4: f32 = -0.18628806;
@lazy export const C5: f32 = 0.27886807;
@lazy export const C6: f32 = -1.13520398;
@lazy export const C7: f32 = 1.48851587;
@lazy export const C8: f32 = -0.82215223;
@lazy export const C9: f32 = 0.17087277;
/** Clears the low 12 bits of an f32: the high part keeps 12 significant bits, so its square is exact. */
@lazy export const HIGH_MASK: i32 = 0xfffff000;

// GELU without exp (gelu.ts): Phi(-|x|) = R(s)^2, R = P(s) / Q(s) with s = |x| * 2 / GELU_SAT - 1, for
// GELU_EXACT_BELOW <= x <= GELU_SAT (scripts/gelu-fit.py fits P and Q).
/** Below this, a lane takes the exact path: Phi(x) < 1.35e-3 falls off like exp(-x^2 / 2), which R^2 cannot follow. */
@lazy export const GELU_EXACT_BELOW: f32 = -3;
/** Above this, Phi(x) = 1 to within 5.8e-8 and GELU(x) = x. */
@lazy export const GELU_SAT: f32 = 5.3;
@lazy export const GELU_SCALE: f32 = 3.773584962e-1; // 2 / GELU_SAT
@lazy export const R_P0: f32 = 6.343964487e-2;
@lazy export const R_P1: f32 = -1.701430976e-1;
@lazy export const R_P2: f32 = 1.749366373e-1;
@lazy export const R_P3: f32 = -7.422592491e-2;
@lazy export const R_P4: f32 = -6.079275627e-4;
@lazy export const R_P5: f32 = 1.056932565e-2;
@lazy export const R_P6: f32 = -2.496111672e-3;
@lazy export const R_Q1: f32 = 1.239854693;
@lazy export const R_Q2: f32 = 1.539866209;
@lazy export const R_Q3: f32 = 1.129546642;
@lazy export const R_Q4: f32 = 7.352139354e-1;
@lazy export const R_Q5: f32 = 3.349629939e-1;
@lazy export const R_Q6: f32 = 1.161815003e-1;
@lazy export const R_Q7: f32 = 2.352945507e-2;

// The sigmoid-form GELUs (gelu.ts): x * sigmoid(z) = x / (1 + exp(-z)).
/** quick_gelu: z = 1.702 x; this is -1.702. */
@lazy export const QUICK_GELU_NEG: f32 = -1.702;
/** gelu_pytorch_tanh: 0.5 x (1 + tanh(u)) = x * sigmoid(2u), u = sqrt(2 / pi) (x + 0.044715 x^3); -2 sqrt(2 / pi). */
@lazy export const TANH_GELU_A: f32 = -1.5957691216057308;
/** -2 sqrt(2 / pi) * 0.044715. */
@lazy export const TANH_GELU_B: f32 = -0.07135481627260025;

@lazy const ONE: f32 = 1;
@lazy const HALF: f32 = 0.5;
@lazy const ZERO: f32 = 0;

@lazy const VECTOR_CONSTANTS: usize = memory.data<f32>([
  ONE, ONE, ONE, ONE,
  HALF, HALF, HALF, HALF,
  ZERO, ZERO, ZERO, ZERO,
  EXP_MAX, EXP_MAX, EXP_MAX, EXP_MAX,
  EXP_MIN, EXP_MIN, EXP_MIN, EXP_MIN,
  LOG2E, LOG2E, LOG2E, LOG2E,
  ROUNDER, ROUNDER, ROUNDER, ROUNDER,
  LN2_HI, LN2_HI, LN2_HI, LN2_HI,
  LN2_LO, LN2_LO, LN2_LO, LN2_LO,
  P0, P0, P0, P0,
  P1, P1, P1, P1,
  P2, P2, P2, P2,
  P3, P3, P3, P3,
  P4, P4, P4, P4,
  P5, P5, P5, P5,
  reinterpret<f32>(EXPONENT_BIAS_BITS), reinterpret<f32>(EXPONENT_BIAS_BITS),
  reinterpret<f32>(EXPONENT_BIAS_BITS), reinterpret<f32>(EXPONENT_BIAS_BITS),
  SQRT1_2, SQRT1_2, SQRT1_2, SQRT1_2,
  C0, C0, C0, C0,
  C1, C1, C1, C1,
  C2, C2, C2, C2,
  C3, C3, C3, C3,
  C4, C4, C4, C4,
  C5, C5, C5, C5,
  C6, C6, C6, C6,
  C7, C7, C7, C7,
  C8, C8, C8, C8,
  C9, C9, C9, C9,
  reinterpret<f32>(HIGH_MASK), reinterpret<f32>(HIGH_MASK), reinterpret<f32>(HIGH_MASK), reinterpret<f32>(HIGH_MASK),
  GELU_SCALE, GELU_SCALE, GELU_SCALE, GELU_SCALE,
  GELU_EXACT_BELOW, GELU_EXACT_BELOW, GELU_EXACT_BELOW, GELU_EXACT_BELOW,
  GELU_SAT, GELU_SAT, GELU_SAT, GELU_SAT,
  R_P0, R_P0, R_P0, R_P0,
  R_P1, R_P1, R_P1, R_P1,
  R_P2, R_P2, R_P2, R_P2,
  R_P3, R_P3, R_P3, R_P3,
  R_P4, R_P4, R_P4, R_P4,
  R_P5, R_P5, R_P5, R_P5,
  R_P6, R_P6, R_P6, R_P6,
  R_Q1, R_Q1, R_Q1, R_Q1,
  R_Q2, R_Q2, R_Q2, R_Q2,
  R_Q3, R_Q3, R_Q3, R_Q3,
  R_Q4, R_Q4, R_Q4, R_Q4,
  R_Q5, R_Q5, R_Q5, R_Q5,
  R_Q6, R_Q6, R_Q6, R_Q6,
  R_Q7, R_Q7, R_Q7, R_Q7,
  QUICK_GELU_NEG, QUICK_GELU_NEG, QUICK_GELU_NEG, QUICK_GELU_NEG,
  TANH_GELU_A, TANH_GELU_A, TANH_GELU_A, TANH_GELU_A,
  TANH_GELU_B, TANH_GELU_B, TANH_GELU_B, TANH_GELU_B,
], 16);

// Rows of VECTOR_CONSTANTS.
@lazy export const K_ONE: usize = 0;
@lazy export const K_HALF: usize = 1;
@lazy export const K_ZERO: usize = 2;
@lazy export const K_EXP_MAX: usize = 3;
@lazy export const K_EXP_MIN: usize = 4;
@lazy export const K_LOG2E: usize = 5;
@lazy export const K_ROUNDER: usize = 6;
@lazy export const K_LN2_HI: usize = 7;
@lazy export const K_LN2_LO: usize = 8;
@lazy export const K_P0: usize = 9; // P0..P5 in rows 9..14
@lazy export const K_EXPONENT_BIAS_BITS: usize = 15;
@lazy export const K_SQRT1_2: usize = 16;
@lazy export const K_C0: usize = 17; // C0..C9 in rows 17..26
@lazy export const K_HIGH_MASK: usize = 27;
@lazy export const K_GELU_SCALE: usize = 28;
@lazy export const K_GELU_EXACT_BELOW: usize = 29;
@lazy export const K_GELU_SAT: usize = 30;
@lazy export const K_R_P0: usize = 31; // R_P0..R_P6 in rows 31..37
@lazy export const K_R_Q1: usize = 38; // R_Q1..R_Q7 in rows 38..44
@lazy export const K_QUICK_GELU_NEG: usize = 45;
@lazy export const K_TANH_GELU_A: usize = 46;
@lazy export const K_TANH_GELU_B: usize = 47;

/** The vector constant in row `row` of VECTOR_CONSTANTS. */
@inline export function k(row: usize): v128 {
  return v128.load(VECTOR_CONSTANTS + (row << 4));
}
