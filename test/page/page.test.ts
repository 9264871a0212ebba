// The page at / in real headless Chromium (Debian's `chromium`, driven by playwright-core) against
// `wrangler dev` with the default model in its local R2: a sample chosen through the file input must give
// the predictions /v1/classify gives for the same file, one PCA picture per hidden state plus an animation
// Chromium decodes as that many frames, the attention overlay for a layer and for rollout, no console
// errors, no horizontal scrolling at 375 px; a file that is not an image is refused with a message; against
// an API that wants a token (answered here as a deployment with API_TOKEN answers), the token typed into
// the page is sent with every API call and kept for the tab.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { type Browser, chromium, type Page } from "playwright-core";
import { DevServer } from "../../bench/wrangler.ts";
import { bucketName, putObject } from "../../cli/upload.ts";
import { readWranglerConfig, stringVar } from "../../cli/wrangler-config.ts";

const root = new URL("../..", import.meta.url).pathname;
const PERSIST = join(root, ".cache", "page-test");
const MODEL = stringVar(readWranglerConfig(), "DEFAULT_MODEL")!;
const SAMPLE = join(root, "page", "samples", "ankle-boot.jpg");

let server: DevServer;
let browser: Browser;
let page: Page;
const consoleErrors: string[] = [];

beforeAll(async () => {
  putObject(bucketName(), join(root, "models", "default", `${MODEL}.evit`), MODEL, {
    remote: false,
    persistTo: PERSIST,
    quiet: true,
  });
  server = (await DevServer.start(PERSIST)).server;
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
});
