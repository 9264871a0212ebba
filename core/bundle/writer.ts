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
  type Section,
  versionFor,
} from "./format.ts";
import { checkConfig, validateHeader } from "./header.ts";
import { layout, type Layout } from "./layout.ts";
import { sectionLayout, type SectionEntry } from "./sections.ts";

// A section's place and layout: its offset follows from the header's length, found by writing the header.
interface SectionPlan {
  offset: number;
  length: number;
  tensors: SectionEntry[];
}

function headerFor(
  parts: BundleParts,
  plan: Layout,
  crc32: number,
  sections: SectionPlan[],
  crcs: number[],
): BundleHeader {
  const header: BundleHeader = {
    format: "edgevit",
    version: versionFor(parts.config, sections.length),
    name: parts.name,
    config: parts.config,
    preprocessing: parts.preprocessing,
    labels: parts.labels,
    quantization: QUANTIZATION,
    source: parts.source,
    payload: { length: plan.length, crc32: hex32(crc32) },
    tensors: plan.tensors.map(({ name, offset, bytes }) => ({ name, offset, bytes })),
  };
  if (sections.length > 0) {
    header.sections = (parts.sections ?? []).map(
      (s, i): Section => ({
        ...s,
        offset: sections[i].offset,
        length: sections[i].length,
        crc32: hex32(crcs[i] ?? 0),
        tensors: sections[i].tensors.map(({ name, offset, bytes }) => ({ name, offset, bytes })),
      }),
    );
  }
  return header;
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
//
// Sections (a text tower) follow the payload: after the image's tensors, addSection() takes each section's
// tensors in its layout's order. Their absolute offsets depend on the header's length, which depends on
// them: the header is encoded until the offsets it states are where they land (twice, at most three times).
export class BundleWriter {
  readonly plan: Layout;
  readonly payloadOffset: number;
  readonly sections: SectionPlan[];
  private readonly parts: BundleParts;
  private readonly crc32: Crc32;
  private next = 0;
  private written = 0;
  private crc = 0;
  private section = 0; // the section addSection() writes
  private sectionNext = 0; // its next tensor
  private position = 0; // absolute file position written so far, once in the sections
  private readonly sectionCrcs: number[] = [];

  constructor(parts: BundleParts, crc32: Crc32) {
    checkConfig(parts.config);
    this.parts = parts;
    this.crc32 = crc32;
    this.plan = layout(parts.config);
    checkPayloadLimit(this.plan.length, `the payload that ${describe(parts.config)} implies`);
    const layouts = (parts.sections ?? []).map(sectionLayout);
    let payloadOffset = 0;
    let sections: SectionPlan[] = [];
    for (let round = 0; ; round++) {
      let at = align64(payloadOffset + this.plan.length);
      sections = layouts.map((l) => {
        const plan = { offset: at, length: l.length, tensors: l.tensors };
        at = align64(at + l.length);
        return plan;
      });
      const length = encodeHead(headerFor(parts, this.plan, 0, sections, [])).length;
      if (length === payloadOffset) break;
      if (round > 4) throw new Error("bundle header length does not settle");
      payloadOffset = length;
    }
    this.sections = sections;
    this.payloadOffset = payloadOffset;
    // write only what a reader accepts
    validateHeader(headerFor(parts, this.plan, 0, sections, []));
  }

  head(): Uint8Array {
    return encodeHead(headerFor(this.parts, this.plan, 0, this.sections, []));
  }

  // The file's length once every tensor is written.
  get fileLength(): number {
    const last = this.sections[this.sections.length - 1];
    return last ? last.offset + last.length : this.payloadOffset + this.plan.length;
  }

  // The next tensor of the sections, in order; returns the chunks to append (the zero bytes before it, then
  // its data). Each section's CRC-32 covers its own bytes, its padding included.
  addSection(name: string, data: ArrayBufferView): Uint8Array[] {
    if (!this.done) throw new BundleError("bad_header", `section tensor ${name} before the payload's last tensor`);
    const plan = this.sections[this.section];
    const entry = plan?.tensors[this.sectionNext];
    if (!entry) throw new BundleError("size_mismatch", `section tensor ${name} after the last tensor of the sections`);
    if (entry.name !== name)
      throw new BundleError("bad_header", `section tensor ${name} written where ${entry.name} belongs`);
    const bytes = bytesOf(data);
    if (bytes.length !== entry.bytes) {
      throw new BundleError(
        "size_mismatch",
        `section tensor ${name} is ${bytes.length} bytes, the layout says ${entry.bytes}`,
      );
    }
    if (this.position === 0) this.position = this.payloadOffset + this.plan.length;
    const at = plan.offset + entry.offset;
    const chunks: Uint8Array[] = [];
    if (at > this.position) {
      const gap = new Uint8Array(at - this.position);
      chunks.push(gap);
      // the padding before a section's first tensor is outside it; the rest is inside
      const inside = Math.min(gap.length, at - plan.offset);
      if (inside > 0)
        this.sectionCrcs[this.section] = this.crc32(
          gap.subarray(gap.length - inside),
          this.sectionCrcs[this.section] ?? 0,
        );
    }
    chunks.push(bytes);
    this.sectionCrcs[this.section] = this.crc32(bytes, this.sectionCrcs[this.section] ?? 0);
    this.position = at + bytes.length;
    if (++this.sectionNext === plan.tensors.length) {
      this.section++;
      this.sectionNext = 0;
    }
    return chunks;
  }

  get sectionsDone(): boolean {
    return this.section === this.sections.length;
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
    if (!this.sectionsDone) {
      const entry = this.sections[this.section].tensors[this.sectionNext];
      throw new BundleError("truncated", `bundle finished before section tensor ${entry.name}`);
    }
    const parts = source ? { ...this.parts, source } : this.parts;
    const header = headerFor(parts, this.plan, this.crc, this.sections, this.sectionCrcs);
    const head = encodeHead(header);
    if (head.length !== this.payloadOffset) throw new Error("bundle header changed length while writing");
    return { head, header };
  }
}

// A whole bundle in memory (small models, tests). `tensors` maps every layout name to its data.
// `sectionTensors` has one map per section of `parts.sections`.
export function encodeBundle(
  parts: BundleParts,
  tensors: Map<string, ArrayBufferView> | Record<string, ArrayBufferView>,
  crc32: Crc32,
  sectionTensors: Map<string, ArrayBufferView>[] = [],
): Uint8Array {
  const get = (name: string) => (tensors instanceof Map ? tensors.get(name) : tensors[name]);
  const writer = new BundleWriter(parts, crc32);
  const out = new Uint8Array(writer.fileLength);
  let at = writer.payloadOffset;
  for (const entry of writer.plan.tensors) {
    const data = get(entry.name);
    if (!data) throw new BundleError("bad_header", `no data for tensor ${entry.name}`);
    for (const chunk of writer.add(entry.name, data)) {
      out.set(chunk, at);
      at += chunk.length;
    }
  }
  writer.sections.forEach((plan, i) => {
    for (const entry of plan.tensors) {
      const data = sectionTensors[i]?.get(entry.name);
      if (!data) throw new BundleError("bad_header", `no data for section tensor ${entry.name}`);
      for (const chunk of writer.addSection(entry.name, data)) {
        out.set(chunk, at);
        at += chunk.length;
      }
    }
  });
  out.set(writer.finish().head, 0);
  return out;
}
