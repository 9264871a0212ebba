// Writes a Hugging Face checkpoint directory with deterministic random weights for the image towers and
// connectors beyond the ViT classifier, in the hub's own layout: config.json with the hub's field names
// and nesting (sub-configs, and fields the hub files leave to the config class's defaults left out),
// model.safetensors with the hub's tensor names and shapes, preprocessor_config.json as the hub repo
// publishes it, and matching inputs: inputs.f32 (pixel_values as the image processor makes them) and, for
// two-tower checkpoints, input_ids.json. Values come from make-random-vit.ts's counter-based hash, so the
// files are byte-identical on any machine. models/tools/reference_towers.py computes their float32 outputs.
//
//   npx node models/tools/make-random-tower.ts --preset clip-vit-base-patch32 [--tiny] --seed 1 -o DIR \
//     [--dtype F32|F16|BF16] [--inputs 4] [--text-embeddings] [--preprocessor-only]
//
// --tiny keeps the preset's structure (layouts, config fields, activation, token vocabulary) at test size:
// width 32-64, two or three layers, 32-pixel images. --text-embeddings adds the LLM's input embedding
// table (Idefics3: model.text_model.embed_tokens.weight; LLaVA: language_model.model.embed_tokens.weight)
// and a byte-level BPE tokenizer.json naming its rows to a vision-language checkpoint.

import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import type { Dtype } from "../safetensors.ts";
import { encode, streamKey, uniform, uniformTensor } from "./make-random-vit.ts";

// ---- sizes -------------------------------------------------------------------------------

interface Encoder {
  dim: number;
  heads: number;
  hidden: number; // MLP width
  layers: number;
}

interface Vision extends Encoder {
  imageSize: number; // the position table's grid (DINOv2: 518 on the hub, larger than its inputs)
  patchSize: number;
}

interface Text extends Encoder {
  vocab: number;
  positions: number;
}

type Family = "clip" | "clip-vision" | "siglip" | "dinov2" | "idefics3" | "llava";

interface Preset {
  family: Family;
  vision: Vision;
  text?: Text; // two-tower checkpoints
  projection?: number; // CLIP's projection_dim
  registers?: number; // DINOv2 with registers
  scaleFactor?: number; // Idefics3 pixel shuffle
  lmDim?: number; // the LLM's width (Idefics3, LLaVA)
  lmVocab?: number;
  inputSize: number; // pixel_values side: the crop (CLIP, DINOv2) or the fixed size / tile
  // the hub's preprocessor_config.json and its config.json (given the sizes)
  preprocessor: (p: Preset) => Record<string, unknown>;
  config: (p: Preset, dtype: string) => Record<string, unknown>;
  legacyPositionIds?: boolean; // openai's CLIP files still carry the position_ids buffers (I64)
  siglipVersion?: 1 | 2;
}

const OPENAI_MEAN = [0.48145466, 0.4578275, 0.40821073];
const OPENAI_STD = [0.26862954, 0.26130258, 0.27577711];
const IMAGENET_MEAN = [0.485, 0.456, 0.406];
const IMAGENET_STD = [0.229, 0.224, 0.225];
const HALF = [0.5, 0.5, 0.5];
const RESCALE = 0.00392156862745098;

// ---- configs, with the hub's field names ---------------------------------------------------

const TORCH_DTYPE: Record<string, string> = { F32: "float32", F16: "float16", BF16: "bfloat16" };

function clipVisionConfig(v: Vision, projection: number | undefined, legacy: boolean) {
  return {
    ...(legacy ? { _name_or_path: "", architectures: null } : {}),
    attention_dropout: 0.0,
    dropout: 0.0,
    hidden_act: "quick_gelu",
    hidden_size: v.dim,
    image_size: v.imageSize,
    initializer_factor: 1.0,
    initializer_range: 0.02,
    intermediate_size: v.hidden,
    layer_norm_eps: 1e-5,
    model_type: "clip_vision_model",
    num_attention_heads: v.heads,
    // openai's configs predate num_channels in CLIPVisionConfig: it comes from the default (3)
    ...(legacy ? {} : { num_channels: 3 }),
    num_hidden_layers: v.layers,
    patch_size: v.patchSize,
    ...(projection ? { projection_dim: projection } : {}),
  };
}

function clipConfig(p: Preset, dtype: string) {
  const t = p.text!;
  return {
    _name_or_path: `openai/clip-vit-base-patch${p.vision.patchSize === 16 || p.vision.patchSize === 4 ? 16 : 32}`,
    architectures: ["CLIPModel"],
    initializer_factor: 1.0,
    logit_scale_init_value: 2.6592,
    model_type: "clip",
    projection_dim: p.projection,
    text_config: {
      _name_or_path: "",
      architectures: null,
      attention_dropout: 0.0,
      bos_token_id: 0,
      dropout: 0.0,
      // openai's value: not the id of its end-of-text token (49407); transformers then pools at argmax(ids)
      eos_token_id: 2,
      hidden_act: "quick_gelu",
      hidden_size: t.dim,
      initializer_factor: 1.0,
      initializer_range: 0.02,
      intermediate_size: t.hidden,
      layer_norm_eps: 1e-5,
      max_position_embeddings: t.positions,
      model_type: "clip_text_model",
      num_attention_heads: t.heads,
      num_hidden_layers: t.layers,
      pad_token_id: 1,
      projection_dim: p.projection,
      vocab_size: t.vocab,
    },
    text_config_dict: null,
    torch_dtype: TORCH_DTYPE[dtype],
    transformers_version: null,
    vision_config: clipVisionConfig(p.vision, p.projection, true),
    vision_config_dict: null,
  };
}

function clipVisionWithProjectionConfig(p: Preset, dtype: string) {
  return {
    architectures: ["CLIPVisionModelWithProjection"],
    ...clipVisionConfig(p.vision, p.projection, false),
    torch_dtype: TORCH_DTYPE[dtype],
    transformers_version: "4.40.0",
  };
}

// Fields equal to SiglipVisionConfig's / SiglipTextConfig's defaults are absent from the hub's files
// (layers 12, eps 1e-6, gelu_pytorch_tanh, 3 channels, 64 text positions): a reader must apply the defaults.
function siglipConfig(p: Preset, dtype: string) {
  const v = p.vision;
  const t = p.text!;
  const layers = (n: number) => (n === 12 ? {} : { num_hidden_layers: n });
  return {
    architectures: ["SiglipModel"],
    initializer_factor: 1.0,
    model_type: "siglip",
    text_config: {
      hidden_size: t.dim,
      intermediate_size: t.hidden,
      model_type: "siglip_text_model",
      num_attention_heads: t.heads,
      ...layers(t.layers),
      vocab_size: t.vocab,
    },
    torch_dtype: TORCH_DTYPE[dtype],
    transformers_version: p.siglipVersion === 2 ? "4.49.0.dev0" : "4.37.0.dev0",
    vision_config: {
      hidden_size: v.dim,
      image_size: v.imageSize,
      intermediate_size: v.hidden,
      model_type: "siglip_vision_model",
      num_attention_heads: v.heads,
      ...layers(v.layers),
      patch_size: v.patchSize,
    },
  };
}

function dinov2Config(p: Preset, dtype: string) {
  const v = p.vision;
  const registers = p.registers ?? 0;
  const stages = ["stem", ...Array.from({ length: v.layers }, (_, i) => `stage${i + 1}`)];
  return {
    ...(registers ? { apply_layernorm: true } : {}),
    architectures: [registers ? "Dinov2WithRegistersModel" : "Dinov2Model"],
    attention_probs_dropout_prob: 0.0,
    drop_path_rate: 0.0,
    hidden_act: "gelu",
    hidden_dropout_prob: 0.0,
    hidden_size: v.dim,
    image_size: v.imageSize,
    initializer_range: 0.02,
    layer_norm_eps: 1e-6,
    layerscale_value: 1.0,
    mlp_ratio: v.hidden / v.dim,
    model_type: registers ? "dinov2_with_registers" : "dinov2",
    num_attention_heads: v.heads,
    num_channels: 3,
    num_hidden_layers: v.layers,
    ...(registers
      ? {
          num_register_tokens: registers,
          out_features: [stages[v.layers]],
          out_indices: [v.layers],
        }
      : {}),
    patch_size: v.patchSize,
    qkv_bias: true,
    ...(registers ? { reshape_hidden_states: true, stage_names: stages } : {}),
    torch_dtype: TORCH_DTYPE[dtype],
    transformers_version: registers ? "4.48.0.dev0" : "4.31.0.dev0",
    use_swiglu_ffn: false,
  };
}

function idefics3Config(p: Preset, dtype: string) {
  const v = p.vision;
  const tiles = p.inputSize;
  return {
    architectures: ["Idefics3ForConditionalGeneration"],
    image_seq_len: (v.imageSize / v.patchSize) ** 2 / p.scaleFactor! ** 2,
    image_token_id: 49190,
    model_type: "idefics3",
    scale_factor: p.scaleFactor,
    text_config: {
      architectures: ["VLlama3ForCausalLM"],
      head_dim: 64,
      hidden_size: p.lmDim,
      intermediate_size: 1536,
      max_position_embeddings: 8192,
      model_type: "llama",
      num_attention_heads: 9,
      num_hidden_layers: 30,
      num_key_value_heads: 3,
      pad_token_id: 2,
      rms_norm_eps: 1e-5,
      rope_theta: 100000,
      tie_word_embeddings: false,
      torch_dtype: "bfloat16",
      vocab_size: p.lmVocab,
    },
    tie_word_embeddings: false,
    torch_dtype: TORCH_DTYPE[dtype],
    transformers_version: "4.46.0",
    use_cache: true,
    vision_config: {
      hidden_size: v.dim,
      image_size: v.imageSize,
      intermediate_size: v.hidden,
      max_image_size: { longest_edge: tiles },
      model_type: "idefics3_vision",
      num_attention_heads: v.heads,
      num_hidden_layers: v.layers,
      patch_size: v.patchSize,
      size: { longest_edge: tiles * 4 },
      tie_word_embeddings: false,
    },
    vocab_size: p.lmVocab,
  };
}

function llavaConfig(p: Preset, dtype: string) {
  const v = p.vision;
  const full = p.lmDim === 4096;
  return {
    architectures: ["LlavaForConditionalGeneration"],
    ignore_index: -100,
    image_token_index: 32000,
    model_type: "llava",
    pad_token_id: 32001,
    projector_hidden_act: "gelu",
    text_config: {
      _name_or_path: "lmsys/vicuna-7b-v1.5",
      architectures: ["LlamaForCausalLM"],
      // LlamaConfig's default hidden_size (4096) is what llava-1.5-7b-hf relies on
      ...(full ? {} : { hidden_size: p.lmDim }),
      max_position_embeddings: 4096,
      model_type: "llama",
      rms_norm_eps: 1e-5,
      torch_dtype: "float16",
      vocab_size: p.lmVocab,
    },
    tie_word_embeddings: false,
    torch_dtype: TORCH_DTYPE[dtype],
    transformers_version: "4.36.0.dev0",
    vision_config: {
      hidden_size: v.dim,
      image_size: v.imageSize,
      intermediate_size: v.hidden,
      model_type: "clip_vision_model",
      num_attention_heads: v.heads,
      num_hidden_layers: v.layers,
      patch_size: v.patchSize,
      projection_dim: 768,
      vocab_size: 32000,
    },
    vision_feature_layer: -2,
    vision_feature_select_strategy: "default",
    vocab_size: p.lmVocab,
  };
}

// ---- preprocessor_config.json as each hub repo publishes it --------------------------------

// openai/clip-vit-base-patch32 and -patch16: the legacy feature-extractor file, sizes as bare integers
// (CLIPImageProcessor reads `size: 224` as the shortest edge, `crop_size: 224` as a square).
function clipLegacyPreprocessor(p: Preset) {
  return {
    crop_size: p.inputSize,
    do_center_crop: true,
    do_normalize: true,
    do_resize: true,
    feature_extractor_type: "CLIPFeatureExtractor",
    image_mean: OPENAI_MEAN,
    image_std: OPENAI_STD,
    resample: 3,
    size: p.inputSize,
  };
}

function clipPreprocessor(p: Preset, processorClass?: string) {
  return {
    crop_size: { height: p.inputSize, width: p.inputSize },
    do_center_crop: true,
    do_convert_rgb: true,
    do_normalize: true,
    do_rescale: true,
    do_resize: true,
    image_mean: OPENAI_MEAN,
    image_processor_type: "CLIPImageProcessor",
    image_std: OPENAI_STD,
    ...(processorClass ? { processor_class: processorClass } : {}),
    resample: 3,
    rescale_factor: RESCALE,
    size: { shortest_edge: p.inputSize },
  };
}

// SigLIP v1 resamples bicubic (3), SigLIP 2's fixed-resolution checkpoints bilinear (2).
function siglipPreprocessor(p: Preset) {
  return {
    do_normalize: true,
    do_rescale: true,
    do_resize: true,
    image_mean: HALF,
    image_processor_type: "SiglipImageProcessor",
    image_std: HALF,
    processor_class: "SiglipProcessor",
    resample: p.siglipVersion === 2 ? 2 : 3,
    rescale_factor: RESCALE,
    size: { height: p.inputSize, width: p.inputSize },
  };
}

// facebook/dinov2-*: shortest edge 256, crop 224 (tiny: the same 8:7 ratio).
function bitPreprocessor(p: Preset) {
  return {
    crop_size: { height: p.inputSize, width: p.inputSize },
    do_center_crop: true,
    do_convert_rgb: true,
    do_normalize: true,
    do_rescale: true,
    do_resize: true,
    image_mean: IMAGENET_MEAN,
    image_processor_type: "BitImageProcessor",
    image_std: IMAGENET_STD,
    resample: 3,
    rescale_factor: RESCALE,
    size: { shortest_edge: Math.round((p.inputSize * 8) / 7) },
  };
}

// HuggingFaceTB/SmolVLM-256M-Instruct: longest edge 2048 (4 tiles), 512-pixel tiles, Lanczos.
function idefics3Preprocessor(p: Preset) {
  return {
    do_convert_rgb: true,
    do_image_splitting: true,
    do_normalize: true,
    do_pad: true,
    do_rescale: true,
    do_resize: true,
    image_mean: HALF,
    image_processor_type: "Idefics3ImageProcessor",
    image_std: HALF,
    max_image_size: { longest_edge: p.inputSize },
    processor_class: "Idefics3Processor",
    resample: 1,
    rescale_factor: RESCALE,
    size: { longest_edge: p.inputSize * 4 },
  };
}

// ---- presets -----------------------------------------------------------------------------

const B16_VISION = { dim: 768, heads: 12, hidden: 3072, layers: 12 };
const CLIP_TEXT: Text = { vocab: 49408, positions: 77, dim: 512, heads: 8, hidden: 2048, layers: 12 };
const SIGLIP_TEXT: Text = { vocab: 32000, positions: 64, dim: 768, heads: 12, hidden: 3072, layers: 12 };

function clip(patch: number): Preset {
  return {
    family: "clip",
    vision: { ...B16_VISION, imageSize: 224, patchSize: patch },
    text: CLIP_TEXT,
    projection: 512,
    inputSize: 224,
    legacyPositionIds: true,
    preprocessor: clipLegacyPreprocessor,
    config: clipConfig,
  };
}

function siglip(size: number, version: 1 | 2): Preset {
  return {
    family: "siglip",
    vision: { ...B16_VISION, imageSize: size, patchSize: 16 },
    text: { ...SIGLIP_TEXT, vocab: version === 2 ? 256000 : 32000 },
    inputSize: size,
    siglipVersion: version,
    preprocessor: siglipPreprocessor,
    config: siglipConfig,
  };
}

function dinov2(dim: number, heads: number, registers: number): Preset {
  return {
    family: "dinov2",
    vision: { dim, heads, hidden: 4 * dim, layers: 12, imageSize: 518, patchSize: 14 },
    registers,
    inputSize: 224,
    preprocessor: bitPreprocessor,
    config: dinov2Config,
  };
}

const PRESETS: Record<string, Preset> = {
  "clip-vit-base-patch32": clip(32),
  "clip-vit-base-patch16": clip(16),
  // a CLIPVisionModelWithProjection checkpoint: the image tower and its projection alone
  "clip-vision-with-projection": {
    family: "clip-vision",
    vision: { ...B16_VISION, imageSize: 224, patchSize: 32 },
    projection: 512,
    inputSize: 224,
    preprocessor: (p) => clipPreprocessor(p),
    config: clipVisionWithProjectionConfig,
  },
  "siglip-base-patch16-224": siglip(224, 1),
  "siglip-base-patch16-256": siglip(256, 1),
  "siglip-base-patch16-384": siglip(384, 1),
  "siglip2-base-patch16-224": siglip(224, 2),
  "dinov2-small": dinov2(384, 6, 0),
  "dinov2-base": dinov2(768, 12, 0),
  "dinov2-with-registers-small": dinov2(384, 6, 4),
  "dinov2-with-registers-base": dinov2(768, 12, 4),
  // the vision tower and connector of HuggingFaceTB/SmolVLM-256M-Instruct (its LLM is not written)
  "smolvlm-256m-instruct": {
    family: "idefics3",
    vision: { ...B16_VISION, imageSize: 512, patchSize: 16 },
    scaleFactor: 4,
    lmDim: 576,
    lmVocab: 49280,
    inputSize: 512,
    preprocessor: idefics3Preprocessor,
    config: idefics3Config,
  },
  // llava-hf/llava-1.5-7b-hf's vision tower (CLIP ViT-L/14 at 336) and projector (its LLM is not written)
  "llava-1.5-projector": {
    family: "llava",
    vision: { dim: 1024, heads: 16, hidden: 4096, layers: 24, imageSize: 336, patchSize: 14 },
    lmDim: 4096,
    lmVocab: 32064,
    inputSize: 336,
    preprocessor: (p) => clipPreprocessor(p, "LlavaProcessor"),
    config: llavaConfig,
  },
};

// The test-size twin of a preset: same family, layout, config fields and token vocabulary (so the real
// tokenizers' ids stay valid), small widths and 32-pixel inputs. headDim 16 throughout.
function tiny(name: string, p: Preset): Preset {
  const vision = (v: Partial<Vision>): Vision => ({ dim: 64, heads: 4, hidden: 256, layers: 2, ...v }) as Vision;
  const text = p.text ? { ...p.text, dim: 32, heads: 2, hidden: 128, layers: 2 } : undefined;
  switch (p.family) {
    case "clip":
    case "clip-vision":
      // patch 32 -> 8 (a 4x4 grid), patch 16 -> 4 (8x8), as the full models' 7x7 and 14x14 differ
      return {
        ...p,
        vision: vision({ imageSize: 32, patchSize: name.includes("patch16") ? 4 : 8 }),
        text,
        projection: 32,
        inputSize: 32,
      };
    case "siglip": {
      // text and image embeddings are compared directly: one width for both towers; 224, 256 and 384
      // pixels (14, 16 and 24 patches a side) become 4, 5 and 7 patches a side
      const size = ({ 224: 32, 256: 40, 384: 56 } as Record<number, number>)[p.inputSize];
      return {
        ...p,
        vision: vision({ dim: 32, heads: 2, hidden: 128, imageSize: size, patchSize: 8 }),
        text,
        inputSize: size,
      };
    }
    case "dinov2":
      // a 7x7 position grid interpolated to the 4x4 grid of 32-pixel inputs, as 37x37 is to 16x16
      return { ...p, vision: vision({ imageSize: 56, patchSize: 8 }), inputSize: 32 };
    case "idefics3":
      // 8x8 patches per tile, shuffled by 2 into 16 tokens of 4 x 32
      return {
        ...p,
        vision: vision({ dim: 32, heads: 2, hidden: 128, imageSize: 32, patchSize: 4 }),
        scaleFactor: 2,
        lmDim: 48,
        lmVocab: 256,
        inputSize: 32,
      };
    case "llava":
      return { ...p, vision: vision({ layers: 3, imageSize: 32, patchSize: 8 }), lmDim: 48, inputSize: 32 };
  }
}

// ---- weights -----------------------------------------------------------------------------

interface Tensor {
  shape: number[];
  data: Float32Array | BigInt64Array; // BigInt64Array: the I64 position_ids buffers
}

// Deterministic tensors under their checkpoint names. Linear weights: std 0.7/sqrt(fanIn) (about the
// 0.02 of a trained base model, and large enough in tiny models that attention is far from uniform);
// biases std 0.02; LayerNorm weight 1 +- 0.05 and bias +- 0.02 and LayerScale 0.8 +- 0.15 (so that a
// reader that ignores any of them is caught); embeddings std 0.02.
class Weights {
  readonly tensors = new Map<string, Tensor>();
  readonly seed: number;

  constructor(seed: number) {
    this.seed = seed;
  }

  random(name: string, shape: number[], mean: number, std: number): void {
    const count = shape.reduce((a, b) => a * b, 1);
    this.tensors.set(name, { shape, data: uniformTensor(this.seed, name, count, mean, std) });
  }

  constant(name: string, shape: number[], value: number): void {
    const count = shape.reduce((a, b) => a * b, 1);
    this.tensors.set(name, { shape, data: new Float32Array(count).fill(value) });
  }

  linear(name: string, outs: number, ins: number, bias = true): void {
    this.random(`${name}.weight`, [outs, ins], 0, 0.7 / Math.sqrt(ins));
    if (bias) this.random(`${name}.bias`, [outs], 0, 0.02);
  }

  layerNorm(name: string, dim: number): void {
    this.random(`${name}.weight`, [dim], 1, 0.05);
    this.random(`${name}.bias`, [dim], 0, 0.02);
  }

  conv(name: string, dim: number, patch: number, bias: boolean): void {
    this.random(`${name}.weight`, [dim, 3, patch, patch], 0, 0.7 / Math.sqrt(3 * patch * patch));
    if (bias) this.random(`${name}.bias`, [dim], 0, 0.02);
  }

  positionIds(name: string, count: number): void {
    this.tensors.set(name, { shape: [1, count], data: BigInt64Array.from({ length: count }, (_, i) => BigInt(i)) });
  }

  // CLIP / SigLIP / Idefics3 encoder layers: encoder.layers.N.{self_attn.{q,k,v,out}_proj, layer_norm1,
  // mlp.fc1, mlp.fc2, layer_norm2}
  clipEncoder(prefix: string, e: Encoder): void {
    for (let l = 0; l < e.layers; l++) {
      const pre = `${prefix}encoder.layers.${l}.`;
      for (const q of ["k_proj", "v_proj", "q_proj", "out_proj"]) this.linear(`${pre}self_attn.${q}`, e.dim, e.dim);
      this.layerNorm(`${pre}layer_norm1`, e.dim);
      this.linear(`${pre}mlp.fc1`, e.hidden, e.dim);
      this.linear(`${pre}mlp.fc2`, e.dim, e.hidden);
      this.layerNorm(`${pre}layer_norm2`, e.dim);
    }
  }

  clipVision(prefix: string, v: Vision, positionIds: boolean): void {
    const positions = (v.imageSize / v.patchSize) ** 2 + 1;
    this.random(`${prefix}embeddings.class_embedding`, [v.dim], 0, 0.02);
    this.conv(`${prefix}embeddings.patch_embedding`, v.dim, v.patchSize, false);
    this.random(`${prefix}embeddings.position_embedding.weight`, [positions, v.dim], 0, 0.02);
    if (positionIds) this.positionIds(`${prefix}embeddings.position_ids`, positions);
    this.layerNorm(`${prefix}pre_layrnorm`, v.dim);
    this.clipEncoder(prefix, v);
    this.layerNorm(`${prefix}post_layernorm`, v.dim);
  }

  text(prefix: string, t: Text, positionIds: boolean): void {
    this.random(`${prefix}embeddings.token_embedding.weight`, [t.vocab, t.dim], 0, 0.02);
    this.random(`${prefix}embeddings.position_embedding.weight`, [t.positions, t.dim], 0, 0.02);
    if (positionIds) this.positionIds(`${prefix}embeddings.position_ids`, t.positions);
    this.clipEncoder(prefix, t);
    this.layerNorm(`${prefix}final_layer_norm`, t.dim);
  }

  // SigLIP / Idefics3 vision: patch embedding with bias, no class token, post_layernorm on every token
  siglipVision(prefix: string, v: Vision): void {
    this.conv(`${prefix}embeddings.patch_embedding`, v.dim, v.patchSize, true);
    this.random(`${prefix}embeddings.position_embedding.weight`, [(v.imageSize / v.patchSize) ** 2, v.dim], 0, 0.02);
    this.clipEncoder(prefix, v);
    this.layerNorm(`${prefix}post_layernorm`, v.dim);
  }

  // the multihead-attention pooling head: a probe query (std 1, so that its attention is far from uniform),
  // torch.nn.MultiheadAttention's packed in_proj (rows: query, key, value), its LayerNorm and MLP
  siglipHead(prefix: string, v: Vision): void {
    this.random(`${prefix}head.probe`, [1, 1, v.dim], 0, 1);
    this.random(`${prefix}head.attention.in_proj_weight`, [3 * v.dim, v.dim], 0, 0.7 / Math.sqrt(v.dim));
    this.random(`${prefix}head.attention.in_proj_bias`, [3 * v.dim], 0, 0.02);
    this.linear(`${prefix}head.attention.out_proj`, v.dim, v.dim);
    this.layerNorm(`${prefix}head.layernorm`, v.dim);
    this.linear(`${prefix}head.mlp.fc1`, v.hidden, v.dim);
    this.linear(`${prefix}head.mlp.fc2`, v.dim, v.hidden);
  }

  dinov2(v: Vision, registers: number): void {
    const grid = v.imageSize / v.patchSize;
    this.random("embeddings.cls_token", [1, 1, v.dim], 0, 0.02);
    this.random("embeddings.mask_token", [1, v.dim], 0, 0.02);
    if (registers) this.random("embeddings.register_tokens", [1, registers, v.dim], 0, 0.5);
    this.conv("embeddings.patch_embeddings.projection", v.dim, v.patchSize, true);
    this.random("embeddings.position_embeddings", [1, grid * grid + 1, v.dim], 0, 0.02);
    for (let l = 0; l < v.layers; l++) {
      const pre = `encoder.layer.${l}.`;
      this.layerNorm(`${pre}norm1`, v.dim);
      for (const q of ["query", "key", "value"]) this.linear(`${pre}attention.attention.${q}`, v.dim, v.dim);
      this.linear(`${pre}attention.output.dense`, v.dim, v.dim);
      this.random(`${pre}layer_scale1.lambda1`, [v.dim], 0.8, 0.15);
      this.layerNorm(`${pre}norm2`, v.dim);
      this.linear(`${pre}mlp.fc1`, v.hidden, v.dim);
      this.linear(`${pre}mlp.fc2`, v.dim, v.hidden);
      this.random(`${pre}layer_scale2.lambda1`, [v.dim], 0.8, 0.15);
    }
    this.layerNorm("layernorm", v.dim);
  }
}

function weights(p: Preset, seed: number, textEmbeddings: boolean): Map<string, Tensor> {
  const w = new Weights(seed);
  const v = p.vision;
  switch (p.family) {
    case "clip":
      w.text("text_model.", p.text!, p.legacyPositionIds === true);
      w.clipVision("vision_model.", v, p.legacyPositionIds === true);
      w.linear("visual_projection", p.projection!, v.dim, false);
      w.linear("text_projection", p.projection!, p.text!.dim, false);
      // exp(4.6052) = 100, the trained openai value: softmax over labels is peaked as in use
      w.constant("logit_scale", [], 4.6052);
      break;
    case "clip-vision":
      w.clipVision("vision_model.", v, false);
      w.linear("visual_projection", p.projection!, v.dim, false);
      break;
    case "siglip":
      w.text("text_model.", p.text!, false);
      w.linear("text_model.head", p.text!.dim, p.text!.dim);
      w.siglipVision("vision_model.", v);
      w.siglipHead("vision_model.", v);
      // scale 10 and bias -1: sigmoid scores of random embeddings spread over (0, 1) instead of ~1e-6
      w.constant("logit_scale", [1], Math.log(10));
      w.constant("logit_bias", [1], -1);
      break;
    case "dinov2":
      w.dinov2(v, p.registers ?? 0);
      break;
    case "idefics3": {
      w.siglipVision("model.vision_model.", v);
      const s = p.scaleFactor!;
      w.linear("model.connector.modality_projection.proj", p.lmDim!, v.dim * s * s, false);
      if (textEmbeddings) w.random("model.text_model.embed_tokens.weight", [p.lmVocab!, p.lmDim!], 0, 0.02);
      break;
    }
    case "llava":
      w.clipVision("vision_tower.vision_model.", v, false);
      w.linear("multi_modal_projector.linear_1", p.lmDim!, v.dim);
      w.linear("multi_modal_projector.linear_2", p.lmDim!, p.lmDim!);
      if (textEmbeddings) w.random("language_model.model.embed_tokens.weight", [p.lmVocab!, p.lmDim!], 0, 0.02);
      break;
  }
  return w.tensors;
}

// safetensors with F32/F16/BF16 floats and I64 buffers, encoded from their values.
function encodeSafetensors(tensors: Map<string, Tensor>, dtype: Dtype): Uint8Array {
  const header: Record<string, unknown> = { __metadata__: { format: "pt" } };
  const chunks: Uint8Array[] = [];
  let at = 0;
  for (const [name, t] of tensors) {
    const bytes =
      t.data instanceof BigInt64Array ? new Uint8Array(t.data.buffer) : encode(t.data as Float32Array, dtype);
    header[name] = {
      dtype: t.data instanceof BigInt64Array ? "I64" : dtype,
      shape: t.shape,
      data_offsets: [at, at + bytes.length],
    };
    chunks.push(bytes);
    at += bytes.length;
  }
  const raw = new TextEncoder().encode(JSON.stringify(header));
  const json = new Uint8Array(Math.ceil(raw.length / 8) * 8).fill(0x20);
  json.set(raw);
  const out = new Uint8Array(8 + json.length + at);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let pos = 8 + json.length;
  for (const c of chunks) {
    out.set(c, pos);
    pos += c.length;
  }
  return out;
}

// ---- inputs ------------------------------------------------------------------------------

// `count` pixel_values [3][size][size] as the image processor makes them from uint8 pictures (a gradient,
// soft blobs, pixel noise): q -> f32(q * rescale_factor) in float64 then (x - mean) / std in float32, as
// transformers' rescale and normalize compute it. Arithmetic only, so exact everywhere.
function makePixels(seed: number, count: number, size: number, mean: number[], std: number[]): Float32Array {
  const f = Math.fround;
  const out = new Float32Array(count * 3 * size * size);
  for (let n = 0; n < count; n++) {
    const key = streamKey(seed, `inputs.${n}`);
    let r = 0;
    const next = () => uniform(key, r++);
    const blobs = Array.from({ length: 3 }, () => ({
      x: next() * size,
      y: next() * size,
      radius: (0.15 + 0.35 * next()) * size,
      level: Array.from({ length: 3 }, () => 255 * (next() - 0.5)),
    }));
    for (let ch = 0; ch < 3; ch++) {
      const base = 255 * next();
      const gx = (next() - 0.5) * 4;
      const gy = (next() - 0.5) * 4;
      for (let y = 0; y < size; y++) {
        for (let x = 0; x < size; x++) {
          let v = base + (gx * (x - size / 2) * 224) / size + (gy * (y - size / 2) * 224) / size;
          for (const b of blobs) {
            const d2 = ((x - b.x) ** 2 + (y - b.y) ** 2) / b.radius ** 2;
            if (d2 < 1) v += b.level[ch] * (1 - d2);
          }
          v += 24 * (uniform(key, 1000 + (ch * size + y) * size + x) - 0.5);
          const q = Math.min(255, Math.max(0, Math.round(v)));
          out[((n * 3 + ch) * size + y) * size + x] = f(f(f(q * RESCALE) - f(mean[ch])) / f(std[ch]));
        }
      }
    }
  }
  return out;
}

// Token sequences shaped as each family's tokenizer and processor shape them (ids are random, not from a
// tokenizer): CLIP: start, tokens, end, padded with the end token to the longest (padding=True, with an
// attention mask); SigLIP: tokens, </s> (1), padded to 64 with the pad id (padding="max_length", no mask;
// SigLIP 2's Gemma vocabulary: eos 1, pad 0).
function makeInputIds(p: Preset, seed: number, count: number) {
  const t = p.text!;
  const key = streamKey(seed, "input_ids");
  let r = 0;
  const randomInt = (lo: number, hi: number) => lo + Math.floor(uniform(key, r++) * (hi - lo));
  const sequences: number[][] = [];
  if (p.family === "clip") {
    for (let n = 0; n < count; n++) {
      const length = randomInt(1, Math.min(12, t.positions - 2));
      sequences.push([49406, ...Array.from({ length }, () => randomInt(256, 49406)), 49407]);
    }
    const longest = Math.max(...sequences.map((s) => s.length));
    return {
      input_ids: sequences.map((s) => [...s, ...Array(longest - s.length).fill(49407)]),
      attention_mask: sequences.map((s) => [...Array(s.length).fill(1), ...Array(longest - s.length).fill(0)]),
    };
  }
  const [eos, pad, first] = p.siglipVersion === 2 ? [1, 0, 3] : [1, 1, 2];
  for (let n = 0; n < count; n++) {
    const length = randomInt(1, 12);
    const ids = [...Array.from({ length }, () => randomInt(first, t.vocab)), eos];
    sequences.push([...ids, ...Array(t.positions - ids.length).fill(pad)]);
  }
  return { input_ids: sequences };
}

// ---- the directory -----------------------------------------------------------------------

export interface Options {
  preset: string;
  tiny: boolean;
  seed: number;
  dtype: string;
  inputs: number;
  textEmbeddings: boolean;
}

export const PRESET_NAMES = Object.keys(PRESETS);

// A preset's preprocessor_config.json alone (full size or tiny), without making its weights.
export function preprocessorConfig(preset: string, tinySize: boolean): Record<string, unknown> {
  const base = PRESETS[preset];
  if (!base) throw new Error(`unknown preset ${preset}; known: ${PRESET_NAMES.join(", ")}`);
  const p = tinySize ? tiny(preset, base) : base;
  return p.preprocessor(p);
}

// The checkpoint directory's files, by name.
export function makeTower(o: Options): Record<string, Uint8Array> {
  const base = PRESETS[o.preset];
  if (!base) throw new Error(`unknown preset ${o.preset}; known: ${PRESET_NAMES.join(", ")}`);
  const dtype = o.dtype as Dtype;
  if (!["F32", "F16", "BF16"].includes(dtype)) throw new Error(`unknown dtype ${o.dtype}; known: F32, F16, BF16`);
  if (o.textEmbeddings && base.family !== "idefics3" && base.family !== "llava")
    throw new Error("--text-embeddings is for the Idefics3 and LLaVA presets");
  const p = o.tiny ? tiny(o.preset, base) : base;
  const text = (obj: unknown) => new TextEncoder().encode(`${JSON.stringify(obj, null, 2)}\n`);
  const pre = p.preprocessor(p);
  const mean = (pre.image_mean as number[]) ?? HALF;
  const std = (pre.image_std as number[]) ?? HALF;
  const pixels = makePixels(o.seed, o.inputs, p.inputSize, mean, std);
  const files: Record<string, Uint8Array> = {
    "config.json": text(p.config(p, dtype)),
    "preprocessor_config.json": text(pre),
    "model.safetensors": encodeSafetensors(weights(p, o.seed, o.textEmbeddings), dtype),
    "inputs.f32": new Uint8Array(pixels.buffer),
    "inputs.json": text({
      count: o.inputs,
      shape: [3, p.inputSize, p.inputSize],
      dtype: "f32",
      layout: "[count][channels][size][size] little-endian",
      preset: o.preset,
      tiny: o.tiny,
      seed: o.seed,
    }),
  };
  if (p.text) files["input_ids.json"] = text(makeInputIds(p, o.seed, o.inputs));
  if (o.textEmbeddings) files["tokenizer.json"] = text(byteLevelTokenizer(p.lmVocab!));
  return files;
}

// A byte-level BPE tokenizer.json of `vocab` ids, as GPT-2-style LLMs (SmolVLM's) publish it: model.vocab
// {token: id} in the byte-level alphabet ("Ġ" a leading space), the last id an added "<image>" token.
function byteLevelTokenizer(vocab: number): Record<string, unknown> {
  const words = ["cat", "dog", "red", "sky", "tree", "blue", "car", "sun", "été", "über"];
  // GPT-2's alphabet: printable bytes stand for themselves, the others for code points from 256 on
  const alphabet: string[] = [];
  let next = 256;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    alphabet.push(String.fromCodePoint(printable ? b : next++));
  }
  const byteLevel = (s: string) => Array.from(new TextEncoder().encode(s), (b) => alphabet[b]).join("");
  const entries: Record<string, number> = {};
  for (let id = 0; id < vocab - 1; id++)
    entries[byteLevel(` ${words[id % words.length]}${Math.floor(id / words.length)}`)] = id;
  return {
    version: "1.0",
    added_tokens: [{ id: vocab - 1, content: "<image>", special: true }],
    pre_tokenizer: { type: "ByteLevel", add_prefix_space: false },
    decoder: { type: "ByteLevel" },
    model: { type: "BPE", vocab: entries, merges: [] },
  };
}

const CLI_OPTIONS = {
  preset: { type: "string" },
  tiny: { type: "boolean", default: false },
  seed: { type: "string", default: "1" },
  dtype: { type: "string", default: "F32" },
  inputs: { type: "string", default: "4" },
  "text-embeddings": { type: "boolean", default: false },
  "preprocessor-only": { type: "boolean", default: false },
  out: { type: "string", short: "o" },
} as const;

export function parseOptions(args: string[]): Options & { out?: string; preprocessorOnly?: boolean } {
  const { values } = parseArgs({ args, options: CLI_OPTIONS });
  if (!values.preset) throw new Error(`--preset is required; known: ${PRESET_NAMES.join(", ")}`);
  return {
    preset: values.preset,
    tiny: values.tiny,
    seed: Number(values.seed),
    dtype: values.dtype,
    inputs: Number(values.inputs),
    textEmbeddings: values["text-embeddings"],
    preprocessorOnly: values["preprocessor-only"],
    out: values.out,
  };
}

function main(): void {
  const options = parseOptions(process.argv.slice(2));
  if (!options.out) throw new Error("-o <dir> is required");
  if (options.preprocessorOnly) {
    // the image processor's file alone (full-size presets' weights take a while to make)
    mkdirSync(options.out, { recursive: true });
    const pre = preprocessorConfig(options.preset, options.tiny);
    writeFileSync(join(options.out, "preprocessor_config.json"), `${JSON.stringify(pre, null, 2)}\n`);
    console.log(`${options.out}/preprocessor_config.json: ${options.preset}${options.tiny ? " (tiny)" : ""}`);
    return;
  }
  const files = makeTower(options);
  mkdirSync(options.out, { recursive: true });
  for (const [name, bytes] of Object.entries(files)) writeFileSync(join(options.out, name), bytes);
  const mb = (files["model.safetensors"].length / 1e6).toFixed(1);
  console.log(
    `${options.out}: ${options.preset}${options.tiny ? " (tiny)" : ""} ${options.dtype} seed ${options.seed}, ` +
      `model.safetensors ${mb} MB, ${options.inputs} inputs`,
  );
}

if (import.meta.main) main();
