// Every test image through POST /v1/classify: a 200 with the image's size, or the right 4xx.

import { beforeAll, expect, test } from "vitest";
import { env } from "cloudflare:test";
import { call, jpegRequest, randomBundle } from "./helpers.ts";

const NAME = "fixtures-vit";

const images = Object.fromEntries(
  Object.entries(
    import.meta.glob<ArrayBuffer>("../fixtures/images/*.{jpg,png}", { eager: true, import: "default" }),
  ).map(([path, bytes]) => [path.split("/").pop()!, bytes]),
);

// Width x height as PIL reports them after ImageOps.exif_transpose (what transformers' load_image sees).
const decodable: Record<string, [number, number]> = {
  "astronaut-444.jpg": [512, 512],
  "camera-grayscale.jpg": [512, 512],
  "cat-baseline-420.jpg": [451, 300],
  "cat-tiny-37x23.jpg": [37, 23],
  "coffee-progressive.jpg": [600, 400],
  "hubble-cmyk.jpg": [640, 520],
  "rocket-exif-orient6.jpg": [427, 640],
  "retina-restart-markers.jpg": [1411, 1411],
  "cat.png": [451, 300],
};

// The files that must fail, and how, under the configured limits.
const refused: Record<string, [number, string]> = {
  "invalid-bomb-60000x60000.jpg": [413, "image_too_large"],
  "invalid-empty.jpg": [400, "invalid_image"],
  "invalid-random-bytes.jpg": [400, "invalid_image"],
  "invalid-truncated.jpg": [400, "invalid_image"],
};

beforeAll(async () => {
  await env.MODELS.put(`${NAME}.evit`, randomBundle(NAME, 61));
});

test("the shared fixture set is all here", () => {
  expect(Object.keys(images)).toEqual(expect.arrayContaining([...Object.keys(decodable), ...Object.keys(refused)]));
});

const maxPixels = Number(env.MAX_IMAGE_PIXELS);

test.each(Object.keys(images))("%s", async (file) => {
  const type = file.endsWith(".png") ? "image/png" : "image/jpeg";
  const response = await call(jpegRequest(`/v1/classify?model=${NAME}`, images[file], type));
  const body = await response.json<any>();

  const size = decodable[file];
  if (refused[file] || (size && size[0] * size[1] > maxPixels)) {
    const [status, code] = refused[file] ?? [413, "image_too_large"];
    expect(response.status).toBe(status);
    expect(body.error.code).toBe(code);
    return;
  }
  expect(response.status).toBe(200);
  if (size) expect(body.image).toMatchObject({ width: size[0], height: size[1] });
  expect(body.predictions).toHaveLength(5);
  for (const p of body.predictions) expect(p.score).toBeGreaterThan(0);
});

test("over MAX_IMAGE_PIXELS is image_too_large, and decodes when the limit allows it", async () => {
  const [width, height] = decodable["retina-restart-markers.jpg"];
  const request = () => jpegRequest(`/v1/classify?model=${NAME}`, images["retina-restart-markers.jpg"]);
  const refusedAt = await call(request(), { MAX_IMAGE_PIXELS: width * height - 1 });
  expect(refusedAt.status).toBe(413);
  const accepted = await call(request(), { MAX_IMAGE_PIXELS: width * height });
  expect(accepted.status).toBe(200);
  expect((await accepted.json<any>()).image).toMatchObject({ width, height });
});
