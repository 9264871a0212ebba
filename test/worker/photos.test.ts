// The uploads a new user tries first, at phone sizes, through the Worker with wrangler.toml's default
// limits (no overrides): each kind answers 200 with its size after the EXIF orientation. The files are
// made at test time with Pillow (test/tools/phone_photos.py) and fetched from the PHOTOS service binding.

import { beforeAll, expect, test } from "vitest";
import { env } from "cloudflare:test";
import { call, jpegRequest, randomBundle } from "./helpers.ts";

const NAME = "photos-vit";
const photos = (env as unknown as { PHOTOS: Fetcher }).PHOTOS;

beforeAll(async () => {
  await env.MODELS.put(`${NAME}.evit`, randomBundle(NAME, 8));
});

// file -> [format, width, height] as transformers' load_image sees it (after exif_transpose)
const KINDS: Record<string, [string, number, number]> = {
  "phone-12mp-orient6.jpg": ["jpeg", 3024, 4032], // stored 4032x3024, EXIF orientation 6
  "baseline-12mp.jpg": ["jpeg", 4000, 3000],
  "progressive-8mp.jpg": ["jpeg", 3264, 2448],
  "scan-444-6mp.jpg": ["jpeg", 3000, 2000],
  "web-1080p.jpg": ["jpeg", 1920, 1080],
  "gray-5mp.jpg": ["jpeg", 2592, 1944],
  "rgb.png": ["png", 2000, 1500],
  "rgba.png": ["png", 2000, 1500],
  "palette.png": ["png", 2000, 1500],
  "gray.png": ["png", 2000, 1500],
  "gray-alpha.png": ["png", 2000, 1500],
};

test.each(Object.entries(KINDS))("%s: 200 with the default limits", async (file, [format, width, height]) => {
  const fetched = await photos.fetch(`http://photos/${file}`);
  expect(fetched.status).toBe(200);
  const bytes = await fetched.arrayBuffer();
  // Sent as a client that does not know the type would send it: the format is sniffed.
  const response = await call(jpegRequest(`/v1/classify?model=${NAME}`, bytes, "application/octet-stream"));
  const body = await response.json<any>();
  expect(response.status, JSON.stringify(body)).toBe(200);
  expect(body.image).toMatchObject({ format, width, height, decode: { mode: "fast" } });
  expect(body.predictions.length).toBeGreaterThan(0);
});

test("decode=exact is honoured and named in the answer", async () => {
  const bytes = await (await photos.fetch("http://photos/web-1080p.jpg")).arrayBuffer();
  const response = await call(jpegRequest(`/v1/classify?model=${NAME}&decode=exact`, bytes));
  expect(response.status).toBe(200);
  expect((await response.json<any>()).image.decode).toEqual({ mode: "exact", scale: 1 });
  const bad = await call(jpegRequest(`/v1/classify?model=${NAME}&decode=quick`, bytes));
  expect(bad.status).toBe(400);
});

test("a PNG as the multipart form's image field", async () => {
  const bytes = await (await photos.fetch("http://photos/palette.png")).arrayBuffer();
  const form = new FormData();
  form.append("image", new File([bytes], "palette.png", { type: "image/png" }));
  const response = await call(
    new Request(`http://edgevit.test/v1/embed?model=${NAME}`, { method: "POST", body: form }),
  );
  const body = await response.json<any>();
  expect(response.status, JSON.stringify(body)).toBe(200);
  expect(body.image).toMatchObject({ format: "png", width: 2000, height: 1500 });
});
