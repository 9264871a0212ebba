// /openapi.json against the Worker's real answers: every route in the router is described, and each
// route's real answer (success and refusal) validates against the schema the document gives for its
// status and content type. The validator is written here for the subset the document uses.

import { beforeAll, expect, test } from "vitest";
import { env, SELF } from "cloudflare:test";
import cat from "../fixtures/images/cat-baseline-420.jpg";
import random from "../fixtures/images/invalid-random-bytes.jpg";
import { MODEL_PREFIX, modelRoutes, routes } from "../../worker/api.ts";
import { call, jpegRequest, randomBundle, SMALL_CONFIG } from "./helpers.ts";
import { twoTowerBundle } from "./bundles.ts";

const NAME = "openapi-vit";
const CLIP = "openapi-clip";
const VLM = "openapi-vlm";
type Schema = Record<string, any>;
let doc: any;

beforeAll(async () => {
  await env.MODELS.put(`${NAME}.evit`, randomBundle(NAME, 91));
  const clip = {
    ...SMALL_CONFIG,
    classes: 0,
    family: "clip" as const,
    preLayernorm: true,
    finalNorm: "pooled" as const,
    projection: 12,
  };
  await env.MODELS.put(`${CLIP}.evit`, twoTowerBundle(CLIP, 92, clip, 12));
  const connector = { ...SMALL_CONFIG, classes: 0, classToken: false, pooling: "none", lmDim: 16 } as const;
  await env.MODELS.put(`${VLM}.evit`, randomBundle(VLM, 92, { ...connector, connector: "idefics3", scaleFactor: 2 }));
  await SELF.fetch(jpegRequest(`/v1/classify?model=${NAME}`, cat)); // so /v1/models lists a loaded model
  doc = await (await SELF.fetch("http://edgevit.test/openapi.json")).json();
});

// The problems of `value` against `schema` (empty when it conforms): type, enum, properties, required,
// additionalProperties: false, items, $ref into components.
function validate(value: unknown, schema: Schema, at = "$"): string[] {
  if (schema.$ref) {
    const name = (schema.$ref as string).replace("#/components/schemas/", "");
    const target = doc.components.schemas[name];
    return target ? validate(value, target, at) : [`${at}: unknown $ref ${schema.$ref}`];
  }
  const problems: string[] = [];
  const kind = Array.isArray(value) ? "array" : value === null ? "null" : typeof value;
  if (schema.type) {
    const types: string[] = Array.isArray(schema.type) ? schema.type : [schema.type];
    const ok = types.some((type) => (type === "integer" ? Number.isInteger(value) : type === kind));
    if (!ok) return [`${at}: expected ${types.join(" or ")}, got ${kind}`];
  }
  if (schema.enum && !schema.enum.includes(value)) problems.push(`${at}: ${JSON.stringify(value)} not in enum`);
  if (kind === "object") {
    const object = value as Record<string, unknown>;
    for (const key of schema.required ?? []) if (!(key in object)) problems.push(`${at}: missing ${key}`);
    for (const [key, v] of Object.entries(object)) {
      const property = schema.properties?.[key];
      if (property) problems.push(...validate(v, property, `${at}.${key}`));
      else if (schema.additionalProperties === false) problems.push(`${at}: unexpected property ${key}`);
    }
  }
  if (kind === "array" && schema.items) {
    (value as unknown[]).forEach((item, i) => {
      problems.push(...validate(item, schema.items, `${at}[${i}]`));
    });
  }
  return problems;
}

test("the validator rejects what it should", () => {
  const schema = {
    type: "object",
    properties: { n: { type: "integer" }, e: { enum: ["a"] }, xs: { type: "array", items: { type: "number" } } },
    required: ["n"],
    additionalProperties: false,
  };
  expect(validate({ n: 1, e: "a", xs: [1.5] }, schema)).toEqual([]);
  expect(validate({ n: 1.5 }, schema)).toEqual(["$.n: expected integer, got number"]);
  expect(validate({ e: "b" }, schema)).toEqual(["$: missing n", '$.e: "b" not in enum']);
  expect(validate({ n: 1, xs: ["x"], z: 0 }, schema)).toEqual([
    "$.xs[0]: expected number, got string",
    "$: unexpected property z",
  ]);
  const either = { type: ["array", "null"], items: { type: "integer" } };
  expect(validate(null, either)).toEqual([]);
  expect(validate([1], either)).toEqual([]);
  expect(validate("x", either)).toEqual(["$: expected array or null, got string"]);
});

test("every route and method the router serves is described", () => {
  const served = Object.entries({ ...routes, [`${MODEL_PREFIX}{name}`]: modelRoutes }).flatMap(([path, methods]) =>
    Object.keys(methods).map((m) => `${m} ${path}`),
  );
  const described = Object.entries(doc.paths).flatMap(([path, ops]) =>
    Object.keys(ops as object).map((m) => `${m.toUpperCase()} ${path}`),
  );
  expect(described.sort()).toEqual(served.sort());
  expect(doc.openapi).toBe("3.1.0");
});

// Real requests for every route: [method, path, body, expected status].
const cases: [string, string, ArrayBuffer | null, number][] = [
  ["get", "/healthz", null, 200],
  ["get", "/openapi.json", null, 200],
  ["get", "/v1/models", null, 200],
  ["post", "/v1/models", cat, 413], // an import request is a few bytes of JSON
  ["post", `/v1/classify?model=${NAME}&include=logits`, cat, 200],
  ["post", `/v1/classify?model=${NAME}`, random, 400],
  ["post", "/v1/classify?model=missing-model", cat, 404],
  ["post", `/v1/embed?model=${NAME}&normalize=true`, cat, 200],
  ["post", `/v1/embed?model=${NAME}&pool=max`, cat, 400],
  ["post", `/v1/hidden_states?model=${NAME}&layer=1`, cat, 200],
  ["post", `/v1/hidden_states?model=${NAME}`, cat, 400],
  ["post", `/v1/pca?model=${NAME}&size=32`, cat, 200],
  ["post", `/v1/pca?model=${NAME}`, random, 400],
  ["post", `/v1/pca?model=${NAME}&layer=all&size=32`, cat, 200],
  ["post", `/v1/attentions?model=${NAME}&layer=1`, cat, 200],
  ["post", `/v1/attentions?model=${NAME}`, cat, 400],
  ["post", `/v1/attention_map?model=${NAME}&mode=rollout&size=32`, cat, 200],
  ["post", `/v1/attention_map?model=${NAME}&head=x`, cat, 400],
  ["post", `/v1/see?model=${NAME}&size=32`, cat, 200],
  ["post", `/v1/see?model=missing-model`, cat, 404],
  ["post", `/v1/zero_shot?model=${CLIP}&labels=cat&labels=dog`, cat, 200],
  ["post", `/v1/zero_shot?model=${NAME}&labels=cat`, cat, 400],
  ["post", `/v1/image_tokens?model=${VLM}&split=false`, cat, 200],
  ["post", `/v1/image_tokens?model=${NAME}`, cat, 400],
];

// The text routes, with their JSON bodies.
test.each([
  ["/v1/embed_text", CLIP, { texts: ["a cat"] }, 200],
  ["/v1/tokenize", CLIP, { texts: ["a cat"] }, 200],
  ["/v1/embed_text", CLIP, { texts: [] }, 400],
  ["/v1/tokenize", NAME, { texts: ["a cat"] }, 400],
  ["/v1/search", CLIP, { query: "a cat", k: 3 }, 200],
  ["/v1/search", CLIP, { query: "a cat", k: 0 }, 400],
])("post %s (model %s) answers as documented (%#)", async (path, model, body, status) => {
  const request = new Request(`http://edgevit.test${path}?model=${model}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  await documented(await SELF.fetch(request), path, "post", status);
});

test.each(cases)("%s %s answers as documented (%#)", async (method, path, body, status) => {
  const response =
    body === null ? await SELF.fetch(`http://edgevit.test${path}`) : await SELF.fetch(jpegRequest(path, body));
  expect(response.status).toBe(status);
  const operation = doc.paths[path.split("?")[0]][method];
  const documented = operation.responses[String(status)];
  expect(documented, `status ${status} is documented`).toBeDefined();
  const type = response.headers.get("content-type")!.split(";")[0];
  const content = documented.content[type];
  expect(content, `${type} is documented for ${status}`).toBeDefined();
  if (type === "application/json") expect(validate(await response.json(), content.schema)).toEqual([]);
  else expect((await response.arrayBuffer()).byteLength).toBeGreaterThan(0);
  for (const header of Object.keys(documented.headers ?? {})) expect(response.headers.has(header), header).toBe(true);
});

// The answer as documented: its status and content type are described, and a JSON body validates.
async function documented(response: Response, path: string, method: string, status: number): Promise<void> {
  expect(response.status).toBe(status);
  const entry = doc.paths[path][method].responses[String(status)];
  expect(entry, `${status} is documented for ${method} ${path}`).toBeDefined();
  const type = response.headers.get("content-type")!.split(";")[0];
  expect(entry.content[type], `${type} is documented for ${status}`).toBeDefined();
  expect(validate(await response.json(), entry.content[type].schema)).toEqual([]);
}

test("every /v1 route documents the 401 it answers with API_TOKEN set, and the bearer scheme", async () => {
  expect(doc.components.securitySchemes.bearer).toEqual(expect.objectContaining({ type: "http", scheme: "bearer" }));
  expect(doc.security).toEqual([{}, { bearer: [] }]);
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const method of Object.keys(ops as object)) {
      const request = new Request(`http://edgevit.test${path}?model=${NAME}`, {
        method: method.toUpperCase(),
        ...(method === "post" ? { body: cat, headers: { "content-type": "image/jpeg" } } : {}),
      });
      const response = await call(request, { API_TOKEN: "openapi-test-token" });
      if (path.startsWith("/v1/")) await documented(response, path, method, 401);
      else {
        expect(doc.paths[path][method].security).toEqual([]);
        expect(response.status).toBe(200);
      }
    }
  }
});

test("every route documents the 405 it answers to a method it does not serve", async () => {
  for (const [path, ops] of Object.entries(doc.paths)) {
    const method = "get" in (ops as object) ? ("post" in (ops as object) ? "put" : "post") : "get";
    const served = Object.keys(ops as object)[0];
    const response = await SELF.fetch(`http://edgevit.test${path.replace("{name}", "some-model")}`, {
      method: method.toUpperCase(),
      body: method === "get" ? null : "x",
    });
    expect(response.status).toBe(405);
    await documented(response, path, served, 405);
  }
});
