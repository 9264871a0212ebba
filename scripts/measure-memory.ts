// Measures docs/MEMORY.md's plan: loads a bundle in the Worker under `wrangler dev` (default limits from
// wrangler.toml) and reports the wasm memory (GET /v1/models), the isolate's JS heap (V8 inspector,
// Runtime.getHeapUsage) and the workerd process's resident memory, cold, after requests, and after the
// largest uploads the limits allow (24 MP PNG and JPEG, a 12 MP phone JPEG).
//
//   node scripts/measure-memory.ts <bundle.evit> [--port 8799]

import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { main as upload } from "../cli/upload.ts";
import { MiB } from "../core/sizes.ts";

const root = new URL("..", import.meta.url).pathname;
const args = process.argv.slice(2);
const portAt = args.indexOf("--port");
const port = portAt >= 0 ? Number(args[portAt + 1]) : 8799;
const bundle = args.find((a, i) => !a.startsWith("--") && (portAt < 0 || i !== portAt + 1));
const inspectorPort = port + 1000;
const name = "memory-probe";
if (!bundle) {
  console.error("usage: node scripts/measure-memory.ts <bundle.evit> [--port 8799]");
  process.exit(2);
}
if ((await upload([bundle, "--name", name])) !== 0) process.exit(1);

const wrangler = spawn(
  process.execPath,
  [
    join(root, "node_modules", "wrangler", "bin", "wrangler.js"),
    "dev",
    "--port",
    String(port),
    "--inspector-port",
    String(inspectorPort),
  ],
  { cwd: root, stdio: "ignore" },
);
const base = `http://localhost:${port}`;
const mib = (bytes: number) => `${(bytes / MiB).toFixed(1)} MiB`; // always MiB: the columns line up

async function ready(): Promise<void> {
  for (let i = 0; i < 120; i++) {
    try {
      if ((await fetch(`${base}/healthz`)).ok) return;
    } catch {}
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error("wrangler dev did not start");
}

// The part of GET /v1/models this script reads.
interface ModelsAnswer {
  models: { name: string; config: { layers: number } }[];
  loaded: unknown;
  memory: { usedBytes: number; budgetBytes: number };
}

// The isolate's V8 heap, through wrangler's inspector proxy (it wants an Origin on localhost).
async function heap(): Promise<{ usedSize: number; totalSize: number }> {
  const ws = new WebSocket(`ws://localhost:${inspectorPort}/ws`, { headers: { origin: "http://localhost" } } as never);
  await new Promise((resolve, reject) => {
    ws.addEventListener("open", resolve);
    ws.addEventListener("error", () => reject(new Error("inspector connection failed")));
  });
  const reply = new Promise<{ usedSize: number; totalSize: number }>((resolve) =>
    ws.addEventListener("message", (e) => {
      const message = JSON.parse(String(e.data));
      if (message.id === 1) resolve(message.result);
    }),
  );
  ws.send(JSON.stringify({ id: 1, method: "Runtime.getHeapUsage" }));
  const result = await reply;
  ws.close();
  return result;
}

// Resident and peak resident memory of the workerd process that runs the Worker: the one under this
// wrangler with an inspector (the other serves wrangler's own proxy).
function workerdMemory(): { rss: number; peak: number } {
  const parentOf = (pid: string) => /PPid:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
  const descends = (pid: string): boolean => {
    for (let p: string | undefined = pid; p && p !== "1"; p = parentOf(p)) if (p === String(wrangler.pid)) return true;
    return false;
  };
  for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8");
      if (!cmdline.includes("workerd") || !cmdline.includes("--inspector-addr") || !descends(pid)) continue;
      const status = readFileSync(`/proc/${pid}/status`, "utf8");
      const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)![1]) * 1024;
      return { rss: kb("VmRSS"), peak: kb("VmHWM") };
    } catch {}
  }
  throw new Error("no workerd process with an inspector under this wrangler");
}

const fixture = (file: string) => readFileSync(join(root, "test", "fixtures", "images", file));

// The costliest uploads the default limits let in, made at run time with Pillow into .cache/memory/: a
// 24 MP (6000x4000) photo as PNG (~10 MiB, under MAX_BODY_BYTES) and as JPEG, and a 12 MP phone JPEG with
// EXIF orientation 6.
const big = join(root, ".cache", "memory");
function largeImages(): Record<string, Uint8Array> {
  mkdirSync(big, { recursive: true });
  const script = `
from PIL import Image
import sys
out = sys.argv[1]
photo = Image.open(sys.argv[2]).convert("RGB")
im = photo.resize((6000, 4000), Image.BICUBIC)
im.save(out + "/24mp.png")
im.save(out + "/24mp.jpg", quality=90)
exif = Image.Exif()
exif[0x0112] = 6
photo.resize((4032, 3024), Image.BICUBIC).save(out + "/12mp-orient6.jpg", quality=90, exif=exif.tobytes())
`;
  if (!existsSync(join(big, "12mp-orient6.jpg"))) {
    execFileSync("/usr/bin/python3", [
      "-c",
      script,
      big,
      join(root, "test", "fixtures", "images", "coffee-progressive.jpg"),
    ]);
  }
  return Object.fromEntries(
    ["24mp.png", "12mp-orient6.jpg", "24mp.jpg"].map((f) => [f, new Uint8Array(readFileSync(join(big, f)))]),
  );
}

async function post(
  path: string,
  image: string | Uint8Array,
  headers: Record<string, string> = {},
): Promise<{ status: number; seconds: number; bytes: number }> {
  const started = performance.now();
  const response = await fetch(`${base}${path}`, {
    method: "POST",
    body: (typeof image === "string" ? fixture(image) : image) as Uint8Array<ArrayBuffer>,
    headers: { "content-type": "image/jpeg", ...headers },
  });
  const bytes = (await response.arrayBuffer()).byteLength;
  return { status: response.status, seconds: (performance.now() - started) / 1000, bytes };
}

async function report(step: string): Promise<void> {
  const h = await heap();
  const p = workerdMemory();
  const models = (await (await fetch(`${base}/v1/models`)).json()) as ModelsAnswer;
  const wasm = models.memory.usedBytes;
  console.log(
    `${step.padEnd(34)} wasm ${mib(wasm).padStart(10)}  JS heap used ${mib(h.usedSize).padStart(9)} of ${mib(h.totalSize).padStart(9)}` +
      `  workerd RSS ${mib(p.rss).padStart(10)} (peak ${mib(p.peak)})`,
  );
}

try {
  await ready();
  await report("started");
  const cold = await post(`/v1/classify?model=${name}`, "cat-baseline-420.jpg");
  console.log(`cold classify: ${cold.status} in ${cold.seconds.toFixed(2)} s (client side, includes the load)`);
  const models = (await (await fetch(`${base}/v1/models`)).json()) as ModelsAnswer;
  console.log("GET /v1/models:", JSON.stringify(models.loaded), JSON.stringify(models.memory));
  await report("after the load");
  for (const image of ["astronaut-444.jpg", "hubble-cmyk.jpg", "coffee-progressive.jpg"]) {
    const warm = await post(`/v1/classify?model=${name}`, image);
    console.log(`warm classify ${image}: ${warm.status} in ${warm.seconds.toFixed(2)} s`);
  }
  await report("after 3 classifications");
  const large = Object.entries(largeImages());
  for (const [file, bytes] of large) {
    const type = file.endsWith(".png") ? "image/png" : "image/jpeg";
    const answer = await post(`/v1/classify?model=${name}`, bytes, { "content-type": type });
    console.log(`classify ${file} (${mib(bytes.length)}): ${answer.status} in ${answer.seconds.toFixed(2)} s`);
    await report(`after ${file}`);
  }
  const layer = models.models.find((m) => m.name === name)!.config.layers;
  const states = await post(`/v1/hidden_states?model=${name}&layer=${layer}`, "cat-baseline-420.jpg", {
    accept: "application/x-npy",
  });
  console.log(
    `hidden_states layer ${layer} as npy: ${states.status}, ${states.bytes} bytes in ${states.seconds.toFixed(2)} s`,
  );
  const json = await post(`/v1/hidden_states?model=${name}&layer=${layer}`, "cat-baseline-420.jpg");
  console.log(
    `hidden_states layer ${layer} as JSON: ${json.status}, ${json.bytes} bytes in ${json.seconds.toFixed(2)} s`,
  );
  await report("after hidden_states");
  const small = await post(`/v1/see?model=${name}`, "cat-baseline-420.jpg");
  console.log(`see cat-baseline-420.jpg: ${small.status}, ${small.bytes} bytes in ${small.seconds.toFixed(2)} s`);
  await report("after /v1/see (capture allocated)");
  const [largestFile, largest] = large.reduce((a, b) => (b[1].length > a[1].length ? b : a));
  const seeType = largestFile.endsWith(".png") ? "image/png" : "image/jpeg";
  const see = await post(`/v1/see?model=${name}`, largest, { "content-type": seeType });
  console.log(`see ${largestFile}: ${see.status}, ${see.bytes} bytes in ${see.seconds.toFixed(2)} s`);
  await report("after /v1/see of the largest image");
  for (const accept of ["application/x-npy", "application/json"]) {
    const attentions = await post(`/v1/attentions?model=${name}&layer=${layer}`, "cat-baseline-420.jpg", { accept });
    console.log(`attentions layer ${layer} as ${accept}: ${attentions.status}, ${attentions.bytes} bytes`);
  }
  await report("after attentions");
} finally {
  const exited = new Promise((resolve) => wrangler.on("exit", resolve));
  wrangler.kill("SIGINT");
  await exited;
}
