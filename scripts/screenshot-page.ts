// `npm run screenshot`: docs/page.png, the page at 900 px wide on the ankle-boot sample, taken in
// Debian's headless chromium against `wrangler dev` with the default model (as test/page/page.test.ts).
import { join } from "node:path";
import { chromium } from "playwright-core";
import { DevServer } from "../bench/wrangler.ts";
import { bucketName, putObject } from "../cli/upload.ts";
import { readWranglerConfig, stringVar } from "../cli/wrangler-config.ts";

const root = new URL("..", import.meta.url).pathname;
const persist = join(root, ".cache", "screenshot");
const model = stringVar(readWranglerConfig(), "DEFAULT_MODEL")!;
putObject(bucketName(), join(root, "models", "default", `${model}.evit`), model, {
  remote: false,
  persistTo: persist,
  quiet: true,
});
const { server } = await DevServer.start(persist);
const browser = await chromium.launch({
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
try {
  const page = await browser.newPage({ viewport: { width: 900, height: 900 } });
  await page.goto(`${server.url}/`);
  await page.waitForFunction((name) => document.querySelector<HTMLSelectElement>("#model")?.value === name, model);
  await page.setInputFiles("#file", join(root, "page", "samples", "ankle-boot.jpg"));
  await page.waitForSelector("#pca-frames img");
  await page.selectOption("#layer", "3");
  await page.screenshot({ path: join(root, "docs", "page.png"), fullPage: true, animations: "disabled" });
  console.log("wrote docs/page.png");
} finally {
  await browser.close();
  await server.stop();
}
