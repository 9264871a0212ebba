// Memory admission inside workerd: many uploads against one isolate whose ledger (worker/memory.ts) is made
// tight enough that only a few fit at once. Each test asserts on the ledger's own accounting: never over its
// capacity, and back to its baseline (no reservation, nobody in flight or waiting) when the requests end,
// however they end. The reference for every answer is the same image classified alone.

import { beforeAll, expect, test } from "vitest";
import { createExecutionContext, createMessageBatch, env, getQueueResult } from "cloudflare:test";
import cat from "../fixtures/images/cat-baseline-420.jpg";
import catPng from "../fixtures/images/cat.png";
import hubble from "../fixtures/images/hubble-cmyk.jpg";
import astronaut from "../fixtures/images/astronaut-444.jpg";
import coffee from "../fixtures/images/coffee-progressive.jpg";
import worker from "../../worker/index.ts";
import {
  CROWD_HEAP_BYTES,
  FIXED_HEAP_BYTES,
  FORM_READER_BYTES,
  ledgerOf,
  reservationBytes,
  STREAM_CHUNK_BYTES,
  streamedBodyBytes,
} from "../../worker/memory.ts";
import { buffers } from "../../core/buffers.ts";
import { MiB } from "../../core/sizes.ts";
import { call, imageForm, jpegRequest, randomBundle, SMALL_CONFIG } from "./helpers.ts";
import { FAST_SHARE, fastImage } from "../../worker/service.ts";
import type { ImagePlan } from "../../worker/memory.ts";

const NAME = "admission-vit";
const IMAGES: Record<string, ArrayBuffer> = {
  "cat.png": catPng,
  "hubble-cmyk.jpg": hubble,
  "astronaut-444.jpg": astronaut,
  "coffee-progressive.jpg": coffee,
};

const ledger = () => ledgerOf(env);
// With its Content-Length, as a client sends an upload.
const classify = (body: ArrayBuffer, overrides: Partial<Env> = {}, type = "image/jpeg") =>
  call(
    jpegRequest(`/v1/classify?model=${NAME}&include=logits`, body, type, { "content-length": String(body.byteLength) }),
    overrides,
  );

// The reference answers, the model's memory, and what one request for each image reserves at its most.
const alone = new Map<string, unknown>();
const reservation = new Map<string, number>();
let modelBytes = 0;

beforeAll(async () => {
  await env.MODELS.put(`${NAME}.evit`, randomBundle(NAME, 91));
  for (const [name, bytes] of [["cat", cat] as const, ...Object.entries(IMAGES)]) {
    const response = await classify(bytes, {}, name.endsWith(".png") ? "image/png" : "image/jpeg");
    expect(response.status, name).toBe(200);
    alone.set(name, await response.json());
    // Alone, the peak above the baseline is this request's largest reservation (with the pool empty: free
    // buffers it would reuse are room it takes back).
    buffers.trim(0);
    const base = ledger().usedBytes();
    ledger().resetPeak();
    await (await classify(bytes, {}, name.endsWith(".png") ? "image/png" : "image/jpeg")).arrayBuffer();
    reservation.set(name, ledger().peakBytes - base);
  }
  modelBytes = ledger().state().modelBytes;
});

// Settings where requests have `room` bytes beside the loaded models (only this file's model is loaded), and
// the JS heap the ledger counts for `present` requests in the isolate at once beyond those holding memory.
function tight(room: number, more: Partial<Env> = {}, present = 0): Partial<Env> {
  const budget = modelBytes + 64 * 1024; // the model fits its budget; the ledger insists on room beyond it
  const requests = room + present * CROWD_HEAP_BYTES;
  return {
    ISOLATE_MEMORY_MB: (FIXED_HEAP_BYTES + Math.max(modelBytes + requests, budget + 1)) / MiB,
    MODEL_MEMORY_BUDGET_MB: budget / MiB,
    ...more,
  };
}

function expectBaseline(): void {
  expect(ledger().state()).toMatchObject({ reservedBytes: 0, inFlight: 0, queued: 0, loading: [] });
}

async function until(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500 && !condition(); i++) await new Promise((resolve) => setTimeout(resolve, 2));
  expect(condition(), what).toBe(true);
}

// A body the test sends in pieces: `send(n)` more bytes, `fail()` as a reset connection does.
function heldBody(bytes: Uint8Array) {
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  let at = 0;
  const stream = new ReadableStream<Uint8Array>({
    start(c) {
      controller = c;
    },
  });
  return {
    stream,
    send(n: number) {
      controller.enqueue(bytes.slice(at, at + n));
      at += n;
      if (at >= bytes.length) controller.close();
    },
    fail() {
      controller.error(new Error("Network connection lost."));
    },
  };
}

function streamedRequest(body: ReadableStream<Uint8Array>, length?: number, type = "image/jpeg"): Request {
  return new Request(`http://edgevit.test/v1/classify?model=${NAME}&include=logits`, {
    method: "POST",
    body,
    headers: { "content-type": type, ...(length === undefined ? {} : { "content-length": String(length) }) },
    duplex: "half",
  } as RequestInit);
}

const BOUNDARY = "admission-test-boundary";
// A multipart form with a text field, then the image as its `image` field.
const form = (image: Uint8Array) => imageForm(BOUNDARY, image, { filename: "cat.jpg", fields: { note: "a cat" } });
const FORM_TYPE = `multipart/form-data; boundary=${BOUNDARY}`;

// Before its image's header is read, a streamed upload reserves its decoder's window and its reader.
const streamedBody = (type = "image/jpeg") =>
  reservationBytes({ body: streamedBodyBytes(type === FORM_TYPE ? FORM_READER_BYTES : STREAM_CHUNK_BYTES) });

test("a slow body held open reserves its window, not its length, and the others run beside it", async () => {
  const one = reservation.get("cat")!;
  const settings = tight(2.5 * one, {}, 7);
  const bytes = new Uint8Array(cat);
  const slow = heldBody(bytes);
  // It declares 8 MiB: a streamed body is held through the decoder's window, whatever its length.
  const slowAnswer = call(streamedRequest(slow.stream, 8 * MiB), settings);
  slow.send(100);
  await until(() => ledger().state().inFlight === 1, "the slow request is admitted");
  const held = streamedBody();
  expect(held).toBeLessThan(3 * MiB); // the window, the chunk in hand and the request's JS heap
  expect(ledger().state().reservedBytes).toBe(held);

  ledger().resetPeak();
  const others = await Promise.all(Array.from({ length: 6 }, () => classify(cat, settings)));
  for (const response of others) {
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual(alone.get("cat"));
  }
  expect(ledger().peakBytes).toBeLessThanOrEqual(ledger().capacityBytes);
  // The others are done and the slow one still holds exactly its own reservation.
  expect(ledger().state()).toMatchObject({ reservedBytes: held, inFlight: 1, queued: 0 });

  // The rest of the image, then the body ends short of its declared length: the decoder needs no more.
  slow.send(bytes.length);
  const response = await slowAnswer;
  expect(response.status).toBe(200);
  expect(await response.json()).toEqual(alone.get("cat"));
  expectBaseline();
});

test("a burst past the budget: every request answered, some 503 busy with Retry-After, never over budget", async () => {
  const one = reservation.get("cat")!;
  const settings = tight(2.5 * one, { ADMISSION_QUEUE_LENGTH: 3, ADMISSION_WAIT_SECONDS: 0.2 });
  ledger().resetPeak();
  const responses = await Promise.all(Array.from({ length: 16 }, () => classify(cat, settings)));
  expect(ledger().peakBytes).toBeLessThanOrEqual(ledger().capacityBytes);
  let ok = 0;
  let busy = 0;
  for (const response of responses) {
    const body = await response.json<any>();
    if (response.status === 200) {
      ok++;
      expect(body).toEqual(alone.get("cat"));
      continue;
    }
    busy++;
    expect(response.status).toBe(503);
    expect(body.error.code).toBe("busy");
    expect(body.error.message).toBe(
      "The server is busy with other images right now and has no room for this one; try again in 1 s.",
    );
    expect(response.headers.get("retry-after")).toBe("1");
  }
  expect(ok + busy).toBe(16);
  expect(ok).toBeGreaterThanOrEqual(2);
  expect(busy).toBeGreaterThanOrEqual(1);
  expectBaseline();
});

test("an upload that could never fit beside the model is refused at once, not queued", async () => {
  // Room for reading the body but not for decoding it: refused once the header is read.
  const body = streamedBody();
  const decoding = await classify(cat, tight((body + reservation.get("cat")!) / 2));
  expect(decoding.status).toBe(413);
  const refusal = (await decoding.json<any>()).error;
  expect(refusal.code).toBe("image_too_large");
  expect(refusal.message).toMatch(
    /^Decoding this \d+x\d+ JPEG( at 1\/\d)? for model admission-vit needs .+, more than this server has for one request/,
  );
  // Room for less than the body: refused before it is read.
  const reading = await classify(cat, tight(body / 2));
  expect(reading.status).toBe(413);
  const { error } = await reading.json<any>();
  expect(error.code).toBe("payload_too_large");
  expect(error.message).toMatch(/^reading this upload needs .+, more memory than this server has for one upload/);
  expectBaseline();
});

test("a client that disconnects mid-body gets its reservation back to the ledger", async () => {
  const settings = tight(2.5 * reservation.get("cat")!);
  const raw = new Uint8Array(cat);
  const cases = [
    { bytes: raw, length: raw.length, type: "image/jpeg" },
    { bytes: raw, length: undefined, type: "image/jpeg" },
    { bytes: form(raw), length: form(raw).length, type: FORM_TYPE },
  ];
  for (const { bytes, length, type } of cases) {
    // Cut before the image's header (the body's reservation) and in its entropy data (the decode's).
    for (const sent of [100, 400, 20000]) {
      const cut = heldBody(bytes);
      const answer = call(streamedRequest(cut.stream, length, type), settings);
      cut.send(sent);
      try {
        await until(() => ledger().state().inFlight === 1, "the upload is admitted");
        if (sent === 20000) {
          await until(() => ledger().state().reservedBytes > streamedBody(type), `${type}: decoding`);
        } else {
          await new Promise((resolve) => setTimeout(resolve, 10));
          if (sent === 100) expect(ledger().state().reservedBytes, type).toBe(streamedBody(type));
        }
      } finally {
        cut.fail();
      }
      expect((await answer).status, `${type} cut at ${sent}`).toBe(499);
      expectBaseline();
    }
  }
});

test("a burst of multipart forms: each streams its image part, every answer as the raw body's", async () => {
  const one = reservation.get("cat")!;
  const settings = tight(2.5 * one, { ADMISSION_WAIT_SECONDS: 30 }, 8);
  const body = form(new Uint8Array(cat));
  ledger().resetPeak();
  const responses = await Promise.all(
    Array.from({ length: 8 }, () => call(streamedRequest(new Blob([body]).stream(), body.length, FORM_TYPE), settings)),
  );
  expect(ledger().peakBytes).toBeLessThanOrEqual(ledger().capacityBytes);
  for (const response of responses) {
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual(alone.get("cat"));
  }
  expectBaseline();
  // The decode kernels' wasm memory is reported beside the ledger's count (whole 64 KiB pages).
  const { kernelBytes } = ledger().state();
  expect(kernelBytes).toBeGreaterThan(0);
  expect(kernelBytes % 65536).toBe(0);
});

test("an RPC caller that abandons its stream part way: a refusal, and the ledger back to its baseline", async () => {
  const url = `http://caller.test/classify-abandon?options=${encodeURIComponent(JSON.stringify({ model: NAME }))}`;
  const { error } = await (await env.CALLER.fetch(url, { method: "POST", body: cat })).json<any>();
  expect(error.code).toBe("bad_parameter");
  expect(error.message).toBe("bad_parameter: the image stream failed after 1000 bytes");
  // The ledger of the isolate that served the call, as its own models() reports it.
  const { result } = await (await env.CALLER.fetch("http://caller.test/models")).json<any>();
  expect(result.memory.isolate).toMatchObject({ reservedBytes: 0, inFlight: 0, queued: 0 });
});

// The queue consumer with every delivery's outcome.
async function deliver(keys: string[], overrides: Partial<Env>, attempts: number) {
  const messages = keys.map((key, i) => ({
    id: `adm-${attempts}-${i}`,
    timestamp: new Date(0),
    attempts,
    body: {
      account: "test",
      action: "PutObject",
      bucket: env.INPUT_BUCKET,
      object: { key, size: 1 },
      eventTime: "2026-12-01T12:00:00.000Z",
    },
  }));
  const batch = createMessageBatch("edgevit-images-events", messages);
  const ctx = createExecutionContext();
  await worker.queue(batch, { ...env, PIPELINE_MODEL: NAME, PIPELINE_TASKS: "classify", ...overrides } as Env, ctx);
  return getQueueResult(batch, ctx);
}

test("a queue batch of four large images while others hold the room: retried, then all answered", async () => {
  const keys = Object.keys(IMAGES).map((name) => `admission/${name}`);
  for (const key of keys) await env.IMAGES.put(key, IMAGES[key.slice("admission/".length)]);
  const largest = Math.max(...Object.keys(IMAGES).map((name) => reservation.get(name)!));
  const smallest = Math.min(...Object.keys(IMAGES).map((name) => reservation.get(name)!));
  // Room for the largest alone; other requests hold all but less than the smallest of it.
  const room = largest + 64 * 1024;
  const settings = tight(room, { ADMISSION_WAIT_SECONDS: 0.1 });
  const others = await ledgerOf({ ...env, ...settings } as Env).admit(room - smallest + 1024);

  const first = await deliver(keys, settings, 1);
  expect(first.explicitAcks).toEqual([]);
  expect(first.retryMessages.map((m) => m.msgId).sort()).toEqual(keys.map((_, i) => `adm-1-${i}`));
  for (const key of keys) expect(await env.RESULTS.get(`${env.RESULT_PREFIX}${key}.json`)).toBeNull();

  others.release();
  expectBaseline();

  ledger().resetPeak();
  const second = await deliver(keys, settings, 2);
  expect(second.retryMessages).toEqual([]);
  expect(second.explicitAcks.sort()).toEqual(keys.map((_, i) => `adm-2-${i}`));
  expect(ledger().peakBytes).toBeLessThanOrEqual(ledger().capacityBytes);
  for (const key of keys) {
    const written = JSON.parse(await (await env.RESULTS.get(`${env.RESULT_PREFIX}${key}.json`))!.text());
    const reference = alone.get(key.slice("admission/".length)) as { logits?: number[] };
    const { logits: _, ...classified } = reference;
    expect(written.classify).toEqual(classified);
  }
  expectBaseline();
});

test("decode=fast: a progressive JPEG whose scale could never fit beside the model decodes at a coarser one", async () => {
  // A 64x64 model: decode=fast reads the 600x400 progressive photo at 1/2, its coefficients kept whole.
  const name = "admission-vit-64";
  await env.MODELS.put(`${name}.evit`, randomBundle(name, 92, { ...SMALL_CONFIG, imageSize: 64 }));
  const request = (decode: string, overrides: Partial<Env> = {}) =>
    call(
      jpegRequest(`/v1/classify?model=${name}&decode=${decode}`, coffee, "image/jpeg", {
        "content-length": String(coffee.byteLength),
      }),
      overrides,
    );
  const first = await request("fast");
  expect((await first.json<any>()).image.decode).toEqual({ mode: "fast", scale: 2 });
  buffers.trim(0);
  const base = ledger().usedBytes();
  ledger().resetPeak();
  await (await request("fast")).arrayBuffer();
  const needs = ledger().peakBytes - base;
  // Room for one request just short of that, both test models loaded and within their budget.
  const { modelBytes: models } = ledger().state();
  const settings = {
    ISOLATE_MEMORY_MB: (FIXED_HEAP_BYTES + models + needs - 1024) / MiB,
    MODEL_MEMORY_BUDGET_MB: (models + 64 * 1024) / MiB,
  };
  ledger().resetPeak();
  const coarser = await request("fast", settings);
  expect(coarser.status).toBe(200);
  const { decode } = (await coarser.json<any>()).image;
  expect(decode.mode).toBe("fast");
  expect(decode.scale).toBeGreaterThan(2);
  expect(ledger().peakBytes).toBeLessThanOrEqual(ledger().capacityBytes);
  // decode=exact keeps every pixel or is refused.
  const exact = await request("exact", settings);
  expect(exact.status).toBe(413);
  expect((await exact.json<any>()).error.code).toBe("image_too_large");
  expectBaseline();
});

test("decode=fast plans for half the room beside the models: a progressive JPEG takes a coarser scale rather than run alone", () => {
  // A 12 MP progressive JPEG beside a ViT-B/16: 25.7 MiB at 1/4 (its coefficients), 10.3 MiB at 1/8.
  const at = (scale: number) => ({ header: {} as ImagePlan["header"], scale, decoderBytes: 0 });
  const bytes = new Map([
    [4, 25.7 * MiB],
    [8, 10.3 * MiB],
  ]);
  const bytesAt = (image: ImagePlan) => bytes.get(image.scale)!;
  const images = [at(4), at(8)];
  expect(FAST_SHARE).toBe(0.5);
  // 27 MiB of room: 1/4 fits alone, not in half; 1/8 fits in half.
  expect(fastImage(images, bytesAt, 27 * MiB).scale).toBe(8);
  // 60 MiB: 1/4 fits in half.
  expect(fastImage(images, bytesAt, 60 * MiB).scale).toBe(4);
  // 15 MiB: nothing fits in half; 1/8 fits the room.
  expect(fastImage(images, bytesAt, 15 * MiB).scale).toBe(8);
  // 5 MiB: nothing fits; the finest, which the reservation refuses.
  expect(fastImage(images, bytesAt, 5 * MiB).scale).toBe(4);
});
