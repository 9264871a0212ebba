// Converting image towers: the tower fields each family's config.json gives, DINOv2's position embeddings
// interpolated as transformers interpolates them, each image processor's pixel_values bit for bit with the
// Pillow reference at full size, the refusals, and the ViT classifiers' bundles unchanged (version 1, byte
// for byte the committed default model).
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { crc32 } from "node:zlib";
import { afterAll, describe, expect, test } from "vitest";
import type { ModelConfig } from "../../core/bundle/format.ts";
import { readBundle } from "../../core/bundle/reader.ts";
import { DEFAULT_LIMITS } from "../../core/limits.ts";
import { preprocessInto } from "../../core/pipeline.ts";
import { ConvertError, convertDirectory, normalizePreprocessing } from "../../models/convert-folder.ts";
import { makeTower, preprocessorConfig } from "../../models/tools/make-random-tower.ts";
import { positionEmbeddings } from "../../core/convert/towers.ts";

const root = new URL("../../", import.meta.url).pathname;
const goldens = join(root, "test/goldens/towers");
const scratch = mkdtempSync(join(tmpdir(), "edgevit-towers-convert-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

// A tiny tower's directory, with config.json changed by `edit`.
function towerDir(preset: string, edit: (cfg: Record<string, unknown>) => void = () => {}): string {
  const files = makeTower({ preset, tiny: true, seed: 1, dtype: "F32", inputs: 1, textEmbeddings: false });
  const dir = join(scratch, `${preset}-${Math.random().toString(36).slice(2)}`);
  mkdirSync(dir);
  const cfg = JSON.parse(new TextDecoder().decode(files["config.json"]));
  edit(cfg);
  files["config.json"] = new TextEncoder().encode(JSON.stringify(cfg));
  for (const [name, bytes] of Object.entries(files)) writeFileSync(join(dir, name), bytes);
  return dir;
}

async function headerOf(dir: string) {
  return readBundle(await convertDirectory(dir), crc32).header;
}

async function refusal(dir: string): Promise<string> {
  try {
    await convertDirectory(dir);
  } catch (e) {
    expect(e).toBeInstanceOf(ConvertError);
    return (e as Error).message;
  }
  throw new Error("conversion did not refuse");
}

describe("tower fields from config.json", () => {
  test("CLIPModel: quick_gelu, pre_layrnorm, post_layernorm on the pooled token, the projection; I64 position_ids ignored", async () => {
    const h = await headerOf(towerDir("clip-vit-base-patch32"));
    expect(h.version).toBe(2);
    expect(h.config).toMatchObject({
      family: "clip",
      hiddenAct: "quick_gelu",
      preLayernorm: true,
      finalNorm: "pooled",
      projection: 32,
      classes: 0,
      eps: 1e-5,
      imageSize: 32,
      patchSize: 8,
    });
    expect(h.labels).toEqual([]);
    expect(h.source.dtype).toBe("F32+I64");
    // the legacy file's int `size` is CLIPImageProcessor's shortest edge
    expect(h.preprocessing).toMatchObject({
      size: { shortestEdge: 32 },
      cropSize: { height: 32, width: 32 },
      resample: 3,
    });
    expect(h.tensors.map((t) => t.name)).toContain("visual_projection.weight");
  });

  test("SigLIP: no class token, gelu_pytorch_tanh, the pooling head; SigLIP 2 resizes bilinear", async () => {
    const h = await headerOf(towerDir("siglip-base-patch16-224"));
    expect(h.config).toMatchObject({
      family: "siglip",
      hiddenAct: "gelu_pytorch_tanh",
      classToken: false,
      pooling: "map",
      eps: 1e-6,
    });
    expect(h.tensors.map((t) => t.name)).not.toContain("embeddings.cls_token");
    expect(h.preprocessing).toMatchObject({ size: { height: 32, width: 32 }, doCenterCrop: false, resample: 3 });
    expect((await headerOf(towerDir("siglip2-base-patch16-224"))).preprocessing.resample).toBe(2);
  });

  test("SiglipVisionModel: the vision config at the top level gives the same bundle as SiglipModel's", async () => {
    const two = readBundle(await convertDirectory(towerDir("siglip-base-patch16-224")), crc32);
    const alone = towerDir("siglip-base-patch16-224", (c) => {
      const vision = c.vision_config as Record<string, unknown>;
      for (const key of Object.keys(c)) delete c[key];
      Object.assign(c, vision, { model_type: "siglip_vision_model", architectures: ["SiglipVisionModel"] });
    });
    const one = readBundle(await convertDirectory(alone), crc32);
    expect(one.header.config).toEqual(two.header.config);
    expect(Buffer.from(one.payload).equals(Buffer.from(two.payload))).toBe(true);
  });

  test("DINOv2: LayerScale, registers, the input size from the crop, position embeddings for its grid", async () => {
    const h = await headerOf(towerDir("dinov2-with-registers-small"));
    expect(h.config).toMatchObject({
      family: "dinov2",
      layerScale: true,
      registerTokens: 4,
      imageSize: 32,
      patchSize: 8,
    });
    const pos = h.tensors.find((t) => t.name === "embeddings.position_embeddings")!;
    expect(pos.bytes).toBe((1 + 4 * 4) * 64 * 4); // 7x7 interpolated to the 4x4 grid of 32-pixel inputs
    expect(h.preprocessing).toMatchObject({ size: { shortestEdge: 37 }, cropSize: { height: 32, width: 32 } });
    expect((await headerOf(towerDir("dinov2-small"))).config.registerTokens).toBe(0);
  });

  test("refusals: SwiGLU, a SigLIP without its head, an unknown model type, sizes over what a Worker holds", async () => {
    expect(await refusal(towerDir("dinov2-small", (c) => (c.use_swiglu_ffn = true)))).toMatch(
      /use_swiglu_ffn is true \(DINOv2 giant's SwiGLU MLP\)/,
    );
    expect(
      await refusal(
        towerDir(
          "siglip-base-patch16-224",
          (c) => ((c.vision_config as Record<string, unknown>).vision_use_head = false),
        ),
      ),
    ).toMatch(/vision_use_head is false/);
    expect(await refusal(towerDir("siglip-base-patch16-224", (c) => (c.model_type = "siglip2")))).toMatch(
      /model_type "siglip2".*edgevit converts .*SigLIP/,
    );
    expect(
      await refusal(towerDir("clip-vit-base-patch32", (c) => (c.architectures = ["CLIPSegForImageSegmentation"]))),
    ).toMatch(/CLIPSegForImageSegmentation checkpoint/);
    expect(
      await refusal(
        towerDir("dinov2-small", (c) =>
          Object.assign(c, { hidden_size: 4096, num_attention_heads: 32, num_hidden_layers: 40 }),
        ),
      ),
    ).toMatch(/the int8 payload of .* over the limit of 120/);
    // a two-layer SigLIP 1536 wide at 1024 px: 4,096 tokens, within every size limit, 107 MiB of weights,
    // but its activations (the residual stream [tokens][1536], every token's keys and values) take it over
    // an isolate
    expect(
      await refusal(
        towerDir("siglip-base-patch16-224", (c) =>
          Object.assign(c.vision_config as object, {
            image_size: 1024,
            patch_size: 16,
            hidden_size: 1536,
            num_attention_heads: 12,
            intermediate_size: 6144,
            num_hidden_layers: 2,
          }),
        ),
      ),
    ).toMatch(/needs .* MiB of engine memory .* more than the 128\.0 MiB a Worker isolate holds/);
  });
});

describe("DINOv2's position-embedding interpolation", () => {
  const cases: {
    preset?: string;
    formula?: boolean;
    native: number;
    grid: number;
    antialias: boolean;
    dim: number;
    values: number[];
  }[] = JSON.parse(readFileSync(join(goldens, "interpolation.json"), "utf8")).cases;

  // tower_goldens.py's table_formula, in float64 then f32, after a zero class row
  function formulaTable(native: number, dim: number): Float32Array {
    const t = new Float32Array((1 + native * native) * dim);
    for (let i = 0; i < native * native; i++)
      for (let d = 0; d < dim; d++)
        t[(1 + i) * dim + d] = 0.02 * Math.sin(0.37 * i + 0.11 * d) + 0.01 * Math.cos(0.013 * i * d);
    return t;
  }

  function checkpointTable(preset: string): Float32Array {
    const bytes = makeTower({ preset, tiny: true, seed: 1, dtype: "F32", inputs: 1, textEmbeddings: false })[
      "model.safetensors"
    ];
    const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
    const [begin, end] = header["embeddings.position_embeddings"].data_offsets;
    return new Float32Array(bytes.slice(8 + n + begin, 8 + n + end).buffer);
  }

  test.each(
    cases.map((c) => [
      `${c.preset ?? "formula"} ${c.native}x${c.native} -> ${c.grid}x${c.grid}${c.antialias ? ", antialias" : ""}`,
      c,
    ]),
  )("%s: within 2e-7 of PyTorch's float32 F.interpolate", (_, c) => {
    const table = c.formula ? formulaTable(c.native, c.dim) : checkpointTable(c.preset!);
    const got = positionEmbeddings(table, c.native, c.grid, c.dim, c.antialias);
    expect(got.length).toBe(c.values.length);
    let worst = 0;
    for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i] - c.values[i]));
    expect(worst).toBeLessThan(2e-7);
    // the class row is kept as it is
    expect(Array.from(got.subarray(0, c.dim))).toEqual(Array.from(table.subarray(0, c.dim)));
  });

  test("the native grid is kept as it is, as transformers skips the interpolation", () => {
    const table = formulaTable(5, 3);
    expect(positionEmbeddings(table, 5, 5, 3, false)).toBe(table);
  });
});

describe("image processors at full size: pixel_values bit for bit with preprocess_towers.py (Pillow)", () => {
  const { cases } = JSON.parse(readFileSync(join(goldens, "preprocess.json"), "utf8")) as {
    cases: { preset: string; photo: string; shape: number[]; sha256: string }[];
  };
  const layoutOf = (preset: string) =>
    preset.startsWith("clip") ? "hf-clip" : preset.startsWith("siglip") ? "hf-siglip" : "hf-dinov2";

  test.each(cases.map((c) => [c.preset, c.photo, c] as const))("%s %s", async (preset, photo, c) => {
    const side = c.shape[1];
    const config: ModelConfig = {
      imageSize: side,
      patchSize: 16,
      channels: 3,
      dim: 8,
      heads: 1,
      hidden: 8,
      layers: 1,
      classes: 0,
      eps: 1e-6,
      distilled: false,
    };
    const pp = normalizePreprocessing(preprocessorConfig(preset, false), layoutOf(preset), config);
    const out = new Float32Array(3 * side * side);
    await preprocessInto(pp, new Uint8Array(readFileSync(join(root, photo))), DEFAULT_LIMITS, () => out, "exact");
    expect(sha256(new Uint8Array(out.buffer))).toBe(c.sha256);
  });
});

test("a ViT classifier's bundle stays version 1, byte for byte the committed default model", async () => {
  const committed = new Uint8Array(readFileSync(join(root, "models/default/fashion-vit.evit")));
  const { header } = readBundle(committed, crc32);
  expect(header.version).toBe(1);
  const again = await convertDirectory("models/default/checkpoint", {
    name: header.name,
    convertedAt: header.source.convertedAt,
  });
  expect(Buffer.from(again).equals(Buffer.from(committed))).toBe(true);
});
