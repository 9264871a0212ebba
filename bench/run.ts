// End-to-end benchmark: edgevit (Node and workerd) against onnxruntime-web (float32 and dynamic int8) on the
// same ViTs and image towers (CLIP, SigLIP, DINOv2), the same weights and the same inputs, on this machine,
// in one run.
//
//   npm run bench [-- --quick] [-- --models vit-b16,deit-small,deit-tiny,clip-b32,siglip-b16,dinov2-b,smolvlm-512]
//                 [--rounds N] [--images N] [--no-worker] [--write | --no-write]
//
// A full run writes the "End to end" section of BENCHMARKS.md for the ViTs and the "Image towers end to
// end" section for the towers; --quick (1 round, 1 image, 1 cold start) only prints unless --write is given.
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { inspectImage, preprocessInto } from "../core/pipeline.ts";
import { DEFAULT_LIMITS } from "../core/limits.ts";
import { readWranglerConfig } from "../cli/wrangler-config.ts";
import { int8CeilingGmacs } from "./ceiling.ts";
import {
  cacheDir,
  installNodeLatest,
  installOrt,
  NODE_LATEST_VERSION,
  ORT_VERSION,
  prepareLargeJpeg,
  prepareModel,
  preparePhonePhotos,
  prepareSmallJpeg,
  type ModelFiles,
  SetupError,
  TOWER_PRESETS,
} from "./artifacts.ts";
import { settingsOf, uploadFit } from "./memory-fit.ts";
import {
  formatReport,
  writeSection,
  type ColdStart,
  type Meta,
  type ModelResult,
  type PhoneResult,
  type SystemResult,
} from "./report.ts";
import { cosine, forwardMacs, maxAbsDiff, summarize } from "./stats.ts";
import { classify, NodeSystem, WorkerForwardSystem, WorkerSystem, workerWasmBytes, type System } from "./systems.ts";
import { statusBytes } from "./proc.ts";
import { DevServer } from "./wrangler.ts";
import { bucketName, putObject } from "../cli/upload.ts";
import { installNodeDecodeKernels } from "../cli/node-engine.ts";

const root = new URL("..", import.meta.url).pathname;
const PRESETS = ["vit-b16", "deit-small", "deit-tiny", ...Object.keys(TOWER_PRESETS)];
const JPEG = join(root, "test/fixtures/images/cat-baseline-420.jpg"); // 451x300 baseline 4:2:0
const WORKER_PERSIST = join(cacheDir, "wrangler");
const KERNELS_PERSIST = join(cacheDir, "wrangler-kernels");

// ORT float32 must reproduce the PyTorch float32 reference (models/tools/reference.py) up to summation
// order; the int8 systems must stay close to it.
const F32_TOLERANCE = (scale: number) => 1e-4 + 1e-4 * scale;
const INT8_MIN_COSINE = 0.99;
const SAME_ENGINE_TOLERANCE = 1e-4; // the Worker and the Node host run the same engine on the same pixels
// The 12 MP phone JPEG's requests (and as many 224x224 ones, interleaved) after one warm-up each, whatever
// --rounds says: a request is a few forward passes long.
const PHONE_REQUESTS = 7;

const { values: opts } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    models: { type: "string", default: PRESETS.join(",") },
    rounds: { type: "string" },
    images: { type: "string" },
    worker: { type: "boolean", default: true },
    write: { type: "boolean" },
  },
  allowNegative: true,
});
const presets = opts.models.split(",").filter(Boolean);
for (const p of presets)
  if (!PRESETS.includes(p)) throw new Error(`unknown model ${p}: choose from ${PRESETS.join(", ")}`);
const rounds = Number(opts.rounds ?? (opts.quick ? 1 : 5));
const maxImages = Number(opts.images ?? (opts.quick ? 1 : 3));
const coldStarts = opts.quick ? 1 : 3;
const write = opts.write ?? !opts.quick;

const failures: string[] = [];
function check(ok: boolean, text: string, checks: string[]): void {
  checks.push(`${ok ? "ok" : "FAILED"}: ${text}`);
  if (!ok) failures.push(text);
}

function firstLine(error: unknown): string {
  return String((error as Error).message ?? error).split("\n")[0];
}

// Fresh `wrangler dev` servers, each timed from spawn to its first classify answer; the last one is kept.
// Also returns, for the kept one, workerd's resident memory before the model was loaded and the wasm memory
// after.
async function coldStartWorker(
  preset: string,
  evit: string,
  jpeg: Uint8Array,
): Promise<{ server: DevServer; cold: ColdStart; loaded: { runtimeRss: number; wasmBytes: number } }> {
  putObject(bucketName(), evit, preset, { remote: false, persistTo: WORKER_PERSIST, quiet: true });
  const cold: ColdStart = { firstAnswerMs: [], spawnToAnswerMs: [] };
  for (let k = 0; ; k++) {
    const { server, startedAt } = await DevServer.start(WORKER_PERSIST);
    let loaded: { runtimeRss: number; wasmBytes: number };
    try {
      const runtimeRss = statusBytes(await server.workerdPid(), "VmRSS");
      const first = await classify(server.url, preset, jpeg);
      cold.firstAnswerMs.push(first.ms);
      cold.spawnToAnswerMs.push(performance.now() - startedAt);
      loaded = { runtimeRss, wasmBytes: await workerWasmBytes(server.url) };
    } catch (error) {
      await server.stop();
      throw error;
    }
    if (k === coldStarts - 1) return { server, cold, loaded };
    await server.stop();
  }
}

async function benchModel(files: ModelFiles, ortModule: string, jpeg: Uint8Array, meta: Meta): Promise<ModelResult> {
  const { preset, shape, output } = files;
  const classifier = files.header.config.classes > 0;
  const checks: string[] = [];
  const images = Math.min(maxImages, files.inputs.length);
  console.log(`bench: ${preset}: ${files.inputs.length} inputs, timing ${rounds} rounds x ${images} image(s)`);

  // The Worker's JPEG path (POST /v1/classify, cold starts) for the classifiers; a tower's forward pass in
  // workerd is timed by the benchmark Worker below.
  let worker: WorkerSystem | null = null;
  let cold: ColdStart | null = null;
  // The same isolate posted the 12 MP phone JPEG and its 224x224 copy.
  let phoneWorker: WorkerSystem | null = null;
  let smallWorker: WorkerSystem | null = null;
  if (opts.worker && !meta.workerNote && classifier) {
    try {
      const started = await coldStartWorker(preset, files.evit, jpeg);
      worker = new WorkerSystem(started.server, preset, jpeg, started.loaded);
      phoneWorker = new WorkerSystem(started.server, preset, phoneJpeg, started.loaded, "edgevit-workerd-12mp");
      smallWorker = new WorkerSystem(started.server, preset, smallJpeg, started.loaded, "edgevit-workerd-224");
      cold = started.cold;
    } catch (error) {
      meta.workerNote = `the Worker did not answer (${firstLine(error)})`;
      console.log(`bench: ${preset}: ${meta.workerNote}`);
    }
  }

  const started: System[] = worker ? [worker] : [];
  const start = async (system: "edgevit" | "ort-int8" | "ort-f32", latest = false) => {
    const s = await NodeSystem.start(system, files.dir, ortModule, files.inputs, latest ? nodeLatest : undefined);
    started.push(s);
    return s;
  };
  try {
    const edgevit = await start("edgevit");
    const edgevitLatest = await start("edgevit", true);
    const ortInt8 = await start("ort-int8");
    const ortInt8Latest = await start("ort-int8", true);
    const ortF32 = await start("ort-f32");
    // The forward pass alone in workerd: the same bundle and pixel values as the Node systems.
    let forward: WorkerForwardSystem | null = null;
    if (opts.worker && !meta.forwardNote) {
      let server: DevServer | null = null;
      try {
        server = (await DevServer.start(KERNELS_PERSIST, 120_000, "bench/kernels-wrangler.toml")).server;
        forward = await WorkerForwardSystem.start(server, files.evit, files.inputs);
        started.push(forward);
      } catch (error) {
        await server?.stop();
        meta.forwardNote = `${preset}: the benchmark Worker did not answer (${firstLine(error)})`;
        console.log(`bench: ${preset}: edgevit-workerd-forward not timed: ${meta.forwardNote}`);
      }
    }
    meta.edgevitBuild = String(edgevit.info.build);
    const cosines = new Map<string, number>();
    let jpegMs: number | null = null; // decode + preprocess of the Worker's JPEG, in Node

    // Every input once through every Node system (also the warm-up), against the float32 reference.
    const outputs = new Map<System, Float32Array[]>();
    for (const system of [edgevit, edgevitLatest, ...(forward ? [forward] : []), ortInt8, ortInt8Latest, ortF32]) {
      const answers: Float32Array[] = [];
      for (let i = 0; i < files.inputs.length; i++) answers.push((await system.run(i)).logits);
      outputs.set(system, answers);
      cosines.set(system.name, Math.min(...answers.map((l, i) => cosine(l, files.reference[i]))));
    }
    const f32Diff = Math.max(...outputs.get(ortF32)!.map((l, i) => maxAbsDiff(l, files.reference[i])));
    // a loop, not a spread: a VLM's image tokens are 36,864 values an image
    const scale = files.reference.reduce((m, l) => l.reduce((n, v) => Math.max(n, Math.abs(v)), m), 0);
    check(
      f32Diff <= F32_TOLERANCE(scale),
      `ORT float32 ${output} match the PyTorch float32 reference: max |diff| ${f32Diff.toExponential(2)} (values up to ${scale.toFixed(2)}, tolerance ${F32_TOLERANCE(scale).toExponential(1)})`,
      checks,
    );
    for (const system of [ortInt8, ortInt8Latest, edgevit, edgevitLatest, ...(forward ? [forward] : [])]) {
      const c = cosines.get(system.name)!;
      check(
        c >= INT8_MIN_COSINE,
        `${system.name} ${output} vs the float32 reference: cosine >= ${c.toFixed(5)} over ${files.inputs.length} inputs (limit ${INT8_MIN_COSINE})`,
        checks,
      );
    }
    if (forward) {
      const diff = Math.max(...outputs.get(forward)!.map((l, i) => maxAbsDiff(l, outputs.get(edgevit)![i])));
      check(
        diff <= SAME_ENGINE_TOLERANCE,
        `the forward pass in workerd gives the Node host's ${output} on the same pixels: max |diff| ${diff.toExponential(2)}`,
        checks,
      );
    }

    if (worker) {
      // The Worker's own decoding and preprocessing of the JPEG (the default decode=fast), through ORT float32
      // and the Node host.
      const pixels = new Float32Array(shape.channels * shape.imageSize * shape.imageSize);
      const decodeTimes: number[] = [];
      for (let k = 0; k < 5; k++) {
        const t0 = performance.now();
        await preprocessInto(files.header.preprocessing, jpeg, { maxPixels: 1 << 26 }, () => pixels);
        decodeTimes.push(performance.now() - t0);
      }
      jpegMs = summarize(decodeTimes).median;
      const reference = (await ortF32.runPixels(pixels)).logits;
      const node = (await edgevit.runPixels(pixels)).logits;
      const served = (await worker.run()).logits;
      cosines.set(worker.name, cosine(served, reference));
      const diff = maxAbsDiff(served, node);
      check(
        diff <= SAME_ENGINE_TOLERANCE,
        `the Worker's logits for the JPEG equal the Node host's on the same preprocessed pixels: max |diff| ${diff.toExponential(2)}`,
        checks,
      );
    }

    // Round-robin: each round every system runs the same images; the first system rotates.
    const systems: System[] = [
      edgevit,
      edgevitLatest,
      ...(worker ? [worker] : []),
      ...(forward ? [forward] : []),
      ortInt8,
      ortInt8Latest,
      ortF32,
    ];
    const times = new Map<System, number[]>(systems.map((s) => [s, []]));
    const forwardCpu: number[] = []; // edgevit-workerd-forward's CPU time per pass
    for (let r = 0; r < rounds; r++) {
      const order = systems.map((_, k) => systems[(k + r) % systems.length]);
      for (const system of order) {
        for (let i = 0; i < images; i++) {
          const timed = await system.run(i);
          times.get(system)!.push(timed.ms);
          if (system === forward && timed.cpuMs !== undefined) forwardCpu.push(timed.cpuMs);
        }
      }
      console.log(
        `bench: ${preset}: round ${r + 1}/${rounds}: ${order.map((s) => `${s.name} ${summarize(times.get(s)!).median.toFixed(1)} ms`).join(", ")}`,
      );
    }

    // The 12 MP phone JPEG end to end beside the forward pass, after the rounds: its answer against the Node
    // host's on the Worker's own preprocessing of it, then its requests interleaved with the 224x224 ones.
    let phone: PhoneResult | null = null;
    if (phoneWorker && smallWorker) {
      const pixels = new Float32Array(shape.channels * shape.imageSize * shape.imageSize);
      const nodeTimes: number[] = [];
      const nodeCpu: number[] = [];
      await preprocessInto(files.header.preprocessing, phoneJpeg, { maxPixels: 1 << 26 }, () => pixels); // warm-up
      for (let k = 0; k < 5; k++) {
        const t0 = performance.now();
        const c0 = process.cpuUsage();
        await preprocessInto(files.header.preprocessing, phoneJpeg, { maxPixels: 1 << 26 }, () => pixels);
        const c = process.cpuUsage(c0);
        nodeTimes.push(performance.now() - t0);
        nodeCpu.push((c.user + c.system) / 1000);
      }
      const node = (await edgevit.runPixels(pixels)).logits;
      const served = (await phoneWorker.run()).logits;
      const diff = maxAbsDiff(served, node);
      check(
        diff <= SAME_ENGINE_TOLERANCE,
        `the Worker's logits for the 12 MP JPEG equal the Node host's on the same preprocessed pixels: max |diff| ${diff.toExponential(2)}`,
        checks,
      );
      await smallWorker.run();
      const requestMs: number[] = [];
      const smallMs: number[] = [];
      const requestCpu: number[] = [];
      const smallCpu: number[] = [];
      for (let k = 0; k < PHONE_REQUESTS; k++) {
        const large = await phoneWorker.run();
        const small = await smallWorker.run();
        requestMs.push(large.ms);
        smallMs.push(small.ms);
        if (large.cpuMs !== undefined) requestCpu.push(large.cpuMs);
        if (small.cpuMs !== undefined) smallCpu.push(small.cpuMs);
      }
      phone = {
        bytes: phoneJpeg.byteLength,
        requestMs: summarize(requestMs),
        smallMs: summarize(smallMs),
        forwardMs: forward ? summarize(times.get(forward)!).median : null,
        requestCpuMs: summarize(requestCpu),
        smallCpuMs: summarize(smallCpu),
        forwardCpuMs: forwardCpu.length ? summarize(forwardCpu).median : null,
        nodeMs: summarize(nodeTimes).median,
        nodeCpuMs: summarize(nodeCpu).median,
      };
      const per = (a: number, b: number | null, what: string) => (b ? `, ${(a / b).toFixed(2)}x ${what}` : "");
      console.log(
        `bench: ${preset}: 12 MP JPEG ${phone.requestMs.median.toFixed(1)} ms${per(phone.requestMs.median, phone.smallMs.median, "the 224x224 one")}` +
          `${per(phone.requestMs.median, phone.forwardMs, "the forward pass alone")}; CPU ${phone.requestCpuMs.median.toFixed(1)} ms` +
          `${per(phone.requestCpuMs.median, phone.smallCpuMs.median, "the 224x224 one")}${per(phone.requestCpuMs.median, phone.forwardCpuMs, "the forward pass alone")}`,
      );
      const restarts = phoneWorker.restarts + smallWorker.restarts;
      if (restarts) {
        checks.push(
          `note: wrangler restarted workerd ${restarts} time(s) during the 12 MP requests; a request that overlapped a restart was redone after the model was loaded again`,
        );
      }
    }

    if (worker?.restarts) {
      checks.push(
        `note: wrangler restarted workerd ${worker.restarts} time(s) during the run (a source file changed); a request that overlapped a restart was redone after the model was loaded again`,
      );
    }
    if (forward?.restarts) {
      checks.push(
        `note: wrangler restarted the benchmark Worker ${forward.restarts} time(s) during the run (a source file changed); the bundle was uploaded and warmed again and the request redone`,
      );
    }

    const results: SystemResult[] = [];
    for (const system of systems) {
      const details = await system.details();
      results.push({
        system: system.name.replace(/^edgevit(?=@|$)/, "edgevit-node"),
        runtime: typeof details.node === "string" ? `Node ${details.node} (V8 ${details.v8})` : "workerd",
        probe: details.probe as number | undefined,
        dot: details.dot as string | undefined,
        latency: summarize(times.get(system)!),
        cosine: cosines.get(system.name) ?? null,
        peakRssBytes: await system.peakRssBytes(),
        wasmBytes: details.wasmBytes as number | undefined,
        largestJsBuffer: details.largestJsBuffer as number | undefined,
        loadMs: details.loadMs as number | undefined,
        runtimeRssBytes: details.runtimeRss as number | undefined,
      });
    }
    const wasmBytes = results.find((r) => r.system === "edgevit-node")?.wasmBytes;
    const fit = wasmBytes === undefined ? null : uploadFit(files.header, wasmBytes, largeUpload, ledger);
    return { preset, output, gmac: forwardMacs(shape) / 1e9, systems: results, cold, jpegMs, fit, phone, checks };
  } finally {
    for (const system of started) await system.stop();
  }
}

function machine(): string {
  const lscpu = execFileSync("lscpu", { encoding: "utf8" });
  const field = (name: string) => lscpu.match(new RegExp(`^${name}:\\s*(.+)$`, "m"))?.[1].trim() ?? "?";
  const flags = field("Flags").split(/\s+/);
  const vnni = ["avx_vnni", "avx512_vnni", "avx_vnni_int8"].filter((f) => flags.includes(f));
  return (
    `${field("Model name")} (family ${field("CPU family")}, model ${field("Model")}; VNNI: ${vnni.join(", ") || "none"}), ` +
    `${field("CPU\\(s\\)")} CPU(s) (${cpus().length} online, shared)`
  );
}

// This process decodes the JPEGs as the Worker does: with the decoders' wasm kernels.
await installNodeDecodeKernels();
const jpeg = new Uint8Array(readFileSync(JPEG));
const phoneJpeg = new Uint8Array(readFileSync(preparePhonePhotos().baseline));
const smallJpeg = new Uint8Array(readFileSync(prepareSmallJpeg()));
// Each model's memory beside the largest upload the limits take: a 24 MP phone JPEG, by the Worker's ledger
// with wrangler.toml's settings.
const largeJpeg = new Uint8Array(readFileSync(prepareLargeJpeg()));
const largeUpload = {
  bodyBytes: largeJpeg.byteLength,
  decoder: await inspectImage(new Blob([largeJpeg]).stream(), DEFAULT_LIMITS),
};
const ledger = settingsOf(readWranglerConfig().vars);
const ortModule = installOrt();
const nodeLatest = { execPath: installNodeLatest(), label: `node${NODE_LATEST_VERSION.split(".")[0]}` };
let models: ModelFiles[];
try {
  models = presets.map(prepareModel);
} catch (error) {
  if (!(error instanceof SetupError)) throw error;
  console.error(`bench: ${error.message}`);
  process.exit(1);
}
const meta: Meta = {
  command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(" ")}` : ""}`,
  date: `${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC`,
  machine: machine(),
  load: { start: loadavg()[0], end: null },
  node: process.version,
  nodeLatest: NODE_LATEST_VERSION,
  ort: ORT_VERSION,
  edgevitBuild: "?",
  rounds,
  images: Math.min(maxImages, ...models.map((m) => m.inputs.length)),
  ceilingGmacs: int8CeilingGmacs(),
  workerNote: opts.worker ? null : "--no-worker",
  forwardNote: opts.worker ? null : "--no-worker",
};

const results: ModelResult[] = [];
for (const files of models) results.push(await benchModel(files, ortModule, jpeg, meta));
meta.load.end = loadavg()[0];

// The ViTs and the towers each have their section; a run rewrites the sections of the models it ran.
const sections = [
  { title: "End to end", models: results.filter((r) => !(r.preset in TOWER_PRESETS)) },
  { title: "Image towers end to end", models: results.filter((r) => r.preset in TOWER_PRESETS) },
].filter((s) => s.models.length > 0);
const reports = sections.map((s) => ({ ...s, report: formatReport(s.models, meta) }));
for (const r of reports) console.log(`\n## ${r.title}\n\n${r.report}`);
writeFileSync(join(cacheDir, "results.json"), JSON.stringify({ meta, results }, null, 2));
if (failures.length) {
  console.error(`bench: ${failures.length} check(s) failed; BENCHMARKS.md left unchanged:\n- ${failures.join("\n- ")}`);
  process.exit(1);
}
if (write) {
  for (const r of reports) {
    writeSection(join(root, "BENCHMARKS.md"), r.title, r.report);
    console.log(`bench: wrote the ${r.title} section of BENCHMARKS.md`);
  }
}
