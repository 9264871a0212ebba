// `edgevit see <image> [-m model.evit] [-o out/] [-k N] [--size S] [--heads]`: what the model sees, as
// files, from one forward pass: the preprocessed image, the PCA picture of every hidden state and their
// animation, the class token's attention per layer (mean of the heads; --heads: every head too), the
// attention rollout, and the predictions.
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { runImage } from "../core/pipeline.ts";
import { encodeApng, encodePng } from "../core/png.ts";
import { topPredictions } from "../core/predictions.ts";
import { attentionPicture, FRAME_MS, SEE_CAPTURE, type Seen, seeAll } from "../core/see.ts";
import { CLI_LIMITS, DEFAULT_MODEL, loadModelFile, nodeEngine } from "./node-engine.ts";

const USAGE = "usage: edgevit see <image> [-m model.evit] [-o out/] [-k N] [--size S] [--heads]";

const two = (n: number) => String(n).padStart(2, "0");

export async function main(args: string[]): Promise<number> {
  let modelPath = DEFAULT_MODEL;
  let outDir = "see";
  let k = 5;
  let size = 224;
  let everyHead = false;
  const files: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "-m" || a === "--model") modelPath = args[++i];
    else if (a === "-o" || a === "--out") outDir = args[++i];
    else if (a === "-k" || a === "--top") k = Number(args[++i]);
    else if (a === "--size") size = Number(args[++i]);
    else if (a === "--heads") everyHead = true;
    else if (a.startsWith("-")) return usage(`unknown option ${a}`);
    else files.push(a);
  }
  if (!modelPath) return usage("-m needs a model file");
  if (!outDir) return usage("-o needs a directory");
  if (!Number.isInteger(k) || k < 1) return usage("-k needs a positive integer");
  if (!Number.isInteger(size) || size < 16 || size > 1024) return usage("--size needs an integer from 16 to 1024");
  if (files.length !== 1) return usage("give exactly one image");

  const model = await loadModelFile(await nodeEngine(), modelPath);
  const bytes = await readFile(files[0]).catch((e: NodeJS.ErrnoException) => {
    throw e.code === "ENOENT" ? new Error(`no such file: ${files[0]}`) : e;
  });
  const { header } = model;
  let seen: Seen | undefined;
  const { image, result } = runImage(model, bytes, CLI_LIMITS, {
    ...SEE_CAPTURE,
    read: (captures) => (seen = seeAll(captures, header, size)),
  });
  const { frames, mean, cls } = seen!;
  const c = header.config;
  await mkdir(outDir, { recursive: true });
  const written: string[] = [];
  const put = async (name: string, data: Uint8Array | string) => {
    await writeFile(join(outDir, name), data);
    written.push(name);
  };

  const predictions = topPredictions(result.logits, header.labels, k);
  await put("predictions.json", `${JSON.stringify({ file: files[0], model: header.name, image, predictions })}\n`);
  const pixels = seen!.image;
  await put("preprocessed.png", await encodePng(pixels, c.imageSize, c.imageSize));
  for (let layer = 0; layer <= c.layers; layer++) {
    await put(`pca-${two(layer)}.png`, await encodePng(frames[layer], size, size));
  }
  await put("pca.apng", await encodeApng(frames, size, size, { delayMs: FRAME_MS }));
  for (let layer = 1; layer <= c.layers; layer++) {
    const heads: (number | "mean")[] = ["mean", ...(everyHead ? Array.from({ length: c.heads }, (_, h) => h) : [])];
    for (const head of heads) {
      const values = head === "mean" ? mean[layer - 1] : cls[layer - 1][head];
      const picture = attentionPicture(values, pixels, c, size);
      const name = `attention-${two(layer)}-${head === "mean" ? "mean" : `head${two(head)}`}.png`;
      await put(name, await encodePng(picture, size, size));
    }
  }
  const rollout = attentionPicture(seen!.rollout[c.layers - 1], pixels, c, size);
  await put("rollout.png", await encodePng(rollout, size, size));
  console.error(`edgevit see: ${files[0]} through ${header.name}: wrote ${written.length} files to ${outDir}`);
  process.stdout.write(`${JSON.stringify({ file: files[0], predictions, out: outDir, files: written })}\n`);
  return 0;
}

function usage(problem: string): number {
  console.error(`edgevit see: ${problem}\n${USAGE}`);
  return 2;
}
