// The ViT as three structs, as llama2.c keeps a transformer: Config (sizes, written by the host into a
// small struct in memory), TransformerWeights (pointers into the payload, bound from the host's table of
// the bundle header's tensor offsets), RunState (activation buffers, allocated once); forward() in paper
// order, following Hugging Face's ViTModel / ViTForImageClassification (and DeiT's distilled head), and
// the image towers built on the same encoder: CLIPVisionModelWithProjection (pre_layrnorm, quick_gelu,
// post_layernorm on the class token, visual_projection), SiglipVisionModel (no class token,
// gelu_pytorch_tanh, the multihead attention pooling head) and Dinov2Model (LayerScale, register tokens),
// each difference a field of the Config; then a vision-language model's connector (Idefics3's pixel
// shuffle and modality projection, LLaVA's multi_modal_projector), which makes the LLM's image tokens. Every helper takes the structs it uses and says which buffers it
// reads and writes.
import { gemm, GEMM_ROWS, k16, n4, rowsPadded } from "./kernels/gemm";
import { quantizeRows, quantizeShuffled, packRows } from "./kernels/quant";
import { layerNorm } from "./kernels/norm";
import { softmaxQuantize } from "./kernels/softmax";
import { gelu, geluTanh, quickGelu } from "./kernels/gelu";

/** init() results (core/engine/abi.ts turns each into a sentence). */
export const OK: i32 = 0;
export const ERR_CONFIG: i32 = 1; // a size is not positive, dim % heads != 0, patch > imageSize, or tower fields that do not go together
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
  bytes: i32; // 100
  channels: i32;
  imageSize: i32;
  patchSize: i32;
  dim: i32;
  heads: i32;
  hidden: i32;
  layers: i32;
  classes: i32; // 0: no classifier
  distilled: i32; // 0 or 1
  eps: f32; // LayerNorm epsilon
  hiddenAct: i32; // ACT_*
  preLayernorm: i32; // 0 or 1
  classToken: i32; // 0 or 1
  registerTokens: i32;
  layerScale: i32; // 0 or 1
  finalNorm: i32; // 0 every token, 1 the pooled token only
  pooling: i32; // 0 class token, 1 multihead attention pooling head, 2 none
  projection: i32; // 0: none
  connector: i32; // CONNECTOR_*
  scaleFactor: i32; // Idefics3's pixel shuffle block side
  lmDim: i32; // the LLM's width
  projectorHiddenAct: i32; // ACT_*, LLaVA's projector
  visionFeatureSelectStrategy: i32; // 0 default (drop the class token), 1 full
  blockRows: i32; // the memory plan's block of tokens (core/engine/memory.ts, BLOCK_ROWS): a multiple of 4 and of GEMM_ROWS
}

// ConfigStruct.hiddenAct: transformers' hidden_act names, in core/bundle/format.ts's HIDDEN_ACTS order.
const ACT_GELU: i32 = 0; // "gelu", the exact erf form
const ACT_QUICK_GELU: i32 = 1; // "quick_gelu"
const ACT_GELU_TANH: i32 = 2; // "gelu_pytorch_tanh"

// ConfigStruct.connector, in core/bundle/format.ts's CONNECTORS order.
const CONNECTOR_NONE: i32 = 0;
const CONNECTOR_IDEFICS3: i32 = 1; // pixel shuffle, then connector.modality_projection.proj
const CONNECTOR_LLAVA: i32 = 2; // multi_modal_projector: linear_1, act, linear_2

/** Sizes from the bundle header (no other constant exists) and the sizes they imply. */
export class Config {
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
  hiddenAct: i32 = ACT_GELU;
  preLayernorm: bool = false; // CLIP: pre_layrnorm on the embeddings
  classToken: bool = true; // SigLIP: none
  registerTokens: i32 = 0; // DINOv2 with registers
  layerScale: bool = false; // DINOv2: lambda1 on both residual branches
  pooledNorm: bool = false; // CLIP: the final norm (post_layernorm) on the pooled token only
  mapPooling: bool = false; // SigLIP: pooled by the multihead attention pooling head
  projection: i32 = 0; // CLIP: visual_projection width
  connector: i32 = CONNECTOR_NONE;
  scaleFactor: i32 = 1; // Idefics3: the pixel shuffle's block side
  lmDim: i32 = 0; // the LLM's width: the image tokens' width
  projectorAct: i32 = ACT_GELU; // LLaVA: between linear_1 and linear_2
  selectAll: bool = false; // LLaVA "full": the class token is an image token too
  imageTokens: i32 = 0; // rows the connector makes: patches / scaleFactor^2 (Idefics3), patches or tokens (LLaVA)
  causal: bool = false; // a text tower's causal mask (assembly/text.ts): query i attends to keys 0..i
  grid: i32 = 0; // patches per side
  patches: i32 = 0; // grid * grid
  classRows: i32 = 0; // class token (+ distillation token): the rows before the registers
  prefixTokens: i32 = 0; // classRows + registerTokens: the rows before the patches
  tokens: i32 = 0; // patches + prefixTokens
  positions: i32 = 0; // rows of the position embeddings: classRows + patches
  patchDim: i32 = 0; // channels * patchSize * patchSize
  // Tokens per block: the MLP, each query block of attention, the patch embedding and every linear() work on
  // this many rows at a time, so that only the residual stream and attention's keys and values span every
  // token. The blocks are independent rows: the results are the same for any block size.
  blockRows: i32 = 0;
  headLd: i32 = 0; // row stride of one head's columns computed alone: headDim + 3 (they start up to 3 past a group of 4)
}

/** A Linear(K -> N) in the packed B layout (docs/ARCHITECTURE.md). */
export class Linear {
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

export class Layer {
  layernormBeforeWeight: usize = 0; // f32 [dim]
  layernormBeforeBias: usize = 0; // f32 [dim]
  qkv: Linear; // dim -> 3 * dim: query rows, then key, then value
  attentionOutput: Linear; // dim -> dim
  layerScale1: usize = 0; // f32 [dim], DINOv2's layer_scale1.lambda1
  layernormAfterWeight: usize = 0; // f32 [dim]
  layernormAfterBias: usize = 0; // f32 [dim]
  intermediate: Linear; // dim -> hidden
  output: Linear; // hidden -> dim
  layerScale2: usize = 0; // f32 [dim], layer_scale2.lambda1
  constructor(dim: i32, hidden: i32) {
    this.qkv = new Linear(dim, 3 * dim);
    this.attentionOutput = new Linear(dim, dim);
    this.intermediate = new Linear(dim, hidden);
    this.output = new Linear(hidden, dim);
  }
}

/** SigLIP's SiglipMultiheadAttentionPoolingHead: a learned query attends over every token, then an MLP. */
class PoolingHead {
  probe: usize = 0; // f32 [dim], head.probe
  query: Linear; // dim -> dim, rows 0..dim-1 of attention.in_proj
  keyValue: Linear; // dim -> 2 * dim, rows dim..3 dim-1 of attention.in_proj: key rows, then value
  outProj: Linear; // dim -> dim, attention.out_proj
  layernormWeight: usize = 0; // f32 [dim]
  layernormBias: usize = 0; // f32 [dim]
  fc1: Linear; // dim -> hidden, mlp.fc1
  fc2: Linear; // hidden -> dim, mlp.fc2
  constructor(dim: i32, hidden: i32) {
    this.query = new Linear(dim, dim);
    this.keyValue = new Linear(dim, 2 * dim);
    this.outProj = new Linear(dim, dim);
    this.fc1 = new Linear(dim, hidden);
    this.fc2 = new Linear(hidden, dim);
  }
}

/** Pointers into the payload. */
class TransformerWeights {
  patchEmbeddings: Linear; // channels * patch * patch -> dim
  clsToken: usize = 0; // f32 [dim]
  distillationToken: usize = 0; // f32 [dim]
  registerTokens: usize = 0; // f32 [registerTokens][dim]
  positionEmbeddings: usize = 0; // f32 [positions][dim]
  preLayrnormWeight: usize = 0; // f32 [dim]
  preLayrnormBias: usize = 0; // f32 [dim]
  encoder: StaticArray<Layer>;
  layernormWeight: usize = 0; // f32 [dim]
  layernormBias: usize = 0; // f32 [dim]
  head: PoolingHead; // pooling by attention
  visualProjection: Linear; // dim -> projection, no bias (a zero one)
  classifier: Linear; // dim -> classes
  distillationClassifier: Linear; // dim -> classes
  modalityProjection: Linear; // dim * scaleFactor^2 -> lmDim, no bias (a zero one): Idefics3's connector
  projectorLinear1: Linear; // dim -> lmDim: LLaVA's multi_modal_projector.linear_1
  projectorLinear2: Linear; // lmDim -> lmDim: linear_2
  constructor(c: Config) {
    this.patchEmbeddings = new Linear(c.patchDim, c.dim);
    this.modalityProjection = new Linear(c.dim * c.scaleFactor * c.scaleFactor, c.lmDim);
    this.projectorLinear1 = new Linear(c.dim, c.lmDim);
    this.projectorLinear2 = new Linear(c.lmDim, c.lmDim);
    this.head = new PoolingHead(c.dim, c.hidden);
    this.visualProjection = new Linear(c.dim, c.projection);
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
  /** Places n rows of k columns in the arena from `offset`; returns the offset after them. */
  place(offset: usize, n: i32, k: i32): usize {
    this.weight = offset;
    offset = after(offset, <usize>n4(n) * k16(k));
    this.scale = offset;
    offset = after(offset, <usize>n4(n) << 2);
    this.sum = offset;
    return after(offset, <usize>n4(n) << 2);
  }
}

/** The next 64-byte-aligned offset after `bytes` at `offset`: how RunState lays out its arena. */
@inline function after(offset: usize, bytes: usize): usize {
  return (offset + bytes + 63) & ~<usize>63;
}

/**
 * Activation buffers, allocated once by init() (core/engine/memory.ts plans the same bytes). Only the
 * residual stream and attention's keys and values span every token; the rest holds one block of
 * c.blockRows tokens. The arena holds what is live in turn: the input image until the embeddings have read
 * it, then in each layer attention's operands, then the MLP's hidden rows.
 */
export class RunState {
  blockRows: i32; // c.blockRows
  input: usize = 0; // f32 [channels][imageSize][imageSize], at the start of the arena
  x: usize = 0; // f32 [tokens][dim], the residual stream; after the final norm, last_hidden_state
  rows: usize = 0; // f32 [blockRows][max(dim, patchDim)]: a block's patch rows, LayerNorm output or branch output
  query: usize = 0; // f32 [blockRows][headLd], one head's queries for a block
  context: usize = 0; // f32 [blockRows][dim], a block's heads concatenated
  captured: usize = 0; // f32 [tokens][dim], hidden_states[capture]: allocated by enableCapture(CAPTURE_HIDDEN)
  logits: usize = 0; // f32 [classes]
  distillationLogits: usize = 0; // f32 [classes]
  pooler: usize = 0; // f32 [dim], pooler_output: the class token after the final norm, or the pooling head's output
  projected: usize = 0; // f32 [projection], image_embeds
  headQuery: usize = 0; // f32 [dim], the probe's query
  headAttention: usize = 0; // f32 [heads][tokens], the pooling head's attention probabilities
  imageTokens: usize = 0; // f32 [imageTokens][lmDim], the connector's output: what the LLM receives
  // The arena's attention phase:
  tokenRows: QuantizedRows = new QuantizedRows(); // i8 [tokens padded][K16(dim)]: LN_before(x) of every token
  // (the A operand of K, V and each block's Q), the pooling head's input, or Idefics3's shuffled rows
  keys: StaticArray<PackedRows>; // [heads]: K_h, B rows are tokens [N4(tokens)][K16(headDim)]
  values: StaticArray<PackedRows>; // [heads]: V_h^T, B rows are channels [N4(headDim)][K16(tokens)]
  scores: usize = 0; // f32 [blockRows][tokens], a block's probabilities for one head; before them, one head's
  // K or V for every token, [tokens][headLd]
  // The arena's MLP phase:
  hidden: usize = 0; // f32 [blockRows][max(hidden, lmDim)], a block's MLP (LLaVA projector) hidden rows
  // GEMM A operand of a block: up to max K16 wide.
  qa: QuantizedRows = new QuantizedRows();
  constructor(c: Config) {
    const B = c.blockRows, T = c.tokens, hd = c.headDim;
    this.blockRows = B;
    const f32s = (n: i32): usize => alloc(<usize>n << 2);
    // the arena: the input, or each phase laid out from its start
    const tokenK = c.connector == CONNECTOR_IDEFICS3 ? k16(c.dim * c.scaleFactor * c.scaleFactor) : 0;
    const tokenBytes = max(<usize>rowsPadded(T) * k16(c.dim), <usize>rowsPadded(c.imageTokens) * tokenK);
    const tokenParams = <usize>rowsPadded(max(T, c.imageTokens)) << 2;
    let attention: usize = 0;
    const tokenQ = attention;
    attention = after(attention, tokenBytes);
    const tokenScale = attention;
    attention = after(attention, tokenParams);
    const tokenZero = attention;
    attention = after(attention, tokenParams);
    const tokenSum = attention;
    attention = after(attention, tokenParams);
    // the records first, offsets into the arena until it is allocated: a record made after alloc() would
    // cross the end of memory, which the runtime doubles
    const keys = new StaticArray<PackedRows>(c.heads), values = new StaticArray<PackedRows>(c.heads);
    for (let h = 0; h < c.heads; h++) {
      const k = new PackedRows(), v = new PackedRows();
      attention = k.place(attention, T, hd);
      attention = v.place(attention, hd, T);
      keys[h] = k;
      values[h] = v;
    }
    this.keys = keys;
    this.values = values;
    const scores = attention;
    attention = after(attention, <usize>max(T * c.headLd, B * T) << 2);
    const mlpBytes = <usize>B * max(c.hidden, c.connector == CONNECTOR_LLAVA ? c.lmDim : 0) << 2;
    const inputBytes = <usize>(c.channels * c.imageSize * c.imageSize) << 2;
    const arena = alloc(max(inputBytes, max(attention, mlpBytes)));
    this.input = arena;
    this.tokenRows.q = arena + tokenQ;
    this.tokenRows.scale = arena + tokenScale;
    this.tokenRows.zero = arena + tokenZero;
    this.tokenRows.sum = arena + tokenSum;
    for (let h = 0; h < c.heads; h++) {
      const k = keys[h], v = values[h];
      k.weight += arena;
      k.scale += arena;
      k.sum += arena;
      v.weight += arena;
      v.scale += arena;
      v.sum += arena;
    }
    this.scores = arena + scores;
    this.hidden = arena;
    this.x = f32s(T * c.dim);
    this.rows = f32s(B * max(c.dim, c.patchDim));
    this.query = f32s(B * c.headLd);
    this.context = f32s(B * c.dim);
    this.logits = f32s(c.classes);
    this.distillationLogits = f32s(c.classes);
    this.pooler = f32s(c.dim);
    this.projected = f32s(c.projection);
    this.headQuery = f32s(c.dim);
    this.headAttention = f32s(c.heads * T);
    this.imageTokens = f32s(c.imageTokens * c.lmDim);
    const widest = max(max(k16(c.dim), k16(c.hidden)), max(max(k16(c.patchDim), k16(T)),
      c.connector == CONNECTOR_LLAVA ? k16(c.lmDim) : 0));
    this.qa.q = alloc(<usize>B * widest);
    this.qa.scale = f32s(B);
    this.qa.zero = f32s(B);
    this.qa.sum = f32s(B);
  }
}

// Capture (docs/ARCHITECTURE.md, "Capture"): what forward() keeps besides its outputs, chosen per call. Of
// the hidden states only the one `capture` names is kept (CAPTURE_HIDDEN): a host that draws them all steps
// the pass (forwardBegin, forwardLayer) and reads the residual stream in place after each step.
export const CAPTURE_ATTENTION: i32 = 2; // per layer: the class token's rows, their head mean, attention rollout
export const CAPTURE_LAYER: i32 = 4; // one layer's attention probabilities, every head (enableCapture only)
export const CAPTURE_HIDDEN: i32 = 8; // RunState.captured, one hidden state (enableCapture only)

/**
 * Capture buffers, allocated by enableCapture() on the first request that asks for them, so that a model
 * that only classifies does not carry them (a ViT-B/16: 0.4 MiB of attention summaries and rollout, 1.8 MiB
 * for one layer's attention); 0 until then, and 0 for what the model has not (a class token's rows in SigLIP).
 */
export class CaptureState {
  flags: i32 = 0; // this forward() call's CAPTURE_ATTENTION bit
  layer: i32 = 0; // this call's layer (1..layers) whose full attention to keep, 0 = none
  clsAttention: usize = 0; // f32 [layers][heads][tokens], row 0 of each head's probabilities (class token)
  clsMean: usize = 0; // f32 [layers][tokens], their mean over the heads (class token)
  rollout: usize = 0; // f32 [layers][tokens], row 0 of the rollout through layers 1..l+1 (class token)
  headRollout: usize = 0; // f32 [tokens], the pooling head's mean attention through every layer's rollout (SigLIP)
  mean: usize = 0; // f32 [tokens][tokens], this layer's probabilities averaged over the heads, then A' R
  product: usize = 0; // f32 [tokens][tokens], the rollout so far R = A'_l ... A'_1
  row: usize = 0; // f32 [tokens], one row of A' R
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
      s.heads <= 0 || s.dim % s.heads != 0 || s.hidden <= 0 || s.layers < 0 || s.classes < 0) return null;
  if (<u32>s.hiddenAct > <u32>ACT_GELU_TANH || <u32>s.finalNorm > 1 || <u32>s.pooling > 2 || s.registerTokens < 0 ||
      s.projection < 0) return null;
  if (<u32>s.connector > <u32>CONNECTOR_LLAVA || s.scaleFactor < 1 || s.lmDim < 0 ||
      <u32>s.projectorHiddenAct > <u32>ACT_GELU_TANH || <u32>s.visionFeatureSelectStrategy > 1) return null;
  if (!validBlockRows(s.blockRows)) return null;
  if ((s.connector != CONNECTOR_NONE) != (s.lmDim > 0)) return null;
  // the combinations core/bundle/header.ts allows: the class token is there when something reads it
  if (s.classToken == 0 && (s.distilled != 0 || s.pooling == 0 || s.finalNorm != 0 || s.classes > 0)) return null;
  if (s.finalNorm != 0 && s.pooling != 0) return null;
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
  c.hiddenAct = s.hiddenAct;
  c.preLayernorm = s.preLayernorm != 0;
  c.classToken = s.classToken != 0;
  c.registerTokens = s.registerTokens;
  c.layerScale = s.layerScale != 0;
  c.pooledNorm = s.finalNorm != 0;
  c.mapPooling = s.pooling == 1;
  c.projection = s.projection;
  c.grid = c.imageSize / c.patchSize;
  c.patches = c.grid * c.grid;
  c.classRows = (c.classToken ? 1 : 0) + (c.distilled ? 1 : 0);
  c.prefixTokens = c.classRows + c.registerTokens;
  c.tokens = c.patches + c.prefixTokens;
  c.positions = c.classRows + c.patches;
  c.patchDim = c.channels * c.patchSize * c.patchSize;
  c.connector = s.connector;
  c.scaleFactor = s.scaleFactor;
  c.lmDim = s.lmDim;
  c.projectorAct = s.projectorHiddenAct;
  c.selectAll = s.visionFeatureSelectStrategy == 1;
  if (c.connector == CONNECTOR_IDEFICS3) {
    // the shuffle regroups the patch grid in scaleFactor x scaleFactor blocks: nothing may precede the patches
    if (c.grid % c.scaleFactor != 0 || c.prefixTokens != 0) return null;
    c.imageTokens = c.patches / (c.scaleFactor * c.scaleFactor);
  } else if (c.connector == CONNECTOR_LLAVA) {
    c.imageTokens = c.selectAll ? c.tokens : c.patches;
  }
  planBlocks(c, s.blockRows);
  return c;
}

/** A block of rows the host may ask for: whole groups of 4 (the activations' vector lanes) and GEMM tiles. */
export function validBlockRows(blockRows: i32): bool {
  return blockRows > 0 && blockRows % 4 == 0 && blockRows % GEMM_ROWS == 0;
}

/** c.blockRows and c.headLd from c.tokens and the host's block: one block when the tokens are fewer. */
export function planBlocks(c: Config, blockRows: i32): void {
  c.blockRows = min(blockRows, rowsPadded(c.tokens));
  c.headLd = c.headDim + 3;
}

/**
 * The weight table the host writes (docs/ARCHITECTURE.md, "Weight table"): u32 payload pointer, u32
 * payload bytes, u32 slot count, then one u32 payload offset per slot in slot order. The payload order is
 * not known here: the host reads every offset from the bundle header's tensor table (core/bundle/layout.ts,
 * weightSlots). ABSENT marks the distillation slots of a model without them.
 */
@lazy const TABLE_HEADER_BYTES: usize = 12;
@lazy const ABSENT: u32 = 0xffffffff;
// The slot numbers, as core/bundle/layout.ts's SLOT and LAYER_SLOT declare them (test/core/bundle/layout.test.ts
// holds the two to the same numbers).
@lazy const SLOT_PATCH_EMBEDDINGS: i32 = 0;
@lazy const SLOT_CLS_TOKEN: i32 = 4;
@lazy const SLOT_DISTILLATION_TOKEN: i32 = 5;
@lazy const SLOT_POSITION_EMBEDDINGS: i32 = 6;
@lazy const SLOT_LAYERNORM: i32 = 7;
@lazy const SLOT_CLASSIFIER: i32 = 9;
@lazy const SLOT_DISTILLATION_CLASSIFIER: i32 = 13;
@lazy const SLOT_PRE_LAYRNORM: i32 = 17;
@lazy const SLOT_REGISTER_TOKENS: i32 = 19;
@lazy const SLOT_HEAD_PROBE: i32 = 20;
@lazy const SLOT_HEAD_IN_PROJ_QUERY: i32 = 21;
@lazy const SLOT_HEAD_IN_PROJ_KEY_VALUE: i32 = 25;
@lazy const SLOT_HEAD_OUT_PROJ: i32 = 29;
@lazy const SLOT_HEAD_LAYERNORM: i32 = 33;
@lazy const SLOT_HEAD_FC1: i32 = 35;
@lazy const SLOT_HEAD_FC2: i32 = 39;
@lazy const SLOT_VISUAL_PROJECTION: i32 = 43;
@lazy const SLOT_MODALITY_PROJECTION: i32 = 47;
@lazy const SLOT_PROJECTOR_LINEAR1: i32 = 51;
@lazy const SLOT_PROJECTOR_LINEAR2: i32 = 55;
@lazy const GLOBAL_SLOTS: i32 = 59;
@lazy const LAYER_SLOT_LAYERNORM_BEFORE: i32 = 0;
@lazy const LAYER_SLOT_QKV: i32 = 2;
@lazy const LAYER_SLOT_ATTENTION_OUTPUT: i32 = 6;
@lazy const LAYER_SLOT_LAYERNORM_AFTER: i32 = 10;
@lazy const LAYER_SLOT_INTERMEDIATE: i32 = 12;
@lazy const LAYER_SLOT_OUTPUT: i32 = 16;
@lazy const LAYER_SLOT_LAYER_SCALE1: i32 = 20;
@lazy const LAYER_SLOT_LAYER_SCALE2: i32 = 21;
@lazy const LAYER_SLOTS: i32 = 22;

/** Reads the weight table into pointers, checking each tensor against the payload it lies in. */
export class WeightBinder {
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
  b.linear(w.patchEmbeddings, SLOT_PATCH_EMBEDDINGS);
  w.clsToken = b.tensor(SLOT_CLS_TOKEN, vector, c.classToken);
  w.distillationToken = b.tensor(SLOT_DISTILLATION_TOKEN, vector, c.distilled);
  w.registerTokens = b.tensor(SLOT_REGISTER_TOKENS, c.registerTokens * vector, c.registerTokens > 0);
  w.positionEmbeddings = b.tensor(SLOT_POSITION_EMBEDDINGS, c.positions * vector);
  w.preLayrnormWeight = b.tensor(SLOT_PRE_LAYRNORM, vector, c.preLayernorm);
  w.preLayrnormBias = b.tensor(SLOT_PRE_LAYRNORM + 1, vector, c.preLayernorm);
  w.layernormWeight = b.tensor(SLOT_LAYERNORM, vector);
  w.layernormBias = b.tensor(SLOT_LAYERNORM + 1, vector);
  const head = w.head, map = c.mapPooling;
  head.probe = b.tensor(SLOT_HEAD_PROBE, vector, map);
  b.linear(head.query, SLOT_HEAD_IN_PROJ_QUERY, map);
  b.linear(head.keyValue, SLOT_HEAD_IN_PROJ_KEY_VALUE, map);
  b.linear(head.outProj, SLOT_HEAD_OUT_PROJ, map);
  head.layernormWeight = b.tensor(SLOT_HEAD_LAYERNORM, vector, map);
  head.layernormBias = b.tensor(SLOT_HEAD_LAYERNORM + 1, vector, map);
  b.linear(head.fc1, SLOT_HEAD_FC1, map);
  b.linear(head.fc2, SLOT_HEAD_FC2, map);
  b.linear(w.visualProjection, SLOT_VISUAL_PROJECTION, c.projection > 0);
  b.linear(w.classifier, SLOT_CLASSIFIER, c.classes > 0);
  b.linear(w.distillationClassifier, SLOT_DISTILLATION_CLASSIFIER, c.distilled);
  b.linear(w.modalityProjection, SLOT_MODALITY_PROJECTION, c.connector == CONNECTOR_IDEFICS3);
  b.linear(w.projectorLinear1, SLOT_PROJECTOR_LINEAR1, c.connector == CONNECTOR_LLAVA);
  b.linear(w.projectorLinear2, SLOT_PROJECTOR_LINEAR2, c.connector == CONNECTOR_LLAVA);
  bindLayers(c, w.encoder, b, GLOBAL_SLOTS);
}

/** Binds each encoder layer's weights from its LAYER_SLOTS slots, the first at `globalSlots` (the text tower's too). */
export function bindLayers(c: Config, encoder: StaticArray<Layer>, b: WeightBinder, globalSlots: i32): void {
  const vector = c.dim * 4;
  for (let l = 0; l < c.layers; l++) {
    const layer = encoder[l];
    const base = globalSlots + l * LAYER_SLOTS;
    layer.layernormBeforeWeight = b.tensor(base + LAYER_SLOT_LAYERNORM_BEFORE, vector);
    layer.layernormBeforeBias = b.tensor(base + LAYER_SLOT_LAYERNORM_BEFORE + 1, vector);
    b.linear(layer.qkv, base + LAYER_SLOT_QKV);
    b.linear(layer.attentionOutput, base + LAYER_SLOT_ATTENTION_OUTPUT);
    layer.layerScale1 = b.tensor(base + LAYER_SLOT_LAYER_SCALE1, vector, c.layerScale);
    layer.layernormAfterWeight = b.tensor(base + LAYER_SLOT_LAYERNORM_AFTER, vector);
    layer.layernormAfterBias = b.tensor(base + LAYER_SLOT_LAYERNORM_AFTER + 1, vector);
    b.linear(layer.intermediate, base + LAYER_SLOT_INTERMEDIATE);
    b.linear(layer.output, base + LAYER_SLOT_OUTPUT);
    layer.layerScale2 = b.tensor(base + LAYER_SLOT_LAYER_SCALE2, vector, c.layerScale);
  }
}

// The records init() makes with `new` (the config, each layer's Layer and Linear records, the weights' and
// the run state's), as core/engine/memory.ts counts them: RECORD_BYTES per layer and GLOBAL_RECORDS more.
@lazy export const RECORD_BYTES: usize = 512;
@lazy export const GLOBAL_RECORDS: i32 = 6;
// per head, the run state's two PackedRows records and their places in two arrays
@lazy export const HEAD_RECORD_BYTES: usize = 96;

/** The records' bytes for `layers` and `heads` (each counted up to 64). */
export function recordBytes(layers: i32, heads: i32): usize {
  return <usize>(min(max(layers, 0), 64) + GLOBAL_RECORDS) * RECORD_BYTES + <usize>min(max(heads, 0), 64) * HEAD_RECORD_BYTES;
}

/**
 * Grows memory for `bytes` of the runtime's own allocations to come, as alloc() does for its buffers: the
 * stub runtime grows by at least doubling, so a small record crossing the end of memory after a large
 * payload would otherwise double the instance.
 */
export function reserveRecords(bytes: usize): void {
  const end = heap.alloc(0) + bytes + 128;
  const pages = <i32>((end + 0xffff) >>> 16);
  if (pages > memory.size()) memory.grow(pages - memory.size());
}

/**
 * Reads the config struct at `config` and the weight table at `weights`, binds every tensor and allocates
 * the run state. Returns OK or an ERR_ code; a refused call leaves the instance unbound.
 */
export function init(config: usize, weights: usize): i32 {
  if (model) return ERR_STATE;
  const s = changetype<ConfigStruct>(config);
  if (s.bytes != <i32>offsetof<ConfigStruct>()) return ERR_ABI;
  reserveRecords(recordBytes(s.layers, s.heads));
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
export function outputPtr(): usize { return model ? model!.state.x : 0; }
export function poolerPtr(): usize { return model ? model!.state.pooler : 0; }
export function projectedPtr(): usize { return model ? model!.state.projected : 0; }
export function headAttentionPtr(): usize { return model ? model!.state.headAttention : 0; }
export function imageTokensPtr(): usize { return model ? model!.state.imageTokens : 0; }
export function capturedPtr(): usize { return model ? model!.state.captured : 0; }
export function tokens(): i32 { return model ? model!.config.tokens : 0; }
export function residualPtr(): usize { return model ? model!.state.x : 0; }
export function clsAttentionPtr(): usize { return model ? model!.capture.clsAttention : 0; }
export function clsMeanPtr(): usize { return model ? model!.capture.clsMean : 0; }
export function rolloutPtr(): usize { return model ? model!.capture.rollout : 0; }
export function headRolloutPtr(): usize { return model ? model!.capture.headRollout : 0; }
export function attentionsPtr(): usize { return model ? model!.capture.layerAttention : 0; }

/** Allocates the buffers of the CAPTURE_* bits in `flags` that are not allocated yet (after init). */
export function enableCapture(flags: i32): void {
  if (!model) return;
  const c = model!.config, k = model!.capture;
  const f32s = (n: i32): usize => alloc(<usize>n << 2);
  const T = c.tokens, layers = max(c.layers, 1);
  if (flags & CAPTURE_ATTENTION && k.mean == 0) {
    if (c.classToken) {
      k.clsAttention = f32s(layers * c.heads * T);
      k.clsMean = f32s(layers * T);
      k.rollout = f32s(layers * T);
    }
    if (c.mapPooling) k.headRollout = f32s(T);
    k.mean = f32s(T * T);
    k.product = f32s(T * T);
    k.row = f32s(T);
  }
  if (flags & CAPTURE_LAYER && k.layerAttention == 0) k.layerAttention = f32s(c.heads * T * T);
  const s = model!.state;
  if (flags & CAPTURE_HIDDEN && s.captured == 0) s.captured = f32s(T * c.dim);
}

/**
 * Keeps what this call captures of head h's probabilities in layer l (0-based) for queries r0..r0+M-1; reads
 * s.scores [M][tokens]. The head mean is summed in head order for each row; selfAttention scales it and
 * steps the rollout once every block has been through every head.
 */
function captureAttention(c: Config, s: RunState, k: CaptureState, l: i32, h: i32, r0: i32, M: i32): void {
  const T = c.tokens;
  const rowBytes = <usize>T << 2, block = <usize>M * rowBytes;
  if (k.flags & CAPTURE_ATTENTION) {
    if (c.classToken && r0 == 0) {
      memory.copy(k.clsAttention + (<usize>((l * c.heads + h) * T) << 2), s.scores, rowBytes);
    }
    // head mean, summed in head order then scaled: the same float32 operations as a reference's mean
    const mean = k.mean + <usize>r0 * rowBytes;
    if (h == 0) memory.copy(mean, s.scores, block);
    else addInPlace(mean, s.scores, M * T);
  }
  if (k.layer == l + 1) {
    memory.copy(k.layerAttention + <usize>h * T * rowBytes + <usize>r0 * rowBytes, s.scores, block);
  }
}

/**
 * Attention rollout (Abnar & Zuidema 2020) as one running product: A' = rows renormalised of
 * 0.5 * mean + 0.5 * I (the skip connection counted as half the mixing), R = A' R. Keeps row 0 of R (the
 * class token's) and of the head mean for layer l. Reads and overwrites k.mean; writes k.product, k.row.
 * The hot spot of capture: tokens^3 per layer (7.6 M multiply-adds for a ViT-B/16).
 */
function rolloutStep(c: Config, k: CaptureState, l: i32): void {
  const T = c.tokens;
  const rowBytes = <usize>T << 2;
  if (c.classToken) memory.copy(k.clsMean + <usize>l * rowBytes, k.mean, rowBytes);
  for (let i = 0; i < T; i++) {
    const a = k.mean + <usize>i * rowBytes;
    let sum: f32 = 0.5;
    for (let j = 0; j < T; j++) sum += 0.5 * load<f32>(a + (<usize>j << 2));
    const w: f32 = 0.5 / sum;
    for (let j = 0; j < T; j++) store<f32>(a + (<usize>j << 2), load<f32>(a + (<usize>j << 2)) * w);
    store<f32>(a + (<usize>i << 2), load<f32>(a + (<usize>i << 2)) + w);
  }
  if (l > 0) {
    // row i of A' R needs only row i of A': computed into k.row, then written over it
    const T4 = T & ~3;
    for (let i = 0; i < T; i++) {
      const a = k.mean + <usize>i * rowBytes;
      memory.fill(k.row, 0, rowBytes);
      for (let m = 0; m < T; m++) {
        const weight = load<f32>(a + (<usize>m << 2));
        const r = k.product + <usize>m * rowBytes;
        const wv = f32x4.splat(weight);
        for (let j = 0; j < T4; j += 4) {
          const p = <usize>j << 2;
          v128.store(k.row + p, f32x4.add(v128.load(k.row + p), f32x4.mul(wv, v128.load(r + p))));
        }
        for (let j = T4; j < T; j++) {
          const p = <usize>j << 2;
          store<f32>(k.row + p, load<f32>(k.row + p) + weight * load<f32>(r + p));
        }
      }
      memory.copy(a, k.row, rowBytes);
    }
  }
  // A' R is the new R
  const next = k.mean;
  k.mean = k.product;
  k.product = next;
  if (c.classToken) memory.copy(k.rollout + <usize>l * rowBytes, k.product, rowBytes);
}

/**
 * SigLIP: where the pooling head looks, traced back to the input tokens through every layer: its attention
 * averaged over the heads times the rollout R. Reads s.headAttention [heads][tokens] and k.product; writes
 * k.headRollout [tokens] and k.row.
 */
function headRollout(c: Config, s: RunState, k: CaptureState): void {
  const T = c.tokens;
  const rowBytes = <usize>T << 2;
  memory.fill(k.row, 0, rowBytes);
  for (let h = 0; h < c.heads; h++) addInPlace(k.row, s.headAttention + <usize>h * rowBytes, T);
  scaleInPlace(k.row, T, 1 / <f32>c.heads);
  if (c.layers == 0) {
    memory.copy(k.headRollout, k.row, rowBytes);
    return;
  }
  memory.fill(k.headRollout, 0, rowBytes);
  for (let m = 0; m < T; m++) {
    const weight = load<f32>(k.row + (<usize>m << 2));
    const r = k.product + <usize>m * rowBytes;
    for (let j = 0; j < T; j++) {
      const p = <usize>j << 2;
      store<f32>(k.headRollout + p, load<f32>(k.headRollout + p) + weight * load<f32>(r + p));
    }
  }
}

function scaleInPlace(dst: usize, n: i32, factor: f32): void {
  for (let i = 0; i < n; i++) {
    const p = <usize>i << 2;
    store<f32>(dst + p, load<f32>(dst + p) * factor);
  }
}

/**
 * out[M][N] (=|+=) src[M][K] (row stride ldSrc) x lin^T + bias, through the int8 GEMM, a block of rows at a
 * time (each row is quantized on its own, so the blocks give what one pass over every row gives); writes s.qa.
 */
export function linear(
  s: RunState, src: usize, ldSrc: i32, M: i32, lin: Linear, out: usize, ldOut: i32, accumulate: bool,
): void {
  const qa = s.qa, B = s.blockRows;
  for (let r0 = 0; r0 < M; r0 += B) {
    const m = min(B, M - r0);
    quantizeRows(src + (<usize>r0 * ldSrc << 2), ldSrc, m, lin.K, qa.q, qa.scale, qa.zero, qa.sum);
    gemm(qa.q, qa.scale, qa.zero, qa.sum, m, k16(lin.K), lin.weight, lin.scale, lin.wsum, lin.bias, lin.N,
      out + (<usize>r0 * ldOut << 2), ldOut, accumulate);
  }
}

/** Row r of a [rows][width] f32 matrix. */
@inline function rowAt(matrix: usize, r: i32, width: i32): usize {
  return matrix + (<usize>r * width << 2);
}

/**
 * Quantizes rows r0..r0+M-1 of an A operand that spans every token: `src` [M][K] (row stride ldSrc) into
 * those rows of `dst`.
 */
function quantizeInto(src: usize, ldSrc: i32, M: i32, K: i32, dst: QuantizedRows, r0: i32): void {
  const at = <usize>r0 << 2;
  quantizeRows(src, ldSrc, M, K, dst.q + <usize>r0 * k16(K), dst.scale + at, dst.zero + at, dst.sum + at);
}

/**
 * Columns n0..n0+n-1 of lin(rows r0..r0+M-1 of s.tokenRows), one head's queries, keys or values: the GEMM
 * on the group of 4 packed weight rows holding them, into `out` [M][c.headLd]. Returns where column n0 is.
 */
function headColumns(c: Config, s: RunState, r0: i32, M: i32, lin: Linear, n0: i32, n: i32, out: usize): usize {
  const a = s.tokenRows, first = n0 & ~3, at = <usize>r0 << 2, kBytes = k16(lin.K);
  gemm(a.q + <usize>r0 * kBytes, a.scale + at, a.zero + at, a.sum + at, M, kBytes,
    lin.weight + <usize>first * kBytes, lin.scale + (<usize>first << 2), lin.wsum + (<usize>first << 2),
    lin.bias + (<usize>first << 2), n0 + n - first, out, c.headLd, false);
  return out + (<usize>(n0 - first) << 2);
}

/**
 * K_h and V_h^T of head h for every token, from s.tokenRows through `lin`'s columns keyAt + h headDim and
 * valueAt + h headDim, packed as the B operands of the scores and of the context. Writes s.scores (as one
 * head's columns), keys and values.
 */
function packKeyValue(c: Config, s: RunState, lin: Linear, keyAt: i32, valueAt: i32, h: i32, keys: PackedRows,
  values: PackedRows): void {
  const T = c.tokens, hd = c.headDim;
  // B rows are tokens of K
  const key = headColumns(c, s, 0, T, lin, keyAt + h * hd, hd, s.scores);
  packRows(key, c.headLd, 1, T, hd, keys.weight, keys.scale, keys.sum);
  // B rows are channels of V (V^T)
  const value = headColumns(c, s, 0, T, lin, valueAt + h * hd, hd, s.scores);
  packRows(value, 1, c.headLd, hd, T, values.weight, values.scale, values.sum);
}

/**
 * Patch embedding, class (and distillation) token, position embeddings, then register tokens:
 * x = [cls; (dist;) patches W^T + b] + pos, with the registers inserted after the class rows (DINOv2), then
 * CLIP's pre_layrnorm. The patches a block at a time. Reads s.input; writes s.rows and s.x.
 */
function embeddings(c: Config, w: TransformerWeights, s: RunState): void {
  const rowBytes = <usize>c.dim << 2;
  const patchesAt = s.x + <usize>c.prefixTokens * rowBytes;
  for (let p0 = 0; p0 < c.patches; p0 += c.blockRows) {
    const M = min(c.blockRows, c.patches - p0);
    // Flatten each patch as the conv weight is flattened: (c, py, px).
    for (let i = 0; i < M; i++) {
      const gy = (p0 + i) / c.grid, gx = (p0 + i) % c.grid;
      let dst = rowAt(s.rows, i, c.patchDim);
      for (let ch = 0; ch < c.channels; ch++) {
        for (let py = 0; py < c.patchSize; py++) {
          const src = s.input +
            (<usize>((ch * c.imageSize + gy * c.patchSize + py) * c.imageSize + gx * c.patchSize) << 2);
          memory.copy(dst, src, <usize>c.patchSize << 2);
          dst += <usize>c.patchSize << 2;
        }
      }
    }
    linear(s, s.rows, c.patchDim, M, w.patchEmbeddings, rowAt(patchesAt, p0, c.dim), c.dim, false);
  }
  if (c.classToken) memory.copy(s.x, w.clsToken, rowBytes);
  if (c.distilled) memory.copy(s.x + rowBytes, w.distillationToken, rowBytes);
  // position embeddings: rows 0..classRows-1 for the class rows, the rest for the patches
  addInPlace(s.x, w.positionEmbeddings, c.classRows * c.dim);
  addInPlace(patchesAt, w.positionEmbeddings + <usize>c.classRows * rowBytes, c.patches * c.dim);
  // registers after the position embeddings, which they have none of
  if (c.registerTokens > 0) memory.copy(s.x + <usize>c.classRows * rowBytes, w.registerTokens, <usize>c.registerTokens * rowBytes);
  if (c.preLayernorm) layerNorm(s.x, c.tokens, c.dim, w.preLayrnormWeight, w.preLayrnormBias, c.eps, s.x);
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

/** x[i] += y[i] * scale[i % dim]: a residual branch through LayerScale; x, y [rows][dim]. */
function addScaled(x: usize, y: usize, scale: usize, rows: i32, dim: i32): void {
  const d4 = dim & ~3;
  for (let r = 0; r < rows; r++) {
    const xr = x + (<usize>(r * dim) << 2), yr = y + (<usize>(r * dim) << 2);
    for (let i = 0; i < d4; i += 4) {
      const p = <usize>i << 2;
      v128.store(xr + p, f32x4.add(v128.load(xr + p), f32x4.mul(v128.load(yr + p), v128.load(scale + p))));
    }
    for (let i = d4; i < dim; i++) {
      const p = <usize>i << 2;
      store<f32>(xr + p, load<f32>(xr + p) + load<f32>(yr + p) * load<f32>(scale + p));
    }
  }
}

/**
 * One head's P = softmax(Q_h K_h^T / sqrt(headDim)) for M queries (tokens r0..r0+M-1) over T keys, into
 * s.scores [M][T] (f32) and s.qa (quantized for P V). `query` [M][headDim] has row stride ldQuery; `keys` is
 * K_h packed by packKeyValue.
 */
function attentionScores(
  c: Config, s: RunState, query: usize, ldQuery: i32, M: i32, r0: i32, keys: PackedRows, T: i32,
): void {
  const qa = s.qa, headDim = c.headDim;
  // scores [M][T] = Q_h K_h^T
  quantizeRows(query, ldQuery, M, headDim, qa.q, qa.scale, qa.zero, qa.sum);
  gemm(qa.q, qa.scale, qa.zero, qa.sum, M, k16(headDim), keys.weight, keys.scale, keys.sum, 0, T, s.scores, T, false);
  if (c.causal) maskFuture(s.scores, M, r0, T);
  // P = softmax(scores * scale), kept in scores and quantized into qa in the same pass
  softmaxQuantize(s.scores, M, T, T, 1 / Mathf.sqrt(<f32>headDim), qa.q, qa.scale, qa.zero, qa.sum);
}

/** The causal mask: scores[i][j] = -inf for keys j after query r0 + i, so softmax gives them exactly 0. */
function maskFuture(scores: usize, M: i32, r0: i32, T: i32): void {
  for (let i = 0; i < M; i++) {
    for (let j = r0 + i + 1; j < T; j++) store<f32>(scores + (<usize>(i * T + j) << 2), -Infinity);
  }
}

/** out [M][headDim] (row stride ldOut) = P V_h, P in s.qa from attentionScores, `values` V_h^T packed. */
function attentionContext(c: Config, s: RunState, M: i32, values: PackedRows, T: i32, out: usize, ldOut: i32): void {
  const qa = s.qa;
  gemm(qa.q, qa.scale, qa.zero, qa.sum, M, k16(T), values.weight, values.scale, values.sum, 0, c.headDim, out, ldOut,
    false);
}

/**
 * x += attention.output.dense(concat_h softmax(Q_h K_h^T / sqrt(headDim)) V_h) (times lambda1 with
 * LayerScale), on LN_before(x). Every token's keys and values first, then a block of queries at a time,
 * head by head, so that no [tokens][tokens] buffer exists. Writes s.rows, s.tokenRows, s.keys, s.values,
 * s.query, s.scores, s.context, s.qa and what `k` captures of layer l; adds into s.x.
 */
function selfAttention(c: Config, layer: Layer, s: RunState, k: CaptureState, l: i32): void {
  const T = c.tokens, B = c.blockRows, hd = c.headDim;
  // norm 1 of every token, quantized once: the A operand of K, V and each block's Q
  for (let r0 = 0; r0 < T; r0 += B) {
    const M = min(B, T - r0);
    layerNorm(rowAt(s.x, r0, c.dim), M, c.dim, layer.layernormBeforeWeight, layer.layernormBeforeBias, c.eps, s.rows);
    quantizeInto(s.rows, c.dim, M, c.dim, s.tokenRows, r0);
  }
  // qkv's rows: query, then key, then value
  for (let h = 0; h < c.heads; h++) packKeyValue(c, s, layer.qkv, c.dim, 2 * c.dim, h, s.keys[h], s.values[h]);
  for (let r0 = 0; r0 < T; r0 += B) {
    const M = min(B, T - r0);
    for (let h = 0; h < c.heads; h++) {
      const query = headColumns(c, s, r0, M, layer.qkv, h * hd, hd, s.query);
      attentionScores(c, s, query, c.headLd, M, r0, s.keys[h], T);
      if (k.flags != 0 || k.layer != 0) captureAttention(c, s, k, l, h, r0, M);
      attentionContext(c, s, M, s.values[h], T, s.context + (<usize>(h * hd) << 2), c.dim);
    }
    // the output projection of this block; add skip connection
    const x = rowAt(s.x, r0, c.dim);
    if (c.layerScale) {
      linear(s, s.context, c.dim, M, layer.attentionOutput, s.rows, c.dim, false);
      addScaled(x, s.rows, layer.layerScale1, M, c.dim);
    } else {
      linear(s, s.context, c.dim, M, layer.attentionOutput, x, c.dim, true);
    }
  }
  if (k.flags & CAPTURE_ATTENTION) {
    scaleInPlace(k.mean, T * T, 1 / <f32>c.heads);
    rolloutStep(c, k, l);
  }
}

/** The MLP's activation, hidden_act, in place over n values. */
function activation(c: Config, x: usize, n: i32): void {
  activate(c.hiddenAct, x, n);
}

/** Activation `act` (ACT_*) in place over n values. */
function activate(act: i32, x: usize, n: i32): void {
  if (act == ACT_QUICK_GELU) quickGelu(x, n);
  else if (act == ACT_GELU_TANH) geluTanh(x, n);
  else gelu(x, n);
}

/**
 * x += output.dense(act(intermediate.dense(LN_after(x)))) (times lambda2 with LayerScale), a block of tokens
 * at a time (each row's branch reads only that row). Writes s.rows, s.hidden and s.qa; adds into s.x.
 */
function mlp(c: Config, layer: Layer, s: RunState): void {
  for (let r0 = 0; r0 < c.tokens; r0 += c.blockRows) {
    const M = min(c.blockRows, c.tokens - r0);
    const x = rowAt(s.x, r0, c.dim);
    layerNorm(x, M, c.dim, layer.layernormAfterWeight, layer.layernormAfterBias, c.eps, s.rows);
    linear(s, s.rows, c.dim, M, layer.intermediate, s.hidden, c.hidden, false);
    activation(c, s.hidden, M * c.hidden);
    if (c.layerScale) {
      linear(s, s.hidden, c.hidden, M, layer.output, s.rows, c.dim, false);
      addScaled(x, s.rows, layer.layerScale2, M, c.dim);
    } else {
      linear(s, s.hidden, c.hidden, M, layer.output, x, c.dim, true);
    }
  }
}

/**
 * SigLIP's pooling head: the probe's query attends over every token of last_hidden_state (s.x), then
 * pooler = a + fc2(act(fc1(LN(a)))), a = out_proj(attention). Writes s.headQuery, s.tokenRows, s.keys[0],
 * s.values[0], s.scores, s.headAttention, s.context (row 0), s.rows (row 0), s.hidden (row 0), s.qa and s.pooler.
 */
function poolingHead(c: Config, head: PoolingHead, s: RunState): void {
  const T = c.tokens, headDim = c.headDim;
  linear(s, head.probe, c.dim, 1, head.query, s.headQuery, c.dim, false);
  quantizeInto(s.x, c.dim, T, c.dim, s.tokenRows, 0);
  for (let h = 0; h < c.heads; h++) {
    const offset = <usize>(h * headDim) << 2;
    // in_proj's key rows, then its value rows
    packKeyValue(c, s, head.keyValue, 0, c.dim, h, s.keys[0], s.values[0]);
    attentionScores(c, s, s.headQuery + offset, c.dim, 1, 0, s.keys[0], T);
    memory.copy(s.headAttention + (<usize>(h * T) << 2), s.scores, <usize>T << 2);
    attentionContext(c, s, 1, s.values[0], T, s.context + offset, c.dim);
  }
  linear(s, s.context, c.dim, 1, head.outProj, s.pooler, c.dim, false);
  // MLP with a residual
  layerNorm(s.pooler, 1, c.dim, head.layernormWeight, head.layernormBias, c.eps, s.rows);
  linear(s, s.rows, c.dim, 1, head.fc1, s.hidden, c.hidden, false);
  activation(c, s.hidden, c.hidden);
  linear(s, s.hidden, c.hidden, 1, head.fc2, s.pooler, c.dim, true);
}

/**
 * The connector of a vision-language model, on the encoder's output: the rows the LLM receives in place of
 * its image tokens. Idefics3: pixel shuffle of last_hidden_state (after post_layernorm) by scaleFactor,
 * folded into the quantization of the projection's A operand, then modality_projection.proj. LLaVA: the
 * chosen layer's hidden state (the tower is stored up to it and its final norm applies to the pooled token
 * only, so s.x is that hidden state), without the class token unless "full", then
 * linear_2(act(linear_1(x))), a block of rows at a time. Reads s.x; writes s.tokenRows, s.qa, s.hidden and
 * s.imageTokens.
 */
function connector(c: Config, w: TransformerWeights, s: RunState): void {
  const M = c.imageTokens;
  if (c.connector == CONNECTOR_IDEFICS3) {
    const lin = w.modalityProjection, a = s.tokenRows;
    quantizeShuffled(s.x, c.grid, c.dim, c.scaleFactor, a.q, a.scale, a.zero, a.sum);
    gemm(a.q, a.scale, a.zero, a.sum, M, k16(lin.K), lin.weight, lin.scale, lin.wsum, lin.bias, lin.N,
      s.imageTokens, c.lmDim, false);
  } else if (c.connector == CONNECTOR_LLAVA) {
    const features = s.x + (c.selectAll ? 0 : <usize>(c.prefixTokens * c.dim) << 2);
    for (let r0 = 0; r0 < M; r0 += c.blockRows) {
      const m = min(c.blockRows, M - r0);
      linear(s, rowAt(features, r0, c.dim), c.dim, m, w.projectorLinear1, s.hidden, c.lmDim, false);
      activate(c.projectorAct, s.hidden, m * c.lmDim);
      linear(s, s.hidden, c.lmDim, m, w.projectorLinear2, rowAt(s.imageTokens, r0, c.lmDim), c.lmDim, false);
    }
  }
}

/**
 * Runs the model on inputPtr(); `capture` = layer whose output to keep (0 = embeddings, -1 = none);
 * `flags` = CAPTURE_* bits, `attentionLayer` = layer 1..layers whose attention probabilities to keep
 * (0 = none). Each needs its buffers from enableCapture() and is ignored without them.
 * Writes logitsPtr(), outputPtr() and, when capturing, capturedPtr() and the capture buffers.
 * A host that reads every hidden state calls the three steps itself, reading residualPtr() between them.
 */
export function forward(capture: i32, flags: i32, attentionLayer: i32): void {
  forwardBegin(capture, flags, attentionLayer);
  for (let l = 0; l < model!.config.layers; l++) forwardLayer(l);
  forwardEnd();
}

// This call's capture: which layer's output to copy into s.captured (-1 none).
let captureLayer: i32 = -1;

/** The call's capture settings (see forward), then the embeddings: residualPtr() is hidden state 0. */
export function forwardBegin(capture: i32, flags: i32, attentionLayer: i32): void {
  const t = model!;
  const c = t.config, s = t.state, k = t.capture;
  captureLayer = capture;
  k.flags = flags & (k.mean != 0 ? CAPTURE_ATTENTION : 0);
  k.layer = k.layerAttention != 0 && attentionLayer >= 1 && attentionLayer <= c.layers ? attentionLayer : 0;
  // embeddings
  embeddings(c, t.weights, s);
  if (capture == 0 && s.captured != 0) memory.copy(s.captured, s.x, <usize>(c.tokens * c.dim) << 2);
}

/** Encoder layer l (0-based): residualPtr() is hidden state l + 1 after it. */
export function forwardLayer(l: i32): void {
  const t = model!;
  const c = t.config, s = t.state;
  encoderLayer(c, t.weights.encoder[l], s, t.capture, l);
  if (captureLayer == l + 1 && s.captured != 0) memory.copy(s.captured, s.x, <usize>(c.tokens * c.dim) << 2);
}

/**
 * One encoder layer on the first c.tokens rows of s.x, the image tower's and the text tower's
 * (assembly/text.ts) alike: x += attn(ln1(x)); x += mlp(ln2(x)).
 */
export function encoderLayer(c: Config, layer: Layer, s: RunState, k: CaptureState, l: i32): void {
  // norm 1, self-attention (causal in CLIP's text tower), add skip connection
  selfAttention(c, layer, s, k, l);
  // norm 2, MLP, add skip connection
  mlp(c, layer, s);
}

/** After the last layer: the final norm, pooling, projection and classifier. */
export function forwardEnd(): void {
  const t = model!;
  const c = t.config, w = t.weights, s = t.state, k = t.capture;
  // final norm, in place: s.x becomes last_hidden_state; on every token, or (CLIP) only on the pooled class
  // token, last_hidden_state staying the encoder's output
  const rowBytes = <usize>c.dim << 2;
  if (c.pooledNorm) {
    layerNorm(s.x, 1, c.dim, w.layernormWeight, w.layernormBias, c.eps, s.pooler);
  } else {
    layerNorm(s.x, c.tokens, c.dim, w.layernormWeight, w.layernormBias, c.eps, s.x);
    if (!c.mapPooling) memory.copy(s.pooler, s.x, rowBytes);
  }
  // pooling head (SigLIP), projection (CLIP)
  if (c.mapPooling) {
    poolingHead(c, w.head, s);
    if (k.flags & CAPTURE_ATTENTION) headRollout(c, s, k);
  }
  if (c.projection > 0) linear(s, s.pooler, c.dim, 1, w.visualProjection, s.projected, c.projection, false);
  // classifier on the class token; distilled: mean of the class head and the distillation head
  if (c.classes > 0) linear(s, s.x, c.dim, 1, w.classifier, s.logits, c.classes, false);
  if (c.distilled) {
    linear(s, s.x + rowBytes, c.dim, 1, w.distillationClassifier, s.distillationLogits, c.classes, false);
    for (let k = 0; k < c.classes; k++) {
      const p = <usize>k << 2;
      store<f32>(s.logits + p, (load<f32>(s.logits + p) + load<f32>(s.distillationLogits + p)) * 0.5);
    }
  }
  // a VLM's connector: the image tokens
  if (c.connector != CONNECTOR_NONE) connector(c, w, s);
}
