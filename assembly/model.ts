// The ViT: config, weight pointers into the payload, activation buffers, and forward() in paper order,
// following Hugging Face's ViTModel / ViTForImageClassification (and DeiT's distilled head).
import { gemm, k16, n4, rowsPadded } from "./kernels/gemm";
import { quantizeRows, packRows } from "./kernels/quant";
import { layerNorm } from "./kernels/norm";
import { softmax } from "./kernels/softmax";
import { gelu } from "./kernels/gelu";

/** init() results. */
export const OK: i32 = 0;
export const ERR_CONFIG: i32 = 1; // a size is not positive, dim % heads != 0, or patch > imageSize
export const ERR_ALIGNMENT: i32 = 2; // the payload is not 64-byte aligned
export const ERR_STATE: i32 = 3; // init was already called on this instance

/** 64-byte-aligned bump allocation on the runtime's heap; grows memory; never freed. */
export function alloc(bytes: usize): usize {
  // The stub runtime grows memory by at least doubling it (a ViT-B/16 took 168.1 MiB instead of 92.9):
  // grow by exactly the pages this allocation needs first, so the runtime finds them already there.
  const end = heap.alloc(0) + bytes + 128; // heap.alloc(0) is the next block; 128 covers its header and the alignment
  const pages = <i32>((end + 0xffff) >>> 16);
  if (pages > memory.size()) memory.grow(pages - memory.size());
  return (heap.alloc(bytes + 64) + 63) & ~<usize>63;
}

/** A Linear(K -> N) in the packed B layout (docs/ARCHITECTURE.md). */
class Linear {
  K: i32; // inputs
  N: i32; // outputs
  weight: usize = 0; // u8 [N4/4][K16/16][4][16], q + 64
  scale: usize = 0; // f32 [N4]
  wsum: usize = 0; // i32 [N4]
  bias: usize = 0; // f32 [N4]
  constructor(K: i32, N: i32) {
    this.K = K;
    this.N = N;
  }
}

class Layer {
  layernormBeforeWeight: usize = 0; // f32 [dim]
  layernormBeforeBias: usize = 0; // f32 [dim]
  qkv: Linear; // dim -> 3 * dim: query rows, then key, then value
  attentionOutput: Linear; // dim -> dim
  layernormAfterWeight: usize = 0; // f32 [dim]
  layernormAfterBias: usize = 0; // f32 [dim]
  intermediate: Linear; // dim -> hidden
  output: Linear; // hidden -> dim
  constructor(dim: i32, hidden: i32) {
    this.qkv = new Linear(dim, 3 * dim);
    this.attentionOutput = new Linear(dim, dim);
    this.intermediate = new Linear(dim, hidden);
    this.output = new Linear(hidden, dim);
  }
}

// Config (from the bundle header; no other constant exists).
let channels = 0, imageSize = 0, patchSize = 0, dim = 0, heads = 0, headDim = 0, hidden = 0, layers = 0, classes = 0;
let distilled = false;
let eps: f32 = 0;
let grid = 0; // patches per side
let patches = 0; // grid * grid
let prefixTokens = 0; // class token (+ distillation token)
let numTokens = 0; // patches + prefixTokens
let patchDim = 0; // channels * patchSize * patchSize

// Weights: pointers into the payload.
let patchEmbeddings: Linear = new Linear(0, 0); // channels * patch * patch -> dim
let clsToken: usize = 0; // f32 [dim]
let distillationToken: usize = 0; // f32 [dim]
let positionEmbeddings: usize = 0; // f32 [tokens][dim]
let encoder: StaticArray<Layer> = new StaticArray<Layer>(0);
let layernormWeight: usize = 0, layernormBias: usize = 0; // f32 [dim]
let classifier: Linear = new Linear(0, 0); // dim -> classes
let distillationClassifier: Linear = new Linear(0, 0); // dim -> classes

// Activations, allocated once by init().
let input: usize = 0; // f32 [channels][imageSize][imageSize]
let patchRows: usize = 0; // f32 [patches][patchDim], patches flattened (c, py, px)
let x: usize = 0; // f32 [tokens][dim], the residual stream
let norm: usize = 0; // f32 [tokens][dim], LayerNorm output
let qkvOut: usize = 0; // f32 [tokens][3 * dim]
let scores: usize = 0; // f32 [tokens][tokens], one head's attention probabilities
let context: usize = 0; // f32 [tokens][dim], heads concatenated
let mlpHidden: usize = 0; // f32 [tokens][hidden]
let output: usize = 0; // f32 [tokens][dim], final LayerNorm output
let captured: usize = 0; // f32 [tokens][dim]
let logits: usize = 0; // f32 [classes]
let distillationLogits: usize = 0; // f32 [classes]
// Quantized GEMM operands, sized for the largest use.
let qa: usize = 0; // i8 [tokens padded to GEMM_ROWS][max K16]
let qaScale: usize = 0; // f32 [tokens padded]
let qaZero: usize = 0; // i32 [tokens padded]
let qaSum: usize = 0; // i32 [tokens padded]
let qb: usize = 0; // u8 packed: one head's K [tokens][headDim] or V^T [headDim][tokens]
let qbScale: usize = 0; // f32 [N4(max(tokens, headDim))]
let qbSum: usize = 0; // i32 [N4(max(tokens, headDim))]

// Capture (docs/ARCHITECTURE.md, "Capture"): what forward() keeps besides its outputs, chosen per call.
export const CAPTURE_HIDDEN_STATES: i32 = 1; // every hidden state 0..layers
export const CAPTURE_ATTENTION: i32 = 2; // per layer: class-token rows per head and the head-mean matrix
export const CAPTURE_LAYER: i32 = 4; // one layer's attention probabilities, every head (enableCapture only)
let captureFlags: i32 = 0; // this forward() call's CAPTURE_HIDDEN_STATES | CAPTURE_ATTENTION bits
let captureLayer: i32 = 0; // this call's layer (1..layers) whose full attention to keep, 0 = none
// Allocated by enableCapture() on the first request that asks for them, so that a model that only
// classifies does not carry them (a ViT-B/16: 7.5, 1.9 and 1.8 MiB).
let hiddenStates: usize = 0; // f32 [layers + 1][tokens][dim]
let clsAttention: usize = 0; // f32 [layers][heads][tokens], row 0 of each head's probabilities
let meanAttention: usize = 0; // f32 [layers][tokens][tokens], mean over heads
let layerAttention: usize = 0; // f32 [heads][tokens][tokens], layer captureLayer

let payloadStart: usize = 0;
let cursor: usize = 0; // end of the last tensor taken

/** The next payload tensor of `bytes` bytes; tensors start on 64-byte boundaries. */
function take(bytes: i32): usize {
  const at = (cursor + 63) & ~<usize>63;
  cursor = at + <usize>bytes;
  return at;
}

function takeLinear(lin: Linear): void {
  lin.weight = take(n4(lin.N) * k16(lin.K));
  lin.scale = take(n4(lin.N) * 4);
  lin.wsum = take(n4(lin.N) * 4);
  lin.bias = take(n4(lin.N) * 4);
}

export function init(
  weights: usize, channels_: i32, imageSize_: i32, patch_: i32, dim_: i32, heads_: i32, hidden_: i32,
  layers_: i32, classes_: i32, distilled_: i32, eps_: f32,
): i32 {
  if (numTokens != 0) return ERR_STATE;
  if (channels_ <= 0 || imageSize_ <= 0 || patch_ <= 0 || patch_ > imageSize_ || dim_ <= 0 || heads_ <= 0 ||
      dim_ % heads_ != 0 || hidden_ <= 0 || layers_ < 0 || classes_ <= 0) return ERR_CONFIG;
  if (weights & 63) return ERR_ALIGNMENT;
  channels = channels_; imageSize = imageSize_; patchSize = patch_; dim = dim_; heads = heads_;
  headDim = dim_ / heads_; hidden = hidden_; layers = layers_; classes = classes_;
  distilled = distilled_ != 0; eps = eps_;
  grid = imageSize / patchSize;
  patches = grid * grid;
  prefixTokens = distilled ? 2 : 1;
  numTokens = patches + prefixTokens;
  patchDim = channels * patchSize * patchSize;

  // Walk the payload in the order of models/FORMAT.md.
  payloadStart = weights;
  cursor = weights;
  patchEmbeddings = new Linear(patchDim, dim);
  takeLinear(patchEmbeddings);
  clsToken = take(dim * 4);
  if (distilled) distillationToken = take(dim * 4);
  positionEmbeddings = take(numTokens * dim * 4);
  encoder = new StaticArray<Layer>(layers);
  for (let l = 0; l < layers; l++) {
    const layer = new Layer(dim, hidden);
    layer.layernormBeforeWeight = take(dim * 4);
    layer.layernormBeforeBias = take(dim * 4);
    takeLinear(layer.qkv);
    takeLinear(layer.attentionOutput);
    layer.layernormAfterWeight = take(dim * 4);
    layer.layernormAfterBias = take(dim * 4);
    takeLinear(layer.intermediate);
    takeLinear(layer.output);
    encoder[l] = layer;
  }
  layernormWeight = take(dim * 4);
  layernormBias = take(dim * 4);
  classifier = new Linear(dim, classes);
  takeLinear(classifier);
  if (distilled) {
    distillationClassifier = new Linear(dim, classes);
    takeLinear(distillationClassifier);
  }

  const rows = rowsPadded(numTokens);
  const f32s = (n: i32): usize => alloc(<usize>n << 2);
  input = f32s(channels * imageSize * imageSize);
  patchRows = f32s(patches * patchDim);
  x = f32s(numTokens * dim);
  norm = f32s(numTokens * dim);
  qkvOut = f32s(numTokens * 3 * dim);
  scores = f32s(numTokens * numTokens);
  context = f32s(numTokens * dim);
  mlpHidden = f32s(numTokens * hidden);
  output = f32s(numTokens * dim);
  captured = f32s(numTokens * dim);
  logits = f32s(classes);
  distillationLogits = f32s(classes);
  const widest = max(max(k16(dim), k16(hidden)), max(k16(patchDim), k16(numTokens)));
  qa = alloc(<usize>rows * widest);
  qaScale = f32s(rows);
  qaZero = f32s(rows);
  qaSum = f32s(rows);
  qb = alloc(<usize>max(n4(numTokens) * k16(headDim), n4(headDim) * k16(numTokens)));
  qbScale = f32s(n4(max(numTokens, headDim)));
  qbSum = f32s(n4(max(numTokens, headDim)));
  return OK;
}

/** Bytes of payload that init() bound: the end of the last tensor (models/FORMAT.md's payload.length). */
export function payloadBytes(): usize {
  return cursor - payloadStart;
}

export function inputPtr(): usize { return input; }
export function logitsPtr(): usize { return logits; }
export function outputPtr(): usize { return output; }
export function capturedPtr(): usize { return captured; }
export function tokens(): i32 { return numTokens; }
export function hiddenStatesPtr(): usize { return hiddenStates; }
export function clsAttentionPtr(): usize { return clsAttention; }
export function meanAttentionPtr(): usize { return meanAttention; }
export function attentionsPtr(): usize { return layerAttention; }

/** Allocates the buffers of the CAPTURE_* bits in `flags` that are not allocated yet (after init). */
export function enableCapture(flags: i32): void {
  if (numTokens == 0) return;
  const f32s = (n: i32): usize => alloc(<usize>n << 2);
  if (flags & CAPTURE_HIDDEN_STATES && hiddenStates == 0) hiddenStates = f32s((layers + 1) * numTokens * dim);
  if (flags & CAPTURE_ATTENTION && clsAttention == 0) {
    clsAttention = f32s(max(layers, 1) * heads * numTokens);
    meanAttention = f32s(max(layers, 1) * numTokens * numTokens);
  }
  if (flags & CAPTURE_LAYER && layerAttention == 0) layerAttention = f32s(heads * numTokens * numTokens);
}

/** Keeps what this call captures of head h's probabilities in layer l (0-based; scores [tokens][tokens]). */
function captureAttention(l: i32, h: i32): void {
  const square = <usize>(numTokens * numTokens) << 2;
  if (captureFlags & CAPTURE_ATTENTION) {
    memory.copy(clsAttention + (<usize>((l * heads + h) * numTokens) << 2), scores, <usize>numTokens << 2);
    // head mean, summed in head order then scaled: the same float32 operations as a reference's mean
    const mean = meanAttention + <usize>l * square;
    if (h == 0) memory.copy(mean, scores, square);
    else addInPlace(mean, scores, numTokens * numTokens);
    if (h == heads - 1) scaleInPlace(mean, numTokens * numTokens, 1 / <f32>heads);
  }
  if (captureLayer == l + 1) memory.copy(layerAttention + <usize>h * square, scores, square);
}

function scaleInPlace(dst: usize, n: i32, factor: f32): void {
  for (let i = 0; i < n; i++) {
    const p = <usize>i << 2;
    store<f32>(dst + p, load<f32>(dst + p) * factor);
  }
}

/** out[M][N] (=|+=) src[M][K] (row stride ldSrc) x lin^T + bias, through the int8 GEMM. */
function linear(src: usize, ldSrc: i32, M: i32, lin: Linear, out: usize, ldOut: i32, accumulate: bool): void {
  quantizeRows(src, ldSrc, M, lin.K, qa, qaScale, qaZero, qaSum);
  gemm(qa, qaScale, qaZero, qaSum, M, k16(lin.K), lin.weight, lin.scale, lin.wsum, lin.bias, lin.N, out, ldOut, accumulate);
}

/** Patch embedding, class (and distillation) token, position embeddings: x = [cls; (dist;) patches W^T + b] + pos. */
function embeddings(): void {
  // Flatten each patch as the conv weight is flattened: (c, py, px).
  for (let gy = 0; gy < grid; gy++) {
    for (let gx = 0; gx < grid; gx++) {
      let dst = patchRows + (<usize>((gy * grid + gx) * patchDim) << 2);
      for (let c = 0; c < channels; c++) {
        for (let py = 0; py < patchSize; py++) {
          const src = input + (<usize>((c * imageSize + gy * patchSize + py) * imageSize + gx * patchSize) << 2);
          memory.copy(dst, src, <usize>patchSize << 2);
          dst += <usize>patchSize << 2;
        }
      }
    }
  }
  const rowBytes = <usize>dim << 2;
  linear(patchRows, patchDim, patches, patchEmbeddings, x + <usize>prefixTokens * rowBytes, dim, false);
  memory.copy(x, clsToken, rowBytes);
  if (distilled) memory.copy(x + rowBytes, distillationToken, rowBytes);
  addInPlace(x, positionEmbeddings, numTokens * dim);
}

function addInPlace(dst: usize, src: usize, n: i32): void {
  const n4_ = n & ~3;
  for (let i = 0; i < n4_; i += 4) {
    const p = <usize>i << 2;
    v128.store(dst + p, f32x4.add(v128.load(dst + p), v128.load(src + p)));
  }
  for (let i = n4_; i < n; i++) {
    const p = <usize>i << 2;
    store<f32>(dst + p, load<f32>(dst + p) + load<f32>(src + p));
  }
}

/** x += attention.output.dense(concat_h softmax(Q_h K_h^T / sqrt(headDim)) V_h), on norm = LN_before(x). */
function selfAttention(layer: Layer, l: i32): void {
  const threeDim = 3 * dim;
  linear(norm, dim, numTokens, layer.qkv, qkvOut, threeDim, false);
  const scale: f32 = 1 / Mathf.sqrt(<f32>headDim);
  for (let h = 0; h < heads; h++) {
    const query = qkvOut + (<usize>(h * headDim) << 2); // [tokens][headDim], row stride 3 * dim
    const key = query + (<usize>dim << 2);
    const value = key + (<usize>dim << 2);
    // scores [tokens][tokens] = Q_h K_h^T; B rows are tokens of K.
    quantizeRows(query, threeDim, numTokens, headDim, qa, qaScale, qaZero, qaSum);
    packRows(key, threeDim, 1, numTokens, headDim, qb, qbScale, qbSum);
    gemm(qa, qaScale, qaZero, qaSum, numTokens, k16(headDim), qb, qbScale, qbSum, 0, numTokens, scores, numTokens, false);
    softmax(scores, numTokens, numTokens, numTokens, scale);
    if (captureFlags != 0 || captureLayer != 0) captureAttention(l, h);
    // context[:, h] [tokens][headDim] = P V_h; B rows are channels of V (V^T).
    quantizeRows(scores, numTokens, numTokens, numTokens, qa, qaScale, qaZero, qaSum);
    packRows(value, 1, threeDim, headDim, numTokens, qb, qbScale, qbSum);
    gemm(qa, qaScale, qaZero, qaSum, numTokens, k16(numTokens), qb, qbScale, qbSum, 0, headDim,
      context + (<usize>(h * headDim) << 2), dim, false);
  }
  linear(context, dim, numTokens, layer.attentionOutput, x, dim, true);
}

/** x += output.dense(gelu(intermediate.dense(norm))), on norm = LN_after(x). */
function mlp(layer: Layer): void {
  linear(norm, dim, numTokens, layer.intermediate, mlpHidden, hidden, false);
  gelu(mlpHidden, numTokens * hidden);
  linear(mlpHidden, hidden, numTokens, layer.output, x, dim, true);
}

/**
 * Runs the model on inputPtr(); `capture` = layer whose output to keep (0 = embeddings, -1 = none);
 * `flags` = CAPTURE_* bits, `attentionLayer` = layer 1..layers whose attention probabilities to keep
 * (0 = none). Each needs its buffers from enableCapture() and is ignored without them.
 */
export function forward(capture: i32, flags: i32, attentionLayer: i32): void {
  const stateBytes = <usize>(numTokens * dim) << 2;
  const enabled = (hiddenStates != 0 ? CAPTURE_HIDDEN_STATES : 0) | (clsAttention != 0 ? CAPTURE_ATTENTION : 0);
  captureFlags = flags & enabled;
  captureLayer = layerAttention != 0 && attentionLayer >= 1 && attentionLayer <= layers ? attentionLayer : 0;
  // embeddings
  embeddings();
  if (capture == 0) memory.copy(captured, x, stateBytes);
  if (captureFlags & CAPTURE_HIDDEN_STATES) memory.copy(hiddenStates, x, stateBytes);
  for (let l = 0; l < layers; l++) {
    const layer = encoder[l];
    // norm 1, self-attention, add skip connection
    layerNorm(x, numTokens, dim, layer.layernormBeforeWeight, layer.layernormBeforeBias, eps, norm);
    selfAttention(layer, l);
    // norm 2, MLP, add skip connection
    layerNorm(x, numTokens, dim, layer.layernormAfterWeight, layer.layernormAfterBias, eps, norm);
    mlp(layer);
    if (capture == l + 1) memory.copy(captured, x, stateBytes);
    if (captureFlags & CAPTURE_HIDDEN_STATES) memory.copy(hiddenStates + <usize>(l + 1) * stateBytes, x, stateBytes);
  }
  // final norm
  layerNorm(x, numTokens, dim, layernormWeight, layernormBias, eps, output);
  // head on the class token; distilled: mean of the class head and the distillation head
  linear(output, dim, 1, classifier, logits, classes, false);
  if (distilled) {
    linear(output + (<usize>dim << 2), dim, 1, distillationClassifier, distillationLogits, classes, false);
    for (let c = 0; c < classes; c++) {
      const p = <usize>c << 2;
      store<f32>(logits + p, (load<f32>(logits + p) + load<f32>(distillationLogits + p)) * 0.5);
    }
  }
}
