// The memory plan: what a model's instance will hold in wasm memory, from its config alone, so that a host
// can budget a model (and the capture buffers a request asks for) before memory grows for it.
import { imageTokens, patches as patchCount, tokens, towerOf, type ModelConfig } from "../bundle/format.ts";
import { sizeText } from "../sizes.ts";
import { CAPTURE_ATTENTION, CAPTURE_LAYER } from "./abi.ts";

// Mirrors init() in assembly/model.ts; test/models/limits.test.ts checks it against the memory loads
// really take.
export interface MemoryPlan {
  payloadBytes: number;
  activationBytes: number; // activations, quantized operands and the engine's per-layer records
  totalBytes: number; // the instance's memory after init: its heap before the load, plus both, in whole pages
}

const PAGE = 65536;
// Each alloc() takes 64 bytes for alignment, the stub runtime's 16-byte block header and its own 16-byte
// rounding beside its request.
const ALLOC_SLACK = 96;
// Per layer, the engine's Layer record and its four Linear records (a few dozen bytes each, with headers);
// the model-wide records (config, weights, pooling head, run state) take a few more of these.
const LAYER_RECORD_BYTES = 512;
const GLOBAL_RECORDS = 6;

export const wholePages = (bytes: number): number => Math.ceil(bytes / PAGE) * PAGE;

export function memoryPlan(c: ModelConfig, payloadBytes: number, heapTop: number, rowTile: number): MemoryPlan {
  const k16 = (k: number) => Math.ceil(k / 16) * 16;
  const n4 = (n: number) => Math.ceil(n / 4) * 4;
  const t = tokens(c);
  const patches = patchCount(c);
  const tower = towerOf(c);
  const projection = tower.projection;
  const patchDim = c.channels * c.patchSize * c.patchSize;
  const headDim = c.dim / c.heads;
  const rows = Math.ceil(t / rowTile) * rowTile;
  const f32s = [
    c.channels * c.imageSize * c.imageSize, // input
    patches * patchDim, // patch rows
    t * c.dim, // x
    t * c.dim, // norm
    t * 3 * c.dim, // qkv
    t * t, // scores
    t * c.dim, // context
    t * c.hidden, // MLP hidden
    t * c.dim, // output
    t * c.dim, // captured
    c.classes, // logits
    c.classes, // distillation logits
    c.dim, // pooler
    projection, // projected
    c.dim, // the pooling head's query
    c.heads * t, // the pooling head's attention
    rows, // qa scale
    rows, // qa zero
    rows, // qa sum
    n4(Math.max(t, headDim)), // qb scale
    n4(Math.max(t, headDim)), // qb sum
    imageTokens(c) * tower.lmDim, // the connector's image tokens
    tower.connector === "llava" ? imageTokens(c) * tower.lmDim : 0, // LLaVA's projector hidden
  ];
  // the connector's A operand: Idefics3's shuffled rows (scaleFactor^2 patches wide), LLaVA's lmDim-wide
  const connectorRows = Math.ceil(imageTokens(c) / rowTile) * rowTile;
  const connectorK =
    tower.connector === "idefics3"
      ? k16(c.dim * tower.scaleFactor * tower.scaleFactor)
      : tower.connector === "llava"
        ? k16(tower.lmDim)
        : 0;
  const bytes = [
    ...f32s.map((n) => 4 * n),
    Math.max(rows * Math.max(k16(c.dim), k16(c.hidden), k16(patchDim), k16(t)), connectorRows * connectorK), // qa
    Math.max(n4(t) * k16(headDim), n4(headDim) * k16(t)), // qb
  ];
  const activationBytes =
    bytes.reduce((sum, b) => sum + b + ALLOC_SLACK, 0) + (c.layers + GLOBAL_RECORDS) * LAYER_RECORD_BYTES;
  const totalBytes = wholePages(heapTop + payloadBytes + ALLOC_SLACK + activationBytes);
  return { payloadBytes, activationBytes, totalBytes };
}

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
