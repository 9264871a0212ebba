// Writes a Hugging Face checkpoint directory with deterministic random ViT weights:
// config.json, preprocessor_config.json, model.safetensors and a matching input batch
// (inputs.f32 + inputs.json). Every value comes from a counter-based integer hash of
// (seed, tensor name, element index) in plain IEEE arithmetic, so the files are byte-identical
// on any machine and a ViT-B checkpoint takes seconds.
//
//   npx node models/tools/make-random-vit.ts --preset tiny --layout hf-vit --seed 1 \
//     --out .cache/models/tiny [--dtype F32|F16|BF16] [--inputs 4]

import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { encodeSafetensors, type Dtype, type WriteTensor } from "../safetensors.ts";

type Layout = "hf-vit" | "hf-deit-distilled" | "timm" | "timm-distilled";

interface Preset {
  imageSize: number;
  patchSize: number;
  channels: number;
  dim: number;
  heads: number;
  hidden: number; // MLP width
  layers: number;
  classes: number;
}

const PRESETS: Record<string, Preset> = {
  // headDim 16: the engine's SIMD-friendly case
  tiny: { imageSize: 32, patchSize: 8, channels: 3, dim: 48, heads: 3, hidden: 192, layers: 2, classes: 10 },
  // every size off the 4/16 grid: headDim 12, K = 3*6*6 = 108, hidden 150, 7 classes
  "tiny-odd": { imageSize: 30, patchSize: 6, channels: 3, dim: 60, heads: 5, hidden: 150, layers: 2, classes: 7 },
  "deit-tiny": {
    imageSize: 224,
    patchSize: 16,
    channels: 3,
    dim: 192,
    heads: 3,
    hidden: 768,
    layers: 12,
    classes: 1000,
  },
  "deit-small": {
    imageSize: 224,
    patchSize: 16,
    channels: 3,
    dim: 384,
    heads: 6,
    hidden: 1536,
    layers: 12,
    classes: 1000,
  },
  // google/vit-base-patch16-224
  "vit-b16": {
    imageSize: 224,
    patchSize: 16,
    channels: 3,
    dim: 768,
    heads: 12,
    hidden: 3072,
    layers: 12,
    classes: 1000,
  },
};

// ---- counter-based PRNG ------------------------------------------------------------------

// murmur3's 32-bit finalizer: a bijection on u32 with full avalanche.
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

// FNV-1a over the name, mixed with the seed: one independent stream per tensor.
export function streamKey(seed: number, name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  return fmix32((h ^ fmix32(seed >>> 0)) >>> 0);
}

// Uniform in [0, 1) with 24 bits, element `i` of stream `key` (two rounds, Weyl-spaced counter).
export function uniform(key: number, i: number): number {
  const h = fmix32((fmix32((Math.imul(i, 0x9e3779b9) + key) >>> 0) + 0x632be5ab) >>> 0);
  return (h >>> 8) / 16777216;
}

// `count` values, uniform with mean `mean` and standard deviation `std`, rounded to f32.
export function uniformTensor(seed: number, name: string, count: number, mean: number, std: number): Float32Array {
  const key = streamKey(seed, name);
  const half = std * Math.sqrt(3); // a uniform on [-a, a] has std a / sqrt(3)
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = mean + half * (2 * uniform(key, i) - 1);
  return out;
}

// ---- weights -----------------------------------------------------------------------------

interface Tensor {
  shape: number[];
  data: Float32Array;
}

// Linear weights: std 0.7/sqrt(fanIn) (0.025 at ViT-B width, about the 0.02 of a trained ViT,
// and large enough in tiny models that attention is far from uniform). The classifier is
// wider so that top-1 margins are well above quantization noise.
function linear(seed: number, name: string, outs: number, ins: number, std = 0.7 / Math.sqrt(ins)) {
  return {
    weight: { shape: [outs, ins], data: uniformTensor(seed, `${name}.weight`, outs * ins, 0, std) },
    bias: { shape: [outs], data: uniformTensor(seed, `${name}.bias`, outs, 0, 0.02) },
  };
}

function layerNorm(seed: number, name: string, dim: number) {
  return {
    weight: { shape: [dim], data: uniformTensor(seed, `${name}.weight`, dim, 1, 0.05) },
    bias: { shape: [dim], data: uniformTensor(seed, `${name}.bias`, dim, 0, 0.02) },
  };
}

// Tensors under canonical (HF ViT, unprefixed) names, so every layout holds the same numbers.
function canonicalWeights(p: Preset, seed: number, distilled: boolean): Map<string, Tensor> {
  const { dim, hidden, channels: c, patchSize: ps } = p;
  const patches = (p.imageSize / ps) ** 2;
  const tokens = patches + (distilled ? 2 : 1);
  const w = new Map<string, Tensor>();
  const put = (name: string, t: { weight: Tensor; bias: Tensor }) => {
    w.set(`${name}.weight`, t.weight);
    w.set(`${name}.bias`, t.bias);
  };
  w.set("embeddings.cls_token", {
    shape: [1, 1, dim],
    data: uniformTensor(seed, "embeddings.cls_token", dim, 0, 0.02),
  });
  if (distilled) {
    const name = "embeddings.distillation_token";
    w.set(name, { shape: [1, 1, dim], data: uniformTensor(seed, name, dim, 0, 0.02) });
  }
  const pos = "embeddings.position_embeddings";
  w.set(pos, { shape: [1, tokens, dim], data: uniformTensor(seed, pos, tokens * dim, 0, 0.02) });
  const proj = linear(seed, "embeddings.patch_embeddings.projection", dim, c * ps * ps);
  proj.weight.shape = [dim, c, ps, ps];
  put("embeddings.patch_embeddings.projection", proj);
  for (let l = 0; l < p.layers; l++) {
    const pre = `encoder.layer.${l}.`;
    put(`${pre}layernorm_before`, layerNorm(seed, `${pre}layernorm_before`, dim));
    for (const q of ["query", "key", "value"]) {
      put(`${pre}attention.attention.${q}`, linear(seed, `${pre}attention.attention.${q}`, dim, dim));
    }
    put(`${pre}attention.output.dense`, linear(seed, `${pre}attention.output.dense`, dim, dim));
    put(`${pre}layernorm_after`, layerNorm(seed, `${pre}layernorm_after`, dim));
    put(`${pre}intermediate.dense`, linear(seed, `${pre}intermediate.dense`, hidden, dim));
    put(`${pre}output.dense`, linear(seed, `${pre}output.dense`, dim, hidden));
  }
  put("layernorm", layerNorm(seed, "layernorm", dim));
  const headStd = 4 / Math.sqrt(dim); // logits with std ~4
  put("classifier", linear(seed, "classifier", p.classes, dim, headStd));
  if (distilled) put("distillation_classifier", linear(seed, "distillation_classifier", p.classes, dim, headStd));
  return w;
}

function concat(parts: Tensor[]): Tensor {
  const total = parts.reduce((n, t) => n + t.data.length, 0);
  const data = new Float32Array(total);
  let at = 0;
  for (const t of parts) {
    data.set(t.data, at);
    at += t.data.length;
  }
  return { shape: [parts.reduce((n, t) => n + t.shape[0], 0), ...parts[0].shape.slice(1)], data };
}

// Renames (and for timm fuses q, k, v) the canonical tensors into the checkpoint's layout.
function layoutWeights(p: Preset, seed: number, layout: Layout): Map<string, Tensor> {
  const distilled = layout === "hf-deit-distilled" || layout === "timm-distilled";
  const w = canonicalWeights(p, seed, distilled);
  const get = (name: string) => w.get(name)!;
  const out = new Map<string, Tensor>();
  if (layout === "hf-vit" || layout === "hf-deit-distilled") {
    const prefix = layout === "hf-vit" ? "vit." : "deit.";
    for (const [name, t] of w) {
      if (name.startsWith("classifier.")) out.set((distilled ? "cls_" : "") + name, t);
      else if (name.startsWith("distillation_classifier.")) out.set(name, t);
      else out.set(prefix + name, t);
    }
    return out;
  }
  const both = (from: string, to: string) => {
    out.set(`${to}.weight`, get(`${from}.weight`));
    out.set(`${to}.bias`, get(`${from}.bias`));
  };
  out.set("cls_token", get("embeddings.cls_token"));
  if (distilled) out.set("dist_token", get("embeddings.distillation_token"));
  out.set("pos_embed", get("embeddings.position_embeddings"));
  both("embeddings.patch_embeddings.projection", "patch_embed.proj");
  for (let l = 0; l < p.layers; l++) {
    const hf = `encoder.layer.${l}.`;
    const tm = `blocks.${l}.`;
    both(`${hf}layernorm_before`, `${tm}norm1`);
    for (const part of ["weight", "bias"]) {
      const qkv = ["query", "key", "value"].map((q) => get(`${hf}attention.attention.${q}.${part}`));
      out.set(`${tm}attn.qkv.${part}`, concat(qkv)); // rows: query, then key, then value
    }
    both(`${hf}attention.output.dense`, `${tm}attn.proj`);
    both(`${hf}layernorm_after`, `${tm}norm2`);
    both(`${hf}intermediate.dense`, `${tm}mlp.fc1`);
    both(`${hf}output.dense`, `${tm}mlp.fc2`);
  }
  both("layernorm", "norm");
  both("classifier", "head");
  if (distilled) both("distillation_classifier", "head_dist");
  return out;
}

// ---- files -------------------------------------------------------------------------------

// f32 -> f16 bits, round to nearest even (subnormals included).
function f16Bits(x: number): number {
  const f = new Float32Array([x]);
  const b = new Uint32Array(f.buffer)[0];
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  let mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    let m = mant >>> shift;
    const rest = mant & ((1 << shift) - 1);
    if (rest > half || (rest === half && m & 1)) m++;
    return sign | m;
  }
  let h = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && h & 1)) h++; // a carry into the exponent is still correct
  return sign | h;
}

// f32 -> bf16 bits, round to nearest even.
function bf16Bits(x: number): number {
  const b = new Uint32Array(new Float32Array([x]).buffer)[0];
  if ((b & 0x7fffffff) > 0x7f800000) return (b >>> 16) | 0x40;
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}

// Little-endian bytes of the tensor in `dtype` (F32: a view, encodeSafetensors copies it).
export function encode(data: Float32Array, dtype: Dtype): Uint8Array {
  if (dtype === "F32") return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const out = new Uint16Array(data.length);
  const convert = dtype === "F16" ? f16Bits : bf16Bits;
  for (let i = 0; i < data.length; i++) out[i] = convert(data[i]);
  return new Uint8Array(out.buffer);
}

function configJson(p: Preset, layout: Layout, dtype: Dtype) {
  const deit = layout === "hf-deit-distilled";
  const timm = layout.startsWith("timm");
  const labels: Record<string, string> = {};
  for (let i = 0; i < p.classes; i++) labels[String(i)] = `class_${i}`;
  return {
    architectures: [deit ? "DeiTForImageClassificationWithTeacher" : "ViTForImageClassification"],
    model_type: deit ? "deit" : "vit",
    image_size: p.imageSize,
    patch_size: p.patchSize,
    num_channels: p.channels,
    hidden_size: p.dim,
    num_attention_heads: p.heads,
    intermediate_size: p.hidden,
    num_hidden_layers: p.layers,
    hidden_act: "gelu",
    layer_norm_eps: timm ? 1e-6 : 1e-12,
    qkv_bias: true,
    hidden_dropout_prob: 0.0,
    attention_probs_dropout_prob: 0.0,
    initializer_range: 0.02,
    id2label: labels,
    label2id: Object.fromEntries(Object.entries(labels).map(([i, name]) => [name, Number(i)])),
    torch_dtype: { F32: "float32", F16: "float16", BF16: "bfloat16" }[dtype],
  };
}

function preprocessorJson(p: Preset) {
  return {
    image_processor_type: "ViTImageProcessor",
    do_resize: true,
    size: { height: p.imageSize, width: p.imageSize },
    resample: 2,
    do_rescale: true,
    rescale_factor: 1 / 255,
    do_normalize: true,
    image_mean: [0.5, 0.5, 0.5],
    image_std: [0.5, 0.5, 0.5],
  };
}

// `count` images of pixel_values [channels][size][size], as the processor above makes them
// from uint8 pictures: a background gradient, a few soft blobs and pixel noise, rounded to
// whole levels, then (q / 255 - 0.5) / 0.5. Arithmetic only (no Math.sin), so exact everywhere.
function makeInputs(p: Preset, seed: number, count: number): Float32Array {
  const { channels: c, imageSize: s } = p;
  const out = new Float32Array(count * c * s * s);
  for (let n = 0; n < count; n++) {
    const key = streamKey(seed, `inputs.${n}`);
    let r = 0;
    const next = () => uniform(key, r++);
    const blobs = Array.from({ length: 3 }, () => ({
      x: next() * s,
      y: next() * s,
      radius: (0.15 + 0.35 * next()) * s,
      level: Array.from({ length: c }, () => 255 * (next() - 0.5)),
    }));
    for (let ch = 0; ch < c; ch++) {
      const base = 255 * next();
      const gx = (next() - 0.5) * 4;
      const gy = (next() - 0.5) * 4;
      for (let y = 0; y < s; y++) {
        for (let x = 0; x < s; x++) {
          let v = base + gx * (x - s / 2) + gy * (y - s / 2);
          for (const b of blobs) {
            const d2 = ((x - b.x) ** 2 + (y - b.y) ** 2) / b.radius ** 2;
            if (d2 < 1) v += b.level[ch] * (1 - d2);
          }
          v += 24 * (uniform(key, 1000 + ((ch * s + y) * s + x)) - 0.5);
          const q = Math.min(255, Math.max(0, Math.round(v)));
          out[((n * c + ch) * s + y) * s + x] = (q / 255 - 0.5) / 0.5;
        }
      }
    }
  }
  return out;
}

export interface Options {
  preset: string;
  layout: string;
  dtype: string;
  seed: number;
  inputs: number;
}

// The checkpoint directory's files, by name.
export function makeCheckpoint(o: Options): Record<string, Uint8Array> {
  const preset = PRESETS[o.preset];
  if (!preset) throw new Error(`unknown preset ${o.preset}; known: ${Object.keys(PRESETS).join(", ")}`);
  const layouts: Layout[] = ["hf-vit", "hf-deit-distilled", "timm", "timm-distilled"];
  const layout = o.layout as Layout;
  if (!layouts.includes(layout)) throw new Error(`unknown layout ${layout}; known: ${layouts.join(", ")}`);
  const dtype = o.dtype as Dtype;
  if (!["F32", "F16", "BF16"].includes(dtype)) throw new Error(`unknown dtype ${dtype}; known: F32, F16, BF16`);
  const text = (obj: unknown) => new TextEncoder().encode(`${JSON.stringify(obj, null, 2)}\n`);
  const inputs = makeInputs(preset, o.seed, o.inputs);
  const shape = [preset.channels, preset.imageSize, preset.imageSize];
  const tensors: Record<string, WriteTensor> = {};
  for (const [name, t] of layoutWeights(preset, o.seed, layout))
    tensors[name] = { dtype, shape: t.shape, data: encode(t.data, dtype) };
  return {
    "model.safetensors": encodeSafetensors(tensors, { format: "pt" }),
    "config.json": text(configJson(preset, layout, dtype)),
    "preprocessor_config.json": text(preprocessorJson(preset)),
    "inputs.f32": new Uint8Array(inputs.buffer),
    "inputs.json": text({
      count: o.inputs,
      shape,
      dtype: "f32",
      layout: "[count][channels][size][size] little-endian",
      seed: o.seed,
    }),
  };
}

const CLI_OPTIONS = {
  preset: { type: "string", default: "tiny" },
  layout: { type: "string", default: "hf-vit" },
  seed: { type: "string", default: "1" },
  dtype: { type: "string", default: "F32" },
  inputs: { type: "string", default: "4" },
  out: { type: "string" },
} as const;

export function parseOptions(args: string[]): Options & { out?: string } {
  const { values } = parseArgs({ args, options: CLI_OPTIONS });
  return { ...values, seed: Number(values.seed), inputs: Number(values.inputs) };
}

function main(): void {
  const options = parseOptions(process.argv.slice(2));
  if (!options.out) throw new Error("--out <dir> is required");
  const files = makeCheckpoint(options);
  mkdirSync(options.out, { recursive: true });
  for (const [name, bytes] of Object.entries(files)) writeFileSync(join(options.out, name), bytes);
  const mb = (files["model.safetensors"].length / 1e6).toFixed(1);
  console.log(
    `${options.out}: ${options.preset} ${options.layout} ${options.dtype} seed ${options.seed}, ` +
      `model.safetensors ${mb} MB, ${options.inputs} inputs`,
  );
}

if (import.meta.main) main();
