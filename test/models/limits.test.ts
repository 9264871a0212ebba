// Bounded validation (core/bundle/format.ts LIMITS): every size a header declares is checked against what a
// Worker can hold before the layout is built, with a sentence naming the field and the limit; float
// tensors must be finite; the engine's memory plan bounds the memory a load really takes.
import { describe, expect, test } from "vitest";
import { crc32 } from "node:zlib";
import { BundleError, LIMITS, overLimit, type ModelConfig } from "../../core/bundle/format.ts";
import { BundleWriter } from "../../core/bundle/writer.ts";
import { layout, tensorCount } from "../../core/bundle/layout.ts";
import { parsePrefix, readBundle } from "../../core/bundle/reader.ts";
import { validateHeader } from "../../core/bundle/header.ts";
import { memoryPlan } from "../../core/engine/memory.ts";
import { nodeEngine } from "../../cli/node-engine.ts";
import { randomBundle, SMALL_CONFIG, split, withHeader } from "../worker/bundles.ts";

const good = randomBundle("limits-vit", 5);
const { header } = split(good);

function refusal(f: () => unknown): BundleError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(BundleError);
    return e as BundleError;
  }
  throw new Error("not refused");
}

const withConfig = (config: Partial<ModelConfig>) => {
  const h = structuredClone(header) as any;
  Object.assign(h.config, config);
  return h;
};

describe("header sizes against LIMITS", () => {
  test.each([
    ["layers", { layers: 1_000_000 }, "config.layers is 1000000, over the limit of 64"],
    ["layers", { layers: 100_000 }, "config.layers is 100000, over the limit of 64"],
    ["layers", { layers: 2 ** 31 }, "config.layers is 2147483648, over the limit of 64"],
    ["dim", { dim: 8192, heads: 2 }, "config.dim is 8192, over the limit of 4096"],
    ["heads", { dim: 128, heads: 128 }, "config.heads is 128, over the limit of 64"],
    ["hidden", { hidden: 16385 }, "config.hidden is 16385, over the limit of 16384"],
    ["classes", { classes: 32769 }, "config.classes is 32769, over the limit of 32768"],
    ["imageSize", { imageSize: 2048, patchSize: 32 }, "config.imageSize is 2048, over the limit of 1024"],
    ["patchSize", { imageSize: 1024, patchSize: 128 }, "config.patchSize is 128, over the limit of 64"],
    ["channels", { channels: 5 }, "config.channels is 5, over the limit of 4"],
    ["patches", { imageSize: 1020, patchSize: 15 }, "config.patches is 4624 ((imageSize / patchSize)^2)"],
  ])("%s: %j", (_, config, message) => {
    const e = refusal(() => validateHeader(withConfig(config)));
    expect(e.code).toBe("over_limit");
    expect(e.message).toContain(message);
  });

  test("every size at its limit passes; one over is refused", () => {
    const atLimit: ModelConfig = {
      ...SMALL_CONFIG,
      imageSize: 1024,
      patchSize: 16,
      channels: 4,
      dim: 4096,
      heads: 64,
      hidden: 16384,
      layers: 64,
      classes: 32768,
    };
    expect(overLimit(atLimit)).toBeNull();
    for (const field of ["imageSize", "channels", "dim", "heads", "hidden", "layers", "classes"] as const) {
      expect(overLimit({ ...atLimit, [field]: atLimit[field] + 1 })?.field).toBe(field);
    }
  });

  test("payload.length over LIMITS.payloadBytes is refused before the tensor table is compared", () => {
    const h = structuredClone(header) as any;
    h.payload.length = LIMITS.payloadBytes + 1;
    const e = refusal(() => validateHeader(h));
    expect(e.code).toBe("over_limit");
    expect(e.message).toBe(
      "header.payload.length is 125829121 bytes (120.0 MiB), over the limit of 120.0 MiB of weights a Worker can hold",
    );
  });

  test("a header over LIMITS.headerBytes is refused from the 16-byte prefix", () => {
    const prefix = new Uint8Array(16);
    prefix.set(new TextEncoder().encode("EVIT"));
    const view = new DataView(prefix.buffer);
    view.setUint32(4, 1, true);
    view.setUint32(8, LIMITS.headerBytes + 1, true);
    view.setUint32(12, Math.ceil((16 + LIMITS.headerBytes + 1) / 64) * 64, true);
    expect(refusal(() => parsePrefix(prefix)).message).toMatch(/header length 2097153 is outside 1\.\.2097152/);
  });

  test("label count and length", () => {
    const h = structuredClone(header) as any;
    h.labels[1] = "y".repeat(LIMITS.labelChars + 1);
    expect(refusal(() => validateHeader(h)).message).toBe("header.labels[1] is 257 characters, over the limit of 256");
  });

  test("preprocessing sizes: a resize to 1e9 px is refused", () => {
    const h = structuredClone(header) as any;
    h.preprocessing.size = { shortestEdge: 1e9 };
    expect(refusal(() => validateHeader(h)).message).toMatch(/shortestEdge must be an integer from 1 to 4096/);
  });

  test("tensorCount is the length of the layout it stands in for", () => {
    for (const c of [
      SMALL_CONFIG,
      { ...SMALL_CONFIG, distilled: true },
      { ...SMALL_CONFIG, layers: 1 },
      { ...SMALL_CONFIG, layers: 64, distilled: true },
    ]) {
      expect(tensorCount(c)).toBe(layout(c).tensors.length);
    }
  });

  test("the writer refuses a config whose payload is over the limit, naming both sizes", () => {
    const parts = {
      ...withConfig({}),
      config: { ...SMALL_CONFIG, imageSize: 224, patchSize: 16, dim: 4096, heads: 32, hidden: 16384, layers: 8 },
    };
    const e = refusal(() => new BundleWriter(parts, crc32));
    expect(e.code).toBe("over_limit");
    expect(e.message).toMatch(
      /^the payload that 224px\/16 3ch, dim 4096.* implies is 1\d{9} bytes \(15\d\d\.\d MiB\), over the limit of 120/,
    );
  });
});

describe("finite floats", () => {
  test.each([
    ["NaN", "embeddings.cls_token", NaN],
    ["Infinity", "encoder.layer.0.attention.output.dense.scale", Infinity],
    ["-Infinity", "layernorm.weight", -Infinity],
  ])("%s in %s: readBundle refuses it naming the tensor and element", (_, tensor, value) => {
    const bundle = randomBundle("poisoned", 6, SMALL_CONFIG, (t) => {
      (t.get(tensor) as Float32Array)[3] = value;
    });
    const e = refusal(() => readBundle(bundle, crc32));
    expect(e.code).toBe("non_finite");
    expect(e.message).toBe(
      `tensor ${tensor} has a non-finite value (${value}) at element 3: the weights are corrupt or overflowed`,
    );
  });

  test("the engine host refuses the same bundle from wasm memory", async () => {
    const engine = await nodeEngine();
    const bundle = randomBundle("poisoned", 6, SMALL_CONFIG, (t) => {
      (t.get("encoder.layer.1.intermediate.dense.bias") as Float32Array)[60] = NaN;
    });
    await expect(engine.load(bundle)).rejects.toThrow(
      "tensor encoder.layer.1.intermediate.dense.bias has a non-finite value (NaN) at element 60",
    );
  });
});

describe("the memory plan", () => {
  test("bounds the wasm memory a load takes, within one 64 KiB page", async () => {
    const engine = await nodeEngine();
    for (const config of [
      SMALL_CONFIG,
      { ...SMALL_CONFIG, distilled: true, layers: 5 },
      { ...SMALL_CONFIG, imageSize: 30, patchSize: 5, dim: 20, heads: 5, hidden: 7, classes: 3 },
      { ...SMALL_CONFIG, imageSize: 224, patchSize: 16, dim: 192, heads: 3, hidden: 768, layers: 4, classes: 100 },
      // the towers' buffers and records: the pooling head, the projection, registers
      { ...SMALL_CONFIG, classes: 0, family: "clip", preLayernorm: true, finalNorm: "pooled", projection: 24 },
      { ...SMALL_CONFIG, classes: 0, family: "siglip", classToken: false, pooling: "map", layers: 3 },
      { ...SMALL_CONFIG, classes: 0, family: "dinov2", registerTokens: 4, layerScale: true },
    ] as ModelConfig[]) {
      let planned = 0;
      const model = await engine.load(randomBundle("planned", 7, config), {
        reserve: (plan) => {
          planned = plan.totalBytes;
        },
      });
      expect(planned).toBeGreaterThanOrEqual(model.memoryBytes);
      expect(planned - model.memoryBytes).toBeLessThanOrEqual(65536);
    }
  });

  test("ViT-B/16 at 224 px: the 86.0 MiB docs/MEMORY.md measured, within a page", () => {
    const vitB: ModelConfig = {
      ...SMALL_CONFIG,
      imageSize: 224,
      patchSize: 16,
      dim: 768,
      heads: 12,
      hidden: 3072,
      layers: 12,
      classes: 1000,
    };
    const plan = memoryPlan(vitB, layout(vitB).length, 65536, 2);
    expect(plan.payloadBytes).toBe(88_070_944);
    expect(Math.abs(plan.totalBytes - 90_177_536)).toBeLessThanOrEqual(65536);
  });

  test("a load whose reserve refuses the plan stops before the payload is copied", async () => {
    const engine = await nodeEngine();
    await expect(
      engine.load(good, {
        reserve: () => {
          throw new Error("over the budget");
        },
      }),
    ).rejects.toThrow("over the budget");
  });
});

test("parsePrefix refuses a layers 1e6 bundle from its bytes", () => {
  const e = refusal(() => parsePrefix(withHeader(good, (h) => (h.config.layers = 1_000_000))));
  expect(e.code).toBe("over_limit");
});
