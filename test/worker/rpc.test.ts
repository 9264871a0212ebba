// The RPC entrypoint from a second Worker (test/worker/caller/index.js, bound to the `Edgevit`
// entrypoint as another Worker's wrangler.toml would bind it). The reference for each answer is the
// same image through the HTTP route: RPC must answer the same object, and refuse with the same code.

import { beforeAll, expect, test } from "vitest";
import { env, SELF } from "cloudflare:test";
import cat from "../fixtures/images/cat-baseline-420.jpg";
import random from "../fixtures/images/invalid-random-bytes.jpg";
import { jpegRequest, randomBundle, SMALL_CONFIG, storedPng } from "./helpers.ts";
import { errorCode } from "../../worker/types.ts";

const NAME = "rpc-vit";

beforeAll(async () => {
  await env.MODELS.put(`${NAME}.evit`, randomBundle(NAME, 31));
});

async function viaCaller(path: string, body: BodyInit | null, options: object = {}): Promise<any> {
  const url = `http://caller.test${path}?options=${encodeURIComponent(JSON.stringify(options))}`;
  const response = await env.CALLER.fetch(url, { method: body === null ? "GET" : "POST", body });
  return response.json();
}

async function viaHttp(path: string, body: ArrayBuffer): Promise<any> {
  return (await SELF.fetch(jpegRequest(path, body))).json();
}

test("classify over a service binding answers what POST /v1/classify answers", async () => {
  const http = await viaHttp(`/v1/classify?model=${NAME}&top_k=3&include=logits`, cat);
  for (const path of ["/classify", "/classify-buffer", "/classify-stream"]) {
    const { result, error } = await viaCaller(path, cat, { model: NAME, topK: 3, logits: true });
    expect(error).toBeUndefined();
    expect(result).toEqual(http);
  }
  const { result } = await viaCaller("/classify", cat, { model: NAME, topK: 3, logits: true });
  expect(result.model).toBe(NAME);
  expect(result.version).toMatch(/^[0-9a-f]{8}$/);
  expect(result.predictions).toHaveLength(3);
  expect(result.logits).toHaveLength(SMALL_CONFIG.classes);
});

test("embed and hiddenStates answer as their routes do", async () => {
  const embedHttp = await viaHttp(`/v1/embed?model=${NAME}&pool=mean&normalize=true`, cat);
  const embed = await viaCaller("/embed", cat, { model: NAME, pool: "mean", normalize: true });
  expect(embed.result).toEqual(embedHttp);

  const statesHttp = await viaHttp(`/v1/hidden_states?model=${NAME}&layer=1`, cat);
  const states = await viaCaller("/hidden-states", cat, { model: NAME, layer: 1 });
  expect(states.result).toEqual(statesHttp);
});

test("attentions answers as POST /v1/attentions does, and refuses a layer the model has not", async () => {
  const http = await viaHttp(`/v1/attentions?model=${NAME}&layer=2`, cat);
  const rpc = await viaCaller("/attentions", cat, { model: NAME, layer: 2 });
  expect(rpc.error).toBeUndefined();
  expect(rpc.result).toEqual(http);
  expect(rpc.result.attentions).toHaveLength(SMALL_CONFIG.heads);
  const past = await viaCaller("/attentions", cat, { model: NAME, layer: SMALL_CONFIG.layers + 1 });
  expect(errorCode(new Error(past.error.message))).toBe("bad_parameter");
});

test("models() answers the /v1/models object", async () => {
  await viaCaller("/classify", cat, { model: NAME });
  const { result } = await viaCaller("/models", null);
  const http = await (await SELF.fetch("http://edgevit.test/v1/models")).json();
  expect(result).toEqual(http);
  expect(result.loaded.some((m: { name: string }) => m.name === NAME)).toBe(true);
});

test("refusals reach the caller with the HTTP route's stable code", async () => {
  const cases: [string, BodyInit, object, string][] = [
    ["/classify", random, { model: NAME }, "invalid_image"],
    ["/classify", cat, { model: "no-such-model" }, "model_not_found"],
    ["/classify", cat, { model: NAME, topK: 0 }, "bad_parameter"],
    ["/classify", cat, { model: "../etc" }, "bad_parameter"],
    ["/embed", cat, { model: NAME, pool: "max" }, "bad_parameter"],
    ["/hidden-states", cat, { model: NAME }, "bad_parameter"],
    ["/hidden-states", cat, { model: NAME, layer: SMALL_CONFIG.layers + 1 }, "bad_parameter"],
  ];
  for (const [path, body, options, code] of cases) {
    const { result, error } = await viaCaller(path, body, options);
    expect(result).toBeUndefined();
    expect(error.code).toBe(code);
    expect(errorCode(new Error(error.message))).toBe(code);
  }
  // The same code over HTTP for the same input.
  const http = await SELF.fetch(jpegRequest(`/v1/classify?model=${NAME}`, random));
  expect(((await http.json()) as any).error.code).toBe("invalid_image");
});

test("a stream longer than MAX_BODY_BYTES is refused as payload_too_large while the decoder reads it", async () => {
  // A PNG whose pixels are stored: the decoder reads it to its end, 17.3 MB for 2500x2300.
  const big = storedPng(2500, 2300);
  expect(big.length).toBeGreaterThan(Number(env.MAX_BODY_BYTES));
  const { error } = await viaCaller("/classify-stream", big, { model: NAME });
  expect(errorCode(new Error(error.message))).toBe("payload_too_large");
});

test("bytes after the image's end are not read: a stream whose image ends within the limit is answered", async () => {
  const long = new Uint8Array(Number(env.MAX_BODY_BYTES) + 1);
  long.set(new Uint8Array(cat));
  const { result } = await viaCaller("/classify-stream", long, { model: NAME });
  expect(result).toEqual((await viaCaller("/classify", cat, { model: NAME })).result);
});

test("the binding's fetch serves the HTTP routes, as the Worker's own fetch does", async () => {
  const through = (path: string, init: RequestInit = {}) =>
    env.CALLER.fetch(`http://caller.test/fetch?path=${encodeURIComponent(path)}`, init);
  const health = await through("/healthz");
  expect(health.status).toBe(200);
  expect(await health.json()).toEqual({ status: "ok" });

  const path = `/v1/classify?model=${NAME}&top_k=3&include=logits`;
  const viaBinding = await through(path, { method: "POST", body: cat, headers: { "content-type": "image/jpeg" } });
  expect(viaBinding.status).toBe(200);
  expect(viaBinding.headers.get("x-edgevit-model")).toBe(NAME);
  expect(await viaBinding.json()).toEqual(await viaHttp(path, cat));

  const missing = await through("/v1/nothing");
  expect(missing.status).toBe(404);
  expect(((await missing.json()) as any).error.code).toBe("not_found");
});
