// The page at / in real headless Chromium (Debian's `chromium`, driven by playwright-core) against
// `wrangler dev` with the default model in its local R2: a sample chosen through the file input must give
// the predictions /v1/classify gives for the same file, one PCA picture per hidden state plus an animation
// Chromium decodes as that many frames, the attention overlay for a layer and for rollout, no console
// errors, no horizontal scrolling at 375 px; a file that is not an image is refused with a message; against
// an API that wants a token (answered here as a deployment with API_TOKEN answers), the token typed into
// the page is sent with every API call and kept for the tab. Then the article's own model under the default
// memory settings: a ViT-B/16 with random weights (models/tools/make-random-vit.ts, made at test time: ~30 s
// of CPU, cached in .cache) drawn through all 12 layers at its 14x14 grid, rollout included; and a SigLIP
// tower (make-random-tower.ts --tiny), which has no class token: its pooling head's attention, the rollout
// ending in it, and its embedding in place of predictions. Last, a SmolVLM-layout model (make-random-tower.ts
// --tiny --text-embeddings, converted with --lm-embeddings): the VLM step, from the tiles through the pixel
// shuffle to its image tokens in the LLM's width and their nearest words, as /v1/image_tokens answers them.

import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { type Browser, chromium, type Page } from "playwright-core";
import { DevServer } from "../../bench/wrangler.ts";
import { bucketName, putObject } from "../../cli/upload.ts";
import { readWranglerConfig, stringVar } from "../../cli/wrangler-config.ts";
import { convertDirectory } from "../../models/convert-folder.ts";
import { makeCheckpoint } from "../../models/tools/make-random-vit.ts";
import { makeTower, parseOptions as towerOptions } from "../../models/tools/make-random-tower.ts";
import { startHubServer } from "../tools/hub-server.ts";

const root = new URL("../..", import.meta.url).pathname;
const PERSIST = join(root, ".cache", "page-test");
const MODEL = stringVar(readWranglerConfig(), "DEFAULT_MODEL")!;
const SAMPLE = join(root, "page", "samples", "ankle-boot.jpg");
const HUB_ROOT = join(root, ".cache", "page-test-hub");
const VIT_B16 = "vit-b16-random";
const SIGLIP = "siglip-tiny-random";
const SMOLVLM = "smolvlm-tiny-lm";
const LLAVA = "llava-tiny-random";
const CAT = join(root, "test", "fixtures", "images", "cat-baseline-420.jpg");

// A checkpoint made by one of the project's tools, converted, kept in .cache by name (the tools are
// deterministic, so a kept bundle is the same bundle).
async function bundleFile(
  name: string,
  files: () => Record<string, Uint8Array>,
  options: { lmEmbeddings?: boolean } = {},
): Promise<string> {
  const dir = join(root, ".cache", "page-test-models");
  const out = join(dir, `${name}.evit`);
  if (existsSync(out)) return out;
  const checkpoint = join(dir, name);
  mkdirSync(checkpoint, { recursive: true });
  for (const [file, bytes] of Object.entries(files()))
    if (file !== "inputs.f32") writeFileSync(join(checkpoint, file), bytes);
  writeFileSync(`${out}.partial`, await convertDirectory(checkpoint, options));
  renameSync(`${out}.partial`, out);
  return out;
}

let server: DevServer;
let hub: Awaited<ReturnType<typeof startHubServer>>;
let browser: Browser;
let page: Page;
const consoleErrors: string[] = [];

beforeAll(async () => {
  const vitB16 = await bundleFile(VIT_B16, () =>
    makeCheckpoint({ preset: "vit-b16", layout: "hf-vit", dtype: "F16", seed: 3, inputs: 1 }),
  );
  const siglip = await bundleFile(SIGLIP, () =>
    makeTower(towerOptions(["--preset", "siglip-base-patch16-224", "--tiny", "--seed", "4", "--inputs", "1"])),
  );
  const smolvlm = await bundleFile(
    SMOLVLM,
    () =>
      makeTower(
        towerOptions([
          "--preset",
          "smolvlm-256m-instruct",
          "--tiny",
          "--seed",
          "5",
          "--inputs",
          "1",
          "--text-embeddings",
        ]),
      ),
    { lmEmbeddings: true },
  );
  const llava = await bundleFile(LLAVA, () =>
    makeTower(towerOptions(["--preset", "llava-1.5-projector", "--tiny", "--seed", "6", "--inputs", "1"])),
  );
  const models: [string, string][] = [
    [MODEL, join(root, "models", "default", `${MODEL}.evit`)],
    [VIT_B16, vitB16],
    [SIGLIP, siglip],
    [SMOLVLM, smolvlm],
    [LLAVA, llava],
  ];
  for (const [name, file] of models)
    putObject(bucketName(), file, name, { remote: false, persistTo: PERSIST, quiet: true });
  // The hub the Worker imports from: a loopback server with the default model's checkpoint as org/tiny-vit.
  const repo = join(HUB_ROOT, "org", "tiny-vit");
  rmSync(HUB_ROOT, { recursive: true, force: true });
  mkdirSync(repo, { recursive: true });
  for (const file of ["config.json", "preprocessor_config.json", "model.safetensors"])
    copyFileSync(join(root, "models", "default", "checkpoint", file), join(repo, file));
  hub = await startHubServer({ root: HUB_ROOT });
  server = (await DevServer.start(PERSIST, undefined, undefined, { HF_ENDPOINT: hub.endpoint })).server;
  browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
      "--headless",
    ],
  });
  page = await browser.newPage({ viewport: { width: 375, height: 800 } });
  page.on("console", (message) => {
    if (message.type() === "error") consoleErrors.push(message.text());
  });
  page.on("pageerror", (error) => consoleErrors.push(String(error)));
});

afterAll(async () => {
  await browser?.close();
  await server?.stop();
  await hub?.close();
});

describe("the page in Chromium", () => {
  test("a sample through the file input: predictions, every hidden state, attention, no errors", async () => {
    const models = await (await fetch(`${server.url}/v1/models`)).json();
    const config = models.models.find((m: { name: string }) => m.name === MODEL).config;
    const classify = await fetch(`${server.url}/v1/classify?top_k=5`, {
      method: "POST",
      headers: { "content-type": "image/jpeg" },
      body: readFileSync(SAMPLE),
    });
    const want = (await classify.json()).predictions as { label: string; score: number }[];

    await page.goto(`${server.url}/`);
    // The empty state says what to do, and the model list comes from /v1/models.
    await expect.poll(() => page.locator("#status").textContent()).toContain("choose one above");
    await page.waitForFunction((name) => document.querySelector<HTMLSelectElement>("#model")?.value === name, MODEL);

    const sees: string[] = [];
    page.on("request", (r) => {
      if (r.url().includes("/v1/see")) sees.push(r.url());
    });
    await page.setInputFiles("#file", SAMPLE);
    await page.waitForSelector("#predictions li .score");

    const labels = await page.locator("#predictions li .label").allTextContents();
    const scores = await page.locator("#predictions li .score").allTextContents();
    expect(labels).toEqual(want.map((p) => p.label));
    expect(labels[0]).toBe("Ankle boot");
    expect(scores).toEqual(want.map((p) => `${(p.score * 100).toFixed(1)}%`));

    // One PCA picture per hidden state 0..L, each decoded by the browser at its full size.
    const frames = page.locator("#pca-frames img");
    await expect.poll(() => frames.count()).toBe(config.layers + 1);
    const sizes = await frames.evaluateAll((imgs) =>
      (imgs as HTMLImageElement[]).map((img) => (img.complete ? img.naturalWidth : 0)),
    );
    expect(sizes).toEqual(Array(config.layers + 1).fill(224));
    // The animation is an APNG that Chromium decodes as one frame per hidden state.
    const animation = await page.evaluate(async () => {
      const img = document.querySelector<HTMLImageElement>("#pca-animation")!;
      const data = await (await fetch(img.src)).arrayBuffer();
      const decoder = new ImageDecoder({ data, type: "image/png" });
      await decoder.tracks.ready;
      return { frames: decoder.tracks.selectedTrack!.frameCount, animated: decoder.tracks.selectedTrack!.animated };
    });
    expect(animation).toEqual({ frames: config.layers + 1, animated: true });

    // The overlay is drawn (not one flat colour) and follows the controls.
    const overlay = () =>
      page.evaluate(() => {
        const canvas = document.querySelector<HTMLCanvasElement>("#attention-canvas")!;
        const data = canvas.getContext("2d")!.getImageData(0, 0, canvas.width, canvas.height).data;
        const colours = new Set<number>();
        for (let i = 0; i < data.length; i += 4) colours.add((data[i] << 16) | (data[i + 1] << 8) | data[i + 2]);
        return { colours: colours.size, pixels: Array.from(data.subarray(0, 4 * 2000)) };
      });
    const last = await overlay();
    expect(last.colours).toBeGreaterThan(16);
    expect(await page.locator("#attention-caption").textContent()).toContain(`Layer ${config.layers}, mean of`);
    await page.selectOption("#layer", "1");
    await page.selectOption("#head", "0");
    expect(await page.locator("#attention-caption").textContent()).toContain("Layer 1, head 0");
    const first = await overlay();
    expect(first.pixels).not.toEqual(last.pixels);
    await page.selectOption("#mode", "rollout");
    expect(await page.locator("#attention-caption").textContent()).toContain("rollout through layers 1–1");
    expect(await page.locator("#head").isDisabled()).toBe(true);

    // The image as the model receives it, with its patch grid, and a caption in the article's terms.
    expect(await page.locator("#input-caption").textContent()).toContain(
      `${config.imageSize / config.patchSize}×${config.imageSize / config.patchSize}`,
    );

    expect(sees).toHaveLength(1); // one forward pass for every picture
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(375);
    expect(await page.locator("#error").isHidden()).toBe(true);
    expect(consoleErrors).toEqual([]);
  });

  test("a file that is not an image is refused with a message and the last answer stays", async () => {
    await page.setInputFiles("#file", { name: "notes.txt", mimeType: "text/plain", buffer: Buffer.from("hello") });
    await expect
      .poll(() => page.locator("#error").textContent())
      .toContain("notes.txt is not a JPEG, PNG, WebP, GIF or BMP image");
    expect(await page.locator("#predictions li .label").first().textContent()).toBe("Ankle boot");
  });

  test("with API_TOKEN set, the page asks for the token and sends it as a bearer token", async () => {
    const TOKEN = "page-test-token";
    const sent: (string | null)[] = [];
    // The 401 worker/auth.ts answers without the right token; with it, the request goes to the server.
    await page.route("**/v1/**", async (route) => {
      const authorization = route.request().headers().authorization ?? null;
      sent.push(authorization);
      if (authorization === `Bearer ${TOKEN}`) return route.continue();
      return route.fulfill({
        status: 401,
        contentType: "application/json",
        headers: { "www-authenticate": 'Bearer realm="edgevit"' },
        body: JSON.stringify({
          error: { code: "unauthorized", message: "this API needs an Authorization: Bearer <token> header" },
        }),
      });
    });
    try {
      await page.goto(`${server.url}/`);
      await expect.poll(() => page.locator("#error").textContent()).toContain("enter it in the Access token field");
      await page.fill("#token", TOKEN);
      await page.dispatchEvent("#token", "change");
      await page.waitForFunction((name) => document.querySelector<HTMLSelectElement>("#model")?.value === name, MODEL);
      expect(await page.locator("#error").isHidden()).toBe(true);
      await page.setInputFiles("#file", SAMPLE);
      await page.waitForSelector("#predictions li .score");
      expect(await page.locator("#predictions li .label").first().textContent()).toBe("Ankle boot");
      expect(sent[0]).toBeNull();
      expect(sent.slice(1)).toEqual(sent.slice(1).map(() => `Bearer ${TOKEN}`));
      expect(sent.length).toBeGreaterThanOrEqual(3); // the first listing, the listing with the token, /v1/see
      expect(await page.evaluate(() => sessionStorage.getItem("edgevit-token"))).toBe(TOKEN);
    } finally {
      await page.unroute("**/v1/**");
    }
  });

  test("a model added from the hub: progress while it imports, then chosen in the picker; a failed import's sentence", async () => {
    consoleErrors.length = 0; // the 401s of the test before
    await page.goto(`${server.url}/`);
    await page.waitForFunction((name) => document.querySelector<HTMLSelectElement>("#model")?.value === name, MODEL);
    const posts: string[] = [];
    page.on("request", (r) => {
      if (r.method() === "POST" && r.url().endsWith("/v1/models")) posts.push(r.postData() ?? "");
    });
    await page.click("#hub summary");
    await page.fill("#hub-repo", "org/tiny-vit");
    await page.fill("#hub-name", "hub-tiny");
    // every sentence the status line shows
    await page.evaluate(() => {
      const status = document.querySelector("#hub-status")!;
      const seen: string[] = [];
      (window as unknown as { hubSeen: string[] }).hubSeen = seen;
      new MutationObserver(() => seen.push(status.textContent ?? "")).observe(status, { childList: true });
    });
    await page.click("#hub-add");
    // the import's progress, then the model in the picker, chosen
    await page.waitForFunction(() => document.querySelector<HTMLSelectElement>("#model")?.value === "hub-tiny", null, {
      timeout: 60_000,
    });
    expect(posts.map((p) => JSON.parse(p))).toEqual([{ repo: "org/tiny-vit", name: "hub-tiny" }]);
    expect(await page.locator("#hub-status").textContent()).toMatch(
      /^hub-tiny is ready \(.*\): chosen in the model picker\.$/,
    );
    expect(await page.locator("#hub-error").isHidden()).toBe(true);
    const said = await page.evaluate(() => (window as unknown as { hubSeen: string[] }).hubSeen);
    expect(said[0]).toBe("Checking org/tiny-vit on the hub…");
    expect(said.slice(1, -1).length).toBeGreaterThan(0);
    for (const line of said.slice(1, -1))
      expect(line).toMatch(
        /^(org\/tiny-vit is queued for import…|Importing org\/tiny-vit \(.+\): [\d.]+ MB of [\d.]+ MB of weights read, [\d.]+ MB of the [\d.]+ MB bundle written…)$/,
      );
    expect(await page.locator("#model option:checked").textContent()).toContain("hub-tiny: ViT classifier");
    // it is the default model's checkpoint: the same answer
    await page.setInputFiles("#file", SAMPLE);
    await expect.poll(() => page.locator("#status").textContent(), { timeout: 60_000 }).toContain("through hub-tiny");
    expect(await page.locator("#predictions li .label").first().textContent()).toBe("Ankle boot");
    const imported = await (await fetch(`${server.url}/v1/models/hub-tiny`)).json();
    expect(imported.import).toMatchObject({ state: "done", repo: "org/tiny-vit" });
    expect(imported.bundle.etag).toBe(imported.import.bundle.etag);

    // a refusal comes back at once, with the server's sentence
    await page.fill("#hub-repo", "org/missing");
    await page.fill("#hub-name", "");
    await page.click("#hub-add");
    await expect.poll(() => page.locator("#hub-error").textContent()).toContain("no repository org/missing");

    // a download cut mid-tensor: the import fails, its sentence is shown, the bundle of before still serves
    hub.hub.cut = { file: "model.safetensors", at: 600_000, times: Infinity };
    try {
      await page.fill("#hub-repo", "org/tiny-vit");
      await page.fill("#hub-name", "hub-tiny");
      await page.click("#hub-add");
      await expect
        .poll(() => page.locator("#hub-error").textContent(), { timeout: 60_000 })
        .toMatch(
          /^The import of org\/tiny-vit failed: the download of model.safetensors stopped after \d+ of \d+ bytes/,
        );
    } finally {
      hub.hub.cut = null;
    }
    expect(await page.locator("#hub-status").isHidden()).toBe(true);
    const after = await (await fetch(`${server.url}/v1/models/hub-tiny`)).json();
    expect(after.import.state).toBe("failed");
    expect(after.bundle.etag).toBe(imported.bundle.etag);
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(375);
    expect(consoleErrors.filter((e) => !/status of 404|status of 502/.test(e))).toEqual([]);
  });

  test("a ViT-B/16 under the default memory settings: all 13 PCA pictures at its 14x14 grid, rollout", async () => {
    consoleErrors.length = 0; // the 401s of the test before
    await page.goto(`${server.url}/`);
    await page.waitForFunction((name) => document.querySelector<HTMLSelectElement>("#model")?.value === name, MODEL);
    // the picker names each model's family
    const labels = await page.locator("#model option").allTextContents();
    expect(labels.find((l) => l.startsWith(VIT_B16))).toContain("ViT classifier, 224px, patch 16, 12 layers, 12 heads");
    expect(labels.find((l) => l.startsWith(SIGLIP))).toContain("SigLIP image tower");
    await page.selectOption("#model", VIT_B16);
    await page.setInputFiles("#file", SAMPLE);
    await page.waitForFunction(() => document.querySelectorAll("#pca-frames img").length === 13, null, {
      timeout: 110_000,
    });
    expect(await page.locator("#error").isHidden()).toBe(true);
    const sizes = await page
      .locator("#pca-frames img")
      .evaluateAll((imgs) => (imgs as HTMLImageElement[]).map((img) => (img.complete ? img.naturalWidth : 0)));
    expect(sizes).toEqual(Array(13).fill(224));
    expect(await page.locator("#input-caption").textContent()).toContain("14×14 = 196 patches of 16×16 pixels");
    expect(await page.locator("#input-caption").textContent()).toContain("with the class token that makes 197 tokens");
    expect(await page.locator("#predictions li .label").count()).toBe(5);
    expect(await page.locator("#layer option").count()).toBe(12);
    await page.selectOption("#mode", "rollout");
    await page.selectOption("#layer", "12");
    expect(await page.locator("#attention-caption").textContent()).toContain("rollout through layers 1–12");
    const colours = await page.evaluate(() => {
      const canvas = document.querySelector<HTMLCanvasElement>("#attention-canvas")!;
      const data = canvas.getContext("2d")!.getImageData(0, 0, canvas.width, canvas.height).data;
      const set = new Set<number>();
      for (let i = 0; i < data.length; i += 4) set.add((data[i] << 16) | (data[i + 1] << 8) | data[i + 2]);
      return set.size;
    });
    expect(colours).toBeGreaterThan(16);
    expect(consoleErrors, consoleErrors.join("\n")).toEqual([]);
  });

  // Picks the model, uploads the file, and waits for the page's answer through it (its status), with no error.
  async function answer(model: string, file: string, status: string): Promise<void> {
    await page.selectOption("#model", model);
    await page.setInputFiles("#file", file);
    await expect.poll(() => page.locator("#status").textContent(), { timeout: 60_000 }).toContain(status);
    expect(await page.locator("#error").isHidden()).toBe(true);
  }

  test("a SigLIP tower: its pooling head's attention, the rollout ending in it, its embedding", async () => {
    const models = await (await fetch(`${server.url}/v1/models`)).json();
    const config = models.models.find((m: { name: string }) => m.name === SIGLIP).config;
    await answer(SIGLIP, SAMPLE, `through ${SIGLIP}`);
    const grid = config.imageSize / config.patchSize;
    expect(await page.locator("#input-caption").textContent()).toContain(`the ${grid * grid} patches are the tokens`);
    expect(await page.locator("#family-caption").textContent()).toContain("no class token");
    // no predictions: the embedding instead
    expect(await page.locator("#predictions").isHidden()).toBe(true);
    expect(await page.locator("#embedding").isVisible()).toBe(true);
    expect(await page.locator("#predictions-title").textContent()).toBe("2. Its image embedding");
    expect(await page.locator("#embedding").textContent()).toContain(`${config.dim} dimensions`);
    await expect.poll(() => page.locator("#pca-frames img").count()).toBe(config.layers + 1);
    // one attention "layer": the pooling head's
    expect(await page.locator("#attention-title").textContent()).toBe("4. Where the pooling head looks");
    expect(await page.locator("#layer option").allTextContents()).toEqual([`pooling head (after ${config.layers})`]);
    await page.selectOption("#mode", "cls");
    await page.selectOption("#head", "mean");
    expect(await page.locator("#attention-caption").textContent()).toContain("The pooling head, mean of the");
    await page.selectOption("#mode", "rollout");
    expect(await page.locator("#attention-caption").textContent()).toContain("ending in the pooling head");
    expect(await page.locator("#registers").isHidden()).toBe(true);
    expect(consoleErrors).toEqual([]);
  });

  test("a SmolVLM-layout model: its layers, the tiles, the pixel shuffle, the image tokens, their nearest words", async () => {
    consoleErrors.length = 0;
    const models = await (await fetch(`${server.url}/v1/models`)).json();
    const entry = models.models.find((m: { name: string }) => m.name === SMOLVLM);
    expect(entry.lmVocab).toBe(256);
    const post = async (query: string) =>
      (
        await fetch(`${server.url}/v1/image_tokens?model=${SMOLVLM}${query}`, {
          method: "POST",
          headers: { "content-type": "image/jpeg" },
          body: readFileSync(CAT),
        })
      ).json();
    const tokens = await post("");
    const nearest = await post("&split=false&nearest=3");

    await page.goto(`${server.url}/`);
    await page.waitForFunction((name) => document.querySelector<HTMLSelectElement>("#model")?.value === name, MODEL);
    const labels = await page.locator("#model option").allTextContents();
    expect(labels.find((l) => l.startsWith(SMOLVLM))).toContain("SmolVLM / Idefics3 vision encoder and connector");
    await answer(SMOLVLM, CAT, `through ${SMOLVLM}: its layers and its image tokens`);

    // the encoder's layers: its patch grid and the PCA animation; no embedding, no attention map, said so
    expect(await page.locator("#input-caption").textContent()).toContain("8×8 = 64 patches of 4×4 pixels");
    expect(await page.locator("#family-caption").textContent()).toContain("without its pooling head");
    expect(await page.locator("#pca-animation").isVisible()).toBe(true);
    expect(await page.locator("#attention-title").textContent()).toBe("4. No single place it looks");

    // the path, each step drawn
    expect(await page.locator("#vlm-section").isVisible()).toBe(true);
    expect(await page.locator("#vlm-intro").textContent()).toContain(
      "tiles → patches → the encoder's layers (steps 1 and 3) → pixel shuffle → tokens in the LLM's width (48)",
    );
    expect(tokens).toMatchObject({ tiles: 13, tokens: 16, lm_dim: 48, grid: { rows: 3, cols: 4 } });
    const tiles = page.locator("#tiles-canvas");
    expect(await tiles.getAttribute("data-rows")).toBe("3");
    expect(await tiles.getAttribute("data-cols")).toBe("4");
    expect(await page.locator("#tiles-caption").textContent()).toContain("3×4 tiles of 32×32 pixels");
    expect(await page.locator("#shuffle-caption").textContent()).toContain(
      "Pixel shuffle by 2, over the global view's 8×8 patches: each 2×2 block of neighbouring patches",
    );
    expect(await page.locator("#shuffle-caption").textContent()).toContain("64 patches become 16 tokens");
    // one 4x4 picture of tokens per frame, in as many colours as tokens (their principal components)
    const frames = await page.locator("#token-frames canvas").evaluateAll((canvases) =>
      (canvases as HTMLCanvasElement[]).map((canvas) => {
        const data = canvas.getContext("2d")!.getImageData(0, 0, canvas.width, canvas.height).data;
        const set = new Set<number>();
        for (let i = 0; i < data.length; i += 4) set.add((data[i] << 16) | (data[i + 1] << 8) | data[i + 2]);
        return { width: canvas.width, colours: set.size };
      }),
    );
    expect(frames).toHaveLength(13);
    for (const frame of frames) expect(frame).toMatchObject({ width: 4 });
    expect(Math.max(...frames.map((f) => f.colours))).toBeGreaterThan(8);
    expect(await page.locator("#token-frames figcaption").last().textContent()).toBe("global view");
    // the global view's tokens' nearest words, as /v1/image_tokens?nearest=3 answers them
    expect(await page.locator("#nearest-block").isVisible()).toBe(true);
    const words = await page.locator("#nearest span").allTextContents();
    expect(words).toEqual(nearest.nearest[0].map((list: { token: string }[]) => list[0].token));
    const hover = await page.locator("#nearest span").first().getAttribute("title");
    expect(hover?.split("\n")).toHaveLength(3);
    expect(await page.locator("#nearest-caption").textContent()).toContain("vocabulary, 256 words");
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(375);
    expect(consoleErrors, consoleErrors.join("\n")).toEqual([]);
  });

  test("a LLaVA projector: steps 1 to 4 as a CLIP tower's, then one frame of patch tokens, no words", async () => {
    consoleErrors.length = 0;
    await answer(LLAVA, CAT, `through ${LLAVA}: its layers and its image tokens`);
    expect(await page.locator("#attention-title").textContent()).toBe("4. Where the class token looks");
    const intro = await page.locator("#vlm-intro").textContent();
    expect(intro).toContain(
      "the image → patches → the encoder's layers (steps 1 and 3) → tokens in the LLM's width (48)",
    );
    expect(await page.locator("#shuffle-caption").textContent()).toMatch(/patch tokens .* linear_1, gelu, linear_2/);
    expect(await page.locator("#token-frames canvas").count()).toBe(1);
    expect(await page.locator("#token-frames canvas").first().getAttribute("width")).toBe("4");
    expect(await page.locator("#nearest-block").isHidden()).toBe(true);
    // back to a classifier: the VLM step goes away
    await page.selectOption("#model", MODEL);
    await expect.poll(() => page.locator("#status").textContent(), { timeout: 60_000 }).toContain(`through ${MODEL}`);
    expect(await page.locator("#vlm-section").isHidden()).toBe(true);
    expect(consoleErrors, consoleErrors.join("\n")).toEqual([]);
  });
});
