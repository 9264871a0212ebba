// Request bodies read BYOB inside workerd: a body the runtime holds (what an HTTP upload is) is a byte
// stream, read straight into the decoder's window; a stream that is not a byte stream is read chunk by chunk.
// Both paths must decode the same pixels and give the same answers, a client that goes away in the middle
// of a BYOB read must give its reservation and its window back, and the body of an upload refused busy is
// read away through the pool, not left for someone else to read chunk by chunk.

import { beforeAll, expect, test } from "vitest";
import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import cat from "../fixtures/images/cat-baseline-420.jpg";
import catPng from "../fixtures/images/cat.png";
import coffee from "../fixtures/images/coffee-progressive.jpg";
import { buffers } from "../../core/buffers.ts";
import { ByteSource } from "../../core/image/bytes.ts";
import { openImage } from "../../core/image/open.ts";
import {
  FIXED_HEAP_BYTES,
  ledgerOf,
  reservationBytes,
  STREAM_CHUNK_BYTES,
  streamedBodyBytes,
} from "../../worker/memory.ts";
import { MiB } from "../../core/sizes.ts";
import worker from "../../worker/index.ts";
import { call, imageForm, randomBundle } from "./helpers.ts";

const NAME = "byob-vit";
const LIMITS = { maxPixels: 100_000_000 };
const IMAGES = [
  { name: "cat-baseline-420.jpg", bytes: new Uint8Array(cat), type: "image/jpeg" },
  { name: "coffee-progressive.jpg", bytes: new Uint8Array(coffee), type: "image/jpeg" },
  { name: "cat.png", bytes: new Uint8Array(catPng), type: "image/png" },
];
const ledger = () => ledgerOf(env);

beforeAll(async () => {
  await env.MODELS.put(`${NAME}.evit`, randomBundle(NAME, 19));
});

// A stream that is not a byte stream, in pieces of awkward sizes: read with the default reader.
function chunked(bytes: Uint8Array, size = 1531): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      controller.enqueue(bytes.slice(at, (at += size)));
      if (at >= bytes.length) controller.close();
    },
  });
}

// A body as workerd holds an upload (an internal byte stream), or as a caller's plain stream.
function request(body: Uint8Array | ReadableStream<Uint8Array>, type: string, query = ""): Request {
  return new Request(`http://edgevit.test/v1/classify?model=${NAME}&include=logits${query}`, {
    method: "POST",
    body,
    headers: { "content-type": type },
    duplex: "half",
  } as RequestInit);
}

const BOUNDARY = "byob-test-boundary";
const form = (image: Uint8Array, type: string) => imageForm(BOUNDARY, image, { type });
const FORM_TYPE = `multipart/form-data; boundary=${BOUNDARY}`;

async function rows(source: ByteSource): Promise<Uint8Array[]> {
  const decoder = await openImage(source, LIMITS);
  const got: Uint8Array[] = [];
  await decoder.decode(1, (band, first, count) => {
    const width = band.length / count;
    for (let i = 0; i < count; i++) got[first + i] = band.slice(i * width, (i + 1) * width);
  });
  source.close();
  return got;
}

test("a request body workerd holds is read BYOB, a plain stream with the default reader, to the same pixels", async () => {
  for (const { name, bytes, type } of IMAGES) {
    const byob = ByteSource.from(request(bytes, type).body!, { maxBytes: 1 << 24 });
    const plain = ByteSource.from(request(chunked(bytes), type).body!, { maxBytes: 1 << 24 });
    expect(byob.byob, name).toBe(true);
    expect(plain.byob, name).toBe(false);
    const want = await rows(plain);
    expect(want.length, name).toBeGreaterThan(0);
    expect(await rows(byob), name).toEqual(want);
  }
});

test("the BYOB and default paths give the same answers, raw and as a multipart form", async () => {
  for (const { name, bytes, type } of IMAGES) {
    const bodies: [Uint8Array | ReadableStream<Uint8Array>, string][] = [
      [bytes, type],
      [chunked(bytes), type],
      [form(bytes, type), FORM_TYPE],
      [chunked(form(bytes, type), 977), FORM_TYPE],
    ];
    const answers: unknown[] = [];
    for (const [body, contentType] of bodies) {
      const response = await call(request(body, contentType));
      expect(response.status, name).toBe(200);
      answers.push(await response.json());
    }
    for (const answer of answers.slice(1)) expect(answer, name).toEqual(answers[0]);
  }
});

test("a client that disconnects during a BYOB read gets its reservation and its window back", async () => {
  for (const { name, bytes, type } of IMAGES) {
    for (const sent of [100, 4000]) {
      let controller!: ReadableByteStreamController;
      const body = new ReadableStream({
        type: "bytes",
        start(c) {
          controller = c;
        },
      });
      const lent = buffers.inUseBytes;
      const answer = call(request(body, type));
      controller.enqueue(bytes.slice(0, sent));
      for (let i = 0; i < 500 && ledger().state().inFlight === 0; i++) await new Promise((r) => setTimeout(r, 2));
      expect(ledger().state().inFlight, name).toBe(1);
      // The source is waiting on a BYOB read into its window: the window is the stream's when it fails.
      await new Promise((r) => setTimeout(r, 10));
      controller.error(new Error("Network connection lost."));
      expect((await answer).status, `${name} cut at ${sent}`).toBe(499);
      expect(ledger().state()).toMatchObject({ reservedBytes: 0, inFlight: 0, queued: 0 });
      expect(buffers.inUseBytes, name).toBe(lent);
    }
  }
});

test("an upload refused busy before its body was read has its body read to its end before the answer", async () => {
  const bytes = IMAGES[0].bytes;
  expect((await call(request(bytes, "image/jpeg"))).status).toBe(200);
  // Room for one upload reading its header, not two.
  const models = ledger().state().modelBytes;
  const budget = models + 64 * 1024;
  const one = reservationBytes({ body: streamedBodyBytes(STREAM_CHUNK_BYTES) });
  const settings = {
    ISOLATE_MEMORY_MB: (FIXED_HEAP_BYTES + Math.max(models + 1.5 * one, budget + 1)) / MiB,
    MODEL_MEMORY_BUDGET_MB: budget / MiB,
    ADMISSION_WAIT_SECONDS: 0.05,
  };
  let holder!: ReadableByteStreamController;
  const held = call(
    request(
      new ReadableStream({
        type: "bytes",
        start(c) {
          holder = c;
        },
      }),
      "image/jpeg",
    ),
    settings,
  );
  holder.enqueue(bytes.slice(0, 100));
  for (let i = 0; i < 500 && ledger().state().inFlight === 0; i++) await new Promise((r) => setTimeout(r, 2));
  expect(ledger().state().inFlight).toBe(1);
  await new Promise((r) => setTimeout(r, 10));
  const lent = buffers.inUseBytes;

  let sent = 0;
  const refused = new ReadableStream({
    type: "bytes",
    pull(c) {
      const view = c.byobRequest!.view as Uint8Array;
      const n = Math.min(view.byteLength, 7000, bytes.length - sent);
      view.set(bytes.subarray(sent, sent + n));
      sent += n;
      c.byobRequest!.respond(n);
      if (sent === bytes.length) c.close();
    },
  });
  const ctx = createExecutionContext();
  const response = await worker.fetch(
    request(refused, "image/jpeg") as Request<unknown, IncomingRequestCfProperties>,
    { ...env, ...settings },
    ctx,
  );
  expect(sent).toBe(bytes.length);
  expect(response.status).toBe(503);
  expect(((await response.json()) as { error: { code: string } }).error.code).toBe("busy");
  await waitOnExecutionContext(ctx);
  expect(buffers.inUseBytes).toBe(lent);

  holder.error(new Error("Network connection lost."));
  expect((await held).status).toBe(499);
  expect(ledger().state()).toMatchObject({ reservedBytes: 0, inFlight: 0, queued: 0 });
});
