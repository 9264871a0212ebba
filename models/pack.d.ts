/** Output channels per interleaved group of B rows. */
export declare const PACK_ROWS = 4;
/** Bytes of K per chunk of one B row. */
export declare const PACK_K = 16;
/** K rounded up to a multiple of 16. */
export declare function K16(k: number): number;
/** N rounded up to a multiple of 4. */
export declare function N4(n: number): number;
export interface PackedSizes {
    weight: number;
    scale: number;
    wsum: number;
    bias: number;
}
/** Byte size of each of the four tensors of a packed Linear(K -> N), without alignment padding. */
export declare function packedSizes(N: number, K: number): PackedSizes;
export interface PackedLinear {
    weight: Uint8Array;
    scale: Float32Array;
    wsum: Int32Array;
    bias: Float32Array;
}
/** Byte offset of element (n, k) in the packed weight of a Linear with K inputs. */
export declare function packedIndex(n: number, k: number, K: number): number;
/** Quantize and pack a Linear. `weight` is [N][K] row-major (PyTorch's nn.Linear layout). */
export declare function packLinear(weight: Float32Array, bias: Float32Array | null, N: number, K: number): PackedLinear;
