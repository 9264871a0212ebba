// `edgevit see` on the default model and a sample: the files it writes against the engine run here on
// the same file (one captured layer at a time, the full attention of each layer) and `edgevit classify`.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inflateSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { CLI_LIMITS, DEFAULT_MODEL, loadModelFile, nodeEngine } from "../../cli/node-engine.ts";
import type { Model } from "../../core/engine/model.ts";
import { heatMap, resizeNearest } from "../../core/pictures/heatmap.ts";
import { patchPicture } from "../../core/pictures/pca.ts";
import { runImage } from "../../core/pipeline.ts";

const repo = new URL("../..", import.meta.url).pathname;
const SAMPLE = join(repo, "models/default/samples/trouser.jpg");
const out = mkdtempSync(join(tmpdir(), "edgevit-see-"));
afterAll(() => rmSync(out, { recursive: true, force: true }));

function cli(...args: string[]) {
  return spawnSync(process.execPath, [join(repo, "bin/edgevit.mjs"), ...args], { cwd: repo, encoding: "utf8" });
}

// The chunks of a PNG or APNG, and the filter-0 RGB rows of one zlib stream.
function chunks(png: Buffer): { type: string; data: Buffer }[] {
  const list: { type: string; data: Buffer }[] = [];
  for (let at = 8; at < png.length; at += 12 + png.readUInt32BE(at)) {
    list.push({
      type: png.toString("latin1", at + 4, at + 8),
      data: png.subarray(at + 8, at + 8 + png.readUInt32BE(at)),
    });
  }
  return list;
}

function rgb(zlib: Uint8Array, width: number): Uint8Array {
  const raw = inflateSync(zlib);
  const stride = width * 3 + 1;
  const pixels = new Uint8Array((raw.length / stride) * width * 3);
  for (let y = 0; y < raw.length / stride; y++)
    pixels.set(raw.subarray(y * stride + 1, (y + 1) * stride), y * width * 3);
  return pixels;
}

const png = (name: string) => rgb(chunks(readFileSync(join(out, name))).find((c) => c.type === "IDAT")!.data, 64);

let model: Model;
const bytes = readFileSync(SAMPLE);

beforeAll(async () => {
  model = await loadModelFile(await nodeEngine(), DEFAULT_MODEL);
  const run = cli("see", SAMPLE, "-o", out, "--size", "64", "-k", "3");
  expect(run.status, run.stderr).toBe(0);
});

describe("edgevit see", () => {
  test("writes the predictions classify gives, and every picture", () => {
    const { layers } = model.header.config;
    const classify = JSON.parse(cli("classify", "-k", "3", SAMPLE).stdout);
    const predictions = JSON.parse(readFileSync(join(out, "predictions.json"), "utf8"));
    expect(predictions.predictions).toEqual(classify.predictions);
    expect(predictions.predictions[0].label).toBe("Trouser");
    const names = readdirSync(out).sort();
    const two = (n: number) => String(n).padStart(2, "0");
    expect(names).toEqual(
      [
        "predictions.json",
        "preprocessed.png",
        "pca.apng",
        "rollout.png",
        ...Array.from({ length: layers + 1 }, (_, l) => `pca-${two(l)}.png`),
        ...Array.from({ length: layers }, (_, l) => `attention-${two(l + 1)}-mean.png`),
      ].sort(),
    );
  });

  test("each PCA picture is that hidden state's, and the animation has them as frames in order", async () => {
    const { layers, dim, imageSize, patchSize } = model.header.config;
    const animation = chunks(readFileSync(join(out, "pca.apng")));
    const data = animation.filter((c) => c.type === "IDAT" || c.type === "fdAT");
    expect(data).toHaveLength(layers + 1);
    for (let layer = 0; layer <= layers; layer++) {
      const states = (await runImage(model, bytes, CLI_LIMITS, { capture: layer })).result.captured!;
      const want = patchPicture(states, dim, imageSize / patchSize, 64);
      expect(png(`pca-${String(layer).padStart(2, "0")}.png`), `layer ${layer}`).toEqual(want);
      expect(rgb(layer === 0 ? data[0].data : data[layer].data.subarray(4), 64)).toEqual(want);
    }
  });

  test("the attention maps are the head-mean class rows of each layer's probabilities over the image", async () => {
    const { layers, heads, imageSize, patchSize } = model.header.config;
    const grid = imageSize / patchSize;
    const tokens = model.tokens;
    const image = rgb(
      chunks(readFileSync(join(out, "preprocessed.png"))).find((c) => c.type === "IDAT")!.data,
      imageSize,
    );
    for (let layer = 1; layer <= layers; layer++) {
      const p = (await runImage(model, bytes, CLI_LIMITS, { capture: { attentionLayer: layer } })).result.attentions!;
      const values = Array.from({ length: grid * grid }, (_, j) => {
        let s = 0;
        for (let h = 0; h < heads; h++) s += p[h * tokens * tokens + 1 + j];
        return s / heads;
      });
      const want = heatMap(values, grid, resizeNearest(image, imageSize, imageSize, 64), 64);
      const got = png(`attention-${String(layer).padStart(2, "0")}-mean.png`);
      let worst = 0;
      for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]));
      expect(worst, `layer ${layer}`).toBeLessThanOrEqual(1);
    }
  });

  test("usage errors exit 2, a missing or unreadable file exits 1 with the reason", () => {
    expect(cli("see").status).toBe(2);
    expect(cli("see", SAMPLE, "--size", "8").status).toBe(2);
    const missing = cli("see", join(out, "nothing.jpg"), "-o", join(out, "x"));
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/no such file: .*nothing\.jpg/);
    const notJpeg = cli("see", join(repo, "README.md"), "-o", join(out, "x"));
    expect(notJpeg.status).toBe(1);
    expect(notJpeg.stderr).toMatch(/not a JPEG/);
  });
});
