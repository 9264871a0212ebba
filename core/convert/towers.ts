// The image towers a checkpoint directory can hold, beside the ViT classifiers: CLIP (CLIPModel's vision
// tower and visual_projection, CLIPVisionModelWithProjection, CLIPVisionModel), SigLIP and SigLIP 2 at a
// fixed resolution (SiglipModel's vision tower, SiglipVisionModel) and DINOv2 (Dinov2Model,
// Dinov2WithRegistersModel), and the vision side of two vision-language models: Idefics3 / SmolVLM
// (their SigLIP-style vision tower and connector) and LLaVA (its CLIP tower up to vision_feature_layer and
// multi_modal_projector). Each becomes the bundle's ViT layout plus its tower fields (FORMAT.md); this
// file reads config.json with each config class's defaults and maps the hub's tensor names to the bundle's.
// Text towers, language models and logit scales are left in the checkpoint.
import { HIDDEN_ACTS, type HiddenAct, type ModelConfig } from "../bundle/format.ts";
import { interpolateBicubic } from "./interpolate.ts";
import { ConvertError, Recipes } from "./recipe.ts";

type Json = Record<string, unknown>;

export type TowerLayout = "hf-clip" | "hf-siglip" | "hf-dinov2" | "hf-idefics3" | "hf-llava";

// config.json's model_type -> the `architectures` classes that go with it.
export const TOWER_ARCHITECTURES: Record<string, string[]> = {
  clip: ["CLIPModel"],
  clip_vision_model: ["CLIPVisionModelWithProjection", "CLIPVisionModel"],
  siglip: ["SiglipModel"],
  siglip_vision_model: ["SiglipVisionModel"],
  dinov2: ["Dinov2Model"],
  dinov2_with_registers: ["Dinov2WithRegistersModel"],
  idefics3: ["Idefics3ForConditionalGeneration"],
  smolvlm: ["SmolVLMForConditionalGeneration"],
  llava: ["LlavaForConditionalGeneration"],
};

// Each config class's defaults (transformers' CLIPVisionConfig, SiglipVisionConfig, Dinov2Config): the hub's
// files leave out what equals them.
const CLIP_VISION_DEFAULTS = {
  hidden_size: 768,
  intermediate_size: 3072,
  num_hidden_layers: 12,
  num_attention_heads: 12,
  num_channels: 3,
  image_size: 224,
  patch_size: 32,
  hidden_act: "quick_gelu",
  layer_norm_eps: 1e-5,
};
const SIGLIP_VISION_DEFAULTS = {
  hidden_size: 768,
  intermediate_size: 3072,
  num_hidden_layers: 12,
  num_attention_heads: 12,
  num_channels: 3,
  image_size: 224,
  patch_size: 16,
  hidden_act: "gelu_pytorch_tanh",
  layer_norm_eps: 1e-6,
  vision_use_head: true,
};
const DINOV2_DEFAULTS = {
  hidden_size: 768,
  num_hidden_layers: 12,
  num_attention_heads: 12,
  mlp_ratio: 4,
  hidden_act: "gelu",
  layer_norm_eps: 1e-6,
  image_size: 224,
  patch_size: 14,
  num_channels: 3,
  qkv_bias: true,
  use_swiglu_ffn: false,
  num_register_tokens: 0,
};
// CLIPConfig.projection_dim
const CLIP_PROJECTION = 512;
// Idefics3VisionConfig (SmolVLMVisionConfig has the same)
const IDEFICS3_VISION_DEFAULTS = {
  hidden_size: 1152,
  intermediate_size: 3072,
  num_hidden_layers: 12,
  num_attention_heads: 16,
  num_channels: 3,
  image_size: 224,
  patch_size: 32,
  hidden_act: "gelu_pytorch_tanh",
  layer_norm_eps: 1e-6,
};
// LlavaConfig without a vision_config: CLIP ViT-L/14 at 336
const LLAVA_VISION_DEFAULTS = {
  ...CLIP_VISION_DEFAULTS,
  hidden_size: 1024,
  intermediate_size: 4096,
  num_hidden_layers: 24,
  num_attention_heads: 16,
  image_size: 336,
  patch_size: 14,
};
// LlamaConfig.hidden_size: the text_config both VLM configs fall back to
const LLAMA_HIDDEN_SIZE = 4096;

export interface Tower {
  layout: TowerLayout;
  config: ModelConfig;
  recipes: Recipes;
}

export function positiveInt(v: unknown, what: string): number {
  if (!Number.isInteger(v) || (v as number) <= 0)
    throw new ConvertError(`config.json: ${what} must be a positive integer, got ${JSON.stringify(v)}`);
  return v as number;
}

function withDefaults<T extends Record<string, unknown>>(defaults: T, cfg: unknown): T {
  const out: Record<string, unknown> = { ...defaults };
  for (const [k, v] of Object.entries((cfg ?? {}) as Json)) if (v !== null && v !== undefined) out[k] = v;
  return out as T;
}

function hiddenAct(v: unknown, where: string): HiddenAct {
  if (!HIDDEN_ACTS.includes(v as HiddenAct)) {
    throw new ConvertError(
      `config.json: ${where}hidden_act ${JSON.stringify(v)} is not one the engine computes (${HIDDEN_ACTS.join(", ")})`,
    );
  }
  return v as HiddenAct;
}

// The sizes every encoder shares, from a vision config with its defaults applied.
function encoderSizes(v: Record<string, unknown>, imageSize: number, hidden: number): ModelConfig {
  return {
    imageSize,
    patchSize: positiveInt(v.patch_size, "patch_size"),
    channels: positiveInt(v.num_channels, "num_channels"),
    dim: positiveInt(v.hidden_size, "hidden_size"),
    heads: positiveInt(v.num_attention_heads, "num_attention_heads"),
    hidden,
    layers: positiveInt(v.num_hidden_layers, "num_hidden_layers"),
    classes: 0,
    eps: Number(v.layer_norm_eps),
    distilled: false,
  };
}

// A CLIP vision transformer under `m` (CLIPModel's `vision_model.`, LLaVA's `vision_tower.vision_model.`):
// the patch embedding without bias, class and position embeddings, pre_layrnorm, the encoder, post_layernorm.
function clipVisionTower(m: string, config: ModelConfig): Recipes {
  const r = new Recipes();
  const { dim, channels, patchSize, imageSize } = config;
  r.patch(`${m}embeddings.patch_embedding`, dim, channels, patchSize, true); // no bias
  r.f32("embeddings.cls_token", `${m}embeddings.class_embedding`, [dim]);
  r.f32("embeddings.position_embeddings", `${m}embeddings.position_embedding.weight`, [
    (imageSize / patchSize) ** 2 + 1,
    dim,
  ]);
  r.norm("pre_layrnorm", `${m}pre_layrnorm`, dim);
  clipEncoder(r, m, config);
  r.norm("layernorm", `${m}post_layernorm`, dim);
  return r;
}

// CLIP / SigLIP encoder layers (encoder.layers.N.{layer_norm1, self_attn.{q,k,v,out}_proj, layer_norm2,
// mlp.fc1, mlp.fc2}) under `prefix`, as the bundle's layer tensors.
function clipEncoder(r: Recipes, prefix: string, c: ModelConfig): void {
  for (let l = 0; l < c.layers; l++) {
    const s = `${prefix}encoder.layers.${l}.`,
      p = `encoder.layer.${l}`;
    r.norm(`${p}.layernorm_before`, `${s}layer_norm1`, c.dim);
    const a = `${s}self_attn.`;
    r.linear(`${p}.attention.qkv`, [`${a}q_proj`, `${a}k_proj`, `${a}v_proj`], c.dim, 3 * c.dim);
    r.linear(`${p}.attention.output.dense`, [`${a}out_proj`], c.dim, c.dim);
    r.norm(`${p}.layernorm_after`, `${s}layer_norm2`, c.dim);
    r.linear(`${p}.intermediate.dense`, [`${s}mlp.fc1`], c.dim, c.hidden);
    r.linear(`${p}.output.dense`, [`${s}mlp.fc2`], c.hidden, c.dim);
  }
}

function clip(cfg: Json, has: (name: string) => boolean, shape: (name: string) => number[]): Tower {
  const twoTower = cfg.model_type === "clip";
  const v = withDefaults(CLIP_VISION_DEFAULTS, twoTower ? cfg.vision_config : cfg);
  const where = twoTower ? "vision_config." : "";
  const imageSize = positiveInt(v.image_size, `${where}image_size`);
  const base = encoderSizes(v, imageSize, positiveInt(v.intermediate_size, `${where}intermediate_size`));
  // CLIPModel and CLIPVisionModelWithProjection project; a CLIPVisionModel checkpoint has no projection
  const projection = has("visual_projection.weight")
    ? positiveInt(cfg.projection_dim ?? CLIP_PROJECTION, "projection_dim")
    : 0;
  if (projection > 0 && shape("visual_projection.weight")[0] !== projection) {
    throw new ConvertError(
      `model.safetensors: visual_projection.weight has ${shape("visual_projection.weight")[0]} rows, config.json's projection_dim is ${projection}`,
    );
  }
  const config: ModelConfig = {
    ...base,
    family: "clip",
    hiddenAct: hiddenAct(v.hidden_act, where),
    preLayernorm: true,
    finalNorm: "pooled",
    projection,
  };
  const r = clipVisionTower("vision_model.", config);
  const { dim } = config;
  if (projection > 0) r.linear("visual_projection", ["visual_projection"], dim, projection, true); // no bias
  return { layout: "hf-clip", config, recipes: r };
}

function siglip(cfg: Json): Tower {
  const twoTower = cfg.model_type === "siglip";
  const v = withDefaults(SIGLIP_VISION_DEFAULTS, twoTower ? cfg.vision_config : cfg);
  const where = twoTower ? "vision_config." : "";
  if (v.vision_use_head !== true) {
    throw new ConvertError(
      `config.json: ${where}vision_use_head is false: this SigLIP has no pooling head, and its pooled output is what edgevit answers with`,
    );
  }
  const imageSize = positiveInt(v.image_size, `${where}image_size`);
  const base = encoderSizes(v, imageSize, positiveInt(v.intermediate_size, `${where}intermediate_size`));
  const config: ModelConfig = {
    ...base,
    family: "siglip",
    hiddenAct: hiddenAct(v.hidden_act, where),
    classToken: false,
    pooling: "map",
  };
  const r = new Recipes();
  const m = "vision_model.";
  const { dim, hidden, channels, patchSize } = config;
  r.patch(`${m}embeddings.patch_embedding`, dim, channels, patchSize);
  r.f32("embeddings.position_embeddings", `${m}embeddings.position_embedding.weight`, [
    (imageSize / patchSize) ** 2,
    dim,
  ]);
  clipEncoder(r, m, config);
  r.norm("layernorm", `${m}post_layernorm`, dim);
  const h = `${m}head.`;
  r.f32("head.probe", `${h}probe`, [1, 1, dim]);
  // torch.nn.MultiheadAttention's packed in_proj: rows query, key, value. The probe's query is one row;
  // keys and values are every token's.
  const inProj = (name: string, rows: [number, number]) =>
    r.set(name, {
      kind: "linear",
      weights: [`${h}attention.in_proj_weight`],
      biases: [`${h}attention.in_proj_bias`],
      optionalBias: false,
      n: rows[1] - rows[0],
      k: dim,
      weightShape: [3 * dim, dim],
      biasShape: [3 * dim],
      rows,
    });
  inProj("head.attention.in_proj.query", [0, dim]);
  inProj("head.attention.in_proj.key_value", [dim, 3 * dim]);
  r.linear("head.attention.out_proj", [`${h}attention.out_proj`], dim, dim);
  r.norm("head.layernorm", `${h}layernorm`, dim);
  r.linear("head.mlp.fc1", [`${h}mlp.fc1`], dim, hidden);
  r.linear("head.mlp.fc2", [`${h}mlp.fc2`], hidden, dim);
  return { layout: "hf-siglip", config, recipes: r };
}

// The square side pixel_values come out at, from preprocessor_config.json (crop, else a fixed size): what
// DINOv2 runs at (its config's image_size is the 518-pixel grid its position embeddings were trained for).
function inputSide(pre: Json | null): number {
  const side = (v: unknown): number | null => {
    if (Number.isInteger(v)) return v as number;
    const o = v as Json | null;
    if (o && typeof o === "object" && Number.isInteger(o.height) && o.height === o.width) return o.height as number;
    return null;
  };
  const crop = pre?.do_center_crop !== false ? side(pre?.crop_size) : null;
  const found =
    crop ?? (pre && typeof pre.size === "object" && pre.size && "height" in pre.size ? side(pre.size) : null);
  if (!found) {
    throw new ConvertError(
      "preprocessor_config.json: a DINOv2 checkpoint needs a square crop_size (or a fixed square size): the input the position embeddings are interpolated to",
    );
  }
  return found;
}

function dinov2(cfg: Json, pre: Json | null): Tower {
  const v = withDefaults(DINOV2_DEFAULTS, cfg);
  if (v.use_swiglu_ffn) {
    throw new ConvertError(
      "config.json: use_swiglu_ffn is true (DINOv2 giant's SwiGLU MLP); edgevit runs DINOv2 small, base and large's fc1-GELU-fc2 MLP only",
    );
  }
  const registers = cfg.model_type === "dinov2_with_registers" ? Number(v.num_register_tokens) : 0;
  if (!Number.isInteger(registers) || registers < 0)
    throw new ConvertError(`config.json: num_register_tokens must be an integer from 0, got ${v.num_register_tokens}`);
  const dim = positiveInt(v.hidden_size, "hidden_size");
  const patchSize = positiveInt(v.patch_size, "patch_size");
  const native = positiveInt(v.image_size, "image_size") / patchSize;
  if (!Number.isInteger(native))
    throw new ConvertError(`config.json: image_size is not a multiple of patch_size ${patchSize}`);
  const imageSize = inputSide(pre);
  const config: ModelConfig = {
    ...encoderSizes(v, imageSize, Math.trunc(dim * Number(v.mlp_ratio))),
    family: "dinov2",
    hiddenAct: hiddenAct(v.hidden_act, ""),
    registerTokens: registers,
    layerScale: true,
  };
  const grid = imageSize / patchSize;
  const r = new Recipes();
  const { hidden, channels } = config;
  r.patch("embeddings.patch_embeddings.projection", dim, channels, patchSize);
  r.f32("embeddings.cls_token", "embeddings.cls_token", [1, 1, dim]);
  if (registers > 0) r.f32("embeddings.register_tokens", "embeddings.register_tokens", [1, registers, dim]);
  // Interpolated once, here, to the input's grid (transformers does it on every forward pass); with
  // registers transformers interpolates with antialias.
  r.f32("embeddings.position_embeddings", "embeddings.position_embeddings", [1, native * native + 1, dim], (table) =>
    positionEmbeddings(table, native, grid, dim, registers > 0),
  );
  for (let l = 0; l < config.layers; l++) {
    const s = `encoder.layer.${l}.`,
      p = `encoder.layer.${l}`;
    r.norm(`${p}.layernorm_before`, `${s}norm1`, dim);
    const a = `${s}attention.attention.`;
    r.linear(`${p}.attention.qkv`, [`${a}query`, `${a}key`, `${a}value`], dim, 3 * dim, true);
    r.linear(`${p}.attention.output.dense`, [`${s}attention.output.dense`], dim, dim);
    r.f32(`${p}.layer_scale1.lambda1`, `${s}layer_scale1.lambda1`, [dim]);
    r.norm(`${p}.layernorm_after`, `${s}norm2`, dim);
    r.linear(`${p}.intermediate.dense`, [`${s}mlp.fc1`], dim, hidden);
    r.linear(`${p}.output.dense`, [`${s}mlp.fc2`], hidden, dim);
    r.f32(`${p}.layer_scale2.lambda1`, `${s}layer_scale2.lambda1`, [dim]);
  }
  r.norm("layernorm", "layernorm", dim);
  return { layout: "hf-dinov2", config, recipes: r };
}

// Dinov2Embeddings.interpolate_pos_encoding (transformers 015e6876, by size): the class row kept, the
// native x native patch rows resized bicubically to grid x grid, unless the grid is the native one.
export function positionEmbeddings(
  table: Float32Array,
  native: number,
  grid: number,
  dim: number,
  antialias: boolean,
): Float32Array {
  if (grid === native) return table;
  const out = new Float32Array((1 + grid * grid) * dim);
  out.set(table.subarray(0, dim));
  out.set(interpolateBicubic(table.subarray(dim), native, native, dim, grid, grid, antialias), dim);
  return out;
}

// The LLM's width, text_config.hidden_size (LlamaConfig's default when left out).
function lmDimOf(cfg: Json): number {
  const text = (cfg.text_config ?? {}) as Json;
  return positiveInt(text.hidden_size ?? LLAMA_HIDDEN_SIZE, "text_config.hidden_size");
}

// Idefics3ForConditionalGeneration (SmolVLM): model.vision_model, a SigLIP tower without a pooling head whose
// post_layernorm applies to every token, then model.connector: pixel shuffle by scale_factor and
// modality_projection.proj (no bias) to the LLM's width. Each tile is one forward pass at the tower's
// image_size, so its position ids are the identity (the bucketed ids of a smaller tile are not needed).
function idefics3(cfg: Json, pre: Json | null): Tower {
  const v = withDefaults(IDEFICS3_VISION_DEFAULTS, cfg.vision_config);
  const imageSize = positiveInt(v.image_size, "vision_config.image_size");
  const tile = (pre?.max_image_size as Json | undefined)?.longest_edge;
  if (tile !== undefined && tile !== imageSize) {
    throw new ConvertError(
      `preprocessor_config.json: max_image_size.longest_edge is ${JSON.stringify(tile)}, but the vision tower ` +
        `takes ${imageSize}x${imageSize} tiles (vision_config.image_size): edgevit runs tiles of the tower's own size`,
    );
  }
  const scaleFactor = positiveInt(cfg.scale_factor ?? 2, "scale_factor");
  const config: ModelConfig = {
    ...encoderSizes(v, imageSize, positiveInt(v.intermediate_size, "vision_config.intermediate_size")),
    family: "siglip",
    hiddenAct: hiddenAct(v.hidden_act, "vision_config."),
    classToken: false,
    pooling: "none",
    connector: "idefics3",
    scaleFactor,
    lmDim: lmDimOf(cfg),
  };
  const grid = imageSize / config.patchSize;
  if (!Number.isInteger(grid) || grid % scaleFactor !== 0) {
    throw new ConvertError(
      `config.json: scale_factor ${scaleFactor} does not divide the vision tower's ${grid}x${grid} patch grid`,
    );
  }
  const r = new Recipes();
  const m = "model.vision_model.";
  const { dim, channels, patchSize } = config;
  r.patch(`${m}embeddings.patch_embedding`, dim, channels, patchSize);
  r.f32("embeddings.position_embeddings", `${m}embeddings.position_embedding.weight`, [grid * grid, dim]);
  clipEncoder(r, m, config);
  r.norm("layernorm", `${m}post_layernorm`, dim);
  const shuffled = dim * scaleFactor * scaleFactor;
  r.linear(
    "connector.modality_projection.proj",
    ["model.connector.modality_projection.proj"],
    shuffled,
    config.lmDim!,
    true,
  );
  return { layout: "hf-idefics3", config, recipes: r };
}

// The hidden state LLaVA takes (LlavaConfig.vision_feature_layer, transformers' hidden_states index: 0 the
// embeddings, negative from the end) as a count of encoder layers.
function featureLayers(raw: unknown, layers: number): number {
  if (!Number.isInteger(raw)) {
    throw new ConvertError(
      `config.json: vision_feature_layer ${JSON.stringify(raw)} is not one layer; edgevit projects one layer's hidden state`,
    );
  }
  const index = (raw as number) < 0 ? layers + 1 + (raw as number) : (raw as number);
  if (index < 1 || index > layers) {
    throw new ConvertError(
      `config.json: vision_feature_layer ${raw} is not a layer 1..${layers} of the ${layers}-layer vision tower ` +
        "(or -1..-" +
        layers +
        ")",
    );
  }
  return index;
}

// LlavaForConditionalGeneration: vision_tower (CLIP) up to vision_feature_layer, the layers after it left
// in the checkpoint (the tower's output is then that hidden state; post_layernorm stays the pooled token's),
// then multi_modal_projector: linear_1, projector_hidden_act, linear_2.
function llava(cfg: Json): Tower {
  const v = withDefaults(LLAVA_VISION_DEFAULTS, cfg.vision_config);
  const where = "vision_config.";
  const imageSize = positiveInt(v.image_size, `${where}image_size`);
  const base = encoderSizes(v, imageSize, positiveInt(v.intermediate_size, `${where}intermediate_size`));
  const layers = featureLayers(cfg.vision_feature_layer ?? -2, base.layers);
  const strategy = cfg.vision_feature_select_strategy ?? "default";
  if (strategy !== "default" && strategy !== "full") {
    throw new ConvertError(
      `config.json: vision_feature_select_strategy ${JSON.stringify(strategy)} is not "default" or "full"`,
    );
  }
  const config: ModelConfig = {
    ...base,
    layers,
    family: "clip",
    hiddenAct: hiddenAct(v.hidden_act, where),
    preLayernorm: true,
    finalNorm: "pooled",
    connector: "llava",
    lmDim: lmDimOf(cfg),
    projectorHiddenAct: hiddenAct(cfg.projector_hidden_act ?? "gelu", "projector_"),
    visionFeatureSelectStrategy: strategy,
  };
  const r = clipVisionTower("vision_tower.vision_model.", config);
  const { dim } = config;
  const lm = config.lmDim!;
  // multi_modal_projector_bias (default true) can leave the biases out
  r.linear("multi_modal_projector.linear_1", ["multi_modal_projector.linear_1"], dim, lm, true);
  r.linear("multi_modal_projector.linear_2", ["multi_modal_projector.linear_2"], lm, lm, true);
  return { layout: "hf-llava", config, recipes: r };
}

// The tower a config.json describes (its model_type is a key of TOWER_ARCHITECTURES).
export function towerFor(
  cfg: Json,
  pre: Json | null,
  has: (name: string) => boolean,
  shape: (name: string) => number[],
): Tower {
  const type = String(cfg.model_type);
  if (type === "clip" || type === "clip_vision_model") return clip(cfg, has, shape);
  if (type === "siglip" || type === "siglip_vision_model") return siglip(cfg);
  if (type === "idefics3" || type === "smolvlm") return idefics3(cfg, pre);
  if (type === "llava") return llava(cfg);
  return dinov2(cfg, pre);
}
