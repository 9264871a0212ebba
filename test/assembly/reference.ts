// Plain float64 references for the kernel and forward-pass tests, written from the definitions
// (not from the engine's code).

export { cosine } from "../../bench/stats.ts";

/** erfc(z) in float64: power series of erf for |z| < 3, continued fraction (modified Lentz) beyond. */
export function erfc(z: number): number {
  if (z < 0) return 2 - erfc(-z);
  if (z < 3) {
    // erf(z) = 2/sqrt(pi) * sum_n (-1)^n z^(2n+1) / (n! (2n+1))
    let term = z,
      sum = z;
    for (let n = 1; n < 200; n++) {
      term *= (-z * z) / n;
      sum += term / (2 * n + 1);
      if (Math.abs(term / (2 * n + 1)) < 1e-17 * Math.abs(sum)) break;
    }
    return 1 - (2 / Math.sqrt(Math.PI)) * sum;
  }
  // erfc(z) = exp(-z^2)/sqrt(pi) * 1/(z + (1/2)/(z + 1/(z + (3/2)/(z + ...))))
  const tiny = 1e-300;
  let f = z,
    C = z,
    D = 0;
  for (let n = 1; n < 500; n++) {
    const a = n / 2;
    D = z + a * D;
    D = Math.abs(D) < tiny ? 1 / tiny : 1 / D;
    C = z + a / C;
    if (Math.abs(C) < tiny) C = tiny;
    const delta = C * D;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return Math.exp(-z * z) / Math.sqrt(Math.PI) / f;
}

/** GELU, exact erf form: x * Phi(x) = x / 2 * erfc(-x / sqrt(2)). */
export function gelu(x: number): number {
  return 0.5 * x * erfc(-x / Math.SQRT2);
}

/** y[M][N] = x[M][K] W[N][K]^T + b. */
export function linear(
  x: Float64Array,
  M: number,
  K: number,
  W: Float32Array,
  b: Float32Array | null,
  N: number,
): Float64Array {
  const y = new Float64Array(M * N);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let s = b ? b[n] : 0;
      for (let k = 0; k < K; k++) s += x[m * K + k] * W[n * K + k];
      y[m * N + n] = s;
    }
  }
  return y;
}

export function layerNorm(
  x: Float64Array,
  M: number,
  D: number,
  w: ArrayLike<number>,
  b: ArrayLike<number>,
  eps: number,
): Float64Array {
  const y = new Float64Array(M * D);
  for (let m = 0; m < M; m++) {
    let mean = 0;
    for (let k = 0; k < D; k++) mean += x[m * D + k];
    mean /= D;
    let v = 0;
    for (let k = 0; k < D; k++) v += (x[m * D + k] - mean) ** 2;
    const inv = 1 / Math.sqrt(v / D + eps);
    for (let k = 0; k < D; k++) y[m * D + k] = (x[m * D + k] - mean) * inv * w[k] + b[k];
  }
  return y;
}

/** Row softmax of x * scale. */
export function softmax(x: ArrayLike<number>, M: number, N: number, scale: number): Float64Array {
  const y = new Float64Array(M * N);
  for (let m = 0; m < M; m++) {
    let hi = -Infinity;
    for (let n = 0; n < N; n++) hi = Math.max(hi, x[m * N + n] * scale);
    let sum = 0;
    for (let n = 0; n < N; n++) sum += y[m * N + n] = Math.exp(x[m * N + n] * scale - hi);
    for (let n = 0; n < N; n++) y[m * N + n] /= sum;
  }
  return y;
}

/** Same bits (so NaN == NaN and 0 != -0): what "bit-identical" means for float outputs. */
export function sameBits(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length),
    ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < ua.length; i++) if (ua[i] !== ub[i]) return false;
  return true;
}
