// The engine inside workerd, for bench/workerd.ts: each request runs `n` repetitions of one kernel case
// and answers when done; the client times the request (workerd's clocks stand still while code runs).
//
//   GET /probe                                   {probe, path} of a fresh relaxed-build instance
//   GET /ceiling?dot=split|fused&n=N             N x dotCeiling(2M iterations) -> {macs}
//   GET /forward?model=deit-tiny&dot=...&n=N     N forward passes of a random model -> {macs}
//   GET /gemm?shape=768x3072&dot=...&n=N         N int8 GEMMs of 197 tokens, K x N -> {macs}
//   GET /float?kernel=gelu&width=768&n=N         N float kernel calls on 197 rows of `width` -> {values}
//   PUT /bundle                                  loads the .evit in the body (the engine host's loader)
//   POST /bundle/run?n=N                         pixel values (f32) in the body, N forward passes of the
//                                                loaded bundle -> {output}: logits or a tower's embedding
//                                                (bench/output.ts; npm run bench: the forward pass in
//                                                workerd, without HTTP upload parsing or decoding)
//   GET /healthz
import relaxedModule from "../build/engine-relaxed.wasm";
import { Engine } from "../core/engine/index.ts";
import type { EngineExports } from "../core/engine/abi.ts";
import type { Model } from "../core/engine/model.ts";
import { outputLength, outputOf } from "./output.ts";
import { forwardMacs } from "./stats.ts";
import { BENCH_MODELS, fillBytes, fillF32, randomForward, randomSource } from "./random-model.ts";

interface Exports extends EngineExports {
  dotCeiling(ptr: number, iterations: number): number;
  dotCeilingMacs(): number;
  gemmRowTile(): number;
  gemm(...args: number[]): void;
  gelu(x: number, n: number): void;
  layerNorm(x: number, M: number, D: number, w: number, b: number, eps: number, out: number): void;
  quantizeRows(...args: number[]): void;
  softmaxQuantize(...args: number[]): void;
  packRows(...args: number[]): void;
}

// A float kernel on TOKENS rows of `width` values, as the forward pass calls it.
function floatCase(e: Exports, kernel: string, width: number): { run: () => void; macs: number } {
  const random = randomSource(5);
  const n = TOKENS * width;
  const rows = Math.ceil(TOKENS / e.gemmRowTile()) * e.gemmRowTile();
  const x = e.alloc(n * 4);
  const out = e.alloc(n * 4);
  const w = e.alloc(width * 4);
  const b = e.alloc(width * 4);
  const q = e.alloc(rows * k16(width));
  const [sa, za, asum] = [e.alloc(rows * 4), e.alloc(rows * 4), e.alloc(rows * 4)];
  const packed = e.alloc(n4(TOKENS) * k16(width) + n4(width) * k16(TOKENS));
  const [sb, bsum] = [e.alloc(n4(Math.max(TOKENS, width)) * 4), e.alloc(n4(Math.max(TOKENS, width)) * 4)];
  fillF32(e, random, x, n, -4, 4);
  fillF32(e, random, w, width, 0.5, 1.5);
  const runs: Record<string, () => void> = {
    gelu: () => e.gelu(x, n),
    layerNorm: () => e.layerNorm(x, TOKENS, width, w, b, 1e-12, out),
    quantizeRows: () => e.quantizeRows(x, width, TOKENS, width, q, sa, za, asum),
    softmaxQuantize: () => e.softmaxQuantize(x, TOKENS, width, width, 0.125, q, sa, za, asum),
    packK: () => e.packRows(x, width, 1, TOKENS, width, packed, sb, bsum), // K: [tokens][width]
    packVt: () => e.packRows(x, 1, width, width, TOKENS, packed, sb, bsum), // V^T: [width][tokens]
  };
  const run = runs[kernel];
  if (!run) throw new Error(`unknown kernel ${kernel}`);
  return { run, macs: n };
}

const TOKENS = 197;
const k16 = (k: number) => Math.ceil(k / 16) * 16;
const n4 = (n: number) => Math.ceil(n / 4) * 4;

// A GEMM of TOKENS rows on random operands, K x N from `shape`.
function gemmCase(e: Exports, shape: string): { run: () => void; macs: number } {
  const [K, N] = shape.split("x").map(Number);
  const random = randomSource(3);
  const rows = Math.ceil(TOKENS / e.gemmRowTile()) * e.gemmRowTile();
  const A = e.alloc(rows * k16(K));
  const [sa, za, asum] = [e.alloc(rows * 4), e.alloc(rows * 4), e.alloc(rows * 4)];
  const B = e.alloc(n4(N) * k16(K));
  const [sb, bsum, bias] = [e.alloc(n4(N) * 4), e.alloc(n4(N) * 4), e.alloc(n4(N) * 4)];
  const C = e.alloc(TOKENS * N * 4);
  fillBytes(e, random, A, rows * k16(K), -128, 127);
  fillBytes(e, random, B, n4(N) * k16(K), 1, 127);
  return { run: () => e.gemm(A, sa, za, asum, TOKENS, k16(K), B, sb, bsum, bias, N, C, N, 0), macs: TOKENS * K * N };
}

const DOT = { split: 1, fused: 2 } as const;
const CEILING_ITERATIONS = 2_000_000;

async function instance(dot: string | null): Promise<Exports> {
  const e = (await WebAssembly.instantiate(relaxedModule, {})).exports as unknown as Exports;
  if (dot !== null) {
    const path = DOT[dot as keyof typeof DOT];
    if (path === undefined || e.setDotPath(path) !== path) throw new Error(`no dot path ${dot}`);
  }
  return e;
}

// One instance per case, made on first use and kept: the timed requests after it only run.
const cases = new Map<string, Promise<{ run: () => void; macs: number }>>();

function makeCase(kind: string, dot: string | null, model: string | null) {
  // model: a BENCH_MODELS name, or a GEMM shape
  const key = `${kind}/${dot}/${model}`;
  let c = cases.get(key);
  if (!c) {
    c = (async () => {
      const e = await instance(dot);
      if (kind === "ceiling") {
        const ptr = e.alloc(64);
        const random = randomSource(7);
        fillBytes(e, random, ptr, 32, -128, 127);
        fillBytes(e, random, ptr + 32, 32, 0, 127);
        return { run: () => void e.dotCeiling(ptr, CEILING_ITERATIONS), macs: CEILING_ITERATIONS * e.dotCeilingMacs() };
      }
      if (kind === "gemm") return gemmCase(e, model ?? "768x3072");
      if (kind === "float") {
        const [kernel, width] = (model ?? "gelu:768").split(":");
        return floatCase(e, kernel, Number(width));
      }
      const config = BENCH_MODELS[model ?? ""];
      if (!config) throw new Error(`unknown model ${model}`);
      return { run: randomForward(e, config), macs: forwardMacs({ ...config, patch: config.patchSize }) };
    })();
    cases.set(key, c);
  }
  return c;
}

// The bundle of PUT /bundle, in an instance of its own (the probe's dot path).
let bundle: Model | null = null;

async function bundleRoute(request: Request, url: URL): Promise<Response> {
  if (request.method === "PUT") {
    if (!request.body) throw new Error("PUT /bundle: no body");
    bundle = null;
    bundle = await (await Engine.instantiate(relaxedModule)).load(request.body);
    return Response.json({ ok: true });
  }
  // A restarted Worker (wrangler reloads it when a watched file changes) has no bundle: the client uploads
  // it again on this code.
  if (!bundle)
    return Response.json({ error: "POST /bundle/run before PUT /bundle", code: "no_bundle" }, { status: 409 });
  const n = Number(url.searchParams.get("n") ?? 1);
  if (!Number.isInteger(n) || n < 0 || n > 10_000)
    return Response.json(
      { error: `n must be an integer from 0 to 10000, not ${url.searchParams.get("n")}` },
      { status: 400 },
    );
  const pixels = new Float32Array(await request.arrayBuffer());
  const input = bundle.input();
  if (pixels.length !== input.length) throw new Error(`expected ${input.length} pixel values, got ${pixels.length}`);
  input.set(pixels);
  // n = 0 answers as many numbers as a run would, so that its time is the request's overhead alone.
  const c = bundle.header.config;
  let output: number[] = new Array(outputLength(c)).fill(0);
  for (let i = 0; i < n; i++) {
    if (i > 0) input.set(pixels); // the pass overwrites its input
    output = Array.from(outputOf(bundle.run(), c));
  }
  return Response.json({ output });
}

export default {
  async fetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    const q = url.searchParams;
    try {
      if (url.pathname === "/healthz") return Response.json({ ok: true });
      if (url.pathname === "/bundle" || url.pathname === "/bundle/run") return await bundleRoute(request, url);
      if (url.pathname === "/probe") {
        const e = await instance(null);
        return Response.json({ probe: e.probeDot(), path: e.dotPath() });
      }
      if (["/ceiling", "/forward", "/gemm", "/float"].includes(url.pathname)) {
        const what =
          q.get("model") ?? q.get("shape") ?? (q.has("kernel") ? `${q.get("kernel")}:${q.get("width")}` : null);
        const c = await makeCase(url.pathname.slice(1), q.get("dot"), what);
        const n = Number(q.get("n") ?? 1);
        for (let i = 0; i < n; i++) c.run();
        return Response.json({ macs: c.macs * n });
      }
      return new Response("not found", { status: 404 });
    } catch (error) {
      return Response.json({ error: String(error) }, { status: 500 });
    }
  },
};
