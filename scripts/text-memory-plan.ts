// The engine's memory plans of a two-tower model's towers at full size, from their configs alone: what each
// isolate holds with its image tower or its text tower loaded (payload and activations, core/engine's
// memoryPlan and textMemoryPlan, in whole wasm pages, on top of a fresh instance's heap), and whether the
// two together fit one isolate. README's deploy notes ("Zero-shot and text search") quote its output.
//
//   node scripts/text-memory-plan.ts

import { readFileSync } from "node:fs";
import type { ModelConfig } from "../core/bundle/format.ts";
import { layout } from "../core/bundle/layout.ts";
import { type TextConfig, textLayout } from "../core/bundle/text.ts";
import { engineExports } from "../core/engine/abi.ts";
import { memoryPlan } from "../core/engine/memory.ts";
import { textMemoryPlan, tokenizerHeapBytes } from "../core/engine/text.ts";
import { MiB } from "../core/sizes.ts";

const root = new URL("..", import.meta.url).pathname;
const e = engineExports(
  await WebAssembly.instantiate(new WebAssembly.Module(readFileSync(`${root}build/engine.wasm`))),
);
const heapTop = e.alloc(0);
const rowTile = e.gemmRowTile();

const vision = (patchSize: number, extra: Partial<ModelConfig>): ModelConfig => ({
  imageSize: 224,
  patchSize,
  channels: 3,
  dim: 768,
  heads: 12,
  hidden: 3072,
  layers: 12,
  classes: 0,
  eps: 1e-5,
  distilled: false,
  ...extra,
});

// Tokenizer bytes: CLIP's serialised BPE (measured on OpenAI's merges: 295,716); SigLIP's spiece.model of
// 32,000 pieces serialised (pieces, scores, types, the nmt_nfkc charsmap): about 0.7 MB.
const models: { name: string; kind: "clip-text" | "siglip-text"; image: ModelConfig; text: TextConfig }[] = [
  {
    name: "openai/clip-vit-base-patch32",
    kind: "clip-text",
    image: vision(32, {
      family: "clip",
      hiddenAct: "quick_gelu",
      preLayernorm: true,
      finalNorm: "pooled",
      projection: 512,
    }),
    text: {
      vocab: 49408,
      positions: 77,
      dim: 512,
      heads: 8,
      hidden: 2048,
      layers: 12,
      eps: 1e-5,
      hiddenAct: "quick_gelu",
      causal: true,
      pooling: "argmax",
      eosTokenId: 2,
      projection: 512,
      logitScale: 4.6052,
      logitBias: 0,
      tokenizerBytes: 295716,
    },
  },
  {
    name: "google/siglip-base-patch16-224",
    kind: "siglip-text",
    image: vision(16, {
      family: "siglip",
      hiddenAct: "gelu_pytorch_tanh",
      classToken: false,
      pooling: "map",
      eps: 1e-6,
    }),
    text: {
      vocab: 32000,
      positions: 64,
      dim: 768,
      heads: 12,
      hidden: 3072,
      layers: 12,
      eps: 1e-6,
      hiddenAct: "gelu_pytorch_tanh",
      causal: false,
      pooling: "last",
      eosTokenId: 1,
      projection: 768,
      logitScale: 4.7,
      logitBias: -12.9,
      tokenizerBytes: 700000,
    },
  },
];

const mib = (bytes: number) => `${(bytes / MiB).toFixed(1)} MiB`;
console.log("| model | tower | weights | activations | wasm memory | tokenizer (JS heap) | model total |");
console.log("| --- | --- | --- | --- | --- | --- | --- |");
for (const m of models) {
  const image = memoryPlan(m.image, layout(m.image).length, heapTop, rowTile);
  const text = textMemoryPlan(m.text, textLayout(m.text).length, heapTop, rowTile);
  const tokenizer = tokenizerHeapBytes({ kind: m.kind, config: m.text });
  const row = (tower: string, p: typeof image, extra: number) =>
    console.log(
      `| ${m.name} | ${tower} | ${mib(p.payloadBytes)} | ${mib(p.activationBytes)} | ${mib(p.totalBytes)} | ` +
        `${extra ? mib(extra) : ""} | ${mib(p.totalBytes + extra)} |`,
    );
  row("image", image, 0);
  row("text", text, tokenizer);
  console.log(`| ${m.name} | both | | | | | ${mib(image.totalBytes + text.totalBytes + tokenizer)} |`);
}
