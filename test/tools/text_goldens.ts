// Regenerates test/goldens/text-towers/: the tiny CLIP and SigLIP two-tower checkpoints with tokenizer files
// (text_towers.ts) in .cache/text-towers/<name>/, the ids of a few label texts from core/text's tokenizers
// (whose ids test/core/text holds to the reference tokenizers) plus hand-made rows for CLIP's pooling
// rules, then models/tools/reference_towers.py's float32 text embeddings and zero-shot scores against the
// checkpoints' own two images. Run from the repository root:
//
//   npx node test/tools/text_goldens.ts
//
// `clip-eos` is the CLIP checkpoint with eos_token_id 49407 (pooling at the first end-of-text token) instead
// of openai's legacy 2 (pooling at the largest id).
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadClipTokenizer, loadSiglipTokenizer } from "../../core/text/index.ts";
import { clipFiles } from "./clip_files.ts";
import { type TextPreset, writeTextTower } from "./text_towers.ts";

export const LABEL_TEXTS = [
  "a photo of a cat",
  "a photo of a dog",
  "This is a photo of two red bicycles.",
  "a diagram of the solar system, drawn by hand",
  "café crème, 東京 🚲",
];

// Rows whose pooled position differs between the two rules: [start, 2, x, end] pools at 3 by the largest id
// and at 1 by eos_token_id 2; [x, start, ...] has no end token and is the longest row, so padding adds none
// (eos 49407: position 0, largest id: 1).
export const CLIP_EDGE_ROWS = [
  [49406, 2, 500, 49407],
  [300, 49406, ...Array.from({ length: 12 }, (_, i) => 500 + i)],
];

export interface TextGoldenCase {
  name: string;
  preset: TextPreset;
  configPatch?: Record<string, unknown>; // text_config fields changed
}

export const TEXT_GOLDENS: TextGoldenCase[] = [
  { name: "clip-vit-base-patch32", preset: "clip-vit-base-patch32" },
  { name: "clip-eos", preset: "clip-vit-base-patch32", configPatch: { eos_token_id: 49407 } },
  { name: "siglip-base-patch16-224", preset: "siglip-base-patch16-224" },
];

// The checkpoint directory of a golden case, made (it is deterministic).
export function textGoldenCheckpoint(c: TextGoldenCase, root = ".cache/text-towers"): string {
  const dir = writeTextTower(join(root, c.name), c.preset);
  if (c.configPatch) {
    const path = join(dir, "config.json");
    const cfg = JSON.parse(readFileSync(path, "utf8"));
    Object.assign(cfg.text_config, c.configPatch);
    writeFileSync(path, `${JSON.stringify(cfg, null, 2)}\n`);
  }
  return dir;
}

// The ids the reference runs: the label texts through the family's tokenizer, as its processor pads them
// (CLIP: to the longest, with a mask; SigLIP: to 64, no mask), then CLIP's edge rows padded likewise.
export function goldenInputIds(c: TextGoldenCase, dir: string): { input_ids: number[][]; attention_mask?: number[][] } {
  if (c.preset.startsWith("clip")) {
    const { vocab, merges } = clipFiles();
    const tokenizer = loadClipTokenizer({ vocab, merges });
    const rows = tokenizer.encode(LABEL_TEXTS).inputIds.map((r, i) => {
      const length = tokenizer.encode([LABEL_TEXTS[i]]).attentionMask[0].reduce((a, b) => a + b, 0);
      return Array.from(r.subarray(0, length));
    });
    rows.push(...CLIP_EDGE_ROWS);
    const longest = Math.max(...rows.map((r) => r.length));
    return {
      input_ids: rows.map((r) => [...r, ...Array(longest - r.length).fill(49407)]),
      attention_mask: rows.map((r) => [...Array(r.length).fill(1), ...Array(longest - r.length).fill(0)]),
    };
  }
  const tokenizer = loadSiglipTokenizer({
    spiece: readFileSync(join(dir, "spiece.model")),
    config: { do_lower_case: true },
  });
  return { input_ids: tokenizer.encode(LABEL_TEXTS).inputIds.map((r) => Array.from(r)) };
}

function main(): void {
  const out = "test/goldens/text-towers";
  mkdirSync(out, { recursive: true });
  for (const c of TEXT_GOLDENS) {
    const dir = textGoldenCheckpoint(c);
    const idsPath = join(dir, "text_ids.json");
    writeFileSync(idsPath, `${JSON.stringify(goldenInputIds(c, dir))}\n`);
    const run = spawnSync(
      "/usr/bin/python3",
      [
        "models/tools/reference_towers.py",
        dir,
        "--pixels",
        join(dir, "inputs.f32"),
        "--input-ids",
        idsPath,
        "-o",
        join(out, `${c.name}.json`),
        "--name",
        c.name,
        "--command",
        "npx node test/tools/text_goldens.ts",
      ],
      { stdio: "inherit" },
    );
    if (run.status !== 0) process.exit(run.status ?? 1);
  }
}

if (import.meta.main) main();
