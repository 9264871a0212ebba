// Everything the end-to-end benchmark compares is built here, into .cache/bench/, and rebuilt only when
// missing (the bundle also when the converter or checkpoint is newer than it):
//
//   .cache/bench/<preset>/hf/            config.json, model.safetensors, preprocessor_config.json, inputs.f32
//                                        (deterministic random weights: models/tools/make-random-vit.ts for
//                                        the ViTs, make-random-tower.ts in the hub's layout for the towers)
//   .cache/bench/<preset>/model.evit     the edgevit bundle (`edgevit convert`)
//   .cache/bench/<preset>/model.f32.onnx, model.int8.onnx, and the float32 reference outputs:
//                                        reference-logits.f32 (bench/export_onnx.py, ViTs) or
//                                        reference-embeddings.f32 (bench/export_tower_onnx.py, towers)
//   .cache/bench/24mp.jpg                a 24 MP baseline phone-like JPEG (Pillow), for the memory check
//   .cache/bench/224.jpg                 bench/decode.ts's 12 MP photo at 224x224: a request whose decoding is
//                                        next to nothing, beside the 12 MP one
//   .cache/bench-decode/                 bench/decode.ts's 12 MP photos (Pillow); the baseline one is also
//                                        posted to the Worker end to end
//   .cache/bench/ort/                    onnxruntime-web, installed on demand (not a project dependency)
import { spawnSync } from "node:child_process";
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  readdirSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { parsePrefix } from "../core/bundle/reader.ts";
import { type BundleHeader, towerOf } from "../core/bundle/format.ts";
import { outputLength, outputName } from "./output.ts";
import type { VitShape } from "./stats.ts";

const root = new URL("..", import.meta.url).pathname;
export const cacheDir = join(root, ".cache", "bench");

export const ORT_VERSION = "1.30.0";
// The newest Node the npm registry's `node` package provides (`npm view node version` on 2026-12-01): its
// V8 (14.6) is as new as the Worker's, so onnxruntime-web is also timed on a V8 that lowers the fused
// relaxed dot product natively.
export const NODE_LATEST_VERSION = "26.10.0";
const PYTHON = "/usr/bin/python3"; // Debian's, with torch and onnx

// The image towers the benchmark runs, each as the hub preset of make-random-tower.ts it is made from.
export const TOWER_PRESETS: Record<string, string> = {
  "clip-b32": "clip-vit-base-patch32", // CLIPModel: the vision tower and visual_projection
  "siglip-b16": "siglip-base-patch16-224",
  "dinov2-b": "dinov2-base",
  // SigLIP-B/16 at 512 px (1,024 tokens) and Idefics3's connector: one tile of /v1/image_tokens
  "smolvlm-512": "smolvlm-256m-instruct",
};

export interface ModelFiles {
  preset: string;
  dir: string;
  evit: string;
  header: BundleHeader;
  shape: VitShape;
  inputs: Float32Array[]; // [images] of [channels][imageSize][imageSize]
  output: string; // what is compared: "logits", or the tower's default embedding (bench/output.ts)
  // [images] of the output: the float32 reference (models/tools/reference.py, reference_towers.py)
  reference: Float32Array[];
}

function run(what: string, command: string, args: string[]): void {
  console.log(`bench: ${what}`);
  const t0 = performance.now();
  const result = spawnSync(command, args, { cwd: root, stdio: ["ignore", "inherit", "inherit"] });
  if (result.status !== 0)
    throw new Error(`${what} failed: ${command} ${args.join(" ")} exited with ${result.status ?? result.signal}`);
  console.log(`bench: ${what}: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}

// What this machine lacks for the benchmark: said to the user as it is, without a stack trace.
export class SetupError extends Error {}

// The ONNX export needs torch, onnx and numpy in Debian's Python (bench/setup.sh installs them). Checked
// (one Python process, no module imported) before the first model is built, so a machine without them is
// told what to install instead of showing a traceback after the checkpoint and the bundle have been made.
let pythonChecked = false;
function requirePython(): void {
  if (pythonChecked) return;
  const modules = ["torch", "onnx", "numpy"];
  const find = `import importlib.util; print(" ".join(m for m in ${JSON.stringify(modules)} if importlib.util.find_spec(m) is None))`;
  const result = spawnSync(PYTHON, ["-c", find], { encoding: "utf8" });
  if (result.error || result.status !== 0)
    throw new SetupError(
      `npm run bench exports the ONNX models with ${PYTHON}, which does not run here (Debian: python3)`,
    );
  const missing = result.stdout.trim().split(/\s+/).filter(Boolean);
  if (missing.length > 0) {
    throw new SetupError(
      `npm run bench exports the ONNX models with ${PYTHON}, which lacks ${missing.join(", ")}: ` +
        `run \`npm run bench:setup\` as root (Debian: apt-get install ${missing.map((m) => `python3-${m}`).join(" ")})`,
    );
  }
  pythonChecked = true;
}

const mtime = (path: string): number => statSync(path).mtimeMs;

function newestIn(dir: string, suffix: string): number {
  return Math.max(
    ...readdirSync(dir)
      .filter((f) => f.endsWith(suffix))
      .map((f) => mtime(join(dir, f))),
  );
}

function readF32(path: string, rowLength: number): Float32Array[] {
  const bytes = readFileSync(path);
  const all = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4).slice();
  if (all.length % rowLength !== 0)
    throw new Error(`${path}: ${all.length} floats is not a whole number of rows of ${rowLength}`);
  return Array.from({ length: all.length / rowLength }, (_, i) => all.subarray(i * rowLength, (i + 1) * rowLength));
}

// The bundle's header, reading more of the file until the prefix parser has what it needs.
function readBundleHeader(path: string): BundleHeader {
  const fd = openSync(path, "r");
  try {
    for (let need = 16; ; ) {
      const bytes = new Uint8Array(need);
      const got = readSync(fd, bytes, 0, need, 0);
      const result = parsePrefix(bytes.subarray(0, got));
      if ("header" in result) return result.header;
      if (got < need || result.need <= need) throw new Error(`${path} ends inside its header`);
      need = result.need;
    }
  } finally {
    closeSync(fd);
  }
}

// The random checkpoint and its edgevit bundle only (no ONNX export): what the Worker benchmarks need.
export function prepareBundle(preset: string): { dir: string; evit: string; header: BundleHeader } {
  const dir = join(cacheDir, preset);
  const hf = join(dir, "hf");
  const evit = join(dir, "model.evit");
  mkdirSync(dir, { recursive: true });
  if (!existsSync(join(hf, "model.safetensors")) || !existsSync(join(hf, "inputs.f32"))) {
    const tower = TOWER_PRESETS[preset];
    const [tool, args] = tower
      ? ["make-random-tower.ts", ["--preset", tower, "--seed", "1", "--inputs", "4", "-o", hf]]
      : ["make-random-vit.ts", ["--preset", preset, "--layout", "hf-vit", "--seed", "1", "--inputs", "4", "--out", hf]];
    run(`${preset}: random checkpoint`, process.execPath, [join(root, "models/tools", tool), ...args]);
  }
  const converterTime = Math.max(
    newestIn(join(root, "models"), ".ts"),
    newestIn(join(root, "cli"), ".ts"),
    newestIn(join(root, "core/convert"), ".ts"),
  );
  if (!existsSync(evit) || mtime(evit) < Math.max(converterTime, mtime(join(hf, "model.safetensors")))) {
    run(`${preset}: edgevit bundle`, process.execPath, [
      join(root, "bin/edgevit.mjs"),
      "convert",
      hf,
      "-o",
      evit,
      "--name",
      preset,
    ]);
  }
  return { dir, evit, header: readBundleHeader(evit) };
}

export function prepareModel(preset: string): ModelFiles {
  const dir = join(cacheDir, preset);
  const tower = preset in TOWER_PRESETS;
  const referenceFile = tower ? "reference-embeddings.f32" : "reference-logits.f32";
  const onnxFiles = ["model.f32.onnx", "model.int8.onnx", referenceFile];
  const needsExport = !onnxFiles.every((f) => existsSync(join(dir, f)));
  if (needsExport) requirePython();
  const { evit, header } = prepareBundle(preset);
  if (needsExport) {
    const script = tower ? "bench/export_tower_onnx.py" : "bench/export_onnx.py";
    run(`${preset}: ONNX float32 and dynamic int8`, PYTHON, [join(root, script), join(dir, "hf"), dir]);
  }

  const c = header.config;
  const t = towerOf(c);
  const shape: VitShape = {
    channels: c.channels,
    imageSize: c.imageSize,
    patch: c.patchSize,
    dim: c.dim,
    hidden: c.hidden,
    layers: c.layers,
    classes: c.classes,
    distilled: c.distilled,
    classToken: t.classToken,
    registerTokens: t.registerTokens,
    pooling: t.pooling,
    projection: t.projection,
  };
  const inputs = readF32(join(dir, "hf", "inputs.f32"), c.channels * c.imageSize * c.imageSize);
  const output = outputName(c);
  const reference = readF32(join(dir, referenceFile), outputLength(c));
  if (reference.length !== inputs.length)
    throw new Error(`${preset}: ${inputs.length} inputs but ${reference.length} reference outputs (${output})`);
  return { preset, dir, evit, header, shape, inputs, output, reference };
}

// The `node` package's binary under .cache/bench/node-latest (installed on first use; its install script
// fetches the platform binary, so the prefix's package.json allows it).
export function installNodeLatest(): string {
  const prefix = join(cacheDir, "node-latest");
  const bin = join(prefix, "node_modules", ".bin", "node");
  const pkg = join(prefix, "node_modules", "node", "package.json");
  const installed = existsSync(pkg) && existsSync(bin) && JSON.parse(readFileSync(pkg, "utf8")).version;
  if (installed !== NODE_LATEST_VERSION) {
    mkdirSync(prefix, { recursive: true });
    writeFileSync(join(prefix, "package.json"), JSON.stringify({ private: true, allowScripts: { node: true } }));
    run(`node@${NODE_LATEST_VERSION}`, "npm", [
      "install",
      "--prefix",
      prefix,
      "--no-audit",
      "--no-fund",
      `node@${NODE_LATEST_VERSION}`,
    ]);
  }
  return bin;
}

// onnxruntime-web under Node: its package's "node" export, which loads the wasm binary from its own dist/.
export function installOrt(): string {
  const prefix = join(cacheDir, "ort");
  const pkg = join(prefix, "node_modules", "onnxruntime-web");
  const installed =
    existsSync(join(pkg, "package.json")) && JSON.parse(readFileSync(join(pkg, "package.json"), "utf8")).version;
  if (installed !== ORT_VERSION) {
    mkdirSync(prefix, { recursive: true });
    run(`onnxruntime-web@${ORT_VERSION}`, "npm", [
      "install",
      "--prefix",
      prefix,
      "--no-audit",
      "--no-fund",
      `onnxruntime-web@${ORT_VERSION}`,
    ]);
  }
  return join(pkg, "dist", "ort.node.min.mjs");
}

// A 24 MP (6000x4000) baseline JPEG as a phone makes it (Pillow, quality 90, 4:2:0): a fixture photo
// upscaled, with sensor-like noise so that it compresses like one (bench/decode.ts makes its 12 MP photos so).
const LARGE_JPEG = `
import random, sys
from PIL import Image, ImageFilter
src, out = sys.argv[1], sys.argv[2]
im = Image.open(src).convert("RGB").resize((6000, 4000), Image.BICUBIC)
random.seed(1)
noise = Image.effect_noise((6000, 4000), 24).convert("RGB")
Image.blend(im, noise, 0.12).filter(ImageFilter.SHARPEN).save(out, quality=90, subsampling=2)
`;

export function prepareLargeJpeg(): string {
  const path = join(cacheDir, "24mp.jpg");
  if (!existsSync(path)) {
    mkdirSync(cacheDir, { recursive: true });
    run("24 MP JPEG", PYTHON, ["-c", LARGE_JPEG, join(root, "test/fixtures/images/astronaut-444.jpg"), path]);
  }
  return path;
}

// bench/decode.ts's photos: a fixture upscaled to 12 MP (4000x3000) with sensor-like noise, saved by Pillow
// at quality 90, 4:2:0: baseline, with EXIF orientation 6, progressive, and the same picture as a PNG.
const PHOTOS_DIR = join(root, ".cache", "bench-decode");
export const PHONE_PHOTOS = {
  baseline: join(PHOTOS_DIR, "phone-12mp-420.jpg"),
  orient6: join(PHOTOS_DIR, "phone-12mp-420-orient6.jpg"),
  progressive: join(PHOTOS_DIR, "phone-12mp-420-progressive.jpg"),
  png: join(PHOTOS_DIR, "phone-12mp.png"),
};
const MAKE_PHOTOS = `
import sys, random
from PIL import Image, ImageFilter
src, out = sys.argv[1], sys.argv[2]
im = Image.open(src).convert("RGB").resize((4000, 3000), Image.BICUBIC)
# Upscaling alone leaves the picture too smooth to compress like a phone photo: add sensor-like noise.
random.seed(1)
noise = Image.effect_noise((4000, 3000), 24).convert("RGB")
im = Image.blend(im, noise, 0.12).filter(ImageFilter.SHARPEN)
exif = Image.Exif()
exif[0x0112] = 6
im.save(out + "/phone-12mp-420.jpg", quality=90, subsampling=2)
im.save(out + "/phone-12mp-420-orient6.jpg", quality=90, subsampling=2, exif=exif.tobytes())
im.save(out + "/phone-12mp-420-progressive.jpg", quality=90, subsampling=2, progressive=True)
im.save(out + "/phone-12mp.png")
`;

export function preparePhonePhotos(): typeof PHONE_PHOTOS {
  if (!Object.values(PHONE_PHOTOS).every((p) => existsSync(p))) {
    mkdirSync(PHOTOS_DIR, { recursive: true });
    run("12 MP photos", PYTHON, [
      "-c",
      MAKE_PHOTOS,
      join(root, "test/fixtures/images/rocket-exif-orient6.jpg"),
      PHOTOS_DIR,
    ]);
  }
  return PHONE_PHOTOS;
}

// The 12 MP baseline photo at 224x224 (Pillow, bicubic, quality 90, 4:2:0): already the models' input size,
// so the Worker decodes it at full scale and does not resize it.
const SMALL_JPEG = `
import sys
from PIL import Image
Image.open(sys.argv[1]).resize((224, 224), Image.BICUBIC).save(sys.argv[2], quality=90, subsampling=2)
`;

export function prepareSmallJpeg(): string {
  const path = join(cacheDir, "224.jpg");
  if (!existsSync(path)) {
    mkdirSync(cacheDir, { recursive: true });
    run("224x224 JPEG", PYTHON, ["-c", SMALL_JPEG, preparePhonePhotos().baseline, path]);
  }
  return path;
}
