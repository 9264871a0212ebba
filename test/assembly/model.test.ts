// The full forward pass on small random models: every dot path (both builds, both spellings of the relaxed
// dot) bit-identical, and close to a float64 reference of Hugging Face's ViT computed from the unquantized
// weights. The payload is laid out here from core/bundle/FORMAT.md with core/bundle/pack.ts, independently of the
// engine.
import { readFileSync } from "node:fs";
import { describe, expect, test } from "vitest";
import { CAPTURE_HIDDEN, initEngine } from "../../core/engine/abi.ts";
import { layout } from "../../core/bundle/layout.ts";
import { packLinear } from "../../core/bundle/pack.ts";
import { BUILDS, DOT_VARIANTS, type Engine, f32, loadEngine, loadVariant, randomF32, rng } from "./engine.ts";
import * as ref from "./reference.ts";

interface Config {
  channels: number;
  imageSize: number;
  patchSize: number;
  dim: number;
  heads: number;
  hidden: number;
  layers: number;
  classes: number;
  distilled: boolean;
  eps: number;
}

interface LinearWeights {
  W: Float32Array;
  b: Float32Array;
  N: number;
  K: number;
}

function randomModel(cfg: Config, seed: number) {
  const random = rng(seed);
  const grid = Math.floor(cfg.imageSize / cfg.patchSize);
  const tokens = grid * grid + (cfg.distilled ? 2 : 1);
  const linear = (K: number, N: number): LinearWeights => ({
    W: randomF32(random, N * K, -1 / Math.sqrt(K), 1 / Math.sqrt(K)).map((v) => v * 1.7),
    b: randomF32(random, N, -0.1, 0.1),
    N,
    K,
  });
  const norm = () => ({ w: randomF32(random, cfg.dim, 0.7, 1.3), b: randomF32(random, cfg.dim, -0.1, 0.1) });
  return {
    tokens,
    patch: linear(cfg.channels * cfg.patchSize * cfg.patchSize, cfg.dim),
    cls: randomF32(random, cfg.dim, -1, 1),
    dist: randomF32(random, cfg.dim, -1, 1),
    pos: randomF32(random, tokens * cfg.dim, -0.5, 0.5),
    layers: Array.from({ length: cfg.layers }, () => ({
      ln1: norm(),
      qkv: linear(cfg.dim, 3 * cfg.dim),
      out: linear(cfg.dim, cfg.dim),
      ln2: norm(),
      fc1: linear(cfg.dim, cfg.hidden),
      fc2: linear(cfg.hidden, cfg.dim),
    })),
    ln: norm(),
    head: linear(cfg.dim, cfg.classes),
    headDist: linear(cfg.dim, cfg.classes),
  };
}

type Model = ReturnType<typeof randomModel>;

/** The payload of core/bundle/FORMAT.md: tensors in order, each at a multiple of 64. */
function payload(cfg: Config, m: Model): Uint8Array {
  const parts: Uint8Array[] = [];
  const f = (a: Float32Array) => parts.push(new Uint8Array(a.buffer.slice(a.byteOffset, a.byteOffset + a.byteLength)));
  const lin = (l: LinearWeights) => {
    const p = packLinear(l.W, l.b, l.N, l.K);
    parts.push(p.weight);
    f(p.scale);
    parts.push(new Uint8Array(p.wsum.buffer));
    f(p.bias);
  };
  lin(m.patch);
  f(m.cls);
  if (cfg.distilled) f(m.dist);
  f(m.pos);
  for (const l of m.layers) {
    f(l.ln1.w);
    f(l.ln1.b);
    lin(l.qkv);
    lin(l.out);
    f(l.ln2.w);
    f(l.ln2.b);
    lin(l.fc1);
    lin(l.fc2);
  }
  f(m.ln.w);
  f(m.ln.b);
  lin(m.head);
  if (cfg.distilled) lin(m.headDist);
  const align = (n: number) => Math.ceil(n / 64) * 64;
  // payload.length is the end of the last tensor: no padding after it.
  const out = new Uint8Array(parts.reduce((n, p) => align(n) + p.length, 0));
  let at = 0;
  for (const p of parts) {
    at = align(at);
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Hugging Face ViT forward in float64: returns hidden_states, last_hidden_state and logits. */
function reference(cfg: Config, m: Model, image: Float32Array) {
  const { dim, heads, patchSize: P, imageSize: S, channels: Ch } = cfg;
  const grid = Math.floor(S / P),
    T = m.tokens,
    headDim = dim / heads,
    prefix = cfg.distilled ? 2 : 1;
  const patchDim = Ch * P * P;
  const patches = new Float64Array(grid * grid * patchDim);
  for (let gy = 0; gy < grid; gy++)
    for (let gx = 0; gx < grid; gx++)
      for (let c = 0; c < Ch; c++)
        for (let py = 0; py < P; py++)
          for (let px = 0; px < P; px++)
            patches[(gy * grid + gx) * patchDim + (c * P + py) * P + px] =
              image[(c * S + gy * P + py) * S + gx * P + px];
  const emb = ref.linear(patches, grid * grid, patchDim, m.patch.W, m.patch.b, dim);
  let x = new Float64Array(T * dim);
  x.set(m.cls, 0);
  if (cfg.distilled) x.set(m.dist, dim);
  x.set(emb, prefix * dim);
  x = x.map((v, i) => v + m.pos[i]);
  const hidden = [x.slice()];
  for (const l of m.layers) {
    const h = ref.layerNorm(x, T, dim, l.ln1.w, l.ln1.b, cfg.eps);
    const qkv = ref.linear(h, T, dim, l.qkv.W, l.qkv.b, 3 * dim);
    const ctx = new Float64Array(T * dim);
    for (let hd = 0; hd < heads; hd++) {
      const at = (t: number, part: number, j: number) => qkv[t * 3 * dim + part * dim + hd * headDim + j];
      const scores = new Float64Array(T * T);
      for (let i = 0; i < T; i++)
        for (let j = 0; j < T; j++) {
          let s = 0;
          for (let d = 0; d < headDim; d++) s += at(i, 0, d) * at(j, 1, d);
          scores[i * T + j] = s;
        }
      const p = ref.softmax(scores, T, T, 1 / Math.sqrt(headDim));
      for (let i = 0; i < T; i++)
        for (let d = 0; d < headDim; d++) {
          let s = 0;
          for (let j = 0; j < T; j++) s += p[i * T + j] * at(j, 2, d);
          ctx[i * dim + hd * headDim + d] = s;
        }
    }
    const attn = ref.linear(ctx, T, dim, l.out.W, l.out.b, dim);
    x = x.map((v, i) => v + attn[i]);
    const h2 = ref.layerNorm(x, T, dim, l.ln2.w, l.ln2.b, cfg.eps);
    const inter = ref.linear(h2, T, dim, l.fc1.W, l.fc1.b, cfg.hidden).map(ref.gelu);
    const mlp = ref.linear(inter, T, cfg.hidden, l.fc2.W, l.fc2.b, dim);
    x = x.map((v, i) => v + mlp[i]);
    hidden.push(x.slice());
  }
  const out = ref.layerNorm(x, T, dim, m.ln.w, m.ln.b, cfg.eps);
  let logits = ref.linear(out.subarray(0, dim), 1, dim, m.head.W, m.head.b, cfg.classes);
  if (cfg.distilled) {
    const second = ref.linear(out.subarray(dim, 2 * dim), 1, dim, m.headDist.W, m.headDist.b, cfg.classes);
    logits = logits.map((v, i) => (v + second[i]) / 2);
  }
  return { hidden, out, logits };
}

function load(e: Engine, cfg: Config, bytes: Uint8Array): void {
  const ptr = e.alloc(bytes.length);
  new Uint8Array(e.memory.buffer, ptr, bytes.length).set(bytes);
  // The header's tensor table is layout()'s; the payload laid out here independently must end where it says.
  const plan = layout(cfg);
  expect(bytes.length).toBe(plan.length);
  expect(initEngine(e, cfg, { ptr, bytes: bytes.length, tensors: plan.tensors })).toBe(0);
  e.enableCapture(CAPTURE_HIDDEN); // the captured hidden state's buffer
}

function run(e: Engine, cfg: Config, image: Float32Array, capture: number) {
  f32(e, e.inputPtr(), image.length).set(image);
  e.forward(capture, 0, 0);
  const T = e.tokens();
  return {
    logits: f32(e, e.logitsPtr(), cfg.classes).slice(),
    output: f32(e, e.outputPtr(), T * cfg.dim).slice(),
    captured: f32(e, e.capturedPtr(), T * cfg.dim).slice(),
  };
}

const configs: [string, Config][] = [
  // headDim 12 (not a multiple of 16), 10 % 3 != 0 (the conv drops the last row/column), 10 tokens.
  [
    "ViT, headDim 12, patch not dividing the image",
    {
      channels: 3,
      imageSize: 10,
      patchSize: 3,
      dim: 36,
      heads: 3,
      hidden: 72,
      layers: 2,
      classes: 5,
      distilled: false,
      eps: 1e-12,
    },
  ],
  // Distilled (class + distillation tokens), one channel, headDim 8, odd token count 27.
  [
    "DeiT distilled, 1 channel, headDim 8",
    {
      channels: 1,
      imageSize: 20,
      patchSize: 4,
      dim: 32,
      heads: 4,
      hidden: 50,
      layers: 3,
      classes: 7,
      distilled: true,
      eps: 1e-6,
    },
  ],
  // Wider: K = 3 * 16 * 16 = 768 for the patch GEMM, 65 tokens, headDim 20.
  [
    "patch 16, 65 tokens, headDim 20",
    {
      channels: 3,
      imageSize: 128,
      patchSize: 16,
      dim: 80,
      heads: 4,
      hidden: 160,
      layers: 2,
      classes: 11,
      distilled: false,
      eps: 1e-12,
    },
  ],
];

describe("forward", () => {
  for (const [name, cfg] of configs) {
    test(`${name}: every dot path bit-identical; int8 close to the float64 reference`, () => {
      const model = randomModel(cfg, 11);
      const bytes = payload(cfg, model);
      const image = randomF32(rng(12), cfg.channels * cfg.imageSize * cfg.imageSize, -1, 1);
      const want = reference(cfg, model, image);
      const results = DOT_VARIANTS.map((variant) => {
        const e = loadVariant(variant);
        load(e, cfg, bytes);
        expect(e.tokens()).toBe(model.tokens);
        const byCapture = [-1, 0, cfg.layers].map((capture) => run(e, cfg, image, capture));
        // The same input gives the same output whatever is captured and however often it runs.
        for (const r of byCapture.slice(1)) {
          expect(ref.sameBits(r.logits, byCapture[0].logits)).toBe(true);
          expect(ref.sameBits(r.output, byCapture[0].output)).toBe(true);
        }
        return { embeddings: byCapture[1].captured, last: byCapture[2].captured, ...byCapture[0] };
      });
      const [a, ...others] = results;
      for (const b of others)
        for (const key of ["logits", "output", "embeddings", "last"] as const)
          expect(ref.sameBits(a[key], b[key])).toBe(true);

      const perToken = (got: Float32Array, expected: Float64Array) => {
        let worst = 1;
        for (let t = 0; t < model.tokens; t++) {
          const s = t * cfg.dim,
            e = s + cfg.dim;
          worst = Math.min(worst, ref.cosine(got.subarray(s, e), expected.subarray(s, e)));
        }
        return worst;
      };
      expect(perToken(a.embeddings, want.hidden[0])).toBeGreaterThan(0.9995);
      expect(perToken(a.last, want.hidden[cfg.layers])).toBeGreaterThan(0.995);
      expect(perToken(a.output, want.out)).toBeGreaterThan(0.995);
      expect(ref.cosine(a.logits, want.logits)).toBeGreaterThan(0.995);
    });
  }

  test("each build reports the features it was compiled with and imports nothing", () => {
    for (const file of BUILDS) {
      const e = loadEngine(file);
      expect(e.relaxed()).toBe(file === "engine-relaxed.wasm" ? 1 : 0);
    }
    for (const file of BUILDS) {
      const module = new WebAssembly.Module(readFileSync(new URL(`../../build/${file}`, import.meta.url)));
      expect(WebAssembly.Module.imports(module)).toEqual([]);
    }
  });

  test("init rejects a bad config, struct or table, a misaligned payload, a tensor past it, a second init", () => {
    const e = loadEngine("engine-relaxed.wasm");
    const good = { channels: 1, imageSize: 8, patchSize: 4, dim: 8, heads: 2, hidden: 8, layers: 1, classes: 2 };
    const cfg = { ...good, distilled: false, eps: 1e-12 };
    const plan = layout(cfg);
    const ptr = e.alloc(plan.length);
    const bind = (c: typeof cfg, at = ptr, tensors = plan.tensors) =>
      initEngine(e, c, { ptr: at, bytes: plan.length, tensors });
    expect(bind({ ...cfg, dim: 30, heads: 4 })).toBe(1); // 30 % 4 != 0
    expect(bind({ ...cfg, patchSize: 16 })).toBe(1); // patch > image
    expect(bind(cfg, ptr + 4)).toBe(2);
    // a tensor moved past the end of the payload, and one missing from the table
    const last = plan.tensors.length - 1;
    expect(
      bind(
        cfg,
        ptr,
        plan.tensors.map((t, i) => (i === last ? { ...t, offset: plan.length } : t)),
      ),
    ).toBe(5);
    expect(bind(cfg, ptr, plan.tensors.slice(0, last))).toBe(5);
    // a config struct of another size and a table with the wrong slot count (a host of another build)
    const config = e.alloc(64);
    const table = e.alloc(64);
    new Int32Array(e.memory.buffer, config, 11).set([40, 1, 8, 4, 8, 2, 8, 1, 2, 0, 0]);
    expect(e.init(config, table)).toBe(4);
    new Int32Array(e.memory.buffer, config, 1).set([44]);
    new Uint32Array(e.memory.buffer, table, 3).set([ptr, plan.length, 36]);
    expect(e.init(config, table)).toBe(4);
    // The rejected calls left the instance unbound: a good config binds it once.
    expect(bind(cfg)).toBe(0);
    expect(bind(cfg)).toBe(3);
  });
});
