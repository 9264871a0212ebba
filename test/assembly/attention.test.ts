// Attention capture against the PyTorch float32 reference (test/goldens/<name>/attentions.json, written by
// models/tools/reference.py --attentions): every layer's softmax probabilities, per head, as the engine
// computed them (before the int8 quantization of P), within 0.02 of float32; rows sum to 1; the
// class-token rows and head means the engine keeps for every layer are the same numbers; the engine's
// running attention rollout equals the full-matrix reference over its own head means, and follows the
// reference over PyTorch's.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { convertDirectory } from "../../models/convert-folder.ts";
import { makeCheckpoint, parseOptions } from "../../models/tools/make-random-vit.ts";
import { nodeEngine } from "../../cli/node-engine.ts";
import { rollout } from "../core/pictures/rollout-reference.ts";

interface AttentionGolden {
  name: string;
  made: string;
  tokens: number;
  heads: number;
  layers: number;
  count: number;
  attentions: number[][][]; // [input][layer][heads * tokens * tokens]
}

const goldensDir = new URL("../goldens/", import.meta.url).pathname;
const goldens: AttentionGolden[] = readdirSync(goldensDir, { withFileTypes: true })
  .filter((d) => d.isDirectory() && existsSync(join(goldensDir, d.name, "attentions.json")))
  .map((d) => JSON.parse(readFileSync(join(goldensDir, d.name, "attentions.json"), "utf8")));

const scratch = mkdtempSync(join(tmpdir(), "edgevit-attention-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const TOLERANCE = 0.02;

describe("attention probabilities vs PyTorch float32", () => {
  test("goldens exist for a plain and a distilled model", () => {
    expect(goldens.map((g) => g.name).sort()).toEqual(["tiny", "tiny-deit-distilled", "tiny-odd"]);
  });

  for (const g of goldens) {
    test(`${g.name}: every layer and head within ${TOLERANCE}, rows sum to 1, summaries agree`, async () => {
      const files = makeCheckpoint(parseOptions(g.made.split(/\s+/).slice(3)));
      const dir = join(scratch, g.name);
      mkdirSync(dir, { recursive: true });
      for (const [name, bytes] of Object.entries(files))
        if (name !== "inputs.f32") writeFileSync(join(dir, name), bytes);
      const model = await (await nodeEngine()).load(await convertDirectory(dir));
      const c = model.header.config;
      const t = g.tokens;
      expect([model.tokens, c.heads, c.layers]).toEqual([t, g.heads, g.layers]);
      const raw = files["inputs.f32"];
      const images = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
      const pixels = c.channels * c.imageSize ** 2;
      for (let i = 0; i < g.count; i++) {
        const input = images.subarray(i * pixels, (i + 1) * pixels);
        let summaries: { cls: Float32Array; mean: Float32Array; rollout: Float32Array } | undefined;
        const engineMean = new Float64Array(c.layers * t * t); // the head means of the engine's probabilities
        for (let layer = 1; layer <= c.layers; layer++) {
          model.input().set(input);
          const run = model.run({ attentionLayer: layer, attention: true });
          const got = run.attentions!;
          const want = g.attentions[i][layer - 1];
          expect(got).toHaveLength(want.length);
          let worst = 0;
          for (let k = 0; k < want.length; k++) worst = Math.max(worst, Math.abs(got[k] - want[k]));
          expect(worst, `input ${i} layer ${layer}`).toBeLessThanOrEqual(TOLERANCE);
          for (let row = 0; row < c.heads * t; row++) {
            let sum = 0;
            for (let j = 0; j < t; j++) sum += got[row * t + j];
            expect(sum).toBeCloseTo(1, 5);
          }
          summaries = { cls: run.clsAttention!, mean: run.clsMean!, rollout: run.rollout! };
          // The per-layer summaries are the full probabilities' class rows and head means.
          const l = layer - 1;
          for (let h = 0; h < c.heads; h++) {
            expect(summaries.cls.subarray((l * c.heads + h) * t, (l * c.heads + h + 1) * t)).toEqual(
              got.subarray(h * t * t, h * t * t + t),
            );
          }
          for (let k = 0; k < t * t; k++) {
            let mean = 0;
            for (let h = 0; h < c.heads; h++) mean += got[h * t * t + k];
            engineMean[l * t * t + k] = mean / c.heads;
            if (k < t) expect(summaries.mean[l * t + k]).toBeCloseTo(mean / c.heads, 6);
          }
        }
        // The running rollout, every layer, against the full-matrix reference over the same head means and
        // over PyTorch's.
        const referenceMean = new Float64Array(c.layers * t * t);
        for (let l = 0; l < c.layers; l++) {
          for (let k = 0; k < t * t; k++) {
            let mean = 0;
            for (let h = 0; h < c.heads; h++) mean += g.attentions[i][l][h * t * t + k];
            referenceMean[l * t * t + k] = mean / c.heads;
          }
        }
        for (let upTo = 1; upTo <= c.layers; upTo++) {
          const got = summaries!.rollout.subarray((upTo - 1) * t, upTo * t);
          const same = rollout(engineMean, t, upTo).subarray(0, t);
          const want = rollout(referenceMean, t, upTo).subarray(0, t);
          for (let k = 0; k < t; k++) {
            expect(Math.abs(got[k] - same[k]), `rollout ${upTo} token ${k}`).toBeLessThanOrEqual(1e-5);
            expect(Math.abs(got[k] - want[k])).toBeLessThanOrEqual(TOLERANCE);
          }
        }
      }
    });
  }
});

describe("capture", () => {
  test("changes no output, and views read in place equal the copies", async () => {
    const g = goldens.find((x) => x.name === "tiny-deit-distilled")!;
    const files = makeCheckpoint(parseOptions(g.made.split(/\s+/).slice(3)));
    const dir = join(scratch, `${g.name}-capture`);
    mkdirSync(dir, { recursive: true });
    for (const [name, bytes] of Object.entries(files)) if (name !== "inputs.f32") writeFileSync(join(dir, name), bytes);
    const bundle = await convertDirectory(dir);
    const engine = await nodeEngine();
    const [plain, capturing] = [await engine.load(bundle), await engine.load(bundle)];
    const c = plain.header.config;
    const input = Float32Array.from({ length: c.channels * c.imageSize ** 2 }, (_, i) => Math.sin(i * 0.37));
    // the pass overwrites the input (it shares memory with the layers' operands): written before every run
    plain.input().set(input);
    const before = plain.memoryBytes;
    plain.run();
    expect(plain.memoryBytes).toBe(before); // a run without capture allocates nothing
    plain.input().set(input);
    const want = plain.run({ capture: 1 });
    capturing.input().set(input);
    const states: Float32Array[] = [];
    const options = {
      capture: 1,
      hiddenState: (l: number, state: Float32Array) => (states[l] = state.slice()),
      attention: true,
      attentionLayer: 2,
      pixels: true,
    };
    const copies = capturing.run(options);
    for (const key of ["logits", "output", "captured"] as const) expect(copies[key]).toEqual(want[key]);
    // hidden state 1 is the captured layer, one state per layer 0..L; pixel_values are the input
    expect(states).toHaveLength(c.layers + 1);
    expect(states[1]).toEqual(want.captured);
    expect(copies.pixels).toEqual(input);
    const kinds = ["clsAttention", "clsMean", "rollout", "attentions", "pixels"] as const;
    let views: Record<string, Float32Array | undefined> = {};
    capturing.input().set(input);
    const read = capturing.run({
      ...options,
      read: (r) => {
        views = Object.fromEntries(kinds.map((k) => [k, r[k]?.slice()]));
      },
    });
    expect(read.rollout).toBeUndefined();
    expect(read.logits).toEqual(want.logits);
    for (const key of kinds) expect(views[key], key).toEqual(copies[key]);
    // After capture, a run without it gives the same outputs again
    capturing.input().set(input);
    expect(capturing.run({ capture: 1 }).logits).toEqual(want.logits);
  });
});
