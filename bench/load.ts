// Load test: N concurrent uploads of large images to one `wrangler dev` isolate with a ViT-B/16 loaded,
// sampling the isolate's JS heap and ArrayBuffer backing store through the inspector and the models' wasm
// memory from GET /v1/models: does the isolate stay under 128 MiB as N grows, and is every answer a 200 or
// a well-formed 503 busy (issue 19)?
//
//   npm run bench:load [-- --quick] [--n 1,4,8,16,32] [--kinds jpeg-12mp,form-png-24mp,...] [--runs 1]
//                      [--timeout 300] [--cap 60] [--out file.md]
//
// Results go to .cache/bench/load/results.md and results.json (--out: another Markdown file). The exit
// status is 1 when a check fails. All traffic is to this machine's wrangler.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { bucketName, putObject } from "../cli/upload.ts";
import { emptyPoolStats, type PoolStats } from "../core/buffers.ts";
import { MiB } from "../core/sizes.ts";
import { cacheDir, prepareBundle } from "./artifacts.ts";
import { HeapSampler, Inspector } from "./inspector.ts";
import {
  formatLoadReport,
  isolateTotal,
  judge,
  loadChecks,
  multipartForm,
  type LoadInput,
  type LoadMeta,
  type LoadRow,
  type Outcome,
  sumOfPeaks,
} from "./load-report.ts";
import { descendantsNamed, statusBytes } from "./proc.ts";
import { workerLedger, workerWasmBytes } from "./systems.ts";
import { DevServer } from "./wrangler.ts";

const root = new URL("..", import.meta.url).pathname;
const MODEL = "vit-b16";
const IMAGES = join(cacheDir, "load-images"); // bench/load_images.py
const PERSIST = join(cacheDir, "wrangler-load");
const OUT = join(cacheDir, "load");
const SAMPLE_MS = 20;

// The images of bench/load_images.py, each sent raw (`<name>`) and as the `image` field of a multipart
// form (`form-<name>`).
const IMAGE_FILES = {
  "jpeg-12mp": {
    file: "baseline-12mp.jpg",
    type: "image/jpeg",
    width: 4000,
    height: 3000,
    what: "baseline JPEG, 4:2:0",
  },
  "jpeg-24mp": {
    file: "baseline-24mp.jpg",
    type: "image/jpeg",
    width: 6000,
    height: 4000,
    what: "baseline JPEG, 4:2:0",
  },
  "jpeg-12mp-progressive": {
    file: "progressive-12mp.jpg",
    type: "image/jpeg",
    width: 4000,
    height: 3000,
    what: "progressive JPEG, 4:2:0",
  },
  "png-24mp": { file: "rgb-24mp.png", type: "image/png", width: 6000, height: 4000, what: "RGB PNG" },
};
type ImageName = keyof typeof IMAGE_FILES;
const KINDS = [...Object.keys(IMAGE_FILES), ...Object.keys(IMAGE_FILES).map((name) => `form-${name}`)];
// Baseline JPEGs stream into the decoder: at N <= 8 they should never be refused.
const STREAMING_KINDS = ["jpeg-12mp", "form-jpeg-12mp"];

const { values: opts } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    n: { type: "string" },
    kinds: { type: "string" },
    runs: { type: "string" },
    timeout: { type: "string", default: "300" }, // seconds, per request
    cap: { type: "string", default: "60" }, // minutes, the whole run
    out: { type: "string" },
  },
});
const positive = (text: string, what: string): number => {
  const x = Number(text);
  if (!Number.isInteger(x) || x < 1) throw new Error(`${what} must be a positive whole number, not ${text}`);
  return x;
};
const ns = (opts.n ?? (opts.quick ? "1,4" : "1,4,8,16,32")).split(",").map((n) => positive(n, "--n"));
const kinds = (opts.kinds ?? (opts.quick ? "jpeg-12mp,form-jpeg-12mp" : KINDS.join(","))).split(",");
for (const kind of kinds)
  if (!KINDS.includes(kind)) throw new Error(`unknown kind ${kind}: choose from ${KINDS.join(", ")}`);
const runs = positive(opts.runs ?? "1", "--runs");
const timeoutMs = positive(opts.timeout, "--timeout") * 1000;
const capMs = positive(opts.cap, "--cap") * 60_000;

interface Upload {
  input: LoadInput;
  body: Uint8Array;
  contentType: string;
  width: number;
  height: number;
}

function uploads(): Upload[] {
  const script = join(root, "bench", "load_images.py");
  const done = join(IMAGES, "done");
  if (!existsSync(done) || statSync(done).mtimeMs < statSync(script).mtimeMs) {
    console.log("bench:load: making the images (bench/load_images.py)");
    execFileSync("/usr/bin/python3", [script, IMAGES], { stdio: "inherit" });
  }
  return kinds.map((kind) => {
    const name = kind.replace(/^form-/, "") as ImageName;
    const image = IMAGE_FILES[name];
    const bytes = new Uint8Array(readFileSync(join(IMAGES, image.file)));
    const form = kind.startsWith("form-");
    const { body, contentType } = form
      ? multipartForm("image", image.file, image.type, bytes, "edgevit-load-test-boundary")
      : { body: bytes, contentType: image.type };
    const mp = Math.round((image.width * image.height) / 1e6);
    const description = `${mp} MP ${image.what} (${image.width}x${image.height}), ${form ? "multipart form" : "raw"}`;
    return {
      input: { kind, description, bytes: body.length },
      body,
      contentType,
      width: image.width,
      height: image.height,
    };
  });
}

// The whole run's cap and the signals end the run the same way: requests in flight are aborted, no round
// starts, the rows measured so far are reported and wrangler is stopped.
const halt = new AbortController();
setTimeout(() => halt.abort(new Error(`the run's cap of ${opts.cap} minute(s) was reached`)), capMs).unref();

// Node's fetch: undici's global agent keeps connections alive and opens as many as there are requests.
async function classify(url: string, upload: Upload): Promise<{ outcome: Outcome; ms: number }> {
  const started = performance.now();
  try {
    const response = await fetch(`${url}/v1/classify?model=${MODEL}`, {
      method: "POST",
      headers: { "content-type": upload.contentType },
      body: upload.body as Uint8Array<ArrayBuffer>,
      signal: AbortSignal.any([halt.signal, AbortSignal.timeout(timeoutMs)]),
    });
    const body = await response.text();
    const answer = { status: response.status, retryAfter: response.headers.get("retry-after"), body };
    return { outcome: judge(answer, upload), ms: performance.now() - started };
  } catch (error) {
    const e = error as Error;
    const detail =
      e.name === "TimeoutError"
        ? `no answer within ${timeoutMs / 1000} s`
        : halt.signal.aborted
          ? (halt.signal.reason as Error).message
          : `${e.message}${e.cause ? ` (${(e.cause as Error).message})` : ""}`;
    return { outcome: { kind: "failed", detail }, ms: performance.now() - started };
  }
}

// One round: N uploads at once, the heap sampled until the last answer. The inspector answers only between
// the isolate's tasks, so workerd's peak resident memory is taken too (VmHWM, reset before the round:
// writing 5 to clear_refs): it also sees what a synchronous stretch allocates and frees.
async function round(dev: DevServer, inspector: Inspector, upload: Upload, n: number, row: LoadRow): Promise<void> {
  await inspector.collectGarbage();
  const pid = await dev.workerdPid();
  writeFileSync(`/proc/${pid}/clear_refs`, "5");
  const idleRss = statusBytes(pid, "VmRSS");
  const before = (await workerLedger(dev.url)).pool;
  const sampler = new HeapSampler(inspector, SAMPLE_MS);
  const answers = await Promise.all(Array.from({ length: n }, () => classify(dev.url, upload)));
  const peaks = await sampler.stop();
  if ((await dev.workerdPid()) !== pid) throw new Error("wrangler restarted the Worker during a round");
  row.rssGrowthPeak = Math.max(row.rssGrowthPeak, statusBytes(pid, "VmHWM") - idleRss);
  const ledger = await workerLedger(dev.url);
  // The models' wasm memory and the decode kernels' (outside the ledger's count, never given back).
  row.wasmBytes = Math.max(row.wasmBytes, (await workerWasmBytes(dev.url)) + ledger.kernelBytes);
  row.ledgerPeak = Math.max(row.ledgerPeak ?? 0, ledger.peakBytes);
  const pool = row.pool ?? emptyPoolStats();
  for (const key of Object.keys(pool) as (keyof PoolStats)[]) {
    pool[key] += ledger.pool[key] - before[key];
  }
  row.pool = pool;
  row.heapUsedPeak = Math.max(row.heapUsedPeak, peaks.usedSize);
  row.heapCommittedPeak = Math.max(row.heapCommittedPeak, peaks.totalSize);
  row.backingStorePeak = Math.max(row.backingStorePeak, peaks.backingStorageSize);
  row.committedAndBackingPeak = Math.max(row.committedAndBackingPeak, peaks.committedAndBacking);
  row.samples += peaks.samples;
  row.maxSampleGapMs = Math.max(row.maxSampleGapMs, peaks.maxGapMs);
  for (const { outcome, ms } of answers) {
    if (outcome.kind === "failed") row.failures.push(outcome.detail);
    else {
      row.latenciesMs.push(ms);
      if (outcome.kind === "ok") row.ok++;
      else row.busy++;
    }
  }
}

function cpuInfo(): { cpu: string; flags: string } {
  const text = readFileSync("/proc/cpuinfo", "utf8");
  const field = (name: string) => text.match(new RegExp(`^${name}\\s*:\\s*(.*)$`, "m"))?.[1].trim() ?? "?";
  return { cpu: field("model name"), flags: field("flags") };
}

const version = (pkg: string): string =>
  JSON.parse(readFileSync(join(root, "node_modules", pkg, "package.json"), "utf8")).version;

// wrangler and the workerd processes under it end with this process, however it ends.
let server: DevServer | null = null;
function killServer(): void {
  const child = server?.process;
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  for (const pid of descendantsNamed(child.pid!, "workerd")) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // exited meanwhile
    }
  }
  child.kill("SIGKILL");
}
process.on("exit", killServer);
let signalled = false;
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.once(signal, () => {
    console.error(`bench:load: ${signal}: stopping`);
    signalled = true;
    halt.abort(new Error(`stopped by ${signal}`));
    setTimeout(() => process.exit(130), 20_000).unref(); // the exit handler still stops wrangler
  });
}

const started = performance.now();
const inputs = uploads();
const bundle = prepareBundle(MODEL);
putObject(bucketName(), bundle.evit, MODEL, { remote: false, persistTo: PERSIST, quiet: true });
const rows: LoadRow[] = [];
let inspector: Inspector | null = null;
let note: string | null = null;
let wasm = 0; // the loaded model's wasm memory after the warm-up
let kernels = 0; // the decode kernels' wasm memory after the warm-up
try {
  console.log("bench:load: starting wrangler dev");
  server = (await DevServer.start(PERSIST)).server;
  const url = server.url;
  inspector = await Inspector.connect(server.inspectorPort);
  // Warm-up: the model loads, then each input once (the decoders' code compiles), every answer a 200.
  for (const upload of inputs) {
    const { outcome, ms } = await classify(url, upload);
    if (outcome.kind !== "ok")
      throw new Error(`warm-up ${upload.input.kind}: ${outcome.kind === "failed" ? outcome.detail : "503 busy"}`);
    console.log(`bench:load: warm-up ${upload.input.kind}: ${(ms / 1000).toFixed(2)} s`);
  }
  wasm = await workerWasmBytes(url);
  kernels = (await workerLedger(url)).kernelBytes;
  for (const upload of inputs) {
    for (const n of ns) {
      if (halt.signal.aborted) break;
      const row: LoadRow = {
        kind: upload.input.kind,
        n,
        runs: 0,
        ok: 0,
        busy: 0,
        failures: [],
        heapUsedPeak: 0,
        heapCommittedPeak: 0,
        backingStorePeak: 0,
        committedAndBackingPeak: 0,
        wasmBytes: wasm + kernels,
        rssGrowthPeak: 0,
        latenciesMs: [],
        samples: 0,
        maxSampleGapMs: 0,
      };
      for (let r = 0; r < runs && !halt.signal.aborted; r++) {
        await round(server, inspector, upload, n, row);
        row.runs++;
      }
      rows.push(row);
      console.log(
        `bench:load: ${row.kind} N=${n}: ${row.ok} ok, ${row.busy} busy, ${row.failures.length} failed; ` +
          `isolate total ${(isolateTotal(row) / MiB).toFixed(1)} MiB, sum of peaks ${(sumOfPeaks(row) / MiB).toFixed(1)} MiB ` +
          `(${row.samples} samples); pool: ` +
          `${row.pool?.allocated} made (${((row.pool?.allocatedBytes ?? 0) / MiB).toFixed(1)} MiB), ${row.pool?.reused} reused, ` +
          `${row.pool?.dropped} dropped (${((row.pool?.droppedBytes ?? 0) / MiB).toFixed(1)} MiB), ` +
          `${((row.pool?.acquiredBytes ?? 0) / MiB).toFixed(1)} MiB handed out`,
      );
    }
  }
} catch (error) {
  if (!halt.signal.aborted) {
    note = (error as Error).message.split("\n")[0];
    console.error(`bench:load: ${(error as Error).stack ?? error}`);
  }
} finally {
  inspector?.close();
  await server?.stop();
}
if (halt.signal.aborted) note = (halt.signal.reason as Error).message;

const { cpu, flags } = cpuInfo();
const meta: LoadMeta = {
  command: `npm run bench:load${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(" ")}` : ""}`,
  date: `${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC`,
  cpu,
  flags,
  cores: cpus().length,
  node: process.version,
  workerd: version("workerd"),
  wrangler: version("wrangler"),
  model: `${MODEL}, random weights${wasm ? `, ${(wasm / MiB).toFixed(1)} MiB of wasm memory loaded` : ""}`,
  runs,
  sampleMs: SAMPLE_MS,
  timeoutS: timeoutMs / 1000,
  note,
};
const checks = loadChecks(rows, STREAMING_KINDS);
if (note) checks.push({ ok: false, text: `the run stopped early: ${note}` });
const report = formatLoadReport(
  inputs.map((u) => u.input),
  rows,
  checks,
  meta,
);
mkdirSync(OUT, { recursive: true });
const out = opts.out ?? join(OUT, "results.md");
writeFileSync(out, report);
writeFileSync(join(OUT, "results.json"), JSON.stringify({ meta, inputs: inputs.map((u) => u.input), rows }, null, 2));
console.log(`\n${report}`);
console.log(`bench:load: ${((performance.now() - started) / 1000).toFixed(0)} s; wrote ${out}`);
process.exitCode = signalled ? 130 : checks.every((c) => c.ok) ? 0 : 1;
