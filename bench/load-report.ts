// The load test's arithmetic and its Markdown: how an answer is judged, latency percentiles, the
// multipart body a form upload sends, and the per-input tables (bench/load.ts measures, this formats).
import type { PoolStats } from "../core/buffers.ts";
import { MiB } from "../core/sizes.ts";
import { alignTables } from "./report.ts";

// What one isolate may hold at once in production; local workerd does not enforce it.
export const ISOLATE_LIMIT_BYTES = 128 * MiB;

// One answer: a 200 with the predictions of the image sent, a well-formed refusal (503, code `busy`, a
// sentence and Retry-After), or a failure with what came back.
export type Outcome = { kind: "ok" } | { kind: "busy" } | { kind: "failed"; detail: string };

export interface Answer {
  status: number;
  retryAfter: string | null;
  body: string;
}

export function judge(answer: Answer, expected: { width: number; height: number }): Outcome {
  const { status, retryAfter, body } = answer;
  const failed = (why: string): Outcome => ({ kind: "failed", detail: `HTTP ${status}: ${why}` });
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    return failed(`not JSON: ${body.slice(0, 200)}`);
  }
  if (status === 200) {
    const answer = json as { predictions?: unknown; image?: { width?: number; height?: number } };
    if (!Array.isArray(answer.predictions) || answer.predictions.length === 0)
      return failed(`no predictions in ${body.slice(0, 200)}`);
    const { width, height } = answer.image ?? {};
    if (width !== expected.width || height !== expected.height)
      return failed(`answered for a ${width}x${height} image, sent ${expected.width}x${expected.height}`);
    return { kind: "ok" };
  }
  const error = (json as { error?: { code?: unknown; message?: unknown } }).error;
  if (status === 503 && error?.code === "busy") {
    if (typeof error.message !== "string" || error.message === "") return failed("busy without a sentence");
    // Retry-After is delay-seconds or an HTTP date (RFC 9110, 10.2.3: IMF-fixdate).
    const date = /^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/;
    if (
      retryAfter === null ||
      !(/^\d+$/.test(retryAfter) || (date.test(retryAfter) && !Number.isNaN(Date.parse(retryAfter))))
    )
      return failed(`busy with Retry-After ${retryAfter === null ? "missing" : JSON.stringify(retryAfter)}`);
    return { kind: "busy" };
  }
  return failed(body.slice(0, 200));
}

// The nearest-rank percentile of ascending `sorted`: the smallest value with at least p% of the values at
// or below it.
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) throw new Error("percentile: no values");
  if (!(p > 0 && p <= 100)) throw new Error(`percentile: p = ${p} is not in (0, 100]`);
  return sorted[Math.ceil((p / 100) * sorted.length) - 1];
}

export interface Latency {
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

export function latency(ms: number[]): Latency {
  const sorted = [...ms].sort((a, b) => a - b);
  return {
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
    max: sorted[sorted.length - 1],
  };
}

// A multipart/form-data body with one file field, built whole so the request carries a Content-Length
// (as browsers send forms).
export function multipartForm(
  field: string,
  filename: string,
  type: string,
  bytes: Uint8Array,
  boundary: string,
): { body: Uint8Array; contentType: string } {
  const encoder = new TextEncoder();
  const head = encoder.encode(
    `--${boundary}\r\nContent-Disposition: form-data; name="${field}"; filename="${filename}"\r\n` +
      `Content-Type: ${type}\r\n\r\n`,
  );
  const tail = encoder.encode(`\r\n--${boundary}--\r\n`);
  const body = new Uint8Array(head.length + bytes.length + tail.length);
  body.set(head, 0);
  body.set(bytes, head.length);
  body.set(tail, head.length + bytes.length);
  return { body, contentType: `multipart/form-data; boundary=${boundary}` };
}

// One row: every request of `runs` rounds of N concurrent uploads of one input. Peaks are the largest
// sample over those rounds; wasm is the loaded models' memory after them.
export interface LoadRow {
  kind: string;
  n: number;
  runs: number;
  ok: number;
  busy: number;
  failures: string[]; // one entry per failed request
  heapUsedPeak: number; // bytes
  heapCommittedPeak: number;
  backingStorePeak: number;
  // the most of one sample's heap committed + backing store (both read at the same instant)
  committedAndBackingPeak: number;
  wasmBytes: number; // the models' wasm memory and the decode kernels'
  rssGrowthPeak: number; // workerd's peak resident memory during a round less its resident memory before it
  ledgerPeak?: number; // the isolate's memory ledger: the most it has counted since the isolate started
  // the isolate's buffer pool over the row's rounds (core/buffers.ts): buffers made, handed out again, let go
  pool?: PoolStats;
  latenciesMs: number[]; // of the answers (200 or busy), not of the failures
  samples: number; // heap samples taken
  maxSampleGapMs: number; // the longest time between two samples (the isolate answers between its tasks)
}

// The isolate's peak as sampled: the most of one sample's heap committed + backing store (one
// Runtime.getHeapUsage reads both at the same instant), plus the models' wasm memory.
export const isolateTotal = (row: LoadRow): number => row.committedAndBackingPeak + row.wasmBytes;

// Each component at its own peak, added: never under the sampled peak, over it when the heap and the
// backing store peak at different moments.
export const sumOfPeaks = (row: LoadRow): number => row.heapCommittedPeak + row.backingStorePeak + row.wasmBytes;

export function answersText(row: LoadRow): string {
  const parts = [
    row.ok ? `200 x${row.ok}` : "",
    row.busy ? `503 busy x${row.busy}` : "",
    row.failures.length ? `failed x${row.failures.length}` : "",
  ];
  return parts.filter(Boolean).join(", ") || "none";
}

export interface LoadInput {
  kind: string;
  description: string; // "12 MP baseline JPEG (4000x3000, 4:2:0), raw"
  bytes: number; // request body
}

export interface LoadMeta {
  command: string;
  date: string;
  cpu: string; // /proc/cpuinfo model name
  flags: string; // /proc/cpuinfo flags
  cores: number;
  node: string;
  workerd: string;
  wrangler: string;
  model: string; // "vit-b16 (random weights, 92.9 MiB wasm)"
  runs: number;
  sampleMs: number;
  timeoutS: number;
  note: string | null; // the run stopped early, and why
}

const mib = (bytes: number): string => `${(bytes / MiB).toFixed(1)} MiB`;
const seconds = (ms: number): string => (ms / 1000).toFixed(2);

export function loadTable(rows: LoadRow[]): string[] {
  const lines = [
    "| N | answers | ledger peak (since start) | JS heap committed peak | backing store peak | wasm | isolate total | sum of peaks | workerd RSS growth | p50 s | p90 s | p99 s | max s |",
    "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
  ];
  for (const row of rows) {
    const l = row.latenciesMs.length ? latency(row.latenciesMs) : null;
    const total = isolateTotal(row);
    lines.push(
      `| ${row.n} | ${answersText(row)} | ${row.ledgerPeak === undefined ? "n/a" : mib(row.ledgerPeak)} | ${mib(row.heapCommittedPeak)} | ${mib(row.backingStorePeak)} | ${mib(row.wasmBytes)} | ` +
        `${mib(total)}${total > ISOLATE_LIMIT_BYTES ? " (over)" : ""} | ${mib(sumOfPeaks(row))} | ${mib(row.rssGrowthPeak)} | ` +
        `${l ? `${seconds(l.p50)} | ${seconds(l.p90)} | ${seconds(l.p99)} | ${seconds(l.max)}` : "n/a | n/a | n/a | n/a"} |`,
    );
  }
  return lines;
}

// What the issue's goals ask of the rows: every answer a 200 or a well-formed busy, the isolate under
// 128 MiB at every N, and no busy at N <= 8 for `streamingKinds` (uploads that should stream).
export function loadChecks(rows: LoadRow[], streamingKinds: string[]): { text: string; ok: boolean }[] {
  const checks: { text: string; ok: boolean }[] = [];
  const failed = rows.flatMap((r) => r.failures.map((f) => `${r.kind} N=${r.n}: ${f}`));
  const counts = new Map<string, number>();
  for (const f of failed) counts.set(f, (counts.get(f) ?? 0) + 1);
  checks.push({
    ok: failed.length === 0,
    text:
      failed.length === 0
        ? "every answer is a 200 or a well-formed 503 busy"
        : `${failed.length} request(s) failed: ${[...counts].map(([f, k]) => (k > 1 ? `${f} (x${k})` : f)).join("; ")}`,
  });
  const over = rows.filter((r) => isolateTotal(r) > ISOLATE_LIMIT_BYTES);
  checks.push({
    ok: over.length === 0,
    text:
      over.length === 0
        ? `the isolate total stays under ${mib(ISOLATE_LIMIT_BYTES)} in every row`
        : `the isolate total is over ${mib(ISOLATE_LIMIT_BYTES)} in ${over.length} row(s): ${over.map((r) => `${r.kind} N=${r.n} ${mib(isolateTotal(r))}`).join(", ")}`,
  });
  const small = rows.filter((r) => streamingKinds.includes(r.kind) && r.n <= 8);
  const refused = small.filter((r) => r.busy > 0);
  if (small.length > 0) {
    checks.push({
      ok: refused.length === 0,
      text:
        refused.length === 0
          ? `no busy at N <= 8 for ${[...new Set(small.map((r) => r.kind))].join(", ")}`
          : `busy at N <= 8 for streaming uploads: ${refused.map((r) => `${r.kind} N=${r.n} x${r.busy}`).join(", ")}`,
    });
  }
  return checks;
}

export function formatLoadReport(
  inputs: LoadInput[],
  rows: LoadRow[],
  checks: { text: string; ok: boolean }[],
  meta: LoadMeta,
): string {
  const samples = rows.reduce((s, r) => s + r.samples, 0);
  const gap = Math.max(0, ...rows.map((r) => r.maxSampleGapMs));
  const out = [
    `Command: \`${meta.command}\`, ${meta.date}. Machine: ${meta.cpu}, ${meta.cores} CPU(s), shared; Node ${meta.node},`,
    `workerd ${meta.workerd} (wrangler ${meta.wrangler}). Model: ${meta.model}.`,
    "",
    `N concurrent \`POST /v1/classify\` to one \`wrangler dev\` isolate, ${meta.runs} round(s) per row, each request with`,
    `a ${meta.timeoutS} s timeout. Latency: the client's, from sending to the answer's last byte, over the 200s and busy`,
    "refusals (failures are listed under Checks).",
    "",
    `Memory: each round starts after a full collection (a heap snapshot: workerd does not answer`,
    "`HeapProfiler.collectGarbage`, and V8 leaves an idle isolate's garbage in place); during the round",
    `\`Runtime.getHeapUsage\` is sampled every ${meta.sampleMs} ms over one inspector connection (${samples} samples; at`,
    `most ${gap.toFixed(0)} ms apart, as the isolate answers between its tasks). JS heap committed is \`totalSize\`, backing`,
    "store `backingStorageSize` (ArrayBuffers: request bodies, decoder buffers; wasm memories are not in it), wasm",
    "the loaded models' memory and the decode kernels' (`memory.isolate.kernelBytes`) from `GET /v1/models`. Isolate total = the largest sample of heap committed + backing store (one",
    "`Runtime.getHeapUsage` reads both at the same instant) plus wasm: the isolate's peak as sampled. Sum of",
    "peaks = the three columns' peaks added, each at its own moment (never under the isolate total, over it",
    `when the heap and the backing store peak apart). Over ${mib(ISOLATE_LIMIT_BYTES)} production kills the isolate and every`,
    "request in it; local workerd does not enforce the limit.",
    "The samples miss what a synchronous stretch allocates and frees; workerd RSS growth sees it: the peak",
    "resident memory of the Worker's workerd process during the round (VmHWM, reset before it) less its",
    "resident memory at the start (it also counts workerd's own buffers, outside the isolate).",
    ...(meta.note ? ["", `Stopped early: ${meta.note}`] : []),
  ];
  for (const input of inputs) {
    const own = rows.filter((r) => r.kind === input.kind);
    if (own.length === 0) continue;
    out.push(
      "",
      `### ${input.kind}: ${input.description}, ${(input.bytes / 1e6).toFixed(1)} MB body`,
      "",
      ...loadTable(own),
    );
  }
  out.push(
    "",
    "Checks:",
    "",
    ...checks.map((c) => `- ${c.ok ? "ok" : "FAILED"}: ${c.text}`),
    "",
    `CPU flags: ${meta.flags}`,
  );
  return alignTables(`${out.join("\n")}\n`);
}
