// GELU, gelu(x) = x * Phi(x) = 0.5 * x * erfc(-x / sqrt(2)), on two paths.
//
// Fast path, x >= GELU_EXACT_BELOW (-3), no exp: Phi(-|x|) = R(s)^2 with R = P(s) / Q(s), degrees 6 and 7 in
// s = |x| * 2 / GELU_SAT - 1 in [-1, 1] (scripts/gelu-fit.py: a weighted least-squares fit of Phi(-|x|)^(1/2),
// error 6.4e-9 relative to Phi(-|x|) for |x| <= 3, under 1e-11 absolute above). The square root halves the
// range R has to follow (0.037..0.71 instead of 0.0013..0.5), and s in [-1, 1] keeps Horner's sums from
// cancelling; the f32 rounding dominates: within 9.94e-7 of float64 GELU, relative, for every f32 checked
// in [-3, 5.3]. Phi(x) = x < 0 ? R^2 : 1 - R^2, and 1 above GELU_SAT (1 - Phi(5.3) = 5.8e-8).
//
// Exact path, x < -3 (Phi(x) < 1.35e-3, falling like exp(-x^2 / 2), which no low-degree rational follows in
// relative terms): erfc(z), z >= 0, uses the Chebyshev fit of Numerical Recipes (erfcc, fractional error
// < 1.2e-7 for all z): erfc(z) = t * exp(-z^2 + poly(t)), t = 1 / (1 + z / 2). The exponent -z^2 = -x^2 / 2
// is split as -xh^2 / 2 (exact: xh keeps the top 12 bits of x) plus the small -(x - xh)(x + xh) / 2, and both
// parts go to expSplit, so the tail stays accurate in relative terms: Phi(x) = erfc(|x| / sqrt(2)) / 2.
// The vector kernel runs it only for a 4-lane vector with a lane below -3, rare in real activations.
import { expSplit, expSplit4 } from "./exp";
import {
  C0, C1, C2, C3, C4, C5, C6, C7, C8, C9, GELU_EXACT_BELOW, GELU_SAT, GELU_SCALE, HIGH_MASK, SQRT1_2,
  R_P0, R_P1, R_P2, R_P3, R_P4, R_P5, R_P6, R_Q1, R_Q2, R_Q3, R_Q4, R_Q5, R_Q6, R_Q7,
  K_C0, K_GELU_EXACT_BELOW, K_GELU_SAT, K_GELU_SCALE, K_HALF, K_HIGH_MASK, K_ONE, K_R_P0, K_R_Q1, K_SQRT1_2,
  K_ZERO, k, QUICK_GELU_NEG, TANH_GELU_A, TANH_GELU_B, K_QUICK_GELU_NEG, K_TANH_GELU_A, K_TANH_GELU_B,
} from "./constants";

/** GELU of one value at or above GELU_EXACT_BELOW (NaN included), without exp. */
@inline function geluFast1(x: f32): f32 {
  const ax = abs<f32>(x);
  const s = ax * GELU_SCALE - 1;
  const p = (((((R_P6 * s + R_P5) * s + R_P4) * s + R_P3) * s + R_P2) * s + R_P1) * s + R_P0;
  const q = ((((((R_Q7 * s + R_Q6) * s + R_Q5) * s + R_Q4) * s + R_Q3) * s + R_Q2) * s + R_Q1) * s + 1;
  const r = p / q;
  const low = ax <= GELU_SAT ? r * r : 0; // Phi(-|x|); 0 for NaN
  return x * (x < 0 ? low : 1 - low);
}

/** geluFast1 on four lanes, the same operations in the same order. */
@inline function geluFast4(v: v128): v128 {
  const ax = f32x4.abs(v);
  const s = f32x4.sub(f32x4.mul(ax, k(K_GELU_SCALE)), k(K_ONE));
  // Horner's scheme written out: the compiler keeps a loop over the constants as a loop.
  let p = f32x4.add(f32x4.mul(k(K_R_P0 + 6), s), k(K_R_P0 + 5));
  p = f32x4.add(f32x4.mul(p, s), k(K_R_P0 + 4));
  p = f32x4.add(f32x4.mul(p, s), k(K_R_P0 + 3));
  p = f32x4.add(f32x4.mul(p, s), k(K_R_P0 + 2));
  p = f32x4.add(f32x4.mul(p, s), k(K_R_P0 + 1));
  p = f32x4.add(f32x4.mul(p, s), k(K_R_P0));
  let q = f32x4.add(f32x4.mul(k(K_R_Q1 + 6), s), k(K_R_Q1 + 5));
  q = f32x4.add(f32x4.mul(q, s), k(K_R_Q1 + 4));
  q = f32x4.add(f32x4.mul(q, s), k(K_R_Q1 + 3));
  q = f32x4.add(f32x4.mul(q, s), k(K_R_Q1 + 2));
  q = f32x4.add(f32x4.mul(q, s), k(K_R_Q1 + 1));
  q = f32x4.add(f32x4.mul(q, s), k(K_R_Q1));
  q = f32x4.add(f32x4.mul(q, s), k(K_ONE));
  const r = f32x4.div(p, q);
  const low = v128.and(f32x4.mul(r, r), f32x4.le(ax, k(K_GELU_SAT)));
  return f32x4.mul(v, v128.bitselect(low, f32x4.sub(k(K_ONE), low), f32x4.lt(v, k(K_ZERO))));
}

/** GELU of one value on the exact path. */
@inline function geluExact1(x: f32): f32 {
  const ax = abs<f32>(x);
  const t: f32 = 1 / (1 + 0.5 * (ax * SQRT1_2));
  const poly = C0 + t * (C1 + t * (C2 + t * (C3 + t * (C4 + t * (C5 + t * (C6 + t * (C7 + t * (C8 + t * C9))))))));
  const xh = reinterpret<f32>(reinterpret<i32>(ax) & HIGH_MASK);
  const half = t * expSplit(-(xh * xh) * 0.5, poly - (ax - xh) * (ax + xh) * 0.5) * 0.5; // erfc(|x|/sqrt2)/2
  return x * (x < 0 ? half : 1 - half);
}

/** geluExact1 on four lanes, the same operations in the same order. */
@inline function geluExact4(v: v128): v128 {
  const ax = f32x4.abs(v);
  const t = f32x4.div(k(K_ONE), f32x4.add(k(K_ONE), f32x4.mul(k(K_HALF), f32x4.mul(ax, k(K_SQRT1_2)))));
  // Horner's scheme written out: the compiler keeps a loop over the constants as a loop.
  let poly = f32x4.add(k(K_C0 + 8), f32x4.mul(t, k(K_C0 + 9)));
  poly = f32x4.add(k(K_C0 + 7), f32x4.mul(t, poly));
  poly = f32x4.add(k(K_C0 + 6), f32x4.mul(t, poly));
  poly = f32x4.add(k(K_C0 + 5), f32x4.mul(t, poly));
  poly = f32x4.add(k(K_C0 + 4), f32x4.mul(t, poly));
  poly = f32x4.add(k(K_C0 + 3), f32x4.mul(t, poly));
  poly = f32x4.add(k(K_C0 + 2), f32x4.mul(t, poly));
  poly = f32x4.add(k(K_C0 + 1), f32x4.mul(t, poly));
  poly = f32x4.add(k(K_C0), f32x4.mul(t, poly));
  const xh = v128.and(ax, k(K_HIGH_MASK));
  const a = f32x4.mul(f32x4.neg(f32x4.mul(xh, xh)), k(K_HALF));
  const b = f32x4.sub(poly, f32x4.mul(f32x4.mul(f32x4.sub(ax, xh), f32x4.add(ax, xh)), k(K_HALF)));
  const half = f32x4.mul(f32x4.mul(t, expSplit4(a, b)), k(K_HALF));
  return f32x4.mul(v, v128.bitselect(half, f32x4.sub(k(K_ONE), half), f32x4.lt(v, k(K_ZERO))));
}

/** GELU of one value: the exact path below GELU_EXACT_BELOW, the fast one elsewhere. */
function gelu1(x: f32): f32 {
  return x < GELU_EXACT_BELOW ? geluExact1(x) : geluFast1(x);
}

/** gelu1 on four lanes; the exact path runs only when a lane needs it. */
@inline function gelu4(v: v128): v128 {
  const fast = geluFast4(v);
  const exact = f32x4.lt(v, k(K_GELU_EXACT_BELOW));
  return v128.any_true(exact) ? v128.bitselect(geluExact4(v), fast, exact) : fast;
}

/** In place over n values. */
export function gelu(x: usize, n: i32): void {
  const n4 = n & ~3, n16 = n & ~15;
  let i = 0;
  // Four independent vectors per iteration: one gelu4 is a long dependency chain (a division after two
  // polynomials), and four in flight keep the pipelines busy.
  for (; i < n16; i += 16) {
    const p = x + (<usize>i << 2);
    const y0 = gelu4(v128.load(p));
    const y1 = gelu4(v128.load(p, 16));
    const y2 = gelu4(v128.load(p, 32));
    const y3 = gelu4(v128.load(p, 48));
    v128.store(p, y0);
    v128.store(p, y1, 16);
    v128.store(p, y2, 32);
    v128.store(p, y3, 48);
  }
  for (; i < n4; i += 4) {
    const p = x + (<usize>i << 2);
    v128.store(p, gelu4(v128.load(p)));
  }
  for (let i = n4; i < n; i++) {
    const p = x + (<usize>i << 2);
    store<f32>(p, gelu1(load<f32>(p)));
  }
}

/** Scalar twin of gelu. */
export function geluScalar(x: usize, n: i32): void {
  for (let i = 0; i < n; i++) {
    const p = x + (<usize>i << 2);
    store<f32>(p, gelu1(load<f32>(p)));
  }
}

// The sigmoid-form GELUs of CLIP and SigLIP: x * sigmoid(z) = x / (1 + exp(-z)), with z = 1.702 x
// (quick_gelu) or z = 2u, u = sqrt(2 / pi) (x + 0.044715 x^3) (gelu_pytorch_tanh, since
// 0.5 x (1 + tanh(u)) = x * sigmoid(2u)). exp(-z) from expSplit, clamped at its EXP_MAX: there the
// result is already below x * 1e-38. The vector and scalar forms perform the same operations in the same
// order, so they agree bit for bit.

/** quick_gelu of one value. */
@inline function quickGelu1(x: f32): f32 {
  return x / (1 + expSplit(x * QUICK_GELU_NEG, 0));
}

@inline function quickGelu4(v: v128): v128 {
  return f32x4.div(v, f32x4.add(k(K_ONE), expSplit4(f32x4.mul(v, k(K_QUICK_GELU_NEG)), k(K_ZERO))));
}

/** gelu_pytorch_tanh of one value: -2u = x (A + B x^2). */
@inline function geluTanh1(x: f32): f32 {
  return x / (1 + expSplit(x * (TANH_GELU_A + TANH_GELU_B * (x * x)), 0));
}

@inline function geluTanh4(v: v128): v128 {
  const u = f32x4.mul(v, f32x4.add(k(K_TANH_GELU_A), f32x4.mul(k(K_TANH_GELU_B), f32x4.mul(v, v))));
  return f32x4.div(v, f32x4.add(k(K_ONE), expSplit4(u, k(K_ZERO))));
}

/** quick_gelu (CLIP) in place over n values. */
export function quickGelu(x: usize, n: i32): void {
  const n4 = n & ~3;
  for (let i = 0; i < n4; i += 4) {
    const p = x + (<usize>i << 2);
    v128.store(p, quickGelu4(v128.load(p)));
  }
  for (let i = n4; i < n; i++) {
    const p = x + (<usize>i << 2);
    store<f32>(p, quickGelu1(load<f32>(p)));
  }
}

/** Scalar twin of quickGelu. */
export function quickGeluScalar(x: usize, n: i32): void {
  for (let i = 0; i < n; i++) {
    const p = x + (<usize>i << 2);
    store<f32>(p, quickGelu1(load<f32>(p)));
  }
}

/** gelu_pytorch_tanh (SigLIP) in place over n values. */
export function geluTanh(x: usize, n: i32): void {
  const n4 = n & ~3;
  for (let i = 0; i < n4; i += 4) {
    const p = x + (<usize>i << 2);
    v128.store(p, geluTanh4(v128.load(p)));
  }
  for (let i = n4; i < n; i++) {
    const p = x + (<usize>i << 2);
    store<f32>(p, geluTanh1(load<f32>(p)));
  }
}

/** Scalar twin of geluTanh. */
export function geluTanhScalar(x: usize, n: i32): void {
  for (let i = 0; i < n; i++) {
    const p = x + (<usize>i << 2);
    store<f32>(p, geluTanh1(load<f32>(p)));
  }
}
