// Loading: a bundle streamed front to back into a fresh instance's memory (core/bundle/reader.ts checks
// it; every payload byte is copied once, to its place, and through the wasm CRC-32, with no JS copy of the
// payload), then the config and weight table written and init() called.
import { BundleError, describe, tokens, type BundleHeader } from "../bundle/format.ts";
import { BundleStream, type PayloadSink } from "../bundle/reader.ts";
import { initEngine, initError, type EngineExports } from "./abi.ts";
import { growing, memoryPlan, type MemoryPlan } from "./memory.ts";
import { Model } from "./model.ts";

export interface LoadOptions {
  // Called once the header is read, before any wasm memory is grown for the model: may refuse the plan
  // (throw) or make room for it.
  reserve?: (plan: MemoryPlan, header: BundleHeader) => void;
}

// The bundle's payload in engine memory: allocated from the memory plan once the header is known.
class WasmPayload implements PayloadSink {
  plan: MemoryPlan | null = null;
  ptr = 0;
  private readonly e: EngineExports;
  private readonly options: LoadOptions;
  private crc = 0;

  constructor(exports: EngineExports, options: LoadOptions) {
    this.e = exports;
    this.options = options;
  }

  begin(header: BundleHeader): void {
    // alloc(0) is the top of the heap (it takes a few bytes): what the instance holds before the model
    const plan = memoryPlan(header.config, header.payload.length, this.e.alloc(0), this.e.gemmRowTile());
    this.options.reserve?.(plan, header);
    this.plan = plan;
    this.ptr = growing(plan, () => this.e.alloc(header.payload.length));
  }

  write(bytes: Uint8Array, offset: number): void {
    const at = this.ptr + offset;
    new Uint8Array(this.e.memory.buffer, at, bytes.length).set(bytes);
    this.crc = this.e.crc32(this.crc, at, bytes.length) >>> 0;
  }

  crc32(): number {
    return this.crc;
  }

  // In place in wasm memory.
  findNonFinite(offset: number, count: number): { index: number; value: number } | null {
    const at = this.ptr + offset;
    const index = this.e.nonFinite(at, count);
    return index < 0 ? null : { index, value: new Float32Array(this.e.memory.buffer, at + 4 * index, 1)[0] };
  }
}

// Bytes per read from a byte stream. An R2 body read with a default reader arrives in 4 KiB chunks
// (21,510 reads for a ViT-B/16, ~0.5 s of per-read cost in workerd); a BYOB read fills up to 64 KiB,
// the most workerd hands out per read, into one buffer reused for the whole load.
const READ_BYTES = 64 * 1024;

// Loads `source` into the fresh instance `e` and initializes it.
export async function loadModel(
  e: EngineExports,
  source: Uint8Array | ReadableStream<Uint8Array>,
  options: LoadOptions,
): Promise<Model> {
  const payload = new WasmPayload(e, options);
  const stream = new BundleStream(payload);
  let largestJsBuffer = 0;
  if (source instanceof Uint8Array) {
    stream.push(source);
  } else {
    // the sections after the payload (a text tower) are loaded by their own ranged reads
    largestJsBuffer = await pump(source, (chunk) => {
      stream.push(chunk);
      return stream.payloadDone;
    });
  }
  const header = stream.end();
  const c = header.config;
  const code = growing(payload.plan!, () =>
    initEngine(e, c, { ptr: payload.ptr, bytes: header.payload.length, tensors: header.tensors }),
  );
  if (code !== 0) {
    throw new BundleError("bad_header", `engine refused ${header.name} (${describe(c)}): ${initError(code)}`);
  }
  if (e.tokens() !== tokens(c)) {
    throw new Error(`engine planned ${e.tokens()} tokens, the config implies ${tokens(c)}`);
  }
  return new Model(e, header, Math.max(largestJsBuffer, stream.largestBuffer));
}

// Reads `source` to its end, or until `take` returns true (the rest is cancelled), handing each chunk to
// `take` before the next read: BYOB into one buffer of READ_BYTES reused for the whole read when it is a byte
// stream (an R2 body), so at most READ_BYTES of it are in JS at once and no chunk is left for the garbage
// collector; else chunk by chunk as the stream makes them. Every `yieldBytes` it waits for a timer, which
// lets in what a chain of reads that are ready at once keeps out: workerd's inspector waits for the
// isolate's lock, held from one such read to the next, for the whole load otherwise. Returns the largest
// JS buffer it held.
export async function pump(
  source: ReadableStream<Uint8Array>,
  take: (chunk: Uint8Array) => boolean,
  yieldBytes = Number.POSITIVE_INFINITY,
): Promise<number> {
  let byob: ReadableStreamBYOBReader | undefined;
  try {
    byob = source.getReader({ mode: "byob" });
  } catch {
    // not a byte stream
  }
  const reader = byob ?? source.getReader();
  let buffer = new ArrayBuffer(READ_BYTES);
  let largest = byob ? READ_BYTES : 0;
  let sinceYield = 0;
  const read = byob
    ? () => byob.read(new Uint8Array(buffer))
    : () => (reader as ReadableStreamDefaultReader<Uint8Array>).read();
  try {
    for (;;) {
      const { done, value } = await read();
      if (done) break;
      largest = Math.max(largest, value.byteLength);
      const stop = take(value);
      // the read transferred the buffer: the view it returned now owns it
      if (byob) buffer = value.buffer as ArrayBuffer;
      if (stop) {
        await reader.cancel().catch(() => {});
        break;
      }
      sinceYield += value.byteLength;
      if (sinceYield >= yieldBytes) {
        sinceYield = 0;
        await new Promise((resolve) => setTimeout(resolve, 0));
      }
    }
  } catch (error) {
    // stop the source (an R2 body, a file) instead of leaving it half read
    await reader.cancel(error).catch(() => {});
    throw error;
  } finally {
    reader.releaseLock();
  }
  return largest;
}
