// The ViT as three structs, as llama2.c keeps a transformer: Config (sizes, written by the host into a
// small struct in memory), TransformerWeights (pointers into the payload, bound from the host's table of
// the bundle header's tensor offsets), RunState (activation buffers, allocated once); forward() in paper
// order, following Hugging Face's ViTModel / ViTForImageClassification (and DeiT's distilled head).
// Every helper takes the structs it uses and says which buffers it reads and writes.
import { gemm, k16, n4, rowsPadded } from "./kernels/gemm";
import { quantizeRows, packRows } from "./kernels/quant";
import { layerNorm } from "./kernels/norm";
import { softmaxQuantize } from "./kernels/softmax";
import { gelu } from "./kernels/gelu";

/** init() results (core/engine/abi.ts turns each into a sentence). */
export const OK: i32 = 0;
export const ERR_CONFIG: i32 = 1; // a size is not positive, dim % heads != 0, or patch > imageSize
export const ERR_ALIGNMENT: i32 = 2; // the payload is not 64-byte aligned
export const ERR_STATE: i32 = 3; // init was already called on this instance
export const ERR_ABI: i32 = 4; // the config struct or the weight table has another size than this build's
export const ERR_WEIGHTS: i32 = 5; // a tensor offset is misaligned, missing, or its tensor ends past the payload

/** 64-byte-aligned bump allocation on the runtime's heap; grows memory; never freed. */
export function alloc(bytes: usize): usize {
  // The stub runtime grows memory by at least doubling it: grow by exactly the pages this allocation needs
  // first, so the runtime finds them already there (docs/MEMORY.md).
  const end = heap.alloc(0) + bytes + 128; // heap.alloc(0) is the next block; 128 covers its header and the alignment
  const pages = <i32>((end + 0xffff) >>> 16);
  if (pages > memory.size()) memory.grow(pages - memory.size());
  return (heap.alloc(bytes + 64) + 63) & ~<usize>63;
}

/**
 * The config struct the host writes (docs/ARCHITECTURE.md, "Engine ABI"): after its own size, one 4-byte
 * little-endian field per field of CONFIG_STRUCT in core/engine/abi.ts, by the same name and in the same
 * order, read in place. `bytes` = offsetof<ConfigStruct>() lets init refuse a host that writes another layout.
 */
@unmanaged class ConfigStruct {
  bytes: i32; // 44
  channels: i32;
  imageSize: i32;
  patchSize: i32;
  dim: i32;
  heads: i32;
  hidden: i32;
  layers: i32;
  classes: i32;
  distilled: i32; // 0 or 1
  eps: f32; // LayerNorm epsilon
}

/** Sizes from the bundle header (no other constant exists) and the sizes they imply. */
class Config {
  channels: i32 = 0;
  imageSize: i32 = 0;
  patchSize: i32 = 0;
  dim: i32 = 0; // residual stream width
  heads: i32 = 0;
  headDim: i32 = 0; // dim / heads
  hidden: i32 = 0; // MLP width
  layers: i32 = 0;
  classes: i32 = 0;
  distilled: bool = false; // DeiT: distillation token and a second head
  eps: f32 = 0;
  grid: i32 = 0; // patches per side
  patches: i32 = 0; // grid * grid
  prefixTokens: i32 = 0; // class token (+ distillation token)
  tokens: i32 = 0; // patches + prefixTokens
  patchDim: i32 = 0; // channels * patchSize * patchSize
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

/** Pointers into the payload. */
class TransformerWeights {
  patchEmbeddings: Linear; // channels * patch * patch -> dim
  clsToken: usize = 0; // f32 [dim]
  distillationToken: usize = 0; // f32 [dim]
  positionEmbeddings: usize = 0; // f32 [tokens][dim]
  encoder: StaticArray<Layer>;
  layernormWeight: usize = 0; // f32 [dim]
  layernormBias: usize = 0; // f32 [dim]
  classifier: Linear; // dim -> classes
  distillationClassifier: Linear; // dim -> classes
  constructor(c: Config) {
    this.patchEmbeddings = new Linear(c.patchDim, c.dim);
    this.classifier = new Linear(c.dim, c.classes);
    this.distillationClassifier = new Linear(c.dim, c.classes);
    const encoder = new StaticArray<Layer>(c.layers);
    for (let l = 0; l < c.layers; l++) encoder[l] = new Layer(c.dim, c.hidden);
    this.encoder = encoder;
  }
}

/** One quantized A operand of the GEMM (kernels/quant.ts, quantizeRows). */
class QuantizedRows {
  q: usize = 0; // i8 [rows padded to GEMM_ROWS][K16]
  scale: usize = 0; // f32 [rows padded]
  zero: usize = 0; // i32 [rows padded]
  sum: usize = 0; // i32 [rows padded]
}

/** One packed B operand built at run time (kernels/quant.ts, packRows). */
class PackedRows {
  weight: usize = 0; // u8 packed [N4/4][K16/16][4][16]
  scale: usize = 0; // f32 [N4]
  sum: usize = 0; // i32 [N4]
}

/** Activation buffers, allocated once by init(). */
class RunState {
  input: usize = 0; // f32 [channels][imageSize][imageSize]
  patchRows: usize = 0; // f32 [patches][patchDim], patches flattened (c, py, px)
  x: usize = 0; // f32 [tokens][dim], the residual stream
  norm: usize = 0; // f32 [tokens][dim], LayerNorm output
  qkvOut: usize = 0; // f32 [tokens][3 * dim]
  scores: usize = 0; // f32 [tokens][tokens], one head's attention probabilities
  context: usize = 0; // f32 [tokens][dim], heads concatenated
  mlpHidden: usize = 0; // f32 [tokens][hidden]
  output: usize = 0; // f32 [tokens][dim], final LayerNorm output
  captured: usize = 0; // f32 [tokens][dim]
  logits: usize = 0; // f32 [classes]
  distillationLogits: usize = 0; // f32 [classes]
  // GEMM operands, sized for the largest use: A up to max K16 wide, B one head's K [tokens][headDim] or
  // V^T [headDim][tokens].
  qa: QuantizedRows = new QuantizedRows();
  qb: PackedRows = new PackedRows();
  constructor(c: Config) {
    const rows = rowsPadded(c.tokens);
    const f32s = (n: i32): usize => alloc(<usize>n << 2);
    this.input = f32s(c.channels * c.imageSize * c.imageSize);
    this.patchRows = f32s(c.patches * c.patchDim);
    this.x = f32s(c.tokens * c.dim);
    this.norm = f32s(c.tokens * c.dim);
    this.qkvOut = f32s(c.tokens * 3 * c.dim);
    this.scores = f32s(c.tokens * c.tokens);
    this.context = f32s(c.tokens * c.dim);
    this.mlpHidden = f32s(c.tokens * c.hidden);
    this.output = f32s(c.tokens * c.dim);
    this.captured = f32s(c.tokens * c.dim);
    this.logits = f32s(c.classes);
    this.distillationLogits = f32s(c.classes);
    const widest = max(max(k16(c.dim), k16(c.hidden)), max(k16(c.patchDim), k16(c.tokens)));
    this.qa.q = alloc(<usize>rows * widest);
    this.qa.scale = f32s(rows);
    this.qa.zero = f32s(rows);
    this.qa.sum = f32s(rows);
    this.qb.weight = alloc(<usize>max(n4(c.tokens) * k16(c.headDim), n4(c.headDim) * k16(c.tokens)));
    this.qb.scale = f32s(n4(max(c.tokens, c.headDim)));
    this.qb.sum = f32s(n4(max(c.tokens, c.headDim)));
  }
}

// Capture (docs/ARCHITECTURE.md, "Capture"): what forward() keeps besides its outputs, chosen per call.
export const CAPTURE_HIDDEN_STATES: i32 = 1; // every hidden state 0..layers
export const CAPTURE_ATTENTION: i32 = 2; // per layer: class-token rows per head and the head-mean matrix
export const CAPTURE_LAYER: i32 = 4; // one layer's attention probabilities, every head (enableCapture only)

/**
 * Capture buffers, allocated by enableCapture() on the first request that asks for them, so that a model
 * that only classifies does not carry them (a ViT-B/16: 7.5, 1.9 and 1.8 MiB); 0 until then.
 */
class CaptureState {
  flags: i32 = 0; // this forward() call's CAPTURE_HIDDEN_STATES | CAPTURE_ATTENTION bits
  layer: i32 = 0; // this call's layer (1..layers) whose full attention to keep, 0 = none
  hiddenStates: usize = 0; // f32 [layers + 1][tokens][dim]
  clsAttention: usize = 0; // f32 [layers][heads][tokens], row 0 of each head's probabilities
  meanAttention: usize = 0; // f32 [layers][tokens][tokens], mean over heads
  layerAttention: usize = 0; // f32 [heads][tokens][tokens], layer `layer`
}

class Transformer {
  config: Config;
  weights: TransformerWeights;
  state: RunState;
  capture: CaptureState = new CaptureState();
  constructor(config: Config, weights: TransformerWeights, state: RunState) {
    this.config = config;
    this.weights = weights;
    this.state = state;
  }
}

// The instance's one model: null until init() succeeds.
let model: Transformer | null = null;

/** The config from the host's struct and the sizes it implies; null when a size is invalid. */
function readConfig(s: ConfigStruct): Config | null {
  if (s.channels <= 0 || s.imageSize <= 0 || s.patchSize <= 0 || s.patchSize > s.imageSize || s.dim <= 0 ||
      s.heads <= 0 || s.dim % s.heads != 0 || s.hidden <= 0 || s.layers < 0 || s.classes <= 0) return null;
  const c = new Config();
  c.channels = s.channels;
  c.imageSize = s.imageSize;
  c.patchSize = s.patchSize;
  c.dim = s.dim;
  c.heads = s.heads;
  c.headDim = s.dim / s.heads;
  c.hidden = s.hidden;
  c.layers = s.layers;
  c.classes = s.classes;
  c.distilled = s.distilled != 0;
  c.eps = s.eps;
  c.grid = c.imageSize / c.patchSize;
  c.patches = c.grid * c.grid;
  c.prefixTokens = c.distilled ? 2 : 1;
  c.tokens = c.patches + c.prefixTokens;
  c.patchDim = c.channels * c.patchSize * c.patchSize;
  return c;
}

/**
 * The weight table the host writes (docs/ARCHITECTURE.md, "Weight table"): u32 payload pointer, u32
 * payload bytes, u32 slot count, then one u32 payload offset per slot in slot order. The payload order is
 * not known here: the host reads every offset from the bundle header's tensor table (core/bundle/layout.ts,
 * weightSlots). ABSENT marks the distillation slots of a model without them.
 */
@lazy const TABLE_HEADER_BYTES: usize = 12;
@lazy const ABSENT: u32 = 0xffffffff;
@lazy const GLOBAL_SLOTS: i32 = 17;
@lazy const LAYER_SLOTS: i32 = 20;

/** Reads the weight table into pointers, checking each tensor against the payload it lies in. */
class WeightBinder {
  table: usize;
  payload: usize;
  payloadBytes: u64;
  failed: bool = false;
  constructor(table: usize) {
    this.table = table;
    this.payload = load<u32>(table);
    this.payloadBytes = <u64>load<u32>(table, 4);
  }

  /** The pointer of slot `slot`, a tensor of `bytes` bytes (ABSENT allowed when `present` is false). */
  tensor(slot: i32, bytes: i32, present: bool = true): usize {
    const offset = load<u32>(this.table + TABLE_HEADER_BYTES + (<usize>slot << 2));
    if (!present) {
      if (offset != ABSENT) this.failed = true;
      return 0;
    }
    if (offset == ABSENT || (offset & 63) != 0 || <u64>offset + <u64>bytes > this.payloadBytes) {
      this.failed = true;
      return 0;
    }
    return this.payload + <usize>offset;
  }

  /** A Linear's four tensors from slots slot..slot+3: weight, scale, wsum, bias. */
  linear(lin: Linear, slot: i32, present: bool = true): void {
    lin.weight = this.tensor(slot, n4(lin.N) * k16(lin.K), present);
    lin.scale = this.tensor(slot + 1, n4(lin.N) * 4, present);
    lin.wsum = this.tensor(slot + 2, n4(lin.N) * 4, present);
    lin.bias = this.tensor(slot + 3, n4(lin.N) * 4, present);
  }
}

/** Binds every weight from the table's slots (slot numbers: docs/ARCHITECTURE.md, "Weight table"). */
function bindWeights(c: Config, w: TransformerWeights, b: WeightBinder): void {
  const vector = c.dim * 4;
  b.linear(w.patchEmbeddings, 0);
  w.clsToken = b.tensor(4, vector);
  w.distillationToken = b.tensor(5, vector, c.distilled);
  w.positionEmbeddings = b.tensor(6, c.tokens * vector);
  w.layernormWeight = b.tensor(7, vector);
  w.layernormBias = b.tensor(8, vector);
  b.linear(w.classifier, 9);
  b.linear(w.distillationClassifier, 13, c.distilled);
  for (let l = 0; l < c.layers; l++) {
    const layer = w.encoder[l];
    const base = GLOBAL_SLOTS + l * LAYER_SLOTS;
    layer.layernormBeforeWeight = b.tensor(base, vector);
    layer.layernormBeforeBias = b.tensor(base + 1, vector);
    b.linear(layer.qkv, base + 2);
    b.linear(layer.attentionOutput, base + 6);
    layer.layernormAfterWeight = b.tensor(base + 10, vector);
    layer.layernormAfterBias = b.tensor(base + 11, vector);
    b.linear(layer.intermediate, base + 12);
    b.linear(layer.output, base + 16);
  }
}

/**
 * Reads the config struct at `config` and the weight table at `weights`, binds every tensor and allocates
 * the run state. Returns OK or an ERR_ code; a refused call leaves the instance unbound.
 */
export function init(config: usize, weights: usize): i32 {
  if (model) return ERR_STATE;
  const s = changetype<ConfigStruct>(config);
  if (s.bytes != <i32>offsetof<ConfigStruct>()) return ERR_ABI;
  const c = readConfig(s);
  if (!c) return ERR_CONFIG;
  if (load<u32>(weights, 8) != <u32>(GLOBAL_SLOTS + c.layers * LAYER_SLOTS)) return ERR_ABI;
  const binder = new WeightBinder(weights);
  if (binder.payload & 63) return ERR_ALIGNMENT;
  const w = new TransformerWeights(c);
  bindWeights(c, w, binder);
  if (binder.failed) return ERR_WEIGHTS;
  model = new Transformer(c, w, new RunState(c));
  return OK;
}

// Before init() every pointer is 0 and tokens() is 0.
export function inputPtr(): usize { return model ? model!.state.input : 0; }
export function logitsPtr(): usize { return model ? model!.state.logits : 0; }
export function outputPtr(): usize { return model ? model!.state.output : 0; }
export function capturedPtr(): usize { return model ? model!.state.captured : 0; }
export function tokens(): i32 { return model ? model!.config.tokens : 0; }
export function hiddenStatesPtr(): usize { return model ? model!.capture.hiddenStates : 0; }
export function clsAttentionPtr(): usize { return model ? model!.capture.clsAttention : 0; }
export function meanAttentionPtr(): usize { return model ? model!.capture.meanAttention : 0; }
export function attentionsPtr(): usize { return model ? model!.capture.layerAttention : 0; }

/** Allocates the buffers of the CAPTURE_* bits in `flags` that are not allocated yet (after init). */
export function enableCapture(flags: i32): void {
  if (!model) return;
  const c = model!.config, k = model!.capture;
  const f32s = (n: i32): usize => alloc(<usize>n << 2);
  if (flags & CAPTURE_HIDDEN_STATES && k.hiddenStates == 0) k.hiddenStates = f32s((c.layers + 1) * c.tokens * c.dim);
  if (flags & CAPTURE_ATTENTION && k.clsAttention == 0) {
    k.clsAttention = f32s(max(c.layers, 1) * c.heads * c.tokens);
    k.meanAttention = f32s(max(c.layers, 1) * c.tokens * c.tokens);
  }
  if (flags & CAPTURE_LAYER && k.layerAttention == 0) k.layerAttention = f32s(c.heads * c.tokens * c.tokens);
}

/** Keeps what this call captures of head h's probabilities in layer l (0-based); reads s.scores [tokens][tokens]. */
function captureAttention(c: Config, s: RunState, k: CaptureState, l: i32, h: i32): void {
  const T = c.tokens;
  const square = <usize>(T * T) << 2;
  if (k.flags & CAPTURE_ATTENTION) {
    memory.copy(k.clsAttention + (<usize>((l * c.heads + h) * T) << 2), s.scores, <usize>T << 2);
    // head mean, summed in head order then scaled: the same float32 operations as a reference's mean
    const mean = k.meanAttention + <usize>l * square;
    if (h == 0) memory.copy(mean, s.scores, square);
    else addInPlace(mean, s.scores, T * T);
    if (h == c.heads - 1) scaleInPlace(mean, T * T, 1 / <f32>c.heads);
  }
  if (k.layer == l + 1) memory.copy(k.layerAttention + <usize>h * square, s.scores, square);
}

function scaleInPlace(dst: usize, n: i32, factor: f32): void {
  for (let i = 0; i < n; i++) {
    const p = <usize>i << 2;
    store<f32>(dst + p, load<f32>(dst + p) * factor);
  }
}

/** out[M][N] (=|+=) src[M][K] (row stride ldSrc) x lin^T + bias, through the int8 GEMM; writes s.qa. */
function linear(
  s: RunState, src: usize, ldSrc: i32, M: i32, lin: Linear, out: usize, ldOut: i32, accumulate: bool,
): void {
  const qa = s.qa;
  quantizeRows(src, ldSrc, M, lin.K, qa.q, qa.scale, qa.zero, qa.sum);
  gemm(qa.q, qa.scale, qa.zero, qa.sum, M, k16(lin.K), lin.weight, lin.scale, lin.wsum, lin.bias, lin.N, out, ldOut,
    accumulate);
}

/**
 * Patch embedding, class (and distillation) token, position embeddings: x = [cls; (dist;) patches W^T + b] + pos.
 * Reads s.input; writes s.patchRows and s.x.
 */
function embeddings(c: Config, w: TransformerWeights, s: RunState): void {
  // Flatten each patch as the conv weight is flattened: (c, py, px).
  for (let gy = 0; gy < c.grid; gy++) {
    for (let gx = 0; gx < c.grid; gx++) {
      let dst = s.patchRows + (<usize>((gy * c.grid + gx) * c.patchDim) << 2);
      for (let ch = 0; ch < c.channels; ch++) {
        for (let py = 0; py < c.patchSize; py++) {
          const src = s.input +
            (<usize>((ch * c.imageSize + gy * c.patchSize + py) * c.imageSize + gx * c.patchSize) << 2);
          memory.copy(dst, src, <usize>c.patchSize << 2);
          dst += <usize>c.patchSize << 2;
        }
      }
    }
  }
  const rowBytes = <usize>c.dim << 2;
  linear(s, s.patchRows, c.patchDim, c.patches, w.patchEmbeddings, s.x + <usize>c.prefixTokens * rowBytes, c.dim,
    false);
  memory.copy(s.x, w.clsToken, rowBytes);
  if (c.distilled) memory.copy(s.x + rowBytes, w.distillationToken, rowBytes);
  addInPlace(s.x, w.positionEmbeddings, c.tokens * c.dim);
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

/**
 * x += attention.output.dense(concat_h softmax(Q_h K_h^T / sqrt(headDim)) V_h), on norm = LN_before(x).
 * Reads s.norm; writes s.qkvOut, s.scores, s.context, s.qa, s.qb and what `k` captures of layer l; adds into s.x.
 */
function selfAttention(c: Config, layer: Layer, s: RunState, k: CaptureState, l: i32): void {
  const threeDim = 3 * c.dim;
  const headDim = c.headDim, T = c.tokens;
  const qa = s.qa, qb = s.qb;
  linear(s, s.norm, c.dim, T, layer.qkv, s.qkvOut, threeDim, false);
  const scale: f32 = 1 / Mathf.sqrt(<f32>headDim);
  for (let h = 0; h < c.heads; h++) {
    const query = s.qkvOut + (<usize>(h * headDim) << 2); // [tokens][headDim], row stride 3 * dim
    const key = query + (<usize>c.dim << 2);
    const value = key + (<usize>c.dim << 2);
    // scores [tokens][tokens] = Q_h K_h^T; B rows are tokens of K.
    quantizeRows(query, threeDim, T, headDim, qa.q, qa.scale, qa.zero, qa.sum);
    packRows(key, threeDim, 1, T, headDim, qb.weight, qb.scale, qb.sum);
    gemm(qa.q, qa.scale, qa.zero, qa.sum, T, k16(headDim), qb.weight, qb.scale, qb.sum, 0, T, s.scores, T, false);
    // P = softmax(scores * scale), kept in scores and quantized into qa in the same pass
    softmaxQuantize(s.scores, T, T, T, scale, qa.q, qa.scale, qa.zero, qa.sum);
    if (k.flags != 0 || k.layer != 0) captureAttention(c, s, k, l, h);
    // context[:, h] [tokens][headDim] = P V_h; B rows are channels of V (V^T).
    packRows(value, 1, threeDim, headDim, T, qb.weight, qb.scale, qb.sum);
    gemm(qa.q, qa.scale, qa.zero, qa.sum, T, k16(T), qb.weight, qb.scale, qb.sum, 0, headDim,
      s.context + (<usize>(h * headDim) << 2), c.dim, false);
  }
  linear(s, s.context, c.dim, T, layer.attentionOutput, s.x, c.dim, true);
}

/**
 * x += output.dense(gelu(intermediate.dense(norm))), on norm = LN_after(x).
 * Reads s.norm; writes s.mlpHidden and s.qa; adds into s.x.
 */
function mlp(c: Config, layer: Layer, s: RunState): void {
  linear(s, s.norm, c.dim, c.tokens, layer.intermediate, s.mlpHidden, c.hidden, false);
  gelu(s.mlpHidden, c.tokens * c.hidden);
  linear(s, s.mlpHidden, c.hidden, c.tokens, layer.output, s.x, c.dim, true);
}

/**
 * Runs the model on inputPtr(); `capture` = layer whose output to keep (0 = embeddings, -1 = none);
 * `flags` = CAPTURE_* bits, `attentionLayer` = layer 1..layers whose attention probabilities to keep
 * (0 = none). Each needs its buffers from enableCapture() and is ignored without them.
 * Writes logitsPtr(), outputPtr() and, when capturing, capturedPtr() and the capture buffers.
 */
export function forward(capture: i32, flags: i32, attentionLayer: i32): void {
  const t = model!;
  const c = t.config, w = t.weights, s = t.state, k = t.capture;
  const stateBytes = <usize>(c.tokens * c.dim) << 2;
  const enabled = (k.hiddenStates != 0 ? CAPTURE_HIDDEN_STATES : 0) | (k.clsAttention != 0 ? CAPTURE_ATTENTION : 0);
  k.flags = flags & enabled;
  k.layer = k.layerAttention != 0 && attentionLayer >= 1 && attentionLayer <= c.layers ? attentionLayer : 0;
  // embeddings
  embeddings(c, w, s);
  if (capture == 0) memory.copy(s.captured, s.x, stateBytes);
  if (k.flags & CAPTURE_HIDDEN_STATES) memory.copy(k.hiddenStates, s.x, stateBytes);
  for (let l = 0; l < c.layers; l++) {
    const layer = w.encoder[l];
    // norm 1, self-attention, add skip connection
    layerNorm(s.x, c.tokens, c.dim, layer.layernormBeforeWeight, layer.layernormBeforeBias, c.eps, s.norm);
    selfAttention(c, layer, s, k, l);
    // norm 2, MLP, add skip connection
    layerNorm(s.x, c.tokens, c.dim, layer.layernormAfterWeight, layer.layernormAfterBias, c.eps, s.norm);
    mlp(c, layer, s);
    if (capture == l + 1) memory.copy(s.captured, s.x, stateBytes);
    if (k.flags & CAPTURE_HIDDEN_STATES) memory.copy(k.hiddenStates + <usize>(l + 1) * stateBytes, s.x, stateBytes);
  }
  // final norm
  layerNorm(s.x, c.tokens, c.dim, w.layernormWeight, w.layernormBias, c.eps, s.output);
  // head on the class token; distilled: mean of the class head and the distillation head
  linear(s, s.output, c.dim, 1, w.classifier, s.logits, c.classes, false);
  if (c.distilled) {
    linear(s, s.output + (<usize>c.dim << 2), c.dim, 1, w.distillationClassifier, s.distillationLogits, c.classes,
      false);
    for (let k = 0; k < c.classes; k++) {
      const p = <usize>k << 2;
      store<f32>(s.logits + p, (load<f32>(s.logits + p) + load<f32>(s.distillationLogits + p)) * 0.5);
    }
  }
}
