// What one classification allocates outside the isolate's buffer pool, once the pool holds the decoder's
// buffers from an earlier request of the same kind: under concurrent requests every such byte is garbage
// the runtime has not collected yet (docs/MEMORY.md, "Concurrent requests"). Every ArrayBuffer and typed
// array made with a length while the request runs is counted, by replacing the global constructors.

import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { beforeAll, expect, test } from "vitest";
import { DEFAULT_MODEL, loadModelFile, nodeEngine } from "../../cli/node-engine.ts";
import { topPredictions } from "../../core/answers/predictions.ts";
import { buffers } from "../../core/buffers.ts";
import type { Model } from "../../core/engine/model.ts";
import type { ImageDecoder } from "../../core/image/source.ts";
import { inspectImage, runImage } from "../../core/pipeline.ts";
import { constructedBytes } from "./image/allocated.ts";

const root = new URL("../../", import.meta.url).pathname;
// The load test's uploads (bench/load_images.py), made once.
const IMAGES = `${root}.cache/bench/load-images/`;
const LIMITS = { maxPixels: 24 * 1024 * 1024 };

const KINDS = [
  ArrayBuffer,
  Uint8Array,
  Int8Array,
  Uint8ClampedArray,
  Uint16Array,
  Int16Array,
  Uint32Array,
  Int32Array,
  Float32Array,
  Float64Array,
];

// Bytes of every buffer made with a length while `fn` runs, the pool's new buffers included (its reused
// ones are not new memory).
async function allocated(fn: () => Promise<unknown>): Promise<number> {
  return (await constructedBytes(KINDS, fn)).bytes;
}

let model: Model;
beforeAll(async () => {
  if (!existsSync(`${IMAGES}done`)) execFileSync("/usr/bin/python3", [`${root}bench/load_images.py`, IMAGES]);
  model = await loadModelFile(await nodeEngine(), DEFAULT_MODEL);
}, 600_000);

// One /v1/classify as the Worker answers it, from its opened image (the header read, as the Worker does
// before it reserves the request's memory): the scores copied out of the model, the answer's JSON.
async function classify(decoder: ImageDecoder, outputs?: readonly ["logits"]): Promise<string> {
  const { result, image } = await runImage(model, decoder, LIMITS, { outputs });
  return JSON.stringify({ predictions: topPredictions(result.logits, model.header.labels, 5), image });
}

test.each([
  ["a 12 MP progressive JPEG", "progressive-12mp.jpg"],
  ["a 24 MP PNG", "rgb-24mp.png"],
])(
  "classifying %s allocates little beside the pool's buffers",
  async (_what, file) => {
    const bytes = new Uint8Array(readFileSync(`${IMAGES}${file}`));
    const open = () => inspectImage(bytes, LIMITS);
    await classify(open()); // the pool now holds this kind's buffers
    const made = buffers.stats.allocated;
    let decoder = open();
    const all = await allocated(() => classify(decoder));
    decoder = open();
    const logits = await allocated(() => classify(decoder, ["logits"]));
    // The scores alone: last_hidden_state and pooler_output stay in wasm memory (for a ViT-B/16, 591 KiB).
    const { dim } = model.header.config;
    expect(all - logits).toBeGreaterThanOrEqual((model.tokens * dim + dim) * 4);
    // What is left: the resize's coefficients and its 224x224 (here 28x28) picture, the decoder's tables
    // and small state, the answer. The decoders' large buffers come from the pool, reused.
    expect(logits).toBeLessThan(160 * 1024);
    expect(buffers.stats.allocated).toBe(made);
  },
  600_000,
);
