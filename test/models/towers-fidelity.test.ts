// The image towers end to end against float32 PyTorch on real photos (test/goldens/towers/, made by
// models/tools/make-tower-goldens.sh): each preset's tiny checkpoint is made again here by
// make-random-tower.ts (its bytes checked against the golden's hashes), converted by core/convert/convert.ts,
// every photo preprocessed by core/ (bit for bit the reference's pixel_values, checked by SHA-256) and run on
// every dot path (the baseline build, the relaxed build split and fused), which agree bit for bit. The int8
// embedding each family's users take (CLIP image_embeds, SigLIP's pooled output, DINOv2's class token and
// mean patch token) follows float32 at cosine >= 0.999, every token of the hidden states too, the attention
// probabilities within 0.02, and every photo's neighbours stay in their order.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { towerOf } from "../../core/bundle/format.ts";
import { Engine } from "../../core/engine/index.ts";
import type { Model } from "../../core/engine/model.ts";
import { DEFAULT_LIMITS } from "../../core/limits.ts";
import { preprocessInto } from "../../core/pipeline.ts";
import { convertDirectory } from "../../models/convert-folder.ts";
import { makeTower, parseOptions } from "../../models/tools/make-random-tower.ts";
import { cosine } from "../assembly/reference.ts";
import { DOT_VARIANTS } from "./dot-variants.ts";

interface ImageGolden {
  pooler: number[];
  imageEmbeds?: number[]; // CLIP
  meanPatch?: number[]; // DINOv2
  headAttentionMean?: number[]; // SigLIP
  tokens: number;
  hiddenStates?: number[][]; // [layers + 1][tokens * dim], the first two photos
  lastHiddenState?: number[];
}

interface Golden {
  name: string;
  made: string;
  sha256: Record<string, string>;
  photos: string[];
  pixels: { shape: number[]; sha256: string }[];
  family: string;
  images: ImageGolden[];
}

interface Attentions {
  attentions: { layers: number[][]; head?: number[] }[]; // per photo: per layer [heads][tokens][tokens]
}

const root = new URL("../../", import.meta.url).pathname;
const goldensDir = join(root, "test/goldens/towers");
const goldens: Golden[] = readdirSync(goldensDir, { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .map((d) => JSON.parse(readFileSync(join(goldensDir, d.name, "reference.json"), "utf8")));

const scratch = mkdtempSync(join(tmpdir(), "edgevit-towers-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");
const bytesOf = (a: Float32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

function worstTokenCosine(got: Float32Array, want: number[], dim: number): number {
  let worst = 1;
  for (let t = 0; t * dim < want.length; t++) {
    worst = Math.min(worst, cosine(got.subarray(t * dim, (t + 1) * dim), want.slice(t * dim, (t + 1) * dim)));
  }
  return worst;
}

function maxAbsDiff(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let worst = 0;
  for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]));
  return worst;
}

// Pairs of photos ranked differently from photo i: j is nearer than k in the reference by more than
// `margin`, and not nearer in ours. Photos that are near ties in float32 (cat-baseline-420.jpg and cat.png
// are the same picture) may swap.
function rankSwaps(ours: ArrayLike<number>[], reference: ArrayLike<number>[], margin: number): string[] {
  const swaps: string[] = [];
  for (let i = 0; i < ours.length; i++) {
    for (let j = 0; j < ours.length; j++) {
      for (let k = 0; k < ours.length; k++) {
        if (i === j || i === k || j === k) continue;
        const want = cosine(reference[i], reference[j]) - cosine(reference[i], reference[k]);
        if (want > margin && !(cosine(ours[i], ours[j]) > cosine(ours[i], ours[k])))
          swaps.push(`${i}: ${j} before ${k}`);
      }
    }
  }
  return swaps;
}

// The embedding each family's users take, and the reference's.
function embeddingOf(model: Model, run: ReturnType<Model["run"]>): Float32Array {
  return towerOf(model.header.config).projection > 0 ? run.projected! : run.pooler;
}
function referenceEmbedding(image: ImageGolden): number[] {
  return image.imageEmbeds ?? image.pooler;
}

// The mean of the patch tokens (after any register tokens) of last_hidden_state.
function meanPatch(output: Float32Array, dim: number, patches: number): Float32Array {
  const first = output.length / dim - patches;
  const sum = new Float64Array(dim);
  for (let t = first; t < first + patches; t++) for (let d = 0; d < dim; d++) sum[d] += output[t * dim + d];
  return Float32Array.from(sum, (s) => s / patches);
}

describe("image towers vs float32 PyTorch on photos", () => {
  for (const g of goldens) {
    test(`${g.name}: checkpoint bytes, pixel_values bit-exact, dot paths identical, int8 follows float32`, async () => {
      // the checkpoint, as the golden was computed from it
      const files = makeTower(parseOptions(g.made.split(/\s+/).slice(3)));
      for (const [name, digest] of Object.entries(g.sha256)) expect(sha256(files[name]), name).toBe(digest);
      const dir = join(scratch, g.name);
      mkdirSync(dir, { recursive: true });
      for (const [name, bytes] of Object.entries(files)) writeFileSync(join(dir, name), bytes);
      const bundle = await convertDirectory(dir, { convertedAt: "2026-01-01T00:00:00Z" });
      const models = await Promise.all(
        DOT_VARIANTS.map(async ([module, options]) => (await Engine.instantiate(module, options)).load(bundle)),
      );
      const c = models[0].header.config;
      const patches = (c.imageSize / c.patchSize) ** 2;
      const attentions: Attentions | null = existsSync(join(goldensDir, g.name, "attentions.json"))
        ? JSON.parse(readFileSync(join(goldensDir, g.name, "attentions.json"), "utf8"))
        : null;
      // the comparisons below that depend on the golden's contents must have something to compare
      for (const want of g.images.slice(0, 2)) {
        expect(want.hiddenStates && want.lastHiddenState, `${g.name}: hidden states of the first photos`).toBeTruthy();
      }
      if (attentions) {
        expect(attentions.attentions.length, `${g.name}: attention photos`).toBeGreaterThan(0);
        for (const item of attentions.attentions)
          expect(item.head !== undefined, "pooling head").toBe(g.family === "siglip");
      }
      const ours: Float32Array[] = [];
      for (const [i, photo] of g.photos.entries()) {
        const bytes = new Uint8Array(readFileSync(join(root, photo)));
        const want = g.images[i];
        const hidden = want.hiddenStates !== undefined;
        const layer = attentions && i < attentions.attentions.length ? c.layers : 0;
        const runs = [];
        const states: Float32Array[] = []; // the first engine's hidden states 0..L, as the pass makes them
        for (const [m, model] of models.entries()) {
          await preprocessInto(model.header.preprocessing, bytes, DEFAULT_LIMITS, () => model.input(), "exact");
          expect(sha256(bytesOf(model.input())), `${photo} pixel_values`).toBe(g.pixels[i].sha256);
          const hiddenState =
            hidden && m === 0 ? (l: number, state: Float32Array) => (states[l] = state.slice()) : undefined;
          runs.push(model.run({ hiddenState, attentionLayer: layer }));
        }
        for (const run of runs.slice(1)) {
          expect(Buffer.from(bytesOf(run.output)).equals(Buffer.from(bytesOf(runs[0].output)))).toBe(true);
          expect(Buffer.from(bytesOf(embeddingOf(models[0], run)))).toEqual(
            Buffer.from(bytesOf(embeddingOf(models[0], runs[0]))),
          );
        }
        const run = runs[0];
        const embedding = embeddingOf(models[0], run);
        ours.push(embedding);
        expect(cosine(embedding, referenceEmbedding(want)), `${photo} embedding`).toBeGreaterThanOrEqual(0.999);
        expect(run.output.length).toBe(want.tokens * c.dim);
        if (want.meanPatch) {
          expect(
            cosine(meanPatch(run.output, c.dim, patches), want.meanPatch),
            `${photo} mean patch`,
          ).toBeGreaterThanOrEqual(0.999);
        }
        if (want.hiddenStates && want.lastHiddenState) {
          want.hiddenStates.forEach((state, l) => {
            expect(worstTokenCosine(states[l], state, c.dim), `${photo} hidden state ${l}`).toBeGreaterThan(0.999);
          });
          expect(worstTokenCosine(run.output, want.lastHiddenState, c.dim), `${photo} last`).toBeGreaterThan(0.999);
        }
        if (layer) {
          const item = attentions!.attentions[i];
          expect(maxAbsDiff(run.attentions!, item.layers[layer - 1]), `${photo} attentions`).toBeLessThan(0.02);
          if (item.head) expect(maxAbsDiff(run.headAttention!, item.head), `${photo} pooling head`).toBeLessThan(0.02);
        }
      }
      // the photo set's nearest-neighbour order
      const reference = g.images.map((image) => referenceEmbedding(image));
      expect(rankSwaps(ours, reference, 0.01)).toEqual([]);
    });
  }
});
