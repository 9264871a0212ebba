// Hostile and corrupt objects in the bucket, inside workerd: each is refused from its header, in bounded
// work, with a sentence naming the field and the limit; the catalogue lists every object; the default
// model keeps serving beside them. The bundles are generated here from a good one (bundles.ts).

import { beforeAll, describe, expect, test } from "vitest";
import { env } from "cloudflare:test";
import cat from "../fixtures/images/cat-baseline-420.jpg";
import { garbage, selfConsistentHead, withHeader } from "./bundles.ts";
import { call, jpegRequest, randomBundle, SMALL_CONFIG } from "./helpers.ts";

const classify = (model: string, overrides: Partial<Env> = {}) =>
  call(jpegRequest(`/v1/classify?model=${model}`, cat), overrides);

async function refusal(model: string, overrides: Partial<Env> = {}): Promise<{ status: number; message: string }> {
  const response = await classify(model, overrides);
  const { error } = await response.json<any>();
  expect(error.code).toBe("model_unavailable");
  return { status: response.status, message: error.message };
}

async function listing(): Promise<any[]> {
  const response = await call(new Request("http://edgevit.test/v1/models"));
  expect(response.status).toBe(200);
  return (await response.json<any>()).models;
}

const good = randomBundle("hostile-base", 61);
const header = (edit: (h: any) => void) => withHeader(good, edit);

// [what, bytes, what the refusal must say]
const hostile: [string, Uint8Array, RegExp][] = [
  ["layers 1e6", header((h) => (h.config.layers = 1_000_000)), /config\.layers is 1000000, over the limit of 64/],
  ["layers 1e5", header((h) => (h.config.layers = 100_000)), /config\.layers is 100000, over the limit of 64/],
  [
    "dim 2^30",
    header((h) => {
      h.config.dim = 2 ** 30;
      h.config.heads = 1;
    }),
    /config\.dim is 1073741824, over the limit of 4096/,
  ],
  ["hidden 1e8", header((h) => (h.config.hidden = 1e8)), /config\.hidden is 100000000, over the limit of 16384/],
  [
    "heads 1024",
    header((h) => {
      h.config.dim = 1024;
      h.config.heads = 1024;
    }),
    /config\.heads is 1024, over the limit of 64/,
  ],
  ["classes 1e7", header((h) => (h.config.classes = 1e7)), /config\.classes is 10000000, over the limit of 32768/],
  [
    "imageSize 1e6",
    header((h) => (h.config.imageSize = 1_000_000)),
    /config\.imageSize is 1000000, over the limit of 1024/,
  ],
  [
    "patchSize 512",
    header((h) => {
      h.config.imageSize = 1024;
      h.config.patchSize = 512;
    }),
    /config\.patchSize is 512, over the limit of 64/,
  ],
  ["channels 1000", header((h) => (h.config.channels = 1000)), /config\.channels is 1000, over the limit of 4/],
  [
    "patches 16384",
    header((h) => {
      h.config.imageSize = 1024;
      h.config.patchSize = 8;
    }),
    /config\.patches is 16384 \(\(imageSize \/ patchSize\)\^2\), over the limit of 4096/,
  ],
  [
    "payload.length 2^40",
    header((h) => (h.payload.length = 2 ** 40)),
    /header\.payload\.length is 1099511627776 bytes \(1048576\.0 MiB\), over the limit of 120\.0 MiB/,
  ],
  ["an empty tensor table", header((h) => (h.tensors = [])), /header lists 0 tensors; the config implies 52/],
  [
    "resize to 1e6 px",
    header((h) => (h.preprocessing.size = { height: 1e6, width: 1e6 })),
    /preprocessing\.size\.height must be an integer from 1 to 4096, got 1000000/,
  ],
  [
    "a 10 kB label",
    header((h) => (h.labels[2] = "x".repeat(10_000))),
    /header\.labels\[2\] is 10000 characters, over the limit of 256/,
  ],
  [
    "a 1.6 GB self-consistent payload",
    selfConsistentHead({
      ...SMALL_CONFIG,
      imageSize: 224,
      patchSize: 16,
      dim: 4096,
      heads: 32,
      hidden: 16384,
      layers: 8,
    }),
    /header\.payload\.length is \d+ bytes \(1\d{3}\.\d MiB\), over the limit of 120\.0 MiB of weights/,
  ],
  [
    "a 9.7 GB self-consistent payload",
    selfConsistentHead({
      ...SMALL_CONFIG,
      imageSize: 224,
      patchSize: 16,
      dim: 4096,
      heads: 32,
      hidden: 16384,
      layers: 48,
    }),
    /header\.payload\.length is \d+ bytes \(\d{4,5}\.\d MiB\), over the limit of 120\.0 MiB/,
  ],
];

describe("hostile headers are refused from the header, naming the field and the limit", () => {
  beforeAll(() => env.MODELS.put("hostile-base.evit", good));
  test.each(hostile)("%s", async (what, bytes, reason) => {
    const name = `hostile-${what.replace(/[^a-z0-9]+/gi, "-").toLowerCase()}`;
    await env.MODELS.put(`${name}.evit`, bytes);
    for (let attempt = 0; attempt < 2; attempt++) {
      const { status, message } = await refusal(name);
      expect(status).toBe(503);
      expect(message).toMatch(reason);
      expect(message).not.toMatch(/unreachable|RuntimeError|out of memory/i);
    }
    const entry = (await listing()).find((m) => m.name === name);
    expect(entry.error.message).toMatch(reason);
    expect(entry).not.toHaveProperty("config");
    // a good model in the same bucket is unaffected
    expect((await classify("hostile-base")).status).toBe(200);
  });
});

describe("the catalogue lists every object, marking the unreadable ones", () => {
  test("0-byte, garbage, prefix-only and hostile objects beside a good one", async () => {
    const objects: [string, Uint8Array, string, RegExp][] = [
      ["cat-empty", new Uint8Array(0), "truncated", /empty \(0 bytes\)/],
      ["cat-garbage", garbage(5000, 3), "bad_magic", /not an edgevit bundle/],
      ["cat-prefix", good.slice(0, 16), "truncated", /16-byte object ends inside its prefix or header/],
      ["cat-hostile", header((h) => (h.config.layers = 1_000_000)), "over_limit", /config\.layers/],
      ["cat-html", new TextEncoder().encode("<html>403 Forbidden</html>"), "bad_magic", /"<htm"/],
    ];
    await env.MODELS.put("cat-good.evit", good);
    for (const [name, bytes] of objects) await env.MODELS.put(`${name}.evit`, bytes);
    const models = await listing();
    expect(models.find((m) => m.name === "cat-good").summary).toMatch(/dim 32, heads 2/);
    for (const [name, bytes, code, message] of objects) {
      const entry = models.find((m) => m.name === name);
      expect(entry, name).toBeDefined();
      expect(entry.bytes).toBe(bytes.length);
      expect(entry.error.code).toBe(code);
      expect(entry.error.message).toMatch(message);
    }
    // each bad object affects only requests for it
    expect((await classify("cat-good")).status).toBe(200);
    for (const [name] of objects) expect((await classify(name)).status).toBe(503);
    expect((await classify("cat-good")).status).toBe(200);
  });
});

describe("weights must be finite", () => {
  const poisoned: [string, string, number, RegExp][] = [
    [
      "NaN in a LayerNorm weight",
      "encoder.layer.1.layernorm_after.weight",
      NaN,
      /encoder\.layer\.1\.layernorm_after\.weight has a non-finite value \(NaN\) at element 7/,
    ],
    [
      "+Inf in the position embeddings",
      "embeddings.position_embeddings",
      Infinity,
      /embeddings\.position_embeddings has a non-finite value \(Infinity\) at element 7/,
    ],
    [
      "-Inf in a Linear's scale",
      "classifier.scale",
      -Infinity,
      /classifier\.scale has a non-finite value \(-Infinity\) at element 7/,
    ],
    [
      "NaN in a Linear's bias",
      "encoder.layer.0.attention.qkv.bias",
      NaN,
      /encoder\.layer\.0\.attention\.qkv\.bias has a non-finite value \(NaN\)/,
    ],
  ];
  test.each(poisoned)("%s: 503 naming the tensor", async (what, tensor, value, reason) => {
    const name = `finite-${what.replace(/[^a-z0-9]+/gi, "-").toLowerCase()}`;
    const bytes = randomBundle(name, 62, SMALL_CONFIG, (tensors) => {
      (tensors.get(tensor) as Float32Array)[7] = value;
    });
    await env.MODELS.put(`${name}.evit`, bytes);
    const { status, message } = await refusal(name);
    expect(status).toBe(503);
    expect(message).toMatch(reason);
  });

  test("finite weights whose scores overflow: 503, never a null score", async () => {
    // classifier scales near the float maximum: every logit overflows to +-Inf
    const bytes = randomBundle("finite-overflow", 63, SMALL_CONFIG, (tensors) => {
      (tensors.get("classifier.scale") as Float32Array).fill(3e38);
    });
    await env.MODELS.put("finite-overflow.evit", bytes);
    const { status, message } = await refusal("finite-overflow");
    expect(status).toBe(503);
    expect(message).toMatch(/model finite-overflow computed non-finite scores for this image/);
  });
});

describe("a model over the memory budget says so with both sizes", () => {
  test("over the budget from its planned memory, before the payload is read", async () => {
    await env.MODELS.put("budget-vit.evit", good);
    // a budget above the object's size but below payload + activations
    const budget = (good.length + 1024) / 2 ** 20;
    const { status, message } = await refusal("budget-vit", { MODEL_MEMORY_BUDGET_MB: budget });
    expect(status).toBe(503);
    expect(message).toMatch(/^model budget-vit is too large: it needs 128\.0 KiB of memory /);
    expect(message).toMatch(/\(31\.5 KiB of weights, \d+\.\d KiB of activations\), /);
    expect(message).toMatch(/more than MODEL_MEMORY_BUDGET_MB allows \(37\.2 KiB\)$/);
    expect(message).not.toMatch(/unreachable/);
    expect((await classify("budget-vit")).status).toBe(200);
  });
});
