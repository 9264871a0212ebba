// The payload layout (FORMAT.md, "Payload") and the engine's weight slots (docs/ARCHITECTURE.md, "Weight
// table"), both from core/bundle/layout.ts.
import { describe, expect, test } from "vitest";
import type { ModelConfig } from "../../../core/bundle/format.ts";
import { layout, weightSlots } from "../../../core/bundle/layout.ts";

const config: ModelConfig = {
  imageSize: 8,
  patchSize: 4,
  channels: 3,
  dim: 8,
  heads: 2,
  hidden: 20,
  layers: 2,
  classes: 3,
  eps: 1e-6,
  distilled: false,
};

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
  ];

  test("the ABI's order: model-wide tensors in 0-16, then 20 per layer; no distillation, empty slots", () => {
    expect(weightSlots(config)).toEqual([
      ...linear("embeddings.patch_embeddings.projection"),
      "embeddings.cls_token",
      null,
      "embeddings.position_embeddings",
      "layernorm.weight",
      "layernorm.bias",
      ...linear("classifier"),
      null,
      null,
      null,
      null,
      ...layerSlots(0),
      ...layerSlots(1),
    ]);
  });

  test("distilled fills slot 5 and 13-16; every payload tensor has exactly one slot", () => {
    const distilled = { ...config, distilled: true };
    const slots = weightSlots(distilled);
    expect(slots[5]).toBe("embeddings.distillation_token");
    expect(slots.slice(13, 17)).toEqual(linear("distillation_classifier"));
    expect(slots.length).toBe(17 + 20 * distilled.layers);
    expect([...slots].sort()).toEqual(
      layout(distilled)
        .tensors.map((t) => t.name)
        .sort(),
    );
  });
});
