// Text search in workerd: images put into the input bucket, their R2 events delivered to the queue consumer
// with a CLIP-shaped two-tower model (random weights, the real writer, a small BPE tokenizer), then
// /v1/search. The reference ranking is computed here from the Worker's own /v1/embed and /v1/embed_text
// answers (each image's and the query's unit embeddings, their dot product). The index in R2 is looked at
// directly; a Vectorize binding, faked here with upsert/query over a Map, is shown to be the one used when
// bound; the image route serves indexed keys only; refusals are 400s with a sentence.
import { createExecutionContext, createMessageBatch, env, getQueueResult, SELF } from "cloudflare:test";
import { beforeAll, describe, expect, test } from "vitest";
import cat from "../fixtures/images/cat-baseline-420.jpg";
import astronaut from "../fixtures/images/astronaut-444.jpg";
import coffee from "../fixtures/images/coffee-progressive.jpg";
import camera from "../fixtures/images/camera-grayscale.jpg";
import rocket from "../fixtures/images/rocket-exif-orient6.jpg";
import worker from "../../worker/index.ts";
import { MAX_K } from "../../worker/search.ts";
import { call, jpegRequest, randomBundle } from "./helpers.ts";
import { SMALL_CLIP_CONFIG, twoTowerBundle } from "./bundles.ts";

const CLIP = SMALL_CLIP_CONFIG;
const NAME = "search-clip";
const IMAGES: Record<string, ArrayBuffer> = {
  "photos/cat.jpg": cat,
  "photos/astronaut.jpg": astronaut,
  "photos/coffee.jpg": coffee,
  "photos/camera.jpg": camera,
  "photos/rocket.jpg": rocket,
};
const QUERY = "a photo of a cat";

let ids = 0;
async function deliver(keys: string[], overrides: Partial<Env>) {
  const messages = keys.map((key) => ({
    id: `msg-${++ids}`,
    timestamp: new Date(0),
    attempts: 1,
    body: {
      account: "test-account",
      action: "PutObject",
      bucket: env.INPUT_BUCKET,
      object: { key, size: 1, eTag: "etag" },
      eventTime: "2026-12-01T12:00:00.000Z",
    },
  }));
  const batch = createMessageBatch("edgevit-images-events", messages);
  const ctx = createExecutionContext();
  await worker.queue(batch, { ...env, PIPELINE_TASKS: "embed", ...overrides }, ctx);
  const outcome = await getQueueResult(batch, ctx);
  expect(outcome.retryMessages).toEqual([]);
  expect(outcome.explicitAcks).toEqual(messages.map((m) => m.id));
}

function jsonRequest(path: string, body: unknown): Request {
  return new Request(`http://edgevit.test${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
}
const searchRequest = (body: unknown) => jsonRequest("/v1/search", body);

// The ranking the Worker's own image and text embeddings give: unit vectors' dot products, highest first.
async function reference(model: string, query: string): Promise<{ key: string; score: number }[]> {
  const text = await (await SELF.fetch(jsonRequest(`/v1/embed_text?model=${model}`, { texts: [query] }))).json<any>();
  const t = text.embeddings[0] as number[];
  const tn = Math.hypot(...t);
  const scores = [];
  for (const [key, bytes] of Object.entries(IMAGES)) {
    const answer = await (await SELF.fetch(jpegRequest(`/v1/embed?model=${model}&normalize=true`, bytes))).json<any>();
    const e = answer.embedding as number[];
    scores.push({ key, score: e.reduce((sum, x, i) => sum + (x * t[i]) / tn, 0) });
  }
  return scores.sort((a, b) => b.score - a.score);
}

function expectRanking(results: { key: string; score: number }[], expected: { key: string; score: number }[]) {
  expect(results.map((r) => r.key)).toEqual(expected.map((r) => r.key));
  results.forEach((r, i) => {
    expect(r.score).toBeCloseTo(expected[i].score, 5);
  });
}

beforeAll(async () => {
  await env.MODELS.put(`${NAME}.evit`, twoTowerBundle(NAME, 13, CLIP, 12));
  await env.MODELS.put("search-vectorize.evit", twoTowerBundle("search-vectorize", 14, CLIP, 12));
  await env.MODELS.put("search-empty.evit", twoTowerBundle("search-empty", 15, CLIP, 12));
  await env.MODELS.put("search-image-only.evit", randomBundle("search-image-only", 16, CLIP));
  for (const [key, bytes] of Object.entries(IMAGES)) await env.IMAGES.put(key, bytes);
  await deliver(Object.keys(IMAGES), { PIPELINE_MODEL: NAME });
});

describe("the R2 index", () => {
  test("/v1/search ranks the embedded images by cosine, as the image and text embeddings give it", async () => {
    const response = await SELF.fetch(searchRequest({ query: QUERY, k: 10, model: NAME }));
    expect(response.status).toBe(200);
    const body = await response.json<any>();
    const embedded = await (await SELF.fetch(jpegRequest(`/v1/embed?model=${NAME}`, cat))).json<any>();
    expect(body).toMatchObject({ model: NAME, version: embedded.version });
    expect(response.headers.get("x-edgevit-model-version")).toBe(embedded.version);
    expectRanking(body.results, await reference(NAME, QUERY));
    // k bounds the answer to the nearest k
    const top2 = await (await SELF.fetch(searchRequest({ query: QUERY, k: 2, model: NAME }))).json<any>();
    expect(top2.results).toEqual(body.results.slice(0, 2));
    // the text pass in this isolate (no TEXT binding) ranks the same
    const here = await (await call(searchRequest({ query: QUERY, model: NAME }), { TEXT: undefined })).json<any>();
    expectRanking(here.results, body.results);
  });

  test("one entry per image under the model and version, unchanged by a redelivery", async () => {
    const version = (await (await env.RESULTS.get(`index/${NAME}/current`))!.text()).trim();
    const prefix = `index/${NAME}/${version}/`;
    const listed = await env.RESULTS.list({ prefix, include: ["customMetadata"] });
    expect(listed.objects.map((o) => o.customMetadata?.key).sort()).toEqual(Object.keys(IMAGES).sort());
    for (const o of listed.objects) expect(o.size).toBe(12 * 4); // the unit embedding, f32
    const entry = await env.RESULTS.get(listed.objects[0].key);
    const vector = new Float32Array(await entry!.arrayBuffer());
    expect(Math.hypot(...vector)).toBeCloseTo(1, 5);
    await deliver(["photos/cat.jpg"], { PIPELINE_MODEL: NAME });
    expect((await env.RESULTS.list({ prefix })).objects).toHaveLength(listed.objects.length);
  });

  test("an image replaced by one that cannot be read leaves the index", async () => {
    const key = "photos/soon-broken.jpg";
    await env.IMAGES.put(key, cat);
    await deliver([key], { PIPELINE_MODEL: NAME });
    const found = async () =>
      (await (await SELF.fetch(searchRequest({ query: QUERY, k: MAX_K, model: NAME }))).json<any>()).results.map(
        (r: any) => r.key,
      );
    expect(await found()).toContain(key);
    await env.IMAGES.put(key, new Uint8Array([1, 2, 3]));
    await deliver([key], { PIPELINE_MODEL: NAME });
    expect(await found()).not.toContain(key);
    await env.IMAGES.delete(key);
  });
});

describe("the Vectorize binding", () => {
  // Vectorize's binding as far as the index uses it: vectors by id with namespace and metadata; query by
  // cosine within a namespace.
  function fakeVectorize() {
    const vectors = new Map<string, VectorizeVector>();
    const calls: string[] = [];
    const cosine = (a: number[], b: number[]) =>
      a.reduce((s, x, i) => s + x * b[i], 0) / (Math.hypot(...a) * Math.hypot(...b));
    const binding = {
      async upsert(list: VectorizeVector[]) {
        calls.push("upsert");
        for (const v of list) vectors.set(v.id, { ...v, values: Array.from(v.values) });
        return { mutationId: "m" };
      },
      async query(vector: number[], options: VectorizeQueryOptions) {
        calls.push("query");
        const matches = [...vectors.values()]
          .filter((v) => v.namespace === options.namespace)
          .map((v) => ({ id: v.id, score: cosine(vector, v.values as number[]), metadata: v.metadata }))
          .sort((a, b) => b.score - a.score)
          .slice(0, options.topK);
        return { matches, count: matches.length };
      },
      async getByIds(list: string[]) {
        calls.push("getByIds");
        return list.flatMap((id) => (vectors.has(id) ? [vectors.get(id)!] : []));
      },
      async deleteByIds(list: string[]) {
        calls.push("deleteByIds");
        for (const id of list) vectors.delete(id);
        return { mutationId: "m" };
      },
    };
    return { binding: binding as unknown as Vectorize, vectors, calls };
  }

  test("when bound, the consumer upserts into it and search queries it, with the same ranking", async () => {
    const model = "search-vectorize";
    const fake = fakeVectorize();
    await deliver(Object.keys(IMAGES), { PIPELINE_MODEL: model, VECTORIZE: fake.binding });
    expect(fake.vectors.size).toBe(Object.keys(IMAGES).length);
    const version = (await (await env.RESULTS.get(`index/${model}/current`))!.text()).trim();
    for (const v of fake.vectors.values()) {
      expect(v.namespace).toBe(`${model}@${version}`);
      expect(v.values).toHaveLength(12);
    }
    // nothing in the R2 index: Vectorize holds it
    expect((await env.RESULTS.list({ prefix: `index/${model}/${version}/` })).objects).toEqual([]);
    const response = await call(searchRequest({ query: QUERY, model }), { VECTORIZE: fake.binding });
    const body = await response.json<any>();
    expect(fake.calls).toContain("query");
    expectRanking(body.results, await reference(model, QUERY));
    // the image route asks Vectorize whether the key is indexed
    const image = await call(new Request(`http://edgevit.test/v1/search/image?model=${model}&key=photos/cat.jpg`), {
      VECTORIZE: fake.binding,
    });
    expect(image.status).toBe(200);
    expect(fake.calls).toContain("getByIds");
    await image.body?.cancel();
  });
});

describe("the model's scores of each result", () => {
  // logit_scale and logit_bias as the checkpoint stores them: F32 scalars in model.safetensors, read from
  // the file the local hub serves (test/tools/hub-service.ts), not from the bundle.
  async function checkpointScalars(repo: string): Promise<Record<string, number>> {
    const q = new URLSearchParams({ repo, file: "model.safetensors" });
    const bytes = new Uint8Array(await (await env.HUB.fetch(`http://hub/file?${q}`)).arrayBuffer());
    const view = new DataView(bytes.buffer);
    const length = Number(view.getBigUint64(0, true));
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + length)));
    const scalars: Record<string, number> = {};
    for (const name of ["logit_scale", "logit_bias"]) {
      const entry = header[name] as { dtype: string; shape: number[]; data_offsets: [number, number] } | undefined;
      if (!entry) continue;
      expect(entry.dtype).toBe("F32");
      expect(entry.shape.reduce((a, b) => a * b, 1)).toBe(1);
      scalars[name] = view.getFloat32(8 + length + entry.data_offsets[0], true);
    }
    return scalars;
  }

  test.each([
    ["org/tiny-clip-text", "search-ckpt-clip"],
    ["org/tiny-siglip-text", "search-ckpt-siglip"],
  ])(
    "%s: the logit is exp(logit_scale) x cosine (+ logit_bias), SigLIP's probability its sigmoid",
    async (repo, model) => {
      const q = new URLSearchParams({ repo, name: model, convertedAt: "2026-01-01T00:00:00Z" });
      await env.MODELS.put(`${model}.evit`, await (await env.HUB.fetch(`http://hub/reference?${q}`)).arrayBuffer());
      await deliver(Object.keys(IMAGES), { PIPELINE_MODEL: model });
      const { logit_scale: scale, logit_bias: bias } = await checkpointScalars(repo);
      const siglip = repo.includes("siglip");
      expect(scale).toBeGreaterThan(0);
      expect(bias === undefined).toBe(!siglip);

      for (const via of ["TEXT binding", "this isolate"]) {
        const request = searchRequest({ query: QUERY, k: MAX_K, model });
        const response = via === "TEXT binding" ? await SELF.fetch(request) : await call(request, { TEXT: undefined });
        expect(response.status).toBe(200);
        const { results } = await response.json<any>();
        expect(results).toHaveLength(Object.keys(IMAGES).length);
        // ranked by cosine, as before
        expectRanking(results, await reference(model, QUERY));
        for (const r of results) {
          const logit = Math.exp(scale) * r.score + (siglip ? bias : 0);
          expect(r.logit, `${via}: ${r.key}`).toBeCloseTo(logit, 10);
          if (siglip) expect(r.probability, `${via}: ${r.key}`).toBeCloseTo(1 / (1 + Math.exp(-logit)), 12);
          else expect(r).not.toHaveProperty("probability");
        }
      }
    },
  );
});

describe("answers and refusals", () => {
  test("the image route serves an indexed key's bytes, and nothing else", async () => {
    const ok = await SELF.fetch(`http://edgevit.test/v1/search/image?model=${NAME}&key=photos/cat.jpg`);
    expect(ok.status).toBe(200);
    expect(ok.headers.get("x-content-type-options")).toBe("nosniff");
    expect(new Uint8Array(await ok.arrayBuffer())).toEqual(new Uint8Array(cat));
    await env.IMAGES.put("private/not-indexed.jpg", cat);
    const refused = await SELF.fetch(`http://edgevit.test/v1/search/image?model=${NAME}&key=private/not-indexed.jpg`);
    expect(refused.status).toBe(404);
    expect((await refused.json<any>()).error.message).toMatch(
      /no image "private\/not-indexed.jpg" in the search index/,
    );
    const post = await SELF.fetch(`http://edgevit.test/v1/search/image?model=${NAME}&key=x`, { method: "POST" });
    expect(post.status).toBe(405);
    await post.body?.cancel();
  });

  test("an empty index answers 200, no results and a sentence saying why", async () => {
    const response = await SELF.fetch(searchRequest({ query: QUERY, model: "search-empty" }));
    expect(response.status).toBe(200);
    const body = await response.json<any>();
    expect(body).toEqual({
      model: "search-empty",
      results: [],
      message: expect.stringMatching(/no image has been embedded/),
    });
  });

  test.each([
    [{ k: 3 }, /query must be a non-empty string/],
    [{ query: "   " }, /query must be a non-empty string/],
    [{ query: "x".repeat(1025) }, /limit of 1024/],
    [{ query: "a cat", k: 0 }, /k must be an integer from 1 to 20/],
    [{ query: "a cat", k: 21 }, /k must be an integer from 1 to 20/],
    [{ query: "a cat", k: 2.5 }, /k must be an integer from 1 to 20/],
    [{ query: "a cat", model: "search-image-only" }, /no text tower/],
  ])("%j is refused with a sentence", async (body, message) => {
    const response = await SELF.fetch(searchRequest({ model: NAME, ...body }));
    expect(response.status).toBe(400);
    const error = (await response.json<any>()).error;
    expect(error.code).toBe("bad_parameter");
    expect(error.message).toMatch(message);
  });

  test("a body that is not JSON is refused", async () => {
    const text = await SELF.fetch(
      new Request("http://edgevit.test/v1/search", {
        method: "POST",
        body: "a cat",
        headers: { "content-type": "text/plain" },
      }),
    );
    expect(text.status).toBe(415);
    await text.body?.cancel();
    const broken = await SELF.fetch(
      new Request("http://edgevit.test/v1/search", {
        method: "POST",
        body: "{",
        headers: { "content-type": "application/json" },
      }),
    );
    expect(broken.status).toBe(400);
    await broken.body?.cancel();
  });

  test("RPC search answers what the route answers; a refusal carries its code", async () => {
    const viaCaller = async (query: string, options: object) => {
      const url = `http://caller.test/search?options=${encodeURIComponent(JSON.stringify(options))}`;
      return (await env.CALLER.fetch(url, { method: "POST", body: JSON.stringify(query) })).json<any>();
    };
    const http = await (await SELF.fetch(searchRequest({ query: QUERY, k: 3, model: NAME }))).json<any>();
    expect((await viaCaller(QUERY, { model: NAME, k: 3 })).result).toEqual(http);
    const refused = await viaCaller(QUERY, { model: NAME, k: 99 });
    expect(refused.error).toMatchObject({ code: "bad_parameter" });
  });
});
