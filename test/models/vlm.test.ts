// A vision-language model's image tokens end to end against float32 PyTorch on real photos
// (test/goldens/vlm/, made by models/tools/make-vlm-goldens.sh): Idefics3ImageProcessor's tiles bit for bit
// (SmolVLM-256M's full-size processor and the tiny preset's, by SHA-256 of every frame's pixel_values),
// then each tiny checkpoint made again by make-random-tower.ts (its bytes checked against the golden's
// hashes), converted, and run on every dot path: every image token row follows float32 at cosine >= 0.999.
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { Engine } from "../../core/engine/index.ts";
import { DEFAULT_LIMITS } from "../../core/limits.ts";
import { type ImageTokens, preprocessFrames, runImageTokens } from "../../core/pipeline.ts";
import { convertDirectory, normalizePreprocessing } from "../../models/convert-folder.ts";
import { makeTower, parseOptions } from "../../models/tools/make-random-tower.ts";
import type { Preprocessing } from "../../core/bundle/format.ts";
import { cosine } from "../assembly/reference.ts";
import { DOT_VARIANTS } from "./dot-variants.ts";

interface Frames {
  photo: string;
  rows: number;
  cols: number;
  frames: number;
  shape: number[];
  sha256: string[];
}

interface Golden {
  name: string;
  made: string;
  family: string;
  sha256: Record<string, string>;
  photos: (Frames & { tokens?: number[][]; tokenShape?: number[] })[];
}

const root = new URL("../../", import.meta.url).pathname;
const goldensDir = join(root, "test/goldens/vlm");
const read = (name: string) => JSON.parse(readFileSync(join(goldensDir, name), "utf8"));
const PRESETS = ["smolvlm-256m-instruct", "llava-1.5-projector"];

const scratch = mkdtempSync(join(tmpdir(), "edgevit-vlm-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const sha256 = (a: Uint8Array) => createHash("sha256").update(a).digest("hex");
const bytesOf = (a: Float32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
const photoBytes = (photo: string) => new Uint8Array(readFileSync(join(root, photo)));

// Every frame of `photo` through core/'s preprocessing, hashed.
async function frameHashes(pp: Preprocessing, photo: string, side: number) {
  const frames = await preprocessFrames(pp, photoBytes(photo), DEFAULT_LIMITS, { decode: "exact" });
  const out = new Float32Array(3 * side * side);
  const hashes: string[] = [];
  for (let i = 0; i < frames.grid.frames; i++) {
    frames.write(i, out);
    hashes.push(sha256(bytesOf(out)));
  }
  return { grid: frames.grid, hashes };
}

describe("Idefics3ImageProcessor (SmolVLM-256M at full size)", () => {
  const golden = read("preprocess.json") as { processor: Record<string, unknown>; cases: Frames[] };
  const tile = (golden.processor.max_image_size as { longest_edge: number }).longest_edge;
  const config = { imageSize: tile, patchSize: 16, channels: 3, dim: 768, heads: 12, hidden: 3072, layers: 1 };
  const pp = normalizePreprocessing(golden.processor, "hf-idefics3", {
    ...config,
    classes: 0,
    eps: 1e-6,
    distilled: false,
  });
  for (const c of golden.cases) {
    test(`${c.photo}: ${c.rows}x${c.cols} tiles and the global view, bit for bit`, async () => {
      const { grid, hashes } = await frameHashes(pp, c.photo, tile);
      expect(grid).toEqual({ rows: c.rows, cols: c.cols, frames: c.frames });
      expect(hashes).toEqual(c.sha256);
    });
  }
});

describe.each(PRESETS)("%s image tokens", (preset) => {
  const g = read(`${preset}.json`) as Golden;
  test("tiny checkpoint through convert and every dot path against float32", async () => {
    const files = makeTower(parseOptions(g.made.split(/\s+/).slice(3)));
    for (const [name, digest] of Object.entries(g.sha256)) expect(sha256(files[name]), name).toBe(digest);
    const dir = join(scratch, g.name);
    mkdirSync(dir, { recursive: true });
    for (const [name, bytes] of Object.entries(files)) writeFileSync(join(dir, name), bytes);
    const bundle = await convertDirectory(dir, { convertedAt: "2026-01-01T00:00:00Z" });
    const models = await Promise.all(
      DOT_VARIANTS.map(async ([module, options]) => (await Engine.instantiate(module, options)).load(bundle)),
    );
    const { preprocessing, config } = models[0].header;
    for (const p of g.photos) {
      const { grid, hashes } = await frameHashes(preprocessing, p.photo, config.imageSize);
      expect(grid).toEqual({ rows: p.rows, cols: p.cols, frames: p.frames });
      expect(hashes, p.photo).toEqual(p.sha256);
      if (!p.tokens) continue;
      const [tokens, lmDim] = p.tokenShape!;
      const runs: ImageTokens[] = [];
      for (const model of models)
        runs.push(await runImageTokens(model, photoBytes(p.photo), DEFAULT_LIMITS, { decode: "exact" }));
      for (const run of runs) {
        expect([run.grid.frames, run.tokens, run.lmDim]).toEqual([p.frames, tokens, lmDim]);
        expect(run.data).toEqual(runs[0].data); // every dot path computes the same integers
      }
      let worst = 1;
      p.tokens.forEach((want, f) => {
        for (let t = 0; t < tokens; t++) {
          const at = (f * tokens + t) * lmDim;
          worst = Math.min(
            worst,
            cosine(runs[0].data.subarray(at, at + lmDim), want.slice(t * lmDim, (t + 1) * lmDim)),
          );
        }
      });
      expect(worst, `${p.photo}: worst image token cosine`).toBeGreaterThanOrEqual(0.999);
      // the global view alone is the last frame of the split image
      const global = await runImageTokens(models[0], photoBytes(p.photo), DEFAULT_LIMITS, {
        decode: "exact",
        split: false,
      });
      expect(global.grid).toEqual({ rows: 0, cols: 0, frames: 1 });
      expect(global.data).toEqual(runs[0].data.subarray((p.frames - 1) * tokens * lmDim));
      // the pass in steps, the host reading each hidden state (as /v1/see's PCA does), ends in the connector
      // too: on the global view written again (the pass overwrites its input), the same rows
      const view = await preprocessFrames(preprocessing, photoBytes(p.photo), DEFAULT_LIMITS, {
        decode: "exact",
        split: false,
      });
      view.write(0, models[0].input());
      let states = 0;
      const stepped = models[0].run({ hiddenState: () => void states++ });
      expect(states).toBe(config.layers + 1);
      expect(stepped.imageTokens).toEqual(global.data);
    }
  });
});
