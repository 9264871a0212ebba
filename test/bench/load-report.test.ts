// The load test's judging of answers, its percentiles, its multipart bodies and its tables.
import { describe, expect, test } from "vitest";
import {
  formatLoadReport,
  isolateTotal,
  sumOfPeaks,
  judge,
  latency,
  loadChecks,
  type LoadMeta,
  type LoadRow,
  loadTable,
  multipartForm,
  percentile,
} from "../../bench/load-report.ts";

const MiB = 1 << 20;
const size = { width: 4000, height: 3000 };
const classified = JSON.stringify({
  model: "vit-b16",
  predictions: [{ label: "tabby", score: 0.5 }],
  image: { format: "jpeg", width: 4000, height: 3000 },
});
const busy = JSON.stringify({ error: { code: "busy", message: "the isolate is at its memory budget; retry" } });

describe("judge", () => {
  test("a 200 with predictions for the image sent is an answer", () => {
    expect(judge({ status: 200, retryAfter: null, body: classified }, size)).toEqual({ kind: "ok" });
  });

  test("a 200 for another image, without predictions, or not JSON is a failure", () => {
    const other = judge({ status: 200, retryAfter: null, body: classified }, { width: 3000, height: 4000 });
    expect(other).toEqual({ kind: "failed", detail: "HTTP 200: answered for a 4000x3000 image, sent 3000x4000" });
    const empty = judge({ status: 200, retryAfter: null, body: '{"predictions":[]}' }, size);
    expect(empty.kind).toBe("failed");
    const text = judge({ status: 200, retryAfter: null, body: "ok" }, size);
    expect(text).toEqual({ kind: "failed", detail: "HTTP 200: not JSON: ok" });
  });

  test("503 busy with a sentence and Retry-After (seconds or an HTTP date) is a refusal", () => {
    expect(judge({ status: 503, retryAfter: "2", body: busy }, size)).toEqual({ kind: "busy" });
    const date = "Wed, 21 Oct 2026 07:28:00 GMT";
    expect(judge({ status: 503, retryAfter: date, body: busy }, size)).toEqual({ kind: "busy" });
  });

  test("a busy without Retry-After, with a malformed one or without a sentence is a failure", () => {
    expect(judge({ status: 503, retryAfter: null, body: busy }, size)).toEqual({
      kind: "failed",
      detail: "HTTP 503: busy with Retry-After missing",
    });
    for (const retryAfter of ["-1", "1.5", "soon", " 2"])
      expect(judge({ status: 503, retryAfter, body: busy }, size).kind).toBe("failed");
    const silent = JSON.stringify({ error: { code: "busy", message: "" } });
    expect(judge({ status: 503, retryAfter: "1", body: silent }, size).kind).toBe("failed");
  });

  test("other statuses, 503s of other codes and text error pages are failures with their body", () => {
    const unavailable = JSON.stringify({ error: { code: "model_unavailable", message: "m" } });
    expect(judge({ status: 503, retryAfter: "1", body: unavailable }, size)).toEqual({
      kind: "failed",
      detail: `HTTP 503: ${unavailable}`,
    });
    expect(judge({ status: 500, retryAfter: null, body: "Internal Server Error" }, size)).toEqual({
      kind: "failed",
      detail: "HTTP 500: not JSON: Internal Server Error",
    });
  });
});

describe("percentiles", () => {
  test("nearest rank over 1..100 and over a few values", () => {
    const hundred = Array.from({ length: 100 }, (_, i) => i + 1);
    expect([50, 90, 99, 100].map((p) => percentile(hundred, p))).toEqual([50, 90, 99, 100]);
    // four values: p50 is the 2nd (ceil(2)), p90 and p99 the 4th (ceil(3.6), ceil(3.96))
    expect([50, 90, 99].map((p) => percentile([10, 20, 30, 40], p))).toEqual([20, 40, 40]);
    expect(percentile([7], 1)).toBe(7);
    expect(() => percentile([], 50)).toThrow();
    expect(() => percentile([1], 0)).toThrow();
  });

  test("latency sorts its input and leaves it as it was", () => {
    const ms = [300, 100, 200, 1000, 400, 500, 600, 700, 800, 900];
    expect(latency(ms)).toEqual({ p50: 500, p90: 900, p99: 1000, max: 1000 });
    expect(ms[0]).toBe(300);
  });
});

describe("multipartForm", () => {
  test("a form that a standard parser reads back byte for byte", async () => {
    const bytes = Uint8Array.from({ length: 1000 }, (_, i) => (i * 7) & 255); // holds \r\n and -- too
    const { body, contentType } = multipartForm("image", "a.jpg", "image/jpeg", bytes, "b0undary");
    expect(contentType).toBe("multipart/form-data; boundary=b0undary");
    const form = await new Response(body as Uint8Array<ArrayBuffer>, {
      headers: { "content-type": contentType },
    }).formData();
    const file = form.get("image") as File;
    expect(file.name).toBe("a.jpg");
    expect(file.type).toBe("image/jpeg");
    expect(new Uint8Array(await file.arrayBuffer())).toEqual(bytes);
  });
});

const row = (n: number, over: Partial<LoadRow> = {}): LoadRow => ({
  kind: "jpeg-12mp",
  n,
  runs: 1,
  ok: n,
  busy: 0,
  failures: [],
  heapUsedPeak: 6 * MiB,
  heapCommittedPeak: 9 * MiB,
  backingStorePeak: 20 * MiB,
  committedAndBackingPeak: 27 * MiB, // the heap and the backing store peak apart
  wasmBytes: 92.9 * MiB,
  rssGrowthPeak: 50 * MiB,
  latenciesMs: Array.from({ length: n }, (_, i) => 1000 * (i + 1)),
  samples: 100,
  maxSampleGapMs: 250,
  ...over,
});

describe("load tables", () => {
  test("isolate total is the largest same-sample heap + backing store plus wasm; sum of peaks adds each peak", () => {
    expect(isolateTotal(row(1)) / MiB).toBeCloseTo(119.9, 10);
    expect(sumOfPeaks(row(1)) / MiB).toBeCloseTo(121.9, 10);
  });

  test("one line per row: answers, MiB, seconds, and a total over 128 MiB marked", () => {
    const lines = loadTable([
      row(1),
      row(4, {
        ok: 2,
        busy: 1,
        failures: ["HTTP 500: x"],
        backingStorePeak: 40 * MiB,
        committedAndBackingPeak: 46 * MiB,
        ledgerPeak: 119.5 * MiB,
      }),
    ]);
    expect(lines[2]).toBe(
      "| 1 | 200 x1 | n/a | 9.0 MiB | 20.0 MiB | 92.9 MiB | 119.9 MiB | 121.9 MiB | 50.0 MiB | 1.00 | 1.00 | 1.00 | 1.00 |",
    );
    expect(lines[3]).toBe(
      "| 4 | 200 x2, 503 busy x1, failed x1 | 119.5 MiB | 9.0 MiB | 40.0 MiB | 92.9 MiB | 138.9 MiB (over) | 141.9 MiB | 50.0 MiB | 2.00 | 4.00 | 4.00 | 4.00 |",
    );
  });

  test("checks: failures listed and counted, rows over the limit named, busy at small N for streaming kinds", () => {
    const rows = [
      row(1),
      row(4, { ok: 1, busy: 1, failures: ["HTTP 500: x", "HTTP 500: x"] }),
      row(16, { backingStorePeak: 60 * MiB, committedAndBackingPeak: 66 * MiB }),
      // the sum of peaks over 128 MiB (131.9), no sample over it (125.9): not over
      row(32, { backingStorePeak: 30 * MiB, committedAndBackingPeak: 33 * MiB }),
      row(8, { kind: "png-24mp", ok: 0, busy: 8 }),
    ];
    expect(loadChecks(rows, ["jpeg-12mp"])).toEqual([
      { ok: false, text: "2 request(s) failed: jpeg-12mp N=4: HTTP 500: x (x2)" },
      { ok: false, text: "the isolate total is over 128.0 MiB in 1 row(s): jpeg-12mp N=16 158.9 MiB" },
      { ok: false, text: "busy at N <= 8 for streaming uploads: jpeg-12mp N=4 x1" },
    ]);
    expect(loadChecks([row(1), row(32, { ok: 20, busy: 12 })], ["jpeg-12mp"]).every((c) => c.ok)).toBe(true);
  });

  test("the report has a table per input, aligned, the checks and the machine", () => {
    const meta: LoadMeta = {
      command: "npm run bench:load",
      date: "2026-12-07 01:00 UTC",
      cpu: "Test CPU",
      flags: "sse2 avx2",
      cores: 2,
      node: "v22.23.3",
      workerd: "1.20261102.1",
      wrangler: "4.164.0",
      model: "vit-b16",
      runs: 1,
      sampleMs: 20,
      timeoutS: 300,
      note: null,
    };
    const inputs = [
      { kind: "jpeg-12mp", description: "12 MP baseline JPEG (4000x3000, 4:2:0), raw", bytes: 3_466_427 },
      { kind: "png-24mp", description: "24 MP RGB PNG (6000x4000), raw", bytes: 10_704_110 },
    ];
    const rows = [row(1), row(4)];
    const text = formatLoadReport(inputs, rows, loadChecks(rows, ["jpeg-12mp"]), meta);
    expect(text).toContain("### jpeg-12mp: 12 MP baseline JPEG (4000x3000, 4:2:0), raw, 3.5 MB body\n");
    expect(text).not.toContain("### png-24mp"); // no rows measured
    // padded to the columns (alignTables)
    expect(text).toContain(
      [
        "|   N | answers | ledger peak (since start) | JS heap committed peak | backing store peak |     wasm | isolate total | sum of peaks | workerd RSS growth | p50 s | p90 s | p99 s | max s |",
        "| --: | ------- | ------------------------: | ---------------------: | -----------------: | -------: | ------------: | -----------: | -----------------: | ----: | ----: | ----: | ----: |",
        "|   1 | 200 x1  |                       n/a |                9.0 MiB |           20.0 MiB | 92.9 MiB |     119.9 MiB |    121.9 MiB |           50.0 MiB |  1.00 |  1.00 |  1.00 |  1.00 |",
        "|   4 | 200 x4  |                       n/a |                9.0 MiB |           20.0 MiB | 92.9 MiB |     119.9 MiB |    121.9 MiB |           50.0 MiB |  2.00 |  4.00 |  4.00 |  4.00 |",
      ].join("\n"),
    );
    expect(text).toContain("- ok: the isolate total stays under 128.0 MiB in every row\n");
    expect(text).toContain("CPU flags: sse2 avx2\n");
    expect(text).toContain("(200 samples; at\nmost 250 ms apart");
  });
});
