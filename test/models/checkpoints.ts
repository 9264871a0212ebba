// Tiny checkpoints written from Node in the three published layouts, with the same weights in each, so
// the converter can be checked against the tensors it was given.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { concatRows } from "../../models/convert-folder.ts";
import { encodeSafetensors, type Dtype, type WriteTensor } from "../../models/safetensors.ts";

export interface Tiny {
  imageSize: number;
  patchSize: number;
  channels: number;
  dim: number;
  heads: number;
  hidden: number;
  layers: number;
  classes: number;
  distilled: boolean;
}

export const TINY: Tiny = {
  imageSize: 8,
  patchSize: 4,
  channels: 3,
  dim: 8,
  heads: 2,
  hidden: 20,
  layers: 2,
  classes: 3,
  distilled: false,
};
export const LABELS = ["cat", "dog", "bird"];

// Weights of one model by role, [N][K] row-major for Linears (PyTorch's layout).
export type Weights = Map<string, { shape: number[]; data: Float32Array }>;

function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 31 - 1; // [-1, 1)
  };
}

export function makeWeights(t: Tiny, seed = 7): Weights {
  const next = random(seed);
  const w: Weights = new Map();
  const add = (name: string, shape: number[], scale = 0.2) => {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    for (let i = 0; i < data.length; i++) data[i] = next() * scale;
    w.set(name, { shape, data });
  };
  const tokens = (t.imageSize / t.patchSize) ** 2 + 1 + (t.distilled ? 1 : 0);
  add("patch.weight", [t.dim, t.channels, t.patchSize, t.patchSize]);
  add("patch.bias", [t.dim]);
  add("cls", [1, 1, t.dim]);
  if (t.distilled) add("dist", [1, 1, t.dim]);
  add("pos", [1, tokens, t.dim]);
  for (let l = 0; l < t.layers; l++) {
    for (const ln of ["ln1", "ln2"]) {
      add(`${l}.${ln}.weight`, [t.dim], 1);
      add(`${l}.${ln}.bias`, [t.dim]);
    }
    for (const p of ["q", "k", "v", "o"]) {
      add(`${l}.${p}.weight`, [t.dim, t.dim]);
      add(`${l}.${p}.bias`, [t.dim]);
    }
    add(`${l}.fc1.weight`, [t.hidden, t.dim]);
    add(`${l}.fc1.bias`, [t.hidden]);
    add(`${l}.fc2.weight`, [t.dim, t.hidden]);
    add(`${l}.fc2.bias`, [t.dim]);
  }
  add("norm.weight", [t.dim], 1);
  add("norm.bias", [t.dim]);
  add("head.weight", [t.classes, t.dim]);
  add("head.bias", [t.classes]);
  if (t.distilled) {
    add("head_dist.weight", [t.classes, t.dim]);
    add("head_dist.bias", [t.classes]);
  }
  return w;
}

// Tensor names of each layout -> data.
export function hfTensors(
  t: Tiny,
  w: Weights,
  prefix: "vit" | "deit",
): Map<string, { shape: number[]; data: Float32Array }> {
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  const put = (name: string, role: string) => out.set(name, w.get(role)!);
  const e = `${prefix}.embeddings`;
  put(`${e}.cls_token`, "cls");
  if (t.distilled) put(`${e}.distillation_token`, "dist");
  put(`${e}.position_embeddings`, "pos");
  put(`${e}.patch_embeddings.projection.weight`, "patch.weight");
  put(`${e}.patch_embeddings.projection.bias`, "patch.bias");
  const names: Record<string, string> = {
    ln1: "layernorm_before",
    ln2: "layernorm_after",
    q: "attention.attention.query",
    k: "attention.attention.key",
    v: "attention.attention.value",
    o: "attention.output.dense",
    fc1: "intermediate.dense",
    fc2: "output.dense",
  };
  for (let l = 0; l < t.layers; l++) {
    for (const [role, name] of Object.entries(names)) {
      put(`${prefix}.encoder.layer.${l}.${name}.weight`, `${l}.${role}.weight`);
      put(`${prefix}.encoder.layer.${l}.${name}.bias`, `${l}.${role}.bias`);
    }
  }
  put(`${prefix}.layernorm.weight`, "norm.weight");
  put(`${prefix}.layernorm.bias`, "norm.bias");
  const head = t.distilled ? "cls_classifier" : "classifier";
  put(`${head}.weight`, "head.weight");
  put(`${head}.bias`, "head.bias");
  if (t.distilled) {
    put("distillation_classifier.weight", "head_dist.weight");
    put("distillation_classifier.bias", "head_dist.bias");
  }
  return out;
}

export function timmTensors(t: Tiny, w: Weights): Map<string, { shape: number[]; data: Float32Array }> {
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  const put = (name: string, role: string) => out.set(name, w.get(role)!);
  put("cls_token", "cls");
  if (t.distilled) put("dist_token", "dist");
  put("pos_embed", "pos");
  put("patch_embed.proj.weight", "patch.weight");
  put("patch_embed.proj.bias", "patch.bias");
  for (let l = 0; l < t.layers; l++) {
    const b = `blocks.${l}`;
    put(`${b}.norm1.weight`, `${l}.ln1.weight`);
    put(`${b}.norm1.bias`, `${l}.ln1.bias`);
    // timm fuses q, k, v by rows
    out.set(`${b}.attn.qkv.weight`, {
      shape: [3 * t.dim, t.dim],
      data: concatRows(["q", "k", "v"].map((p) => w.get(`${l}.${p}.weight`)!.data)),
    });
    out.set(`${b}.attn.qkv.bias`, {
      shape: [3 * t.dim],
      data: concatRows(["q", "k", "v"].map((p) => w.get(`${l}.${p}.bias`)!.data)),
    });
    put(`${b}.attn.proj.weight`, `${l}.o.weight`);
    put(`${b}.attn.proj.bias`, `${l}.o.bias`);
    put(`${b}.norm2.weight`, `${l}.ln2.weight`);
    put(`${b}.norm2.bias`, `${l}.ln2.bias`);
    put(`${b}.mlp.fc1.weight`, `${l}.fc1.weight`);
    put(`${b}.mlp.fc1.bias`, `${l}.fc1.bias`);
    put(`${b}.mlp.fc2.weight`, `${l}.fc2.weight`);
    put(`${b}.mlp.fc2.bias`, `${l}.fc2.bias`);
  }
  put("norm.weight", "norm.weight");
  put("norm.bias", "norm.bias");
  put("head.weight", "head.weight");
  put("head.bias", "head.bias");
  if (t.distilled) {
    put("head_dist.weight", "head_dist.weight");
    put("head_dist.bias", "head_dist.bias");
  }
  return out;
}

function toDtype(data: Float32Array, dtype: Dtype): Uint8Array {
  if (dtype === "F32") return new Uint8Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
  // BF16: the top half of each f32 (truncation: exact for values the test rounds first)
  const bits = new Uint32Array(data.buffer, data.byteOffset, data.length);
  return new Uint8Array(Uint16Array.from(bits, (b) => b >>> 16).buffer);
}

export function hfConfig(t: Tiny, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    architectures: [t.distilled ? "DeiTForImageClassificationWithTeacher" : "ViTForImageClassification"],
    model_type: t.distilled ? "deit" : "vit",
    image_size: t.imageSize,
    patch_size: t.patchSize,
    num_channels: t.channels,
    hidden_size: t.dim,
    num_attention_heads: t.heads,
    intermediate_size: t.hidden,
    num_hidden_layers: t.layers,
    hidden_act: "gelu",
    layer_norm_eps: 1e-12,
    qkv_bias: true,
    id2label: Object.fromEntries(LABELS.slice(0, t.classes).map((l, i) => [String(i), l])),
    ...extra,
  };
}

export const VIT_PREPROCESSOR = {
  image_processor_type: "ViTImageProcessor",
  do_resize: true,
  size: { height: 8, width: 8 },
  resample: 2,
  do_rescale: true,
  rescale_factor: 1 / 255,
  do_normalize: true,
  image_mean: [0.5, 0.5, 0.5],
  image_std: [0.5, 0.5, 0.5],
};

export function writeCheckpoint(
  dir: string,
  tensors: Map<string, { shape: number[]; data: Float32Array }>,
  config: Record<string, unknown>,
  preprocessor: Record<string, unknown> | null,
  dtype: Dtype = "F32",
): string {
  mkdirSync(dir, { recursive: true });
  const st: Record<string, WriteTensor> = {};
  for (const [name, { shape, data }] of tensors) st[name] = { dtype, shape, data: toDtype(data, dtype) };
  writeFileSync(join(dir, "model.safetensors"), encodeSafetensors(st, { format: "pt" }));
  writeFileSync(join(dir, "config.json"), JSON.stringify(config, null, 2));
  if (preprocessor) writeFileSync(join(dir, "preprocessor_config.json"), JSON.stringify(preprocessor, null, 2));
  return dir;
}
