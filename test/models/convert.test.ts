import { afterAll, describe, expect, test } from "vitest";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { crc32 } from "node:zlib";
import { readBundle } from "../../core/bundle/reader.ts";
import type { BundleHeader } from "../../core/bundle/format.ts";
import { ConvertError, convertDirectory, convertToFile } from "../../models/convert-folder.ts";
import { packedIndex } from "../../core/bundle/pack.ts";
import {
  LABELS,
  TINY,
  VIT_PREPROCESSOR,
  hfConfig,
  hfTensors,
  makeWeights,
  timmTensors,
  writeCheckpoint,
  type Tiny,
  type Weights,
} from "./checkpoints.ts";

const root = mkdtempSync(join(tmpdir(), "edgevit-convert-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const at = "2026-11-27T00:00:00Z";
let n = 0;
const fresh = () => join(root, `ckpt${n++}`);

function read(bytes: Uint8Array) {
  const { header, payload } = readBundle(bytes, crc32);
  const tensor = (name: string) => {
    const t = header.tensors.find((x) => x.name === name);
    if (!t) throw new Error(`no ${name}`);
    return payload.slice(t.offset, t.offset + t.bytes);
  };
  const f32 = (name: string) => new Float32Array(tensor(name).buffer);
  // Dequantized row n of a packed Linear: w[k] ≈ (byte - 64) * scale[n].
  const row = (name: string, n: number, K: number) => {
    const weight = tensor(`${name}.weight`);
    const s = f32(`${name}.scale`)[n];
    return Float32Array.from({ length: K }, (_, k) => (weight[packedIndex(n, k, K)] - 64) * s);
  };
  return { header, payload, tensor, f32, row };
}

// Every dequantized weight lies within half a quantization step of the checkpoint's value.
function expectRowsMatch(
  rowOf: (n: number) => Float32Array,
  source: Float32Array,
  N: number,
  K: number,
  scale: (n: number) => number,
) {
  let worst = 0;
  for (let n = 0; n < N; n++) {
    const got = rowOf(n);
    for (let k = 0; k < K; k++) worst = Math.max(worst, Math.abs(got[k] - source[n * K + k]) / scale(n));
  }
  expect(worst).toBeLessThanOrEqual(0.5 + 1e-4);
}

function checkAgainstWeights(bytes: Uint8Array, t: Tiny, w: Weights) {
  const b = read(bytes);
  const { dim, hidden } = t;
  // f32 tensors are copied exactly
  expect(b.f32("embeddings.cls_token")).toEqual(w.get("cls")!.data);
  expect(b.f32("embeddings.position_embeddings")).toEqual(w.get("pos")!.data);
  expect(b.f32("encoder.layer.1.layernorm_after.bias")).toEqual(w.get("1.ln2.bias")!.data);
  expect(b.f32("layernorm.weight")).toEqual(w.get("norm.weight")!.data);
  if (t.distilled) expect(b.f32("embeddings.distillation_token")).toEqual(w.get("dist")!.data);
  // patch projection: conv weight [dim][c][py][px] flattened in that order
  const K = t.channels * t.patchSize ** 2;
  const ps = b.f32("embeddings.patch_embeddings.projection.scale");
  expectRowsMatch(
    (r) => b.row("embeddings.patch_embeddings.projection", r, K),
    w.get("patch.weight")!.data,
    dim,
    K,
    (r) => ps[r],
  );
  // qkv: rows 0..dim-1 query, then key, then value; biases likewise
  for (let l = 0; l < t.layers; l++) {
    const name = `encoder.layer.${l}.attention.qkv`;
    const s = b.f32(`${name}.scale`);
    ["q", "k", "v"].forEach((p, i) => {
      expectRowsMatch(
        (r) => b.row(name, i * dim + r, dim),
        w.get(`${l}.${p}.weight`)!.data,
        dim,
        dim,
        (r) => s[i * dim + r],
      );
      expect(b.f32(`${name}.bias`).subarray(i * dim, (i + 1) * dim)).toEqual(w.get(`${l}.${p}.bias`)!.data);
    });
    const fc2 = `encoder.layer.${l}.output.dense`;
    const s2 = b.f32(`${fc2}.scale`);
    expectRowsMatch(
      (r) => b.row(fc2, r, hidden),
      w.get(`${l}.fc2.weight`)!.data,
      dim,
      hidden,
      (r) => s2[r],
    );
  }
  // classifier padded from 3 to 4 rows: padding has scale 0, bias 0
  expect(b.f32("classifier.scale")[3]).toBe(0);
  expect(Array.from(b.f32("classifier.bias").subarray(0, 3))).toEqual(Array.from(w.get("head.bias")!.data));
  if (t.distilled) {
    const s = b.f32("distillation_classifier.scale");
    expectRowsMatch(
      (r) => b.row("distillation_classifier", r, dim),
      w.get("head_dist.weight")!.data,
      t.classes,
      dim,
      (r) => s[r],
    );
  }
  return b;
}

async function refusal(dir: string): Promise<string> {
  try {
    await convertDirectory(dir, { convertedAt: at });
  } catch (e) {
    expect(e).toBeInstanceOf(ConvertError);
    return (e as Error).message;
  }
  throw new Error("conversion did not refuse");
}

describe("HF ViT", () => {
  const w = makeWeights(TINY);
  const dir = writeCheckpoint(fresh(), hfTensors(TINY, w, "vit"), hfConfig(TINY), VIT_PREPROCESSOR);

  test("header from config.json and preprocessor_config.json", async () => {
    const { header } = read(await convertDirectory(dir, { name: "tiny-vit", convertedAt: at }));
    expect(header.name).toBe("tiny-vit");
    expect(header.config).toEqual({
      imageSize: 8,
      patchSize: 4,
      channels: 3,
      dim: 8,
      heads: 2,
      hidden: 20,
      layers: 2,
      classes: 3,
      eps: 1e-12,
      distilled: false,
    });
    expect(header.labels).toEqual(LABELS);
    expect(header.preprocessing).toEqual({
      doResize: true,
      size: { height: 8, width: 8 },
      resample: 2,
      doCenterCrop: false,
      cropSize: null,
      doRescale: true,
      rescaleFactor: 1 / 255,
      doNormalize: true,
      imageMean: [0.5, 0.5, 0.5],
      imageStd: [0.5, 0.5, 0.5],
    });
    const st = readFileSync(join(dir, "model.safetensors"));
    expect(header.source).toMatchObject({
      layout: "hf-vit",
      dtype: "F32",
      converter: "edgevit 0.1.0",
      convertedAt: at,
      files: { "model.safetensors": { bytes: st.length, crc32: crc32(st).toString(16).padStart(8, "0") } },
    });
  });

  test("weights land where the layout says, quantized within half a step", async () => {
    checkAgainstWeights(await convertDirectory(dir, { convertedAt: at }), TINY, w);
  });

  test("the streamed file equals the in-memory bundle", async () => {
    const out = join(root, "tiny.evit");
    const logs: string[] = [];
    const header: BundleHeader = await convertToFile(dir, out, { convertedAt: at, log: (l) => logs.push(l) });
    const file = new Uint8Array(readFileSync(out));
    expect(file).toEqual(await convertDirectory(dir, { convertedAt: at }));
    expect(header.payload.crc32).toBe(read(file).header.payload.crc32);
    expect(logs.join("\n")).toMatch(
      /layout hf-vit, F32.*\n.*patch 4, tokens 5, dim 8, heads 2, hidden 20, layers 2, eps 1e-12, 3 labels/,
    );
  });
});

describe("HF DeiT distilled", () => {
  const t = { ...TINY, distilled: true };
  const w = makeWeights(t, 11);
  const pre = {
    feature_extractor_type: "DeiTFeatureExtractor",
    do_resize: true,
    size: 10,
    resample: 3,
    do_center_crop: true,
    crop_size: 8,
    do_normalize: true,
    image_mean: [0.485, 0.456, 0.406],
    image_std: [0.229, 0.224, 0.225],
  };
  const dir = writeCheckpoint(fresh(), hfTensors(t, w, "deit"), hfConfig(t), pre);

  test("distillation token, both heads, DeiT processor defaults for what the file omits", async () => {
    const b = checkAgainstWeights(await convertDirectory(dir, { convertedAt: at }), t, w);
    expect(b.header.config.distilled).toBe(true);
    expect(b.header.source.layout).toBe("hf-deit");
    expect(b.header.preprocessing).toEqual({
      doResize: true,
      size: { height: 10, width: 10 },
      resample: 3,
      doCenterCrop: true,
      cropSize: { height: 8, width: 8 },
      doRescale: true,
      rescaleFactor: 1 / 255,
      doNormalize: true,
      imageMean: [0.485, 0.456, 0.406],
      imageStd: [0.229, 0.224, 0.225],
    });
  });
});

describe("timm", () => {
  test("fused qkv gives the same payload as HF's separate query, key, value", async () => {
    const w = makeWeights(TINY, 3);
    const hf = await convertDirectory(
      writeCheckpoint(fresh(), hfTensors(TINY, w, "vit"), hfConfig(TINY), VIT_PREPROCESSOR),
      { name: "m", convertedAt: at },
    );
    const timm = await convertDirectory(
      writeCheckpoint(fresh(), timmTensors(TINY, w), hfConfig(TINY), VIT_PREPROCESSOR),
      { name: "m", convertedAt: at },
    );
    const a = read(hf),
      b = read(timm);
    expect(b.header.source.layout).toBe("timm");
    expect(b.payload).toEqual(a.payload);
    expect({ ...b.header, source: null }).toEqual({ ...a.header, source: null });
  });

  test("distilled timm DeiT (dist_token, head_dist) matches HF DeiT", async () => {
    const t = { ...TINY, distilled: true };
    const w = makeWeights(t, 5);
    const hf = read(
      await convertDirectory(writeCheckpoint(fresh(), hfTensors(t, w, "deit"), hfConfig(t), VIT_PREPROCESSOR), {
        convertedAt: at,
      }),
    );
    const timm = read(
      await convertDirectory(writeCheckpoint(fresh(), timmTensors(t, w), hfConfig(t), VIT_PREPROCESSOR), {
        convertedAt: at,
      }),
    );
    expect(timm.header.config.distilled).toBe(true);
    expect(timm.payload).toEqual(hf.payload);
  });

  test("timm-style config.json: sizes from the tensors, heads from the architecture, eval transform from pretrained_cfg", async () => {
    const w = makeWeights(TINY, 9);
    const cfg = {
      architecture: "vit_tiny_patch4_8",
      num_classes: 3,
      label_names: ["a", "b", "c"],
      num_heads: 2,
      pretrained_cfg: {
        input_size: [3, 8, 8],
        interpolation: "bicubic",
        crop_pct: 0.9,
        mean: [0.5, 0.5, 0.5],
        std: [0.5, 0.5, 0.5],
      },
    };
    const b = checkAgainstWeights(
      await convertDirectory(writeCheckpoint(fresh(), timmTensors(TINY, w), cfg, null), { convertedAt: at }),
      TINY,
      w,
    );
    expect(b.header.config).toEqual({ ...TINY, eps: 1e-6 });
    expect(b.header.labels).toEqual(["a", "b", "c"]);
    // timm: Resize(floor(8 / 0.9) = 8) on the shortest edge, CenterCrop(8)
    expect(b.header.preprocessing).toMatchObject({
      size: { shortestEdge: 8 },
      resample: 3,
      doCenterCrop: true,
      cropSize: { height: 8, width: 8 },
    });
  });
});

describe("dtypes", () => {
  test("a BF16 checkpoint converts to the same bundle as F32 weights of the same values", async () => {
    const w = makeWeights(TINY, 21);
    // round every weight to bf16 first so both files hold the same numbers
    for (const { data } of w.values()) {
      const bits = new Uint32Array(data.buffer);
      for (let i = 0; i < bits.length; i++) bits[i] &= 0xffff0000;
    }
    const f32 = read(
      await convertDirectory(writeCheckpoint(fresh(), hfTensors(TINY, w, "vit"), hfConfig(TINY), VIT_PREPROCESSOR), {
        convertedAt: at,
      }),
    );
    const bf16 = read(
      await convertDirectory(
        writeCheckpoint(fresh(), hfTensors(TINY, w, "vit"), hfConfig(TINY), VIT_PREPROCESSOR, "BF16"),
        { convertedAt: at },
      ),
    );
    expect(bf16.header.source.dtype).toBe("BF16");
    expect(bf16.payload).toEqual(f32.payload);
  });
});

describe("refusals", () => {
  const w = makeWeights(TINY);

  test("unknown layout lists, per known layout, the tensors it expected and did not find", async () => {
    const renamed = new Map([...hfTensors(TINY, w, "vit")].map(([k, v]) => [k.replace(/^vit\./, "model."), v]));
    const message = await refusal(writeCheckpoint(fresh(), renamed, hfConfig(TINY), VIT_PREPROCESSOR));
    expect(message).toMatch(/not a layout this converter knows/);
    expect(message).toMatch(/hf-vit: missing vit\.embeddings\.cls_token, vit\.embeddings\.position_embeddings/);
    expect(message).toMatch(/timm: missing cls_token, pos_embed, patch_embed\.proj\.weight/);
    expect(message).toMatch(/hf-deit: missing deit\.embeddings\.cls_token/);
  });

  test("a known layout with tensors missing names them", async () => {
    const tensors = timmTensors(TINY, w);
    tensors.delete("blocks.1.attn.proj.weight");
    tensors.delete("blocks.1.mlp.fc2.bias");
    const message = await refusal(writeCheckpoint(fresh(), tensors, hfConfig(TINY), VIT_PREPROCESSOR));
    expect(message).toMatch(
      /looks like timm .* lacks 2 tensors: blocks\.1\.attn\.proj\.weight, blocks\.1\.mlp\.fc2\.bias/,
    );
  });

  test("config.json that disagrees with the tensors", async () => {
    const message = await refusal(
      writeCheckpoint(fresh(), hfTensors(TINY, w, "vit"), hfConfig(TINY, { intermediate_size: 24 }), VIT_PREPROCESSOR),
    );
    expect(message).toMatch(
      /vit\.encoder\.layer\.0\.intermediate\.dense\.weight has shape \[20, 8\], config\.json implies \[24, 8\]/,
    );
  });

  test("activation other than exact gelu", async () => {
    const message = await refusal(
      writeCheckpoint(fresh(), hfTensors(TINY, w, "vit"), hfConfig(TINY, { hidden_act: "gelu_new" }), VIT_PREPROCESSOR),
    );
    expect(message).toMatch(/hidden_act "gelu_new" is not supported; the engine computes the exact erf "gelu" only/);
  });

  test("dim not divisible by heads, image not divisible by patch", async () => {
    expect(
      await refusal(
        writeCheckpoint(
          fresh(),
          hfTensors(TINY, w, "vit"),
          hfConfig(TINY, { num_attention_heads: 3 }),
          VIT_PREPROCESSOR,
        ),
      ),
    ).toMatch(/hidden size 8 is not divisible by 3 attention heads/);
    expect(
      await refusal(
        writeCheckpoint(fresh(), hfTensors(TINY, w, "vit"), hfConfig(TINY, { image_size: 10 }), VIT_PREPROCESSOR),
      ),
    ).toMatch(/image size 10 is not divisible by patch size 4/);
  });

  test("preprocessing that does not produce the model's input size", async () => {
    const message = await refusal(
      writeCheckpoint(fresh(), hfTensors(TINY, w, "vit"), hfConfig(TINY), { ...VIT_PREPROCESSOR, size: 16 }),
    );
    expect(message).toMatch(/images come out 16x16, but the model takes 8x8/);
  });
});
