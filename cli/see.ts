// `edgevit see <image> [-m model.evit] [-o out/] [-k N] [--size S] [--heads]`: what the model sees, as
// files, from one forward pass: the preprocessed image, the PCA picture of every hidden state and their
// animation, the class token's attention per layer (mean of the heads; --heads: every head too), the
// attention rollout, and the predictions.
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { runImage } from "../core/pipeline.ts";
import { encodeApng, encodePng } from "../core/pictures/png.ts";
import { topPredictions } from "../core/answers/predictions.ts";
import { attentionLayers, attentionPicture, FRAME_MS, lookerOf, seeCapture } from "../core/pictures/see.ts";
import { type CommandSpec, intValue, runCommand } from "./args.ts";
import { CLI_LIMITS, DEFAULT_MODEL, loadModelFile, nodeEngine } from "./node-engine.ts";

export const spec: CommandSpec = {
  name: "see",
  synopsis: "<image> [-m model.evit] [-o DIR] [-k N] [--size S] [--heads]",
  summary:
    "What the model sees, from one forward pass: the preprocessed image, the PCA picture of every hidden state " +
    "(pca-NN.png) and their animation (pca.apng), the class token's attention per layer (attention-NN-mean.png; SigLIP: " +
    "its pooling head's, attention-pool-mean.png), " +
    "attention rollout (rollout.png) and predictions.json, into a folder.",
  options: {
    model: { type: "string", short: "m", value: "FILE", help: "the bundle (default: the committed model)" },
    out: { type: "string", short: "o", value: "DIR", help: "where to write the files (default: see)" },
    top: { type: "string", short: "k", value: "N", help: "how many labels in predictions.json (default 5)" },
    size: { type: "string", value: "S", help: "picture side in pixels, 16 to 1024 (default 224)" },
    heads: { type: "boolean", help: "an attention map for every head too (attention-NN-headHH.png)" },
  },
  positionals: { min: 1, max: 1 },
};

const two = (n: number) => String(n).padStart(2, "0");

export function main(args: string[]): Promise<number> {
  return runCommand(spec, args, async ({ values, positionals: [file] }) => {
    const k = intValue("top", values.top, 5, 1);
    const size = intValue("size", values.size, 224, 16, 1024);
    const outDir = (values.out as string | undefined) ?? "see";
    return see(file, (values.model as string | undefined) ?? DEFAULT_MODEL, outDir, k, size, values.heads === true);
  });
}

async function see(file: string, modelPath: string, outDir: string, k: number, size: number, everyHead: boolean) {
  const model = await loadModelFile(await nodeEngine(), modelPath);
  const bytes = await readFile(file).catch((e: NodeJS.ErrnoException) => {
    throw e.code === "ENOENT" ? new Error(`no such file: ${file}`) : e;
  });
  const { header } = model;
  // The pictures are made from the captures in place, before anything awaits.
  const { capture, keep } = seeCapture(header, size);
  const ran = await runImage(model, new Uint8Array(bytes), CLI_LIMITS, { capture, keep });
  const { image, result, kept: seen } = ran;
  const { frames, mean, cls } = seen;
  const c = header.config;
  await mkdir(outDir, { recursive: true });
  const written: string[] = [];
  const put = async (name: string, data: Uint8Array | string) => {
    await writeFile(join(outDir, name), data);
    written.push(name);
  };

  const predictions = topPredictions(result.logits, header.labels, k);
  await put("predictions.json", `${JSON.stringify({ file: file, model: header.name, image, predictions })}\n`);
  const pixels = seen.image;
  await put("preprocessed.png", await encodePng(pixels, c.imageSize, c.imageSize));
  for (let layer = 0; layer <= c.layers; layer++) {
    await put(`pca-${two(layer)}.png`, await encodePng(frames[layer], size, size));
  }
  await put("pca.apng", await encodeApng(frames, size, size, { delayMs: FRAME_MS }));
  // SigLIP has no class token: its one attention map is its pooling head's (attention-pool-mean.png)
  const pool = lookerOf(c) === "pooling head";
  for (let layer = 1; layer <= attentionLayers(c); layer++) {
    const heads: (number | "mean")[] = ["mean", ...(everyHead ? Array.from({ length: c.heads }, (_, h) => h) : [])];
    for (const head of heads) {
      const values = head === "mean" ? mean[layer - 1] : cls[layer - 1][head];
      const picture = attentionPicture(values, pixels, c, size);
      const name = `attention-${pool ? "pool" : two(layer)}-${head === "mean" ? "mean" : `head${two(head)}`}.png`;
      await put(name, await encodePng(picture, size, size));
    }
  }
  const rollout = attentionPicture(seen.rollout[attentionLayers(c) - 1], pixels, c, size);
  await put("rollout.png", await encodePng(rollout, size, size));
  console.error(`edgevit see: ${file} through ${header.name}: wrote ${written.length} files to ${outDir}`);
  process.stdout.write(`${JSON.stringify({ file, predictions, out: outDir, files: written })}\n`);
  return 0;
}
