// How long a refusal takes: hostile headers through the reader (parsePrefix, as the Worker's loader and
// catalogue use it), `edgevit upload`'s check, and the converter on a hostile config.json, beside the
// same work on a good bundle. `node bench/hostile.ts`; figures in docs/RELIABILITY.md.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { checkBundle } from "../cli/upload.ts";
import { parsePrefix } from "../core/bundle/reader.ts";
import { convertDirectory } from "../models/convert-folder.ts";
import {
  TINY,
  VIT_PREPROCESSOR,
  hfConfig,
  hfTensors,
  makeWeights,
  writeCheckpoint,
} from "../test/models/checkpoints.ts";
import { randomBundle, withHeader } from "../test/worker/bundles.ts";
import { summarize } from "./stats.ts";

const RUNS = 21;

async function time(what: string, run: () => unknown): Promise<void> {
  const ms: number[] = [];
  let outcome = "accepted";
  for (let i = 0; i < RUNS; i++) {
    const start = performance.now();
    try {
      await run();
    } catch (e) {
      outcome = `refused: ${(e as Error).message.slice(0, 70)}`;
    }
    ms.push(performance.now() - start);
  }
  const s = summarize(ms);
  console.log(`${what.padEnd(44)} median ${s.median.toFixed(3)} ms, max ${s.max.toFixed(3)} ms  ${outcome}`);
}

const dir = mkdtempSync(join(tmpdir(), "edgevit-hostile-"));
try {
  const good = randomBundle("good", 1);
  const layers = (n: number) => withHeader(good, (h) => (h.config.layers = n));
  await time("parsePrefix, good bundle", () => parsePrefix(good));
  const million = layers(1_000_000);
  const hundredThousand = layers(100_000);
  await time("parsePrefix, layers 1e6", () => parsePrefix(million));
  await time("parsePrefix, layers 1e5", () => parsePrefix(hundredThousand));

  const file = (name: string, bytes: Uint8Array) => {
    const path = join(dir, name);
    writeFileSync(path, bytes);
    return path;
  };
  const goodFile = file("good.evit", good);
  const hostileFile = file("hostile.evit", million);
  await time("upload check, good bundle", () => checkBundle(goodFile));
  await time("upload check, layers 1e6", () => checkBundle(hostileFile));

  const w = makeWeights(TINY);
  const checkpoint = (name: string, extra: Record<string, unknown>) =>
    writeCheckpoint(join(dir, name), hfTensors(TINY, w, "vit"), hfConfig(TINY, extra), VIT_PREPROCESSOR);
  const goodDir = checkpoint("good", {});
  const hostileDir = checkpoint("hostile", { num_hidden_layers: 10_000_000 });
  await time("convert, good tiny checkpoint", () => convertDirectory(goodDir));
  await time("convert, num_hidden_layers 1e7", () => convertDirectory(hostileDir));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
