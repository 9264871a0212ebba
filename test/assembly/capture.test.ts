// What capture costs in wasm memory, from the memory plan (core/engine/memory.ts) and as engines really
// grow: a ViT-B/16's capture for /v1/see is well under 1 MiB, and every supported model at its real size
// fits MODEL_MEMORY_BUDGET_MB's default with it; captureGrowth is what run() grows memory by, within a page.
// The numbers the capture holds are checked against references in attention.test.ts (class rows, head
// means, rollout), test/worker/see.test.ts and towers.test.ts (the PCA pictures, SigLIP's pooling head).
import { describe, expect, test } from "vitest";
import { type ModelConfig, TOWER_DEFAULTS } from "../../core/bundle/format.ts";
import { layout } from "../../core/bundle/layout.ts";
import { CAPTURE_ATTENTION, CAPTURE_LAYER } from "../../core/engine/abi.ts";
import { captureBufferBytes, memoryPlan, wholePages } from "../../core/engine/memory.ts";
import { nodeEngine } from "../../cli/node-engine.ts";
import { readWranglerConfig } from "../../cli/wrangler-config.ts";
import { MiB } from "../../core/sizes.ts";
import { randomBundle, SMALL_CONFIG } from "../worker/bundles.ts";

const BASE = { ...SMALL_CONFIG, dim: 768, heads: 12, hidden: 3072, layers: 12, eps: 1e-6 };
const VIT_B16: ModelConfig = { ...BASE, imageSize: 224, patchSize: 16, classes: 1000, eps: 1e-12 };
// The towers edgevit converts, at their hub sizes (B/16 and B/14 at 224 px).
const TOWERS: Record<string, ModelConfig> = {
  "clip-vit-base-patch16": {
    ...BASE,
    ...TOWER_DEFAULTS,
    imageSize: 224,
    patchSize: 16,
    classes: 0,
    family: "clip",
    hiddenAct: "quick_gelu",
    preLayernorm: true,
    finalNorm: "pooled",
    projection: 512,
  },
  "siglip-base-patch16-224": {
    ...BASE,
    ...TOWER_DEFAULTS,
    imageSize: 224,
    patchSize: 16,
    classes: 0,
    family: "siglip",
    hiddenAct: "gelu_pytorch_tanh",
    classToken: false,
    pooling: "map",
  },
  "dinov2-with-registers-base": {
    ...BASE,
    ...TOWER_DEFAULTS,
    imageSize: 224,
    patchSize: 14,
    classes: 0,
    family: "dinov2",
    registerTokens: 4,
    layerScale: true,
  },
  // HuggingFaceTB/SmolVLM-256M-Instruct's vision tower and connector: SigLIP-B/16 at 512 px, 1,024 tokens
  "smolvlm-256m-instruct": {
    ...BASE,
    ...TOWER_DEFAULTS,
    imageSize: 512,
    patchSize: 16,
    classes: 0,
    family: "siglip",
    hiddenAct: "gelu_pytorch_tanh",
    classToken: false,
    pooling: "none",
    connector: "idefics3",
    scaleFactor: 4,
    lmDim: 576,
  },
};

// wrangler.toml's default
const DEFAULT_BUDGET_MB = Number(readWranglerConfig().vars.MODEL_MEMORY_BUDGET_MB);

const plan = (c: ModelConfig) => memoryPlan(c, layout(c).length, 65536, 2);

describe("capture in the memory plan", () => {
  test("a ViT-B/16's capture for /v1/see is under 1 MiB; one layer's full attention only when asked", () => {
    const see = captureBufferBytes(VIT_B16, CAPTURE_ATTENTION);
    // class rows [12][12][197], their head mean and rollout rows [12][197], head mean and product [197][197], a row
    const floats = 12 * 12 * 197 + 2 * 12 * 197 + 2 * 197 * 197 + 197;
    expect(see).toBe(4 * floats + 6 * 128);
    expect(see).toBeLessThan(0.5 * MiB);
    expect(captureBufferBytes(VIT_B16, CAPTURE_LAYER)).toBe(4 * 12 * 197 * 197 + 128);
    const total = plan(VIT_B16).totalBytes;
    expect(total + wholePages(see)).toBeLessThanOrEqual(DEFAULT_BUDGET_MB * MiB);
    expect(total + wholePages(captureBufferBytes(VIT_B16, CAPTURE_ATTENTION | CAPTURE_LAYER))).toBeLessThanOrEqual(
      DEFAULT_BUDGET_MB * MiB,
    );
  });

  test.each(["clip-vit-base-patch16", "dinov2-with-registers-base"])(
    "%s with its /v1/see capture fits the default model budget",
    (name) => {
      const c = TOWERS[name];
      const see = captureBufferBytes(c, CAPTURE_ATTENTION);
      expect(see).toBeLessThan(1 * MiB);
      expect(plan(c).totalBytes + wholePages(see)).toBeLessThanOrEqual(DEFAULT_BUDGET_MB * MiB);
    },
  );

  test("SigLIP-B/16 at 224 px, the largest tower (its pooling head's MLP), fits the default budget with its capture", () => {
    const c = TOWERS["siglip-base-patch16-224"];
    const see = captureBufferBytes(c, CAPTURE_ATTENTION);
    expect(see).toBeLessThan(0.5 * MiB);
    expect(plan(c).totalBytes).toBeGreaterThan(92 * MiB);
    expect(plan(c).totalBytes + wholePages(see)).toBeLessThanOrEqual(DEFAULT_BUDGET_MB * MiB);
  });

  test("SmolVLM-256M's tower at 512 px (1,024 tokens) fits the default budget: only x, keys and values span every token", () => {
    const c = TOWERS["smolvlm-256m-instruct"];
    const p = plan(c);
    // the residual stream [1024][768] f32 (3 MiB) and the arena, which the 512 px input (3 MiB) fills
    expect(p.activationBytes).toBeGreaterThan(6 * MiB);
    expect(p.activationBytes).toBeLessThan(7 * MiB);
    expect(p.totalBytes).toBeLessThanOrEqual(DEFAULT_BUDGET_MB * MiB);
  });

  test("captureGrowth is what a run really grows memory by, within a page", async () => {
    const engine = await nodeEngine();
    for (const config of [
      { ...SMALL_CONFIG, imageSize: 64, patchSize: 4 }, // 257 tokens: several pages of capture
      { ...TOWERS["siglip-base-patch16-224"], dim: 32, heads: 2, hidden: 64, layers: 2, imageSize: 64, patchSize: 4 },
    ]) {
      const model = await engine.load(randomBundle("capture", 5, config));
      for (const options of [{ attention: true }, { attentionLayer: 1 }, { capture: 1 }]) {
        const growth = model.captureGrowth(options);
        const before = model.memoryBytes;
        model.input().fill(0.5); // the pass overwrites its input
        model.run(options);
        expect(model.memoryBytes - before).toBeLessThanOrEqual(growth);
        expect(growth - (model.memoryBytes - before)).toBeLessThanOrEqual(65536);
        expect(model.captureGrowth(options)).toBe(0); // allocated once
      }
    }
  });
});
