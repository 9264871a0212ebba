// The payload layout (FORMAT.md, "Payload") and the engines' weight slots (docs/ARCHITECTURE.md, "Weight
// table"), both from core/bundle/layout.ts: the image model's and the text model's, each held to the
// constants assembly/ binds them by.
import { readFileSync } from "node:fs";
import { describe, expect, test } from "vitest";
import type { ModelConfig } from "../../../core/bundle/format.ts";
import {
  GLOBAL_SLOTS,
  LAYER_SLOT,
  LAYER_SLOTS,
  layout,
  SLOT,
  TEXT_GLOBAL_SLOTS,
  TEXT_SLOT,
  tensorCount,
  weightSlots,
} from "../../../core/bundle/layout.ts";
import { TINY_CONFIG } from "./tiny.ts";

const config: ModelConfig = TINY_CONFIG;

describe("layout", () => {
  test("follows FORMAT.md order with 64-byte aligned offsets and packed sizes", () => {
    const { tensors, length } = layout(config);
    const names = tensors.map((t) => t.name);
    expect(names.slice(0, 6)).toEqual([
      "embeddings.patch_embeddings.projection.weight",
      "embeddings.patch_embeddings.projection.scale",
      "embeddings.patch_embeddings.projection.wsum",
      "embeddings.patch_embeddings.projection.bias",
      "embeddings.cls_token",
      "embeddings.position_embeddings",
    ]);
    expect(names.slice(6, 8)).toEqual([
      "encoder.layer.0.layernorm_before.weight",
      "encoder.layer.0.layernorm_before.bias",
    ]);
    expect(names.at(-1)).toBe("classifier.bias");
    // patch projection: K = 3*4*4 = 48 (K16 48), N = 8 (N4 8) -> 384 weight bytes, 32 per vector
    expect(tensors.slice(0, 4).map((t) => t.bytes)).toEqual([384, 32, 32, 32]);
    // position embeddings: tokens (2*2 + 1) x dim 8 x 4 bytes
    expect(tensors[5].bytes).toBe(5 * 8 * 4);
    // qkv: N = 24, K = 8 -> K16 = 16: 24*16 bytes
    expect(tensors.find((t) => t.name === "encoder.layer.0.attention.qkv.weight")!.bytes).toBe(384);
    // classifier N = 3 -> N4 = 4
    expect(tensors.find((t) => t.name === "classifier.scale")!.bytes).toBe(16);
    for (const t of tensors) expect(t.offset % 64).toBe(0);
    for (let i = 1; i < tensors.length; i++) {
      expect(tensors[i].offset).toBe(Math.ceil((tensors[i - 1].offset + tensors[i - 1].bytes) / 64) * 64);
    }
    expect(length).toBe(tensors.at(-1)!.offset + tensors.at(-1)!.bytes);
  });

  test("distilled adds the distillation token, two position rows more and a second head", () => {
    const d = layout({ ...config, distilled: true }).tensors;
    const names = d.map((t) => t.name);
    expect(names.indexOf("embeddings.distillation_token")).toBe(names.indexOf("embeddings.cls_token") + 1);
    expect(d.find((t) => t.name === "embeddings.position_embeddings")!.bytes).toBe(6 * 8 * 4);
    expect(names.slice(-4)).toEqual([
      "distillation_classifier.weight",
      "distillation_classifier.scale",
      "distillation_classifier.wsum",
      "distillation_classifier.bias",
    ]);
  });
});

describe("weight slots", () => {
  const linear = (name: string) => ["weight", "scale", "wsum", "bias"].map((part) => `${name}.${part}`);
  const layerSlots = (l: number) => [
    `encoder.layer.${l}.layernorm_before.weight`,
    `encoder.layer.${l}.layernorm_before.bias`,
    ...linear(`encoder.layer.${l}.attention.qkv`),
    ...linear(`encoder.layer.${l}.attention.output.dense`),
    `encoder.layer.${l}.layernorm_after.weight`,
    `encoder.layer.${l}.layernorm_after.bias`,
    ...linear(`encoder.layer.${l}.intermediate.dense`),
    ...linear(`encoder.layer.${l}.output.dense`),
    null, // layer_scale1.lambda1
    null, // layer_scale2.lambda1
  ];
  const none = (n: number) => new Array(n).fill(null);

  test("the ABI's order: model-wide tensors in 0-58, then 22 per layer; no distillation or tower, empty slots", () => {
    expect(weightSlots(config)).toEqual([
      ...linear("embeddings.patch_embeddings.projection"),
      "embeddings.cls_token",
      null,
      "embeddings.position_embeddings",
      "layernorm.weight",
      "layernorm.bias",
      ...linear("classifier"),
      ...none(4),
      ...none(30), // pre_layrnorm, registers, the pooling head, the projection
      ...none(12), // the connectors: Idefics3's projection, LLaVA's two Linears
      ...layerSlots(0),
      ...layerSlots(1),
    ]);
  });

  test("distilled fills slot 5 and 13-16; every payload tensor has exactly one slot", () => {
    const distilled = { ...config, distilled: true };
    const slots = weightSlots(distilled);
    expect(slots[5]).toBe("embeddings.distillation_token");
    expect(slots.slice(13, 17)).toEqual(linear("distillation_classifier"));
    expect(slots.length).toBe(59 + 22 * distilled.layers);
    expect(slots.filter((s) => s !== null).sort()).toEqual(
      layout(distilled)
        .tensors.map((t) => t.name)
        .sort(),
    );
  });

  test("the towers' tensors: CLIP, SigLIP and DINOv2 with registers each fill their slots, one tensor each", () => {
    const towers: ModelConfig[] = [
      {
        ...config,
        classes: 0,
        family: "clip",
        hiddenAct: "quick_gelu",
        preLayernorm: true,
        finalNorm: "pooled",
        projection: 6,
      },
      { ...config, classes: 0, family: "siglip", hiddenAct: "gelu_pytorch_tanh", classToken: false, pooling: "map" },
      { ...config, classes: 0, family: "dinov2", registerTokens: 4, layerScale: true },
    ];
    for (const c of towers) {
      const slots = weightSlots(c);
      const names = layout(c).tensors.map((t) => t.name);
      expect(slots.filter((s) => s !== null).sort()).toEqual([...names].sort());
      expect(names.length).toBe(tensorCount(c));
    }
    const [clip, siglip, dino] = towers.map(weightSlots);
    expect(clip.slice(SLOT.preLayrnorm, SLOT.preLayrnorm + 2)).toEqual(["pre_layrnorm.weight", "pre_layrnorm.bias"]);
    expect(clip.slice(SLOT.visualProjection, SLOT.visualProjection + 4)).toEqual(linear("visual_projection"));
    expect(clip[SLOT.classifier]).toBeNull();
    expect(siglip[SLOT.clsToken]).toBeNull();
    expect(siglip[SLOT.headProbe]).toBe("head.probe");
    expect(siglip.slice(SLOT.headInProjKeyValue, SLOT.headInProjKeyValue + 4)).toEqual(
      linear("head.attention.in_proj.key_value"),
    );
    expect(dino[SLOT.registerTokens]).toBe("embeddings.register_tokens");
    expect(dino[GLOBAL_SLOTS + LAYER_SLOTS + LAYER_SLOT.layerScale2]).toBe("encoder.layer.1.layer_scale2.lambda1");
  });

  // The engines mirror the slots as @lazy constants (an ABI): each constant a file declares must be the
  // number declared here under its name.
  const engineSlots = (file: string) => {
    const source = readFileSync(new URL(`../../../assembly/${file}`, import.meta.url), "utf8");
    return new Map(
      [...source.matchAll(/@lazy const (SLOT_\w+|LAYER_SLOT_\w+|GLOBAL_SLOTS|LAYER_SLOTS): i32 = (\d+);/g)].map((m) => [
        m[1],
        Number(m[2]),
      ]),
    );
  };
  const snake = (name: string) => name.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toUpperCase();
  const named = (prefix: string, slots: Record<string, number>) =>
    Object.entries(slots).map(([k, v]): [string, number] => [`${prefix}${snake(k)}`, v]);

  test("assembly/model.ts binds each tensor from the slot numbers declared here", () => {
    const host = new Map<string, number>([
      ...named("SLOT_", SLOT),
      ...named("LAYER_SLOT_", LAYER_SLOT),
      ["GLOBAL_SLOTS", GLOBAL_SLOTS],
      ["LAYER_SLOTS", LAYER_SLOTS],
    ]);
    expect(engineSlots("model.ts")).toEqual(host);
  });

  // Its layers are bound by model.ts's bindLayers, from the LAYER_SLOT numbers the test above holds.
  test("assembly/text.ts binds the text section's tensors from TEXT_SLOT, its layers' through model.ts", () => {
    const host = new Map<string, number>([
      ...named("SLOT_", TEXT_SLOT),
      ["GLOBAL_SLOTS", TEXT_GLOBAL_SLOTS],
      ["LAYER_SLOTS", LAYER_SLOTS],
    ]);
    expect(engineSlots("text.ts")).toEqual(host);
  });
});
