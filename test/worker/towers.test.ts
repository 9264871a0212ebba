// Image towers over every door: a CLIP-, a SigLIP- and a DINOv2-with-registers-shaped bundle (random weights,
// the real writer) uploaded to R2, then asked over HTTP, RPC and the queue. Each answers /v1/embed with its
// family's embedding by default, /v1/hidden_states and /v1/attentions saying where its patches start, refuses
// /v1/classify (no classifier); /v1/see, /v1/attention_map and /v1/pca draw each at its own grid (SigLIP,
// without a class token, through its pooling head's attention; DINOv2's registers listed beside the grid),
// checked against the engine run here on the same input (full attention probabilities one layer at a time,
// rollout by the full-matrix reference, PCA pictures from one hidden state at a time); /v1/models says what
// each is and answers.

import { beforeAll, describe, expect, test } from "vitest";
import { createExecutionContext, createMessageBatch, env, getQueueResult, SELF } from "cloudflare:test";
import cat from "../fixtures/images/cat-baseline-420.jpg";
import worker from "../../worker/index.ts";
import type { ModelConfig } from "../../core/bundle/format.ts";
import { jpegRequest, randomBundle, SMALL_CONFIG } from "./helpers.ts";
import { SMALL_CLIP_CONFIG } from "./bundles.ts";
import relaxedModule from "../../build/engine-relaxed.wasm";
import { Engine } from "../../core/engine/index.ts";
import type { Model, RunOptions } from "../../core/engine/model.ts";
import { decodeWhole } from "../core/image/whole.ts";
import { preprocess } from "../../core/preprocess/preprocess.ts";
import { patchPicture, tokenColors } from "../../core/pictures/pca.ts";
import { rollout } from "../core/pictures/rollout-reference.ts";
import { decodePng } from "./png.ts";

const TOWER: ModelConfig = { ...SMALL_CONFIG, classes: 0, eps: 1e-6 };
const CONFIGS: Record<string, ModelConfig> = {
  "tower-clip": SMALL_CLIP_CONFIG,
  "tower-siglip": { ...TOWER, family: "siglip", hiddenAct: "gelu_pytorch_tanh", classToken: false, pooling: "map" },
  "tower-dinov2": { ...TOWER, family: "dinov2", registerTokens: 4, layerScale: true },
};
const PATCHES = (SMALL_CONFIG.imageSize / SMALL_CONFIG.patchSize) ** 2;

const references = new Map<string, Model>();

beforeAll(async () => {
  const engine = await Engine.instantiate(relaxedModule);
  for (const [name, config] of Object.entries(CONFIGS)) {
    const bundle = randomBundle(name, 91, config);
    await env.MODELS.put(`${name}.evit`, bundle);
    references.set(name, await engine.load(bundle));
  }
});

// The engine on the same input as the Worker's: decoded, preprocessed, then run with `options`.
async function reference(name: string, options: RunOptions) {
  const model = references.get(name)!;
  const image = await decodeWhole(cat, model.header.preprocessing);
  preprocess(image, model.header.preprocessing, model.input());
  return model.run(options);
}

// Head means of every layer's full probabilities: [layers][tokens][tokens].
async function headMeans(name: string, tokens: number): Promise<Float64Array> {
  const { heads, layers } = CONFIGS[name];
  const mean = new Float64Array(layers * tokens * tokens);
  for (let l = 1; l <= layers; l++) {
    const p = (await reference(name, { attentionLayer: l })).attentions!;
    for (let k = 0; k < tokens * tokens; k++) {
      let s = 0;
      for (let h = 0; h < heads; h++) s += p[h * tokens * tokens + k];
      mean[(l - 1) * tokens * tokens + k] = s / heads;
    }
  }
  return mean;
}

const close = (values: number[]) => values.map((v) => expect.closeTo(v, 3));

async function post(path: string): Promise<{ status: number; body: any }> {
  const response = await SELF.fetch(jpegRequest(path, cat));
  return { status: response.status, body: await response.json() };
}

describe("HTTP", () => {
  test("/v1/embed: each family's embedding by default, the others it has on request, a pool it has not refused", async () => {
    const clip = await post("/v1/embed?model=tower-clip");
    expect(clip.status).toBe(200);
    expect(clip.body).toMatchObject({ family: "clip", pool: "image_embeds", dim: 12 });
    expect(clip.body.embedding).toHaveLength(12);
    expect((await post("/v1/embed?model=tower-clip&pool=pooler")).body).toMatchObject({ pool: "pooler", dim: 32 });
    expect((await post("/v1/embed?model=tower-siglip")).body).toMatchObject({
      family: "siglip",
      pool: "pooler",
      dim: 32,
    });
    const dino = await post("/v1/embed?model=tower-dinov2&pool=cls_mean&normalize=true");
    expect(dino.body).toMatchObject({ family: "dinov2", pool: "cls_mean", dim: 64, normalized: true });
    expect(Math.hypot(...dino.body.embedding)).toBeCloseTo(1, 5);
    // cls_mean is the class token, then the mean patch token
    const [cls, mean] = [
      (await post("/v1/embed?model=tower-dinov2")).body,
      (await post("/v1/embed?model=tower-dinov2&pool=mean")).body,
    ];
    expect(cls.pool).toBe("cls");
    const both = (await post("/v1/embed?model=tower-dinov2&pool=cls_mean")).body.embedding;
    expect(both).toEqual([...cls.embedding, ...mean.embedding]);
    const refused = await post("/v1/embed?model=tower-siglip&pool=image_embeds");
    expect(refused.status).toBe(400);
    expect(refused.body.error).toEqual({
      code: "bad_parameter",
      message: 'pool must be one of pooler, mean for model tower-siglip (a siglip model), got "image_embeds"',
    });
  });

  test("/v1/classify on a tower is a 400 that says what the model answers", async () => {
    const { status, body } = await post("/v1/classify?model=tower-clip");
    expect(status).toBe(400);
    expect(body.error.code).toBe("bad_parameter");
    expect(body.error.message).toMatch(
      /^model tower-clip is a clip image tower without a classifier: it answers \/v1\/embed/,
    );
  });

  test("/v1/hidden_states and /v1/attentions say where the patches start", async () => {
    const siglip = await post("/v1/hidden_states?model=tower-siglip&layer=2");
    expect(siglip.body).toMatchObject({ tokens: PATCHES, class_token: false, prefix_tokens: 0 });
    const dino = await post("/v1/hidden_states?model=tower-dinov2&layer=0");
    expect(dino.body).toMatchObject({ tokens: PATCHES + 5, class_token: true, prefix_tokens: 5 });
    const clip = await post("/v1/attentions?model=tower-clip&layer=1");
    expect(clip.body).toMatchObject({ tokens: PATCHES + 1, heads: 2, class_token: true, prefix_tokens: 1 });
    for (const row of clip.body.attentions[0]) expect(row.reduce((a: number, b: number) => a + b, 0)).toBeCloseTo(1, 5);
    const npy = await SELF.fetch(
      jpegRequest("/v1/attentions?model=tower-siglip&layer=1", cat, "image/jpeg", { accept: "application/x-npy" }),
    );
    expect(npy.headers.get("x-edgevit-class-token")).toBe("false");
    expect(npy.headers.get("x-edgevit-prefix-tokens")).toBe("0");
  });

  test("/v1/see on SigLIP: where it looks is its pooling head's attention, rollout ends in it", async () => {
    const name = "tower-siglip";
    const c = CONFIGS[name];
    const { status, body } = await post(`/v1/see?model=${name}&size=32`);
    expect(status).toBe(200);
    expect(body).toMatchObject({
      family: "siglip",
      predictions: [],
      config: { classToken: false, prefixTokens: 0, tokens: PATCHES, pooling: "map", hiddenAct: "gelu_pytorch_tanh" },
      attention: { from: "pooling head", layers: 1 },
    });
    const run = await reference(name, { attention: true });
    // the embedding in place of predictions: the pooler output
    let norm = 0;
    for (const v of run.pooler) norm += v * v;
    expect(body.embedding.pool).toBe("pooler");
    expect(body.embedding.norm).toBeCloseTo(Math.sqrt(norm), 3);
    expect(body.embedding.first).toEqual(close(Array.from(run.pooler.subarray(0, 8))));
    // one attention "layer", the head's, per head and averaged
    const head = run.headAttention!;
    expect(body.attention.cls).toHaveLength(1);
    for (let h = 0; h < c.heads; h++) {
      expect(body.attention.cls[0][h]).toEqual(close(Array.from(head.subarray(h * PATCHES, (h + 1) * PATCHES))));
    }
    const mean = Array.from({ length: PATCHES }, (_, j) => {
      let s = 0;
      for (let h = 0; h < c.heads; h++) s += head[h * PATCHES + j];
      return s / c.heads;
    });
    expect(body.attention.mean[0]).toEqual(close(mean));
    // the head's mean attention through the full-matrix rollout of every layer
    const r = rollout(await headMeans(name, PATCHES), PATCHES, c.layers);
    const want = Array.from({ length: PATCHES }, (_, j) => mean.reduce((s, m, i) => s + m * r[i * PATCHES + j], 0));
    expect(body.attention.rollout[0]).toEqual(close(want));
    expect(body.pca.frames).toHaveLength(c.layers + 1);

    // /v1/attention_map draws the same; a layer before the head has no attention map
    const map = await SELF.fetch(jpegRequest(`/v1/attention_map?model=${name}&size=32`, cat));
    expect(map.status).toBe(200);
    const rolled = await SELF.fetch(jpegRequest(`/v1/attention_map?model=${name}&mode=rollout&size=32`, cat));
    expect(rolled.status).toBe(200);
    const early = await SELF.fetch(jpegRequest(`/v1/attention_map?model=${name}&layer=1`, cat));
    expect(early.status).toBe(400);
    expect(((await early.json()) as any).error.message).toMatch(/its pooling head's attention after layer 2/);
    expect((await SELF.fetch(jpegRequest(`/v1/pca?model=${name}&size=32`, cat))).status).toBe(200);
    expect((await SELF.fetch(jpegRequest(`/v1/pca?model=${name}&layer=all&size=32`, cat))).status).toBe(200);
  });

  test("/v1/see on CLIP and DINOv2: the class token's attention, rollout, PCA; registers beside the grid", async () => {
    for (const name of ["tower-clip", "tower-dinov2"]) {
      const c = CONFIGS[name];
      const registers = name === "tower-dinov2" ? 4 : 0;
      const tokens = PATCHES + 1 + registers;
      const grid = c.imageSize / c.patchSize;
      const { status, body } = await post(`/v1/see?model=${name}&size=32`);
      expect(status, name).toBe(200);
      expect(body.config).toMatchObject({ classToken: true, registers, prefixTokens: 1 + registers, tokens });
      expect(body.attention).toMatchObject({ from: "class token", layers: c.layers });
      expect(body.embedding.pool).toBe(name === "tower-clip" ? "image_embeds" : "cls");
      const means = await headMeans(name, tokens);
      for (let l = 1; l <= c.layers; l++) {
        const row = Array.from(means.subarray((l - 1) * tokens * tokens, (l - 1) * tokens * tokens + tokens));
        expect(body.attention.mean[l - 1], `${name} layer ${l}`).toEqual(close(row.slice(1 + registers)));
        expect(body.attention.registers.mean[l - 1]).toEqual(close(row.slice(1, 1 + registers)));
        const r = Array.from(rollout(means, tokens, l).subarray(0, tokens));
        expect(body.attention.rollout[l - 1]).toEqual(close(r.slice(1 + registers)));
        expect(body.attention.registers.rollout[l - 1]).toEqual(close(r.slice(1, 1 + registers)));
      }
      for (let layer = 0; layer <= c.layers; layer++) {
        const states = (await reference(name, { capture: layer })).captured!;
        const frame = await decodePng(
          Uint8Array.from(atob(body.pca.frames[layer].slice(22)), (ch) => ch.charCodeAt(0)),
        );
        expect(frame.rgb, `${name} PCA ${layer}`).toEqual(patchPicture(states, c.dim, grid, 32));
        const extra = tokenColors(states, c.dim, grid, 1).extra;
        expect(body.pca.registers[layer]).toEqual(
          Array.from({ length: registers }, (_, i) => Array.from(extra.subarray(i * 3, i * 3 + 3))),
        );
      }
    }
  });

  test("/v1/models: family, the routes each answers, its pools", async () => {
    const { models } = (await (await SELF.fetch("http://edgevit.test/v1/models")).json()) as any;
    const of = (name: string) => models.find((m: any) => m.name === name);
    expect(of("tower-clip")).toMatchObject({ family: "clip", pools: ["image_embeds", "pooler"] });
    expect(of("tower-clip").answers).not.toContain("/v1/classify");
    expect(of("tower-siglip")).toMatchObject({ family: "siglip", pools: ["pooler", "mean"] });
    expect(of("tower-siglip").answers).toEqual([
      "/v1/embed",
      "/v1/hidden_states",
      "/v1/attentions",
      "/v1/pca",
      "/v1/attention_map",
      "/v1/see",
    ]);
  });
});

test("RPC embed and classify answer as the routes do", async () => {
  const call = async (path: string, options: object) => {
    const url = `http://caller.test${path}?options=${encodeURIComponent(JSON.stringify(options))}`;
    return (await env.CALLER.fetch(url, { method: "POST", body: cat })).json() as Promise<any>;
  };
  for (const name of Object.keys(CONFIGS)) {
    const { result } = await call("/embed", { model: name, normalize: true });
    expect(result).toEqual((await post(`/v1/embed?model=${name}&normalize=true`)).body);
  }
  const { error } = await call("/classify", { model: "tower-siglip" });
  expect(error.code).toBe("bad_parameter");
});

test("the queue writes a tower's embedding, and its vector line, at the tower's dimension; no classification", async () => {
  const key = "uploads/tower-cat.jpg";
  await env.IMAGES.put(key, cat);
  const body = {
    account: "test-account",
    action: "PutObject",
    bucket: env.INPUT_BUCKET,
    object: { key, size: 1, eTag: "etag" },
    eventTime: "2026-12-01T12:00:00.000Z",
  };
  const batch = createMessageBatch("edgevit-images-events", [
    { id: "tower-1", timestamp: new Date(0), attempts: 1, body },
  ]);
  const ctx = createExecutionContext();
  await worker.queue(batch, { ...env, PIPELINE_MODEL: "tower-clip" }, ctx);
  expect((await getQueueResult(batch, ctx)).explicitAcks).toEqual(["tower-1"]);
  const written = JSON.parse(await (await env.RESULTS.get(`${env.RESULT_PREFIX}${key}.json`))!.text());
  expect(written.classify).toBeUndefined();
  expect(written.embed).toMatchObject({ family: "clip", pool: "image_embeds", dim: 12, normalized: true });
  const line = JSON.parse(await (await env.RESULTS.get(`${env.RESULT_PREFIX}${key}.vectors.ndjson`))!.text());
  expect(line.values).toHaveLength(12);
  expect(line.values).toEqual(written.embed.embedding);
});
