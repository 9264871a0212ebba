// A burst against a bucket holding good, corrupt, hostile and missing models, inside workerd: 50
// concurrent requests (/healthz and the catalogue among them) each get their own answer, and /healthz
// answers while a model load is held open.

import { expect, test } from "vitest";
import { env } from "cloudflare:test";
import cat from "../fixtures/images/cat-baseline-420.jpg";
import { garbage, withHeader } from "./bundles.ts";
import { call, gatedBucket, jpegRequest, randomBundle } from "./helpers.ts";

const good = randomBundle("burst-good", 81);
const crcFlipped = randomBundle("burst-crc", 82);
crcFlipped[crcFlipped.length - 5] ^= 0x10;

// model -> [bytes in the bucket (null: absent), status, error code, message]
const bucket: Record<string, [Uint8Array | null, number, string | null, RegExp | null]> = {
  "burst-good": [good, 200, null, null],
  "burst-other": [randomBundle("burst-other", 83), 200, null, null],
  "burst-crc": [crcFlipped, 503, "model_unavailable", /CRC-32/],
  "burst-layers": [withHeader(good, (h) => (h.config.layers = 1_000_000)), 503, "model_unavailable", /config\.layers/],
  "burst-empty": [new Uint8Array(0), 503, "model_unavailable", /ended after 0 bytes/],
  "burst-garbage": [garbage(3000, 84), 503, "model_unavailable", /not an edgevit bundle/],
  "burst-nan": [
    randomBundle("burst-nan", 85, undefined, (t) => ((t.get("layernorm.bias") as Float32Array)[3] = NaN)),
    503,
    "model_unavailable",
    /layernorm\.bias has a non-finite value/,
  ],
  "burst-missing": [null, 404, "model_not_found", /no model "burst-missing"/],
};

const headerIntact = new Set(["burst-good", "burst-other", "burst-crc", "burst-nan"]);

const classify = (model: string) => call(jpegRequest(`/v1/classify?model=${model}&include=logits`, cat));

test("50 concurrent requests: each the right answer, /healthz among them", async () => {
  for (const [name, [bytes]] of Object.entries(bucket)) if (bytes) await env.MODELS.put(`${name}.evit`, bytes);
  const names = Object.keys(bucket);
  // every fifth request is /healthz, every eleventh the catalogue, the rest cycle through the models
  const plan = Array.from({ length: 50 }, (_, i) =>
    i % 5 === 0 ? "healthz" : i % 11 === 0 ? "models" : names[i % names.length],
  );
  const responses = await Promise.all(
    plan.map((what) =>
      what === "healthz"
        ? call(new Request("http://edgevit.test/healthz"))
        : what === "models"
          ? call(new Request("http://edgevit.test/v1/models"))
          : classify(what),
    ),
  );
  const bodies = await Promise.all(responses.map((r) => r.json<any>()));

  // the good models' answers, each computed alone after the burst
  const alone: Record<string, unknown> = {};
  for (const name of ["burst-good", "burst-other"]) alone[name] = await (await classify(name)).json();

  plan.forEach((what, i) => {
    const [response, body] = [responses[i], bodies[i]];
    if (what === "healthz") {
      expect(response.status).toBe(200);
      expect(body).toEqual({ status: "ok" });
      return;
    }
    if (what === "models") {
      expect(response.status).toBe(200);
      for (const [name, [bytes]] of Object.entries(bucket)) {
        const entry = body.models.find((m: any) => m.name === name);
        if (!bytes) expect(entry).toBeUndefined();
        // the catalogue reads headers only: a payload fault shows when the model is loaded
        else if (headerIntact.has(name)) expect(entry.config.dim).toBe(32);
        else expect(entry.error.code).toMatch(/^(truncated|bad_magic|over_limit)$/);
      }
      return;
    }
    const [, status, code, message] = bucket[what];
    expect(response.status, what).toBe(status);
    if (status === 200) {
      expect(body).toEqual(alone[what]);
    } else {
      expect(body.error.code, what).toBe(code);
      expect(body.error.message, what).toMatch(message!);
    }
  });
  // the two good models differ, so a mix-up would show
  expect(alone["burst-good"]).not.toEqual(alone["burst-other"]);
});

test("/healthz and the catalogue answer while a model load is held open", async () => {
  await env.MODELS.put("burst-held.evit", randomBundle("burst-held", 86));
  // A bucket whose full read of the bundle waits until the test lets it go.
  const { bucket: gated, atRead, release } = gatedBucket(env.MODELS);
  let settled = false;
  const loading = call(jpegRequest("/v1/classify?model=burst-held", cat), { MODELS: gated }).finally(() => {
    settled = true;
  });
  await atRead;
  const health = await call(new Request("http://edgevit.test/healthz"), { MODELS: gated });
  expect(health.status).toBe(200);
  expect(await health.json()).toEqual({ status: "ok" });
  const models = await call(new Request("http://edgevit.test/v1/models"), { MODELS: gated });
  expect(models.status).toBe(200);
  expect((await models.json<any>()).models.some((m: any) => m.name === "burst-held")).toBe(true);
  expect(settled).toBe(false); // the load is still held
  release();
  expect((await loading).status).toBe(200);
});
