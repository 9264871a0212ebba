// One test per error code a client can cause: status, stable code, and a JSON body a user can read.

import { beforeAll, describe, expect, test } from "vitest";
import { env, SELF } from "cloudflare:test";
import bomb from "../fixtures/images/invalid-bomb-60000x60000.jpg";
import random from "../fixtures/images/invalid-random-bytes.jpg";
import cat from "../fixtures/images/cat-baseline-420.jpg";
import catPng from "../fixtures/images/cat.png";
import { failure } from "../../worker/http.ts";
import { type Code, type Group, vp8lStream, webpFile } from "../tools/vp8l_writer.ts";
import { call, jpegRequest, randomBundle, storedPng } from "./helpers.ts";

const NAME = "errors-vit";

beforeAll(async () => {
  await env.MODELS.put(`${NAME}.evit`, randomBundle(NAME, 11));
});

async function expectError(response: Response, status: number, code: string): Promise<string> {
  expect(response.status).toBe(status);
  expect(response.headers.get("content-type")).toMatch(/^application\/json/);
  const body = await response.json<any>();
  expect(Object.keys(body)).toEqual(["error"]);
  expect(body.error.code).toBe(code);
  expect(typeof body.error.message).toBe("string");
  expect(body.error.message.length).toBeGreaterThan(10);
  return body.error.message;
}

const classify = (query: string, body: BodyInit = cat, type = "image/jpeg") =>
  SELF.fetch(jpegRequest(`/v1/classify?model=${NAME}${query}`, body, type));

// A multipart/form-data classify request with `file` as its only field, named `field`.
function classifyForm(field: string, file: File): Promise<Response> {
  const form = new FormData();
  form.append(field, file);
  return SELF.fetch(`http://edgevit.test/v1/classify?model=${NAME}`, { method: "POST", body: form });
}

describe("400 invalid_image", () => {
  test("bytes that are not an image", async () => {
    const message = await expectError(await classify("", random), 400, "invalid_image");
    expect(message).toMatch(/not a JPEG, PNG, WebP, GIF or BMP/);
  });

  test("a PNG sent as image/jpeg is sniffed and read as the PNG it is", async () => {
    const response = await classify("", catPng);
    expect(response.status).toBe(200);
    expect((await response.json<any>()).image).toMatchObject({ format: "png", width: 451, height: 300 });
  });
});

describe("400 bad_parameter", () => {
  test.each([
    ["top_k=0", 'top_k must be an integer at least 1, got "0"'],
    ["top_k=-1", 'top_k must be an integer at least 1, got "-1"'],
    ["top_k=two", 'top_k must be an integer at least 1, got "two"'],
    ["top_k=1.5", 'top_k must be an integer at least 1, got "1.5"'],
    ["include=everything", 'include accepts logits, got "everything"'],
  ])("classify ?%s", async (query, sentence) => {
    expect(await expectError(await classify(`&${query}`), 400, "bad_parameter")).toBe(sentence);
  });

  test("embed ?pool=max, ?normalize=yes", async () => {
    const pool = await SELF.fetch(jpegRequest(`/v1/embed?model=${NAME}&pool=max`, cat));
    expect(await expectError(pool, 400, "bad_parameter")).toBe(
      'pool must be one of cls, mean, cls_mean, image_embeds, pooler, got "max"',
    );
    // a pool of another family: the ones this model answers
    const clip = await SELF.fetch(jpegRequest(`/v1/embed?model=${NAME}&pool=image_embeds`, cat));
    expect(await expectError(clip, 400, "bad_parameter")).toBe(
      `pool must be one of cls, mean for model ${NAME} (a vit model), got "image_embeds"`,
    );
    const normalize = await SELF.fetch(jpegRequest(`/v1/embed?model=${NAME}&normalize=yes`, cat));
    expect(await expectError(normalize, 400, "bad_parameter")).toBe('normalize must be true or false, got "yes"');
  });

  test.each([[""], ["&layer=-1"], ["&layer=3"], ["&layer=x"]])(
    "hidden_states layer %s (the model has 2 layers)",
    async (query) => {
      await expectError(
        await SELF.fetch(jpegRequest(`/v1/hidden_states?model=${NAME}${query}`, cat)),
        400,
        "bad_parameter",
      );
    },
  );

  test.each([["../secret"], ["a/b"], [".hidden"], [`${NAME}.evit`]])("model name %s", async (model) => {
    await expectError(
      await SELF.fetch(jpegRequest(`/v1/classify?model=${encodeURIComponent(model)}`, cat)),
      400,
      "bad_parameter",
    );
  });

  test("multipart without an image field", async () => {
    const response = await classifyForm("picture", new File([cat], "cat.jpg", { type: "image/jpeg" }));
    await expectError(response, 400, "bad_parameter");
  });
});

test("404 model_not_found", async () => {
  const response = await SELF.fetch(jpegRequest("/v1/classify?model=no-such-model", cat));
  const message = await expectError(response, 404, "model_not_found");
  expect(message).toMatch(/no-such-model/);
});

test("404 not_found for an unknown path", async () => {
  await expectError(await SELF.fetch("http://edgevit.test/v2/classify"), 404, "not_found");
});

test("405 method_not_allowed, with Allow", async () => {
  const get = await SELF.fetch(`http://edgevit.test/v1/classify?model=${NAME}`);
  await expectError(get, 405, "method_not_allowed");
  expect(get.headers.get("allow")).toBe("POST, OPTIONS");
  const put = await SELF.fetch("http://edgevit.test/v1/models", { method: "PUT", body: "x" });
  await expectError(put, 405, "method_not_allowed");
  expect(put.headers.get("allow")).toBe("GET, POST, HEAD, OPTIONS");
  const post = await SELF.fetch("http://edgevit.test/v1/models/some-model", { method: "POST", body: "x" });
  await expectError(post, 405, "method_not_allowed");
  expect(post.headers.get("allow")).toBe("GET, HEAD, OPTIONS");
});

describe("413 payload_too_large", () => {
  const limit = Number(env.MAX_BODY_BYTES);

  test("from Content-Length, before reading", async () => {
    await expectError(await classify("", new Uint8Array(limit + 1)), 413, "payload_too_large");
  });

  test("a body exactly at the limit is read (and then judged as an image)", async () => {
    await expectError(await classify("", new Uint8Array(limit)), 400, "invalid_image");
  });

  test("a streamed body without Content-Length stops being read past the limit", async () => {
    // An image the decoder reads to its end: a PNG whose pixels are stored, 17.3 MB for 2500x2300.
    const png = storedPng(2500, 2300);
    expect(png.length).toBeGreaterThan(limit);
    const chunk = 64 * 1024;
    const chunks = Math.ceil(png.length / chunk);
    let pulled = 0;
    const body = new ReadableStream<Uint8Array>(
      {
        pull(controller) {
          if (pulled === chunks) return controller.close();
          controller.enqueue(png.slice(pulled * chunk, (pulled + 1) * chunk));
          pulled++;
        },
      },
      { highWaterMark: 0 },
    );
    const request = new Request(`http://edgevit.test/v1/classify?model=${NAME}`, {
      method: "POST",
      body,
      headers: { "content-type": "image/png" },
      duplex: "half",
    } as RequestInit);
    expect(request.headers.get("content-length")).toBeNull();
    await expectError(await call(request), 413, "payload_too_large");
    expect(pulled).toBeLessThan(chunks);
    expect(pulled * chunk).toBeLessThanOrEqual(limit + 2 * chunk);
  });

  test("multipart bodies have the same limit", async () => {
    const response = await classifyForm(
      "image",
      new File([new Uint8Array(limit + 1)], "big.jpg", { type: "image/jpeg" }),
    );
    await expectError(response, 413, "payload_too_large");
  });
});

describe("413 image_too_large", () => {
  test("a 35 KB file whose header claims 60000x60000 pixels", async () => {
    const message = await expectError(await classify("", bomb), 413, "image_too_large");
    expect(message).toMatch(/60000x60000/);
  });

  test("the pixel limit comes from MAX_IMAGE_PIXELS (451x300 = 135300 pixels)", async () => {
    const request = (limit: number) =>
      call(jpegRequest(`/v1/classify?model=${NAME}`, cat), { MAX_IMAGE_PIXELS: limit });
    await expectError(await request(135_299), 413, "image_too_large");
    expect((await request(135_300)).status).toBe(200);
  });

  test("a 16 KB lossless WebP whose 160 groups of prefix codes need more than the 1 MiB its decode holds", async () => {
    const width = 80; // 20x8 tiles of 4x4, each its own group of the largest codes
    const big: Code = { kind: "flat", bits: 8 };
    const group: Group = [{ kind: "flat", bits: 11 }, big, big, big, { kind: "single", symbol: 0 }];
    const pixels = new Uint32Array(width * 32).fill(0xff808080);
    const entropy = {
      cacheBits: 11,
      meta: { bits: 2, groupOf: (x: number, y: number) => y * 20 + x },
      groups: Array.from({ length: 160 }, () => group),
    };
    const webp = webpFile(vp8lStream(width, 32, pixels, [], entropy));
    const message = await expectError(await classify("", webp, "image/webp"), 413, "image_too_large");
    expect(message).toMatch(/^The WebP image's lossless data uses 160 groups of prefix codes/);
  });
});

// The first bytes of files edgevit does not decode.
const HEIC = Uint8Array.of(0, 0, 0, 24, ...new TextEncoder().encode("ftypheic\0\0\0\0mif1heic"));
const AVIF = Uint8Array.of(0, 0, 0, 28, ...new TextEncoder().encode("ftypavif\0\0\0\0avifmif1"));
const TIFF = new TextEncoder().encode("II*\0\x08\0\0\0");

describe("415 unsupported_media_type", () => {
  test.each([
    ["HEIC", HEIC, "application/octet-stream"],
    ["AVIF", AVIF, "image/avif"],
    ["TIFF", TIFF, "image/jpeg"],
  ] as const)("a %s body is named, whatever its Content-Type", async (format, bytes, type) => {
    const message = await expectError(await classify("", bytes, type), 415, "unsupported_media_type");
    expect(message).toMatch(
      new RegExp(`^This is an? ${format} image; edgevit accepts JPEG, PNG, WebP, GIF and BMP\\.$`),
    );
  });

  test.each([["text/plain"], ["application/json"], [""]])("raw body of type %s", async (type) => {
    const request = new Request(`http://edgevit.test/v1/classify?model=${NAME}`, { method: "POST", body: cat });
    if (type) request.headers.set("content-type", type);
    else request.headers.delete("content-type");
    await expectError(await SELF.fetch(request), 415, "unsupported_media_type");
  });

  test("multipart image field holding a HEIC", async () => {
    const response = await classifyForm("image", new File([HEIC], "cat.heic", { type: "image/heic" }));
    await expectError(response, 415, "unsupported_media_type");
  });

  test("multipart image field of type text/plain", async () => {
    const response = await classifyForm("image", new File([cat], "cat.txt", { type: "text/plain" }));
    await expectError(response, 415, "unsupported_media_type");
  });
});

// 503 model_unavailable is tested in models.test.ts, with the recovery.

test("anything else is a bug: a logged 500 that reveals nothing", async () => {
  const logged: unknown[] = [];
  const original = console.error;
  console.error = (...args: unknown[]) => void logged.push(args);
  try {
    const response = failure(new TypeError("secret internals"));
    expect(response.status).toBe(500);
    const body = await response.json<any>();
    expect(body.error.code).toBe("internal_error");
    expect(body.error.message).not.toMatch(/secret/);
  } finally {
    console.error = original;
  }
  expect(logged).toHaveLength(1);
});
