// What an isolate keeps alive after a few uploads: a heap snapshot through the inspector (which collects
// first, so garbage is gone and what is left is held), its ArrayBuffers' backing stores grouped by the
// chain of what retains them, largest first. With --during, the snapshot is taken `during` ms into the
// last round, while its uploads are in flight: the backing store before and after the snapshot's
// collection tells the garbage from what is held, and the ledger's count at that moment is printed beside.
//
//   node bench/heap-snapshot.ts [--kind progressive-12mp.jpg] [--n 4] [--rounds 2] [--form] [--during ms]
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { bucketName, putObject } from "../cli/upload.ts";
import { cacheDir, prepareBundle } from "./artifacts.ts";
import { Inspector } from "./inspector.ts";
import { multipartForm } from "./load-report.ts";
import { workerLedger } from "./systems.ts";
import { DevServer } from "./wrangler.ts";

const MODEL = "vit-b16";
const { values: opts } = parseArgs({
  options: {
    kind: { type: "string", default: "progressive-12mp.jpg" },
    n: { type: "string", default: "4" },
    rounds: { type: "string", default: "2" },
    form: { type: "boolean", default: false },
    during: { type: "string" },
  },
});
const file = join(cacheDir, "load-images", opts.kind); // bench/load_images.py, as bench:load makes them
const bytes = new Uint8Array(readFileSync(file));
const imageType = opts.kind.endsWith(".png") ? "image/png" : "image/jpeg";
const { body, contentType: type } = opts.form
  ? multipartForm("image", opts.kind, imageType, bytes, "edgevit-load-test-boundary")
  : { body: bytes, contentType: imageType };

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[]]; edge_fields: string[]; edge_types: [string[]] } };
  nodes: number[];
  edges: number[];
  strings: string[];
}

// Backing stores (native nodes whose size is the ArrayBuffer's bytes) grouped by their first retainer
// chain, four steps up.
function summarise(text: string): string {
  const snap = JSON.parse(text) as Snapshot;
  const { node_fields, node_types, edge_fields, edge_types } = snap.snapshot.meta;
  const nf = node_fields.length;
  const ef = edge_fields.length;
  const [typeAt, nameAt, sizeAt, edgeCountAt] = ["type", "name", "self_size", "edge_count"].map((f) =>
    node_fields.indexOf(f),
  );
  const [edgeTypeAt, toAt] = ["type", "to_node"].map((f) => edge_fields.indexOf(f));
  const nodeTypes = node_types[0];
  const edgeTypes = edge_types[0];
  const count = snap.nodes.length / nf;
  const retainers: number[][] = Array.from({ length: count }, () => []);
  let e = 0;
  for (let n = 0; n < count; n++) {
    const edges = snap.nodes[n * nf + edgeCountAt];
    for (let i = 0; i < edges; i++, e += ef) {
      const kind = edgeTypes[snap.edges[e + edgeTypeAt]];
      if (kind === "weak") continue;
      retainers[snap.edges[e + toAt] / nf].push(n);
    }
  }
  const label = (n: number) => {
    const name = snap.strings[snap.nodes[n * nf + nameAt]];
    return `${nodeTypes[snap.nodes[n * nf + typeAt]]}:${name.slice(0, 40)}`;
  };
  const groups = new Map<string, { bytes: number; count: number }>();
  for (let n = 0; n < count; n++) {
    const name = snap.strings[snap.nodes[n * nf + nameAt]];
    const size = snap.nodes[n * nf + sizeAt];
    const native = nodeTypes[snap.nodes[n * nf + typeAt]] === "native";
    if (size < 16 * 1024 || !native || !name.includes("JSArrayBufferData")) continue;
    const chain: string[] = [label(n)];
    let at = n;
    for (let depth = 0; depth < 4 && retainers[at].length > 0; depth++) {
      at = retainers[at][0];
      chain.push(label(at));
    }
    const key = chain.join(" <- ");
    const g = groups.get(key) ?? { bytes: 0, count: 0 };
    g.bytes += size;
    g.count++;
    groups.set(key, g);
  }
  const rows = [...groups].sort((a, b) => b[1].bytes - a[1].bytes).slice(0, 25);
  return rows.map(([k, g]) => `${(g.bytes / 2 ** 20).toFixed(2).padStart(7)} MiB  x${g.count}  ${k}`).join("\n");
}

const bundle = prepareBundle(MODEL);
const persist = join(cacheDir, "wrangler-load");
putObject(bucketName(), bundle.evit, MODEL, { remote: false, persistTo: persist, quiet: true });
const server = (await DevServer.start(persist)).server;
try {
  const inspector = await Inspector.connect(server.inspectorPort);
  const post = () =>
    fetch(`${server.url}/v1/classify?model=${MODEL}`, {
      method: "POST",
      headers: { "content-type": type },
      body: body as Uint8Array<ArrayBuffer>,
    }).then(async (a) => ({ status: a.status, text: await a.text() }));
  const rounds = Number(opts.rounds);
  let text = "";
  for (let r = 0; r < rounds; r++) {
    const answers = Promise.all(Array.from({ length: Number(opts.n) }, post));
    if (opts.during !== undefined && r === rounds - 1) {
      await new Promise((resolve) => setTimeout(resolve, Number(opts.during)));
      const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;
      const before = await inspector.heapUsage();
      const ledger = await workerLedger(server.url);
      text = await inspector.heapSnapshot();
      const after = await inspector.heapUsage();
      console.log(
        `during round ${r + 1}, ${opts.during} ms in: heap committed ${mib(before.totalSize)} -> ${mib(after.totalSize)}, ` +
          `used ${mib(before.usedSize)} -> ${mib(after.usedSize)}, backing store ${mib(before.backingStorageSize)} -> ` +
          `${mib(after.backingStorageSize)} (the snapshot's collection); ledger: used ${mib(ledger.usedBytes)}, ` +
          `reserved ${mib(ledger.reservedBytes)}, pool ${mib(ledger.poolBytes)}, in flight ${ledger.inFlight}, queued ${ledger.queued}`,
      );
    }
    const done = await answers;
    console.log(`round ${r + 1}: ${done.map((a) => a.status).join(" ")}`);
  }
  if (text === "") text = await inspector.heapSnapshot();
  writeFileSync(join(cacheDir, "heap.heapsnapshot"), text);
  console.log(`snapshot: ${(text.length / 2 ** 20).toFixed(1)} MB of JSON\n${summarise(text)}`);
  inspector.close();
} finally {
  await server.stop();
}
