// POST /v1/image_tokens and RPC imageTokens on an Idefics3-shaped and a LLaVA-shaped bundle (random weights,
// the real writer): the rows the LLM receives for its <image> tokens, [tiles][tokens][lm_dim], as JSON or
// .npy, equal to core/'s runImageTokens on the same bytes outside the Worker; the tile grid with the global
// view last; split=false the global view alone; a model without a connector refused with a sentence.

import { beforeAll, describe, expect, test } from "vitest";
import { env, SELF } from "cloudflare:test";
import relaxedModule from "../../build/engine-relaxed.wasm";
import { Engine } from "../../core/engine/index.ts";
import type { ModelConfig } from "../../core/bundle/format.ts";
import { DEFAULT_LIMITS } from "../../core/limits.ts";
import { runImageTokens } from "../../core/pipeline.ts";
import cat from "../fixtures/images/cat-baseline-420.jpg";
import { buffers } from "../../core/buffers.ts";
import { openImage } from "../../core/image/open.ts";
import { ledgerOf, type RequestPlan, reservationBytes, STREAM_CHUNK_BYTES } from "../../worker/memory.ts";
import { imageTokensAnswer } from "../../worker/service.ts";
import { call, jpegRequest, randomBundle, SMALL_CONFIG } from "./helpers.ts";

const TOWER: ModelConfig = { ...SMALL_CONFIG, classes: 0, eps: 1e-6 };
// a 4x4 patch grid shuffled by 2: 4 tokens of 4 x 32 -> 24
const IDEFICS3: ModelConfig = {
  ...TOWER,
  family: "siglip",
  hiddenAct: "gelu_pytorch_tanh",
  classToken: false,
  pooling: "none",
  connector: "idefics3",
  scaleFactor: 2,
  lmDim: 24,
};
const LLAVA: ModelConfig = {
  ...TOWER,
  family: "clip",
  hiddenAct: "quick_gelu",
  preLayernorm: true,
  finalNorm: "pooled",
  connector: "llava",
  lmDim: 24,
};
// SmolVLM's processor at a 32-pixel tile: the 451x300 cat becomes 128x86, then 128x96: 3 rows of 4 tiles
const SPLITTING = { resample: 1, splitting: { longestEdge: 128, maxImageSize: 32 } };

// SmolVLM's processor itself (longest edge 2048, 512 px tiles) on a tower of 1,024 patches of 16 pixels
const SMOLVLM: ModelConfig = { ...IDEFICS3, imageSize: 512, patchSize: 16, layers: 1 };
const SMOLVLM_SPLITTING = { resample: 1, splitting: { longestEdge: 2048, maxImageSize: 512 } };

const bundles = {
  "vlm-idefics3": randomBundle("vlm-idefics3", 5, IDEFICS3, undefined, SPLITTING),
  "vlm-smolvlm": randomBundle("vlm-smolvlm", 9, SMOLVLM, undefined, SMOLVLM_SPLITTING),
  "vlm-llava": randomBundle("vlm-llava", 6, LLAVA),
  "vlm-plain": randomBundle("vlm-plain", 7),
};

beforeAll(async () => {
  for (const [name, bundle] of Object.entries(bundles)) await env.MODELS.put(`${name}.evit`, bundle);
});

async function reference(name: keyof typeof bundles, split = true) {
  const model = await (await Engine.instantiate(relaxedModule)).load(bundles[name]);
  return runImageTokens(model, new Uint8Array(cat), DEFAULT_LIMITS, { split });
}

// NumPy format 1.0: the shape from the header, the data after it.
function parseNpy(bytes: Uint8Array): { shape: number[]; data: Float32Array } {
  const headerLength = bytes[8] | (bytes[9] << 8);
  const header = new TextDecoder().decode(bytes.subarray(10, 10 + headerLength));
  expect(header).toContain("'descr': '<f4'");
  const shape = /'shape': \(([\d, ]*)\)/
    .exec(header)![1]
    .split(",")
    .filter((s) => s.trim())
    .map(Number);
  return { shape, data: new Float32Array(bytes.slice(10 + headerLength).buffer) };
}

describe("POST /v1/image_tokens", () => {
  test("Idefics3: 12 tiles row by row and the global view, each 4 tokens of the LLM's 24", async () => {
    const response = await SELF.fetch(jpegRequest("/v1/image_tokens?model=vlm-idefics3&decode=exact", cat));
    expect(response.status).toBe(200);
    const body = await response.json<any>();
    expect(body).toMatchObject({ model: "vlm-idefics3", connector: "idefics3", tiles: 13, tokens: 4, lm_dim: 24 });
    expect(body.grid).toEqual({ rows: 3, cols: 4 });
    expect(body.image).toMatchObject({ format: "jpeg", width: 451, height: 300 });
    const want = await reference("vlm-idefics3");
    expect(new Float32Array(body.image_tokens.flat(2))).toEqual(want.data);
  });

  test("Accept: application/x-npy gives float32 [tiles, tokens, lm_dim] and the tile grid", async () => {
    const response = await SELF.fetch(
      jpegRequest("/v1/image_tokens?model=vlm-idefics3&decode=exact", cat, "image/jpeg", {
        accept: "application/x-npy",
      }),
    );
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("application/x-npy");
    expect(response.headers.get("x-edgevit-tile-grid")).toBe("3x4");
    const { shape, data } = parseNpy(new Uint8Array(await response.arrayBuffer()));
    expect(shape).toEqual([13, 4, 24]);
    expect(data).toEqual((await reference("vlm-idefics3")).data);
  });

  test("split=false: the global view alone, the last frame of the split image", async () => {
    const body = await (
      await SELF.fetch(jpegRequest("/v1/image_tokens?model=vlm-idefics3&decode=exact&split=false", cat))
    ).json<any>();
    expect(body).toMatchObject({ tiles: 1, tokens: 4, grid: { rows: 0, cols: 0 } });
    const split = await reference("vlm-idefics3");
    expect(new Float32Array(body.image_tokens.flat(2))).toEqual(split.data.subarray(12 * 4 * 24));
  });

  test("LLaVA: one image, its 16 patch tokens (the class token dropped) projected to 24", async () => {
    const body = await (await SELF.fetch(jpegRequest("/v1/image_tokens?model=vlm-llava", cat))).json<any>();
    expect(body).toMatchObject({ connector: "llava", tiles: 1, tokens: 16, lm_dim: 24, grid: { rows: 0, cols: 0 } });
    expect(new Float32Array(body.image_tokens.flat(2))).toEqual((await reference("vlm-llava")).data);
  });

  test("a model without a connector: 400 bad_parameter with a sentence", async () => {
    const response = await SELF.fetch(jpegRequest("/v1/image_tokens?model=vlm-plain", cat));
    expect(response.status).toBe(400);
    const body = await response.json<any>();
    expect(body.error.code).toBe("bad_parameter");
    expect(body.error.message).toMatch(/model vlm-plain .* without a connector .*image tokens/);
  });
});

// A connector model is also a tower: every other image route answers it or refuses it with a sentence, and
// /v1/models lists what it answers. Idefics3's tower has neither a class token nor a pooling head: nothing
// in it looks at the patches as a whole, so it has no attention map.
describe.each([
  ["vlm-idefics3", ["/v1/attention_map", "/v1/see"]],
  ["vlm-llava", []],
])("the other routes on %s", (name, refused) => {
  const routes = ["/v1/embed", "/v1/hidden_states", "/v1/attentions", "/v1/pca", "/v1/attention_map", "/v1/see"];

  test.each([
    "/v1/classify",
    "/v1/embed",
    "/v1/hidden_states?layer=1",
    "/v1/pca",
    "/v1/pca?layer=all",
    "/v1/attentions?layer=1",
    "/v1/attention_map",
    "/v1/attention_map?mode=rollout",
    "/v1/see",
  ])("%s", async (route) => {
    const sep = route.includes("?") ? "&" : "?";
    const response = await SELF.fetch(jpegRequest(`${route}${sep}model=${name}`, cat));
    if (route === "/v1/classify" || refused.includes(route.split("?")[0])) {
      expect(response.status).toBe(400);
      const body = await response.json<any>();
      expect(body.error.code).toBe("bad_parameter");
      expect(body.error.message).toMatch(
        route === "/v1/classify" ? `model ${name} is` : `model ${name} has neither a class token nor`,
      );
    } else {
      expect(response.status).toBe(200);
      await response.arrayBuffer();
    }
  });

  test("/v1/models lists the routes it answers", async () => {
    const { models } = await (await SELF.fetch("http://edgevit.test/v1/models")).json<any>();
    const listed = models.find((b: any) => b.name === name);
    expect(listed.answers).toEqual([...routes.filter((r) => !refused.includes(r)), "/v1/image_tokens"]);
  });
});

// A phone photo at SmolVLM's sizes: step 1 is 2048x1536 (or 1536x2048), whole tiles already. The request
// reserves its decode, then its frames (worker/memory.ts's phases): the ledger's peak for the request alone is
// the largest phase's reservation, and the streamed JSON holds the rows the .npy holds.
describe("a 12 MP photo through SmolVLM's processor", () => {
  const photos = (env as unknown as { PHOTOS: Fetcher }).PHOTOS;
  test.each([
    ["baseline-12mp.jpg", 3, 4],
    ["phone-12mp-orient6.jpg", 4, 3],
  ])("%s: 200 with %ix%i tiles, the ledger's peak the largest phase's reservation", async (file, rows, cols) => {
    const bytes = new Uint8Array(await (await photos.fetch(`http://photos/${file}`)).arrayBuffer());
    const request = (form: "npy" | "json") =>
      call(
        jpegRequest("/v1/image_tokens?model=vlm-smolvlm", bytes, "image/jpeg", {
          accept: form === "npy" ? "application/x-npy" : "application/json",
          "content-length": String(bytes.byteLength),
        }),
      );
    const first = await request("npy");
    expect(first.status, await first.clone().text()).toBe(200);
    expect(first.headers.get("x-edgevit-tile-grid")).toBe(`${rows}x${cols}`);
    const frames = rows * cols + 1;
    const npy = parseNpy(new Uint8Array(await first.arrayBuffer()));
    expect(npy.shape).toEqual([frames, 256, 24]);

    const decoder = await openImage(new Response(bytes).body!, DEFAULT_LIMITS);
    const { header } = await (await Engine.instantiate(relaxedModule)).load(bundles["vlm-smolvlm"]);
    const ledger = ledgerOf(env);
    for (const form of ["npy", "json"] as const) {
      buffers.trim(0);
      const reserved = ledger.state().reservedBytes;
      const base = ledger.usedBytes();
      ledger.resetPeak();
      const response = await request(form);
      expect(response.status).toBe(200);
      if (form === "json") {
        const body = await response.json<any>();
        expect(body).toMatchObject({ tiles: frames, tokens: 256, lm_dim: 24, grid: { rows, cols } });
        expect(new Float32Array(body.image_tokens.flat(2))).toEqual(npy.data);
      } else {
        await response.arrayBuffer();
      }
      const plan: RequestPlan = {
        body: STREAM_CHUNK_BYTES,
        image: { header: decoder.header, scale: 1, decoderBytes: decoder.memoryBytes(1) },
        model: header,
        answer: { kind: "image_tokens", frames, form },
      };
      const phases = (["decode", "frames"] as const).map((phase) => reservationBytes({ ...plan, phase }));
      expect(reservationBytes(plan)).toBe(Math.max(...phases));
      expect(ledger.peakBytes - base, form).toBe(Math.max(...phases));
      expect(ledger.state().reservedBytes).toBe(reserved); // released once the answer is sent
    }
  });
});

test("the streamed JSON is JSON.stringify of the answer's object, byte for byte", async () => {
  for (const split of [true, false]) {
    const response = await SELF.fetch(
      jpegRequest(`/v1/image_tokens?model=vlm-idefics3&decode=exact&split=${split}`, cat),
    );
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("application/json; charset=utf-8");
    const text = await response.text();
    const model = await (await Engine.instantiate(relaxedModule)).load(bundles["vlm-idefics3"]);
    const ran = await runImageTokens(model, new Uint8Array(cat), DEFAULT_LIMITS, { split, decode: "exact" });
    const version = JSON.parse(text).version;
    const want = imageTokensAnswer({ name: "vlm-idefics3", version, model, ...ran });
    expect(text).toBe(JSON.stringify(want));
  }
});

test("RPC imageTokens answers what POST /v1/image_tokens answers", async () => {
  const http = await (await SELF.fetch(jpegRequest("/v1/image_tokens?model=vlm-idefics3&split=false", cat))).json();
  const url = `http://caller.test/image-tokens?options=${encodeURIComponent(JSON.stringify({ model: "vlm-idefics3", split: false }))}`;
  const { result, error } = await (await env.CALLER.fetch(url, { method: "POST", body: cat })).json<any>();
  expect(error).toBeUndefined();
  expect(result).toEqual(http);
  const refused = await (
    await env.CALLER.fetch(url.replace("vlm-idefics3", "vlm-plain"), { method: "POST", body: cat })
  ).json<any>();
  expect(refused.error.code).toBe("bad_parameter");
});
