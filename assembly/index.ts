// The engine's exports (docs/ARCHITECTURE.md, "Engine ABI"): the model, then every kernel and its scalar
// twin for tests and benchmarks.
import { GEMM_ROWS } from "./kernels/gemm";

export { alloc, init, inputPtr, forward, forwardBegin, forwardLayer, forwardEnd, logitsPtr, outputPtr, capturedPtr, tokens } from "./model";
export { poolerPtr, projectedPtr, headAttentionPtr, imageTokensPtr } from "./model";
export { enableCapture, residualPtr, clsAttentionPtr, clsMeanPtr, rolloutPtr, headRolloutPtr, attentionsPtr } from "./model";
export { textInit, textForward, textIdsPtr, textPoolerPtr, textEmbedsPtr, textPositions } from "./text";
export { crc32, crc32Scalar } from "./kernels/crc32";
export { nonFinite, nonFiniteScalar } from "./kernels/finite";
export { gemm, gemmScalar, gemmSplit, gemmFused } from "./kernels/gemm";
export { quantizeRows, quantizeRowsScalar, quantizeShuffled, packRows, packRowsScalar } from "./kernels/quant";
export { layerNorm, layerNormScalar } from "./kernels/norm";
export { softmax, softmaxScalar, softmaxQuantize } from "./kernels/softmax";
export { gelu, geluScalar, quickGelu, quickGeluScalar, geluTanh, geluTanhScalar } from "./kernels/gelu";
export { dotCeiling, dotCeilingMacs } from "./kernels/ceiling";
export { probeDot, dotPath, setDotPath } from "./kernels/dot";

/** Rows of A per GEMM tile: quantized A buffers hold their rows padded to a multiple of it. */
export function gemmRowTile(): i32 {
  return GEMM_ROWS;
}

/** 1 when compiled with relaxed SIMD. */
export function relaxed(): i32 {
  return ASC_FEATURE_RELAXED_SIMD ? 1 : 0;
}
