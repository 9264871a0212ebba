// POST /v1/pca inside workerd with the committed default model: the PNG decoded here must show, pixel for
// pixel, what core/pictures/pca.ts makes of the same layer's /v1/hidden_states answer.

import { beforeAll, describe, expect, test } from "vitest";
import { env, SELF } from "cloudflare:test";
import bundle from "../../models/default/fashion-vit.evit";
import bag from "../../models/default/samples/bag.jpg";
import sneaker from "../../models/default/samples/sneaker.jpg";
import { patchPicture } from "../../core/pictures/pca.ts";
import { crc32 } from "../../core/crc32.ts";
import { jpegRequest } from "./helpers.ts";
import { decodePng } from "./png.ts";

const LAYERS = 6; // models/default/README.md: 6 layers, dim 64, 28x28 input, 7x7 patches
const GRID = 4;

beforeAll(async () => {
  await env.MODELS.put(`${env.DEFAULT_MODEL}.evit`, bundle);
});

async function hiddenStates(jpeg: ArrayBuffer, layer: number): Promise<{ states: Float32Array; dim: number }> {
  const body = await (await SELF.fetch(jpegRequest(`/v1/hidden_states?layer=${layer}`, jpeg))).json<any>();
  return { states: Float32Array.from(body.hidden_states.flat()), dim: body.dim };
}

// decodePng checks each chunk with the encoder's own crc32: pin that function to zlib's known values first,
// so the check cannot pass by agreeing with itself.
test("core/crc32.ts is zlib's CRC-32", () => {
  const ascii = (text: string) => new TextEncoder().encode(text);
  expect(crc32(ascii("123456789"))).toBe(0xcbf43926);
  expect(crc32(ascii("IEND"))).toBe(0xae426082);
  expect(crc32(ascii("6789"), crc32(ascii("12345")))).toBe(0xcbf43926);
});

describe("POST /v1/pca", () => {
  test.each([
    ["bag.jpg", bag, 2, 64],
    ["sneaker.jpg", sneaker, 5, 30],
    ["bag.jpg", bag, 0, 16],
  ] as const)("%s layer %i size %i: the pixels of pca.ts on /v1/hidden_states", async (_file, jpeg, layer, size) => {
    const response = await SELF.fetch(jpegRequest(`/v1/pca?layer=${layer}&size=${size}`, jpeg));
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("image/png");
    const png = await decodePng(new Uint8Array(await response.arrayBuffer()));
    expect([png.width, png.height]).toEqual([size, size]);
    const { states, dim } = await hiddenStates(jpeg, layer);
    expect(png.rgb).toEqual(patchPicture(states, dim, GRID, size));
    // Min-max scaling puts 0 and 255 in every channel (the patches differ at every layer of this model).
    for (let c = 0; c < 3; c++) {
      const channel = png.rgb.filter((_, i) => i % 3 === c);
      expect([Math.min(...channel), Math.max(...channel)]).toEqual([0, 255]);
    }
  });

  test("defaults: the last layer, 224x224", async () => {
    const response = await SELF.fetch(jpegRequest("/v1/pca", bag));
    expect(response.status).toBe(200);
    const png = await decodePng(new Uint8Array(await response.arrayBuffer()));
    expect([png.width, png.height]).toEqual([224, 224]);
    const { states, dim } = await hiddenStates(bag, LAYERS);
    expect(png.rgb).toEqual(patchPicture(states, dim, GRID, 224));
    const { states: earlier } = await hiddenStates(bag, LAYERS - 1);
    expect(png.rgb).not.toEqual(patchPicture(earlier, dim, GRID, 224));
  });

  test("multipart upload and ?model= give the same picture as the raw body", async () => {
    const raw = new Uint8Array(await (await SELF.fetch(jpegRequest("/v1/pca?layer=1&size=32", sneaker))).arrayBuffer());
    const form = new FormData();
    form.set("image", new File([sneaker], "sneaker.jpg", { type: "image/jpeg" }));
    const response = await SELF.fetch(`http://edgevit.test/v1/pca?layer=1&size=32&model=${env.DEFAULT_MODEL}`, {
      method: "POST",
      body: form,
    });
    expect(response.status).toBe(200);
    expect(new Uint8Array(await response.arrayBuffer())).toEqual(raw);
  });

  test("an unknown model is model_not_found", async () => {
    const response = await SELF.fetch(jpegRequest("/v1/pca?model=no-such-model", bag));
    expect(response.status).toBe(404);
    expect((await response.json<any>()).error.code).toBe("model_not_found");
  });

  test.each(["layer=7", "layer=-1", "layer=x", "size=15", "size=1025", "size=2.5"])(
    "%s is bad_parameter",
    async (query) => {
      const response = await SELF.fetch(jpegRequest(`/v1/pca?${query}`, bag));
      expect(response.status).toBe(400);
      expect((await response.json<any>()).error.code).toBe("bad_parameter");
    },
  );

  test("GET is method_not_allowed", async () => {
    const response = await SELF.fetch("http://edgevit.test/v1/pca");
    expect(response.status).toBe(405);
    expect(response.headers.get("allow")).toBe("POST, OPTIONS");
  });
});
