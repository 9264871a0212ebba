// Writes what decodeJpeg makes of every fixture photo (RGB after EXIF orientation) to
// .cache/image-decoded/, so that preprocess_goldens.py can feed PIL the very same pixels.
// Run: npx node test/tools/dump_decoded.ts

import { mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { decodeJpeg } from "../../core/image/jpeg/fallback.ts";

const root = new URL("../../", import.meta.url).pathname;
const fixtures = join(root, "test/fixtures/images");
const out = join(root, ".cache/image-decoded");
mkdirSync(out, { recursive: true });

const index: Record<string, { width: number; height: number }> = {};
for (const name of readdirSync(fixtures).sort()) {
  if (!name.endsWith(".jpg") || /^(invalid-|orient-|cat-42)/.test(name)) continue;
  const image = decodeJpeg(new Uint8Array(readFileSync(join(fixtures, name))));
  writeFileSync(join(out, `${name}.rgb`), image.data);
  index[name] = { width: image.width, height: image.height };
  console.log(`${name}: ${image.width}x${image.height}`);
}
writeFileSync(join(out, "index.json"), JSON.stringify(index, null, 1));
