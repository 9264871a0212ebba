// Weight quantization and packing into the GEMM's B layout ("Packed B layout" in docs/ARCHITECTURE.md).
//
// A Linear(K -> N) with weight [N][K] becomes four tensors:
//   weight u8  [N4/4][K16/16][4][16]  rows n..n+3 interleaved in 16-byte K chunks, byte = q + 64
//   scale  f32 [N4]                   per output channel s = max|w| / 63 (0 in padding)
//   wsum   i32 [N4]                   sum_k q[n][k], signed q
//   bias   f32 [N4]                   bias, 0 when absent or in padding
// q = clamp(round(w / s), -63, 63) with round-to-nearest, ties away from zero. Seven bits, so that the
// stored byte lies in [1, 127] and the relaxed int8 dot product is exact on every engine.

/** Output channels per interleaved group of B rows. */
export const PACK_ROWS = 4;
/** Bytes of K per chunk of one B row. */
export const PACK_K = 16;
/** Largest magnitude of a 7-bit weight. */
const W7_MAX = 63;
/** Stored byte = q + W7_OFFSET; padding stores W7_OFFSET (= 0). */
const W7_OFFSET = 64;

/** K rounded up to a multiple of 16. */
export function K16(k: number): number {
  return Math.ceil(k / PACK_K) * PACK_K;
}

/** N rounded up to a multiple of 4. */
export function N4(n: number): number {
  return Math.ceil(n / PACK_ROWS) * PACK_ROWS;
}

export interface PackedSizes {
  weight: number;
  scale: number;
  wsum: number;
  bias: number;
}

/** Byte size of each of the four tensors of a packed Linear(K -> N), without alignment padding. */
export function packedSizes(N: number, K: number): PackedSizes {
  const n4 = N4(N);
  return { weight: n4 * K16(K), scale: n4 * 4, wsum: n4 * 4, bias: n4 * 4 };
}

export interface PackedLinear {
  weight: Uint8Array; // [N4/4][K16/16][4][16]
  scale: Float32Array; // [N4]
  wsum: Int32Array; // [N4]
  bias: Float32Array; // [N4]
}

/** Round to nearest, ties away from zero (Math.round sends -2.5 to -2). */
function roundHalfAway(x: number): number {
  return Math.sign(x) * Math.floor(Math.abs(x) + 0.5);
}

/** Byte offset of element (n, k) in the packed weight of a Linear with K inputs. */
export function packedIndex(n: number, k: number, K: number): number {
  const chunks = K16(K) / PACK_K;
  const group = Math.floor(n / PACK_ROWS);
  const chunk = Math.floor(k / PACK_K);
  return ((group * chunks + chunk) * PACK_ROWS + (n % PACK_ROWS)) * PACK_K + (k % PACK_K);
}

/** Quantize and pack a Linear. `weight` is [N][K] row-major (PyTorch's nn.Linear layout). */
export function packLinear(weight: Float32Array, bias: Float32Array | null, N: number, K: number): PackedLinear {
  if (weight.length !== N * K) throw new Error(`packLinear: weight has ${weight.length} values, expected ${N}x${K}`);
  if (bias && bias.length !== N) throw new Error(`packLinear: bias has ${bias.length} values, expected ${N}`);
  const n4 = N4(N);
  const out: PackedLinear = {
    weight: new Uint8Array(n4 * K16(K)).fill(W7_OFFSET),
    scale: new Float32Array(n4),
    wsum: new Int32Array(n4),
    bias: new Float32Array(n4),
  };
  for (let n = 0; n < N; n++) {
    let maxAbs = 0;
    for (let k = 0; k < K; k++) maxAbs = Math.max(maxAbs, Math.abs(weight[n * K + k]));
    // The stored f32 scale is the one the quantizer divides by, so q and s agree exactly.
    const s = Math.fround(maxAbs / W7_MAX);
    out.scale[n] = s;
    let sum = 0;
    if (s > 0) {
      for (let k = 0; k < K; k++) {
        const q = Math.min(W7_MAX, Math.max(-W7_MAX, roundHalfAway(weight[n * K + k] / s)));
        out.weight[packedIndex(n, k, K)] = q + W7_OFFSET;
        sum += q;
      }
    }
    out.wsum[n] = sum;
    if (bias) out.bias[n] = bias[n];
  }
  return out;
}
