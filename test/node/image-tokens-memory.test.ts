// What /v1/image_tokens reserves for a phone photo beside SmolVLM-256M's vision tower and connector at full
// size (99.3 MiB of wasm memory, the largest model the default budget loads): from the real memory plan and
// SmolVLM's processor, and JPEG headers as Pillow writes them, against the room wrangler.toml's defaults
// leave requests beside the model. Every phase of the request fits, and the ledger admits them in turn.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { readWranglerConfig } from "../../cli/wrangler-config.ts";
import { type BundleHeader, type ModelConfig, TOWER_DEFAULTS } from "../../core/bundle/format.ts";
import { layout } from "../../core/bundle/layout.ts";
import { memoryPlan } from "../../core/engine/memory.ts";
import { normalizePreprocessing } from "../../core/convert/convert.ts";
import { openImage } from "../../core/image/open.ts";
import { DEFAULT_LIMITS } from "../../core/limits.ts";
import { longestEdgeStep } from "../../core/pipeline.ts";
import { chooseScale } from "../../core/preprocess/stream.ts";
import { longestEdgeSize, tileGrid } from "../../core/preprocess/tiles.ts";
import { MiB } from "../../core/sizes.ts";
import {
  ledgerSettings,
  MemoryLedger,
  type RequestPlan,
  reservationBytes,
  STREAM_CHUNK_BYTES,
} from "../../worker/memory.ts";

// HuggingFaceTB/SmolVLM-256M-Instruct's vision tower and connector (models/tools/make-random-tower.ts's preset)
const SMOLVLM: ModelConfig = {
  imageSize: 512,
  patchSize: 16,
  channels: 3,
  dim: 768,
  heads: 12,
  hidden: 3072,
  layers: 12,
  classes: 0,
  eps: 1e-6,
  distilled: false,
  ...TOWER_DEFAULTS,
  family: "siglip",
  hiddenAct: "gelu_pytorch_tanh",
  classToken: false,
  pooling: "none",
  connector: "idefics3",
  scaleFactor: 4,
  lmDim: 576,
};
// its preprocessor_config.json
const PROCESSOR = {
  do_convert_rgb: true,
  do_image_splitting: true,
  do_normalize: true,
  do_pad: true,
  do_rescale: true,
  do_resize: true,
  image_mean: [0.5, 0.5, 0.5],
  image_processor_type: "Idefics3ImageProcessor",
  image_std: [0.5, 0.5, 0.5],
  max_image_size: { longest_edge: 512 },
  processor_class: "Idefics3Processor",
  resample: 1,
  rescale_factor: 1 / 255,
  size: { longest_edge: 2048 },
};
// what the reservation reads of the bundle's header
const header = {
  config: SMOLVLM,
  preprocessing: normalizePreprocessing(PROCESSOR, "hf-idefics3", SMOLVLM),
} as BundleHeader;

const settings = ledgerSettings(readWranglerConfig().vars as unknown as Parameters<typeof ledgerSettings>[0]);
const modelBytes = memoryPlan(SMOLVLM, layout(SMOLVLM).length, 65536, 2).totalBytes;
const room = settings.capacityBytes - settings.fixedBytes - modelBytes;

// Baseline 4:2:0 JPEGs as phones write them (their headers are what the reservation reads).
const scratch = mkdtempSync(join(tmpdir(), "edgevit-tokens-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
const script = `
from PIL import Image
import sys
w, h = int(sys.argv[1]), int(sys.argv[2])
Image.new("RGB", (w, h), (120, 80, 40)).save(sys.argv[3], quality=90, subsampling=2)
`;
async function photo(width: number, height: number) {
  const path = join(scratch, `${width}x${height}.jpg`);
  execFileSync("/usr/bin/python3", ["-c", script, String(width), String(height), path]);
  const decoder = await openImage(new Blob([readFileSync(path)]).stream(), DEFAULT_LIMITS);
  const pp = header.preprocessing;
  const step = longestEdgeStep({ ...pp, splitting: pp.splitting! }, decoder.header);
  const scale = chooseScale(decoder.header, step, "fast");
  return { header: decoder.header, scale, decoderBytes: decoder.memoryBytes(scale) };
}

describe("a phone photo to /v1/image_tokens beside SmolVLM-256M at full size", () => {
  test("the model fits the default budget and leaves requests about 13.7 MiB", () => {
    expect(modelBytes).toBeLessThanOrEqual(settings.modelBudgetBytes);
    expect(room).toBeGreaterThan(13 * MiB);
  });

  test.each([
    ["12 MP", 4000, 3000],
    ["24 MP", 6000, 4000],
  ])("%s baseline JPEG: JSON and .npy, split and not, every phase under the room", async (_name, width, height) => {
    const image = await photo(width, height);
    const { splitting } = header.preprocessing;
    for (const split of [true, false]) {
      const frames = tileGrid(longestEdgeSize({ width, height }, 2048), splitting!, split).frames;
      expect(frames).toBe(split ? 13 : 1); // 3x4 tiles and the global view
      for (const form of ["json", "npy"] as const) {
        const plan: RequestPlan = {
          body: STREAM_CHUNK_BYTES,
          image,
          model: header,
          answer: { kind: "image_tokens", frames, form },
        };
        const decode = reservationBytes({ ...plan, phase: "decode" });
        const framesPhase = reservationBytes({ ...plan, phase: "frames" });
        const needs = reservationBytes(plan);
        expect(needs).toBe(Math.max(decode, framesPhase));
        expect(needs, `${form} split=${split}: ${(needs / MiB).toFixed(2)} MiB`).toBeLessThanOrEqual(room);

        // the ledger with the model loaded admits the decode, then grows or shrinks to the frames at once
        const ledger = new MemoryLedger(settings);
        ledger.modelLoaded("smolvlm", { memoryBytes: modelBytes });
        const base = ledger.usedBytes();
        const ticket = await ledger.admit(decode);
        await ticket.resize(framesPhase);
        expect(ledger.peakBytes - base).toBe(needs);
        ticket.release();
      }
    }
  });
});
