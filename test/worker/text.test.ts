// The text routes over HTTP and RPC with a CLIP-shaped two-tower bundle (random weights, the real writer, a
// text section with a small BPE tokenizer): zero-shot scores highest first and summing to 1, a label set
// embedded once and then taken from the isolate, or from R2 where another isolate stored it; text
// embeddings and ids; every refusal a 400 with a sentence; the text passes over the TEXT service binding
// (the text Worker's entrypoint) and, without it, in this isolate, with the same numbers; the label sets an
// isolate keeps counted in its memory ledger; the text Worker (SERVES = "text") answering its routes only.
import { env, SELF } from "cloudflare:test";
import { beforeAll, describe, expect, test } from "vitest";
import cat from "../fixtures/images/cat-baseline-420.jpg";
import { fillTemplate } from "../../core/answers/zeroshot.ts";
import { call, jpegRequest, randomBundle } from "./helpers.ts";
import { SMALL_CLIP_CONFIG, smallClipTokenizer, twoTowerBundle } from "./bundles.ts";
import { labelsKey, TEXT_LISTING_TIMEOUT_MS } from "../../worker/text.ts";
import { MODEL_PREFIX, routes, TEXT_ROUTES } from "../../worker/api.ts";
import { ledgerOf } from "../../worker/memory.ts";
import { getTextModel } from "../../worker/models.ts";
import { tokenizerHeapBytes } from "../../core/engine/text.ts";

const CLIP = SMALL_CLIP_CONFIG;
const NAME = "zs-clip";

beforeAll(async () => {
  await env.MODELS.put(`${NAME}.evit`, twoTowerBundle(NAME, 5, CLIP, 12));
  await env.MODELS.put("zs-image-only.evit", randomBundle("zs-image-only", 5, CLIP));
});

test("a two-tower bundle larger than the model budget loads its image tower when that tower's plan fits", async () => {
  const wide = twoTowerBundle("zs-wide", 5, CLIP, 12, { dim: 256, heads: 4, hidden: 1024, layers: 4 });
  await env.MODELS.put("zs-wide.evit", wide);
  await env.MODELS.put("zs-wide-2.evit", wide);
  // The image tower's memory, from a load under the default budget.
  expect((await call(jpegRequest("/v1/embed?model=zs-wide", cat))).status).toBe(200);
  const listing = await (await call(new Request("http://edgevit.test/v1/models"))).json<any>();
  const image = listing.loaded.find((m: { name: string }) => m.name === "zs-wide").memoryBytes;
  // A budget that holds the image tower but not the object: the text section after the image payload is
  // never read by this load, so the object's size is not what counts.
  const budget = image + 256 * 1024;
  expect(wide.length).toBeGreaterThan(budget);
  const response = await call(jpegRequest("/v1/embed?model=zs-wide-2", cat), {
    MODEL_MEMORY_BUDGET_MB: budget / 2 ** 20,
  });
  expect(response.status).toBe(200);
});

const zeroShot = (query: string, viaText = true) => {
  const request = jpegRequest(`/v1/zero_shot?model=${NAME}&${query}`, cat);
  return viaText ? SELF.fetch(request) : call(request, { TEXT: undefined });
};
const texts = (path: string, body: unknown, model = NAME, viaText = true) => {
  const request = new Request(`http://edgevit.test${path}?model=${model}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return viaText ? SELF.fetch(request) : call(request, { TEXT: undefined });
};

async function refusal(response: Response): Promise<string> {
  expect(response.status).toBe(400);
  const body = await response.json<any>();
  expect(body.error.code).toBe("bad_parameter");
  return body.error.message;
}

describe("zero-shot", () => {
  test("scores highest first, summing to 1 (CLIP's softmax); the label set embedded once, then kept", async () => {
    const query = "labels=cat&labels=dog&labels=a%20red%20bicycle&template=a%20photo%20of%20a%20{}";
    const first = await zeroShot(query);
    expect(first.status).toBe(200);
    expect(first.headers.get("x-edgevit-labels")).toBe("computed");
    const body = await first.json<any>();
    expect(body).toMatchObject({ model: NAME, image: { format: "jpeg" } });
    expect(body.scores.map((s: any) => s.label).sort()).toEqual(["a red bicycle", "cat", "dog"]);
    const scores = body.scores.map((s: any) => s.score);
    expect(scores).toEqual([...scores].sort((a, b) => b - a));
    expect(scores.reduce((a: number, b: number) => a + b, 0)).toBeCloseTo(1, 6);
    // no text pass the second time, in this isolate or another (R2 holds the label set)
    const second = await zeroShot(query);
    expect(second.headers.get("x-edgevit-labels")).toBe("isolate");
    expect((await second.json<any>()).scores).toEqual(body.scores);
    const listed = await env.MODELS.list({ prefix: `${NAME}.evit.labels/` });
    expect(listed.objects).toHaveLength(1);
    // without the TEXT binding the text pass runs here, with the same numbers (another template: computed)
    const here = await zeroShot(query.replace("a%20photo%20of%20a", "an%20image%20of%20a"), false);
    expect(here.headers.get("x-edgevit-labels")).toBe("computed");
  });

  test("a label set another isolate stored in R2 is read from there, not computed", async () => {
    const labels = ["cat", "dog"];
    const template = "a picture of a {}";
    const embedded = await (
      await texts("/v1/embed_text", { texts: labels.map((l) => fillTemplate(template, l)) })
    ).json<any>();
    const all = Float32Array.from(embedded.embeddings.flat());
    const hashBytes = await crypto.subtle.digest(
      "SHA-256",
      new TextEncoder().encode(JSON.stringify([template, labels])),
    );
    const hash = [...new Uint8Array(hashBytes)].map((b) => b.toString(16).padStart(2, "0")).join("");
    await env.MODELS.put(labelsKey(NAME, embedded.version, hash), all);
    const response = await zeroShot(`labels=cat&labels=dog&template=${encodeURIComponent(template)}`);
    expect(response.status).toBe(200);
    expect(response.headers.get("x-edgevit-labels")).toBe("r2");
  });

  test("a label set the isolate keeps is counted in its memory ledger, and only once", async () => {
    const ledger = ledgerOf(env);
    const before = ledger.state().cacheBytes;
    const query = "labels=ledger%20one&labels=ledger%20two&labels=ledger%20three";
    const first = await zeroShot(query, false);
    expect(first.headers.get("x-edgevit-labels")).toBe("computed");
    // three labels of CLIP's 12-float projection; the request's own reservation ended with it
    expect(ledger.state()).toMatchObject({ cacheBytes: before + 3 * 12 * 4, reservedBytes: 0 });
    const again = await zeroShot(query, false);
    expect(again.headers.get("x-edgevit-labels")).toBe("isolate");
    expect(ledger.state().cacheBytes).toBe(before + 3 * 12 * 4);
  });

  test("labels and template in a multipart form before the image; the pipeline's default template", async () => {
    const post = (form: FormData) =>
      SELF.fetch(`http://edgevit.test/v1/zero_shot?model=${NAME}`, { method: "POST", body: form });
    const image = new File([cat], "cat.jpg", { type: "image/jpeg" });
    const form = new FormData();
    form.append("labels", JSON.stringify(["cat", "dog"]));
    form.append("image", image);
    const response = await post(form);
    expect(response.status).toBe(200);
    expect((await response.json<any>()).scores).toHaveLength(2);
    // a template field: the same labels in another template are another label set
    const templated = new FormData();
    templated.append("template", "a blurry photo of a {}");
    templated.append("labels", JSON.stringify(["cat", "dog"]));
    templated.append("image", image);
    const again = await post(templated);
    expect(again.status).toBe(200);
    expect(again.headers.get("x-edgevit-labels")).toBe("computed");
    // the form is read no further than the image: labels after it are not seen
    const late = new FormData();
    late.append("image", image);
    late.append("labels", JSON.stringify(["cat", "dog"]));
    expect(await refusal(await post(late))).toMatch(/a JSON array in a form field before the image/);
    // text fields are bounded
    const long = new FormData();
    long.append("notes", "x".repeat(300 * 1024));
    long.append("image", image);
    expect(await refusal(await post(long))).toMatch(/text fields before the image are over 262144 bytes/);
  });

  test("400s: no labels, too many, twice the same, a template without {}, a model without a text tower", async () => {
    expect(await refusal(await zeroShot(""))).toMatch(/labels are required/);
    const many = Array.from({ length: 257 }, (_, i) => `labels=l${i}`).join("&");
    expect(await refusal(await zeroShot(many))).toMatch(/257 labels are more than the limit of 256/);
    expect(await refusal(await zeroShot("labels=cat&labels=cat"))).toMatch(/"cat" is given twice/);
    expect(await refusal(await zeroShot("labels=cat&template=a%20photo"))).toMatch(/template must hold \{\}/);
    expect(await refusal(await zeroShot("labels=cat&template={}%20{}"))).toMatch(/exactly once/);
    const imageOnly = await SELF.fetch(jpegRequest("/v1/zero_shot?model=zs-image-only&labels=cat", cat));
    expect(await refusal(imageOnly)).toMatch(/has no text tower/);
  });
});

describe("text embeddings and ids", () => {
  test("/v1/embed_text: one embedding per text, unit length on request, the same with or without TEXT", async () => {
    const response = await texts("/v1/embed_text", { texts: ["a photo of a cat", "dog"], normalize: true });
    expect(response.status).toBe(200);
    const body = await response.json<any>();
    expect(body).toMatchObject({ model: NAME, dim: 12, normalized: true });
    expect(body.embeddings).toHaveLength(2);
    expect(Math.hypot(...body.embeddings[0])).toBeCloseTo(1, 5);
    const here = await (
      await texts("/v1/embed_text", { texts: ["a photo of a cat", "dog"], normalize: true }, NAME, false)
    ).json<any>();
    expect(here.embeddings).toEqual(body.embeddings);
  });

  test("/v1/tokenize: the bundle's tokenizer's ids and mask", async () => {
    const body = await (await texts("/v1/tokenize", { texts: ["a photo of a cat"] })).json<any>();
    const reference = smallClipTokenizer().encode(["a photo of a cat"]);
    expect(body.input_ids).toEqual([Array.from(reference.inputIds[0])]);
    expect(body.attention_mask).toEqual([Array.from(reference.attentionMask[0])]);
  });

  test("400s: no texts, too many, too long, not JSON; a model without a text tower", async () => {
    expect(await refusal(await texts("/v1/embed_text", {}))).toMatch(/texts must be a non-empty array/);
    expect(await refusal(await texts("/v1/embed_text", { texts: Array(257).fill("a") }))).toMatch(/limit of 256/);
    expect(await refusal(await texts("/v1/tokenize", { texts: ["a".repeat(1025)] }))).toMatch(/1025 characters/);
    expect(await refusal(await texts("/v1/embed_text", { texts: ["a"] }, "zs-image-only"))).toMatch(/no text tower/);
  });
});

describe("RPC", () => {
  async function viaCaller(path: string, body: BodyInit, options: object): Promise<any> {
    const url = `http://caller.test${path}?options=${encodeURIComponent(JSON.stringify(options))}`;
    return (await env.CALLER.fetch(url, { method: "POST", body })).json();
  }

  test("zeroShot, embedText and tokenize answer what the HTTP routes answer; refusals carry their code", async () => {
    const labels = ["cat", "dog", "bird"];
    const http = await (await zeroShot("labels=cat&labels=dog&labels=bird")).json<any>();
    expect((await viaCaller("/zero-shot", cat, { model: NAME, labels })).result).toEqual(http);
    const textsBody = JSON.stringify(["a photo of a cat"]);
    const embedded = await (await texts("/v1/embed_text", { texts: ["a photo of a cat"] })).json<any>();
    expect((await viaCaller("/embed-text", textsBody, { model: NAME })).result).toEqual(embedded);
    const ids = await (await texts("/v1/tokenize", { texts: ["a photo of a cat"] })).json<any>();
    expect((await viaCaller("/tokenize", textsBody, { model: NAME })).result).toEqual(ids);
    const refused = await viaCaller("/zero-shot", cat, { model: NAME, labels: [] });
    expect(refused.error).toMatchObject({
      code: "bad_parameter",
      message: expect.stringMatching(/^bad_parameter: labels are required/),
    });
  });
});

describe("GET /v1/models lists the text Worker's towers", () => {
  const listing = async (overrides: Partial<Env> = {}) => {
    const response = await call(new Request("http://edgevit.test/v1/models"), overrides);
    expect(response.status).toBe(200);
    return response.json<any>();
  };

  test("a tower the text Worker loaded for zero-shot or embed_text, with its measured wasm memory", async () => {
    await env.MODELS.put("zs-listed.evit", twoTowerBundle("zs-listed", 6, CLIP, 12));
    await env.MODELS.put("zs-listed-2.evit", twoTowerBundle("zs-listed-2", 7, CLIP, 12));
    const towers = async () => ((await listing()).text.loaded as { name: string }[]).map((m) => m.name);
    expect(await towers()).not.toContain("zs-listed");
    const zs = await SELF.fetch(jpegRequest("/v1/zero_shot?model=zs-listed&labels=cat&labels=dog", cat));
    expect(zs.status).toBe(200);
    const { text } = await listing();
    const tower = text.loaded.find((m: { name: string }) => m.name === "zs-listed");
    expect(tower.tower).toBe("text");
    const { model } = await getTextModel(env, "zs-listed");
    const memory = (model as unknown as { e: { memory: WebAssembly.Memory } }).e.memory;
    expect(tower.wasmBytes).toBe(memory.buffer.byteLength);
    // the text Worker's own GET /v1/models lists the same tower
    const own = await listing({ SERVES: "text" });
    expect(own.loaded).toContainEqual(tower);
    expect(own.text).toEqual({ loaded: null, reason: "this is the text Worker: its text towers are in loaded" });
    expect(await towers()).not.toContain("zs-listed-2");
    expect((await texts("/v1/embed_text", { texts: ["a dog"] }, "zs-listed-2")).status).toBe(200);
    expect(await towers()).toContain("zs-listed-2");
  });

  test("answers 200 with a reason when the TEXT binding is absent, throws or does not answer", async () => {
    expect((await listing({ TEXT: undefined })).text).toEqual({
      loaded: null,
      reason: "no TEXT binding: text towers load in this isolate and are in loaded",
    });
    const throwing = { loadedTowers: () => Promise.reject(new Error("the text Worker is down")) } as unknown as Fetcher;
    const thrown = await listing({ TEXT: throwing });
    expect(thrown.text).toEqual({
      loaded: null,
      reason: "the text Worker did not list its towers: the text Worker is down",
    });
    expect(thrown.models.length).toBeGreaterThan(0);
    // a text Worker deployed before it had the method
    const older = { embedText: () => Promise.reject(new Error("unused")) } as unknown as Fetcher;
    expect((await listing({ TEXT: older })).text.loaded).toBeNull();
    const hanging = { loadedTowers: () => new Promise(() => {}) } as unknown as Fetcher;
    expect((await listing({ TEXT: hanging })).text).toEqual({
      loaded: null,
      reason: `the text Worker did not list its towers: no answer within ${TEXT_LISTING_TIMEOUT_MS / 1000} s`,
    });
  });
});

describe('the text Worker (wrangler.text.toml, SERVES = "text")', () => {
  const TEXT_WORKER: Partial<Env> = { SERVES: "text" };
  // A TEXT binding that must not be called: the text Worker runs text passes itself.
  const unreachable = {
    embedText: () => Promise.reject(new Error("the text Worker called TEXT")),
    tokenize: () => Promise.reject(new Error("the text Worker called TEXT")),
  } as unknown as Fetcher;

  test("answers the text routes, running the text passes in its own isolate", async () => {
    expect([...TEXT_ROUTES].sort()).toEqual(["/healthz", "/v1/embed_text", "/v1/models", "/v1/tokenize"]);
    const request = (path: string) =>
      new Request(`http://edgevit.test${path}?model=${NAME}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ texts: ["a photo of a cat"] }),
      });
    const embedded = await call(request("/v1/embed_text"), { ...TEXT_WORKER, TEXT: unreachable });
    expect(embedded.status).toBe(200);
    const reference = await (await texts("/v1/embed_text", { texts: ["a photo of a cat"] })).json<any>();
    expect((await embedded.json<any>()).embeddings).toEqual(reference.embeddings);
    const ids = await call(request("/v1/tokenize"), { ...TEXT_WORKER, TEXT: unreachable });
    expect(ids.status).toBe(200);
    const health = await call(new Request("http://edgevit.test/healthz"), TEXT_WORKER);
    expect(await health.json()).toEqual({ status: "ok" });
  });

  test("lists its loaded text towers with their wasm memory as measured, read from R2 in bounded chunks", async () => {
    // a text section of 3 MiB (the first test's bundle)
    const embedded = await call(
      new Request(`http://edgevit.test/v1/embed_text?model=zs-wide`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ texts: ["a photo of a dog"] }),
      }),
      TEXT_WORKER,
    );
    expect(embedded.status).toBe(200);
    const listing = await (await call(new Request("http://edgevit.test/v1/models"), TEXT_WORKER)).json<any>();
    const tower = listing.loaded.find(
      (m: { name: string; tower?: string }) => m.name === "zs-wide" && m.tower === "text",
    );
    const { model } = await getTextModel(env, "zs-wide");
    const memory = (model as unknown as { e: { memory: WebAssembly.Memory } }).e.memory;
    expect(tower.wasmBytes).toBe(memory.buffer.byteLength);
    expect(tower.memoryBytes).toBe(tower.wasmBytes + tokenizerHeapBytes(model.section));
    // the section came through one reused 64 KiB BYOB buffer, never whole in JS
    expect(tower.largestLoadBufferBytes).toBe(64 * 1024);
    expect(model.section.length).toBeGreaterThan(64 * 1024);
    // imports are the main Worker's
    const post = await call(new Request("http://edgevit.test/v1/models", { method: "POST" }), TEXT_WORKER);
    expect(post.status).toBe(405);
    expect(post.headers.get("allow")).toBe("GET, HEAD, OPTIONS");
  });

  test("every other route is not found there, with a sentence naming the routes it serves", async () => {
    const others = [...Object.keys(routes).filter((path) => !TEXT_ROUTES.has(path)), `${MODEL_PREFIX}${NAME}`];
    expect(others).toEqual(expect.arrayContaining(["/v1/classify", "/v1/zero_shot", "/openapi.json"]));
    for (const path of others) {
      for (const method of ["GET", "POST"]) {
        const response = await call(
          new Request(`http://edgevit.test${path}?model=${NAME}&labels=cat`, {
            method,
            body: method === "POST" ? cat : undefined,
            headers: method === "POST" ? { "content-type": "image/jpeg" } : {},
          }),
          TEXT_WORKER,
        );
        expect(response.status, `${method} ${path}`).toBe(404);
        const body = await response.json<any>();
        expect(body.error.code).toBe("not_found");
        expect(body.error.message).toBe(
          `this Worker serves the text towers only (/healthz, /v1/embed_text, /v1/models, /v1/tokenize), not ${path}`,
        );
      }
    }
    // the same routes answer in the main Worker
    expect((await call(jpegRequest(`/v1/embed?model=${NAME}`, cat))).status).toBe(200);
  });
});
