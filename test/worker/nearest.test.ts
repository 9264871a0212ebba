// POST /v1/image_tokens?nearest=k on a SmolVLM-layout checkpoint made by the project's tools with its LLM's
// input embedding table and a tokenizer.json, converted with --lm-embeddings (in Node, by the local hub's
// reference converter): each image token's k nearest vocabulary rows, checked against plain float64 cosines
// over the checkpoint's float32 table; the refusals; the same over RPC.

import { beforeAll, describe, expect, test } from "vitest";
import { env, SELF } from "cloudflare:test";
import { decode, parseHeader } from "../../core/convert/safetensors.ts";
import cat from "../fixtures/images/cat-baseline-420.jpg";
import type { EmbeddingsSection } from "../../core/bundle/format.ts";
import { checkNearestWork } from "../../worker/nearest.ts";
import { jpegRequest } from "./helpers.ts";

const REPO = "org/tiny-smolvlm-lm";
const VOCAB = 256; // the tiny preset's LLM vocabulary
const LM_DIM = 48;
// int8 rows (a scale of max|row| / 127 each) move a cosine of width 48 by a few thousandths at most
const COSINE_TOLERANCE = 0.01;

let table: Float32Array; // [VOCAB][LM_DIM], the checkpoint's model.text_model.embed_tokens.weight

async function hubFile(file: string): Promise<Uint8Array> {
  return new Uint8Array(await (await env.HUB.fetch(`http://hub/file?repo=${REPO}&file=${file}`)).arrayBuffer());
}

async function converted(name: string, lmEmbeddings: boolean): Promise<Uint8Array> {
  const q = new URLSearchParams({ repo: REPO, name, convertedAt: "2026-12-01T00:00:00Z" });
  if (lmEmbeddings) q.set("lmEmbeddings", "1");
  return new Uint8Array(await (await env.HUB.fetch(`http://hub/reference?${q}`)).arrayBuffer());
}

beforeAll(async () => {
  await env.MODELS.put("smol-lm.evit", await converted("smol-lm", true));
  await env.MODELS.put("smol-nolm.evit", await converted("smol-nolm", false));
  const file = await hubFile("model.safetensors");
  const n = Number(new DataView(file.buffer, file.byteOffset).getBigUint64(0, true));
  const { tensors } = parseHeader(new TextDecoder().decode(file.subarray(8, 8 + n)), 8 + n, file.length);
  const info = tensors.get("model.text_model.embed_tokens.weight")!;
  expect(info.shape).toEqual([VOCAB, LM_DIM]);
  table = decode("F32", file.subarray(info.begin, info.end));
});

// Every row's cosine with `token`, in float64, highest first: [id, cosine].
function floatRanking(token: number[]): [number, number][] {
  const norm = Math.sqrt(token.reduce((a, x) => a + x * x, 0));
  const out: [number, number][] = [];
  for (let r = 0; r < VOCAB; r++) {
    let dot = 0;
    let rowNorm = 0;
    for (let d = 0; d < LM_DIM; d++) {
      dot += table[r * LM_DIM + d] * token[d];
      rowNorm += table[r * LM_DIM + d] ** 2;
    }
    out.push([r, dot / (norm * Math.sqrt(rowNorm))]);
  }
  return out.sort((a, b) => b[1] - a[1]);
}

// The tokenizer's string of an id, as make-random-tower.ts names them: " cat0", " dog0", ..., "<image>" last.
const WORDS = ["cat", "dog", "red", "sky", "tree", "blue", "car", "sun", "été", "über"];
const tokenString = (id: number) => (id === VOCAB - 1 ? "<image>" : ` ${WORDS[id % 10]}${Math.floor(id / 10)}`);

// The answer's nearest rows of each token against the float ranking: the same cosines at each rank within
// the tolerance, the tokens' strings, and the same first id unless the float ranking's first two are closer
// than the tolerance (a tie int8 rows may order either way). Returns how many first ids were compared.
function checkNearest(imageTokens: number[][], nearest: { id: number; token: string; cosine: number }[][], k: number) {
  let compared = 0;
  imageTokens.forEach((token, t) => {
    const want = floatRanking(token);
    expect(nearest[t]).toHaveLength(k);
    nearest[t].forEach((got, j) => {
      expect(Math.abs(got.cosine - want[j][1]), `token ${t} rank ${j}`).toBeLessThan(COSINE_TOLERANCE);
      const exact = want.find(([id]) => id === got.id)![1];
      expect(Math.abs(got.cosine - exact), `token ${t} id ${got.id}`).toBeLessThan(COSINE_TOLERANCE);
      expect(got.token).toBe(tokenString(got.id));
    });
    if (want[0][1] - want[1][1] > COSINE_TOLERANCE) {
      expect(nearest[t][0].id, `token ${t}`).toBe(want[0][0]);
      compared++;
    }
  });
  return compared;
}

describe("POST /v1/image_tokens?nearest=k", () => {
  test("split=false: the global view's 16 tokens, each with its 5 nearest rows of the LLM's table", async () => {
    const response = await SELF.fetch(jpegRequest("/v1/image_tokens?model=smol-lm&split=false&nearest=5", cat));
    expect(response.status).toBe(200);
    const body = await response.json<any>();
    expect(body).toMatchObject({ tiles: 1, tokens: 16, lm_dim: LM_DIM });
    expect(body.nearest).toHaveLength(1);
    const compared = checkNearest(body.image_tokens[0], body.nearest[0], 5);
    expect(compared).toBeGreaterThan(8);
  });

  test("with the tiles: every frame's tokens, the global view's the same as split=false's", async () => {
    const body = await (await SELF.fetch(jpegRequest("/v1/image_tokens?model=smol-lm&nearest=2", cat))).json<any>();
    expect(body.nearest).toHaveLength(body.tiles);
    body.nearest.forEach((frame: any[]) => expect(frame).toHaveLength(16));
    const global = await (
      await SELF.fetch(jpegRequest("/v1/image_tokens?model=smol-lm&split=false&nearest=2", cat))
    ).json<any>();
    expect(body.nearest[body.tiles - 1]).toEqual(global.nearest[0]);
    checkNearest(body.image_tokens[0], body.nearest[0], 2);
  });

  test("/v1/models: the table's rows, and no text routes (the section is not a text tower)", async () => {
    const { models } = await (await SELF.fetch("http://edgevit.test/v1/models")).json<any>();
    const lm = models.find((m: any) => m.name === "smol-lm");
    expect(lm.lmVocab).toBe(VOCAB);
    expect(lm.answers).toContain("/v1/image_tokens");
    expect(lm.answers).not.toContain("/v1/zero_shot");
    expect(models.find((m: any) => m.name === "smol-nolm").lmVocab).toBeUndefined();
  });

  test("without nearest the answer has no nearest rows", async () => {
    const body = await (await SELF.fetch(jpegRequest("/v1/image_tokens?model=smol-lm&split=false", cat))).json<any>();
    expect(body.nearest).toBeUndefined();
  });

  test.each([
    ["nearest=0", /nearest must be an integer from 1 to 20/],
    ["nearest=21", /nearest must be an integer from 1 to 20/],
    ["nearest=two", /nearest must be an integer from 1 to 20/],
  ])("%s: 400 with a sentence", async (query, message) => {
    const response = await SELF.fetch(jpegRequest(`/v1/image_tokens?model=smol-lm&${query}`, cat));
    expect(response.status).toBe(400);
    const body = await response.json<any>();
    expect(body.error.code).toBe("bad_parameter");
    expect(body.error.message).toMatch(message);
  });

  test("SmolVLM-256M's 17 frames against its 49,280 x 576 table: too many comparisons, split=false suggested", () => {
    const section = { config: { vocab: 49280, dim: 576, tokensBytes: 1 } } as EmbeddingsSection;
    expect(() => checkNearestWork(section, 17 * 64, true)).toThrow(
      /1088 image tokens with the 49280 rows .* over the 4 billion multiplications one request makes; ask with split=false/,
    );
    // the global view alone: 1.8 billion
    expect(() => checkNearestWork(section, 64, false)).not.toThrow();
  });

  test("a bundle converted without the table: 400 saying how to convert it", async () => {
    const response = await SELF.fetch(jpegRequest("/v1/image_tokens?model=smol-nolm&nearest=3", cat));
    expect(response.status).toBe(400);
    const body = await response.json<any>();
    expect(body.error.message).toMatch(/model smol-nolm has no LLM embedding table .*--lm-embeddings/);
  });

  test("nearest with Accept: application/x-npy: 400, it is a JSON answer", async () => {
    const response = await SELF.fetch(
      jpegRequest("/v1/image_tokens?model=smol-lm&nearest=3", cat, "image/jpeg", { accept: "application/x-npy" }),
    );
    expect(response.status).toBe(400);
    expect((await response.json<any>()).error.message).toMatch(/JSON only/);
  });

  test("RPC imageTokens with nearest: the same rows as over HTTP; a bad k refused", async () => {
    const call = async (options: object) =>
      (
        await env.CALLER.fetch(
          `http://caller.test/image-tokens?options=${encodeURIComponent(JSON.stringify(options))}`,
          {
            method: "POST",
            body: cat,
          },
        )
      ).json<any>();
    const { result } = await call({ model: "smol-lm", split: false, nearest: 4 });
    const http = await (
      await SELF.fetch(jpegRequest("/v1/image_tokens?model=smol-lm&split=false&nearest=4", cat))
    ).json<any>();
    expect(result.nearest).toEqual(http.nearest);
    const { error } = await call({ model: "smol-lm", nearest: 30 });
    expect(error.message).toMatch(/nearest/);
  });
});
