// The memory an upload's image path takes in JS (heap plus ArrayBuffers: the body, the decoder's buffers,
// the preprocessor's intermediate) while rows stream through: the peak, garbage included, and the live
// peak (sampled after forced collections), for the large files
// scripts/measure-memory.ts makes in .cache/memory/. Node's process.memoryUsage() sees ArrayBuffers,
// which the V8 inspector's heap figures in workerd leave out; the code is the same (core/).
//
//   node --expose-gc scripts/measure-image-memory.ts [files...]     # under npm run, or with npx node

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { VIT_BASE_PREPROCESSING } from "../models/presets.ts";
import { DEFAULT_LIMITS } from "../core/limits.ts";
import { openImageBytes } from "../core/image/open.ts";
import { MiB } from "../core/sizes.ts";
import { outputSize } from "../core/preprocess/preprocess.ts";
import { chooseScale, StreamingPreprocessor } from "../core/preprocess/stream.ts";

const root = new URL("..", import.meta.url).pathname;
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) {
  console.error("run with --expose-gc");
  process.exit(2);
}
const used = () => {
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
};
const VIT = VIT_BASE_PREPROCESSING;

const files = process.argv.slice(2);
const list =
  files.length > 0 ? files : ["24mp.png", "12mp-orient6.jpg", "24mp.jpg"].map((f) => join(root, ".cache", "memory", f));
for (const file of list)
  for (const mode of ["fast", "exact"] as const) {
    gc();
    const base = used();
    const bytes: Uint8Array = readFileSync(file); // a Buffer is a Uint8Array: no second copy
    let peak = used();
    const decoder = openImageBytes(bytes, DEFAULT_LIMITS);
    const scale = chooseScale(decoder.header, VIT, mode);
    const { width, height, orientation } = decoder.header;
    const stream = new StreamingPreprocessor(
      VIT,
      { width: Math.ceil(width / scale), height: Math.ceil(height / scale) },
      orientation,
    );
    let rows = 0;
    let live = peak;
    await decoder.decode(scale, (data, first, count) => {
      stream.sink(data, first, count);
      rows += count;
      if (rows % 64 < count) peak = Math.max(peak, used());
      // What must be held: the same, after a collection (every 512 rows; slow, for this measurement only).
      if (rows % 512 < count) {
        gc();
        live = Math.max(live, used());
      }
    });
    peak = Math.max(peak, used());
    const size = outputSize(VIT, stream.oriented);
    stream.finish(new Float32Array(3 * size.width * size.height));
    peak = Math.max(peak, used());
    console.log(
      `${file.split("/").pop()!.padEnd(18)} ${decoder.header.format} ${width}x${height} decode=${mode} (1/${scale}) ` +
        `body ${(bytes.length / MiB).toFixed(1)} MiB: ` +
        `JS heap + ArrayBuffers above idle (body included): peak ${((peak - base) / MiB).toFixed(1)} MiB, ` +
        `live ${((live - base) / MiB).toFixed(1)} MiB`,
    );
  }
