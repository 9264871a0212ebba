// The queue consumer in workerd: an image put into the input bucket, its R2 event notification delivered
// as a queue batch, the result read back from the output bucket. The reference for each result is the same
// image through the HTTP routes; the vector line is checked against the form `wrangler vectorize insert`
// reads and an embedding normalised here.

import { beforeAll, expect, test, vi } from "vitest";
import { createExecutionContext, createMessageBatch, env, getQueueResult, SELF } from "cloudflare:test";
import cat from "../fixtures/images/cat-baseline-420.jpg";
import random from "../fixtures/images/invalid-random-bytes.jpg";
import worker from "../../worker/index.ts";
import { countingBucket, jpegRequest, randomBundle } from "./helpers.ts";

const MODEL = "queue-vit";
const BUCKET = env.INPUT_BUCKET;

beforeAll(async () => {
  await env.MODELS.put(`${MODEL}.evit`, randomBundle(MODEL, 71));
});

const settings = (overrides: Partial<Env> = {}): Env => ({ ...env, PIPELINE_MODEL: MODEL, ...overrides });

function event(key: string, action = "PutObject", bucket = BUCKET) {
  return {
    account: "test-account",
    action,
    bucket,
    object: { key, size: 1, eTag: "etag-from-event" },
    eventTime: "2026-12-01T12:00:00.000Z",
  };
}

let ids = 0;
async function deliver(bodies: unknown[], overrides: Partial<Env> = {}, attempts = 1) {
  const messages = bodies.map((body) => ({ id: `msg-${++ids}`, timestamp: new Date(0), attempts, body }));
  const batch = createMessageBatch("edgevit-images-events", messages);
  // getQueueResult records that a message was retried but not its delay: keep the delays asked for here.
  const delays: { msgId: string; delaySeconds?: number }[] = [];
  for (const message of batch.messages) {
    const retry = message.retry.bind(message);
    message.retry = (options?: QueueRetryOptions) => {
      delays.push({ msgId: message.id, delaySeconds: options?.delaySeconds });
      retry(options);
    };
  }
  const ctx = createExecutionContext();
  await worker.queue(batch, settings(overrides), ctx);
  const outcome = await getQueueResult(batch, ctx);
  expect(outcome.retryMessages.map((m) => m.msgId)).toEqual(delays.map((d) => d.msgId));
  return { ids: messages.map((m) => m.id), result: { ...outcome, retryMessages: delays } };
}

async function result(key: string): Promise<any> {
  const object = await env.RESULTS.get(`${env.RESULT_PREFIX}${key}.json`);
  return object ? JSON.parse(await object.text()) : null;
}

async function http(path: string, body: ArrayBuffer): Promise<any> {
  return (await SELF.fetch(jpegRequest(path, body))).json();
}

test("a put image gets its classification, embedding and vector line written", async () => {
  const key = "uploads/cat.jpg";
  const put = await env.IMAGES.put(key, cat);
  const { ids, result: outcome } = await deliver([event(key)]);
  expect(outcome.explicitAcks).toEqual(ids);
  expect(outcome.retryMessages).toEqual([]);

  const written = await result(key);
  expect(written).toMatchObject({ bucket: BUCKET, key, etag: put!.etag, size: cat.byteLength });
  const classified = await http(`/v1/classify?model=${MODEL}`, cat);
  expect(written.classify).toEqual(classified);
  const embedded = await http(`/v1/embed?model=${MODEL}&normalize=true`, cat);
  expect(written.embed).toMatchObject(embedded);

  // The raw embedding scaled to unit length here agrees with the one written.
  const raw = (await http(`/v1/embed?model=${MODEL}`, cat)).embedding as number[];
  const norm = Math.hypot(...raw);
  raw.forEach((x, i) => {
    expect(written.embed.embedding[i]).toBeCloseTo(x / norm, 6);
  });

  const ndjson = await (await env.RESULTS.get(`${env.RESULT_PREFIX}${key}.vectors.ndjson`))!.text();
  const lines = ndjson.split("\n").filter((l) => l !== "");
  expect(lines).toHaveLength(1);
  const vector = JSON.parse(lines[0]);
  expect(Object.keys(vector).sort()).toEqual(["id", "metadata", "values"]);
  expect(vector.values).toEqual(written.embed.embedding);
  expect(vector.id).toBe(written.embed.vectorId);
  expect(new TextEncoder().encode(vector.id).length).toBeLessThanOrEqual(64); // Vectorize's id limit
  expect(vector.metadata).toMatchObject({ bucket: BUCKET, key, model: MODEL, version: classified.version });
});

test("a redelivered message writes the same result, byte for byte", async () => {
  const key = "uploads/again.jpg";
  await env.IMAGES.put(key, cat);
  await deliver([event(key)]);
  const first = await (await env.RESULTS.get(`${env.RESULT_PREFIX}${key}.json`))!.text();
  const firstVectors = await (await env.RESULTS.get(`${env.RESULT_PREFIX}${key}.vectors.ndjson`))!.text();
  await deliver([event(key)], {}, 2);
  expect(await (await env.RESULTS.get(`${env.RESULT_PREFIX}${key}.json`))!.text()).toBe(first);
  expect(await (await env.RESULTS.get(`${env.RESULT_PREFIX}${key}.vectors.ndjson`))!.text()).toBe(firstVectors);
});

test("a bad image is recorded as an error and acknowledged, never retried", async () => {
  const key = "uploads/not-an-image.jpg";
  await env.IMAGES.put(key, random);
  const { ids, result: outcome } = await deliver([event(key)]);
  expect(outcome.explicitAcks).toEqual(ids);
  expect(outcome.retryMessages).toEqual([]);
  const written = await result(key);
  expect(written.error.code).toBe("invalid_image");
  expect(written).not.toHaveProperty("classify");
  expect(await env.RESULTS.head(`${env.RESULT_PREFIX}${key}.vectors.ndjson`)).toBeNull();
});

test("an image over MAX_BODY_BYTES is recorded as payload_too_large", async () => {
  const key = "uploads/too-big.jpg";
  await env.IMAGES.put(key, cat);
  const { result: outcome } = await deliver([event(key)], { MAX_BODY_BYTES: 1000 });
  expect(outcome.retryMessages).toEqual([]);
  expect((await result(key)).error.code).toBe("payload_too_large");
});

test("transient failures are retried with growing delays; other messages in the batch still succeed", async () => {
  await env.IMAGES.put("uploads/retry.jpg", cat);
  // The model is missing (not yet uploaded): worth retrying, not a verdict on the image.
  for (const [attempts, delay] of [
    [1, 10],
    [2, 20],
    [4, 80],
    [9, 900],
  ]) {
    const { ids, result: outcome } = await deliver(
      [event("uploads/retry.jpg")],
      { PIPELINE_MODEL: "not-uploaded-yet" },
      attempts,
    );
    expect(outcome.retryMessages).toEqual([{ msgId: ids[0], delaySeconds: delay }]);
    expect(outcome.explicitAcks).toEqual([]);
  }
  expect(await result("uploads/retry.jpg")).toBeNull();

  // R2 failing for one object: that message is retried, the other one is processed.
  await env.IMAGES.put("uploads/fine.jpg", cat);
  const flaky = new Proxy(env.IMAGES, {
    get(target, property) {
      if (property === "get")
        return (key: string) =>
          key === "uploads/flaky.jpg" ? Promise.reject(new Error("R2 timeout")) : target.get(key);
      const value = Reflect.get(target, property);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  const { ids, result: outcome } = await deliver([event("uploads/flaky.jpg"), event("uploads/fine.jpg")], {
    IMAGES: flaky,
  });
  expect(outcome.retryMessages).toEqual([{ msgId: ids[0], delaySeconds: 10 }]);
  expect(outcome.explicitAcks).toEqual([ids[1]]);
  expect((await result("uploads/fine.jpg")).classify.model).toBe(MODEL);
});

test("an image body that fails mid-read from R2 is retried, not taken for a disconnected client", async () => {
  await env.IMAGES.put("uploads/cut.jpg", cat);
  // The object is found, but its body fails after 1000 bytes as a dropped R2 read does.
  const cut = new Proxy(env.IMAGES, {
    get(target, property) {
      if (property === "get")
        return async (key: string) => {
          const object = await target.get(key);
          if (!object) return object;
          let sent = false;
          const body = new ReadableStream<Uint8Array>({
            pull(controller) {
              if (sent) return controller.error(new Error("R2 read reset"));
              controller.enqueue(new Uint8Array(cat).slice(0, 1000));
              sent = true;
            },
          });
          // The real object for everything but its body (a GetResult's properties are read-only).
          return new Proxy(object, { get: (o, p) => (p === "body" ? body : Reflect.get(o, p)) });
        };
      const value = Reflect.get(target, property);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  const logged = vi.spyOn(console, "error").mockImplementation(() => {});
  const { ids, result: outcome } = await deliver([event("uploads/cut.jpg")], { IMAGES: cut });
  expect(outcome.retryMessages).toEqual([{ msgId: ids[0], delaySeconds: 10 }]);
  expect(outcome.explicitAcks).toEqual([]);
  const causes = logged.mock.calls.map((args) => (args[1] as Error).message);
  logged.mockRestore();
  expect(causes).toEqual(["reading uploads/cut.jpg from the input bucket failed after 1000 bytes"]);
  expect(await result("uploads/cut.jpg")).toBeNull();
});

test("deletes, other buckets and stray messages are acknowledged without writing anything", async () => {
  await env.IMAGES.put("uploads/ignored.jpg", cat);
  const { ids, result: outcome } = await deliver([
    event("uploads/ignored.jpg", "DeleteObject"),
    event("uploads/ignored.jpg", "PutObject", "some-other-bucket"),
    { hello: "world" },
    event("uploads/never-existed.jpg"),
  ]);
  expect(outcome.explicitAcks).toEqual(ids);
  expect(await result("uploads/ignored.jpg")).toBeNull();
  expect(await result("uploads/never-existed.jpg")).toBeNull();
});

test("PIPELINE_TASKS=classify writes no embedding", async () => {
  const key = "uploads/classify-only.jpg";
  await env.IMAGES.put(key, cat);
  await deliver([event(key)], { PIPELINE_TASKS: "classify" });
  const written = await result(key);
  expect(written.classify.model).toBe(MODEL);
  expect(written).not.toHaveProperty("embed");
  expect(await env.RESULTS.head(`${env.RESULT_PREFIX}${key}.vectors.ndjson`)).toBeNull();
});

test("a bad PIPELINE_TASKS retries the batch unread, with one log line that names the setting", async () => {
  await env.IMAGES.put("uploads/misconfigured.jpg", cat);
  const { bucket, gets } = countingBucket(env.IMAGES);
  const logged = vi.spyOn(console, "error").mockImplementation(() => {});
  const { ids, result: outcome } = await deliver(
    [event("uploads/misconfigured.jpg"), event("uploads/misconfigured.jpg")],
    { PIPELINE_TASKS: "classify,segment", IMAGES: bucket },
  );
  const lines = logged.mock.calls.map((args) => args.join(" "));
  logged.mockRestore();
  expect(outcome.retryMessages).toEqual(ids.map((msgId) => ({ msgId, delaySeconds: 10 })));
  expect(outcome.explicitAcks).toEqual([]);
  expect(gets.size).toBe(0); // no object was read, so no body is left open
  expect(lines).toEqual([
    'queue: PIPELINE_TASKS accepts classify, embed, got "segment"; the batch of 2 messages is retried unprocessed',
  ]);
  expect(await result("uploads/misconfigured.jpg")).toBeNull();
});

test("an image replaced by an unreadable one, or embed dropped from PIPELINE_TASKS, loses its old vector line", async () => {
  const vectors = (key: string) => env.RESULTS.head(`${env.RESULT_PREFIX}${key}.vectors.ndjson`);
  for (const [key, replace] of [
    ["uploads/replaced-bad.jpg", { body: random, overrides: {} }],
    ["uploads/replaced-tasks.jpg", { body: cat, overrides: { PIPELINE_TASKS: "classify" } }],
  ] as const) {
    await env.IMAGES.put(key, cat);
    await deliver([event(key)]);
    expect(await vectors(key)).not.toBeNull();
    await env.IMAGES.put(key, replace.body);
    await deliver([event(key)], replace.overrides);
    expect(await vectors(key)).toBeNull();
    expect(await result(key)).not.toHaveProperty("embed");
  }
});
