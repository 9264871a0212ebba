// Loading from R2 inside workerd: one read per model per isolate (single flight), failed loads not cached,
// corrupt bundles as 503 until the object is fixed, least-recently-used eviction under the memory budget.
// Reads are counted by wrapping the real R2 binding; each test uses its own model names, so each starts
// with a cold cache for them.

import { describe, expect, test, vi } from "vitest";
import { env } from "cloudflare:test";
import cat from "../fixtures/images/cat-baseline-420.jpg";
import { call, countingBucket, jpegRequest, randomBundle } from "./helpers.ts";

const MiB = 2 ** 20;

const classify = (model: string, overrides: Partial<Env> = {}) =>
  call(jpegRequest(`/v1/classify?model=${model}&include=logits`, cat), overrides);

async function listing(overrides: Partial<Env> = {}): Promise<any> {
  return (await call(new Request("http://edgevit.test/v1/models"), overrides)).json();
}

test("many concurrent requests at a cold model read the bundle from R2 once and agree", async () => {
  await env.MODELS.put("flight-vit.evit", randomBundle("flight-vit", 21));
  const { bucket, gets } = countingBucket(env.MODELS);
  const responses = await Promise.all(Array.from({ length: 16 }, () => classify("flight-vit", { MODELS: bucket })));
  expect(responses.map((r) => r.status)).toEqual(Array(16).fill(200));
  const bodies = await Promise.all(responses.map((r) => r.json()));
  for (const body of bodies) expect(body).toEqual(bodies[0]);
  expect(gets.get("flight-vit.evit")).toBe(1);

  // Later requests reuse the loaded model.
  expect((await classify("flight-vit", { MODELS: bucket })).status).toBe(200);
  expect(gets.get("flight-vit.evit")).toBe(1);
});

// The byte offset of the payload, from the prefix (FORMAT.md).
const payloadOffset = (bundle: Uint8Array) => new DataView(bundle.buffer, bundle.byteOffset).getUint32(12, true);

const corruptions: [string, (good: Uint8Array) => Uint8Array, RegExp][] = [
  ["missing payload", (good) => good.slice(0, payloadOffset(good)), /payload ended after 0 of/],
  ["truncated", (good) => good.slice(0, good.length - 1000), /payload ended after/],
  [
    "bad checksum",
    (good) => {
      const bad = good.slice();
      bad[payloadOffset(good) + 100] ^= 0x01;
      return bad;
    },
    /CRC-32/,
  ],
  [
    "wrong version",
    (good) => {
      const bad = good.slice();
      new DataView(bad.buffer).setUint32(4, 2, true);
      return bad;
    },
    /version 2/,
  ],
  ["not a bundle", () => new TextEncoder().encode("<html>not found</html>"), /not an edgevit bundle/],
];

describe("a corrupt bundle gives 503 model_unavailable, and replacing it recovers without a restart", () => {
  test.each(corruptions)("%s", async (what, corrupt, reason) => {
    const name = `corrupt-${what.replace(/ /g, "-")}`;
    const good = randomBundle(name, 31);
    await env.MODELS.put(`${name}.evit`, corrupt(good));
    const { bucket, gets } = countingBucket(env.MODELS);

    for (let attempt = 1; attempt <= 2; attempt++) {
      const response = await classify(name, { MODELS: bucket });
      expect(response.status).toBe(503);
      const { error } = await response.json<any>();
      expect(error.code).toBe("model_unavailable");
      expect(error.message).toMatch(reason);
      // A failed load is not cached: every request reads the object again.
      expect(gets.get(`${name}.evit`)).toBe(attempt);
    }

    await env.MODELS.put(`${name}.evit`, good);
    const fixed = await classify(name, { MODELS: bucket });
    expect(fixed.status).toBe(200);
    expect((await fixed.json<any>()).predictions).toHaveLength(5);
  });

  test("concurrent requests during a failing load share that one failure", async () => {
    const good = randomBundle("corrupt-shared", 32);
    await env.MODELS.put("corrupt-shared.evit", good.slice(0, good.length - 1));
    const { bucket, gets } = countingBucket(env.MODELS);
    // As many as the ledger admits at once beside the pending load (each reserves its body's window and its
    // JS heap): a request admitted after the failure reads the object again.
    const responses = await Promise.all(
      Array.from({ length: 4 }, () => classify("corrupt-shared", { MODELS: bucket })),
    );
    expect(responses.map((r) => r.status)).toEqual(Array(4).fill(503));
    expect(gets.get("corrupt-shared.evit")).toBe(1);
  });

  test("/v1/models still answers, with the bundle's problem", async () => {
    await env.MODELS.put("listed-bad.evit", randomBundle("listed-bad", 33).slice(0, 40));
    const body = await listing();
    const entry = body.models.find((m: any) => m.name === "listed-bad");
    expect(entry.bytes).toBe(40);
    expect(entry.error.code).toBe("truncated");
    expect(entry).not.toHaveProperty("config");
  });
});

describe("the memory budget", () => {
  test("least recently used models are evicted to stay under MODEL_MEMORY_BUDGET_MB", async () => {
    for (const name of ["lru-a", "lru-b", "lru-c"]) await env.MODELS.put(`${name}.evit`, randomBundle(name, 41));
    const { bucket, gets } = countingBucket(env.MODELS);
    // Measure one model's memory under the configured budget, then allow exactly two of them.
    expect((await classify("lru-a", { MODELS: bucket })).status).toBe(200);
    const perModel = (await listing()).loaded.find((m: any) => m.name === "lru-a").memoryBytes;
    const overrides = { MODELS: bucket, MODEL_MEMORY_BUDGET_MB: (2 * perModel) / MiB };

    expect((await classify("lru-b", overrides)).status).toBe(200);
    expect((await classify("lru-a", overrides)).status).toBe(200); // a is now the most recently used
    expect((await classify("lru-c", overrides)).status).toBe(200); // evicts b, the least recently used
    const loaded = (await listing(overrides)).loaded.map((m: any) => m.name);
    expect(loaded).toEqual(["lru-a", "lru-c"]);
    expect((await listing(overrides)).memory.usedBytes).toBe(2 * perModel);

    expect((await classify("lru-b", overrides)).status).toBe(200);
    expect(Object.fromEntries(gets)).toEqual({ "lru-a.evit": 1, "lru-b.evit": 2, "lru-c.evit": 1 });
  });

  test("concurrent loads of different models with room for one: both answer, the later one stays", async () => {
    for (const name of ["pair-a", "pair-b", "pair-c"]) await env.MODELS.put(`${name}.evit`, randomBundle(name, 42));
    expect((await classify("pair-a")).status).toBe(200);
    const perModel = (await listing()).loaded.find((m: any) => m.name === "pair-a").memoryBytes;
    const overrides = { MODEL_MEMORY_BUDGET_MB: (1.5 * perModel) / MiB };
    const responses = await Promise.all([classify("pair-b", overrides), classify("pair-c", overrides)]);
    expect(responses.map((r) => r.status)).toEqual([200, 200]);
    const after = await listing(overrides);
    expect(after.memory.usedBytes).toBeLessThanOrEqual(after.memory.budgetBytes);
    expect(after.loaded.map((m: any) => m.name)).toEqual(["pair-c"]);
  });

  test("a model larger than the whole budget is unavailable, not loaded", async () => {
    await env.MODELS.put("too-big.evit", randomBundle("too-big", 51));
    const response = await classify("too-big", { MODEL_MEMORY_BUDGET_MB: 0.05 });
    expect(response.status).toBe(503);
    const { error } = await response.json<any>();
    expect(error.code).toBe("model_unavailable");
    expect(error.message).toMatch(/MODEL_MEMORY_BUDGET_MB/);
    expect((await listing()).loaded.map((m: any) => m.name)).not.toContain("too-big");
  });
});

// A bucket whose reads of whole objects (not ranged header reads, not HEADs) fail as an R2 outage does.
function failingGets(secret: string): R2Bucket {
  return new Proxy(env.MODELS, {
    get(target, property) {
      if (property === "get")
        return (key: string, options?: R2GetOptions) =>
          options?.range ? target.get(key, options) : Promise.reject(new Error(secret));
      const value = Reflect.get(target, property);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

describe("failures that are not the bundle's", () => {
  const SECRET = "internal detail: r2 shard 7 at 10.0.0.3 timed out";

  test("R2 failing on a first load: 503 model_unavailable with a fixed sentence, the cause logged", async () => {
    await env.MODELS.put("r2-down.evit", randomBundle("r2-down", 52));
    const logged = vi.spyOn(console, "error").mockImplementation(() => {});
    try {
      const response = await classify("r2-down", { MODELS: failingGets(SECRET) });
      expect(response.status).toBe(503);
      const { error } = await response.json<any>();
      expect(error.code).toBe("model_unavailable");
      expect(error.message).toBe(
        "model r2-down cannot be loaded right now; the cause has been logged, try again later",
      );
      expect(logged.mock.calls.some((args) => args.some((a) => a instanceof Error && a.message === SECRET))).toBe(true);
    } finally {
      logged.mockRestore();
    }
    // R2 back: the failure was not cached.
    expect((await classify("r2-down")).status).toBe(200);
  });

  test("a refresh that fails for another reason keeps a fixed sentence in refreshError", async () => {
    await env.MODELS.put("r2-flaky.evit", randomBundle("r2-flaky", 53));
    expect((await classify("r2-flaky")).status).toBe(200);
    await env.MODELS.put("r2-flaky.evit", randomBundle("r2-flaky", 54));
    const logged = vi.spyOn(console, "error").mockImplementation(() => {});
    try {
      const overrides = { MODELS: failingGets(SECRET), MODEL_REFRESH_SECONDS: 0 };
      expect((await classify("r2-flaky", overrides)).status).toBe(200); // the old version keeps serving
      const entry = (await listing()).loaded.find((m: any) => m.name === "r2-flaky");
      expect(entry.refreshError.code).toBe("model_unavailable");
      expect(entry.refreshError.message).not.toContain(SECRET);
      expect(entry.refreshError.message).toMatch(/the cause has been logged/);
    } finally {
      logged.mockRestore();
    }
  });
});

describe("MODEL_MEMORY_BUDGET_MB", () => {
  test("unset: the documented default of 100 MiB", async () => {
    const body = await listing({ MODEL_MEMORY_BUDGET_MB: undefined });
    expect(body.memory.budgetBytes).toBe(100 * MiB);
  });

  test.each([
    ["not a number", "lots"],
    ["zero", 0],
    ["negative", -5],
  ])("%s: a 503 naming the setting", async (_, v) => {
    await env.MODELS.put("budget-bad.evit", randomBundle("budget-bad", 55));
    const response = await classify("budget-bad", { MODEL_MEMORY_BUDGET_MB: v as number });
    expect(response.status).toBe(503);
    const { error } = await response.json<any>();
    expect(error.code).toBe("model_unavailable");
    expect(error.message).toBe(
      `the deployment's MODEL_MEMORY_BUDGET_MB must be a positive number of MiB, got ${JSON.stringify(v)}`,
    );
  });
});

describe("capture buffers count against the budget", () => {
  // /v1/see's capture for SMALL_CONFIG (17 tokens, dim 32, 2 heads, 2 layers), as assembly/model.ts's
  // enableCapture allocates it, each buffer with alloc()'s 128 bytes beside it: hidden states 3 x 17 x 32,
  // the class token's rows 2 x 2 x 17, the head means 2 x 17 x 17 (f32) = 9496 bytes: one 64 KiB page.
  const SEE_GROWTH = 65536;
  const see = (model: string, overrides: Partial<Env>) =>
    call(jpegRequest(`/v1/see?model=${model}&size=32`, cat), overrides);

  test("a model that fits but whose capture would not: 503 naming both sizes, nothing grows", async () => {
    await env.MODELS.put("capture-alone.evit", randomBundle("capture-alone", 56));
    expect((await classify("capture-alone")).status).toBe(200);
    const before = (await listing()).loaded.find((m: any) => m.name === "capture-alone").memoryBytes;
    const budget = before + SEE_GROWTH / 2;
    const overrides = { MODEL_MEMORY_BUDGET_MB: budget / MiB };
    const response = await see("capture-alone", overrides);
    expect(response.status).toBe(503);
    const { error } = await response.json<any>();
    expect(error.code).toBe("model_unavailable");
    const kib = (bytes: number) => `${(bytes / 1024).toFixed(1)} KiB`;
    expect(error.message).toBe(
      `model capture-alone cannot keep what this request asks for: its 64.0 KiB of capture buffers would take ` +
        `it to ${kib(before + SEE_GROWTH)}, more than MODEL_MEMORY_BUDGET_MB allows (${kib(budget)})`,
    );
    const after = (await listing(overrides)).loaded.find((m: any) => m.name === "capture-alone");
    expect(after.memoryBytes).toBe(before);
  });

  test("room for the capture is made by evicting the least recently used other model", async () => {
    for (const name of ["capture-a", "capture-b"]) await env.MODELS.put(`${name}.evit`, randomBundle(name, 57));
    expect((await classify("capture-a")).status).toBe(200);
    const perModel = (await listing()).loaded.find((m: any) => m.name === "capture-a").memoryBytes;
    // Both models fit, the capture beside both does not.
    const overrides = { MODEL_MEMORY_BUDGET_MB: (2 * perModel + SEE_GROWTH / 2) / MiB };
    expect((await classify("capture-b", overrides)).status).toBe(200);
    expect((await classify("capture-a", overrides)).status).toBe(200); // a is the most recently used
    const before = await listing(overrides);
    expect(before.loaded.map((m: any) => m.name)).toEqual(expect.arrayContaining(["capture-a", "capture-b"]));
    expect((await see("capture-a", overrides)).status).toBe(200);
    const after = await listing(overrides);
    expect(after.loaded.map((m: any) => m.name)).toContain("capture-a");
    expect(after.loaded.map((m: any) => m.name)).not.toContain("capture-b");
    expect(after.memory.usedBytes).toBeLessThanOrEqual(after.memory.budgetBytes);
  });
});
