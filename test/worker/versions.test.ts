// Model versions: every answer names the bundle's version (its payload CRC-32, computed here from the
// bytes put into R2), a replaced bundle is served once MODEL_REFRESH_SECONDS have passed, checks in between
// read no body (HEAD only), a broken replacement leaves the old version serving with the failure in
// /v1/models, and the swap stays within the memory budget.

import { describe, expect, test } from "vitest";
import { env } from "cloudflare:test";
import cat from "../fixtures/images/cat-baseline-420.jpg";
import { crc32 } from "../../core/crc32.ts";
import { call, gatedBucket, jpegRequest, randomBundle, SMALL_CONFIG } from "./helpers.ts";

const MiB = 2 ** 20;

// The payload CRC-32 as FORMAT.md defines it: over the bytes after the header, hex.
function versionOf(bundle: Uint8Array): string {
  const payloadOffset = new DataView(bundle.buffer, bundle.byteOffset).getUint32(12, true);
  return crc32(bundle.subarray(payloadOffset)).toString(16).padStart(8, "0");
}

// The real bucket, counting full reads (a body) and HEADs per key.
function counted(): { bucket: R2Bucket; gets: () => number; heads: () => number } {
  let gets = 0;
  let heads = 0;
  const bucket = new Proxy(env.MODELS, {
    get(target, property) {
      if (property === "get")
        return (key: string, options?: R2GetOptions) => {
          if (!options?.range) gets++;
          return target.get(key, options);
        };
      if (property === "head")
        return (key: string) => {
          heads++;
          return target.head(key);
        };
      const value = Reflect.get(target, property);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  return { bucket, gets: () => gets, heads: () => heads };
}

async function classify(model: string, overrides: Partial<Env>): Promise<any> {
  const response = await call(jpegRequest(`/v1/classify?model=${model}&include=logits`, cat), overrides);
  expect(response.status).toBe(200);
  expect(response.headers.get("x-edgevit-model")).toBe(model);
  const body: any = await response.json();
  expect(response.headers.get("x-edgevit-model-version")).toBe(body.version);
  return body;
}

async function loaded(name: string, overrides: Partial<Env> = {}): Promise<any> {
  const body: any = await (await call(new Request("http://edgevit.test/v1/models"), overrides)).json();
  return body.loaded.find((m: { name: string }) => m.name === name);
}

describe("a replaced bundle", () => {
  test("is served, with its new version, once the refresh interval has passed", async () => {
    const name = "swap-vit";
    const v1 = randomBundle(name, 61);
    const v2 = randomBundle(name, 62, { ...SMALL_CONFIG, classes: 10 });
    await env.MODELS.put(`${name}.evit`, v1);
    const { bucket, gets, heads } = counted();
    const slow = { MODELS: bucket, MODEL_REFRESH_SECONDS: 3600 };

    const first = await classify(name, slow);
    expect(first.version).toBe(versionOf(v1));
    expect(first.logits).toHaveLength(5);

    await env.MODELS.put(`${name}.evit`, v2);
    // Within the interval: the loaded version answers and R2 is not asked.
    expect((await classify(name, slow)).version).toBe(versionOf(v1));
    expect([gets(), heads()]).toEqual([1, 0]);

    // An interval of 1 s: after it (workerd's clock moves across the wait) the next request checks the
    // etag, sees the new object and answers with it.
    const fast = { MODELS: bucket, MODEL_REFRESH_SECONDS: 1 };
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const second = await classify(name, fast);
    expect(second.version).toBe(versionOf(v2));
    expect(second.logits).toHaveLength(10);
    expect([gets(), heads()]).toEqual([2, 1]);
    expect((await loaded(name)).version).toBe(versionOf(v2));
  });

  test("an unchanged bundle is checked with HEADs only, never read again", async () => {
    const name = "steady-vit";
    const bundle = randomBundle(name, 63);
    await env.MODELS.put(`${name}.evit`, bundle);
    const { bucket, gets, heads } = counted();
    const always = { MODELS: bucket, MODEL_REFRESH_SECONDS: 0 };
    for (let i = 0; i < 4; i++) expect((await classify(name, always)).version).toBe(versionOf(bundle));
    expect([gets(), heads()]).toEqual([1, 3]);
  });

  test("a broken replacement leaves the old version serving and is reported in /v1/models", async () => {
    const name = "broken-swap-vit";
    const good = randomBundle(name, 64);
    await env.MODELS.put(`${name}.evit`, good);
    const { bucket, gets } = counted();
    const always = { MODELS: bucket, MODEL_REFRESH_SECONDS: 0 };
    expect((await classify(name, always)).version).toBe(versionOf(good));

    const broken = randomBundle(name, 65);
    broken[broken.length - 10] ^= 0xff; // payload CRC mismatch
    const put = await env.MODELS.put(`${name}.evit`, broken);
    for (let i = 0; i < 3; i++) expect((await classify(name, always)).version).toBe(versionOf(good));
    // The broken object was read once; later checks see its etag and do not read it again.
    expect(gets()).toBe(2);
    const entry = await loaded(name);
    expect(entry.version).toBe(versionOf(good));
    expect(entry.refreshError.etag).toBe(put!.etag);
    expect(entry.refreshError.code).toBe("model_unavailable");
    expect(entry.refreshError.message).toMatch(/CRC-32/);

    // Fixing the object fixes the service.
    const fixed = randomBundle(name, 66);
    await env.MODELS.put(`${name}.evit`, fixed);
    expect((await classify(name, always)).version).toBe(versionOf(fixed));
    expect(await loaded(name)).not.toHaveProperty("refreshError");
  });

  test("while the new version streams in, other requests are answered by the old one", async () => {
    const name = "overlap-vit";
    const v1 = randomBundle(name, 69);
    const v2 = randomBundle(name, 70, { ...SMALL_CONFIG, classes: 7 });
    await env.MODELS.put(`${name}.evit`, v1);
    expect((await classify(name, {})).version).toBe(versionOf(v1));
    await env.MODELS.put(`${name}.evit`, v2);

    // A bucket whose full read of the bundle waits until the test lets it go.
    const { bucket: gated, atRead, release } = gatedBucket(env.MODELS);
    const overrides = { MODELS: gated, MODEL_REFRESH_SECONDS: 1 };
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const swapping = classify(name, overrides); // finds the check stale, sees a new etag, starts the load
    await atRead;
    const meanwhile = await classify(name, overrides);
    expect(meanwhile.version).toBe(versionOf(v1));
    expect(meanwhile.logits).toHaveLength(5);
    release();
    const swapped = await swapping;
    expect(swapped.version).toBe(versionOf(v2));
    expect(swapped.logits).toHaveLength(7);
    expect((await classify(name, overrides)).version).toBe(versionOf(v2));
  });

  test("the swap keeps within the memory budget when old and new cannot both fit", async () => {
    const name = "tight-swap-vit";
    await env.MODELS.put(`${name}.evit`, randomBundle(name, 67));
    expect((await classify(name, {})).version).toBeDefined();
    const perModel = (await loaded(name)).memoryBytes;
    const tight = { MODEL_REFRESH_SECONDS: 0, MODEL_MEMORY_BUDGET_MB: (1.5 * perModel) / MiB };
    const next = randomBundle(name, 68);
    await env.MODELS.put(`${name}.evit`, next);

    // The new bundle's body stops after its prefix, header and a few payload bytes, until the test lets it
    // go: by then the cache has reserved the new version's memory and the payload is streaming in.
    const payloadOffset = new DataView(next.buffer, next.byteOffset).getUint32(12, true);
    let reached!: () => void;
    const atPayload = new Promise<void>((resolve) => {
      reached = resolve;
    });
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const held = (body: ReadableStream<Uint8Array>): ReadableStream<Uint8Array> => {
      const reader = body.getReader();
      let pending: Uint8Array = new Uint8Array(0);
      let sent = 0;
      return new ReadableStream<Uint8Array>(
        {
          async pull(controller) {
            if (sent > payloadOffset) {
              reached();
              await gate;
            }
            if (pending.length === 0) {
              const { done, value } = await reader.read();
              if (done) return controller.close();
              pending = value;
            }
            // Up to a little past the payload's start in the first piece, the rest after the gate.
            const take = sent <= payloadOffset ? Math.min(pending.length, payloadOffset + 64 - sent) : pending.length;
            controller.enqueue(pending.slice(0, take));
            pending = pending.subarray(take);
            sent += take;
          },
        },
        { highWaterMark: 0 },
      );
    };
    const paused = new Proxy(env.MODELS, {
      get(target, property) {
        if (property === "get")
          return async (key: string, options?: R2GetOptions) => {
            const object = await target.get(key, options);
            if (options?.range || !object) return object;
            const body = held(object.body);
            return new Proxy(object, { get: (o, p) => (p === "body" ? body : Reflect.get(o, p)) });
          };
        const value = Reflect.get(target, property);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    const during = { ...tight, MODELS: paused };
    const pending = Promise.all([classify(name, during), classify(name, during)]);
    await atPayload;
    const reserved: any = await (await call(new Request("http://edgevit.test/v1/models"), tight)).json();
    // The old version made room: what stays loaded plus the version streaming in fits the budget.
    expect(reserved.memory.usedBytes + perModel).toBeLessThanOrEqual(reserved.memory.budgetBytes);
    release();
    const answers = await pending;
    expect(answers.map((a) => a.version)).toContain(versionOf(next));
    const body: any = await (await call(new Request("http://edgevit.test/v1/models"), tight)).json();
    expect(body.memory.usedBytes).toBeLessThanOrEqual(body.memory.budgetBytes);
    expect(body.loaded.filter((m: { name: string }) => m.name === name)).toHaveLength(1);
  });
});
