// The hub client's rules on origins, with a recording fetch: requests go to the endpoint, a redirect is
// followed only when the endpoint answered it, and the token never leaves the endpoint's origin.

import { expect, test } from "vitest";
import { HubClient } from "../../core/hub/client.ts";
import { cachedSnapshot, shardNames } from "../../core/hub/files.ts";

const COMMIT = "a".repeat(40);

function recorder(answer: (url: string, init: RequestInit) => Response) {
  const seen: { url: string; authorization: string | null; redirect?: RequestRedirect }[] = [];
  const fetcher = (async (input: RequestInfo | URL, init: RequestInit = {}) => {
    const url = String(input);
    seen.push({ url, authorization: new Headers(init.headers).get("authorization"), redirect: init.redirect });
    return answer(url, init);
  }) as typeof fetch;
  return { seen, fetcher };
}

const hubHeaders = { "x-repo-commit": COMMIT, etag: '"abc"' };

test("a large file: the hub's 302 gives its identity; the bytes come from storage without the token", async () => {
  const { seen, fetcher } = recorder((url) => {
    if (url.startsWith("https://hub.example/"))
      return new Response(null, {
        status: 302,
        headers: {
          ...hubHeaders,
          location: "https://cdn.example/x?sig=1",
          "x-linked-etag": `"${"b".repeat(64)}"`,
          "x-linked-size": "10",
        },
      });
    return new Response(new Uint8Array(4), { status: 206, headers: { "content-length": "4" } });
  });
  const hub = new HubClient({ endpoint: "https://hub.example/", token: "hf_secret", fetch: fetcher });
  const file = await hub.head("org/m", "main", "model.safetensors");
  expect(file).toEqual({
    repo: "org/m",
    file: "model.safetensors",
    commit: COMMIT,
    etag: "b".repeat(64),
    size: 10,
    url: "https://cdn.example/x?sig=1",
  });
  await hub.range(file as NonNullable<typeof file>, 2, 6);
  expect(seen).toEqual([
    {
      url: "https://hub.example/org/m/resolve/main/model.safetensors",
      authorization: "Bearer hf_secret",
      redirect: "manual",
    },
    { url: "https://cdn.example/x?sig=1", authorization: null, redirect: "manual" },
  ]);
});

test("a redirect answered by another origin is refused", async () => {
  const { seen, fetcher } = recorder((url) => {
    if (url.startsWith("https://cdn.example/"))
      return new Response(null, { status: 302, headers: { location: "https://elsewhere.example/steal" } });
    return new Response(null, {
      status: 302,
      headers: { ...hubHeaders, location: "https://cdn.example/x", "x-linked-etag": '"e"', "x-linked-size": "4" },
    });
  });
  const hub = new HubClient({ endpoint: "https://hub.example", fetch: fetcher });
  const file = await hub.head("org/m", "main", "model.safetensors");
  await expect(hub.bytes(file as NonNullable<typeof file>)).rejects.toThrow(
    /https:\/\/cdn.example redirected a download elsewhere; only redirects answered by https:\/\/hub.example are followed/,
  );
  expect(seen.map((s) => s.url)).not.toContain("https://elsewhere.example/steal");
});

test("the endpoint's own redirects (a renamed repository) are followed with the token", async () => {
  const { seen, fetcher } = recorder((url) =>
    url.includes("/old/")
      ? new Response(null, { status: 307, headers: { location: "/org/new/resolve/main/config.json" } })
      : new Response(null, { status: 200, headers: { ...hubHeaders, "content-length": "2" } }),
  );
  const hub = new HubClient({ endpoint: "https://hub.example", token: "t", fetch: fetcher });
  expect((await hub.head("org/old", "main", "config.json"))?.commit).toBe(COMMIT);
  expect(seen.map((s) => [s.url, s.authorization])).toEqual([
    ["https://hub.example/org/old/resolve/main/config.json", "Bearer t"],
    ["https://hub.example/org/new/resolve/main/config.json", "Bearer t"],
  ]);
});

test("an answer without the hub's headers is not taken for the hub", async () => {
  const { fetcher } = recorder(() => new Response("<html>", { status: 200, headers: { "content-length": "6" } }));
  const hub = new HubClient({ endpoint: "https://proxy.example", fetch: fetcher });
  await expect(hub.head("org/m", "main", "config.json")).rejects.toThrow(/is HF_ENDPOINT a Hugging Face hub/);
});

test("cache folders and shard indexes", () => {
  expect(
    cachedSnapshot(`/home/u/.cache/huggingface/hub/models--google--vit-base-patch16-224/snapshots/${COMMIT}/`),
  ).toEqual({
    repo: "google/vit-base-patch16-224",
    commit: COMMIT,
  });
  expect(cachedSnapshot("/data/checkpoints/vit")).toBe(null);
  const index = (map: unknown) => new TextEncoder().encode(JSON.stringify({ weight_map: map }));
  expect(shardNames(index({ a: "m-2.safetensors", b: "m-1.safetensors", c: "m-2.safetensors" }), "r")).toEqual([
    "m-1.safetensors",
    "m-2.safetensors",
  ]);
  expect(() => shardNames(index({ a: "../../etc/passwd" }), "r")).toThrow(/not a .safetensors file/);
});

test("a hub that stays silent is abandoned after the stall timeout: no answer, or a body that stops", async () => {
  let aborted = false;
  const silent = (async (_input: RequestInfo | URL, init: RequestInit = {}) => {
    init.signal?.addEventListener("abort", () => {
      aborted = true;
    });
    return new Promise<Response>(() => {});
  }) as typeof fetch;
  const quiet = new HubClient({ endpoint: "https://hub.example", fetch: silent, stallSeconds: 0.05 });
  await expect(quiet.head("org/m", "main", "config.json")).rejects.toMatchObject({
    code: "hub_unavailable",
    message: "https://hub.example did not answer within 0.05 s",
  });
  expect(aborted).toBe(true);

  let cancelled = false;
  const stops = (async () =>
    new Response(
      new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(new Uint8Array(3));
        },
        pull: () => new Promise<void>(() => {}),
        cancel() {
          cancelled = true;
        },
      }),
      { status: 206, headers: { "content-length": "10" } },
    )) as typeof fetch;
  const stalling = new HubClient({ endpoint: "https://hub.example", fetch: stops, stallSeconds: 0.05 });
  const file = {
    repo: "org/m",
    file: "model.safetensors",
    commit: COMMIT,
    etag: "e",
    size: 20,
    url: "https://hub.example/x",
  };
  await expect(stalling.range(file, 5, 15)).rejects.toMatchObject({
    code: "hub_unavailable",
    message: "the download of model.safetensors stalled after 3 of 10 bytes: nothing arrived for 0.05 s",
  });
  expect(cancelled).toBe(true);
  expect(() => new HubClient({ stallSeconds: 0 })).toThrow(/HF_HUB_DOWNLOAD_TIMEOUT 0 is not a positive number/);
});
