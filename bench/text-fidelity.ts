// The full-size text towers through the converter and the int8 engine against the float32 PyTorch reference:
// too big for the test suite (a CLIP B/32 checkpoint is 600 MB, SigLIP B/16's 800 MB) and minutes of CPU,
// run by hand. For each preset: make-random-tower.ts's hub-layout checkpoint (random weights, F32, seed 1)
// with its tokenizer files (test/tools/text_towers.ts), converted by core/convert/ into one bundle; the
// tokenizer fixtures' tricky strings and the label prompts tokenized by the bundle's tokenizer (whose ids
// test/core/text holds to the reference tokenizers) and run through the text tower in its own instance;
// random pixel_values through the image tower; models/tools/reference_towers.py computes the float32
// embeddings from the same ids and pixels. Prints the text and image embeddings' cosines (min, median) and
// zero-shot: each image's top-1 label by the int8 towers against the reference's, with the reference's
// margin between its first and second label and the logits' differences. The text tower alone (every
// image's embedding, the int8 image tower's, shared by both sides) over the label prompts and over the
// fixture texts as labels; then both towers over the prompts (the first --reference-images images, as many
// as the float32 image tower has time for).
//
//   npm run fidelity:text [-- --presets clip-vit-base-patch32,siglip-base-patch16-224 --images 200
//     --reference-images 10 --cache .cache/text-fidelity]
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { textSectionNamed } from "../core/bundle/text.ts";
import { poolEmbedding, poolsOf } from "../core/answers/pool.ts";
import { DEFAULT_TEMPLATE, fillTemplate } from "../core/answers/zeroshot.ts";
import { loadModelFile, nodeEngine } from "../cli/node-engine.ts";
import { convertToFile } from "../models/convert-folder.ts";
import { cosine } from "./stats.ts";
import { TEXT_PRESETS, type TextPreset, writeTextTower } from "../test/tools/text_towers.ts";

const PYTHON = "/usr/bin/python3"; // Debian's python3-torch
const root = new URL("..", import.meta.url).pathname;

// ImageNet-style nouns: a label set of the size zero-shot users send.
const LABELS = [
  "cat",
  "dog",
  "bicycle",
  "car",
  "tree",
  "house",
  "boat",
  "bird",
  "horse",
  "airplane",
  "mountain",
  "beach",
  "pizza",
  "guitar",
  "clock",
  "chair",
  "flower",
  "train",
  "snowy street at night",
  "red double-decker bus",
];

const { values } = parseArgs({
  options: {
    presets: { type: "string", default: TEXT_PRESETS.join(",") },
    images: { type: "string", default: "200" },
    "reference-images": { type: "string", default: "10" },
    cache: { type: "string", default: ".cache/text-fidelity" },
  },
});
const IMAGES = Number(values.images);
const REFERENCE_IMAGES = Math.min(IMAGES, Number(values["reference-images"]));

const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
const sortedOf = (xs: number[]) => [...xs].sort((a, b) => a - b);

// A deterministic generator (mulberry32).
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// pixel_values [count][3][size][size] of varied pictures (normalized range, about -2 to 2): per channel a
// coarse random grid of 2 to 16 cells a side, bilinearly enlarged, plus a colour cast and fine noise, so that
// the images' embeddings differ as photos' do rather than all sitting near one random tower's mean.
function pictures(count: number, size: number, seed: number): Float32Array {
  const next = random(seed);
  const out = new Float32Array(count * 3 * size * size);
  for (let n = 0; n < count; n++) {
    const cells = 2 + Math.floor(next() * 15);
    const contrast = 0.3 + 1.5 * next();
    const noise = 0.4 * next();
    for (let c = 0; c < 3; c++) {
      const cast = 1.2 * (next() - 0.5);
      const grid = Float32Array.from({ length: (cells + 1) * (cells + 1) }, () => 2 * next() - 1);
      const plane = out.subarray((n * 3 + c) * size * size, (n * 3 + c + 1) * size * size);
      for (let y = 0; y < size; y++) {
        const gy = (y / size) * cells;
        const y0 = Math.floor(gy);
        const fy = gy - y0;
        for (let x = 0; x < size; x++) {
          const gx = (x / size) * cells;
          const x0 = Math.floor(gx);
          const fx = gx - x0;
          const at = (yy: number, xx: number) => grid[yy * (cells + 1) + xx];
          const v =
            (1 - fy) * ((1 - fx) * at(y0, x0) + fx * at(y0, x0 + 1)) +
            fy * ((1 - fx) * at(y0 + 1, x0) + fx * at(y0 + 1, x0 + 1));
          plane[y * size + x] = cast + contrast * v + noise * (2 * next() - 1);
        }
      }
    }
  }
  return out;
}

interface Reference {
  sha256: Record<string, string>;
  images: { imageEmbeds?: number[]; pooler: number[] }[];
  texts: { pooler: number[]; textEmbeds?: number[] }[];
  logitScale: number;
  logitBias?: number;
}

// The checkpoint, its bundle, the ids and pixels, and the reference on them (kept while their hashes match).
async function prepare(preset: TextPreset, dir: string, texts: string[]) {
  if (!existsSync(join(dir, "model.safetensors"))) {
    const started = performance.now();
    writeTextTower(dir, preset, 1, 1, false);
    console.log(`${dir}: made in ${((performance.now() - started) / 1000).toFixed(0)} s`);
  }
  const bundlePath = join(dir, "model.evit");
  if (!existsSync(bundlePath)) await convertToFile(dir, bundlePath, { name: preset });
  const engine = await nodeEngine();
  const image = await loadModelFile(engine, bundlePath);
  // the text section alone, as the Worker's ranged read gives it
  const { header } = image;
  const section = textSectionNamed(header.sections, "text")!;
  const bundle = readFileSync(bundlePath);
  const text = await engine.loadText(header, "text", bundle.subarray(section.offset, section.offset + section.length));

  const { inputIds, attentionMask } = text.tokenize(texts);
  const ids = {
    input_ids: inputIds.map((r) => Array.from(r)),
    ...(preset.startsWith("clip") && { attention_mask: attentionMask.map((r) => Array.from(r)) }),
  };
  const idsBytes = new TextEncoder().encode(`${JSON.stringify(ids)}\n`);
  writeFileSync(join(dir, "fidelity_ids.json"), idsBytes);
  const size = image.header.config.imageSize;
  const pixels = pictures(IMAGES, size, 7);
  // the float32 image tower is slow (seconds an image for CLIP B/32, tens for SigLIP B/16, one thread): it
  // runs the first REFERENCE_IMAGES only
  const pixelBytes = new Uint8Array(pixels.buffer, 0, REFERENCE_IMAGES * 3 * size * size * 4);
  writeFileSync(join(dir, "fidelity_pixels.f32"), pixelBytes);

  const refPath = join(dir, "fidelity_reference.json");
  const fresh = (r: Reference) => r.sha256.inputIds === sha256(idsBytes) && r.sha256.pixels === sha256(pixelBytes);
  if (!existsSync(refPath) || !fresh(JSON.parse(readFileSync(refPath, "utf8")))) {
    const started = performance.now();
    const run = spawnSync(
      PYTHON,
      [
        "models/tools/reference_towers.py",
        dir,
        "--pixels",
        join(dir, "fidelity_pixels.f32"),
        "--shape",
        `3,${size},${size}`,
        "--input-ids",
        join(dir, "fidelity_ids.json"),
        "-o",
        refPath,
        "--name",
        preset,
        "--command",
        "npm run fidelity:text",
      ],
      { cwd: root, stdio: "inherit" },
    );
    if (run.status !== 0) throw new Error(`reference_towers.py exited with ${run.status}`);
    console.log(`${preset}: float32 reference in ${((performance.now() - started) / 1000).toFixed(0)} s`);
  }
  const reference: Reference = JSON.parse(readFileSync(refPath, "utf8"));
  return { image, text, section, ids, pixels, reference };
}

// Logits of one image over the labels: exp(logit_scale) x cosine (+ logit_bias), as the pipeline computes them.
function logitsOf(image: ArrayLike<number>, labels: ArrayLike<number>[], scale: number, bias: number): number[] {
  return labels.map((t) => Math.exp(scale) * cosine(image, t) + bias);
}

const argmax = (xs: number[]) => xs.indexOf(Math.max(...xs));

// The scores an answer gives from logits: CLIP's softmax over the labels, SigLIP's sigmoids.
function scoresOf(logits: number[], siglip: boolean): number[] {
  if (siglip) return logits.map((x) => 1 / (1 + Math.exp(-x)));
  const max = Math.max(...logits);
  const e = logits.map((x) => Math.exp(x - max));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / sum);
}

// Zero-shot top-1 of ours against theirs over images: agreement, the reference's margin between its first
// and second label (logits), the margins the images that disagree had, the logits' differences from the
// reference's and the largest score difference.
function zeroShot(
  ours: { images: ArrayLike<number>[]; labels: ArrayLike<number>[] },
  theirs: { images: ArrayLike<number>[]; labels: ArrayLike<number>[] },
  scale: number,
  bias: number,
  siglip: boolean,
) {
  let agree = 0;
  const margins: number[] = [];
  const missed: number[] = [];
  const errors: number[] = [];
  let scoreDiff = 0;
  ours.images.forEach((_, n) => {
    const mine = logitsOf(ours.images[n], ours.labels, scale, bias);
    const want = logitsOf(theirs.images[n], theirs.labels, scale, bias);
    errors.push(...mine.map((x, j) => Math.abs(x - want[j])));
    const sorted = [...want].sort((a, b) => b - a);
    margins.push(sorted[0] - sorted[1]);
    if (argmax(mine) === argmax(want)) agree++;
    else missed.push(sorted[0] - sorted[1]);
    const a = scoresOf(mine, siglip);
    const b = scoresOf(want, siglip);
    scoreDiff = Math.max(scoreDiff, ...a.map((x, i) => Math.abs(x - b[i])));
  });
  const count = ours.images.length;
  return { agree, count, margins: sortedOf(margins), missed: sortedOf(missed), errors: sortedOf(errors), scoreDiff };
}

function report(name: string, z: ReturnType<typeof zeroShot>): void {
  const f = (x: number, d = 3) => x.toFixed(d);
  const m = z.margins;
  console.log(
    `  zero-shot, ${name}: top-1 agreement ${z.agree}/${z.count} (${f((100 * z.agree) / z.count, 1)}%); ` +
      `largest score difference ${f(z.scoreDiff, 4)}; |logit - reference logit| median ${f(quantile(z.errors, 0.5))}, ` +
      `p99 ${f(quantile(z.errors, 0.99))}, max ${f(z.errors[z.errors.length - 1])}`,
  );
  console.log(
    `    reference margin, first - second label (logits): min ${f(m[0])}, p10 ${f(quantile(m, 0.1))}, ` +
      `median ${f(quantile(m, 0.5))}, p90 ${f(quantile(m, 0.9))}, max ${f(m[m.length - 1])}` +
      (z.missed.length ? `; the images that disagree had margins ${z.missed.map((x) => f(x)).join(", ")}` : ""),
  );
}

async function main(): Promise<void> {
  const presets = values.presets.split(",") as TextPreset[];
  const corpus: string[] = (
    JSON.parse(readFileSync(join(root, "test/goldens/text/clip.json"), "utf8")).cases as { text: string }[]
  ).map((c) => c.text);
  const prompts = LABELS.map((l) => fillTemplate(DEFAULT_TEMPLATE, l));
  const texts = [...corpus, ...prompts];
  console.log(
    `${corpus.length} tokenizer-fixture texts, ${prompts.length} label prompts ("${DEFAULT_TEMPLATE}"), ` +
      `${IMAGES} images (${REFERENCE_IMAGES} through the float32 image tower)`,
  );
  for (const preset of presets) {
    if (!TEXT_PRESETS.includes(preset)) throw new Error(`--presets: ${preset} is not one of ${TEXT_PRESETS}`);
    const dir = join(values.cache, preset);
    const { image, text, section, ids, pixels, reference } = await prepare(preset, dir, texts);
    const siglip = section.kind === "siglip-text";
    const f = (x: number, d = 6) => x.toFixed(d);

    // the text tower: every text's embedding against the reference's
    let started = performance.now();
    const ours = ids.input_ids.map((row) => text.embedIds(row).embedding);
    const textMs = (performance.now() - started) / texts.length;
    const theirTexts = reference.texts.map((t) => t.textEmbeds ?? t.pooler);
    const textCosines = ours.map((e, i) => cosine(e, theirTexts[i]));
    const worst = textCosines.indexOf(Math.min(...textCosines));
    const t = sortedOf(textCosines);

    // the image tower on the same pixel_values
    const config = image.header.config;
    const pool = poolsOf(config)[0];
    const size = 3 * config.imageSize * config.imageSize;
    started = performance.now();
    const images: Float32Array[] = [];
    for (let n = 0; n < IMAGES; n++) {
      image.input().set(pixels.subarray(n * size, (n + 1) * size));
      images.push(poolEmbedding(image.run(), config, pool));
    }
    const imageMs = (performance.now() - started) / IMAGES;
    const theirImages = reference.images.map((r) => r.imageEmbeds ?? r.pooler);
    const im = sortedOf(theirImages.map((e, n) => cosine(images[n], e)));
    // how alike the images and the labels are: mean cosines between the reference's embeddings
    const meanPairCosine = (xs: ArrayLike<number>[]) => {
      let sum = 0;
      let pairs = 0;
      for (let i = 0; i < xs.length; i++) {
        for (let j = i + 1; j < xs.length; j++) {
          sum += cosine(xs[i], xs[j]);
          pairs++;
        }
      }
      return sum / pairs;
    };

    const labelOurs = ours.slice(corpus.length);
    const labelTheirs = theirTexts.slice(corpus.length);
    const scale = reference.logitScale;
    const bias = reference.logitBias ?? 0;
    console.log(`\n${preset} (${section.kind}, ${section.config.layers} layers, width ${section.config.dim})`);
    console.log(
      `  text embeddings, ${texts.length} texts: cosine min ${f(t[0])} (${JSON.stringify(texts[worst].slice(0, 40))}), ` +
        `median ${f(quantile(t, 0.5))}; ${textMs.toFixed(0)} ms a text; ` +
        `mean cosine between two label prompts ${f(meanPairCosine(labelTheirs), 3)}`,
    );
    console.log(
      `  image embeddings (${pool}), ${REFERENCE_IMAGES} images: cosine min ${f(im[0])}, median ${f(quantile(im, 0.5))}; ` +
        `${imageMs.toFixed(0)} ms an image; mean cosine between two images ${f(meanPairCosine(theirImages), 3)}`,
    );
    console.log(
      `  logits: exp(logit_scale) ${f(Math.exp(scale), 2)}${siglip ? `, logit_bias ${f(bias, 2)}` : ""}; ${LABELS.length} labels`,
    );
    // the text tower alone: int8 label embeddings against float32 ones, each image's embedding shared
    report(
      `text tower, ${IMAGES} image embeddings (the int8 image tower's) shared by both`,
      zeroShot({ images, labels: labelOurs }, { images, labels: labelTheirs }, scale, bias, siglip),
    );
    // the same over the tokenizer fixtures' texts as labels (those of distinct ids): in a random tower one
    // template's prompts are nearly one vector, these as far apart as a trained model's label prompts
    const distinct = [...new Map(corpus.map((_, i) => [JSON.stringify(ids.input_ids[i]), i])).values()];
    report(
      `text tower, the ${distinct.length} fixture texts of distinct ids as labels (mean cosine between two ` +
        `${f(meanPairCosine(distinct.map((i) => theirTexts[i])), 3)}), the same ${IMAGES} image embeddings`,
      zeroShot(
        { images, labels: distinct.map((i) => ours[i]) },
        { images, labels: distinct.map((i) => theirTexts[i]) },
        scale,
        bias,
        siglip,
      ),
    );
    // both towers: int8 image and text against float32 image and text
    report(
      `both towers, ${REFERENCE_IMAGES} images`,
      zeroShot(
        { images: images.slice(0, REFERENCE_IMAGES), labels: labelOurs },
        { images: theirImages, labels: labelTheirs },
        scale,
        bias,
        siglip,
      ),
    );
  }
}

await main();
