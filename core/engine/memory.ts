// The memory plan: what a model's instance will hold in wasm memory, from its config alone, so that a host
// can budget a model (and the capture buffers a request asks for) before memory grows for it.
import { imageTokens, tokens, towerOf, type ModelConfig } from "../bundle/format.ts";
import { sizeText } from "../sizes.ts";

// Mirrors init() in assembly/model.ts; test/models/limits.test.ts checks it against the memory loads
// really take.
export interface MemoryPlan {
  payloadBytes: number;
  activationBytes: number; // activations, quantized operands and the engine's per-layer records
  totalBytes: number; // the instance's memory after init: its heap before the load, plus both, in whole pages
}

// Tokens per block (written into the engine's config struct; one block when a model has fewer tokens): the
// MLP, each block of attention's queries, the patch embedding and every projection run on this many rows at
// a time, so that only the residual stream and attention's keys and values span every token. A multiple of
// 4 (the activations' vector lanes) and of the GEMM's row tile. 64 rows keep the GEMM's weight panels
// streaming past enough rows while a SigLIP-B/16 at 512 px (1,024 tokens) needs 6.8 MiB of activations.
export const BLOCK_ROWS = 64;

const PAGE = 65536;
// Each alloc() takes 64 bytes for alignment, the stub runtime's 16-byte block header and its own 16-byte
// rounding beside its request.
const ALLOC_SLACK = 96;
// Per layer, the engine's Layer record and its four Linear records (a few dozen bytes each, with headers);
// the model-wide records (config, weights, pooling head, run state) take a few more of these; per head, the
// run state's records of that head's packed keys and values.
const LAYER_RECORD_BYTES = 512;
const GLOBAL_RECORDS = 6;
const HEAD_RECORD_BYTES = 96;

export const wholePages = (bytes: number): number => Math.ceil(bytes / PAGE) * PAGE;

const k16 = (k: number) => Math.ceil(k / 16) * 16;
const n4 = (n: number) => Math.ceil(n / 4) * 4;
const align64 = (n: number) => Math.ceil(n / 64) * 64;

// What RunState (assembly/model.ts) is sized by: an image model's config, or a text tower's with no image.
export interface RunShape {
  tokens: number; // the most the model runs
  dim: number;
  heads: number;
  hidden: number;
  layers: number;
  inputFloats: number; // channels * imageSize^2
  patchDim: number;
  classes: number;
  projection: number;
  imageTokens: number;
  lmDim: number;
  connector: "none" | "idefics3" | "llava";
  scaleFactor: number;
}

// The bytes init() allocates for a run state of `shape` (RunState's constructor, in its order) and the
// records it makes; the GEMM pads a quantized operand's rows to a multiple of `rowTile`.
export function runStateBytes(shape: RunShape, rowTile: number): number {
  const t = shape.tokens;
  const padded = (m: number) => Math.ceil(m / rowTile) * rowTile;
  const blockRows = Math.min(BLOCK_ROWS, padded(t));
  const headDim = shape.dim / shape.heads;
  const headLd = headDim + 3;
  // the arena: the input, then per layer attention's operands, then the MLP's hidden rows, in turn
  const tokenK = shape.connector === "idefics3" ? k16(shape.dim * shape.scaleFactor * shape.scaleFactor) : 0;
  const tokenParams = align64(4 * padded(Math.max(t, shape.imageTokens)));
  const perHead =
    align64(n4(t) * k16(headDim)) +
    2 * align64(4 * n4(t)) +
    align64(n4(headDim) * k16(t)) +
    2 * align64(4 * n4(headDim));
  const attention =
    align64(Math.max(padded(t) * k16(shape.dim), padded(shape.imageTokens) * tokenK)) +
    3 * tokenParams +
    shape.heads * perHead +
    align64(4 * Math.max(t * headLd, blockRows * t));
  const mlp = 4 * blockRows * Math.max(shape.hidden, shape.connector === "llava" ? shape.lmDim : 0);
  const arena = Math.max(4 * shape.inputFloats, attention, mlp);
  const widest = Math.max(
    k16(shape.dim),
    k16(shape.hidden),
    k16(shape.patchDim),
    k16(t),
    shape.connector === "llava" ? k16(shape.lmDim) : 0,
  );
  const bytes = [
    arena,
    4 * t * shape.dim, // x
    4 * blockRows * Math.max(shape.dim, shape.patchDim), // rows
    4 * blockRows * headLd, // query
    4 * blockRows * shape.dim, // context
    4 * shape.classes, // logits
    4 * shape.classes, // distillation logits
    4 * shape.dim, // pooler
    4 * shape.projection, // projected
    4 * shape.dim, // the pooling head's query
    4 * shape.heads * t, // the pooling head's attention
    4 * shape.imageTokens * shape.lmDim, // the connector's image tokens
    blockRows * widest, // qa
    4 * blockRows, // qa scale
    4 * blockRows, // qa zero
    4 * blockRows, // qa sum
  ];
  const records =
    (Math.min(shape.layers, 64) + GLOBAL_RECORDS) * LAYER_RECORD_BYTES + Math.min(shape.heads, 64) * HEAD_RECORD_BYTES;
  return bytes.reduce((sum, b) => sum + b + ALLOC_SLACK, 0) + records;
}

export function memoryPlan(c: ModelConfig, payloadBytes: number, heapTop: number, rowTile: number): MemoryPlan {
  const tower = towerOf(c);
  const activationBytes = runStateBytes(
    {
      tokens: tokens(c),
      dim: c.dim,
      heads: c.heads,
      hidden: c.hidden,
      layers: c.layers,
      inputFloats: c.channels * c.imageSize * c.imageSize,
      patchDim: c.channels * c.patchSize * c.patchSize,
      classes: c.classes,
      projection: tower.projection,
      imageTokens: imageTokens(c),
      lmDim: tower.lmDim,
      connector: tower.connector,
      scaleFactor: tower.scaleFactor,
    },
    rowTile,
  );
  const totalBytes = wholePages(heapTop + payloadBytes + ALLOC_SLACK + activationBytes);
  return { payloadBytes, activationBytes, totalBytes };
}

// forward()'s and enableCapture()'s flags, assembly/model.ts's CAPTURE_* bits (core/engine/abi.ts exports
// them with the rest of the ABI): what a run keeps besides its outputs.
export const CAPTURE_ATTENTION = 2; // per layer: the class token's rows, their head mean, attention rollout
export const CAPTURE_LAYER = 4; // one layer's attention probabilities, every head
export const CAPTURE_HIDDEN = 8; // one hidden state, RunOptions.capture

// The f32 buffers enableCapture() in assembly/model.ts allocates for `kinds` (CAPTURE_* bits), each followed
// by the 128 bytes its alloc() grows memory for beside the request: what memory can grow by. A ViT-B/16's
// attention capture is 0.42 MiB (test/engine/capture.test.ts), one layer's full attention 1.8 MiB.
export function captureBufferBytes(c: ModelConfig, kinds: number): number {
  const t = tokens(c);
  const layers = Math.max(c.layers, 1);
  const tower = towerOf(c);
  const attention = kinds & CAPTURE_ATTENTION;
  const buffers = [
    attention && tower.classToken ? layers * c.heads * t : 0, // the class token's rows
    attention && tower.classToken ? layers * t : 0, // their head mean
    attention && tower.classToken ? layers * t : 0, // rollout rows
    attention && tower.pooling === "map" ? t : 0, // the pooling head's rollout
    attention ? t * t : 0, // this layer's head mean
    attention ? t * t : 0, // the running rollout product
    attention ? t : 0, // one row of it
    kinds & CAPTURE_LAYER ? c.heads * t * t : 0,
    kinds & CAPTURE_HIDDEN ? t * c.dim : 0, // one hidden state
  ].filter((n) => n > 0);
  return buffers.reduce((sum, n) => sum + 4 * n + 128, 0);
}

// The model's memory plan does not fit what the caller allows, or the runtime would not grow memory to it.
export class MemoryLimitError extends Error {
  readonly plan: MemoryPlan;
  constructor(plan: MemoryPlan, message: string) {
    super(message);
    this.name = "MemoryLimitError";
    this.plan = plan;
  }
}

// Runs an engine call that grows memory: a failed grow traps (the builds have no abort import), which is
// reported as the plan that did not fit rather than as the trap.
export function growing<T>(plan: MemoryPlan, call: () => T): T {
  try {
    return call();
  } catch (error) {
    if (!(error instanceof WebAssembly.RuntimeError)) throw error;
    throw new MemoryLimitError(
      plan,
      `the runtime would not grow wasm memory to the ${sizeText(plan.totalBytes)} the model needs ` +
        `(${sizeText(plan.payloadBytes)} of weights, ${sizeText(plan.activationBytes)} of activations)`,
    );
  }
}
