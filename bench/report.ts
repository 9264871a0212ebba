// The end-to-end results as Markdown: printed, and written as the "End to end" (ViTs) and "Image towers end
// to end" sections of BENCHMARKS.md (the other sections of that file are left as they are).
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import type { UploadFit } from "./memory-fit.ts";
import { summarize, type Summary } from "./stats.ts";

export interface SystemResult {
  system: string;
  runtime?: string; // Node version and its V8, or workerd
  probe?: number; // relaxed_dot_i8x16_i7x16_add_s(127s, 0xFFs, 0) lane 0 in this runtime (assembly/kernels/dot.ts)
  dot?: string; // edgevit: the dot path its engine took
  latency: Summary | null; // ms per image, warm
  cosine: number | null; // min over images of cosine(output, float32 reference output)
  peakRssBytes: number | null;
  runtimeRssBytes?: number; // the process before the model was loaded: Node, or workerd with the Worker
  wasmBytes?: number;
  largestJsBuffer?: number;
  loadMs?: number;
  note?: string;
}

export interface ColdStart {
  firstAnswerMs: number[]; // ready server, empty isolate -> first classify answered (R2 read, load, run)
  spawnToAnswerMs: number[]; // `wrangler dev` spawned -> first classify answered
}

// A 12 MP phone JPEG end to end in workerd (POST /v1/classify, decode=fast) beside the forward pass.
export interface PhoneResult {
  bytes: number; // the JPEG's size
  requestMs: Summary; // the 12 MP JPEG's request, client-timed
  smallMs: Summary; // a 224x224 JPEG's request to the same isolate: decoding next to nothing
  forwardMs: number | null; // edgevit-workerd-forward's median: the forward pass alone in workerd
  // The same three as CPU time of the workerd process (all its threads): steady on a busy machine.
  requestCpuMs: Summary;
  smallCpuMs: Summary;
  forwardCpuMs: number | null;
  nodeMs: number; // the 12 MP JPEG's decode + preprocessing in Node (median), and its CPU time
  nodeCpuMs: number;
}

export interface ModelResult {
  preset: string;
  output: string; // what the systems' outputs are: "logits", or a tower's default embedding (bench/output.ts)
  gmac: number; // work of one forward pass
  systems: SystemResult[];
  cold: ColdStart | null;
  jpegMs: number | null; // JPEG decode + preprocessing in Node, part of every workerd request
  fit: UploadFit | null; // the model in the Worker's isolate beside a 24 MP upload
  phone: PhoneResult | null;
  checks: string[];
}

export interface Meta {
  command: string;
  date: string;
  machine: string;
  load: { start: number; end: number | null }; // the one-minute load average when the run started and ended
  node: string;
  nodeLatest: string;
  ort: string;
  edgevitBuild: string;
  rounds: number;
  images: number;
  ceilingGmacs: number | null; // int8 GEMM ceiling in wasm SIMD, one thread (bench/kernels.ts)
  workerNote: string | null; // why the Worker was not timed
  forwardNote: string | null; // why the forward pass in workerd was not timed
}

const MB = 1e6;
const fmt = (x: number, digits = 1): string => x.toFixed(digits);
const median = (xs: number[]): number => summarize(xs).median;

function latencyTable(models: ModelResult[], meta: Meta): string[] {
  const ceiling = meta.ceilingGmacs !== null ? " | % of int8 ceiling" : "";
  const lines = [
    `| model | system | median ms | min-max ms | time / best ORT int8 | GMAC/s${ceiling} | cosine vs float32 | peak RSS MB |`,
    `| --- | --- | ---: | ---: | ---: | ---:${ceiling ? " | ---:" : ""} | ---: | ---: |`,
  ];
  for (const m of models) {
    // the faster of onnxruntime-web int8 in Node 22 and in the newest Node
    const ortTimes = m.systems
      .filter((s) => s.system.startsWith("ort-int8") && s.latency)
      .map((s) => s.latency!.median);
    const int8 = ortTimes.length ? Math.min(...ortTimes) : undefined;
    for (const s of m.systems) {
      const l = s.latency;
      const gmacs = l ? m.gmac / (l.median / 1000) : null;
      const cells = [
        m.preset,
        s.system,
        l ? fmt(l.median) : "n/a",
        l ? `${fmt(l.min)}-${fmt(l.max)}` : "n/a",
        l && int8 ? `${fmt(l.median / int8, 2)}` : "n/a",
        gmacs !== null ? fmt(gmacs) : "n/a",
        ...(meta.ceilingGmacs !== null
          ? [gmacs !== null && s.system !== "ort-f32" ? `${fmt((100 * gmacs) / meta.ceilingGmacs, 0)}%` : "n/a"]
          : []),
        s.cosine !== null ? s.cosine.toFixed(5) : "n/a",
        s.peakRssBytes !== null ? fmt(s.peakRssBytes / MB, 0) : "n/a",
      ];
      lines.push(`| ${cells.join(" | ")} |`);
    }
  }
  return lines;
}

// Each runtime's lowering of the relaxed dot product and the path edgevit's engine took in it.
function runtimeTable(models: ModelResult[]): string[] {
  const lines = ["| system | runtime | probe | lowering | edgevit dot path |", "| --- | --- | ---: | --- | --- |"];
  const lowering = (p?: number) =>
    p === 129540 ? "vpdpbusd" : p === -508 ? "vpdpbssd" : p === 65534 ? "pmaddubsw (emulated)" : "n/a";
  const seen = new Set<string>();
  for (const s of models.flatMap((m) => m.systems)) {
    if (seen.has(s.system)) continue;
    seen.add(s.system);
    lines.push(
      `| ${s.system} | ${s.runtime ?? "n/a"} | ${s.probe ?? "n/a"} | ${lowering(s.probe)} | ${s.dot ?? "-"} |`,
    );
  }
  return lines;
}

function memoryTable(models: ModelResult[]): string[] {
  const lines = [
    "| model | system | peak RSS MB | RSS before loading MB | wasm memory MB | largest JS buffer MB | load ms |",
    "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
  ];
  const opt = (x: number | undefined | null, scale = MB, digits = 1) =>
    x === undefined || x === null || Number.isNaN(x) ? "n/a" : fmt(x / scale, digits);
  for (const m of models) {
    for (const s of m.systems) {
      lines.push(
        `| ${m.preset} | ${s.system} | ${opt(s.peakRssBytes, MB, 0)} | ${opt(s.runtimeRssBytes, MB, 0)} | ${opt(s.wasmBytes)} | ${opt(s.largestJsBuffer, MB, 2)} | ${opt(s.loadMs, 1, 0)} |`,
      );
    }
  }
  return lines;
}

const MiB = 1024 * 1024;

// Each model's wasm memory against MODEL_MEMORY_BUDGET_MB, and beside it one 24 MP upload's reservation
// within ISOLATE_MEMORY_MB, as the Worker's ledger counts them.
function fitTable(models: ModelResult[]): string[] {
  const lines = [
    "| model | wasm memory MiB | fits the model budget | DCT scale | upload reservation MiB | room beside the model MiB | fits beside a 24 MP JPEG |",
    "| --- | ---: | --- | ---: | ---: | ---: | --- |",
  ];
  for (const m of models) {
    const f = m.fit;
    if (!f) continue;
    const over = f.fitsBudget ? "" : ` (MODEL_MEMORY_BUDGET_MB = ${Math.ceil(f.wasmBytes / MiB)} would load it)`;
    lines.push(
      `| ${m.preset} | ${fmt(f.wasmBytes / MiB)} | ${f.fitsBudget ? "yes" : `no, over ${fmt(f.budgetBytes / MiB, 0)}`} | 1/${f.scale} | ${fmt(f.reservationBytes / MiB)} | ${fmt(f.roomBytes / MiB)} | ${f.fits ? "yes" : f.reservationBytes <= f.roomBytes ? `no: not loaded${over}` : "no"} |`,
    );
  }
  return lines;
}

function phoneTable(models: ModelResult[]): string[] {
  const ratio = (a: number, b: number | null) => (b ? `${fmt(a / b, 2)}x` : "n/a");
  return [
    "A 12 MP phone JPEG end to end in workerd: `POST /v1/classify` of bench/decode.ts's 4000x3000 baseline photo",
    "(`.cache/bench-decode/phone-12mp-420.jpg`, quality 90, 4:2:0) at the default `decode=fast`, client-timed,",
    "interleaved with the same isolate's answer to that photo at 224x224 (`.cache/bench/224.jpg`: decoded at full",
    "scale, not resized); the forward pass alone is `edgevit-workerd-forward`'s median above. Wall: client time,",
    "medians (min-max); CPU: the workerd process's CPU time (all its threads, from /proc) over the request,",
    "per pass for the forward pass alone, medians: the steadier figure on a shared machine.",
    "",
    "| model | time | 12 MP JPEG request ms | 224x224 JPEG request ms | forward pass alone ms | 12 MP / forward | 12 MP / 224x224 | 12 MP decode + preprocess in Node ms |",
    "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ...models.flatMap((m) => {
      const p = m.phone!;
      const range = (s: Summary) => `${fmt(s.median)} (${fmt(s.min)}-${fmt(s.max)})`;
      const opt = (x: number | null) => (x === null ? "n/a" : fmt(x));
      return [
        `| ${m.preset} | wall | ${range(p.requestMs)} | ${range(p.smallMs)} | ${opt(p.forwardMs)} | ${ratio(p.requestMs.median, p.forwardMs)} | ${ratio(p.requestMs.median, p.smallMs.median)} | ${fmt(p.nodeMs)} |`,
        `| ${m.preset} | CPU | ${fmt(p.requestCpuMs.median)} | ${fmt(p.smallCpuMs.median)} | ${opt(p.forwardCpuMs)} | ${ratio(p.requestCpuMs.median, p.forwardCpuMs)} | ${ratio(p.requestCpuMs.median, p.smallCpuMs.median)} | ${fmt(p.nodeCpuMs)} |`,
      ];
    }),
  ];
}

export function formatReport(models: ModelResult[], meta: Meta): string {
  const towers = models.every((m) => m.output !== "logits");
  const fits = models.filter((m) => m.fit);
  const f = fits[0]?.fit;
  const weights = towers
    ? [
        "deterministic random checkpoints in the hub's layout of `models/tools/make-random-tower.ts` (clip-b32:",
        "`clip-vit-base-patch32`, siglip-b16: `siglip-base-patch16-224`, dinov2-b: `dinov2-base`; F32, seed 1),",
        "converted by `edgevit convert`, and exported by `bench/export_tower_onnx.py` from",
        "`models/tools/reference_towers.py`'s float32 forward pass (float32) and rewritten as `quantize_dynamic`",
        "writes it (int8). Compared: each tower's default `/v1/embed` output, not normalized: CLIP `image_embeds`",
        "(projected), SigLIP's pooler (its attention pooling head), DINOv2's class token after the final layernorm.",
      ]
    : [
        "deterministic random checkpoints of `models/tools/make-random-vit.ts`, converted by `edgevit convert` and",
        "exported by `bench/export_onnx.py` (float32) and rewritten as `quantize_dynamic` writes it (int8).",
      ];
  const out = [
    `Command: \`${meta.command}\`, ${meta.date}. Machine: ${meta.machine}; load average ${fmt(meta.load.start)} at the start${meta.load.end === null ? "" : `, ${fmt(meta.load.end)} at the end`}; Node ${meta.node} and ${meta.nodeLatest}; onnxruntime-web ${meta.ort}`,
    `(wasm backend, SIMD, \`numThreads = 1\`); edgevit engine build: ${meta.edgevitBuild}. \`npm run bench -- --quick\` is a`,
    "short run, `--models vit-b16,deit-small,deit-tiny,clip-b32,siglip-b16,dinov2-b` chooses the models; generated",
    "files go to `.cache/bench/`.",
    "",
    `Per-image latency, warm: ${meta.rounds} rounds of ${meta.images} image(s) per system, the systems interleaved`,
    "round-robin (a different one first each round), each in its own process. Same weights everywhere: the",
    ...weights,
    "",
    ...latencyTable(models, meta),
    "",
    "Runtimes: the probe is lane 0 of `i32x4.relaxed_dot_i8x16_i7x16_add_s(splat 127, splat 0xFF, 0)` in each",
    "runtime (assembly/kernels/dot.ts); edgevit takes the fused dot step where it is one instruction.",
    "",
    ...runtimeTable(models),
    "",
    `- edgevit-node: the engine host (\`core/engine/\`) in Node 22: pixel values in, forward pass, ${towers ? "embedding" : "logits"} out;`,
    `  \`@node${meta.nodeLatest.split(".")[0]}\`: the same system in Node ${meta.nodeLatest} (npm's \`node\` package, in .cache/bench/node-latest).`,
    ...(towers
      ? []
      : [
          "- edgevit-workerd: the Worker under `wrangler dev`, `POST /v1/classify` of a 451x300 JPEG, timed by the",
          "  client (clocks stand still inside workerd): includes loopback HTTP, JPEG decoding and preprocessing",
          `  (the same decode and preprocessing take ${
            models
              .filter((m) => m.jpegMs !== null)
              .map((m) => `${fmt(m.jpegMs!)} ms for ${m.preset}`)
              .join(", ") || "n/a"
          } in Node).`,
        ]),
    "- edgevit-workerd-forward: the forward pass alone in workerd, like for like with ORT: the same bundle in the",
    "  benchmark Worker (`bench/kernels-worker.ts` under `wrangler dev`, loaded by the engine host's own loader),",
    "  the same pixel values posted, several forward passes per request for the small models; the client's time",
    "  less that of the same request without a forward pass, per pass.",
    `- ort-f32 / ort-int8: \`InferenceSession.run\` on the same pixel values (input tensor in, ${towers ? "embedding" : "logits"} out). The int8`,
    "  graph is `quantize_dynamic`'s default: per-tensor symmetric int8 weights, each weight MatMul (and the patch",
    ...(towers
      ? [
          "  Conv) as DynamicQuantizeLinear -> MatMulInteger (ConvInteger) -> Cast -> Mul; the reference writes the patch",
          "  embedding as a MatMul over flattened patches, so it is quantized as one, and so are CLIP's projection and",
          "  SigLIP's pooling head; attention's two matmuls stay float32. edgevit: per-channel 7-bit weights, per-token",
          "  int8 activations on every Linear and on both attention matmuls (docs/ARCHITECTURE.md).",
        ]
      : [
          "  Conv) as DynamicQuantizeLinear -> MatMulInteger (ConvInteger) -> Cast -> Mul; attention's two matmuls and the",
          "  classifier (a Gemm) stay float32. edgevit: per-channel 7-bit weights, per-token int8 activations on every",
          "  Linear and on both attention matmuls (docs/ARCHITECTURE.md).",
        ]),
    "- time / best ORT int8: this median over the faster ORT int8 median (Node 22 or the newest Node). GMAC/s: the model's multiply-accumulates per forward pass",
    `  (${models.map((m) => `${m.preset} ${fmt(m.gmac, 2)} G`).join(", ")}) / median time.`,
    ...(meta.ceilingGmacs !== null
      ? [
          `- int8 ceiling: ${fmt(meta.ceilingGmacs)} GMAC/s, the engine's register-only int8 dot loop (\`dotCeiling\`, as \`npm run bench:kernels\` reports it), wasm SIMD, one thread, measured in this run.`,
        ]
      : []),
    ...(towers
      ? [
          "- cosine: the lowest over the inputs of cosine(embedding, float32 embedding of the same pixels), the float32",
          "  embedding being `models/tools/reference_towers.py`'s.",
          "- The Worker's JPEG path (`/v1/embed`) and cold starts are not timed for the towers: their forward pass in",
          "  workerd is `edgevit-workerd-forward`.",
        ]
      : [
          "- cosine: the lowest over the inputs of cosine(logits, float32 logits of the same pixels): the PyTorch",
          "  float32 reference (`models/tools/reference.py`) for the Node systems and the forward pass in workerd; for",
          "  the Worker's JPEG answers, ORT float32 on the",
          "  Worker's own preprocessing of the JPEG.",
        ]),
    ...(meta.workerNote && !towers ? [`- edgevit-workerd not timed: ${meta.workerNote}`] : []),
    ...(meta.forwardNote ? [`- edgevit-workerd-forward not timed: ${meta.forwardNote}`] : []),
    "",
    "Memory: peak RSS is VmHWM of the system's own process, its runtime included (for workerd, the workerd that",
    "runs the Worker, sampled after every request); RSS before loading is that process before the model was",
    "loaded (Node after start-up; workerd once the Worker answered /healthz); wasm memory is edgevit's instance",
    "with the model loaded. Load: file read to first run possible (ORT: session creation).",
    "",
    ...memoryTable(models),
    ...(f
      ? [
          "",
          `In the Worker's isolate (\`worker/memory.ts\`'s ledger, \`wrangler.toml\`'s ISOLATE_MEMORY_MB = ${fmt(f.capacityBytes / MiB, 0)} and`,
          `MODEL_MEMORY_BUDGET_MB = ${fmt(f.budgetBytes / MiB, 0)}): a model loads when its wasm memory is within the model budget; beside it`,
          `requests have the capacity less the idle isolate's ${fmt(f.fixedBytes / MiB, 0)} MiB heap and that wasm memory. The upload: a`,
          `24 MP (6000x4000) baseline phone JPEG (\`.cache/bench/24mp.jpg\`, Pillow, quality 90, 4:2:0, ${fmt(f.bodyBytes / MiB, 2)} MiB), posted`,
          "raw and streamed at the default `decode=fast` (the DCT scale it picks for each model's input); its reservation is `reservationBytes()` of the",
          "request as it runs (the body, the decoder at that scale, the preprocessor, the outputs and the answer; the",
          "decoder of a body held whole counts that body as its window, so the body counts twice, as in the Worker).",
          `While a model loads the ledger sets the whole budget aside (requests then have ${fmt((f.capacityBytes - f.fixedBytes - f.budgetBytes) / MiB)} MiB; an upload waiting`,
          "on the load holds its body only, and grows to its whole reservation once the model is loaded).",
          "",
          ...fitTable(fits),
        ]
      : []),
  ];

  const cold = models.filter((m) => m.cold);
  if (cold.length) {
    out.push(
      "",
      "Cold start: a fresh `wrangler dev` (empty isolate), the bundle in local R2; median (runs) of the first",
      "`POST /v1/classify` answered (R2 read streamed into wasm memory, CRC check, engine init, first forward pass):",
      "",
      "| model | ready -> first answer ms | spawn -> first answer ms | warm request ms |",
      "| --- | ---: | ---: | ---: |",
      ...cold.map((m) => {
        const c = m.cold!;
        const warm = m.systems.find((s) => s.system === "edgevit-workerd")?.latency?.median;
        return `| ${m.preset} | ${fmt(median(c.firstAnswerMs), 0)} (${c.firstAnswerMs.map((x) => fmt(x, 0)).join(", ")}) | ${fmt(median(c.spawnToAnswerMs), 0)} | ${warm ? fmt(warm, 0) : "n/a"} |`;
      }),
    );
  }
  const phones = models.filter((m) => m.phone);
  if (phones.length) out.push("", ...phoneTable(phones));
  out.push("", "Checks:", "", ...models.flatMap((m) => m.checks.map((c) => `- ${m.preset}: ${c}`)));
  return alignTables(`${out.join("\n")}\n`);
}

// Pads the cells of every Markdown table in `text` to its column's width, so the tables read as tables in
// the file too: right-aligned columns (`---:`) are padded on the left, centred ones (`:---:`) on both
// sides, the others on the right; each delimiter cell becomes dashes as wide as its column, its colons kept.
export function alignTables(text: string): string {
  const lines = text.split("\n");
  const isRow = (line: string): boolean => line.startsWith("|") && line.endsWith("|");
  const cellsOf = (line: string): string[] =>
    line
      .slice(1, -1)
      .split(/(?<!\\)\|/) // a cell may hold an escaped \|
      .map((c) => c.trim());
  for (let start = 0; start < lines.length; start++) {
    if (!isRow(lines[start]) || start + 1 >= lines.length || !/^\|(\s*:?-+:?\s*\|)+$/.test(lines[start + 1])) continue;
    let end = start;
    while (end < lines.length && isRow(lines[end])) end++;
    const rows = lines.slice(start, end).map(cellsOf);
    const columns = Math.max(...rows.map((r) => r.length));
    const left = rows[1].map((c) => c.startsWith(":"));
    const right = rows[1].map((c) => c.endsWith(":"));
    const widths = Array.from({ length: columns }, (_, i) =>
      Math.max(3, ...rows.filter((_, r) => r !== 1).map((row) => (row[i] ?? "").length)),
    );
    rows.forEach((row, r) => {
      const cells = widths.map((width, i) => {
        if (r === 1) {
          const colons = (left[i] ? 1 : 0) + (right[i] ? 1 : 0);
          return `${left[i] ? ":" : ""}${"-".repeat(width - colons)}${right[i] ? ":" : ""}`;
        }
        const cell = row[i] ?? "";
        if (left[i] && right[i])
          return cell.padStart(cell.length + Math.floor((width - cell.length) / 2)).padEnd(width);
        return right[i] ? cell.padStart(width) : cell.padEnd(width);
      });
      lines[start + r] = `| ${cells.join(" | ")} |`;
    });
    start = end - 1;
  }
  return lines.join("\n");
}

// Replaces the body of `## <title>` (up to the next `## ` heading) or appends the section.
export function writeSection(path: string, title: string, body: string): void {
  const heading = `## ${title}`;
  const text = existsSync(path) ? readFileSync(path, "utf8") : "# Benchmarks\n";
  const lines = text.split("\n");
  const start = lines.findIndex((l) => l.trim() === heading);
  let next: string;
  if (start < 0) {
    next = `${text.replace(/\n*$/, "\n")}\n${heading}\n\n${body}`;
  } else {
    let end = lines.findIndex((l, i) => i > start && l.startsWith("## "));
    if (end < 0) end = lines.length;
    const after = lines.slice(end).join("\n");
    next = `${lines.slice(0, start + 1).join("\n")}\n\n${body}${after ? `\n${after}` : ""}`;
  }
  writeFileSync(`${path}.tmp`, next);
  renameSync(`${path}.tmp`, path);
}
