// The text towers of CLIP and SigLIP (CLIPTextModelWithProjection, SiglipTextModel), on the image encoder's
// layer (model.ts: the same Layer and encoderLayer, through the int8 GEMM): token embeddings (int8
// rows with a scale each) plus position embeddings, the encoder with a causal mask (CLIP) or without
// (SigLIP), final_layer_norm on the pooled token, then the projection (CLIP's text_projection, SigLIP's
// head). The host tokenizes and chooses the pooled position (core/bundle/text.ts, poolIndex); an instance
// holds an image model (model.ts) or a text model, never both.
import { layerNorm } from "./kernels/norm";
import {
  alloc, bindLayers, CaptureState, Config, encoderLayer, ERR_ABI, ERR_ALIGNMENT, ERR_CONFIG, ERR_STATE, ERR_WEIGHTS, Layer,
  linear, Linear, OK, planBlocks, recordBytes, reserveRecords, RunState, validBlockRows, WeightBinder,
} from "./model";

/** textForward() results. */
export const ERR_INPUT: i32 = 6; // a token count outside 1..positions, a pooled position past it, or an id past the vocabulary

/** The config struct the host writes (core/engine/text.ts, TEXT_CONFIG_STRUCT), fields in this order. */
@unmanaged class TextConfigStruct {
  bytes: i32; // 48
  vocab: i32;
  positions: i32;
  dim: i32;
  heads: i32;
  hidden: i32;
  layers: i32;
  eps: f32;
  hiddenAct: i32; // model.ts's ACT_* numbering
  causal: i32; // 0 or 1
  projection: i32;
  blockRows: i32; // the memory plan's block of tokens, as model.ts's ConfigStruct.blockRows
}

// Weight slots as core/bundle/layout.ts's TEXT_SLOT declares them; each layer's are model.ts's (bindLayers).
@lazy const SLOT_TOKEN_EMBEDDING: i32 = 0;
@lazy const SLOT_TOKEN_EMBEDDING_SCALE: i32 = 1;
@lazy const SLOT_POSITION_EMBEDDING: i32 = 2;
@lazy const SLOT_FINAL_LAYER_NORM: i32 = 3;
@lazy const SLOT_PROJECTION: i32 = 5;
@lazy const GLOBAL_SLOTS: i32 = 9;
@lazy const LAYER_SLOTS: i32 = 22; // model.ts's, which bindLayers binds
@lazy const ACT_LAST: i32 = 2;

class TextWeights {
  tokenEmbedding: usize = 0; // i8 [vocab][dim]
  tokenEmbeddingScale: usize = 0; // f32 [vocab]
  positionEmbedding: usize = 0; // f32 [positions][dim]
  encoder: StaticArray<Layer>;
  finalLayerNormWeight: usize = 0; // f32 [dim]
  finalLayerNormBias: usize = 0; // f32 [dim]
  projection: Linear; // dim -> projection (CLIP: a zero bias)
  constructor(c: Config) {
    this.projection = new Linear(c.dim, c.projection);
    const encoder = new StaticArray<Layer>(c.layers);
    for (let l = 0; l < c.layers; l++) encoder[l] = new Layer(c.dim, c.hidden);
    this.encoder = encoder;
  }
}

class TextModel {
  config: Config; // config.tokens: the positions planned for; each forward sets the count it runs
  positions: i32;
  vocab: i32;
  weights: TextWeights;
  state: RunState;
  capture: CaptureState = new CaptureState(); // never enabled: the layer functions take one
  ids: usize; // i32 [positions], written by the host
  constructor(config: Config, positions: i32, vocab: i32, weights: TextWeights) {
    this.config = config;
    this.positions = positions;
    this.vocab = vocab;
    this.weights = weights;
    this.state = new RunState(config);
    this.ids = alloc(<usize>positions << 2);
  }
}

let text: TextModel | null = null;

function bindText(c: Config, w: TextWeights, b: WeightBinder, vocab: i32, positions: i32): void {
  const vector = c.dim * 4;
  w.tokenEmbedding = b.tensor(SLOT_TOKEN_EMBEDDING, vocab * c.dim);
  w.tokenEmbeddingScale = b.tensor(SLOT_TOKEN_EMBEDDING_SCALE, vocab * 4);
  w.positionEmbedding = b.tensor(SLOT_POSITION_EMBEDDING, positions * vector);
  w.finalLayerNormWeight = b.tensor(SLOT_FINAL_LAYER_NORM, vector);
  w.finalLayerNormBias = b.tensor(SLOT_FINAL_LAYER_NORM + 1, vector);
  b.linear(w.projection, SLOT_PROJECTION);
  bindLayers(c, w.encoder, b, GLOBAL_SLOTS);
}

/** Reads the text config struct and the weight table (model.ts's format), binds the weights, plans the run state. */
export function textInit(config: usize, weights: usize): i32 {
  if (text) return ERR_STATE;
  const s = changetype<TextConfigStruct>(config);
  if (s.bytes != <i32>offsetof<TextConfigStruct>()) return ERR_ABI;
  reserveRecords(recordBytes(s.layers, s.heads));
  if (s.vocab <= 0 || s.positions <= 0 || s.dim <= 0 || s.heads <= 0 || s.dim % s.heads != 0 || s.hidden <= 0 ||
      s.layers < 0 || s.projection <= 0 || <u32>s.hiddenAct > <u32>ACT_LAST || !validBlockRows(s.blockRows)) return ERR_CONFIG;
  const c = new Config();
  c.dim = s.dim;
  c.heads = s.heads;
  c.headDim = s.dim / s.heads;
  c.hidden = s.hidden;
  c.layers = s.layers;
  c.eps = s.eps;
  c.hiddenAct = s.hiddenAct;
  c.causal = s.causal != 0;
  c.projection = s.projection;
  c.tokens = s.positions; // the run state is planned for the longest sequence
  planBlocks(c, s.blockRows);
  if (load<u32>(weights, 8) != <u32>(GLOBAL_SLOTS + c.layers * LAYER_SLOTS)) return ERR_ABI;
  const binder = new WeightBinder(weights);
  if (binder.payload & 63) return ERR_ALIGNMENT;
  const w = new TextWeights(c);
  bindText(c, w, binder, s.vocab, s.positions);
  if (binder.failed) return ERR_WEIGHTS;
  text = new TextModel(c, s.positions, s.vocab, w);
  return OK;
}

/**
 * x[t] = token_embedding[ids[t]] + position_embedding[t] for t < n, the int8 row times its scale.
 * Reads m.ids; writes s.x.
 */
function textEmbeddings(m: TextModel, n: i32): void {
  const c = m.config, w = m.weights, s = m.state, dim = c.dim;
  for (let t = 0; t < n; t++) {
    const id = load<i32>(m.ids + (<usize>t << 2));
    const row = w.tokenEmbedding + <usize>id * dim;
    const scale = load<f32>(w.tokenEmbeddingScale + (<usize>id << 2));
    const pos = w.positionEmbedding + (<usize>(t * dim) << 2);
    const x = s.x + (<usize>(t * dim) << 2);
    for (let d = 0; d < dim; d++) {
      store<f32>(x + (<usize>d << 2), <f32>load<i8>(row + d) * scale + load<f32>(pos + (<usize>d << 2)));
    }
  }
}

/**
 * Runs the first `n` ids of textIdsPtr() and pools position `at`: pooler = final_layer_norm(x[at]),
 * embeds = projection(pooler). CLIP runs up to its end-of-text token only: under the causal mask the
 * positions after it change nothing before it. Returns OK or ERR_INPUT.
 */
export function textForward(n: i32, at: i32): i32 {
  const m = text!;
  const c = m.config, w = m.weights, s = m.state;
  if (n < 1 || n > m.positions || at < 0 || at >= n) return ERR_INPUT;
  for (let t = 0; t < n; t++) {
    if (<u32>load<i32>(m.ids + (<usize>t << 2)) >= <u32>m.vocab) return ERR_INPUT;
  }
  c.tokens = n;
  textEmbeddings(m, n);
  for (let l = 0; l < c.layers; l++) encoderLayer(c, w.encoder[l], s, m.capture, l);
  // final_layer_norm on the pooled token, then the projection
  layerNorm(s.x + (<usize>(at * c.dim) << 2), 1, c.dim, w.finalLayerNormWeight, w.finalLayerNormBias, c.eps, s.pooler);
  linear(s, s.pooler, c.dim, 1, w.projection, s.projected, c.projection, false);
  return OK;
}

export function textIdsPtr(): usize { return text ? text!.ids : 0; }
export function textPoolerPtr(): usize { return text ? text!.state.pooler : 0; }
export function textEmbedsPtr(): usize { return text ? text!.state.projected : 0; }
export function textPositions(): i32 { return text ? text!.positions : 0; }
