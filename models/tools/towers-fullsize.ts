// The full-size image towers through the converter and the int8 engine against the float32 PyTorch
// reference on photos: too big for the test suite (each checkpoint is 350-800 MB), run by hand. For each
// preset: make-random-tower.ts writes the hub-layout checkpoint (random weights, F32), core/convert/convert.ts
// converts it, core/ preprocesses each photo exactly as preprocess_towers.py does (checked by comparing the
// pixel_values), the engine runs it, and reference_towers.py computes the float32 embedding from the same
// pixel_values; prints the cosine of each photo's embedding (CLIP image_embeds, SigLIP pooled, DINOv2 CLS).
//
//   npx node models/tools/towers-fullsize.ts [--presets clip-vit-base-patch32,siglip-base-patch16-224,dinov2-base]
//     [--cache .cache/towers-full] [photos...]
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { towerOf } from "../../core/bundle/format.ts";
import { DEFAULT_LIMITS } from "../../core/limits.ts";
import { preprocessInto } from "../../core/pipeline.ts";
import { loadModelFile, nodeEngine } from "../../cli/node-engine.ts";
import { convertToFile } from "../convert-folder.ts";
import { makeTower } from "./make-random-tower.ts";
import { cosine } from "../../bench/stats.ts";

const PYTHON = "/usr/bin/python3"; // Debian's python3-torch
const DEFAULT_PRESETS = ["clip-vit-base-patch32", "siglip-base-patch16-224", "dinov2-base"];
const DEFAULT_PHOTOS = [
  "astronaut-444.jpg",
  "coffee-progressive.jpg",
  "rocket-exif-orient6.jpg",
  "hubble-cmyk.jpg",
].map((f) => `test/fixtures/images/${f}`);

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    options: { presets: { type: "string" }, cache: { type: "string", default: ".cache/towers-full" } },
    allowPositionals: true,
  });
  const presets = values.presets ? values.presets.split(",") : DEFAULT_PRESETS;
  const photos = positionals.length ? positionals : DEFAULT_PHOTOS;
  const engine = await nodeEngine();
  for (const preset of presets) {
    const dir = join(values.cache, preset);
    if (!existsSync(join(dir, "model.safetensors"))) {
      const started = performance.now();
      const files = makeTower({ preset, tiny: false, seed: 1, dtype: "F32", inputs: 1, textEmbeddings: false });
      mkdirSync(dir, { recursive: true });
      for (const [name, bytes] of Object.entries(files)) writeFileSync(join(dir, name), bytes);
      console.log(`${dir}: made in ${((performance.now() - started) / 1000).toFixed(0)} s`);
    }
    // the float32 reference on the Pillow pixel_values
    const pixels = join(dir, "photos.f32");
    execFileSync(PYTHON, [
      "models/tools/preprocess_towers.py",
      join(dir, "preprocessor_config.json"),
      ...photos,
      "-o",
      pixels,
    ]);
    const reference = JSON.parse(readFileSync(join(dir, "preprocessor_config.json"), "utf8"));
    const bundlePath = join(dir, "model.evit");
    await convertToFile(dir, bundlePath, { name: preset });
    const model = await loadModelFile(engine, bundlePath);
    const c = model.header.config;
    const shape = `3,${c.imageSize},${c.imageSize}`;
    const golden = join(dir, "golden.json");
    execFileSync(PYTHON, ["models/tools/reference_towers.py", dir, "--pixels", pixels, "--shape", shape, "-o", golden]);
    const want = JSON.parse(readFileSync(golden, "utf8")).images as { pooler: number[]; imageEmbeds?: number[] }[];
    const all = new Float32Array(readFileSync(pixels).buffer.slice(0));
    const size = 3 * c.imageSize * c.imageSize;
    const cosines: string[] = [];
    for (const [i, photo] of photos.entries()) {
      await preprocessInto(
        model.header.preprocessing,
        new Uint8Array(readFileSync(photo)),
        DEFAULT_LIMITS,
        () => model.input(),
        "exact",
      );
      const exact = model.input().every((v, j) => Object.is(v, all[i * size + j]));
      const started = performance.now();
      const run = model.run();
      const ms = performance.now() - started;
      const ours = towerOf(c).projection > 0 ? run.projected! : run.pooler;
      const theirs = want[i].imageEmbeds ?? want[i].pooler;
      cosines.push(cosine(ours, theirs).toFixed(6));
      console.log(
        `${preset} ${photo}: cosine ${cosine(ours, theirs).toFixed(6)}, pixel_values ${exact ? "bit-exact" : "DIFFER"}, forward ${ms.toFixed(0)} ms`,
      );
    }
    console.log(
      `${preset} (${reference.image_processor_type ?? reference.feature_extractor_type}): cosines ${cosines.join(" ")}`,
    );
  }
}

await main();
