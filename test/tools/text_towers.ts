// CLIP and SigLIP two-tower checkpoints with tokenizer files: make-random-tower.ts's presets (tiny at test
// time, whose text towers keep the real vocabularies' sizes; full size for the benchmarks and the text
// fidelity run) plus CLIP's vocab.json and merges.txt built from OpenAI's merges (clip_files.ts) or the
// SigLIP-like spiece.model fixture.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { makeTower } from "../../models/tools/make-random-tower.ts";
import { clipFiles } from "./clip_files.ts";

export const TEXT_PRESETS = ["clip-vit-base-patch32", "siglip-base-patch16-224"] as const;
export type TextPreset = (typeof TEXT_PRESETS)[number];

const SPIECE = new URL("../fixtures/text/spiece/siglip-like.model", import.meta.url);

// The checkpoint's files, by name: the tower's, then its tokenizer's.
export function textTowerFiles(preset: TextPreset, seed = 1, inputs = 2, tiny = true): Record<string, Uint8Array> {
  const files = makeTower({ preset, tiny, seed, dtype: "F32", inputs, textEmbeddings: false });
  const utf8 = (s: string) => new TextEncoder().encode(s);
  if (preset.startsWith("clip")) {
    const { vocab, merges } = clipFiles();
    files["vocab.json"] = utf8(JSON.stringify(vocab));
    files["merges.txt"] = utf8(merges);
    files["tokenizer_config.json"] = utf8(JSON.stringify({ model_max_length: 77, pad_token: "<|endoftext|>" }));
  } else {
    files["spiece.model"] = readFileSync(SPIECE);
    files["tokenizer_config.json"] = utf8(JSON.stringify({ model_max_length: 64, do_lower_case: true }));
  }
  return files;
}

// Writes them into `dir` (created).
export function writeTextTower(dir: string, preset: TextPreset, seed = 1, inputs = 2, tiny = true): string {
  mkdirSync(dir, { recursive: true });
  for (const [name, bytes] of Object.entries(textTowerFiles(preset, seed, inputs, tiny)))
    writeFileSync(join(dir, name), bytes);
  return dir;
}
