// Text search end to end, as `npm run dev -- --events` runs it: wrangler dev with the local event
// notifications' Worker in front, edgevit, and the text Worker behind its TEXT binding, all in one session
// with their own local state. A tiny two-tower checkpoint of each family (test/tools/text_towers.ts,
// converted by the project's converter) is the pipeline's model in its own session; images PUT through the
// event stand-in are embedded by the queue consumer into the R2 index; then the page's search box in
// headless Chromium must list them in the order and with the cosines the server's /v1/embed and
// /v1/embed_text answers give (unit embeddings' dot products, computed here), each with its image, and for
// SigLIP the probability /v1/zero_shot gives the query as its one label (CLIP's softmax has none per pair).

import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { type Browser, chromium } from "playwright-core";
import { bucketName, putObject } from "../../cli/upload.ts";
import { convertDirectory } from "../../models/convert-folder.ts";
import { type TextPreset, writeTextTower } from "../tools/text_towers.ts";

const root = new URL("../..", import.meta.url).pathname;
const FIXTURES = join(root, "test", "fixtures", "images");
const IMAGES = ["cat-baseline-420.jpg", "astronaut-444.jpg", "coffee-progressive.jpg", "camera-grayscale.jpg"];
const QUERY = "a photo of a cat";

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

const FAMILIES: { family: string; preset: TextPreset; model: string }[] = [
  { family: "CLIP", preset: "clip-vit-base-patch32", model: "search-clip" },
  { family: "SigLIP", preset: "siglip-base-patch16-224", model: "search-siglip" },
];

describe.each(FAMILIES)("$family", ({ family, preset, model: MODEL }) => {
  const STATE = join(root, ".cache", `search-page-test-${MODEL}`);
  let dev: ChildProcess;
  let url: string;
  let browser: Browser;
  let log = "";

  // Polls `check` until it is true (expect.poll is for tests only, not their hooks).
  async function until(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await check().catch(() => false))) {
      if (Date.now() > deadline) throw new Error(`${what} did not happen within ${timeoutMs} ms:\n${log.slice(-4000)}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  async function post(path: string, body: BodyInit, type: string): Promise<any> {
    const response = await fetch(`${url}${path}`, { method: "POST", body, headers: { "content-type": type } });
    expect(response.status, `${path}: ${log.slice(-2000)}`).toBe(200);
    return response.json();
  }

  beforeAll(async () => {
    rmSync(STATE, { recursive: true, force: true });
    const checkpoint = writeTextTower(join(STATE, "checkpoint"), preset, 7);
    const bundle = join(STATE, `${MODEL}.evit`);
    writeFileSync(bundle, await convertDirectory(checkpoint));
    const persist = join(STATE, "state");
    mkdirSync(persist, { recursive: true });
    putObject(bucketName(), bundle, MODEL, { remote: false, persistTo: persist, quiet: true });
    // wrangler.toml with the pipeline's model set (--var would reach the first Worker of the session only):
    // in this test's folder, so its paths are made absolute
    const config = join(STATE, "wrangler.toml");
    const toml = readFileSync(join(root, "wrangler.toml"), "utf8")
      .replace('main = "worker/index.ts"', `main = "${join(root, "worker", "index.ts")}"`)
      .replace('directory = "page"', `directory = "${join(root, "page")}"`)
      .replace('PIPELINE_MODEL = ""', `PIPELINE_MODEL = "${MODEL}"`)
      .replace('PIPELINE_TASKS = "classify,embed"', 'PIPELINE_TASKS = "embed"');
    expect(toml).toContain(`PIPELINE_MODEL = "${MODEL}"`);
    writeFileSync(config, toml);
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    dev = spawn(
      process.execPath,
      [
        join(root, "node_modules", "wrangler", "bin", "wrangler.js"),
        "dev",
        ...["-c", join("scripts", "local-events", "wrangler.toml"), "-c", config, "-c", "wrangler.text.toml"],
        ...[
          "--persist-to",
          persist,
          "--ip",
          "127.0.0.1",
          "--port",
          String(port),
          "--inspector-port",
          String(await freePort()),
        ],
        ...["--show-interactive-dev-session=false", "--log-level", "warn"],
      ],
      { cwd: root, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, WRANGLER_SEND_METRICS: "false" } },
    );
    dev.stdout!.on("data", (d) => (log += d));
    dev.stderr!.on("data", (d) => (log += d));
    await until("wrangler dev answering /healthz", async () => (await fetch(`${url}/healthz`)).ok, 120_000);
    for (const name of IMAGES) {
      const put = await fetch(`${url}/images/photos/${name}`, {
        method: "PUT",
        body: readFileSync(join(FIXTURES, name)),
      });
      expect(put.status, log).toBe(202);
    }
    // the queue consumer's results, once each image went through it
    for (const name of IMAGES) {
      const result = `${url}/results/results/photos/${name}.json`;
      await until(`the consumer's result for ${name}`, async () => (await fetch(result)).ok, 60_000);
    }
    browser = await chromium.launch({
      executablePath: "/usr/bin/chromium",
      args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run", "--headless"],
    });
  }, 300_000);

  afterAll(async () => {
    await browser?.close();
    dev?.kill("SIGTERM");
  });

  test(`the page's search box lists the bucket's images nearest first, with their cosines${family === "SigLIP" ? " and probabilities" : ""}`, async () => {
    // the reference: the server's own image and text embeddings, unit length, their dot products; SigLIP's
    // probability of the pair as zero-shot scores the query as the one label
    const text = (
      await post(
        `/v1/embed_text?model=${MODEL}`,
        JSON.stringify({ texts: [QUERY], normalize: true }),
        "application/json",
      )
    ).embeddings[0] as number[];
    const expected: { key: string; score: number; probability: number }[] = [];
    for (const name of IMAGES) {
      const bytes = readFileSync(join(FIXTURES, name));
      const image = await post(`/v1/embed?model=${MODEL}&normalize=true`, bytes, "image/jpeg");
      const zeroShot = await post(
        `/v1/zero_shot?model=${MODEL}&labels=${encodeURIComponent(QUERY)}&template=%7B%7D`,
        bytes,
        "image/jpeg",
      );
      expected.push({
        key: `photos/${name}`,
        score: (image.embedding as number[]).reduce((s, x, i) => s + x * text[i], 0),
        probability: zeroShot.scores[0].score,
      });
    }
    expected.sort((a, b) => b.score - a.score);

    const page = await browser.newPage({ viewport: { width: 375, height: 800 } });
    const errors: string[] = [];
    page.on("console", (m) => {
      if (m.type() === "error") errors.push(m.text());
    });
    page.on("pageerror", (e) => errors.push(String(e)));
    await page.goto(url);
    await expect.poll(() => page.locator(`#model option[value="${MODEL}"]`).count(), { timeout: 30_000 }).toBe(1);
    await page.selectOption("#model", MODEL);
    await page.fill("#search-query", QUERY);
    await page.click("#search-go");
    await expect
      .poll(() => page.locator("#search-status").textContent(), { timeout: 60_000 })
      .toContain(`${IMAGES.length} images nearest`);
    // "key: cos 0.123 · p 0.456" for SigLIP; CLIP's cosine alone (its softmax gives no probability per pair)
    const captions = await page.locator("#search-results figcaption").allTextContents();
    const parsed = captions.map((c) => /^(.*): cos (-?\d+\.\d{3})(?: · p (\d\.\d{3}))?$/.exec(c));
    expect(parsed.map((m) => m?.[1])).toEqual(expected.map((e) => e.key));
    parsed.forEach((m, i) => {
      expect(Number(m![2])).toBeCloseTo(expected[i].score, 3);
      if (family === "SigLIP") expect(Number(m![3])).toBeCloseTo(expected[i].probability, 3);
      else expect(m![3]).toBeUndefined();
    });
    const status = await page.locator("#search-status").textContent();
    expect(status).toContain("cos is the cosine of the image's and the text's embeddings");
    if (family === "SigLIP") expect(status).toContain("p is SigLIP's probability that the words describe the image");
    else expect(status).not.toContain("probability");
    // every result's image, decoded by Chromium from GET /v1/search/image
    await expect
      .poll(
        () =>
          page
            .locator("#search-results img")
            .evaluateAll((imgs) => imgs.map((i) => (i as HTMLImageElement).naturalWidth > 0)),
        {
          timeout: 30_000,
        },
      )
      .toEqual(IMAGES.map(() => true));
    expect(errors).toEqual([]);
    await page.close();
  });
});
