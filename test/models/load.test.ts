// The engine host (core/engine/) loading converted bundles: streamed or whole, checked, and run.
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { crc32 } from "node:zlib";
import { BundleError } from "../../core/bundle/format.ts";
import { readBundle } from "../../core/bundle/reader.ts";
import { convertDirectory } from "../../models/convert-folder.ts";
import type { Engine } from "../../core/engine/index.ts";
import { nodeEngine } from "../../cli/node-engine.ts";
import {
  TINY,
  VIT_PREPROCESSOR,
  hfConfig,
  hfTensors,
  makeWeights,
  timmTensors,
  writeCheckpoint,
  type Tiny,
} from "./checkpoints.ts";
import { forward } from "./reference-vit.ts";

const root = mkdtempSync(join(tmpdir(), "edgevit-load-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

let engine: Engine;
beforeAll(async () => {
  engine = await nodeEngine();
});

// Wider than TINY so every kernel sees more than one tile.
const T: Tiny = { ...TINY, dim: 16, hidden: 32 };
const weights = makeWeights(T, 1);
let bundle: Uint8Array;
beforeAll(async () => {
  bundle = await convertDirectory(
    writeCheckpoint(join(root, "vit"), hfTensors(T, weights, "vit"), hfConfig(T), VIT_PREPROCESSOR),
  );
});

// A stream that hands out `bytes` in chunks of the given sizes (cycled).
function streamOf(bytes: Uint8Array, sizes: number[]): ReadableStream<Uint8Array> {
  let at = 0,
    i = 0;
  return new ReadableStream({
    pull(controller) {
      if (at >= bytes.length) return controller.close();
      const n = sizes[i++ % sizes.length];
      controller.enqueue(bytes.slice(at, at + n));
      at += n;
    },
  });
}

function setInput(input: Float32Array) {
  for (let i = 0; i < input.length; i++) input[i] = Math.sin(i * 0.7);
}

async function loadError(source: Uint8Array | ReadableStream<Uint8Array>): Promise<BundleError> {
  try {
    await engine.load(source);
  } catch (e) {
    expect(e).toBeInstanceOf(BundleError);
    return e as BundleError;
  }
  throw new Error("load did not refuse");
}

describe("load", () => {
  test("a stream in uneven chunks loads the same model as the whole file", async () => {
    const whole = await engine.load(bundle);
    const streamed = await engine.load(streamOf(bundle, [1, 7, 300, 5, 4096]));
    expect(streamed.header).toEqual(readBundle(bundle, crc32).header);
    setInput(whole.input());
    setInput(streamed.input());
    const a = whole.run({ capture: 1 }),
      b = streamed.run({ capture: 1 });
    expect(b.logits).toEqual(a.logits);
    expect(b.output).toEqual(a.output);
    expect(b.captured).toEqual(a.captured);
    // the loader never gathered more than the header, and chunks were at most 4096 bytes
    const payloadOffset = new DataView(bundle.buffer).getUint32(12, true);
    expect(streamed.largestJsBuffer).toBeLessThanOrEqual(Math.max(4096, payloadOffset));
    expect(streamed.memoryBytes).toBeGreaterThan(readBundle(bundle, crc32).header.payload.length);
  });

  test("outputs match a float64 reference forward of the checkpoint's weights", async () => {
    const model = await engine.load(bundle);
    setInput(model.input());
    const pixels = Float32Array.from(model.input()); // the pass overwrites its input
    const got = model.run();
    const ref = forward(T, weights, pixels, 1e-12);
    expect(got.output.length).toBe(5 * T.dim);
    let worst = 0;
    ref.output.flat().forEach((v, i) => (worst = Math.max(worst, Math.abs(v - got.output[i]))));
    // int8 weights and activations: LayerNorm outputs of magnitude ~1 within 0.05
    expect(worst).toBeLessThan(0.05);
    ref.logits.forEach((v, i) => expect(Math.abs(v - got.logits[i])).toBeLessThan(0.02));
  });

  test("distilled: a timm DeiT runs as the mean of its two heads", async () => {
    const t = { ...T, distilled: true };
    const w = makeWeights(t, 4);
    const model = await engine.load(
      await convertDirectory(writeCheckpoint(join(root, "deit"), timmTensors(t, w), hfConfig(t), VIT_PREPROCESSOR)),
    );
    expect(model.tokens).toBe(6);
    setInput(model.input());
    const pixels = Float32Array.from(model.input()); // the pass overwrites its input
    const got = model.run();
    const ref = forward(t, w, pixels, 1e-12);
    ref.logits.forEach((v, i) => expect(Math.abs(v - got.logits[i])).toBeLessThan(0.02));
  });

  test("outputs: only the named outputs are copied, the same numbers as a run that copies every one", async () => {
    const model = await engine.load(bundle);
    // the pass overwrites its input: written before each run
    setInput(model.input());
    const every = model.run({ capture: 1 });
    setInput(model.input());
    const scores = model.run({ capture: 1, outputs: ["logits"] });
    expect(scores.logits).toEqual(every.logits);
    expect(scores.output.length).toBe(0);
    expect(scores.pooler.length).toBe(0);
    expect(scores.captured).toEqual(every.captured); // captures are asked for on their own
    setInput(model.input());
    const pooled = model.run({ outputs: ["pooler"] });
    expect(pooled.pooler).toEqual(every.pooler);
    expect(pooled.logits.length).toBe(0);
  });

  test("capture range is checked", async () => {
    const model = await engine.load(bundle);
    expect(() => model.run({ capture: 3 })).toThrow(/capture must be -1 or a layer 0\.\.2, got 3/);
  });
});

describe("refusals while streaming", () => {
  test("truncated payload", async () => {
    const e = await loadError(streamOf(bundle.subarray(0, bundle.length - 10), [1000]));
    expect(e.code).toBe("truncated");
    expect(e.message).toMatch(/payload ended after \d+ of \d+ bytes/);
  });

  test("stream that ends inside the header", async () => {
    const e = await loadError(streamOf(bundle.subarray(0, 100), [30]));
    expect(e.code).toBe("truncated");
    expect(e.message).toMatch(/ended after 100 bytes, inside its prefix or header/);
  });

  test("corrupt payload byte", async () => {
    const bad = bundle.slice();
    bad[bad.length - 100] ^= 0x40;
    const e = await loadError(streamOf(bad, [333]));
    expect(e.code).toBe("checksum_mismatch");
    expect(e.message).toMatch(/CRC-32 is [0-9a-f]{8}, the header says [0-9a-f]{8}: the file is corrupt/);
  });

  test("bytes past the declared payload", async () => {
    const long = new Uint8Array(bundle.length + 3);
    long.set(bundle);
    const e = await loadError(long);
    expect(e.code).toBe("size_mismatch");
  });

  test("a refused stream is cancelled, not left half read", async () => {
    let cancelled: unknown = null;
    let pulls = 0;
    const source = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulls++;
        controller.enqueue(new TextEncoder().encode("<html>Not Found</html> and more"));
      },
      cancel(reason) {
        cancelled = reason;
      },
    });
    const e = await loadError(source);
    expect(cancelled).toBe(e);
    expect(pulls).toBeLessThan(4);
  });

  test("not a bundle", async () => {
    const e = await loadError(streamOf(new TextEncoder().encode("<html>Not Found</html>"), [5]));
    expect(e.code).toBe("bad_magic");
  });
});
