// Checkpoint (config.json, model.safetensors, preprocessor_config.json as published on the Hugging Face hub)
// -> .evit bundle. Knows three classifier layouts: HF ViT, HF DeiT (distilled) and timm, and the image towers
// of towers.ts (CLIP, SigLIP, DINOv2; the vision tower and connector of Idefics3 / SmolVLM and LLaVA), with a
// two-tower checkpoint's text tower as a section after the payload (text.ts). Streams: one source tensor is in
// memory at a time, and the bundle is written as it is packed. Runtime-neutral: the files come through a
// CheckpointSource (a folder in Node, models/convert-folder.ts; range requests to the hub in the Worker's
// import), so the CLI and the Worker write the same bytes.
import { crc32 as portableCrc32 } from "../crc32.ts";
import {
  BundleError,
  checkPayloadLimit,
  describe,
  overLimit,
  type OverLimit,
  tokens,
  towerOf,
  type BundleHeader,
  type BundleParts,
  type ModelConfig,
  type Preprocessing,
  type ResizeSize,
  type Crc32,
  type SourceFile,
} from "../bundle/format.ts";
import { BundleWriter } from "../bundle/writer.ts";
import { layout as bundleLayout } from "../bundle/layout.ts";
import { packedSizes, packLinear, type PackedLinear } from "../bundle/pack.ts";
import { memoryPlan } from "../engine/memory.ts";
import { MiB, sizeText } from "../sizes.ts";
import { ConvertError, concatRows, type Recipe, Recipes, required } from "./recipe.ts";
import type { TensorSource } from "./safetensors.ts";
import { lmEmbeddingTensors, lmEmbeddingsFor, lmEmbeddingsPeakBytes, type LmEmbeddings } from "./embeddings.ts";
import { textPeakBytes, textTensors, textTowerFor, type TextTower } from "./text.ts";
import { positiveInt, TOWER_ARCHITECTURES, towerFor, type TowerLayout } from "./towers.ts";

export { ConvertError, concatRows };

export const CONVERTER = "edgevit 0.1.0";

export type LayoutName = "hf-vit" | "hf-deit" | "timm" | TowerLayout;

export interface ConvertOptions {
  name?: string; // bundle name; default: the source's defaultName
  convertedAt?: string; // ISO timestamp; default: now (fixed in tests for reproducible bytes)
  log?: (line: string) => void;
  crc32?: Crc32; // default: core/crc32.ts (Node passes zlib's)
  // a vision-language checkpoint's LLM input embedding table and tokenizer strings, as the "lm_embeddings"
  // section (embeddings.ts): what /v1/image_tokens?nearest=k compares image tokens with; off by default
  lmEmbeddings?: boolean;
}

export type Json = Record<string, unknown>;

// Where a checkpoint's files come from.
export interface CheckpointSource {
  checkpoint: string; // what the bundle records as its source: a folder, or org/name@commit from the hub
  defaultName: string;
  json(file: string, optional: boolean): Promise<Json | null>; // null: an optional file that is not there
  file(file: string): Promise<Uint8Array | null>; // an optional small file's bytes (a tokenizer's), null when absent
  tensors(): Promise<TensorSource>;
  // Byte size and CRC-32 of a file, for the header's `source.files`; `final` gives them again once every
  // tensor has been read (a source that computes CRCs from the ranges it read fills them in there).
  record(file: string): Promise<SourceFile>;
  final?(): Promise<Record<string, SourceFile>>;
}

// ---- config.json -> ModelConfig ----

// transformers' ViTConfig defaults, used for keys a published config.json leaves out.
const HF_DEFAULTS = {
  image_size: 224,
  patch_size: 16,
  num_channels: 3,
  hidden_size: 768,
  num_hidden_layers: 12,
  num_attention_heads: 12,
  intermediate_size: 3072,
  layer_norm_eps: 1e-12,
  hidden_act: "gelu",
};
// timm's ViT/DeiT head counts by model size, for timm config.json files that name only the architecture.
const TIMM_HEADS: Record<string, number> = { tiny: 3, small: 6, medium: 8, base: 12, large: 16, huge: 16 };
const TIMM_EPS = 1e-6;

function labelsFrom(cfg: Json, classes: number): string[] {
  const id2label = cfg.id2label as Record<string, string> | undefined;
  const names = (cfg.label_names ?? (cfg.pretrained_cfg as Json | undefined)?.label_names) as string[] | undefined;
  if (id2label && Object.keys(id2label).length > 0) {
    const labels = new Array<string | undefined>(classes).fill(undefined);
    for (const [id, label] of Object.entries(id2label)) {
      const i = Number(id);
      if (!Number.isInteger(i) || i < 0 || i >= classes)
        throw new ConvertError(`config.json: id2label key ${id} is not a class index below ${classes}`);
      labels[i] = String(label);
    }
    const missing = labels.indexOf(undefined);
    if (Object.keys(id2label).length !== classes || missing >= 0) {
      throw new ConvertError(
        `config.json: id2label has ${Object.keys(id2label).length} labels but the classifier has ${classes} classes`,
      );
    }
    return labels as string[]; // every index filled, checked above
  }
  if (Array.isArray(names)) {
    if (names.length !== classes)
      throw new ConvertError(
        `config.json: label_names has ${names.length} labels but the classifier has ${classes} classes`,
      );
    return names.map(String);
  }
  return Array.from({ length: classes }, (_, i) => `LABEL_${i}`); // what transformers names unlabelled classes
}

// Reads sizes from config.json (HF names, or timm names with the sizes read off the tensors) and
// checks what the engine can run.
function modelConfig(cfg: Json, layout: LayoutName, ckpt: TensorSource): { config: ModelConfig; labels: string[] } {
  const act = cfg.hidden_act ?? (layout === "timm" ? "gelu" : HF_DEFAULTS.hidden_act);
  if (act !== "gelu") {
    throw new ConvertError(
      `config.json: hidden_act ${JSON.stringify(act)} is not supported; the engine computes the exact erf "gelu" only`,
    );
  }
  const distilled = layout === "hf-deit" || (layout === "timm" && ckpt.has("dist_token"));
  const head = layout === "hf-deit" ? "cls_classifier" : layout === "timm" ? "head" : "classifier";
  const classes = ckpt.has(`${head}.weight`) ? ckpt.info(`${head}.weight`).shape[0] : 0;
  let config: ModelConfig;
  if (layout !== "timm" || "hidden_size" in cfg) {
    const get = <K extends keyof typeof HF_DEFAULTS>(k: K) => (cfg[k] ?? HF_DEFAULTS[k]) as (typeof HF_DEFAULTS)[K];
    config = {
      imageSize: positiveInt(get("image_size"), "image_size"),
      patchSize: positiveInt(get("patch_size"), "patch_size"),
      channels: positiveInt(get("num_channels"), "num_channels"),
      dim: positiveInt(get("hidden_size"), "hidden_size"),
      heads: positiveInt(get("num_attention_heads"), "num_attention_heads"),
      hidden: positiveInt(get("intermediate_size"), "intermediate_size"),
      layers: positiveInt(get("num_hidden_layers"), "num_hidden_layers"),
      classes,
      eps: Number(cfg.layer_norm_eps ?? (layout === "timm" ? TIMM_EPS : HF_DEFAULTS.layer_norm_eps)),
      distilled,
    };
  } else {
    // timm: the architecture name and the tensor shapes carry the sizes.
    const proj = ckpt.info("patch_embed.proj.weight").shape; // [dim][channels][patch][patch]
    const patches = ckpt.info("pos_embed").shape[1] - 1 - (distilled ? 1 : 0);
    const side = Math.round(Math.sqrt(patches));
    let layers = 0;
    while (ckpt.has(`blocks.${layers}.norm1.weight`)) layers++;
    const args = (cfg.model_args ?? {}) as Json;
    const arch = String(cfg.architecture ?? "");
    const size = Object.keys(TIMM_HEADS).find((s) => arch.includes(`_${s}_`));
    const heads = cfg.num_heads ?? args.num_heads ?? (size ? TIMM_HEADS[size] : undefined);
    if (heads === undefined) {
      throw new ConvertError(
        `config.json: cannot tell the number of attention heads of timm architecture ${JSON.stringify(arch)}; add "num_heads"`,
      );
    }
    config = {
      imageSize: side * proj[2],
      patchSize: proj[2],
      channels: proj[1],
      dim: proj[0],
      heads: positiveInt(heads, "num_heads"),
      hidden: ckpt.info("blocks.0.mlp.fc1.weight").shape[0],
      layers,
      classes,
      eps: TIMM_EPS,
      distilled,
    };
  }
  if (config.dim % config.heads !== 0) {
    throw new ConvertError(
      `config.json: hidden size ${config.dim} is not divisible by ${config.heads} attention heads`,
    );
  }
  if (config.imageSize % config.patchSize !== 0) {
    throw new ConvertError(
      `config.json: image size ${config.imageSize} is not divisible by patch size ${config.patchSize}`,
    );
  }
  if (!(config.eps > 0))
    throw new ConvertError(`config.json: layer_norm_eps must be positive, got ${JSON.stringify(cfg.layer_norm_eps)}`);
  checkLimits(config, layout !== "timm" || "hidden_size" in cfg);
  return { config, labels: labelsFrom(cfg, classes) };
}

// config.json's keys for the bundle's sizes (timm configs: read off the tensors, named after them).
const HF_NAMES: Partial<Record<OverLimit["field"], string>> = {
  imageSize: "image_size",
  patchSize: "patch_size",
  channels: "num_channels",
  dim: "hidden_size",
  heads: "num_attention_heads",
  hidden: "intermediate_size",
  layers: "num_hidden_layers",
  classes: "the classifier's classes",
  patches: "(image_size / patch_size)^2",
  eps: "layer_norm_eps",
  distilled: "distilled",
  registerTokens: "num_register_tokens",
  projection: "projection_dim",
};

// No Worker isolate holds more than 128 MiB: weights and activations together.
const ISOLATE_BYTES = 128 * MiB;

// Before any tensor is read or planned: sizes over what a Worker can hold (LIMITS in core/bundle/format.ts), and
// the payload they imply (laying it out is bounded once the sizes are).
function checkLimits(config: ModelConfig, hfNames: boolean): void {
  const over = overLimit(config);
  if (over) {
    const where = hfNames ? "config.json" : "model.safetensors";
    throw new ConvertError(`${where}: ${hfNames ? (HF_NAMES[over.field] ?? over.field) : over.field} ${over.message}`);
  }
  const payload = bundleLayout(config).length;
  try {
    checkPayloadLimit(payload, `the int8 payload of ${describe(config)}`);
  } catch (e) {
    throw new ConvertError(`config.json: ${(e as Error).message}`);
  }
  // the engine's memory plan: weights and every activation buffer (attention at 576 tokens is large)
  const plan = memoryPlan(config, payload, 0, 4);
  if (plan.totalBytes > ISOLATE_BYTES) {
    throw new ConvertError(
      `config.json: ${describe(config)} needs ${sizeText(plan.totalBytes)} of engine memory ` +
        `(${sizeText(plan.payloadBytes)} of weights, ${sizeText(plan.activationBytes)} of activations), ` +
        `more than the ${sizeText(ISOLATE_BYTES)} a Worker isolate holds`,
    );
  }
}

// ---- preprocessor_config.json -> Preprocessing ----

const IMAGENET_STANDARD = [0.5, 0.5, 0.5];
const IMAGENET_DEFAULT_MEAN = [0.485, 0.456, 0.406];
const IMAGENET_DEFAULT_STD = [0.229, 0.224, 0.225];
const PIL_FILTERS: Record<string, number> = { nearest: 0, lanczos: 1, bilinear: 2, bicubic: 3, box: 4, hamming: 5 };

const OPENAI_CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073];
const OPENAI_CLIP_STD = [0.26862954, 0.26130258, 0.27577711];

// The image processors, by the defaults they apply: ViTImageProcessor, DeiTImageProcessor,
// CLIPImageProcessor (also BitImageProcessor, DINOv2's: the same defaults and steps) and SiglipImageProcessor.
// Idefics3ImageProcessor (SmolVLM's) tiles the image: its own steps are Preprocessing.splitting.
type ProcessorKind = "vit" | "deit" | "clip" | "siglip" | "idefics3";

// preprocessor_config.json's image_processor_type (or a legacy feature_extractor_type) -> its kind; a file
// that names none is judged by the checkpoint's layout.
function processorKind(pre: Json, layout: LayoutName): ProcessorKind {
  const type = String(pre.image_processor_type ?? pre.feature_extractor_type ?? "");
  if (/^(CLIP|Bit)(ImageProcessor|FeatureExtractor)/.test(type)) return "clip";
  if (/^Siglip(ImageProcessor|FeatureExtractor)/.test(type)) return "siglip";
  if (/^(Idefics3|SmolVLM)ImageProcessor/.test(type)) return "idefics3";
  if (/deit/i.test(type)) return "deit";
  if (type && layout.startsWith("hf-") && !["hf-vit", "hf-deit"].includes(layout) && !/^ViT/.test(type)) {
    throw new ConvertError(
      `preprocessor_config.json: image processor ${JSON.stringify(type)} is not one edgevit follows ` +
        "(ViT, DeiT, CLIP, Bit, Siglip, Idefics3 image processors)",
    );
  }
  if (type) return "vit";
  return layout === "hf-deit"
    ? "deit"
    : layout === "hf-clip" || layout === "hf-dinov2" || layout === "hf-llava"
      ? "clip"
      : layout === "hf-siglip"
        ? "siglip"
        : layout === "hf-idefics3"
          ? "idefics3"
          : "vit";
}

// Each processor's constructor defaults (keys a published file may omit).
function processorDefaults(kind: ProcessorKind, imageSize: number): Preprocessing {
  if (kind === "clip") {
    return {
      doResize: true,
      size: { shortestEdge: 224 },
      resample: 3,
      doCenterCrop: true,
      cropSize: { height: 224, width: 224 },
      doRescale: true,
      rescaleFactor: 1 / 255,
      doNormalize: true,
      imageMean: OPENAI_CLIP_MEAN,
      imageStd: OPENAI_CLIP_STD,
    };
  }
  if (kind === "siglip") {
    return {
      doResize: true,
      size: { height: 224, width: 224 },
      resample: 3,
      doCenterCrop: false,
      cropSize: null,
      doRescale: true,
      rescaleFactor: 1 / 255,
      doNormalize: true,
      imageMean: IMAGENET_STANDARD,
      imageStd: IMAGENET_STANDARD,
    };
  }
  const deit = kind === "deit";
  return {
    doResize: true,
    size: deit ? { height: 256, width: 256 } : { height: imageSize, width: imageSize },
    resample: deit ? 3 : 2,
    doCenterCrop: deit,
    cropSize: deit ? { height: 224, width: 224 } : null,
    doRescale: true,
    rescaleFactor: 1 / 255,
    doNormalize: true,
    imageMean: deit ? IMAGENET_DEFAULT_MEAN : IMAGENET_STANDARD,
    imageStd: deit ? IMAGENET_DEFAULT_STD : IMAGENET_STANDARD,
  };
}

// transformers' get_size_dict: an int is a square (CLIPImageProcessor's `size`: the shortest edge);
// {"shortest_edge"} keeps the aspect ratio.
function sizeDict(v: unknown, what: string, intIsShortestEdge = false): ResizeSize {
  if (Number.isInteger(v))
    return intIsShortestEdge ? { shortestEdge: v as number } : { height: v as number, width: v as number };
  const o = v as Json;
  if (o && typeof o === "object") {
    if ("height" in o && "width" in o)
      return { height: positiveInt(o.height, `${what}.height`), width: positiveInt(o.width, `${what}.width`) };
    if ("shortest_edge" in o && o.longest_edge == null)
      return { shortestEdge: positiveInt(o.shortest_edge, `${what}.shortest_edge`) };
  }
  throw new ConvertError(
    `preprocessor_config.json: ${what} ${JSON.stringify(v)} is not an int, {"height","width"} or {"shortest_edge"}`,
  );
}

// Idefics3ImageProcessor's defaults (longest edge 4 x 364, 364-pixel tiles, Lanczos, mean and std 0.5):
// `size` becomes the tile, what each forward pass takes, and its own steps Preprocessing.splitting.
function idefics3Preprocessing(pre: Json, config: ModelConfig): Preprocessing {
  const edge = (v: unknown, fallback: number, what: string): number => {
    const o = v as Json | null | undefined;
    if (o == null) return fallback;
    if (typeof o !== "object" || !("longest_edge" in o))
      throw new ConvertError(`preprocessor_config.json: ${what} ${JSON.stringify(v)} is not {"longest_edge"}`);
    return positiveInt(o.longest_edge, `${what}.longest_edge`);
  };
  if (pre.do_resize === false || pre.do_image_splitting === false) {
    throw new ConvertError(
      `preprocessor_config.json: ${pre.do_resize === false ? "do_resize" : "do_image_splitting"} is false; edgevit ` +
        "follows Idefics3ImageProcessor with its longest-edge resize and its tiles (ask for the global view alone per request)",
    );
  }
  const tile = edge(pre.max_image_size, 364, "max_image_size");
  const p: Preprocessing = {
    doResize: true,
    size: { height: tile, width: tile },
    resample: (pre.resample ?? 1) as number,
    doCenterCrop: false,
    cropSize: null,
    doRescale: (pre.do_rescale ?? true) as boolean,
    rescaleFactor: Number(pre.rescale_factor ?? 1 / 255),
    doNormalize: (pre.do_normalize ?? true) as boolean,
    imageMean: ((pre.image_mean ?? IMAGENET_STANDARD) as number[]).map(Number),
    imageStd: ((pre.image_std ?? IMAGENET_STANDARD) as number[]).map(Number),
    splitting: {
      longestEdge: edge(pre.size, 4 * 364, "size"),
      maxImageSize: tile,
    },
  };
  return checkInputSize(p, config, "preprocessor_config.json");
}

export function normalizePreprocessing(pre: Json, layout: LayoutName, config: ModelConfig): Preprocessing {
  const kind = processorKind(pre, layout);
  if (kind === "idefics3") return idefics3Preprocessing(pre, config);
  const d = processorDefaults(kind, config.imageSize);
  const p: Preprocessing = {
    doResize: (pre.do_resize ?? d.doResize) as boolean,
    size: pre.size == null ? d.size : sizeDict(pre.size, "size", kind === "clip"),
    resample: (pre.resample ?? d.resample) as number,
    doCenterCrop: (pre.do_center_crop ?? d.doCenterCrop) as boolean,
    cropSize: null,
    doRescale: (pre.do_rescale ?? d.doRescale) as boolean,
    rescaleFactor: Number(pre.rescale_factor ?? d.rescaleFactor),
    doNormalize: (pre.do_normalize ?? d.doNormalize) as boolean,
    imageMean: ((pre.image_mean ?? d.imageMean) as number[]).map(Number),
    imageStd: ((pre.image_std ?? d.imageStd) as number[]).map(Number),
  };
  if (p.doCenterCrop) {
    const crop = pre.crop_size == null ? d.cropSize : sizeDict(pre.crop_size, "crop_size");
    if (!crop || !("height" in crop))
      throw new ConvertError(
        `preprocessor_config.json: crop_size ${JSON.stringify(pre.crop_size)} must be an int or {"height","width"}`,
      );
    p.cropSize = crop;
  }
  return checkInputSize(p, config, "preprocessor_config.json");
}

// timm checkpoints describe their eval transform in config.json's pretrained_cfg:
// resize the shortest edge to floor(size / crop_pct), then center crop to size.
function timmPreprocessing(cfg: Json, config: ModelConfig): Preprocessing {
  const pc = (cfg.pretrained_cfg ?? cfg) as Json;
  const size = config.imageSize;
  const cropPct = Number(pc.crop_pct ?? 0.875);
  const interpolation = String(pc.interpolation ?? "bicubic");
  if (!(interpolation in PIL_FILTERS))
    throw new ConvertError(`config.json: interpolation ${JSON.stringify(interpolation)} is not a PIL filter`);
  const mean = (pc.mean ?? IMAGENET_DEFAULT_MEAN) as number[];
  const std = (pc.std ?? IMAGENET_DEFAULT_STD) as number[];
  return checkInputSize(
    {
      doResize: true,
      size: { shortestEdge: Math.floor(size / cropPct) },
      resample: PIL_FILTERS[interpolation],
      doCenterCrop: true,
      cropSize: { height: size, width: size },
      doRescale: true,
      rescaleFactor: 1 / 255,
      doNormalize: true,
      imageMean: mean.map(Number),
      imageStd: std.map(Number),
    },
    config,
    "config.json pretrained_cfg",
  );
}

function checkInputSize(p: Preprocessing, config: ModelConfig, file: string): Preprocessing {
  const final = p.doCenterCrop ? p.cropSize : p.doResize && "height" in p.size ? p.size : null;
  if (!final || final.height !== config.imageSize || final.width !== config.imageSize) {
    throw new ConvertError(
      `${file}: images come out ${final ? `${final.height}x${final.width}` : "at their own size"}, ` +
        `but the model takes ${config.imageSize}x${config.imageSize}`,
    );
  }
  if (p.imageMean.length !== config.channels || p.imageStd.length !== config.channels) {
    throw new ConvertError(
      `${file}: image_mean/image_std need ${config.channels} values, got ${p.imageMean.length}/${p.imageStd.length}`,
    );
  }
  if (!Number.isInteger(p.resample) || p.resample < 0 || p.resample > 5)
    throw new ConvertError(`${file}: resample ${p.resample} is not a PIL filter 0..5`);
  return p;
}

// ---- tensor layouts ----

function recipesFor(layout: "hf-vit" | "hf-deit" | "timm", c: ModelConfig): Recipes {
  const r = new Recipes();
  const f32 = (name: string, from: string, shape: number[]) => r.f32(name, from, shape);
  const linear = (name: string, from: string[], k: number, n: number, optionalBias = false) =>
    r.linear(name, from, k, n, optionalBias);
  const { dim, hidden, classes, channels, patchSize } = c;
  const patch = (from: string) => r.patch(from, dim, channels, patchSize);

  if (layout === "timm") {
    patch("patch_embed.proj");
    f32("embeddings.cls_token", "cls_token", [1, 1, dim]);
    if (c.distilled) f32("embeddings.distillation_token", "dist_token", [1, 1, dim]);
    f32("embeddings.position_embeddings", "pos_embed", [1, tokens(c), dim]);
    for (let l = 0; l < c.layers; l++) {
      const b = `blocks.${l}`,
        p = `encoder.layer.${l}`;
      f32(`${p}.layernorm_before.weight`, `${b}.norm1.weight`, [dim]);
      f32(`${p}.layernorm_before.bias`, `${b}.norm1.bias`, [dim]);
      linear(`${p}.attention.qkv`, [`${b}.attn.qkv`], dim, 3 * dim, true); // rows already q, k, v
      linear(`${p}.attention.output.dense`, [`${b}.attn.proj`], dim, dim);
      f32(`${p}.layernorm_after.weight`, `${b}.norm2.weight`, [dim]);
      f32(`${p}.layernorm_after.bias`, `${b}.norm2.bias`, [dim]);
      linear(`${p}.intermediate.dense`, [`${b}.mlp.fc1`], dim, hidden);
      linear(`${p}.output.dense`, [`${b}.mlp.fc2`], hidden, dim);
    }
    f32("layernorm.weight", "norm.weight", [dim]);
    f32("layernorm.bias", "norm.bias", [dim]);
    linear("classifier", ["head"], dim, classes);
    if (c.distilled) linear("distillation_classifier", ["head_dist"], dim, classes);
  } else {
    const m = layout === "hf-deit" ? "deit" : "vit";
    patch(`${m}.embeddings.patch_embeddings.projection`);
    f32("embeddings.cls_token", `${m}.embeddings.cls_token`, [1, 1, dim]);
    if (c.distilled) f32("embeddings.distillation_token", `${m}.embeddings.distillation_token`, [1, 1, dim]);
    f32("embeddings.position_embeddings", `${m}.embeddings.position_embeddings`, [1, tokens(c), dim]);
    for (let l = 0; l < c.layers; l++) {
      const p = `encoder.layer.${l}`,
        s = `${m}.${p}`;
      for (const ln of ["layernorm_before", "layernorm_after"]) {
        f32(`${p}.${ln}.weight`, `${s}.${ln}.weight`, [dim]);
        f32(`${p}.${ln}.bias`, `${s}.${ln}.bias`, [dim]);
      }
      const a = `${s}.attention.attention`;
      linear(`${p}.attention.qkv`, [`${a}.query`, `${a}.key`, `${a}.value`], dim, 3 * dim, true);
      linear(`${p}.attention.output.dense`, [`${s}.attention.output.dense`], dim, dim);
      linear(`${p}.intermediate.dense`, [`${s}.intermediate.dense`], dim, hidden);
      linear(`${p}.output.dense`, [`${s}.output.dense`], hidden, dim);
    }
    f32("layernorm.weight", `${m}.layernorm.weight`, [dim]);
    f32("layernorm.bias", `${m}.layernorm.bias`, [dim]);
    if (c.distilled) {
      linear("classifier", ["cls_classifier"], dim, classes);
      linear("distillation_classifier", ["distillation_classifier"], dim, classes);
    } else {
      linear("classifier", ["classifier"], dim, classes);
    }
  }
  return r;
}

// Tensors each layout needs whatever the sizes; the per-layer rest is checked once the config is known.
const ANCHORS: Record<"hf-vit" | "hf-deit" | "timm", string[]> = {
  "hf-vit": [
    "vit.embeddings.cls_token",
    "vit.embeddings.position_embeddings",
    "vit.embeddings.patch_embeddings.projection.weight",
    "vit.encoder.layer.0.attention.attention.query.weight",
    "vit.layernorm.weight",
    "classifier.weight",
  ],
  "hf-deit": [
    "deit.embeddings.cls_token",
    "deit.embeddings.distillation_token",
    "deit.embeddings.position_embeddings",
    "deit.embeddings.patch_embeddings.projection.weight",
    "deit.encoder.layer.0.attention.attention.query.weight",
    "deit.layernorm.weight",
    "cls_classifier.weight",
    "distillation_classifier.weight",
  ],
  timm: [
    "cls_token",
    "pos_embed",
    "patch_embed.proj.weight",
    "blocks.0.norm1.weight",
    "blocks.0.attn.qkv.weight",
    "blocks.0.mlp.fc1.weight",
    "norm.weight",
    "head.weight",
  ],
};

function listMissing(missing: string[]): string {
  const shown = missing.slice(0, 12).join(", ");
  return missing.length > 12 ? `${shown} and ${missing.length - 12} more` : shown;
}

function detectLayout(names: Set<string>): "hf-vit" | "hf-deit" | "timm" {
  const scored = (Object.keys(ANCHORS) as (keyof typeof ANCHORS)[]).map((layout) => ({
    layout,
    missing: ANCHORS[layout].filter((n) => !names.has(n)),
  }));
  const found = scored.find((s) => s.missing.length === 0);
  if (found) return found.layout;
  scored.sort((a, b) => a.missing.length - b.missing.length);
  const lines = scored.map((s) => `  ${s.layout}: missing ${listMissing(s.missing)}`);
  throw new ConvertError(
    `model.safetensors is not a layout this converter knows (HF ViT, HF DeiT distilled, timm ViT/DeiT); expected tensors not found:\n${lines.join("\n")}`,
  );
}

// ---- which architectures ----

// The architectures this converter knows, by config.json's model_type (transformers) and the
// `architectures` class names that go with it; timm configs name an `architecture` instead.
const SUPPORTED: Record<string, string[]> = {
  vit: ["ViTForImageClassification"],
  deit: ["DeiTForImageClassification", "DeiTForImageClassificationWithTeacher"],
  ...TOWER_ARCHITECTURES,
};
const TIMM_ARCH = /^(vit|deit)_/;

export const SUPPORTED_ARCHITECTURES =
  'Hugging Face ViT (model_type "vit": ViTForImageClassification), DeiT (model_type "deit": ' +
  "DeiTForImageClassification, DeiTForImageClassificationWithTeacher), the image towers of CLIP " +
  '("clip": CLIPModel; "clip_vision_model": CLIPVisionModelWithProjection, CLIPVisionModel), SigLIP and ' +
  'SigLIP 2 at a fixed resolution ("siglip": SiglipModel; "siglip_vision_model": SiglipVisionModel), ' +
  'DINOv2 ("dinov2": Dinov2Model; "dinov2_with_registers": Dinov2WithRegistersModel), the vision tower and ' +
  'connector of Idefics3 / SmolVLM ("idefics3": Idefics3ForConditionalGeneration; "smolvlm": ' +
  'SmolVLMForConditionalGeneration) and LLaVA ("llava": LlavaForConditionalGeneration), and timm vit_* / ' +
  "deit_* checkpoints";

// Refuses a checkpoint of another architecture (Swin, BEiT, ConvNeXt, ...) by what its config.json says,
// before any tensor is read; a config that names no architecture is judged by its tensors.
function checkArchitecture(cfg: Json): void {
  const modelType = typeof cfg.model_type === "string" ? cfg.model_type : undefined;
  const classes = Array.isArray(cfg.architectures) ? (cfg.architectures as unknown[]).map(String) : [];
  const timmArch = typeof cfg.architecture === "string" ? cfg.architecture : undefined;
  const named = [modelType && `model_type ${JSON.stringify(modelType)}`, classes.length && classes.join(", ")]
    .filter(Boolean)
    .join(", ");
  if (modelType !== undefined) {
    const known = SUPPORTED[modelType];
    const unknownClass = classes.find((c) => known && !known.includes(c));
    if (!known || unknownClass) {
      throw new ConvertError(
        `config.json: this is a ${named} checkpoint; edgevit converts ${SUPPORTED_ARCHITECTURES} only`,
      );
    }
    return;
  }
  if (timmArch !== undefined && !TIMM_ARCH.test(timmArch)) {
    throw new ConvertError(
      `config.json: this is a timm ${JSON.stringify(timmArch)} checkpoint; edgevit converts ${SUPPORTED_ARCHITECTURES} only`,
    );
  }
}

// ---- reading the checkpoint ----

const sameShape = (a: number[], b: number[]) => a.length === b.length && a.every((d, i) => d === b[i]);

export interface Plan {
  parts: BundleParts;
  recipes: Map<string, Recipe>;
  ckpt: TensorSource;
  text: TextTower | null; // a two-tower checkpoint's text tower, written as the bundle's "text" section
  lm: LmEmbeddings | null; // a VLM's LLM embedding table, when asked for: the "lm_embeddings" section
}

// The checkpoint's layout, its bundle config and labels, and the recipe of every bundle tensor.
function modelOf(
  cfg: Json,
  pre: Json | null,
  ckpt: TensorSource,
): { layout: LayoutName; config: ModelConfig; labels: string[]; recipes: Map<string, Recipe> } {
  if (typeof cfg.model_type === "string" && cfg.model_type in TOWER_ARCHITECTURES) {
    const tower = towerFor(
      cfg,
      pre,
      (name) => ckpt.has(name),
      (name) => ckpt.info(name).shape,
    );
    checkLimits(tower.config, true);
    return { layout: tower.layout, config: tower.config, labels: [], recipes: tower.recipes };
  }
  const layout = detectLayout(new Set(ckpt.tensors.keys()));
  if (layout === "timm" && ckpt.has("fc_norm.weight")) {
    throw new ConvertError(
      "model.safetensors: this timm model pools by averaging tokens (fc_norm); the engine classifies from the class token",
    );
  }
  const { config, labels } = modelConfig(cfg, layout, ckpt);
  return { layout, config, labels, recipes: recipesFor(layout, config) };
}

export async function plan(source: CheckpointSource, options: ConvertOptions): Promise<Plan> {
  const log = options.log ?? (() => {});
  const dir = source.checkpoint;
  const cfg = (await source.json("config.json", false)) as Json;
  checkArchitecture(cfg);
  const pre = await source.json("preprocessor_config.json", true);
  const ckpt = await source.tensors();
  try {
    const { layout, config, labels, recipes } = modelOf(cfg, pre, ckpt);
    const missing = [...recipes.values()].flatMap(required).filter((n) => !ckpt.has(n));
    if (missing.length) {
      throw new ConvertError(
        `model.safetensors looks like ${layout} (${describe(config)}) but lacks ${missing.length} tensors: ${listMissing(missing)}`,
      );
    }
    checkShapes(recipes, ckpt, layout);
    if (!pre && layout !== "timm") throw new ConvertError(`${dir}: no preprocessor_config.json`);
    const preprocessing = pre ? normalizePreprocessing(pre, layout, config) : timmPreprocessing(cfg, config);
    const files: Record<string, { bytes: number; crc32: string }> = {};
    for (const f of ["config.json", "preprocessor_config.json", ...ckpt.files]) {
      if (f !== "preprocessor_config.json" || pre) files[f] = await source.record(f);
    }
    const text = await textTowerFor(source, cfg, ckpt);
    for (const f of text?.files ?? []) files[f] = await source.record(f);
    const lm = options.lmEmbeddings ? await lmEmbeddingsFor(source, layout, config, ckpt) : null;
    for (const f of lm?.files ?? []) files[f] = await source.record(f);
    const dtypes = [...new Set([...ckpt.tensors.values()].map((t) => t.dtype))].sort().join("+");
    log(`read ${dir}: layout ${layout}, ${dtypes}, ${(ckpt.bytes / 1e6).toFixed(1)} MB, ${ckpt.tensors.size} tensors`);
    log(
      `  image ${config.imageSize}x${config.imageSize}x${config.channels}, patch ${config.patchSize}, tokens ${tokens(config)}, ` +
        `dim ${config.dim}, heads ${config.heads}, hidden ${config.hidden}, layers ${config.layers}, eps ${config.eps}, ` +
        `${labels.length} labels${config.distilled ? ", distilled" : ""}`,
    );
    if (config.family) {
      const t = towerOf(config);
      log(
        `  ${t.family} tower: hidden_act ${t.hiddenAct}, ${t.classToken ? "class token" : "no class token"}, ` +
          `${t.registerTokens} registers, pre_layrnorm ${t.preLayernorm}, LayerScale ${t.layerScale}, ` +
          `final norm on ${t.finalNorm}, pooling ${t.pooling}, projection ${t.projection || "none"}`,
      );
      if (t.connector !== "none")
        log(
          `  ${t.connector} connector to the LLM's width ${t.lmDim}: ` +
            (t.connector === "idefics3"
              ? `pixel shuffle by ${t.scaleFactor}`
              : `layer ${config.layers}'s hidden state (${t.visionFeatureSelectStrategy}), ${t.projectorHiddenAct}`),
        );
    }
    if (text) {
      const t = text.section.config;
      log(
        `  text tower (${text.section.kind}): vocab ${t.vocab}, ${t.positions} positions, dim ${t.dim}, heads ${t.heads}, ` +
          `hidden ${t.hidden}, layers ${t.layers}, eps ${t.eps}, hidden_act ${t.hiddenAct}, ` +
          `${t.causal ? "causal" : "bidirectional"}, pooling ${t.pooling}${t.pooling === "last" ? "" : ` (eos_token_id ${t.eosTokenId})`}, ` +
          `projection ${t.projection}, logit_scale ${t.logitScale}${t.logitBias ? `, logit_bias ${t.logitBias}` : ""}, ` +
          `tokenizer ${t.tokenizerBytes} bytes`,
      );
    } else if (cfg.model_type === "clip" || cfg.model_type === "siglip") {
      log("  no tokenizer files (vocab.json and merges.txt, or spiece.model): the text tower is not written");
    }
    if (lm) {
      const e = lm.section.config;
      log(
        `  LLM input embeddings (${lm.table}): ${e.vocab} x ${e.dim}, int8 rows` +
          (lm.tokens ? `, ${e.tokensBytes} bytes of token strings` : ", no tokenizer.json: ids without strings"),
      );
    }
    const size = preprocessing.splitting
      ? `longest edge ${preprocessing.splitting.longestEdge}, tiles of ${preprocessing.splitting.maxImageSize}`
      : "shortestEdge" in preprocessing.size
        ? `shortest edge ${preprocessing.size.shortestEdge}`
        : `${preprocessing.size.height}x${preprocessing.size.width}`;
    log(
      `  preprocessing: resize ${preprocessing.doResize ? size : "off"} (resample ${preprocessing.resample}), ` +
        `crop ${preprocessing.cropSize ? `${preprocessing.cropSize.height}x${preprocessing.cropSize.width}` : "off"}, ` +
        `mean [${preprocessing.imageMean.join(", ")}], std [${preprocessing.imageStd.join(", ")}]`,
    );
    const parts: BundleParts = {
      name: options.name ?? source.defaultName,
      config,
      preprocessing,
      labels,
      source: {
        layout,
        checkpoint: source.checkpoint,
        files,
        dtype: dtypes,
        converter: CONVERTER,
        convertedAt: options.convertedAt ?? new Date().toISOString().replace(/\.\d+Z$/, "Z"),
      },
    };
    const sections = [...(text ? [text.section] : []), ...(lm ? [lm.section] : [])];
    if (sections.length > 0) parts.sections = sections;
    return { parts, recipes, ckpt, text, lm };
  } catch (e) {
    await ckpt.close();
    throw e;
  }
}

function checkShapes(recipes: Map<string, Recipe>, ckpt: TensorSource, layout: LayoutName): void {
  const expect = (name: string, shape: number[]) => {
    const got = ckpt.info(name).shape;
    if (!sameShape(got, shape)) {
      throw new ConvertError(
        `model.safetensors: ${name} has shape [${got.join(", ")}], config.json implies [${shape.join(", ")}]`,
      );
    }
  };
  for (const r of recipes.values()) {
    if (r.kind === "f32") {
      expect(r.from, r.shape);
      continue;
    }
    const rows = r.n / r.weights.length;
    r.weights.forEach((w) => expect(w, r.weightShape ?? [rows, r.k]));
    const present = r.biases.filter((b) => ckpt.has(b));
    if (present.length !== 0 && present.length !== r.biases.length) {
      throw new ConvertError(`model.safetensors (${layout}): only some of ${r.biases.join(", ")} are present`);
    }
    present.forEach((b) => expect(b, r.biasShape ?? [rows]));
  }
}

// A checkpoint tensor, refused when it holds NaN or +-Inf: quantizing would spread it over its row.
async function readFinite(ckpt: TensorSource, name: string): Promise<Float32Array> {
  return finite(name, await ckpt.read(name), 0);
}

// `data`, the elements of tensor `name` from `first` on, when every one is finite.
function finite(name: string, data: Float32Array, first: number): Float32Array {
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i])) {
      throw new ConvertError(
        `model.safetensors: tensor ${name} has a non-finite value (${data[i]}) at element ${first + i}`,
      );
    }
  }
  return data;
}

// The records a source gives at the end, in the order the plan listed its files.
function inOrder(planned: Record<string, SourceFile>, last: Record<string, SourceFile>): Record<string, SourceFile> {
  return Object.fromEntries(Object.keys(planned).map((name) => [name, last[name] ?? planned[name]]));
}

async function concat(ckpt: TensorSource, names: string[]): Promise<Float32Array> {
  if (names.length === 1) return readFinite(ckpt, names[0]);
  return concatRows(await Promise.all(names.map((n) => readFinite(ckpt, n))));
}

// The bundle's tensors in layout order, each packed from the checkpoint as it is reached.
async function* bundleTensors(
  p: Plan,
  writer: BundleWriter,
  log: (line: string) => void,
): AsyncGenerator<[string, ArrayBufferView]> {
  let packed: PackedLinear | null = null;
  let layer = -1;
  const big = p.ckpt.bytes > 50e6;
  for (const entry of writer.plan.tensors) {
    const m = /^encoder\.layer\.(\d+)\./.exec(entry.name);
    if (big && m && Number(m[1]) !== layer) {
      layer = Number(m[1]);
      log(`  layer ${layer + 1}/${p.parts.config.layers}`);
    }
    const source = entry.source;
    if (source.kind === "f32") {
      const r = p.recipes.get(entry.name);
      if (r?.kind !== "f32") throw new Error(`no recipe for ${entry.name}`);
      const data = await readFinite(p.ckpt, r.from);
      yield [entry.name, r.transform ? r.transform(data) : data];
      continue;
    }
    const module = entry.name.slice(0, entry.name.lastIndexOf("."));
    if (source.part === "weight") {
      const r = p.recipes.get(module);
      if (r?.kind !== "linear") throw new Error(`no recipe for ${module}`);
      let weight = await concat(p.ckpt, r.weights);
      let bias = p.ckpt.has(r.biases[0]) ? await concat(p.ckpt, r.biases) : null;
      if (r.rows) {
        const [first, end] = r.rows;
        weight = weight.subarray(first * r.k, end * r.k);
        bias = bias ? bias.subarray(first, end) : null;
      }
      packed = packLinear(weight, bias, r.n, r.k);
    }
    if (!packed) throw new Error(`${entry.name} before its weight`);
    yield [entry.name, packed[source.part]];
  }
}

// Writes the bundle through `write(chunk, position)`: the placeholder head, the payload chunks in order,
// then the final head (with the payload CRC) over the placeholder.
async function writeBundle(
  p: Plan,
  writer: BundleWriter,
  log: (line: string) => void,
  write: (chunk: Uint8Array, position: number) => void | Promise<void>,
  final?: () => Promise<Record<string, SourceFile>>,
): Promise<BundleHeader> {
  await write(writer.head(), 0);
  let at = writer.payloadOffset;
  for await (const [name, data] of bundleTensors(p, writer, log)) {
    for (const chunk of writer.add(name, data)) {
      await write(chunk, at);
      at += chunk.length;
    }
  }
  if (p.text) {
    log("  text tower");
    const reader = {
      read: (name: string) => readFinite(p.ckpt, name),
      readRows: async (name: string, first: number, end: number) =>
        finite(name, await p.ckpt.readRows(name, first, end), first * (p.ckpt.info(name).shape[1] ?? 1)),
      has: (name: string) => p.ckpt.has(name),
    };
    for await (const [name, data] of textTensors(p.text, reader)) {
      for (const chunk of writer.addSection(name, data)) {
        await write(chunk, at);
        at += chunk.length;
      }
    }
  }
  if (p.lm) {
    log("  LLM input embeddings");
    const readRows = async (name: string, first: number, end: number) =>
      finite(name, await p.ckpt.readRows(name, first, end), first * (p.ckpt.info(name).shape[1] ?? 1));
    for await (const [name, data] of lmEmbeddingTensors(p.lm, readRows)) {
      for (const chunk of writer.addSection(name, data)) {
        await write(chunk, at);
        at += chunk.length;
      }
    }
  }
  const source = final && { ...p.parts.source, files: inOrder(p.parts.source.files, await final()) };
  const { head, header } = writer.finish(source);
  await write(head, 0);
  return header;
}

// The most the converter holds at once for one bundle tensor, in bytes: the raw bytes of its checkpoint
// tensors (read together when several are stacked, as HF's query, key and value), each decoded to f32, their
// concatenation, a transformed copy (DINOv2's interpolated position embeddings) and the packed output; for a
// text tower's token embedding, its int8 table and a piece of its rows (text.ts). A caller that counts its
// memory (the Worker's import) reserves it before the first tensor is read.
export function tensorPeakBytes(p: Plan): number {
  const entries = new Map(bundleLayout(p.parts.config).tensors.map((e) => [e.name, e.bytes]));
  let peak = recipesPeakBytes(p.ckpt, p.recipes, entries);
  if (p.text) peak = Math.max(peak, recipesPeakBytes(p.ckpt, p.text.recipes, new Map()), textPeakBytes(p.text, p.ckpt));
  if (p.lm) peak = Math.max(peak, lmEmbeddingsPeakBytes(p.lm, p.ckpt));
  return peak;
}

function recipesPeakBytes(ckpt: TensorSource, recipes: Map<string, Recipe>, entries: Map<string, number>): number {
  const count = (name: string) => ckpt.info(name).shape.reduce((a, b) => a * b, 1);
  const raw = (name: string) => ckpt.info(name).end - ckpt.info(name).begin;
  const sum = (names: string[], f: (name: string) => number) => names.reduce((a, n) => a + f(n), 0);
  let peak = 0;
  for (const [name, r] of recipes) {
    let bytes: number;
    if (r.kind === "f32") {
      bytes = raw(r.from) + 4 * count(r.from) + (r.transform ? (entries.get(name) ?? 0) : 0);
    } else {
      const sources = [...r.weights, ...r.biases.filter((b) => ckpt.has(b))];
      const stacked = r.weights.length > 1 ? 4 * sum(sources, count) : 0;
      const packed = Object.values(packedSizes(r.n, r.k)).reduce((a, b) => a + b, 0);
      bytes = sum(sources, raw) + 4 * sum(sources, count) + stacked + packed;
    }
    peak = Math.max(peak, bytes);
  }
  return peak;
}

// Converts `source`, writing the bundle through `write(chunk, position)`: the head first (a placeholder of
// the final length), the payload in order, then the final head over the placeholder. `size` is called with
// the bundle's length and the plan (tensorPeakBytes) once the checkpoint is planned, before any tensor is
// read or anything written.
export async function convert(
  source: CheckpointSource,
  options: ConvertOptions,
  write: (chunk: Uint8Array, position: number) => void | Promise<void>,
  size?: (bytes: number, planned: Plan) => void | Promise<void>,
): Promise<BundleHeader> {
  const p = await plan(source, options);
  try {
    const writer = new BundleWriter(p.parts, options.crc32 ?? portableCrc32);
    await size?.(writer.fileLength, p);
    return await writeBundle(p, writer, options.log ?? (() => {}), write, source.final?.bind(source));
  } catch (e) {
    throw e instanceof BundleError ? new ConvertError(e.message) : e;
  } finally {
    await p.ckpt.close();
  }
}
