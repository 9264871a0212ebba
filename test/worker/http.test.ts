// HTTP manners: CORS for pages on other origins (preflight, allowed and refused origins, Vary), HEAD
// wherever GET is, Server-Timing, and /v1/embed?normalize=true (unit length, computed here from the raw one).

import { beforeAll, describe, expect, test } from "vitest";
import { env } from "cloudflare:test";
import cat from "../fixtures/images/cat-baseline-420.jpg";
import { call, jpegRequest, randomBundle } from "./helpers.ts";

const NAME = "manners-vit";

beforeAll(async () => {
  await env.MODELS.put(`${NAME}.evit`, randomBundle(NAME, 81));
});

const LISTED = { ALLOWED_ORIGINS: "https://app.example, https://other.example" };

describe("CORS", () => {
  test("a preflight from an allowed origin is answered with what the route accepts", async () => {
    const response = await call(
      new Request("http://edgevit.test/v1/classify", {
        method: "OPTIONS",
        headers: {
          origin: "https://app.example",
          "access-control-request-method": "POST",
          "access-control-request-headers": "content-type",
        },
      }),
      LISTED,
    );
    expect(response.status).toBe(204);
    expect(response.headers.get("access-control-allow-origin")).toBe("https://app.example");
    expect(response.headers.get("access-control-allow-methods")).toBe("POST, OPTIONS");
    expect(response.headers.get("access-control-allow-headers")).toContain("content-type");
    expect(response.headers.get("vary")).toBe("Origin");
  });

  test("an answer to an allowed origin carries the origin and exposes the version and timing headers", async () => {
    const response = await call(
      jpegRequest(`/v1/classify?model=${NAME}`, cat, "image/jpeg", { origin: "https://other.example" }),
      LISTED,
    );
    expect(response.status).toBe(200);
    expect(response.headers.get("access-control-allow-origin")).toBe("https://other.example");
    expect(response.headers.get("vary")).toContain("Origin");
    const exposed = response.headers.get("access-control-expose-headers")!.split(", ");
    expect(exposed).toEqual(expect.arrayContaining(["server-timing", "x-edgevit-model-version"]));
  });

  test("another origin gets no allow-origin header, on the preflight and on the answer", async () => {
    const headers = { origin: "https://evil.example", "access-control-request-method": "POST" };
    const preflight = await call(
      new Request("http://edgevit.test/v1/classify", { method: "OPTIONS", headers }),
      LISTED,
    );
    expect(preflight.headers.get("access-control-allow-origin")).toBeNull();
    const answer = await call(new Request("http://edgevit.test/v1/models", { headers }), LISTED);
    expect(answer.headers.get("access-control-allow-origin")).toBeNull();
    expect(answer.headers.get("vary")).toContain("Origin");
  });

  test('"*" allows every origin; errors carry the header too, so the page can read them', async () => {
    const response = await call(
      jpegRequest(`/v1/classify?model=${NAME}&top_k=0`, cat, "image/jpeg", { origin: "https://any.example" }),
      { ALLOWED_ORIGINS: "*" },
    );
    expect(response.status).toBe(400);
    expect(response.headers.get("access-control-allow-origin")).toBe("*");
  });
});

describe("HEAD", () => {
  test.each(["/healthz", "/v1/models", "/openapi.json"])("%s: the GET status and headers, no body", async (path) => {
    const get = await call(new Request(`http://edgevit.test${path}`));
    const head = await call(new Request(`http://edgevit.test${path}`, { method: "HEAD" }));
    expect(head.status).toBe(get.status);
    expect(head.headers.get("content-type")).toBe(get.headers.get("content-type"));
    expect(await head.text()).toBe("");
  });

  test("a POST-only route refuses HEAD, without a body", async () => {
    const head = await call(new Request("http://edgevit.test/v1/classify", { method: "HEAD" }));
    expect(head.status).toBe(405);
    expect(head.headers.get("allow")).toBe("POST, OPTIONS");
    expect(await head.text()).toBe("");
  });

  test.each([
    ["an unknown path: 404", "/v1/nothing", {}, 404],
    ["an API route without its token: 401", "/v1/models", { API_TOKEN: "t0ken" }, 401],
  ])("%s, the status and headers without the JSON body", async (_, path, overrides, status) => {
    const get = await call(new Request(`http://edgevit.test${path}`), overrides);
    expect(get.status).toBe(status);
    expect((await get.json<any>()).error.code).toBeTypeOf("string");
    const head = await call(new Request(`http://edgevit.test${path}`, { method: "HEAD" }), overrides);
    expect(head.status).toBe(status);
    expect(head.headers.get("content-type")).toBe(get.headers.get("content-type"));
    expect(await head.text()).toBe("");
  });
});

test("Server-Timing lists the phases; those measured have durations of at least 0", async () => {
  const response = await call(jpegRequest(`/v1/classify?model=${NAME}`, cat));
  const entries = response.headers
    .get("server-timing")!
    .split(",")
    .map((e) => e.trim().split(";")[0]);
  expect(entries).toEqual(["body", "model", "decode", "preprocess", "forward"]);
  for (const entry of response.headers.get("server-timing")!.split(",")) {
    expect(entry.trim()).toMatch(/^[a-z]+(;dur=\d+(\.\d+)?|;desc="[^"]+")$/);
  }
});

test("normalize=true gives the raw embedding scaled to unit L2 length", async () => {
  const raw: any = await (await call(jpegRequest(`/v1/embed?model=${NAME}&pool=mean`, cat))).json();
  const unit: any = await (await call(jpegRequest(`/v1/embed?model=${NAME}&pool=mean&normalize=true`, cat))).json();
  expect(raw.normalized).toBe(false);
  expect(unit.normalized).toBe(true);
  const norm = Math.sqrt(raw.embedding.reduce((s: number, x: number) => s + x * x, 0));
  expect(norm).not.toBeCloseTo(1, 2);
  unit.embedding.forEach((x: number, i: number) => {
    expect(x).toBeCloseTo(raw.embedding[i] / norm, 6);
  });
  const bad = await call(jpegRequest(`/v1/embed?model=${NAME}&normalize=yes`, cat));
  expect(bad.status).toBe(400);
});
