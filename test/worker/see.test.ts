// The "what the model sees" routes inside workerd: /v1/attentions, /v1/pca?layer=all, /v1/attention_map,
// /v1/see, and the page at /. References: the engine run directly in the test on the same preprocessed
// input (full attention probabilities of each layer, hidden states one layer at a time), the class rows,
// head means and rollout computed here from those (rollout by the full-matrix reference), and the decoded
// JPEG resized by core/image for the preprocessed picture.
//
// What these tests prove: each route captures the right things (layer, head, mode, size, every hidden state)
// from one forward pass and hands them to the picture functions, the numbers match the engine's own outputs,
// and the PNG, APNG and JSON carry them. The expected pictures themselves are made with core/'s heatMap,
// resizeNearest and patchPicture, so they do not check those functions: test/core/pictures/see.test.ts and
// test/core/pictures/pca.test.ts check them against hand-computed values. The checks here that do not go through
// them: the heat map's most and least attended patches against matplotlib's inferno end colours blended by
// hand, and each PCA frame's patch squares and 0..255 channel range.

import { beforeAll, describe, expect, test } from "vitest";
import { env, SELF } from "cloudflare:test";
import relaxedModule from "../../build/engine-relaxed.wasm";
import { Engine } from "../../core/engine/index.ts";
import type { Model } from "../../core/engine/model.ts";
import { decodeWhole } from "../core/image/whole.ts";
import { preprocess } from "../../core/preprocess/preprocess.ts";
import { resize } from "../../core/preprocess/resize.ts";
import { heatMap, resizeNearest } from "../../core/pictures/heatmap.ts";
import { patchPicture } from "../../core/pictures/pca.ts";
import { rollout } from "../core/pictures/rollout-reference.ts";
import { topPredictions } from "../../core/answers/predictions.ts";
import cat from "../fixtures/images/cat-baseline-420.jpg";
import coffee from "../fixtures/images/coffee-progressive.jpg";
import { jpegRequest, randomBundle, SMALL_CONFIG } from "./helpers.ts";
import { chunks, decodePng, rows } from "./png.ts";

const PLAIN = "see-vit";
const DISTILLED = "see-deit";
const CONFIGS = { [PLAIN]: SMALL_CONFIG, [DISTILLED]: { ...SMALL_CONFIG, distilled: true, heads: 4 } };
const grid = SMALL_CONFIG.imageSize / SMALL_CONFIG.patchSize;
const patches = grid * grid;

const references = new Map<string, Model>();

beforeAll(async () => {
  const engine = await Engine.instantiate(relaxedModule);
  for (const [name, config] of Object.entries(CONFIGS)) {
    const bundle = randomBundle(name, name === PLAIN ? 11 : 12, config);
    await env.MODELS.put(`${name}.evit`, bundle);
    references.set(name, await engine.load(bundle));
  }
});

// The reference engine on the same bytes: decoded, preprocessed, then run with `options`.
async function reference(name: string, jpeg: ArrayBuffer, options: Parameters<Model["run"]>[0]) {
  const model = references.get(name)!;
  const image = await decodeWhole(jpeg, model.header.preprocessing);
  preprocess(image, model.header.preprocessing, model.input());
  return model.run(options);
}

// Layer N's probabilities [heads][tokens][tokens] from a run that keeps only that layer.
async function probabilities(name: string, jpeg: ArrayBuffer, layer: number): Promise<Float32Array> {
  return (await reference(name, jpeg, { attentionLayer: layer })).attentions!;
}

// The class token's row over the patches, for one head or the mean of the heads, from full probabilities.
function clsRow(p: Float32Array, heads: number, tokens: number, head: number | "mean"): number[] {
  const prefix = tokens - patches;
  const pick = head === "mean" ? Array.from({ length: heads }, (_, h) => h) : [head];
  return Array.from({ length: patches }, (_, j) => {
    let s = 0;
    for (const h of pick) s += p[h * tokens * tokens + prefix + j];
    return s / pick.length;
  });
}

// The class token's row of the attention rollout through layers 1..upTo over the patches: the head means of
// the reference's full probabilities, composed by the full-matrix reference.
async function rolloutOverPatches(name: keyof typeof CONFIGS, jpeg: ArrayBuffer, upTo: number): Promise<number[]> {
  const { heads } = CONFIGS[name];
  const tokens = patches + (CONFIGS[name].distilled ? 2 : 1);
  const mean = new Float64Array(upTo * tokens * tokens);
  for (let l = 1; l <= upTo; l++) {
    const p = await probabilities(name, jpeg, l);
    for (let k = 0; k < tokens * tokens; k++) {
      for (let h = 0; h < heads; h++) mean[(l - 1) * tokens * tokens + k] += p[h * tokens * tokens + k] / heads;
    }
  }
  const r = rollout(mean, tokens, upTo);
  return Array.from({ length: patches }, (_, j) => r[tokens - patches + j]); // row 0 over the patches
}

function post(path: string, jpeg: ArrayBuffer, headers: HeadersInit = {}): Promise<Response> {
  return SELF.fetch(jpegRequest(path, jpeg, "image/jpeg", headers));
}

async function errorCode(response: Response): Promise<[number, string]> {
  return [response.status, (await response.json<any>()).error.code];
}

// The image the model received, as bytes: decoded and resized by core/image (32x32, no crop).
async function resized(jpeg: ArrayBuffer): Promise<Uint8Array> {
  const pp = references.get(PLAIN)!.header.preprocessing;
  const image = await decodeWhole(jpeg, pp);
  return resize(image, SMALL_CONFIG.imageSize, SMALL_CONFIG.imageSize, pp.resample).data;
}

describe("POST /v1/attentions", () => {
  test.each([
    [PLAIN, 1],
    [PLAIN, 2],
    [DISTILLED, 2],
  ] as const)("%s layer %i: [heads][tokens][tokens] probabilities, rows summing to 1", async (name, layer) => {
    const response = await post(`/v1/attentions?model=${name}&layer=${layer}`, cat);
    expect(response.status).toBe(200);
    const body = await response.json<any>();
    const { heads } = CONFIGS[name];
    const tokens = patches + (CONFIGS[name].distilled ? 2 : 1);
    expect([body.model, body.layer, body.heads, body.tokens]).toEqual([name, layer, heads, tokens]);
    expect(body.attentions).toHaveLength(heads);
    for (const head of body.attentions) {
      expect(head).toHaveLength(tokens);
      for (const row of head) {
        expect(row).toHaveLength(tokens);
        expect(row.reduce((a: number, b: number) => a + b, 0)).toBeCloseTo(1, 5);
        for (const p of row) expect(p).toBeGreaterThanOrEqual(0);
      }
    }
    expect(Float32Array.from(body.attentions.flat(2))).toEqual(await probabilities(name, cat, layer));
  });

  test("Accept: application/x-npy gives float32 [heads, tokens, tokens]", async () => {
    const response = await post("/v1/attentions?model=see-vit&layer=2", coffee, { accept: "application/x-npy" });
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("application/x-npy");
    const bytes = new Uint8Array(await response.arrayBuffer());
    const headerLength = new DataView(bytes.buffer).getUint16(8, true);
    const header = new TextDecoder().decode(bytes.subarray(10, 10 + headerLength));
    expect(header).toContain("'descr': '<f4'");
    expect(header).toContain(`'shape': (2, ${patches + 1}, ${patches + 1})`);
    const data = new Float32Array(bytes.slice(10 + headerLength).buffer);
    expect(data).toEqual(await probabilities(PLAIN, coffee, 2));
  });

  test.each(["", "layer=0", "layer=3", "layer=x", "layer=-1"])("%s is bad_parameter", async (query) => {
    expect(await errorCode(await post(`/v1/attentions?model=see-vit&${query}`, cat))).toEqual([400, "bad_parameter"]);
  });
});

describe("POST /v1/pca?layer=all", () => {
  test("an APNG with one frame per hidden state, each the PCA picture of that layer", async () => {
    const response = await post("/v1/pca?model=see-vit&layer=all&size=48", cat);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("image/png");
    const list = chunks(new Uint8Array(await response.arrayBuffer()));
    const frames = SMALL_CONFIG.layers + 1;
    expect(list.map((c) => c.type)).toEqual([
      "IHDR",
      "acTL",
      "fcTL",
      "IDAT",
      ...Array.from({ length: frames - 1 }, () => ["fcTL", "fdAT"]).flat(),
      "IEND",
    ]);
    expect(new DataView(list[1].data.buffer, list[1].data.byteOffset).getUint32(0)).toBe(frames);
    const data = list.filter((c) => c.type === "IDAT" || c.type === "fdAT");
    for (let layer = 0; layer < frames; layer++) {
      const zlib = layer === 0 ? data[0].data : data[layer].data.subarray(4);
      const states = (await reference(PLAIN, cat, { capture: layer })).captured!;
      expect(await rows(zlib, 48, 48), `layer ${layer}`).toEqual(patchPicture(states, SMALL_CONFIG.dim, grid, 48));
    }
  });

  test("size is checked as for one layer", async () => {
    expect(await errorCode(await post("/v1/pca?model=see-vit&layer=all&size=8", cat))).toEqual([400, "bad_parameter"]);
  });
});

describe("POST /v1/attention_map", () => {
  test.each([
    [PLAIN, "layer=1&head=0", 1, 0],
    [PLAIN, "layer=2&head=1&size=64", 2, 1],
    [PLAIN, "head=mean", 2, "mean"],
    [DISTILLED, "layer=1&head=3", 1, 3],
    [DISTILLED, "layer=2", 2, "mean"],
  ] as const)("%s %s: the class token's attention over the image", async (name, query, layer, head) => {
    const size = query.includes("size=64") ? 64 : 224;
    const response = await post(`/v1/attention_map?model=${name}&mode=cls&${query}`, coffee);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("image/png");
    const png = await decodePng(new Uint8Array(await response.arrayBuffer()));
    expect([png.width, png.height]).toEqual([size, size]);
    const { heads } = CONFIGS[name];
    const tokens = patches + (CONFIGS[name].distilled ? 2 : 1);
    const values = clsRow(await probabilities(name, coffee, layer), heads, tokens, head);
    const base = resizeNearest(await resized(coffee), SMALL_CONFIG.imageSize, SMALL_CONFIG.imageSize, size);
    // The head mean is summed in another order in the engine: allow one level of rounding.
    const want = heatMap(values, grid, base, size);
    let worst = 0;
    for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(png.rgb[i] - want[i]));
    expect(worst).toBeLessThanOrEqual(head === "mean" ? 1 : 0);
  });

  test("independently of heatMap: the most and least attended patches carry inferno's end colours", async () => {
    // size 32 is the model's input, so the base is the preprocessed picture pixel for pixel, and each of the
    // 4 x 4 patches is an 8 x 8 square. matplotlib's inferno(0) = (0, 0, 4) and inferno(1) = (252, 255, 164)
    // (its _inferno_data, times 255, rounded), blended over the base at alpha 0.6.
    const response = await post(`/v1/attention_map?model=${PLAIN}&mode=cls&layer=1&head=0&size=32`, coffee);
    const png = await decodePng(new Uint8Array(await response.arrayBuffer()));
    const values = clsRow(await probabilities(PLAIN, coffee, 1), SMALL_CONFIG.heads, patches + 1, 0);
    const base = await resized(coffee);
    const ends: [number, number[]][] = [
      [values.indexOf(Math.max(...values)), [252, 255, 164]],
      [values.indexOf(Math.min(...values)), [0, 0, 4]],
    ];
    for (const [patch, colour] of ends) {
      const [py, px] = [Math.floor(patch / grid), patch % grid];
      for (let y = py * 8; y < py * 8 + 8; y++) {
        for (let x = px * 8; x < px * 8 + 8; x++) {
          const o = (y * 32 + x) * 3;
          const want = [0, 1, 2].map((c) => Math.round(0.4 * base[o + c] + 0.6 * colour[c]));
          expect(Array.from(png.rgb.subarray(o, o + 3)), `patch ${patch} pixel ${x},${y}`).toEqual(want);
        }
      }
    }
  });

  test.each([
    [PLAIN, 1],
    [PLAIN, 2],
    [DISTILLED, 2],
  ] as const)("%s rollout through layer %i: Abnar & Zuidema over the head means", async (name, layer) => {
    const response = await post(`/v1/attention_map?model=${name}&mode=rollout&layer=${layer}&size=32`, cat);
    expect(response.status).toBe(200);
    const png = await decodePng(new Uint8Array(await response.arrayBuffer()));
    const values = await rolloutOverPatches(name, cat, layer);
    const want = heatMap(values, grid, resizeNearest(await resized(cat), 32, 32, 32), 32);
    let worst = 0;
    for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(png.rgb[i] - want[i]));
    expect(worst).toBeLessThanOrEqual(1);
  });

  test.each([
    "layer=0",
    "layer=3",
    "head=2",
    "head=-1",
    "head=x",
    "mode=pixels",
    "mode=rollout&head=0",
    "size=15",
    "size=1025",
  ])("%s is bad_parameter", async (query) => {
    const response = await post(`/v1/attention_map?model=see-vit&${query}`, cat);
    expect(await errorCode(response)).toEqual([400, "bad_parameter"]);
  });
});

describe("POST /v1/see", () => {
  test("everything the page draws, from one forward pass", async () => {
    const response = await post(`/v1/see?model=${DISTILLED}&top_k=3&size=32`, coffee);
    expect(response.status).toBe(200);
    const body = await response.json<any>();
    const c = CONFIGS[DISTILLED];
    const tokens = patches + 2;
    expect(body.model).toBe(DISTILLED);
    expect(body.config).toEqual({
      imageSize: c.imageSize,
      patchSize: c.patchSize,
      grid,
      tokens,
      prefixTokens: 2,
      classToken: true,
      distilled: true,
      registers: 0,
      dim: c.dim,
      heads: c.heads,
      layers: c.layers,
      hiddenAct: "gelu",
      preLayernorm: false,
      layerScale: false,
      pooling: "cls",
      projection: 0,
      classes: c.classes,
    });
    expect(body).toMatchObject({ family: "vit", attention: { from: "class token", layers: c.layers } });
    expect(body.embedding).toBeUndefined();
    const run = await reference(DISTILLED, coffee, {});
    expect(body.predictions).toEqual(topPredictions(run.logits, references.get(DISTILLED)!.header.labels, 3));

    const picture = async (url: string) => {
      expect(url.startsWith("data:image/png;base64,")).toBe(true);
      return Uint8Array.from(atob(url.slice(22)), (ch) => ch.charCodeAt(0));
    };
    const preprocessed = await decodePng(await picture(body.preprocessed));
    expect([preprocessed.width, preprocessed.height]).toEqual([c.imageSize, c.imageSize]);
    expect(preprocessed.rgb).toEqual(await resized(coffee));

    expect(body.pca.frames).toHaveLength(c.layers + 1);
    const animation = chunks(await picture(body.pca.animation));
    expect(animation.filter((k) => k.type === "fcTL")).toHaveLength(c.layers + 1);
    const animated = animation.filter((k) => k.type === "IDAT" || k.type === "fdAT");
    expect(animated).toHaveLength(c.layers + 1);
    for (let layer = 0; layer <= c.layers; layer++) {
      const frame = await decodePng(await picture(body.pca.frames[layer]));
      const states = (await reference(DISTILLED, coffee, { capture: layer })).captured!;
      expect(frame.rgb).toEqual(patchPicture(states, c.dim, grid, 32));
      // The animation's frame is the same picture.
      const zlib = layer === 0 ? animated[0].data : animated[layer].data.subarray(4);
      expect(await rows(zlib, 32, 32), `animation frame ${layer}`).toEqual(frame.rgb);
      // Independently of patchPicture: one colour per 8 x 8 patch square, each channel min-max scaled to 0..255.
      for (let y = 0; y < 32; y++) {
        for (let x = 0; x < 32; x++) {
          const corner = ((y - (y % 8)) * 32 + (x - (x % 8))) * 3;
          const o = (y * 32 + x) * 3;
          expect(frame.rgb.subarray(o, o + 3)).toEqual(frame.rgb.subarray(corner, corner + 3));
        }
      }
      for (let ch = 0; ch < 3; ch++) {
        const channel = Array.from({ length: 32 * 32 }, (_, i) => frame.rgb[i * 3 + ch]);
        expect([Math.min(...channel), Math.max(...channel)], `layer ${layer} channel ${ch}`).toEqual([0, 255]);
      }
    }

    for (let layer = 1; layer <= c.layers; layer++) {
      const p = await probabilities(DISTILLED, coffee, layer);
      expect(body.attention.cls[layer - 1]).toHaveLength(c.heads);
      for (let h = 0; h < c.heads; h++) {
        const want = clsRow(p, c.heads, tokens, h);
        expect(body.attention.cls[layer - 1][h]).toEqual(want.map((v) => expect.closeTo(v, 3)));
      }
      const mean = clsRow(p, c.heads, tokens, "mean");
      expect(body.attention.mean[layer - 1]).toEqual(mean.map((v) => expect.closeTo(v, 3)));
      const rolled = await rolloutOverPatches(DISTILLED, coffee, layer);
      expect(body.attention.rollout[layer - 1]).toEqual(rolled.map((v) => expect.closeTo(v, 3)));
    }
  });

  test.each(["top_k=0", "size=2000", "size=449"])("%s is bad_parameter", async (query) => {
    expect(await errorCode(await post(`/v1/see?model=see-vit&${query}`, cat))).toEqual([400, "bad_parameter"]);
  });

  test("the routes with one picture per hidden state take size up to 448; one picture, up to 1024", async () => {
    const see = await post("/v1/see?model=see-vit&size=448", cat);
    expect(see.status).toBe(200);
    expect((await see.json<any>()).pca.size).toBe(448);
    const all = await post("/v1/pca?model=see-vit&layer=all&size=449", cat);
    expect((await all.json<any>()).error.message).toBe('size must be an integer from 16 to 448, got "449"');
    expect((await post("/v1/pca?model=see-vit&layer=all&size=448", cat)).status).toBe(200);
    expect((await post("/v1/pca?model=see-vit&layer=1&size=1024", cat)).status).toBe(200);
  });

  test("a file that is not a JPEG is invalid_image", async () => {
    const response = await post(
      "/v1/see?model=see-vit",
      new TextEncoder().encode("not a picture").buffer as ArrayBuffer,
    );
    expect(await errorCode(response)).toEqual([400, "invalid_image"]);
  });

  test("GET is method_not_allowed", async () => {
    const response = await SELF.fetch("http://edgevit.test/v1/see");
    expect(await errorCode(response)).toEqual([405, "method_not_allowed"]);
  });
});

describe("the page", () => {
  // Calls to the Worker skip the assets router here; the ASSETS binding serves what `wrangler dev` and a
  // deployment serve at those paths (test/page/page.test.ts drives the whole thing in Chromium).
  test("/ is the page, its script and styles and the samples are served", async () => {
    const assets = env.ASSETS;
    const page = await assets.fetch("http://edgevit.test/");
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toContain("text/html");
    const html = await page.text();
    expect(html).toContain('<input id="file"');
    for (const path of ["/app.js", "/style.css", "/samples/bag.jpg"]) {
      const response = await assets.fetch(`http://edgevit.test${path}`);
      expect(response.status, path).toBe(200);
      await response.arrayBuffer();
    }
  });

  test("the API still answers under /v1 and unknown paths stay JSON not_found", async () => {
    expect((await SELF.fetch("http://edgevit.test/healthz")).status).toBe(200);
    expect(await errorCode(await SELF.fetch("http://edgevit.test/v1/nothing"))).toEqual([404, "not_found"]);
    expect(await errorCode(await SELF.fetch("http://edgevit.test/nothing.html"))).toEqual([404, "not_found"]);
  });
});
