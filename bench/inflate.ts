// The PNG decoder's inflater (core/image/png/inflate.ts) against DecompressionStream("deflate") on one
// PNG's IDAT stream, same run, alternating, fed 4 KiB pieces as the decoder feeds them; both outputs are
// compared with each other. The default file is bench:load's 24 MP RGB PNG (bench/load_images.py).
//
//   node bench/inflate.ts [file.png] [--rounds 5]      # under npm run, or with npx node

import { readFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Inflater, Inflating } from "../core/image/png/inflate.ts";
import { cacheDir } from "./artifacts.ts";

const { values, positionals } = parseArgs({
  options: { rounds: { type: "string", default: "5" } },
  allowPositionals: true,
});
const file = positionals[0] ?? join(cacheDir, "load-images", "rgb-24mp.png");
const rounds = Number(values.rounds);
const PIECE = 4096;

// The IDAT chunks' data, in order.
const png = new Uint8Array(readFileSync(file));
const view = new DataView(png.buffer, png.byteOffset);
const parts: Uint8Array[] = [];
for (let at = 8; at + 8 <= png.length; ) {
  const length = view.getUint32(at);
  const name = String.fromCharCode(...png.subarray(at + 4, at + 8));
  if (name === "IDAT") parts.push(png.subarray(at + 8, at + 8 + length));
  at += 12 + length;
}
const idat = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
for (let i = 0, at = 0; i < parts.length; at += parts[i++].length) idat.set(parts[i], at);

async function viaStream(): Promise<Uint8Array[]> {
  const stream = new DecompressionStream("deflate");
  const writer = stream.writable.getWriter();
  const reader = stream.readable.getReader();
  const out: Uint8Array[] = [];
  const reading = (async () => {
    for (let r = await reader.read(); !r.done; r = await reader.read()) out.push(r.value);
  })();
  for (let at = 0; at < idat.length; at += PIECE) {
    await writer.ready;
    void writer.write(idat.slice(at, at + PIECE));
  }
  await writer.close();
  await reading;
  return out;
}

const window = new Uint8Array(256 * 1024);
function viaInflater(take: (piece: Uint8Array) => void): void {
  const inflater = new Inflater(window, PIECE);
  let state = Inflating.NeedInput as Inflating;
  const drain = (final: boolean) => {
    do {
      state = inflater.run(final);
      take(inflater.take());
    } while (state === Inflating.WindowFull);
  };
  for (let at = 0; at < idat.length; at += PIECE) {
    inflater.feed(idat.subarray(at, at + PIECE));
    drain(false);
  }
  drain(true);
  if (state !== Inflating.End) throw new Error("the inflater did not reach the stream's end");
}

// Same output: the stream's pieces against the inflater's, byte for byte.
const reference = await viaStream();
let piece = 0;
let offset = 0;
let total = 0;
viaInflater((out) => {
  for (let i = 0; i < out.length; i++) {
    while (offset === reference[piece].length) {
      piece++;
      offset = 0;
    }
    if (reference[piece][offset++] !== out[i]) throw new Error(`outputs differ at byte ${total + i}`);
  }
  total += out.length;
});

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const stream: number[] = [];
const inflater: number[] = [];
for (let r = 0; r < rounds; r++) {
  let t = performance.now();
  await viaStream();
  stream.push(performance.now() - t);
  t = performance.now();
  viaInflater(() => {});
  inflater.push(performance.now() - t);
}
console.log(
  `${cpus()[0].model}, load average ${loadavg()
    .map((x) => x.toFixed(1))
    .join(" ")}, ${rounds} rounds`,
);
console.log(`IDAT ${idat.length} bytes -> ${total} bytes, identical`);
console.log(
  `DecompressionStream median ${median(stream).toFixed(0)} ms (${stream.map((x) => x.toFixed(0)).join(", ")})`,
);
console.log(
  `Inflater            median ${median(inflater).toFixed(0)} ms (${inflater.map((x) => x.toFixed(0)).join(", ")})`,
);
