// `edgevit eval [-m model.evit] [--limit N] [--quality Q]`: the Fashion-MNIST test set through the upload
// path. Each 28x28 grayscale image is encoded as an RGB JPEG with jpeg-js, then decoded and preprocessed
// exactly as an upload is and run on the int8 engine. Quality 100 by default: its quantization tables are
// all ones, so the JPEG round trip moves pixels by at most a level or two and the accuracy measured is
// the engine's, while the decode path is still exercised. Lower qualities measure robustness to JPEG.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { gunzipSync } from "node:zlib";
import { encode as encodeJpeg } from "jpeg-js";
import { intValue, runCommand, UsageError, type CommandSpec, type Parsed } from "./args.ts";
import { CLI_LIMITS, DEFAULT_MODEL, loadModelFile, nodeEngine } from "./node-engine.ts";
import { preprocessImage } from "../core/pipeline.ts";

// The full test set from Debian's dataset-fashion-mnist, else the first 500 images committed for CI.
const DATASET = "/usr/share/datasets/fashion-mnist";
export const SUBSET = fileURLToPath(new URL("../test/fixtures/fashion-mnist", import.meta.url));
export const spec: CommandSpec = {
  name: "eval",
  synopsis: "[-m model.evit] [--data DIR] [--limit N] [--quality Q]",
  summary: "Fashion-MNIST test set accuracy and speed through the upload path (JPEG encode, decode, int8 forward).",
  options: {
    model: { type: "string", short: "m", value: "FILE", help: "the bundle (default: the committed model)" },
    data: { type: "string", value: "DIR", help: "folder with t10k-*-ubyte.gz (default: Debian's, else the subset)" },
    limit: { type: "string", value: "N", help: "only the first N images" },
    quality: { type: "string", value: "Q", help: "JPEG quality 1..100 (default 100)" },
  },
  positionals: { min: 0, max: 0 },
};

// The t10k images and labels in `dir` (idx files, gzipped, as the dataset ships them).
export function findTestSet(dir: string): { images: string; labels: string } {
  const files = existsSync(dir) ? readdirSync(dir) : [];
  const images = files.find((f) => /^t10k-images.*-idx3-ubyte\.gz$/.test(f));
  const labels = files.find((f) => /^t10k-labels.*-idx1-ubyte\.gz$/.test(f));
  if (!images || !labels) throw new Error(`${dir} holds no t10k-images*-idx3-ubyte.gz and t10k-labels*-idx1-ubyte.gz`);
  return { images: `${dir}/${images}`, labels: `${dir}/${labels}` };
}

// The float32 reference written next to the model when it was exported.
export interface Reference {
  dataset: string;
  float32Accuracy: number;
  predictions: string; // one digit per test image: the float32 model's top-1 class
}

export interface Idx {
  count: number;
  rows: number;
  cols: number;
  data: Uint8Array;
}

// idx format: big-endian magic (0x0803 images, 0x0801 labels), dimensions, then u8 data.
export function readIdx(path: string): Idx {
  const bytes = gunzipSync(readFileSync(path));
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getUint32(0);
  const dims = magic & 0xff;
  if (magic >>> 8 !== 0x08 || dims < 1 || dims > 3)
    throw new Error(`${path} is not an idx u8 file (magic ${magic.toString(16)})`);
  const shape = Array.from({ length: dims }, (_, i) => view.getUint32(4 + 4 * i));
  const data = bytes.subarray(4 + 4 * dims);
  if (data.length !== shape.reduce((a, b) => a * b, 1))
    throw new Error(`${path}: ${data.length} bytes for shape ${shape.join("x")}`);
  return { count: shape[0], rows: shape[1] ?? 1, cols: shape[2] ?? 1, data };
}

// Gray [rows][cols] -> RGBA (what jpeg-js's encoder takes) -> JPEG bytes.
export function grayToJpeg(gray: Uint8Array, width: number, height: number, quality: number): Uint8Array {
  const rgba = new Uint8Array(width * height * 4);
  for (let i = 0; i < width * height; i++) {
    rgba.fill(gray[i], 4 * i, 4 * i + 3);
    rgba[4 * i + 3] = 255;
  }
  return new Uint8Array(encodeJpeg({ data: rgba, width, height }, quality).data);
}

function argmax(x: Float32Array): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
  return best;
}

export function main(args: string[]): Promise<number> {
  return runCommand(spec, args, (parsed) => evaluate(parsed.values));
}

async function evaluate(values: Parsed["values"]): Promise<number> {
  const modelPath = (values.model as string | undefined) ?? DEFAULT_MODEL;
  const limit = intValue("limit", values.limit, Infinity, 1);
  const quality = intValue("quality", values.quality, 100, 1, 100);
  const data = (values.data as string | undefined) ?? (existsSync(DATASET) ? DATASET : SUBSET);
  let set: { images: string; labels: string };
  try {
    set = findTestSet(data);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const images = readIdx(set.images);
  const labels = readIdx(set.labels);
  const refPath = modelPath.replace(/\.evit$/, ".reference.json");
  const reference = existsSync(refPath) ? (JSON.parse(readFileSync(refPath, "utf8")) as Reference) : null;

  const model = await loadModelFile(await nodeEngine(), modelPath);
  const n = Math.min(limit, images.count);
  const plane = images.rows * images.cols;
  let correct = 0,
    agree = 0,
    floatCorrect = 0,
    decodeMs = 0,
    forwardMs = 0;
  for (let i = 0; i < n; i++) {
    const jpeg = grayToJpeg(images.data.subarray(i * plane, (i + 1) * plane), images.cols, images.rows, quality);
    const t0 = performance.now();
    await preprocessImage(model, jpeg, CLI_LIMITS);
    const t1 = performance.now();
    const predicted = argmax(model.run().logits);
    forwardMs += performance.now() - t1;
    decodeMs += t1 - t0;
    if (predicted === labels.data[i]) correct++;
    if (reference && predicted === Number(reference.predictions[i])) agree++;
    if (reference && Number(reference.predictions[i]) === labels.data[i]) floatCorrect++;
  }
  const pct = (x: number) => `${(100 * x).toFixed(2)}%`;
  console.log(
    `model ${model.header.name} (${modelPath}), ${n} Fashion-MNIST test images (${data}) as JPEG quality ${quality}`,
  );
  console.log(`int8 accuracy            ${pct(correct / n)} (${correct}/${n})`);
  if (reference) {
    console.log(
      `float32 accuracy         ${pct(reference.float32Accuracy)} (recorded at export, all ${reference.predictions.length} images, no JPEG); ` +
        `${pct(floatCorrect / n)} on these ${n}`,
    );
    console.log(`top-1 agreement with f32 ${pct(agree / n)} (${agree}/${n})`);
  } else {
    console.log(`no float32 reference at ${refPath}`);
  }
  const perSecond = (ms: number) => (n / (ms / 1000)).toFixed(0);
  console.log(
    `speed                    ${perSecond(decodeMs + forwardMs)} images/s end to end, one thread ` +
      `(decode + preprocess ${(decodeMs / n).toFixed(2)} ms, int8 forward ${(forwardMs / n).toFixed(2)} ms per image)`,
  );
  return 0;
}
