// Counts what code allocates while it runs: the bytes of every buffer or typed array constructed with a
// length (the global constructors are replaced for the duration).

import { buffers } from "../../../core/buffers.ts";

const TYPED = [Uint8Array, Int8Array, Uint16Array, Int16Array, Uint32Array, Int32Array, Float32Array, Float64Array];

// Bytes of every object of `kinds` made with a length while `fn` runs, except those `skip` names (given
// the constructing stack).
export async function constructedBytes<T>(
  kinds: readonly (abstract new (...args: never[]) => { byteLength: number })[],
  fn: () => Promise<T> | T,
  skip?: (stack: string) => boolean,
): Promise<{ result: T; bytes: number }> {
  let bytes = 0;
  const g = globalThis as unknown as Record<string, unknown>;
  const originals = kinds.map((k) => [k.name, k] as const);
  for (const [name, Base] of originals) {
    const Kind = Base as unknown as new (...args: unknown[]) => { byteLength: number };
    g[name] = class extends Kind {
      constructor(...args: unknown[]) {
        super(...args);
        if (typeof args[0] === "number" && !skip?.(new Error().stack ?? "")) bytes += this.byteLength;
      }
    };
  }
  try {
    const result = await fn();
    return { result, bytes };
  } finally {
    for (const [name, Base] of originals) g[name] = Base;
  }
}

// What a decode allocates: every typed array made with a length, and every buffer the isolate's pool hands
// out (reused or not: what the decode holds). JPEG's Huffman tables are left out (./memory.test.ts says
// why).
export async function allocated<T>(fn: () => Promise<T> | T): Promise<{ result: T; bytes: number }> {
  const before = buffers.stats.acquiredBytes;
  const { result, bytes } = await constructedBytes(TYPED, fn, (stack) => stack.includes("buildHuffmanTable"));
  return { result, bytes: bytes + buffers.stats.acquiredBytes - before };
}
