// The goldens were computed by PyTorch from checkpoints that make-random-vit.ts wrote; CI has no
// Python, so it can only trust them if the generator still writes those exact bytes. Each golden
// records the command that made its checkpoint and the SHA-256 of the files PyTorch read.
import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { makeCheckpoint, parseOptions } from "../../models/tools/make-random-vit.ts";

const GOLDENS = join(import.meta.dirname, ".");

interface Golden {
  name: string;
  made: string;
  layout: string;
  config: { imageSize: number; patchSize: number; channels: number; dim: number; classes: number; distilled: boolean };
  tokens: number;
  sha256: Record<string, string>;
  count: number;
  outputs: { logits: number[]; top1: number; cls: number[]; meanPatch: number[] }[];
}

// Every folder of ViT model goldens; preprocess/, text/, towers/, text-towers/ and vlm/ hold goldens of other kinds.
const OTHER_KINDS = ["preprocess", "text", "towers", "text-towers", "vlm"];
const goldens: Golden[] = readdirSync(GOLDENS, { withFileTypes: true })
  .filter((d) => d.isDirectory() && !OTHER_KINDS.includes(d.name))
  .map((d) => JSON.parse(readFileSync(join(GOLDENS, d.name, "reference.json"), "utf8")));

const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

describe("model goldens", () => {
  it("cover every checkpoint layout", () => {
    expect(new Set(goldens.map((g) => g.layout))).toEqual(
      new Set(["hf-vit", "hf-deit-distilled", "timm", "timm-distilled"]),
    );
  });

  for (const g of goldens) {
    it(`${g.name}: make-random-vit.ts writes the bytes the golden was computed from`, () => {
      const args = g.made.split(/\s+/).slice(3); // after "npx node models/tools/make-random-vit.ts"
      const files = makeCheckpoint(parseOptions(args));
      for (const [name, digest] of Object.entries(g.sha256)) expect(sha256(files[name]), name).toBe(digest);
      expect(files["inputs.f32"].length).toBe(g.count * g.config.channels * g.config.imageSize ** 2 * 4);
    });

    it(`${g.name}: outputs have the shapes of the config`, () => {
      expect(g.outputs).toHaveLength(g.count);
      expect(g.tokens).toBe((g.config.imageSize / g.config.patchSize) ** 2 + (g.config.distilled ? 2 : 1));
      for (const o of g.outputs) {
        expect(o.logits).toHaveLength(g.config.classes);
        expect(o.cls).toHaveLength(g.config.dim);
        expect(o.meanPatch).toHaveLength(g.config.dim);
        expect(o.top1).toBe(o.logits.indexOf(Math.max(...o.logits)));
      }
    });
  }
});
