// Image towers over every door: a CLIP-, a SigLIP- and a DINOv2-with-registers-shaped bundle (random weights,
// the real writer) uploaded to R2, then asked over HTTP, RPC and the queue. Each answers /v1/embed with its
// family's embedding by default, /v1/hidden_states and /v1/attentions saying where its patches start, refuses
// /v1/classify (no classifier) and, without a class token, /v1/see with a 400 sentence; /v1/models says what
// each is and answers.

import { beforeAll, describe, expect, test } from "vitest";
import { createExecutionContext, createMessageBatch, env, getQueueResult, SELF } from "cloudflare:test";
import cat from "../fixtures/images/cat-baseline-420.jpg";
import worker from "../../worker/index.ts";
import type { ModelConfig } from "../../core/bundle/format.ts";
import { jpegRequest, randomBundle, SMALL_CONFIG } from "./helpers.ts";

const TOWER: ModelConfig = { ...SMALL_CONFIG, classes: 0, eps: 1e-6 };
const CONFIGS: Record<string, ModelConfig> = {
  "tower-clip": {
    ...TOWER,
    family: "clip",
    hiddenAct: "quick_gelu",
    preLayernorm: true,
    finalNorm: "pooled",
    projection: 12,
  },
  "tower-siglip": { ...TOWER, family: "siglip", hiddenAct: "gelu_pytorch_tanh", classToken: false, pooling: "map" },
  "tower-dinov2": { ...TOWER, family: "dinov2", registerTokens: 4, layerScale: true },
};
const PATCHES = (SMALL_CONFIG.imageSize / SMALL_CONFIG.patchSize) ** 2;

beforeAll(async () => {
  for (const [name, config] of Object.entries(CONFIGS)) {
    await env.MODELS.put(`${name}.evit`, randomBundle(name, 91, config));
  }
});

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

  test("/v1/see needs a class token: SigLIP gets a 400 sentence, DINOv2 with registers draws", async () => {
    const siglip = await post("/v1/see?model=tower-siglip&size=32");
    expect(siglip.status).toBe(400);
    expect(siglip.body.error.message).toMatch(/has no class token \(a siglip tower: its tokens are the patches\)/);
    const dino = await post("/v1/see?model=tower-dinov2&size=32");
    expect(dino.status).toBe(200);
    expect(dino.body.attention.mean[0]).toHaveLength(PATCHES);
    expect((await SELF.fetch(jpegRequest("/v1/pca?model=tower-siglip&size=32", cat))).status).toBe(200);
  });

  test("/v1/models: family, the routes each answers, its pools", async () => {
    const { models } = (await (await SELF.fetch("http://edgevit.test/v1/models")).json()) as any;
    const of = (name: string) => models.find((m: any) => m.name === name);
    expect(of("tower-clip")).toMatchObject({ family: "clip", pools: ["image_embeds", "pooler"] });
    expect(of("tower-clip").answers).not.toContain("/v1/classify");
    expect(of("tower-siglip")).toMatchObject({ family: "siglip", pools: ["pooler", "mean"] });
    expect(of("tower-siglip").answers).toEqual(["/v1/embed", "/v1/hidden_states", "/v1/attentions", "/v1/pca"]);
    expect(of("tower-dinov2").answers).toContain("/v1/see");
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
