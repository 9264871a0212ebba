// The API end to end inside workerd: real R2 binding, real wasm engine. The reference for every answer is
// the engine run directly in the test on the same preprocessed input (the HTTP layer must not change a
// number), plus checks computed here independently (softmax, ordering, pooling, the npy layout).

import { beforeAll, describe, expect, test } from "vitest";
import { env, SELF } from "cloudflare:test";
import relaxedModule from "../../build/engine-relaxed.wasm";
import { Engine } from "../../core/engine/index.ts";
import type { Model } from "../../core/engine/model.ts";
import { decodeWhole } from "../core/image/whole.ts";
import { preprocess } from "../../core/preprocess/preprocess.ts";
import cat from "../fixtures/images/cat-baseline-420.jpg";
import coffee from "../fixtures/images/coffee-progressive.jpg";
import { jpegRequest, randomBundle, SMALL_CONFIG } from "./helpers.ts";

const NAME = "api-vit";
const { dim, layers, classes, imageSize, patchSize } = SMALL_CONFIG;
const tokens = (imageSize / patchSize) ** 2 + 1;

let reference: Model;

// The engine on the same bytes, outside the Worker.
async function expected(jpeg: ArrayBuffer, capture = -1) {
  const image = await decodeWhole(jpeg, reference.header.preprocessing);
  preprocess(image, reference.header.preprocessing, reference.input());
  return reference.run({ capture });
}

beforeAll(async () => {
  const bundle = randomBundle(NAME, 7);
  await env.MODELS.put(`${NAME}.evit`, bundle);
  reference = await (await Engine.instantiate(relaxedModule)).load(bundle);
});

async function post(path: string, jpeg: ArrayBuffer, headers: HeadersInit = {}): Promise<Response> {
  return SELF.fetch(jpegRequest(path, jpeg, "image/jpeg", headers));
}

describe("GET", () => {
  test("/healthz", async () => {
    const response = await SELF.fetch("http://edgevit.test/healthz");
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: "ok" });
  });

  test("/v1/models lists the bucket's bundles with their config, and what is loaded with its memory", async () => {
    await post(`/v1/classify?model=${NAME}`, cat);
    const response = await SELF.fetch("http://edgevit.test/v1/models");
    expect(response.status).toBe(200);
    const body = await response.json<any>();
    expect(body.default).toBe(env.DEFAULT_MODEL);
    expect(body.engine).toBe("relaxed-simd");
    // fused exactly where the probe shows one instruction (vpdpbusd 129540, vpdpbssd -508)
    expect(body.dot.path).toBe([129540, -508].includes(body.dot.probe) ? "fused" : "split");
    const entry = body.models.find((m: any) => m.name === NAME);
    expect(entry.config).toEqual(SMALL_CONFIG);
    expect(entry.bytes).toBe((await env.MODELS.head(`${NAME}.evit`))!.size);
    expect(entry.loaded).toBe(true);
    const loaded = body.loaded.find((m: any) => m.name === NAME);
    expect(loaded.memoryBytes).toBe(reference.memoryBytes);
    expect(body.memory.usedBytes).toBeGreaterThanOrEqual(loaded.memoryBytes);
    expect(body.memory.budgetBytes).toBe(Number(env.MODEL_MEMORY_BUDGET_MB) * 2 ** 20);
  });
});

describe("POST /v1/classify", () => {
  test("answers the engine's logits, softmax scores highest first, and the image size", async () => {
    const response = await post(`/v1/classify?model=${NAME}&top_k=3&include=logits`, cat);
    expect(response.status).toBe(200);
    const body = await response.json<any>();
    const { logits } = await expected(cat);
    expect(body.model).toBe(NAME);
    // decode=fast: the largest DCT scale keeping both sides >= 2 x 32 (the model's input): 300 / 4 = 75, 300 / 8 < 64
    expect(body.image).toEqual({ format: "jpeg", width: 451, height: 300, decode: { mode: "fast", scale: 4 } });
    expect(body.logits).toEqual(Array.from(logits));

    // decode=exact: every pixel, and the engine's logits on the full-size decode
    const exact = await post(`/v1/classify?model=${NAME}&include=logits&decode=exact`, cat);
    const exactBody = await exact.json<any>();
    expect(exactBody.image.decode).toEqual({ mode: "exact", scale: 1 });
    const full = await decodeWhole(cat, reference.header.preprocessing, "exact");
    preprocess(full, reference.header.preprocessing, reference.input());
    expect(exactBody.logits).toEqual(Array.from(reference.run().logits));

    const exps = Array.from(logits, (x) => Math.exp(x));
    const total = exps.reduce((a, b) => a + b, 0);
    const ranked = exps.map((e, index) => ({ index, score: e / total })).sort((a, b) => b.score - a.score);
    expect(body.predictions).toHaveLength(3);
    body.predictions.forEach((p: any, i: number) => {
      expect(p.index).toBe(ranked[i].index);
      expect(p.label).toBe(`class-${ranked[i].index}`);
      expect(p.score).toBeCloseTo(ranked[i].score, 12);
    });
  });

  test("defaults to the top 5 without logits; top_k above the classes gives them all", async () => {
    const five = await (await post(`/v1/classify?model=${NAME}`, coffee)).json<any>();
    expect(five.predictions).toHaveLength(Math.min(5, classes));
    expect(five).not.toHaveProperty("logits");
    const all = await (await post(`/v1/classify?model=${NAME}&top_k=1000`, coffee)).json<any>();
    expect(all.predictions).toHaveLength(classes);
    expect(all.predictions.reduce((s: number, p: any) => s + p.score, 0)).toBeCloseTo(1, 12);
  });

  test("a multipart/form-data upload answers exactly as the raw body", async () => {
    const form = new FormData();
    form.append("note", "ignored");
    form.append("image", new File([cat], "cat.jpg", { type: "image/jpeg" }));
    const multipart = await SELF.fetch(`http://edgevit.test/v1/classify?model=${NAME}&include=logits`, {
      method: "POST",
      body: form,
    });
    expect(multipart.status).toBe(200);
    const raw = await post(`/v1/classify?model=${NAME}&include=logits`, cat);
    expect(await multipart.json()).toEqual(await raw.json());
  });
});

describe("POST /v1/embed", () => {
  test("the final-norm class token", async () => {
    const body = await (await post(`/v1/embed?model=${NAME}`, cat)).json<any>();
    expect(body).toMatchObject({ model: NAME, dim });
    expect(body.embedding).toEqual(Array.from((await expected(cat)).output.subarray(0, dim)));
  });

  test("pool=mean: the mean of the patch tokens (not the class token)", async () => {
    const body = await (await post(`/v1/embed?model=${NAME}&pool=mean`, cat)).json<any>();
    const { output } = await expected(cat);
    for (let d = 0; d < dim; d++) {
      let sum = 0;
      for (let t = 1; t < tokens; t++) sum += output[t * dim + d];
      expect(body.embedding[d]).toBeCloseTo(sum / (tokens - 1), 6);
    }
  });
});

// NumPy format 1.0, read as numpy.load reads it.
function parseNpy(bytes: Uint8Array): { descr: string; fortran: boolean; shape: number[]; data: Float32Array } {
  expect(Array.from(bytes.subarray(0, 6))).toEqual([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]);
  expect([bytes[6], bytes[7]]).toEqual([1, 0]);
  const headerLength = bytes[8] | (bytes[9] << 8);
  expect((10 + headerLength) % 64).toBe(0);
  const header = new TextDecoder().decode(bytes.subarray(10, 10 + headerLength));
  expect(header.endsWith("\n")).toBe(true);
  const match = /^\{'descr': '([^']+)', 'fortran_order': (True|False), 'shape': \(([\d, ]*)\), \} *\n$/.exec(header);
  expect(match).not.toBeNull();
  const shape = match![3]
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean)
    .map(Number);
  const body = bytes.slice(10 + headerLength);
  return { descr: match![1], fortran: match![2] === "True", shape, data: new Float32Array(body.buffer) };
}

describe("POST /v1/hidden_states", () => {
  test("every layer 0..L as JSON [tokens][dim], HF hidden_states numbering", async () => {
    for (let layer = 0; layer <= layers; layer++) {
      const body = await (await post(`/v1/hidden_states?model=${NAME}&layer=${layer}`, cat)).json<any>();
      expect(body).toMatchObject({ model: NAME, layer, tokens, dim });
      const captured = (await expected(cat, layer)).captured!;
      expect(body.hidden_states).toHaveLength(tokens);
      expect(body.hidden_states.flat()).toEqual(Array.from(captured));
    }
  });

  test("layers differ from each other (the capture index reaches the engine)", async () => {
    const at = async (layer: number) =>
      (await (await post(`/v1/hidden_states?model=${NAME}&layer=${layer}`, cat)).json<any>()).hidden_states;
    expect(await at(0)).not.toEqual(await at(layers));
  });

  test("Accept: application/x-npy gives NumPy <f4 (tokens, dim) with the same values", async () => {
    const response = await post(`/v1/hidden_states?model=${NAME}&layer=1`, cat, { accept: "application/x-npy" });
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("application/x-npy");
    const parsed = parseNpy(new Uint8Array(await response.arrayBuffer()));
    expect(parsed.descr).toBe("<f4");
    expect(parsed.fortran).toBe(false);
    expect(parsed.shape).toEqual([tokens, dim]);
    expect(Array.from(parsed.data)).toEqual(Array.from((await expected(cat, 1)).captured!));
  });
});
