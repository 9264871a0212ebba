// Writes bundles: the header from what the converter knows, then the payload tensor by tensor in layout
// order, validated against what a reader accepts before a byte is written.
import {
  BundleError,
  MAGIC,
  PREFIX_BYTES,
  QUANTIZATION,
  align64,
  checkPayloadLimit,
  describe,
  hex32,
  type BundleHeader,
  type BundleParts,
  type BundleSource,
  type Crc32,
  versionFor,
} from "./format.ts";
import { checkConfig, validateHeader } from "./header.ts";
import { layout, type Layout } from "./layout.ts";

function headerFor(parts: BundleParts, plan: Layout, crc32: number): BundleHeader {
  return {
    format: "edgevit",
    version: versionFor(parts.config),
    name: parts.name,
    config: parts.config,
    preprocessing: parts.preprocessing,
    labels: parts.labels,
    quantization: QUANTIZATION,
    source: parts.source,
    payload: { length: plan.length, crc32: hex32(crc32) },
    tensors: plan.tensors.map(({ name, offset, bytes }) => ({ name, offset, bytes })),
  };
}

// Prefix, JSON header and space padding: the first `payloadOffset` bytes of the file.
export function encodeHead(header: BundleHeader): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const payloadOffset = align64(PREFIX_BYTES + json.length);
  const head = new Uint8Array(payloadOffset).fill(0x20);
  head.set(new TextEncoder().encode(MAGIC), 0);
  const view = new DataView(head.buffer);
  view.setUint32(4, header.version, true);
  view.setUint32(8, json.length, true);
  view.setUint32(12, payloadOffset, true);
  head.set(json, PREFIX_BYTES);
  return head;
}

function bytesOf(data: ArrayBufferView): Uint8Array {
  // Typed arrays are written in platform order; Node and workerd run little-endian only.
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

// Streams a bundle front to back without holding its payload. The header goes first but carries the
// payload CRC, so `head()` gives a placeholder of the final length and `finish()` the real bytes to write
// over it at file offset 0 (the CRC is fixed-width hex, so the header length does not change).
export class BundleWriter {
  readonly plan: Layout;
  readonly payloadOffset: number;
  private readonly parts: BundleParts;
  private readonly crc32: Crc32;
  private next = 0;
  private written = 0;
  private crc = 0;

  constructor(parts: BundleParts, crc32: Crc32) {
    checkConfig(parts.config);
    this.parts = parts;
    this.crc32 = crc32;
    this.plan = layout(parts.config);
    checkPayloadLimit(this.plan.length, `the payload that ${describe(parts.config)} implies`);
    // write only what a reader accepts
    validateHeader(headerFor(parts, this.plan, 0));
    this.payloadOffset = this.head().length;
  }

  head(): Uint8Array {
    return encodeHead(headerFor(this.parts, this.plan, 0));
  }

  // The next tensor in layout order; returns the chunks to append (alignment padding, then the data).
  add(name: string, data: ArrayBufferView): Uint8Array[] {
    const entry = this.plan.tensors[this.next];
    if (!entry) throw new BundleError("size_mismatch", `tensor ${name} after the last tensor of the layout`);
    if (entry.name !== name) throw new BundleError("bad_header", `tensor ${name} written where ${entry.name} belongs`);
    const bytes = bytesOf(data);
    if (bytes.length !== entry.bytes) {
      throw new BundleError("size_mismatch", `tensor ${name} is ${bytes.length} bytes, the layout says ${entry.bytes}`);
    }
    const chunks: Uint8Array[] = [];
    if (entry.offset > this.written) chunks.push(new Uint8Array(entry.offset - this.written));
    chunks.push(bytes);
    for (const c of chunks) this.crc = this.crc32(c, this.crc);
    this.written = entry.offset + entry.bytes;
    this.next++;
    return chunks;
  }

  get done(): boolean {
    return this.next === this.plan.tensors.length;
  }

  // `source` replaces the parts' source record when it is known only at the end (CRC-32s of files read by
  // ranges); it must encode to the same length, as the placeholder head already holds the payload's place.
  finish(source?: BundleSource): { head: Uint8Array; header: BundleHeader } {
    if (!this.done) {
      throw new BundleError("truncated", `bundle finished before tensor ${this.plan.tensors[this.next].name}`);
    }
    const header = headerFor(source ? { ...this.parts, source } : this.parts, this.plan, this.crc);
    const head = encodeHead(header);
    if (head.length !== this.payloadOffset) throw new Error("bundle header changed length while writing");
    return { head, header };
  }
}

// A whole bundle in memory (small models, tests). `tensors` maps every layout name to its data.
export function encodeBundle(
  parts: BundleParts,
  tensors: Map<string, ArrayBufferView> | Record<string, ArrayBufferView>,
  crc32: Crc32,
): Uint8Array {
  const get = (name: string) => (tensors instanceof Map ? tensors.get(name) : tensors[name]);
  const writer = new BundleWriter(parts, crc32);
  const out = new Uint8Array(writer.payloadOffset + writer.plan.length);
  let at = writer.payloadOffset;
  for (const entry of writer.plan.tensors) {
    const data = get(entry.name);
    if (!data) throw new BundleError("bad_header", `no data for tensor ${entry.name}`);
    for (const chunk of writer.add(entry.name, data)) {
      out.set(chunk, at);
      at += chunk.length;
    }
  }
  out.set(writer.finish().head, 0);
  return out;
}
