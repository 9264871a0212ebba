// PNG uploads through the upload path (core/pipeline's runImage, what POST /v1/hidden_states?layer=0
// calls) against transformers' semantics computed with Pillow, numpy and PyTorch
// (test/tools/png_hidden_states.py): pixel_values bit-exact, and every value of hidden_states[0] within the
// bound that w7a8 rounding of the patch projection allows (docs/ARCHITECTURE.md: activations per token,
// asymmetric, step s_a = (max - min) / 255; weights per output channel, step s_w = max|w| / 63; each
// rounded to the nearest step): |d[t][n]| <= sum_k (|a_k| s_w / 2 + |w_nk| s_a / 2 + s_a s_w / 4).

import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, test } from "vitest";
import { convertDirectory } from "../../../../models/convert-folder.ts";
import { makeCheckpoint, parseOptions } from "../../../../models/tools/make-random-vit.ts";
import { DEFAULT_LIMITS } from "../../../../core/limits.ts";
import { runImage } from "../../../../core/pipeline.ts";
import { nodeEngine } from "../../../../cli/node-engine.ts";
import { cosine } from "../../../../bench/stats.ts";

const DIR = new URL("../../../goldens/preprocess/png/", import.meta.url).pathname;
const golden: {
  made: string;
  tokens: number;
  config: { dim: number; imageSize: number; patchSize: number };
  cases: { png: string; pixelValues: string; hiddenStates0: number[] }[];
} = JSON.parse(readFileSync(`${DIR}hidden-states.json`, "utf8"));

const scratch = mkdtempSync(join(tmpdir(), "edgevit-png-hidden-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

// The patch projection's weight, f32 [dim][channels * patch * patch], from the checkpoint's safetensors.
function projection(safetensors: Uint8Array): Float32Array {
  const view = new DataView(safetensors.buffer, safetensors.byteOffset, safetensors.byteLength);
  const n = Number(view.getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(safetensors.subarray(8, 8 + n)));
  const t = header["vit.embeddings.patch_embeddings.projection.weight"];
  expect(t.dtype).toBe("F32");
  const [begin, end] = t.data_offsets;
  return new Float32Array(safetensors.slice(8 + n + begin, 8 + n + end).buffer);
}

// The bound above for each patch token (1..patches) and output channel, from pixel_values [3][size][size].
function roundingBound(pixels: Float32Array, weight: Float32Array, size: number, patch: number, dim: number) {
  const k = 3 * patch * patch;
  const grid = size / patch;
  const bound = new Float64Array((grid * grid + 1) * dim);
  const sw = Array.from({ length: dim }, (_, o) => Math.max(...weight.subarray(o * k, (o + 1) * k).map(Math.abs)) / 63);
  for (let p = 0; p < grid * grid; p++) {
    const a: number[] = [];
    for (let c = 0; c < 3; c++) {
      for (let i = 0; i < patch; i++) {
        for (let j = 0; j < patch; j++) {
          a.push(pixels[c * size * size + (Math.floor(p / grid) * patch + i) * size + (p % grid) * patch + j]);
        }
      }
    }
    const sa = (Math.max(0, ...a) - Math.min(0, ...a)) / 255;
    const sumA = a.reduce((x, v) => x + Math.abs(v), 0);
    for (let o = 0; o < dim; o++) {
      let sumW = 0;
      for (let q = 0; q < k; q++) sumW += Math.abs(weight[o * k + q]);
      bound[(p + 1) * dim + o] = (sumA * sw[o]) / 2 + (sumW * sa) / 2 + (k * sa * sw[o]) / 4;
    }
  }
  return bound;
}

test("hidden_states[0] of PNG uploads follow transformers + PyTorch", async () => {
  const files = makeCheckpoint(parseOptions(golden.made.split(/\s+/).slice(3)));
  mkdirSync(join(scratch, "tiny"), { recursive: true });
  for (const [name, bytes] of Object.entries(files)) writeFileSync(join(scratch, "tiny", name), bytes);
  const model = await (await nodeEngine()).load(await convertDirectory(join(scratch, "tiny")));
  const { dim, imageSize, patchSize } = golden.config;
  const weight = projection(files["model.safetensors"]);
  for (const c of golden.cases) {
    const bytes = new Uint8Array(readFileSync(DIR + c.png));
    // pixel_values copied before the pass, which overwrites its input
    const { result } = await runImage(model, bytes, DEFAULT_LIMITS, { capture: { capture: 0, pixels: true } });
    const input = result.pixels!;
    const sha = createHash("sha256").update(new Uint8Array(input.buffer, input.byteOffset, input.byteLength));
    expect(sha.digest("hex"), `${c.png}: pixel_values`).toBe(c.pixelValues);
    const got = result.captured!; // [tokens][dim]
    expect(got.length).toBe(golden.tokens * dim);
    const bound = roundingBound(input, weight, imageSize, patchSize, dim);
    let worst = 1;
    let maxDiff = 0;
    let usedOfBound = 0;
    for (let t = 0; t < golden.tokens; t++) {
      const want = c.hiddenStates0.slice(t * dim, (t + 1) * dim);
      worst = Math.min(worst, cosine(got.subarray(t * dim, (t + 1) * dim), want));
      for (let i = 0; i < dim; i++) {
        const d = Math.abs(got[t * dim + i] - want[i]);
        // 1e-5: float32 accumulation and the reference's 7 significant digits, on values of order 1.
        expect(d, `${c.png} token ${t} channel ${i}`).toBeLessThanOrEqual(bound[t * dim + i] + 1e-5);
        maxDiff = Math.max(maxDiff, d);
        if (t > 0) usedOfBound = Math.max(usedOfBound, d / bound[t * dim + i]);
      }
    }
    console.log(
      `${c.png}: worst token cosine ${worst.toFixed(6)}, max |d| ${maxDiff.toExponential(2)}, ` +
        `at most ${(100 * usedOfBound).toFixed(0)}% of the rounding bound`,
    );
    expect(worst).toBeGreaterThan(0.999);
  }
});
