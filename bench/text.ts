// The text towers at full size in `wrangler dev`: random-weight CLIP B/32 and SigLIP B/16-224 two-tower
// bundles (the hub layout and tokenizer files, as test/tools/text_towers.ts makes them at test size),
// timed client-side for /v1/embed_text of 8 labels and /v1/zero_shot with a new label set (a text pass in the
// text Worker) and with the same set again (the isolate's cached embeddings), and the text Worker's isolate
// measured while it loads the tower and while it answers: JS heap committed and ArrayBuffer backing store
// through the inspector, sampled every few ms (wrangler gives the inspector to the first Worker of a session
// only, so the text Worker runs alone for that), plus the tower's wasm memory as the text Worker reports it
// (GET /v1/models), and workerd's resident memory growth as a cross-check that also sees inside synchronous
// stretches.
//
//   node bench/text.ts [--preset clip-vit-base-patch32,siglip-base-patch16-224] [--n 10]
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { bucketName, putObject } from "../cli/upload.ts";
import { type TextPreset, textTowerFiles } from "../test/tools/text_towers.ts";
import { cacheDir } from "./artifacts.ts";
import { type HeapPeaks, HeapSampler, Inspector } from "./inspector.ts";
import { statusBytes } from "./proc.ts";
import { DevServer } from "./wrangler.ts";

const root = new URL("..", import.meta.url).pathname;
const MiB = 2 ** 20;
const { values: opts } = parseArgs({
  options: {
    preset: { type: "string", default: "clip-vit-base-patch32,siglip-base-patch16-224" },
    n: { type: "string", default: "10" },
  },
});
const N = Number(opts.n);
const LABELS = ["cat", "dog", "bicycle", "car", "tree", "house", "boat", "bird"];
const image = new Uint8Array(readFileSync(join(root, "test/fixtures/images/cat-baseline-420.jpg")));

// The full-size checkpoint with its tokenizer files, converted; both kept under .cache/bench/text-<preset>.
function bundle(preset: string): string {
  const dir = join(cacheDir, `text-${preset}`);
  const hf = join(dir, "hf");
  const evit = join(dir, "model.evit");
  if (existsSync(evit)) return evit;
  const files = textTowerFiles(preset as TextPreset, 1, 1, false);
  mkdirSync(hf, { recursive: true });
  for (const [name, bytes] of Object.entries(files)) writeFileSync(join(hf, name), bytes);
  const convert = spawnSync(process.execPath, [join(root, "bin/edgevit.mjs"), "convert", hf, "-o", evit], {
    cwd: root,
    stdio: "inherit",
  });
  if (convert.status !== 0) throw new Error(`edgevit convert ${hf} exited with ${convert.status}`);
  return evit;
}

function quantiles(ms: number[]): string {
  const s = [...ms].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)];
  return `median ${at(0.5).toFixed(0)} ms, p90 ${at(0.9).toFixed(0)} ms (n=${s.length})`;
}

async function timed(request: () => Promise<Response>, check?: (r: Response) => void): Promise<number> {
  const t0 = performance.now();
  const response = await request();
  const body = await response.text();
  const ms = performance.now() - t0;
  if (!response.ok) throw new Error(`${response.status}: ${body.slice(0, 300)}`);
  check?.(response);
  return ms;
}

const embedText = (url: string, model: string) => () =>
  fetch(`${url}/v1/embed_text?model=${model}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ texts: LABELS.map((l) => `a photo of a ${l}`) }),
  });

const zeroShot = (url: string, model: string, labels: string[]) => () =>
  fetch(`${url}/v1/zero_shot?model=${model}&${labels.map((l) => `labels=${encodeURIComponent(l)}`).join("&")}`, {
    method: "POST",
    headers: { "content-type": "image/jpeg" },
    body: image,
  });

// The text tower's wasm memory as the text Worker measures it (its instance's memory, which never shrinks:
// after the load it is the most the load had).
async function textWasmBytes(url: string, model: string): Promise<number> {
  const response = await fetch(`${url}/v1/models`);
  const body = (await response.json()) as { loaded?: { name: string; tower?: string; wasmBytes: number }[] };
  const tower = body.loaded?.find((m) => m.name === model && m.tower === "text");
  if (!tower) throw new Error(`the text Worker lists no text tower of ${model}: ${JSON.stringify(body).slice(0, 300)}`);
  return tower.wasmBytes;
}

// Sampling intervals: the load awaits a read every 64 KiB, so the inspector answers through it.
const LOAD_SAMPLE_MS = 2;
const ANSWER_SAMPLE_MS = 5;

const mib = (bytes: number) => `${(bytes / MiB).toFixed(1)} MiB`;

function isolateLine(label: string, peaks: HeapPeaks, wasm: number, rssGrowth: number): string {
  return (
    `${label}: JS heap committed ${mib(peaks.totalSize)} + backing store ${mib(peaks.backingStorageSize)} ` +
    `(most in one sample: ${mib(peaks.committedAndBacking)}) + wasm ${mib(wasm)} = ` +
    `${mib(peaks.committedAndBacking + wasm)} of 128 (${peaks.samples} samples, longest gap ` +
    `${peaks.maxGapMs.toFixed(0)} ms); workerd resident growth ${mib(rssGrowth)}`
  );
}

for (const preset of opts.preset.split(",")) {
  const model = `text-${preset}`;
  const evit = bundle(preset);
  const persist = join(cacheDir, `wrangler-text-${preset}`);
  putObject(bucketName(), evit, model, { remote: false, persistTo: persist, quiet: true });
  console.log(`${preset}: ${(readFileSync(evit).length / MiB).toFixed(1)} MiB bundle`);

  // The text Worker alone, its isolate under the inspector.
  {
    const { server } = await DevServer.start(persist, 180_000, "wrangler.text.toml");
    try {
      const inspector = await Inspector.connect(server.inspectorPort);
      await inspector.collectGarbage();
      const pid = await server.workerdPid();
      // VmHWM from here: the resident peak of the load (workerd's own R2 simulation included)
      writeFileSync(`/proc/${pid}/clear_refs`, "5");
      const idleRss = statusBytes(pid, "VmRSS");
      const loading = new HeapSampler(inspector, LOAD_SAMPLE_MS);
      const loadMs = await timed(embedText(server.url, model)); // the first: the section's load
      const load = await loading.stop();
      const loadRss = statusBytes(pid, "VmHWM") - idleRss;
      const wasm = await textWasmBytes(server.url, model);
      await inspector.collectGarbage();
      writeFileSync(`/proc/${pid}/clear_refs`, "5");
      const loadedRss = statusBytes(pid, "VmRSS");
      const sampler = new HeapSampler(inspector, ANSWER_SAMPLE_MS);
      const ms: number[] = [];
      for (let i = 0; i < N; i++) ms.push(await timed(embedText(server.url, model)));
      const peaks = await sampler.stop();
      const answerRss = statusBytes(pid, "VmHWM") - loadedRss;
      if ((await server.workerdPid()) !== pid) throw new Error("wrangler restarted the text Worker during the run");
      console.log(`${preset} text Worker alone: first embed_text x8 (the load) ${loadMs.toFixed(0)} ms`);
      console.log(isolateLine(`${preset} text isolate, the load`, load, wasm, loadRss));
      console.log(`${preset} text Worker alone: embed_text x8 ${quantiles(ms)}`);
      console.log(isolateLine(`${preset} text isolate, ${N} embed_text x8 after a GC`, peaks, wasm, answerRss));
      inspector.close();
    } finally {
      await server.stop();
    }
  }

  // Both Workers, as `npm run dev` runs them: zero-shot through the main Worker's TEXT binding. The vars go
  // to both Workers of the session; they are raised here so that the timing never waits on admission (the
  // memory above is measured with the text Worker's own settings).
  {
    const budget = { MODEL_MEMORY_BUDGET_MB: "200", ISOLATE_MEMORY_MB: "256" };
    const { server } = await DevServer.start(persist, 180_000, ["wrangler.toml", "wrangler.text.toml"], budget);
    try {
      await timed(zeroShot(server.url, model, ["warm", "up"])); // both towers' loads
      const cachedCheck = (r: Response) => {
        if (r.headers.get("x-edgevit-labels") !== "isolate")
          throw new Error(`expected x-edgevit-labels: isolate, got ${r.headers.get("x-edgevit-labels")}`);
      };
      const fresh: number[] = [];
      const cached: number[] = [];
      const viaMain: number[] = [];
      for (let i = 0; i < N; i++) {
        const labels = LABELS.map((l) => `${l} ${preset} ${Date.now()} ${i}`);
        fresh.push(await timed(zeroShot(server.url, model, labels)));
        cached.push(await timed(zeroShot(server.url, model, labels), cachedCheck));
        viaMain.push(await timed(embedText(server.url, model)));
      }
      console.log(`${preset} embed_text x8 via the main Worker: ${quantiles(viaMain)}`);
      console.log(`${preset} zero_shot, 8 new labels (text pass): ${quantiles(fresh)}`);
      console.log(`${preset} zero_shot, same 8 labels again (isolate): ${quantiles(cached)}`);
    } finally {
      await server.stop();
    }
  }
}
