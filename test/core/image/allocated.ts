// Counts what a decode allocates: the bytes of every typed array constructed with a length while `fn` runs
// (the global constructors are replaced for the duration), and of every buffer the isolate's pool hands out
// (reused or not: what the decode holds). JPEG's Huffman tables are left out (./memory.test.ts says why).

import { buffers } from "../../../core/buffers.ts";

const KINDS = [Uint8Array, Int8Array, Uint16Array, Int16Array, Uint32Array, Int32Array, Float32Array, Float64Array];
const originals = KINDS.map((k) => [k.name, k] as const);

export async function allocated<T>(fn: () => Promise<T> | T): Promise<{ result: T; bytes: number }> {
  let bytes = -buffers.stats.acquiredBytes;
  const g = globalThis as unknown as Record<string, unknown>;
  for (const [name, Base] of originals) {
    const Kind = Base as unknown as new (...args: unknown[]) => { byteLength: number };
    g[name] = class extends Kind {
      constructor(...args: unknown[]) {
        super(...args);
        if (typeof args[0] === "number" && !new Error().stack?.includes("buildHuffmanTable")) bytes += this.byteLength;
      }
    };
  }
  try {
    const result = await fn();
    return { result, bytes: bytes + buffers.stats.acquiredBytes };
  } finally {
    for (const [name, Base] of originals) g[name] = Base;
  }
}
