// The engine timed inside workerd (wrangler dev, the runtime the Worker is deployed on), each dot path
// forced in turn: the register-only dot ceiling and whole forward passes on random models. Requests are
// timed by this client; every case runs in interleaved rounds and the best round counts (shared machine).
//
//   node bench/workerd.ts [--models deit-tiny,vit-b16] [--rounds N]
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { cacheDir } from "./artifacts.ts";
import { DevServer } from "./wrangler.ts";

const { values: opts } = parseArgs({
  options: { models: { type: "string", default: "deit-tiny,vit-b16" }, rounds: { type: "string", default: "5" } },
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
  const body = (await response.json()) as Record<string, number>;
  const ms = performance.now() - t0;
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status} ${JSON.stringify(body)}`);
  return { ms, body };
}

const { server } = await DevServer.start(join(cacheDir, "wrangler-kernels"), 120_000, "bench/kernels-wrangler.toml");
try {
  const base = server.url;
  const probe = (await get(`${base}/probe`)).body;
  let overhead = Infinity;
  for (let i = 0; i < 20; i++) overhead = Math.min(overhead, (await get(`${base}/healthz`)).ms);

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
} finally {
  await server.stop();
}
