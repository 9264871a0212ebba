// Every file of a corpus that edgevit's sniffing accepts (JPEG, PNG, WebP, GIF, BMP) through the upload
// path's decode (openImageBytes, decode at full scale, the EXIF orientation) against what Pillow 9.4 made
// of it (test/tools/corpus_pillow.py: Image.open, ImageOps.exif_transpose, convert("RGB")): the pixels'
// SHA-256, or both refusing. A refusal must be an EdgevitError with a sentence; anything else would be a 5xx.
//
//   /usr/bin/python3 test/tools/corpus_pillow.py -o .cache/corpus/pillow.json DIR...
//   npx node test/tools/corpus.ts .cache/corpus/pillow.json [--limits]
//
// Without --limits the pixel limit is lifted (what is compared is the decoding); with it, the service's
// defaults apply and an image over them is counted apart.

import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { relative } from "node:path";
import { EdgevitError } from "../../core/errors.ts";
import { openImageBytes, sniffFormat } from "../../core/image/open.ts";
import { applyOrientation } from "../../core/image/orientation.ts";
import { DEFAULT_LIMITS, type Limits } from "../../core/limits.ts";

interface PillowAnswer {
  format?: string;
  width?: number;
  height?: number;
  sha256?: string;
  error?: string;
}

type Ours = { sha256: string; width: number; height: number } | { error: unknown };

async function decode(bytes: Uint8Array, limits: Limits): Promise<Ours> {
  try {
    const decoder = openImageBytes(bytes, limits);
    const { width, height } = decoder.header;
    const data = new Uint8Array(width * height * 3);
    await decoder.decode(1, (rows, first, count) => data.set(rows.subarray(0, count * width * 3), first * width * 3));
    const image = applyOrientation({ width, height, data }, decoder.header.orientation);
    return {
      sha256: createHash("sha256").update(image.data).digest("hex"),
      width: image.width,
      height: image.height,
    };
  } catch (error) {
    return { error };
  }
}

const SENTENCE = /^[A-Z].{20,}[.)]$/;

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const file = args.find((a) => !a.startsWith("--"));
  if (!file) throw new Error("usage: corpus.ts PILLOW_JSON [--limits]");
  const limits: Limits = args.includes("--limits")
    ? DEFAULT_LIMITS
    : { maxPixels: 2 ** 31, maxInterlacedPixels: 2 ** 31, maxCoefficientBytes: 2 ** 31 };
  const { pillow, files } = JSON.parse(readFileSync(file, "utf8")) as {
    pillow: string;
    files: Record<string, PillowAnswer>;
  };
  const tally = new Map<string, string[]>();
  const note = (kind: string, line: string) => {
    const list = tally.get(kind) ?? [];
    list.push(line);
    tally.set(kind, list);
  };
  let considered = 0;
  for (const [path, theirs] of Object.entries(files)) {
    const bytes = new Uint8Array(readFileSync(path));
    const format = sniffFormat(bytes);
    if (!["jpeg", "png", "webp", "gif", "bmp"].includes(format ?? "")) continue;
    considered++;
    const name = relative(process.cwd(), path);
    const started = performance.now();
    const ours = await decode(bytes, limits);
    const ms = performance.now() - started;
    if (ms > 2000) note("slow (over 2 s)", `${name}: ${ms.toFixed(0)} ms`);
    if ("error" in ours) {
      const e = ours.error;
      if (!(e instanceof EdgevitError)) {
        note("crash (not an EdgevitError: a 5xx)", `${name}: ${e instanceof Error ? e.stack : String(e)}`);
      } else if (!SENTENCE.test(e.message)) {
        note("refusal without a sentence", `${name}: ${e.code}: ${e.message}`);
      } else if (theirs.error) {
        note("agree: both refuse", `${name}: ${e.code}: ${e.message} | Pillow: ${theirs.error}`);
      } else if (e.code === "image_too_large") {
        note("over edgevit's limits", `${name}: ${e.message}`);
      } else {
        note("differ: edgevit refuses, Pillow decodes", `${name} (${theirs.format}): ${e.code}: ${e.message}`);
      }
    } else if (theirs.error) {
      note("differ: edgevit decodes, Pillow refuses", `${name}: Pillow: ${theirs.error}`);
    } else if (ours.sha256 === theirs.sha256) {
      note("agree: same pixels", name);
    } else {
      const size = `${ours.width}x${ours.height} vs Pillow's ${theirs.width}x${theirs.height}`;
      note("differ: other pixels", `${name} (${theirs.format}): ${size}`);
    }
  }
  console.log(`Pillow ${pillow}; ${considered} files edgevit's sniffing accepts, of ${Object.keys(files).length}`);
  for (const [kind, lines] of [...tally].sort()) {
    console.log(`\n${kind}: ${lines.length}`);
    if (!kind.startsWith("agree")) for (const line of lines) console.log(`  ${line}`);
  }
}

await main();
