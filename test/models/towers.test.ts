// make-random-tower.ts: every preset's tiny twin is deterministic and carries the hub's tensor names.
import { describe, expect, test } from "vitest";
import { makeTower, PRESET_NAMES } from "../../models/tools/make-random-tower.ts";

function header(bytes: Uint8Array): Record<string, { dtype: string; shape: number[] }> {
  const length = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  return JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + length)));
}

const options = { tiny: true, seed: 3, dtype: "F32", inputs: 2, textEmbeddings: false };

describe("make-random-tower", () => {
  test.each(PRESET_NAMES)("%s (tiny) is byte-identical run to run", (preset) => {
    const a = makeTower({ ...options, preset });
    const b = makeTower({ ...options, preset });
    expect(Object.keys(a).sort()).toEqual(Object.keys(b).sort());
    for (const name of Object.keys(a)) expect(Buffer.from(a[name]).equals(Buffer.from(b[name]))).toBe(true);
  });

  test("hub names: CLIP's legacy position_ids, SigLIP's head, DINOv2's registers, the connectors", () => {
    const clip = header(makeTower({ ...options, preset: "clip-vit-base-patch32" })["model.safetensors"]);
    expect(clip["text_model.embeddings.position_ids"]).toMatchObject({ dtype: "I64", shape: [1, 77] });
    expect(clip["vision_model.pre_layrnorm.weight"].shape).toEqual([64]);
    expect(clip.logit_scale.shape).toEqual([]);
    const siglip = header(makeTower({ ...options, preset: "siglip-base-patch16-224" })["model.safetensors"]);
    expect(siglip["vision_model.head.attention.in_proj_weight"].shape).toEqual([96, 32]);
    expect(siglip.logit_bias.shape).toEqual([1]);
    const dino = header(makeTower({ ...options, preset: "dinov2-with-registers-small" })["model.safetensors"]);
    expect(dino["embeddings.register_tokens"].shape).toEqual([1, 4, 64]);
    expect(dino["encoder.layer.1.layer_scale2.lambda1"].shape).toEqual([64]);
    const smol = makeTower({ ...options, preset: "smolvlm-256m-instruct", textEmbeddings: true });
    const names = header(smol["model.safetensors"]);
    expect(names["model.connector.modality_projection.proj.weight"].shape).toEqual([48, 128]);
    expect(names["model.text_model.embed_tokens.weight"].shape).toEqual([256, 48]);
    const llava = header(makeTower({ ...options, preset: "llava-1.5-projector" })["model.safetensors"]);
    expect(llava["multi_modal_projector.linear_1.weight"].shape).toEqual([48, 64]);
    expect(llava["vision_tower.vision_model.post_layernorm.bias"].shape).toEqual([64]);
  });
});
