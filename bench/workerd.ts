// The engine timed inside workerd (wrangler dev, the runtime the Worker is deployed on), each dot path
// forced in turn: the register-only dot ceiling and whole forward passes on random models. Requests are
// timed by this client; every case runs in interleaved rounds and the best round counts (shared machine).
//
//   node bench/workerd.ts [--models deit-tiny,vit-b16] [--rounds N]
//   node bench/workerd.ts --profile      DeiT-Tiny's kernels one by one (fused path), per forward pass
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { cacheDir } from "./artifacts.ts";
import { jsonBody } from "./systems.ts";
import { DevServer } from "./wrangler.ts";

const { values: opts } = parseArgs({
  options: {
    models: { type: "string", default: "deit-tiny,vit-b16" },
    rounds: { type: "string", default: "5" },
    profile: { type: "boolean", default: false },
  },
});
const rounds = Number(opts.rounds);
const models = opts.models.split(",").filter(Boolean);
const PATHS = ["split", "fused"] as const;
// repetitions per request: long enough that the ~1 ms of HTTP is small, short enough to interleave
const REPEAT: Record<string, number> = { ceiling: 30, gemm: 10, "deit-tiny": 5, "deit-small": 2, "vit-b16": 1 };
// ViT-B/16's fc1 and DeiT-Tiny's fc1 and attention scores (K = 64: Q K^T; K = 208: P V, 197 tokens padded)
const GEMMS = ["768x3072", "192x768", "64x197", "197x64"];

export function cpuInfo(): { model: string; avxVnni: boolean; avx512Vnni: boolean } {
  const lscpu = execFileSync("lscpu", { encoding: "utf8" });
  const flags = lscpu.match(/^Flags:\s*(.+)$/m)?.[1].split(/\s+/) ?? [];
  return {
    model: lscpu.match(/^Model name:\s*(.+)$/m)?.[1].trim() ?? "?",
    avxVnni: flags.includes("avx_vnni"),
    avx512Vnni: flags.includes("avx512_vnni"),
  };
}

async function get(url: string): Promise<{ ms: number; body: Record<string, number> }> {
  const t0 = performance.now();
  const response = await fetch(url);
  const body = (await jsonBody(response, url)) as Record<string, number>;
  return { ms: performance.now() - t0, body };
}

// DeiT-Tiny's calls per forward pass (12 layers, 3 heads, 197 tokens): the GEMMs by K x N, the float kernels
// by the width of their 197 rows; query rows are quantized at headDim 64 (strided in the real pass).
const DEIT_TINY_CALLS: [string, string, number][] = [
  ["gemm qkv 192x576", "gemm?shape=192x576", 12],
  ["gemm attention.output 192x192", "gemm?shape=192x192", 12],
  ["gemm fc1 192x768", "gemm?shape=192x768", 12],
  ["gemm fc2 768x192", "gemm?shape=768x192", 12],
  ["gemm scores Q K^T (K = 64)", "gemm?shape=64x197", 36],
  ["gemm context P V (K = 208)", "gemm?shape=197x64", 36],
  ["layerNorm [197x192]", "float?kernel=layerNorm&width=192", 25],
  ["gelu [197x768]", "float?kernel=gelu&width=768", 12],
  ["quantizeRows [197x192]", "float?kernel=quantizeRows&width=192", 36],
  ["quantizeRows [197x768]", "float?kernel=quantizeRows&width=768", 12],
  ["quantizeRows Q [197x64]", "float?kernel=quantizeRows&width=64", 36],
  ["softmaxQuantize [197x197]", "float?kernel=softmaxQuantize&width=197", 36],
  ["packRows K [197x64]", "float?kernel=packK&width=64", 36],
  ["packRows V^T [64x197]", "float?kernel=packVt&width=64", 36],
];

// Each kernel with enough repetitions per request (~80 ms) that the request's own cost is small.
async function profile(base: string, overhead: number): Promise<void> {
  const rows: { label: string; us: number; calls: number }[] = [];
  for (const [label, path, calls] of DEIT_TINY_CALLS) {
    const url = (n: number) => `${base}/${path}&dot=fused&n=${n}`;
    await get(url(1));
    const probe = (await get(url(20))).ms;
    const n = Math.max(20, Math.ceil((20 * 80) / Math.max(probe - overhead, 0.5)));
    let best = Infinity;
    for (let r = 0; r < rounds; r++) best = Math.min(best, Math.max((await get(url(n))).ms - overhead, 0) / n);
    rows.push({ label, us: best * 1000, calls });
  }
  const total = rows.reduce((a, r) => a + (r.us * r.calls) / 1000, 0);
  console.log(
    `DeiT-Tiny kernels in workerd, fused path, best of ${rounds}; overhead ${overhead.toFixed(2)} ms subtracted`,
  );
  console.log("");
  console.log("| kernel | us per call | calls per forward | ms per forward | share |");
  console.log("| --- | ---: | ---: | ---: | ---: |");
  for (const r of rows) {
    const ms = (r.us * r.calls) / 1000;
    console.log(
      `| ${r.label} | ${r.us.toFixed(1)} | ${r.calls} | ${ms.toFixed(2)} | ${((100 * ms) / total).toFixed(0)}% |`,
    );
  }
  console.log(`| sum | | | ${total.toFixed(1)} | |`);
}

const { server } = await DevServer.start(join(cacheDir, "wrangler-kernels"), 120_000, "bench/kernels-wrangler.toml");
try {
  const base = server.url;
  const probe = (await get(`${base}/probe`)).body;
  let overhead = Infinity;
  for (let i = 0; i < 20; i++) overhead = Math.min(overhead, (await get(`${base}/healthz`)).ms);
  if (opts.profile) await profile(base, overhead);
  else await compare(base, overhead, probe);
} finally {
  await server.stop();
}

// Every case on both dot paths, interleaved rounds, best of each.
async function compare(base: string, overhead: number, probe: Record<string, number>): Promise<void> {
  interface Case {
    label: string;
    path: (typeof PATHS)[number];
    url: string;
    n: number;
    best: number; // ms per repetition
    macs: number; // per repetition
  }
  const cases: Case[] = [];
  for (const path of PATHS) {
    const n = REPEAT.ceiling;
    cases.push({ label: "ceiling", path, url: `${base}/ceiling?dot=${path}&n=${n}`, n, best: Infinity, macs: 0 });
    for (const shape of GEMMS) {
      const g = REPEAT.gemm;
      const url = `${base}/gemm?shape=${shape}&dot=${path}&n=${g}`;
      cases.push({ label: `gemm 197x${shape}`, path, url, n: g, best: Infinity, macs: 0 });
    }
    for (const model of models) {
      const m = REPEAT[model] ?? 1;
      cases.push({
        label: model,
        path,
        url: `${base}/forward?model=${model}&dot=${path}&n=${m}`,
        n: m,
        best: Infinity,
        macs: 0,
      });
    }
  }
  for (const c of cases) await get(c.url.replace(/n=\d+/, "n=1")); // instantiate, bind, warm up
  for (let r = 0; r < rounds; r++) {
    const order = cases.map((_, k) => cases[(k + r) % cases.length]);
    for (const c of order) {
      const { ms, body } = await get(c.url);
      c.best = Math.min(c.best, Math.max(ms - overhead, 0) / c.n);
      c.macs = body.macs / c.n;
    }
  }
  const cpu = cpuInfo();
  const find = (label: string, path: string) => cases.find((c) => c.label === label && c.path === path)!;
  const gmacs = (c: Case) => c.macs / (c.best / 1000) / 1e9;
  const splitCeiling = gmacs(find("ceiling", "split"));
  const out = (s: string) => console.log(s);
  out(`Date: ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC; CPU: ${cpu.model}`);
  out(`AVX-VNNI: ${cpu.avxVnni ? "yes" : "no"}, AVX512-VNNI: ${cpu.avx512Vnni ? "yes" : "no"}; workerd (wrangler dev)`);
  out(`probe: ${probe.probe} -> path ${["i16", "split", "fused"][probe.path]}; ${rounds} interleaved rounds, best`);
  out(
    `request overhead ${overhead.toFixed(2)} ms subtracted; command: node bench/workerd.ts ${process.argv.slice(2).join(" ")}`,
  );
  out("");
  out(
    "| case | split ms | split GMAC/s | fused ms | fused GMAC/s | fused / split time | % of split ceiling (split, fused) |",
  );
  out("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
  for (const label of ["ceiling", ...GEMMS.map((g) => `gemm 197x${g}`), ...models]) {
    const [s, f] = PATHS.map((p) => find(label, p));
    const pct = (c: Case) => `${((100 * gmacs(c)) / splitCeiling).toFixed(0)}%`;
    out(
      `| ${label} | ${s.best.toFixed(1)} | ${gmacs(s).toFixed(1)} | ${f.best.toFixed(1)} | ${gmacs(f).toFixed(1)} | ` +
        `${(f.best / s.best).toFixed(2)} | ${pct(s)}, ${pct(f)} |`,
    );
  }
}
