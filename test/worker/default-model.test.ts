// The committed default model end to end: its sample images through POST /v1/classify without `?model=`.
// The golden is PyTorch's: each sample is, by its name, an image the float32 model classifies as that
// class (models/default/README.md); the int8 engine behind the Worker must agree.

import { beforeAll, expect, test } from "vitest";
import { env, SELF } from "cloudflare:test";
import { parsePrefix } from "../../core/bundle/reader.ts";
import bundle from "../../models/default/fashion-vit.evit";
import { jpegRequest } from "./helpers.ts";

const samples = Object.entries(
  import.meta.glob<ArrayBuffer>("../../models/default/samples/*.jpg", { eager: true, import: "default" }),
).map(([path, bytes]) => ({ file: path.split("/").pop()!, bytes }));

// "T-shirt/top" -> "t-shirt-top", as the sample files are named.
const slug = (label: string) =>
  label
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-|-$/g, "");

beforeAll(async () => {
  await env.MODELS.put(`${env.DEFAULT_MODEL}.evit`, bundle);
});

test("every sample is named after one of the model's labels", () => {
  const prefix = parsePrefix(new Uint8Array(bundle));
  if (!("header" in prefix)) throw new Error("the default bundle's header is incomplete");
  const slugs = prefix.header.labels.map(slug);
  expect(samples.length).toBeGreaterThan(0);
  for (const { file } of samples) expect(slugs).toContain(file.replace(/\.jpg$/, ""));
});

test.each(samples.map((s) => [s.file, s.bytes] as const))("%s", async (file, bytes) => {
  const response = await SELF.fetch(jpegRequest("/v1/classify?top_k=3", bytes));
  expect(response.status).toBe(200);
  const body = await response.json<any>();
  expect(body.model).toBe(env.DEFAULT_MODEL);
  expect(body.image).toEqual({ format: "jpeg", width: 28, height: 28, decode: { mode: "fast", scale: 1 } });
  expect(slug(body.predictions[0].label)).toBe(file.replace(/\.jpg$/, ""));
});
