// POST /v1/models inside workerd, against the local hub (test/tools/hub-service.ts, miniflare's outbound
// service: http://hub.test and its CDN http://cdn.test): the queued import writes the bundle `edgevit convert`
// makes of the same files, byte for byte; a connection cut mid-tensor fails the import, aborts its multipart
// upload and leaves the older bundle serving; refusals come back at once with a stable code.

import { createExecutionContext, createMessageBatch, env, getQueueResult } from "cloudflare:test";
import { expect, test } from "vitest";
import cat from "../fixtures/images/cat-baseline-420.jpg";
import type { TensorEntry } from "../../core/bundle/format.ts";
import { checkSectionBytes } from "../../core/bundle/reader.ts";
import type { TextSection } from "../../core/bundle/text.ts";
import { plan } from "../../core/convert/convert.ts";
import { crc32 } from "../../core/crc32.ts";
import { tokenizerFromBytes } from "../../core/text/index.ts";
import { hubSource, MAX_REMOTE_HEADER_BYTES } from "../../core/convert/hub-source.ts";
import { checkpointFiles } from "../../core/hub/files.ts";
import { MiB } from "../../core/sizes.ts";
import worker from "../../worker/index.ts";
import {
  IMPORT_QUEUE,
  type ImportMessage,
  type ImportRecord,
  hubOf,
  importBytes,
  JSON_HELD_PER_BYTE,
  MultipartSink,
  PART_BYTES,
} from "../../worker/imports.ts";
import { FIXED_HEAP_BYTES, ledgerOf, reservationBytes } from "../../worker/memory.ts";
import { call, jpegRequest, randomBundle } from "./helpers.ts";

const hub = env.HUB;

// A queue that keeps what is sent, so each test delivers its import itself.
function queue(): { binding: Queue; sent: ImportMessage[] } {
  const sent: ImportMessage[] = [];
  return { binding: { send: async (body: ImportMessage) => void sent.push(body) } as unknown as Queue, sent };
}

// The real bucket, recording multipart uploads created and aborted.
function recordingBucket(bucket: R2Bucket) {
  const created: string[] = [];
  const aborted: string[] = [];
  const wrapped = new Proxy(bucket, {
    get(target, property) {
      if (property === "createMultipartUpload")
        return async (key: string, options?: R2MultipartOptions) => {
          const upload = await target.createMultipartUpload(key, options);
          created.push(upload.uploadId);
          return new Proxy(upload, {
            get(u, p) {
              if (p === "abort")
                return () => {
                  aborted.push(u.uploadId);
                  return u.abort();
                };
              const value = Reflect.get(u, p);
              return typeof value === "function" ? value.bind(u) : value;
            },
          });
        };
      const value = Reflect.get(target, property);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  return { bucket: wrapped, created, aborted };
}

// The real bucket, except that creating a multipart upload (the import has planned and holds its memory
// reservation then) waits until `release()`; `reached` resolves when an import gets there.
function heldUploads(bucket: R2Bucket) {
  let arrived!: () => void;
  const reached = new Promise<void>((resolve) => {
    arrived = resolve;
  });
  let release!: () => void;
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  const held = new Proxy(bucket, {
    get(target, property) {
      if (property === "createMultipartUpload")
        return async (key: string, options?: R2MultipartOptions) => {
          arrived();
          await gate;
          return target.createMultipartUpload(key, options);
        };
      const value = Reflect.get(target, property);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  return { bucket: held, reached, release };
}

function post(body: unknown, overrides: Partial<Env> = {}): Promise<Response> {
  return call(
    new Request("http://edgevit.test/v1/models", {
      method: "POST",
      body: typeof body === "string" ? body : JSON.stringify(body),
      headers: { "content-type": "application/json" },
    }),
    overrides,
  );
}

async function deliver(messages: ImportMessage[], overrides: Partial<Env>) {
  const batch = createMessageBatch<ImportMessage>(
    IMPORT_QUEUE,
    messages.map((body, i) => ({ id: `import-${i}`, timestamp: new Date(0), attempts: 1, body })),
  );
  const ctx = createExecutionContext();
  await worker.queue(batch, { ...env, ...overrides }, ctx);
  return getQueueResult(batch, ctx);
}

async function status(name: string): Promise<{ name: string; bundle?: { etag: string }; import?: ImportRecord }> {
  return (await call(new Request(`http://edgevit.test/v1/models/${name}`))).json();
}

async function reference(repo: string, name: string, convertedAt: string): Promise<Uint8Array> {
  const q = new URLSearchParams({ repo, name, convertedAt });
  return new Uint8Array(await (await hub.fetch(`http://hub/reference?${q}`)).arrayBuffer());
}

const log = async () =>
  (await (await hub.fetch("http://hub/log")).json()) as {
    method: string;
    url: string;
    range: string | null;
    authorization: string | null;
  }[];

test("an import writes the bundle `edgevit convert` makes of the same files", async () => {
  await hub.fetch("http://hub/clear");
  const { binding, sent } = queue();
  const response = await post({ repo: "org/tiny-vit", name: "hub-vit" }, { IMPORTS: binding });
  expect(response.status).toBe(202);
  expect(response.headers.get("location")).toBe("/v1/models/hub-vit");
  const queued = (await response.json()) as ImportRecord;
  expect(queued).toMatchObject({ name: "hub-vit", repo: "org/tiny-vit", revision: "main", state: "queued" });
  expect(queued.commit).toMatch(/^[0-9a-f]{40}$/);
  expect(sent).toEqual([{ name: "hub-vit", id: queued.id }]);
  expect((await status("hub-vit")).import?.state).toBe("queued");

  const result = await deliver(sent, { IMPORTS: binding });
  expect(result.explicitAcks).toEqual(["import-0"]);
  const { bundle, import: done } = await status("hub-vit");
  expect(done?.state, JSON.stringify(done?.error)).toBe("done");
  expect(bundle?.etag).toBe(done?.bundle?.etag);

  const object = await env.MODELS.get("hub-vit.evit");
  const bytes = new Uint8Array(await (object as R2ObjectBody).arrayBuffer());
  const expected = await reference("org/tiny-vit", "hub-vit", queued.requested.replace(/\.\d+Z$/, "Z"));
  expect(bytes.length).toBe(expected.length);
  expect(bytes.length).toBeLessThan(PART_BYTES); // one part
  expect(bytes).toEqual(expected);
  expect(done?.bundle?.version).toBe(
    JSON.parse(new TextDecoder().decode(bytes.subarray(16, 16 + new DataView(bytes.buffer).getUint32(8, true)))).payload
      .crc32,
  );

  // it serves as the converted bundle does
  const classify = await call(new Request("http://edgevit.test/v1/models", { method: "GET" }));
  const listed = (await classify.json()) as { models: { name: string; version?: string }[] };
  expect(listed.models.find((m) => m.name === "hub-vit")?.version).toBe(done?.bundle?.version);

  // the large file came by ranges from the CDN without the token; the hub had the token
  const requests = await log();
  const cdn = requests.filter((r) => r.url.startsWith("http://cdn.test/"));
  expect(cdn.length).toBeGreaterThan(2);
  expect(cdn.every((r) => r.authorization === null && r.range !== null)).toBe(true);
  expect(
    requests
      .filter((r) => r.url.startsWith("http://hub.test/"))
      .every((r) => r.authorization === "Bearer hf_workerd_test"),
  ).toBe(true);
  expect(requests.every((r) => /^http:\/\/(hub|cdn)\.test\//.test(r.url))).toBe(true);
});

test("a connection cut mid-tensor fails the import, aborts its upload and leaves the older bundle serving", async () => {
  const old = randomBundle("cut-vit", 5);
  await env.MODELS.put("cut-vit.evit", old);
  const { binding, sent } = queue();
  const { bucket, created, aborted } = recordingBucket(env.MODELS);
  const response = await post({ repo: "org/tiny-vit", name: "cut-vit" }, { IMPORTS: binding, MODELS: bucket });
  expect(response.status).toBe(202);
  // the middle of model.safetensors is inside a tensor; every attempt at it is cut
  await hub.fetch("http://hub/cut", {
    method: "POST",
    body: JSON.stringify({ file: "model.safetensors", at: 600_000, times: -1 }),
  });
  try {
    await deliver(sent, { IMPORTS: binding, MODELS: bucket });
  } finally {
    await hub.fetch("http://hub/cut", { method: "POST", body: "null" });
  }
  const { import: failed, bundle } = await status("cut-vit");
  expect(failed?.state).toBe("failed");
  expect(failed?.error?.code).toBe("hub_unavailable");
  expect(failed?.error?.message).toMatch(/the download of model.safetensors stopped after \d+ of \d+ bytes/);
  expect(failed?.uploadId).toBeUndefined();
  expect(created.length).toBe(1);
  expect(aborted).toEqual(created);
  const kept = new Uint8Array(await ((await env.MODELS.get("cut-vit.evit")) as R2ObjectBody).arrayBuffer());
  expect(kept).toEqual(old);
  // the listing describes the older bundle, still in R2
  const stored = await env.MODELS.head("cut-vit.evit");
  expect(stored?.etag).toMatch(/^\w+$/);
  expect(bundle?.etag).toBe(stored?.etag);
  const served = await call(new Request("http://edgevit.test/v1/models"));
  const listed = (await served.json()) as { models: { name: string; error?: unknown }[] };
  expect(listed.models.find((m) => m.name === "cut-vit")?.error).toBeUndefined();
});

test("refusals come back at once: gated, missing, .bin only, over the limits, a bad body", async () => {
  const { binding, sent } = queue();
  const refused = async (body: unknown, overrides: Partial<Env> = {}) => {
    const response = await post(body, { IMPORTS: binding, ...overrides });
    return {
      status: response.status,
      ...((await response.json()) as { error: { code: string; message: string } }).error,
    };
  };
  expect(await refused({ repo: "org/gated-vit" }, { HF_TOKEN: undefined })).toMatchObject({
    status: 403,
    code: "hub_access_denied",
    message: expect.stringMatching(
      /org\/gated-vit is gated or private: set HF_TOKEN .* accepted its licence at http:\/\/hub.test\/org\/gated-vit/,
    ),
  });
  expect(await refused({ repo: "org/missing" })).toMatchObject({ status: 404, code: "not_found" });
  expect(await refused({ repo: "org/tiny-vit", revision: "v2" })).toMatchObject({
    status: 404,
    message: 'org/tiny-vit has no revision "v2"',
  });
  expect(await refused({ repo: "org/bin-only" })).toMatchObject({
    status: 422,
    code: "unsupported_checkpoint",
    message: expect.stringMatching(/only as pytorch_model.bin; edgevit reads safetensors only/),
  });
  await hub.fetch("http://hub/clear");
  expect(await refused({ repo: "org/too-deep" })).toMatchObject({
    status: 422,
    code: "unsupported_checkpoint",
    message: "config.json: num_hidden_layers is 100, over the limit of 64 for a model a Worker can hold",
  });
  // refused from config.json alone: no tensor was read
  expect((await log()).filter((r) => r.url.startsWith("http://cdn.test/")).map((r) => r.range)).toEqual([
    "bytes=0-7",
    expect.stringMatching(/^bytes=8-\d+$/),
  ]);
  expect(await refused("not json")).toMatchObject({ status: 400, code: "bad_parameter" });
  expect(await refused({ repo: "../x" })).toMatchObject({ status: 400, code: "bad_parameter" });
  expect(await refused({ repo: "org/tiny-vit", name: "no/slash" })).toMatchObject({
    status: 400,
    code: "bad_parameter",
  });
  expect(sent).toEqual([]);
  expect((await call(new Request("http://edgevit.test/v1/models/nothing-here"))).status).toBe(404);
});

test("a bundle of several parts: equal 8 MiB parts, the last shorter, part 1 (with the final head) sent last", async () => {
  const size = 2 * PART_BYTES + 12345;
  const parts = new Map<number, Uint8Array>();
  const order: number[] = [];
  let completed: R2UploadedPart[] = [];
  const upload = {
    uploadId: "fake",
    key: "many.evit",
    async uploadPart(partNumber: number, value: Uint8Array) {
      parts.set(partNumber, value.slice());
      order.push(partNumber);
      return { partNumber, etag: `etag-${partNumber}` };
    },
    async complete(uploaded: R2UploadedPart[]) {
      completed = uploaded;
      return { key: "many.evit", size } as R2Object;
    },
  } as unknown as R2MultipartUpload;
  const progress: number[] = [];
  const sink = new MultipartSink(upload, size, async (written) => void progress.push(written));
  const expected = new Uint8Array(size).map((_, i) => (i * 7 + 3) & 255);
  const head = 1000;
  await sink.write(new Uint8Array(head), 0); // the placeholder head
  for (let at = head; at < size; ) {
    const n = Math.min(size - at, 3_000_001); // chunks across part boundaries
    await sink.write(expected.subarray(at, at + n), at);
    at += n;
  }
  await sink.write(expected.subarray(0, head), 0); // the final head
  await sink.complete();
  expect(order).toEqual([2, 3, 1]);
  expect([...parts.keys()].sort().map((k) => parts.get(k)?.length)).toEqual([PART_BYTES, PART_BYTES, 12345]);
  expect(completed.map((p) => p.partNumber)).toEqual([1, 2, 3]);
  const joined = new Uint8Array(size);
  for (const [n, bytes] of parts) joined.set(bytes, (n - 1) * PART_BYTES);
  expect(joined).toEqual(expected);
  expect(progress).toEqual([2 * PART_BYTES]);
  await expect(new MultipartSink(upload, 10, async () => {}).write(new Uint8Array(1), 5)).rejects.toThrow(
    /out of order/,
  );
});

test("a CLIP checkpoint imports to the bundle `edgevit convert` makes of it: its image tower, I64 buffers skipped", async () => {
  const { binding, sent } = queue();
  const response = await post({ repo: "org/tiny-clip", name: "hub-clip" }, { IMPORTS: binding });
  expect(response.status).toBe(202);
  const queued = (await response.json()) as ImportRecord;
  expect(queued.summary).toMatch(/clip/i);
  const result = await deliver(sent, { IMPORTS: binding });
  expect(result.explicitAcks).toEqual(["import-0"]);
  const { import: done } = await status("hub-clip");
  expect(done?.state, JSON.stringify(done?.error)).toBe("done");
  const bytes = new Uint8Array(await ((await env.MODELS.get("hub-clip.evit")) as R2ObjectBody).arrayBuffer());
  const expected = await reference("org/tiny-clip", "hub-clip", queued.requested.replace(/\.\d+Z$/, "Z"));
  expect(bytes.length).toBe(expected.length);
  expect(bytes).toEqual(expected);
  const header = JSON.parse(
    new TextDecoder().decode(bytes.subarray(16, 16 + new DataView(bytes.buffer).getUint32(8, true))),
  );
  expect(header.config.family).toBe("clip");
  expect(header.source.layout).toBe("hf-clip");

  // it answers as a CLIP tower: the projected image embedding
  const embed = await call(jpegRequest("/v1/embed?model=hub-clip", cat));
  expect(embed.status).toBe(200);
  const answer = (await embed.json()) as { family: string; pool: string; dim: number; embedding: number[] };
  expect(answer).toMatchObject({ family: "clip", pool: "image_embeds", dim: header.config.projection });
  expect(answer.embedding).toHaveLength(header.config.projection);
});

test("a CLIP checkpoint with its tokenizer files imports with its text tower, as `edgevit convert` writes it", async () => {
  const { binding, sent } = queue();
  const response = await post({ repo: "org/tiny-clip-text", name: "hub-clip-text" }, { IMPORTS: binding });
  expect(response.status).toBe(202);
  const queued = (await response.json()) as ImportRecord;
  await deliver(sent, { IMPORTS: binding });
  const { import: done } = await status("hub-clip-text");
  expect(done?.state, JSON.stringify(done?.error)).toBe("done");
  const bytes = new Uint8Array(await ((await env.MODELS.get("hub-clip-text.evit")) as R2ObjectBody).arrayBuffer());
  const expected = await reference("org/tiny-clip-text", "hub-clip-text", queued.requested.replace(/\.\d+Z$/, "Z"));
  expect(bytes.length).toBe(expected.length);
  expect(bytes).toEqual(expected);
  const header = JSON.parse(
    new TextDecoder().decode(bytes.subarray(16, 16 + new DataView(bytes.buffer).getUint32(8, true))),
  );
  expect(header.version).toBe(3);
  expect(header.sections.map((s: { name: string; kind: string }) => [s.name, s.kind])).toEqual([["text", "clip-text"]]);
  expect(Object.keys(header.source.files)).toEqual([
    "config.json",
    "preprocessor_config.json",
    "model.safetensors",
    "vocab.json",
    "merges.txt",
    "tokenizer_config.json",
  ]);

  // its section checks as a loader checks it (length, CRC-32, finite floats), and its tokenizer is CLIP's,
  // read from the checkpoint's vocab.json and merges.txt (loading it here would leave a text model in this
  // isolate's ledger for the tests after this one)
  const [section] = header.sections as TextSection[];
  checkSectionBytes(section, bytes.subarray(section.offset, section.offset + section.length), crc32);
  const entry = section.tensors.find((t) => t.name === "tokenizer") as TensorEntry;
  const at = section.offset + entry.offset;
  const tokenizer = tokenizerFromBytes(bytes.subarray(at, at + entry.bytes));
  const ids = Array.from(tokenizer.encode(["a photo of a cat"]).inputIds[0]);
  // <|startoftext|> after the 49,406 byte symbols and merges, "a</w>" = 256 + the byte's place among them
  expect(ids.slice(0, 2)).toEqual([49406, 320]);
  expect(ids).toContain(49407); // <|endoftext|>
  expect(tokenizer.vocabSize).toBe(section.config.vocab);
});

// What the import `queued` of org/tiny-vit reserves: importBytes of its plan, read from the hub as the
// consumer reads it; the largest tensor of the checkpoint and the bundle's size.
async function tinyVitReservation(queued: ImportRecord): Promise<{ bytes: number; largest: number; bundle: number }> {
  const hub = hubOf(env);
  const files = await checkpointFiles(hub, "org/tiny-vit", queued.commit, (file) => hub.bytes(file));
  const convertedAt = queued.requested.replace(/\.\d+Z$/, "Z");
  const planned = await plan(hubSource(hub, files), { name: queued.name, convertedAt });
  await planned.ckpt.close();
  const largest = Math.max(...[...planned.ckpt.tensors.values()].map((t) => t.end - t.begin));
  const bundle = (await reference("org/tiny-vit", queued.name, convertedAt)).length;
  return { bytes: importBytes(planned), largest, bundle };
}

// Ledger settings where requests have `room` bytes beside the loaded models.
function tight(room: number, more: Partial<Env> = {}): Partial<Env> {
  const modelBytes = ledgerOf(env).state().modelBytes;
  const budget = modelBytes + 64 * 1024; // the models fit their budget; the ledger insists on room beyond it
  return {
    ISOLATE_MEMORY_MB: (FIXED_HEAP_BYTES + Math.max(modelBytes + room, budget + 1)) / MiB,
    MODEL_MEMORY_BUDGET_MB: budget / MiB,
    ...more,
  };
}

test("an import holds its peak in the isolate's memory ledger: an upload beside it waits until it is done", async () => {
  await env.MODELS.put("ledger-vit.evit", randomBundle("ledger-vit", 21));
  const classify = (overrides: Partial<Env>) =>
    call(
      jpegRequest("/v1/classify?model=ledger-vit", cat, "image/jpeg", { "content-length": String(cat.byteLength) }),
      overrides,
    );
  const first = await classify({});
  expect(first.status).toBe(200);
  const answer = await first.json();
  // one classification's reservation, alone
  const base = ledgerOf(env).usedBytes();
  ledgerOf(env).resetPeak();
  await (await classify({})).arrayBuffer();
  const upload = ledgerOf(env).peakBytes - base;

  const { binding, sent } = queue();
  const queued = (await (
    await post({ repo: "org/tiny-vit", name: "ledger-import" }, { IMPORTS: binding })
  ).json()) as ImportRecord;
  const reserved = await tinyVitReservation(queued);
  // at least the part it buffers (the whole bundle: one part) and the largest tensor raw and in f32
  expect(reserved.bundle).toBeLessThan(PART_BYTES);
  expect(reserved.bytes).toBeGreaterThanOrEqual(reserved.bundle + 2 * reserved.largest);

  // Room for the import or the upload, not both.
  const settings = tight(reserved.bytes + upload - 1);
  const ledger = () => ledgerOf({ ...env, ...settings } as Env);
  const held = heldUploads(env.MODELS);
  const overrides = { ...settings, IMPORTS: binding, MODELS: held.bucket };
  ledger().resetPeak();
  const importing = deliver(sent, overrides);
  await held.reached;
  expect(ledger().state()).toMatchObject({ reservedBytes: reserved.bytes, inFlight: 1, queued: 0 });
  const beside = classify(settings);
  for (let i = 0; i < 500 && ledger().state().queued === 0; i++) await new Promise((r) => setTimeout(r, 2));
  expect(ledger().state().queued).toBe(1); // the upload waits for the import's memory
  held.release();
  const [result, response] = await Promise.all([importing, beside]);
  expect(result.explicitAcks).toEqual(["import-0"]);
  expect(response.status).toBe(200);
  expect(await response.json()).toEqual(answer);
  expect(ledger().peakBytes).toBeLessThanOrEqual(ledger().capacityBytes);
  expect(ledger().state()).toMatchObject({ reservedBytes: 0, inFlight: 0, queued: 0 });

  const bytes = new Uint8Array(await ((await env.MODELS.get("ledger-import.evit")) as R2ObjectBody).arrayBuffer());
  expect(bytes).toEqual(await reference("org/tiny-vit", "ledger-import", queued.requested.replace(/\.\d+Z$/, "Z")));
});

test("an import that finds the isolate's memory taken is retried later, its record still queued", async () => {
  const { binding, sent } = queue();
  const queued = (await (
    await post({ repo: "org/tiny-vit", name: "busy-import" }, { IMPORTS: binding })
  ).json()) as ImportRecord;
  const reserved = await tinyVitReservation(queued);
  const settings = tight(reserved.bytes, { ADMISSION_WAIT_SECONDS: 0.05 });
  const ledger = () => ledgerOf({ ...env, ...settings } as Env);
  const overrides = { ...settings, IMPORTS: binding };
  // another holder of memory: what is left is short of the import's reservation
  const other = await ledger().admit(1024 * 1024);
  try {
    const result = await deliver(sent, overrides);
    expect(result.explicitAcks).toEqual([]);
    expect(result.retryMessages).toEqual([{ msgId: "import-0" }]);
    const { import: waiting, bundle } = await status("busy-import");
    expect(waiting).toMatchObject({ id: queued.id, state: "queued" });
    expect(waiting?.uploadId).toBeUndefined();
    expect(bundle).toBeUndefined();
  } finally {
    other.release();
  }
  const again = await deliver(sent, overrides);
  expect(again.explicitAcks).toEqual(["import-0"]);
  expect((await status("busy-import")).import?.state).toBe("done");
  expect(ledger().state()).toMatchObject({ reservedBytes: 0, inFlight: 0, queued: 0 });
});

test("an import more than an isolate could hold for it is refused when requested", async () => {
  const { binding, sent } = queue();
  // Room for the request itself (its JS heap) beside the small models earlier tests left cached, not for
  // the import.
  const small = { ISOLATE_MEMORY_MB: (FIXED_HEAP_BYTES + 1.75 * MiB) / MiB, MODEL_MEMORY_BUDGET_MB: 0.25 };
  const response = await post({ repo: "org/tiny-vit", name: "too-big" }, { IMPORTS: binding, ...small });
  expect(response.status).toBe(422);
  const { error } = (await response.json()) as { error: { code: string; message: string } };
  expect(error.code).toBe("unsupported_checkpoint");
  expect(error.message).toMatch(
    /^importing .* in the Worker holds [\d.]+ MiB at once, more than the 1.8 MiB an isolate has for it; convert it with npx edgevit pull/,
  );
  expect(sent).toEqual([]);
});

test("a hub that stalls mid-tensor without closing fails the import after the timeout, its upload aborted, the older bundle serving", async () => {
  const old = randomBundle("stall-vit", 6);
  await env.MODELS.put("stall-vit.evit", old);
  const { binding, sent } = queue();
  const { bucket, created, aborted } = recordingBucket(env.MODELS);
  const overrides = { IMPORTS: binding, MODELS: bucket, HF_HUB_DOWNLOAD_TIMEOUT: 0.2 };
  expect((await post({ repo: "org/tiny-vit", name: "stall-vit" }, overrides)).status).toBe(202);
  await hub.fetch("http://hub/cut", {
    method: "POST",
    body: JSON.stringify({ file: "model.safetensors", at: 600_000, times: -1, stall: true }),
  });
  const started = Date.now();
  try {
    await deliver(sent, overrides);
  } finally {
    await hub.fetch("http://hub/cut", { method: "POST", body: "null" });
  }
  // three attempts of the range, each abandoned after 0.2 s of silence
  expect(Date.now() - started).toBeLessThan(10_000);
  const { import: failed } = await status("stall-vit");
  expect(failed?.state).toBe("failed");
  expect(failed?.error?.code).toBe("hub_unavailable");
  expect(failed?.error?.message).toMatch(
    /^the download of model.safetensors stalled after \d+ of \d+ bytes: nothing arrived for 0.2 s$/,
  );
  expect(failed?.uploadId).toBeUndefined();
  expect(created.length).toBe(1);
  expect(aborted).toEqual(created);
  const kept = new Uint8Array(await ((await env.MODELS.get("stall-vit.evit")) as R2ObjectBody).arrayBuffer());
  expect(kept).toEqual(old);
  expect(ledgerOf(env).state()).toMatchObject({ reservedBytes: 0, inFlight: 0 });
});

test("a safetensors header longer than the Worker reads is refused from its length field, 422", async () => {
  await hub.fetch("http://hub/clear");
  const { binding, sent } = queue();
  const response = await post({ repo: "org/huge-header" }, { IMPORTS: binding });
  expect(response.status).toBe(422);
  const { error } = (await response.json()) as { error: { code: string; message: string } };
  expect(error.code).toBe("unsupported_checkpoint");
  expect(MAX_REMOTE_HEADER_BYTES).toBe(2 * 1455 * 256);
  expect(error.message).toBe(
    "the safetensors header of model.safetensors is 1.0 MiB, over the 727.5 KiB read from the hub for a " +
      "checkpoint (256 bytes for each of twice the 1455 tensors a bundle can have); `npx edgevit pull` converts " +
      "it on your machine",
  );
  // its length field only: the claimed header was never asked for
  expect((await log()).filter((r) => r.url.startsWith("http://cdn.test/")).map((r) => r.range)).toEqual(["bytes=0-7"]);
  expect(sent).toEqual([]);
  expect(ledgerOf(env).state()).toMatchObject({ reservedBytes: 0, inFlight: 0 });
});

test("POST /v1/models reserves what it reads in the memory ledger before reading it", async () => {
  const { binding, sent } = queue();
  const ledger = ledgerOf(env);
  const base = ledger.usedBytes();
  ledger.resetPeak();
  const response = await post({ repo: "org/tiny-vit", name: "ledger-post" }, { IMPORTS: binding });
  expect(response.status).toBe(202);
  const queued = (await response.json()) as ImportRecord;
  expect(ledger.state()).toMatchObject({ reservedBytes: 0, inFlight: 0 });
  // the JSON files (config.json twice: the file list reads it, then the converter) and the header, each
  // JSON_HELD_PER_BYTE times
  const hubClient = hubOf(env);
  const files = await checkpointFiles(hubClient, "org/tiny-vit", queued.commit, (file) => hubClient.bytes(file));
  const length = await hubClient.range(files.weights[0], 0, 8);
  const header = Number(new DataView(length.buffer).getBigUint64(0, true));
  const json = 2 * files.config.size + (files.preprocessor?.size ?? 0);
  const reserved = ledger.peakBytes - base;
  expect(reserved).toBe(reservationBytes({ body: 0 }) + JSON_HELD_PER_BYTE * (json + header));

  // one byte short of it: busy before the header is read (its length field only), nothing queued
  await hub.fetch("http://hub/clear");
  const refused = await post(
    { repo: "org/tiny-vit", name: "ledger-post-2" },
    { IMPORTS: binding, ...tight(reserved - 1) },
  );
  expect(refused.status).toBe(503);
  expect(((await refused.json()) as { error: { code: string } }).error.code).toBe("busy");
  const ranges = (await log()).filter((r) => r.url.startsWith("http://cdn.test/")).map((r) => r.range);
  expect(ranges).toEqual(["bytes=0-7"]);
  expect(sent).toHaveLength(1);
  expect(ledger.state()).toMatchObject({ reservedBytes: 0, inFlight: 0 });
});
