// Reads bundles: the prefix and header as they arrive (parsePrefix), a payload streamed to wherever its
// reader keeps it (BundleStream), or a whole bundle in memory (readBundle); each refuses what FORMAT.md
// does not allow with a BundleError.
import {
  BundleError,
  FORMAT_VERSIONS,
  versionList,
  MAGIC,
  MAX_HEADER_BYTES,
  PREFIX_BYTES,
  align64,
  hex32,
  type BundleHeader,
  type Crc32,
  type Section,
  type TensorEntry,
} from "./format.ts";
import { validateHeader } from "./header.ts";
import { floatTensors } from "./layout.ts";
import { sectionFloatTensors } from "./sections.ts";
import { checkSectionPlacement, fileEnd } from "./text.ts";

export type PrefixResult = { header: BundleHeader; payloadOffset: number } | { need: number };

// Incremental: given the first bytes of a stream, either the validated header or how many bytes in
// total it needs before it can tell.
export function parsePrefix(bytes: Uint8Array): PrefixResult {
  if (bytes.length < PREFIX_BYTES) return { need: PREFIX_BYTES };
  const magic = String.fromCharCode(bytes[0], bytes[1], bytes[2], bytes[3]);
  if (magic !== MAGIC) {
    throw new BundleError(
      "bad_magic",
      `not an edgevit bundle: the file starts with ${JSON.stringify(magic)}, not "EVIT"`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint32(4, true);
  if (!FORMAT_VERSIONS.includes(version)) {
    throw new BundleError(
      "unsupported_version",
      `bundle format version ${version}; this build reads versions ${versionList()} (convert the model again)`,
    );
  }
  const headerBytes = view.getUint32(8, true);
  const payloadOffset = view.getUint32(12, true);
  if (headerBytes === 0 || headerBytes > MAX_HEADER_BYTES) {
    throw new BundleError("bad_header", `header length ${headerBytes} is outside 1..${MAX_HEADER_BYTES}`);
  }
  if (payloadOffset !== align64(PREFIX_BYTES + headerBytes)) {
    throw new BundleError(
      "bad_header",
      `payload offset ${payloadOffset} should be ${align64(PREFIX_BYTES + headerBytes)} for a ${headerBytes}-byte header`,
    );
  }
  if (bytes.length < payloadOffset) return { need: payloadOffset };
  let json: unknown;
  try {
    json = JSON.parse(
      new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(PREFIX_BYTES, PREFIX_BYTES + headerBytes)),
    );
  } catch (e) {
    throw new BundleError("bad_header", `header is not UTF-8 JSON: ${(e as Error).message}`);
  }
  for (let i = PREFIX_BYTES + headerBytes; i < payloadOffset; i++) {
    if (bytes[i] !== 0x20) throw new BundleError("bad_header", `byte ${i} between header and payload is not a space`);
  }
  const header = validateHeader(json);
  if (header.version !== version) {
    throw new BundleError("bad_header", `the prefix says version ${version}, the header ${header.version}`);
  }
  if (header.sections) checkSectionPlacement(header.sections, payloadOffset + header.payload.length);
  return { header, payloadOffset };
}

// ---- the checks at the end of a bundle, shared by readBundle, BundleStream and the CLI's upload ----

export function headerTruncated(received: number): BundleError {
  return new BundleError("truncated", `bundle ended after ${received} bytes, inside its prefix or header`);
}

function pastPayload(header: BundleHeader): BundleError {
  return new BundleError(
    "size_mismatch",
    `bundle has bytes past the ${header.payload.length}-byte payload its header declares`,
  );
}

// `received` payload bytes with IEEE CRC-32 `crc`: exactly the declared length, and the declared CRC.
export function checkPayload(header: BundleHeader, received: number, crc: number): void {
  const { length, crc32 } = header.payload;
  if (received < length)
    throw new BundleError("truncated", `bundle payload ended after ${received} of ${length} bytes`);
  if (received > length) throw pastPayload(header);
  const got = hex32(crc);
  if (got !== crc32) {
    throw new BundleError(
      "checksum_mismatch",
      `bundle payload CRC-32 is ${got}, the header says ${crc32}: the file is corrupt`,
    );
  }
}

function nonFinite(entry: TensorEntry, index: number, value: number): BundleError {
  return new BundleError(
    "non_finite",
    `tensor ${entry.name} has a non-finite value (${value}) at element ${index}: the weights are corrupt or overflowed`,
  );
}

// The first NaN or Inf of `count` f32 values at payload offset `offset`, or null.
export type FindNonFinite = (offset: number, count: number) => { index: number; value: number } | null;

// Every float tensor of the payload is finite (NaN and +-Inf refused), searched by `find`.
function checkFloats(header: BundleHeader, find: FindNonFinite): void {
  for (const entry of floatTensors(header.config)) {
    const found = find(entry.offset, entry.bytes / 4);
    if (found) throw nonFinite(entry, found.index, found.value);
  }
}

// Every float tensor of `payload` is finite, checked in place.
export function checkFinite(header: BundleHeader, payload: Uint8Array): void {
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  checkFloats(header, (offset, count) => {
    for (let i = 0; i < count; i++) {
      const value = view.getFloat32(offset + 4 * i, true);
      if (!Number.isFinite(value)) return { index: i, value };
    }
    return null;
  });
}

// A whole bundle in memory -> its header and a view of its payload, with the checks a streaming loader
// makes at the end (length, CRC-32, finite floats). For tools and tests; the engine host streams instead.
export function readBundle(bytes: Uint8Array, crc32: Crc32): { header: BundleHeader; payload: Uint8Array } {
  const result = parsePrefix(bytes);
  if ("need" in result) throw headerTruncated(bytes.length);
  const { header, payloadOffset } = result;
  const sections = header.sections ?? [];
  const end = fileEnd(sections, payloadOffset + header.payload.length);
  if (sections.length > 0 && bytes.length > end) throw pastPayload(header);
  const payload = bytes.subarray(
    payloadOffset,
    sections.length > 0 ? payloadOffset + header.payload.length : undefined,
  );
  // the CRC only of a payload of the right length
  checkPayload(header, payload.length, payload.length === header.payload.length ? crc32(payload) : 0);
  checkFinite(header, payload);
  for (const section of sections)
    checkSectionBytes(section, bytes.subarray(section.offset, section.offset + section.length), crc32);
  return { header, payload };
}

// A section's bytes (read by a ranged read, or cut from a whole file): its length, CRC-32 and finite
// floats, as the payload's are checked.
export function checkSectionBytes(section: Section, bytes: Uint8Array, crc32: Crc32): void {
  checkSectionEnd(section, bytes.length, bytes.length === section.length ? crc32(bytes) : 0);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  checkSectionFloats(section, (offset, count) => {
    for (let i = 0; i < count; i++) {
      const value = view.getFloat32(offset + 4 * i, true);
      if (!Number.isFinite(value)) return { index: i, value };
    }
    return null;
  });
}

// `received` bytes of a section with IEEE CRC-32 `crc`: its declared length and CRC.
export function checkSectionEnd(section: Section, received: number, crc: number): void {
  if (received < section.length) {
    throw new BundleError("truncated", `section ${section.name} ended after ${received} of ${section.length} bytes`);
  }
  if (received > section.length) {
    throw new BundleError("size_mismatch", `section ${section.name} has bytes past its ${section.length} bytes`);
  }
  const got = hex32(crc);
  if (got !== section.crc32) {
    throw new BundleError(
      "checksum_mismatch",
      `section ${section.name}'s CRC-32 is ${got}, the header says ${section.crc32}: the file is corrupt`,
    );
  }
}

export function checkSectionFloats(section: Section, find: FindNonFinite): void {
  for (const entry of sectionFloatTensors(section)) {
    const found = find(entry.offset, entry.bytes / 4);
    if (found) throw nonFinite(entry, found.index, found.value);
  }
}

// Where BundleStream puts a payload: it learns the header before the first payload byte, takes every
// payload byte in order and keeps their CRC-32, and searches its copy for non-finite floats at the end.
export interface PayloadSink {
  // The validated header; may refuse it (throw) or make room for its payload.
  begin(header: BundleHeader): void;
  // Payload bytes for payload offset `offset`; the view is valid only during the call.
  write(bytes: Uint8Array, offset: number): void;
  // IEEE CRC-32 of every byte written.
  crc32(): number;
  findNonFinite: FindNonFinite;
}

// A bundle pushed chunk by chunk, front to back, into a PayloadSink. The prefix and header are gathered in
// a small JS buffer (at most the payload offset; a chunk that holds the whole header is parsed in place),
// every payload byte goes straight to the sink.
//
// A bundle with sections (a text tower after the image payload) is read up to the payload's end: the
// bytes after it are the sections', which this stream does not read (`payloadDone` tells its reader to stop
// and cancel the rest of the object) and refuses only past the file's declared end.
export class BundleStream {
  largestBuffer = 0; // bytes: the largest chunk pushed or header buffer gathered
  private readonly sink: PayloadSink;
  private head = new Uint8Array(0); // prefix and header bytes gathered so far
  private need = PREFIX_BYTES; // bytes parsePrefix needs before it can tell more
  private header: BundleHeader | null = null;
  private received = 0; // payload bytes written
  private trailing = 0; // section bytes after the payload, not read
  private sectionBytes = 0; // bytes the sections take after the payload (their padding included)

  // The payload has all its bytes, and what follows (if anything) is sections.
  get payloadDone(): boolean {
    return this.header !== null && this.sectionBytes > 0 && this.received === this.header.payload.length;
  }

  constructor(sink: PayloadSink) {
    this.sink = sink;
  }

  push(chunk: Uint8Array): void {
    this.largestBuffer = Math.max(this.largestBuffer, chunk.byteLength);
    if (!this.header) {
      chunk = this.gatherHead(chunk);
      if (!this.header) return;
    }
    const room = this.header.payload.length - this.received;
    if (chunk.length > room) {
      this.trailing += chunk.length - room;
      if (this.trailing > this.sectionBytes) throw pastPayload(this.header);
      chunk = chunk.subarray(0, room);
    }
    if (chunk.length === 0) return;
    this.sink.write(chunk, this.received);
    this.received += chunk.length;
  }

  // After the last chunk: the header, once the payload has its declared length and CRC-32 and, checked
  // after the CRC so that the payload is the one the header describes, every float tensor is finite.
  end(): BundleHeader {
    if (!this.header) throw headerTruncated(this.head.length);
    checkPayload(this.header, this.received, this.sink.crc32());
    checkFloats(this.header, (offset, count) => this.sink.findNonFinite(offset, count));
    return this.header;
  }

  // Collects the prefix and header; returns the payload bytes that follow in this chunk.
  private gatherHead(chunk: Uint8Array): Uint8Array {
    for (;;) {
      if (this.head.length === 0 && chunk.length >= this.need) {
        const result = parsePrefix(chunk);
        if ("need" in result) {
          this.need = result.need;
          continue;
        }
        return this.begin(result.header, chunk.subarray(result.payloadOffset), result.payloadOffset);
      }
      const take = Math.min(this.need - this.head.length, chunk.length);
      const joined = new Uint8Array(this.head.length + take);
      joined.set(this.head);
      joined.set(chunk.subarray(0, take), this.head.length);
      this.head = joined;
      this.largestBuffer = Math.max(this.largestBuffer, joined.length);
      chunk = chunk.subarray(take);
      if (this.head.length < this.need) return chunk;
      const result = parsePrefix(this.head);
      if ("need" in result) {
        this.need = result.need;
        continue;
      }
      return this.begin(result.header, chunk, result.payloadOffset);
    }
  }

  private begin(header: BundleHeader, rest: Uint8Array, payloadOffset: number): Uint8Array {
    this.sink.begin(header);
    this.header = header;
    const payloadEnd = payloadOffset + header.payload.length;
    this.sectionBytes = fileEnd(header.sections ?? [], payloadEnd) - payloadEnd;
    this.head = new Uint8Array(0);
    return rest;
  }
}
