// Optional access control (API_TOKEN) and client disconnects, inside workerd.

import { afterEach, describe, expect, test, vi } from "vitest";
import { env } from "cloudflare:test";
import cat from "../fixtures/images/cat-baseline-420.jpg";
import { call, countingBucket, jpegRequest, randomBundle } from "./helpers.ts";

const TOKEN = "s3cret-token-for-tests";
const locked: Partial<Env> = { API_TOKEN: TOKEN };
const get = (path: string, headers: HeadersInit = {}) =>
  call(new Request(`http://edgevit.test${path}`, { headers }), locked);

describe("with API_TOKEN set", () => {
  test("/healthz needs no token", async () => {
    expect((await get("/healthz")).status).toBe(200);
  });

  test("an API route without a token: 401 unauthorized with a Bearer challenge", async () => {
    const response = await get("/v1/models");
    expect(response.status).toBe(401);
    expect(response.headers.get("www-authenticate")).toBe('Bearer realm="edgevit"');
    const { error } = await response.json<any>();
    expect(error.code).toBe("unauthorized");
    expect(error.message).toMatch(/Authorization: Bearer <token>/);
  });

  test.each([
    ["a wrong token", `Bearer ${TOKEN}x`],
    ["a prefix of the token", `Bearer ${TOKEN.slice(0, -1)}`],
    ["another scheme", `Basic ${btoa(`user:${TOKEN}`)}`],
    ["an empty bearer", "Bearer "],
  ])("%s: 401", async (_, authorization) => {
    const response = await get("/v1/models", { authorization });
    expect(response.status).toBe(401);
    expect(response.headers.get("www-authenticate")).toMatch(/^Bearer realm="edgevit"/);
    expect((await response.json<any>()).error.code).toBe("unauthorized");
  });

  test("the right token passes, whatever the scheme's case", async () => {
    expect((await get("/v1/models", { authorization: `Bearer ${TOKEN}` })).status).toBe(200);
    expect((await get("/v1/models", { authorization: `bearer ${TOKEN}` })).status).toBe(200);
  });

  test("POST routes are refused before the body is read or a model is loaded", async () => {
    await env.MODELS.put("access-vit.evit", randomBundle("access-vit", 71));
    const { bucket, gets } = countingBucket(env.MODELS);
    // The image as a stream that counts how often the Worker pulls from it (highWaterMark 0: nothing is
    // pulled before someone reads).
    let pulls = 0;
    const body = new ReadableStream<Uint8Array>(
      {
        pull(controller) {
          pulls++;
          controller.enqueue(new Uint8Array(cat));
          controller.close();
        },
      },
      { highWaterMark: 0 },
    );
    const denied = await call(
      new Request("http://edgevit.test/v1/classify?model=access-vit", {
        method: "POST",
        body,
        headers: { "content-type": "image/jpeg" },
        duplex: "half",
      } as RequestInit),
      { ...locked, MODELS: bucket },
    );
    expect(denied.status).toBe(401);
    expect(pulls).toBe(0);
    expect(gets.get("access-vit.evit")).toBeUndefined();
    const allowed = await call(
      jpegRequest("/v1/classify?model=access-vit", cat, "image/jpeg", { authorization: `Bearer ${TOKEN}` }),
      { ...locked, MODELS: bucket },
    );
    expect(allowed.status).toBe(200);
    // The counters see what passes: the allowed request streamed the model from the bucket.
    expect(gets.get("access-vit.evit")).toBe(1);
  });

  test("unknown /v1 routes are 401 too (the API's shape is not disclosed); GET of other paths is public", async () => {
    expect((await get("/v1/nothing")).status).toBe(401);
    // a static file path: not an API route, so no token is asked (404 here: this Worker serves no files)
    expect((await get("/index.html")).status).toBe(404);
    expect((await call(new Request("http://edgevit.test/index.html", { method: "POST" }), locked)).status).toBe(401);
  });

  test("a CORS preflight needs no token (it never carries one) and clears the Authorization header", async () => {
    const preflight = await call(
      new Request("http://edgevit.test/v1/classify", {
        method: "OPTIONS",
        headers: {
          origin: "https://app.example",
          "access-control-request-method": "POST",
          "access-control-request-headers": "authorization, content-type",
        },
      }),
      locked,
    );
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get("access-control-allow-origin")).toBe("*");
    expect(preflight.headers.get("access-control-allow-methods")).toBe("POST, OPTIONS");
    const allowedHeaders = preflight.headers.get("access-control-allow-headers")!.split(", ");
    expect(allowedHeaders).toEqual(expect.arrayContaining(["authorization", "content-type"]));
    expect(await preflight.text()).toBe("");
  });

  test("without API_TOKEN every route is open", async () => {
    expect((await call(new Request("http://edgevit.test/v1/models"))).status).toBe(200);
  });
});

describe("a client that disconnects mid-upload", () => {
  afterEach(() => vi.restoreAllMocks());

  // A body that sends `sent` bytes of the image, then fails as a reset connection does.
  function cutBody(sent: number): ReadableStream<Uint8Array> {
    const bytes = new Uint8Array(cat);
    let done = false;
    return new ReadableStream({
      pull(controller) {
        if (done) {
          controller.error(new Error("Network connection lost."));
          return;
        }
        controller.enqueue(bytes.slice(0, sent));
        done = true;
      },
    });
  }

  test.each(["image/jpeg", "multipart/form-data; boundary=x"])("%s: a 499 log line, no 500", async (type) => {
    const warn = vi.spyOn(console, "warn").mockImplementation(() => {});
    const error = vi.spyOn(console, "error").mockImplementation(() => {});
    const response = await call(
      new Request("http://edgevit.test/v1/classify", {
        method: "POST",
        body: cutBody(1000),
        headers: { "content-type": type },
        duplex: "half",
      } as RequestInit),
    );
    expect(response.status).toBe(499);
    expect(warn).toHaveBeenCalledWith("499 client closed request: POST /v1/classify after 1000 body bytes");
    expect(error).not.toHaveBeenCalled();
  });
});
