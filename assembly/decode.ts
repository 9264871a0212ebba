// The image decoders' kernels (core/image/wasm.ts loads them): a module of its own, separate from the
// engine, with a small memory the host copies rows into. Each kernel has its scalar twin for tests.
export { h2v2YccRow, h2v2YccRowScalar, yccRows, yccRowsScalar } from "./image/ycc";
export { idct8Band, idct8BandScalar } from "./image/idct";
export { idct4Band, idct4BandScalar, idct2Band, idct2BandScalar } from "./image/idct-scaled";
export { horizontalRow, horizontalRowScalar, verticalRow, verticalRowScalar } from "./image/resample";
export { decodeMcus, huffmanQuant, huffmanState, huffmanTables } from "./image/huffman";
export { adler32, inflate } from "./image/inflate";
export { unfilterRow, unfilterRowScalar } from "./image/unfilter";
export { vp8FilterRow, vp8FilterRowScalar } from "./image/vp8-filter";
export { vp8UpsampleRows, vp8UpsampleRowsScalar } from "./image/vp8-upsample";
export { vp8ReconstructRow } from "./image/vp8-reconstruct";
export { vp8ParseRow } from "./image/vp8-tokens";
export {
  decodeAcBlocks,
  decodeDcMcus,
  dequantizeBlocks,
  progressiveKeep,
  progressiveQuant,
  progressiveState,
  progressiveTables,
} from "./image/progressive";

/** The first free byte of memory: the host's scratch area starts here. */
export function scratchBase(): usize {
  return (__heap_base + 15) & ~15;
}

/** Grows memory so that `bytes` of scratch fit; returns the scratch base, or 0 when memory cannot grow. */
export function reserve(bytes: i32): usize {
  const base = scratchBase();
  const end = base + <usize>bytes;
  const have = <usize>memory.size() << 16;
  if (end > have && memory.grow(<i32>((end - have + 0xffff) >>> 16)) < 0) return 0;
  return base;
}
