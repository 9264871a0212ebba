// The service's flow without a transport, as every handler uses it: prepare() (header checked, model in
// hand), the options checked against the prepared model's header, run() returning outputs and timings.

import { afterEach, beforeAll, expect, test } from "vitest";
import { env } from "cloudflare:test";
import cat from "../fixtures/images/cat-baseline-420.jpg";
import random from "../fixtures/images/invalid-random-bytes.jpg";
import { admit, attentionLayer, hiddenLayer, prepare, run, type Upload, wholeUpload } from "../../worker/service.ts";
import type { Ticket } from "../../worker/memory.ts";
import { countingBucket, randomBundle, SMALL_CONFIG } from "./helpers.ts";

const NAME = "service-vit";
const bytes = new Uint8Array(cat);

beforeAll(async () => {
  await env.MODELS.put(`${NAME}.evit`, randomBundle(NAME, 23));
});

// An upload as a door hands it over: its memory reserved first (released after each test, as the doors do).
const tickets: Ticket[] = [];
afterEach(() => {
  for (const ticket of tickets.splice(0)) ticket.release();
});
async function upload(image: Uint8Array, name = NAME): Promise<Upload> {
  const ticket = await admit(env, name, image.byteLength);
  tickets.push(ticket);
  return wholeUpload(ticket, image);
}

test("prepare refuses an unreadable image before it reads the model", async () => {
  const { bucket, gets } = countingBucket(env.MODELS);
  const unread = "service-vit-unread";
  const refused = prepare({ ...env, MODELS: bucket }, unread, await upload(new Uint8Array(random), unread));
  await expect(refused).rejects.toMatchObject({ code: "invalid_image" });
  expect(gets.size).toBe(0);
});

test("the layer checks answer the model's range, from the prepared model's header", async () => {
  const job = await prepare(env, NAME, await upload(bytes));
  const { config } = job.model.header;
  expect(config.layers).toBe(SMALL_CONFIG.layers);
  const L = config.layers;
  expect(hiddenLayer("last", config, job.name)).toBe(L);
  expect(hiddenLayer(0, config, job.name)).toBe(0);
  expect(() => hiddenLayer(L + 1, config, job.name)).toThrow(`layer must be from 0 to ${L} for model ${NAME}`);
  expect(attentionLayer("last", config, job.name)).toBe(L);
  expect(() => attentionLayer(L + 1, config, job.name)).toThrow(`layer must be from 1 to ${L} for model ${NAME}`);
});

test("run returns every phase's timings, prepare's first, in the order they happen", async () => {
  const job = await prepare(env, NAME, await upload(bytes, NAME));
  expect(job.timings.body).toBeGreaterThanOrEqual(0);
  const inference = await run(env, job);
  expect(Object.keys(inference.timings)).toEqual(["body", "model", "decode", "preprocess", "forward"]);
  expect(inference.timings.body).toBe(job.timings.body);
  expect(inference.kept).toBeUndefined();
  expect(inference.name).toBe(NAME);
  expect(inference.version).toBe(job.version);
});

test("keep's value is what it made of the captures in place, equal to the copies of a run without it", async () => {
  const capture = { attention: true, pixels: true };
  const copied = await run(env, await prepare(env, NAME, await upload(bytes)), { capture });
  const kept = await run(env, await prepare(env, NAME, await upload(bytes)), {
    capture,
    keep: (captures) => ({
      rollout: captures.rollout!.slice(),
      mean: captures.clsMean!.slice(),
      pixels: captures.pixels!.slice(),
    }),
  });
  // With keep, the captures were views: none is returned beside its value.
  expect(kept.result.rollout).toBeUndefined();
  expect(kept.kept.rollout).toEqual(copied.result.rollout);
  expect(kept.kept.mean).toEqual(copied.result.clsMean);
  expect(kept.kept.pixels).toEqual(copied.result.pixels);
  expect(kept.result.logits).toEqual(copied.result.logits);
});
