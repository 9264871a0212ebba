// A page on another origin calls the API from real headless Chromium (Debian's `chromium`), against
// `wrangler dev` with the default model in its local R2: the browser's own CORS checks (a preflight, since
// image/jpeg is not a simple content type) must let the page read the answer and the exposed version
// header, and the answer must be the one a direct request gets.

import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { join } from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { DevServer } from "../../bench/wrangler.ts";
import { bucketName, putObject } from "../../cli/upload.ts";
import { readWranglerConfig, stringVar } from "../../cli/wrangler-config.ts";

const root = new URL("../..", import.meta.url).pathname;
const PERSIST = join(root, ".cache", "cross-origin-test");
const MODEL = stringVar(readWranglerConfig(), "DEFAULT_MODEL")!;
const SAMPLE = readFileSync(join(root, "models", "default", "samples", "bag.jpg"));

let api: DevServer;
let site: Server;
let siteUrl: string;

// The page: fetches its own sample, posts it to the API (another port, so another origin), prints the outcome.
const page = (apiUrl: string) => `<!doctype html><pre id="out">pending</pre><script>
(async () => {
  const out = document.getElementById("out");
  try {
    const jpeg = await (await fetch("/bag.jpg")).blob();
    const r = await fetch("${apiUrl}/v1/classify?top_k=2", { method: "POST", headers: { "content-type": "image/jpeg" }, body: jpeg });
    out.textContent = JSON.stringify({ status: r.status, version: r.headers.get("x-edgevit-model-version"), body: await r.json() });
  } catch (e) {
    out.textContent = JSON.stringify({ failed: String(e) });
  }
})();
</script>`;

beforeAll(async () => {
  putObject(bucketName(), join(root, "models", "default", `${MODEL}.evit`), MODEL, {
    remote: false,
    persistTo: PERSIST,
    quiet: true,
  });
  api = (await DevServer.start(PERSIST)).server;
  site = createServer((request, response) => {
    if (request.url === "/bag.jpg") response.writeHead(200, { "content-type": "image/jpeg" }).end(SAMPLE);
    else response.writeHead(200, { "content-type": "text/html" }).end(page(api.url));
  });
  await new Promise<void>((resolve) => site.listen(0, "127.0.0.1", resolve));
  siteUrl = `http://localhost:${(site.address() as { port: number }).port}/`;
}, 300_000);

afterAll(async () => {
  await api?.stop();
  site?.close();
});

test("a page on another origin reads a classification and its version header", async () => {
  // Asynchronous: this process also serves the page.
  const { stdout: dom } = await promisify(execFile)(
    "/usr/bin/chromium",
    [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
      "--virtual-time-budget=20000",
      "--dump-dom",
      siteUrl,
    ],
    { encoding: "utf8", timeout: 120_000 },
  );
  const text = /<pre id="out">([^<]*)<\/pre>/.exec(dom)![1].replaceAll("&quot;", '"').replaceAll("&amp;", "&");
  const seen = JSON.parse(text);
  const direct = await fetch(`${api.url}/v1/classify?top_k=2`, {
    method: "POST",
    headers: { "content-type": "image/jpeg" },
    body: SAMPLE,
  });
  expect(seen.failed).toBeUndefined();
  expect(seen.status).toBe(200);
  expect(seen.body).toEqual(await direct.json());
  expect(seen.version).toBe(direct.headers.get("x-edgevit-model-version"));
  expect(seen.body.model).toBe(MODEL);
});
