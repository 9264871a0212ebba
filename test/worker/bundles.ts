// Test bundles made by the real bundle writer from seeded random weights. Portable: workerd and Node.

import { encodeBundle, encodeHead } from "../../core/bundle/writer.ts";
import { layout } from "../../core/bundle/layout.ts";
import { parsePrefix } from "../../core/bundle/reader.ts";
import type { BundleHeader, BundleParts, ModelConfig, Preprocessing } from "../../core/bundle/format.ts";
import { type TextConfig, textLayout } from "../../core/bundle/text.ts";
import { byteSymbols } from "../../core/text/clip.ts";
import { clipOptions, clipTables, ClipTokenizer, tokenizerToBytes } from "../../core/text/index.ts";
import { packLinear } from "../../core/bundle/pack.ts";
// The bundle writer takes the CRC as a function: the PNG encoder's IEEE CRC-32 (zlib's).
import { crc32 } from "../../core/crc32.ts";
import { TINY_PREPROCESSING } from "../core/bundle/tiny.ts";
import { prng } from "../prng.ts";

// uniform in [-1, 1)
function uniform(seed: number): () => number {
  const r = prng(seed);
  return () => r() * 2 - 1;
}

export const SMALL_CONFIG: ModelConfig = {
  imageSize: 32,
  patchSize: 8,
  channels: 3,
  dim: 32,
  heads: 2,
  hidden: 64,
  layers: 2,
  classes: 5,
  eps: 1e-12,
  distilled: false,
};

// SMALL_CONFIG as a CLIP image tower (pre-LayerNorm, pooled class token, a 12-wide projection): the image
// side of the two-tower bundles the text and search tests load.
export const SMALL_CLIP_CONFIG: ModelConfig = {
  ...SMALL_CONFIG,
  classes: 0,
  eps: 1e-6,
  family: "clip",
  hiddenAct: "quick_gelu",
  preLayernorm: true,
  finalNorm: "pooled",
  projection: 12,
};

// A ViT bundle with random weights: LayerNorm scales near 1, Linear weights ~ U(-1, 1) / sqrt(K).
// `edit` may change the tensors (by bundle name) before they are written: the bundle stays
// self-consistent (its CRC covers the edit). `preprocessing` replaces fields of the default (a resize to the
// input, mean and std 0.5).
export function randomBundle(
  name: string,
  seed: number,
  config: ModelConfig = SMALL_CONFIG,
  edit?: (tensors: Map<string, ArrayBufferView>) => void,
  preprocessing: Partial<Preprocessing> = {},
): Uint8Array {
  const next = uniform(seed);
  const random = (n: number, scale: number, offset = 0) =>
    Float32Array.from({ length: n }, () => offset + scale * next());
  const tensors = new Map<string, ArrayBufferView>();
  for (const entry of layout(config).tensors) {
    const { source } = entry;
    if (source.kind === "f32") {
      const n = source.shape.reduce((a, b) => a * b, 1);
      tensors.set(
        entry.name,
        entry.name.endsWith("norm_before.weight") ||
          entry.name.endsWith("norm_after.weight") ||
          entry.name === "layernorm.weight"
          ? random(n, 0.1, 1)
          : random(n, 0.5),
      );
    } else if (source.part === "weight") setRandomLinear(tensors, entry.name, source, random);
  }
  edit?.(tensors);
  const parts = bundleParts(name, seed, config, preprocessing);
  return encodeBundle(parts, tensors, crc32);
}

// A Linear of random weights (scaled by 1/sqrt(k)) and biases, packed, under `name` less ".weight".
function setRandomLinear(
  tensors: Map<string, ArrayBufferView>,
  name: string,
  { n, k }: { n: number; k: number },
  random: (n: number, scale: number) => Float32Array,
): void {
  const base = name.slice(0, -".weight".length);
  const packed = packLinear(random(n * k, 1 / Math.sqrt(k)), random(n, 0.1), n, k);
  for (const part of ["weight", "scale", "wsum", "bias"] as const) tensors.set(`${base}.${part}`, packed[part]);
}

function bundleParts(
  name: string,
  seed: number,
  config: ModelConfig,
  preprocessing: Partial<Preprocessing> = {},
): BundleParts {
  return {
    name,
    config,
    preprocessing: {
      ...TINY_PREPROCESSING,
      size: { height: config.imageSize, width: config.imageSize },
      ...preprocessing,
    },
    labels: Array.from({ length: config.classes }, (_, i) => `class-${i}`),
    source: {
      layout: "hf-vit",
      checkpoint: `random seed ${seed}`,
      files: {},
      dtype: "F32",
      converter: "test",
      convertedAt: "2026-11-27T00:00:00Z",
    },
  };
}

// A small CLIP tokenizer: every byte's symbol, with and without "</w>", the merges that make "cat</w>",
// "dog</w>" and "photo</w>", then the start and end tokens (core/text's BPE with a vocabulary of 533).
export function smallClipTokenizer(): ClipTokenizer {
  const symbols = byteSymbols();
  const words = ["cat", "dog", "photo"];
  const merges: string[] = [];
  const tokens = [...symbols, ...symbols.map((s) => `${s}</w>`)];
  for (const word of words) {
    let left = word[0];
    for (let i = 1; i < word.length; i++) {
      const right = i === word.length - 1 ? `${word[i]}</w>` : word[i];
      merges.push(`${left} ${right}`);
      left += right;
      tokens.push(left);
    }
  }
  tokens.push("<|startoftext|>", "<|endoftext|>");
  const vocab = Object.fromEntries(tokens.map((t, i) => [t, i]));
  const options = clipOptions({ model_max_length: 16 });
  return new ClipTokenizer(clipTables(vocab, `#version: 0.2\n${merges.join("\n")}\n`, options), options);
}

// A CLIP-shaped two-tower bundle: `image` (a CLIP image tower config) and a text section with random
// weights, the small tokenizer and CLIP's pooling at the end-of-text token; `textSize` widens the text tower.
export function twoTowerBundle(
  name: string,
  seed: number,
  image: ModelConfig,
  projection: number,
  textSize: Partial<Pick<TextConfig, "dim" | "heads" | "hidden" | "layers">> = {},
): Uint8Array {
  const tokenizer = tokenizerToBytes(smallClipTokenizer());
  const text: TextConfig = {
    vocab: smallClipTokenizer().vocabSize,
    positions: 16,
    dim: 32,
    heads: 2,
    hidden: 64,
    layers: 2,
    ...textSize,
    eps: 1e-5,
    hiddenAct: "quick_gelu",
    causal: true,
    pooling: "eos",
    eosTokenId: smallClipTokenizer().eosId,
    projection,
    logitScale: Math.log(20),
    logitBias: 0,
    tokenizerBytes: tokenizer.length,
  };
  const next = uniform(seed + 1);
  const random = (n: number, scale: number, offset = 0) =>
    Float32Array.from({ length: n }, () => offset + scale * next());
  const section = new Map<string, ArrayBufferView>();
  for (const entry of textLayout(text).tensors) {
    const { source } = entry;
    if (source.kind === "i8")
      section.set(
        entry.name,
        Int8Array.from({ length: entry.bytes }, () => Math.round(127 * next())),
      );
    else if (source.kind === "u8") section.set(entry.name, tokenizer);
    else if (source.kind === "f32") {
      const n = source.shape.reduce((a, b) => a * b, 1);
      const norm = entry.name.endsWith(".weight");
      section.set(
        entry.name,
        entry.name.endsWith("token_embedding.scale")
          ? random(n, 0.002, 0.01)
          : random(n, norm ? 0.1 : 0.5, norm ? 1 : 0),
      );
    } else if (source.part === "weight") setRandomLinear(section, entry.name, source, random);
  }
  const imageBundle = split(randomBundle(name, seed, image));
  const tensors = new Map<string, ArrayBufferView>(
    imageBundle.header.tensors.map((t) => [t.name, imageBundle.payload.subarray(t.offset, t.offset + t.bytes)]),
  );
  const parts = {
    ...bundleParts(name, seed, image),
    sections: [{ name: "text", kind: "clip-text" as const, config: text }],
  };
  return encodeBundle(parts, tensors, crc32, [section]);
}

// ---- corrupt and hostile bundles, made from a good one ----

// The bundle's header and payload.
export function split(bundle: Uint8Array): { header: BundleHeader; payload: Uint8Array } {
  const result = parsePrefix(bundle);
  if ("need" in result) throw new Error("not a whole header");
  return { header: result.header, payload: bundle.subarray(result.payloadOffset) };
}

// `bundle` with its header JSON changed by `edit` (anything goes: no check is made) and re-encoded with a
// correct prefix, followed by `payload` (default: the original payload).
export function withHeader(bundle: Uint8Array, edit: (header: any) => void, payload?: Uint8Array): Uint8Array {
  const parts = split(bundle);
  const header = structuredClone(parts.header);
  edit(header);
  const head = encodeHead(header);
  const body = payload ?? parts.payload;
  const out = new Uint8Array(head.length + body.length);
  out.set(head);
  out.set(body, head.length);
  return out;
}

// A header that agrees with itself for `config` (labels, tensor table and payload length as the config
// implies) with none of the payload it declares after it: a huge model in a small object.
export function selfConsistentHead(config: ModelConfig): Uint8Array {
  const plan = layout(config);
  return withHeader(
    randomBundle("huge", 1),
    (h) => {
      h.config = config;
      h.labels = Array.from({ length: config.classes }, (_, i) => `class-${i}`);
      h.payload.length = plan.length;
      h.tensors = plan.tensors.map(({ name, offset, bytes }) => ({ name, offset, bytes }));
    },
    new Uint8Array(0),
  );
}

// `n` bytes of seeded noise: what a failed upload or a wrong file might leave.
export function garbage(n: number, seed: number): Uint8Array {
  const next = uniform(seed);
  return Uint8Array.from({ length: n }, () => Math.floor((next() + 1) * 128));
}
