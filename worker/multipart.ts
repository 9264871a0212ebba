// A multipart/form-data body read as it arrives (RFC 7578): the parts before the `image` field are skipped
// (their bytes counted against the body's limit, never held) or, for a caller that asks, kept as text fields
// up to a bound (zero-shot's labels and template), the `image` part's bytes are handed on as a byte stream
// that ends at its delimiter, and nothing after it is read. What the reader holds: one buffer,
// a read of the body (BYOB_READ_BYTES) after the few bytes of a possible delimiter carried over from the
// read before, or after one part's headers (at most MAX_PART_HEADER_BYTES).

import { freeNow } from "../core/buffers.ts";
import { EdgevitError } from "../core/errors.ts";
import { BYOB_READ_BYTES, type ByteReader } from "../core/image/bytes.ts";
import { type StreamFailure, tooLarge } from "./input.ts";

// A part's header lines (Content-Disposition, Content-Type) are a few hundred bytes; more is refused.
export const MAX_PART_HEADER_BYTES = 16 * 1024;
// The reader's one buffer: a read of the body after what is left unread (a part's headers at most).
export const FORM_BUFFER_BYTES = BYOB_READ_BYTES + MAX_PART_HEADER_BYTES + 128;

const CR = 0x0d;
const LF = 0x0a;
const DASH = 0x2d;
const END_OF_HEADERS = Uint8Array.of(CR, LF, CR, LF);

// The text fields before the image part, kept by name, `maxBytes` of them in all.
export interface FormFields {
  values: Map<string, string>;
  maxBytes: number;
}

export interface FormImage {
  type: string; // the part's Content-Type as sent ("" when absent)
  // Its bytes, ending where the part ends, read in place into the reader's views (the decoder's window):
  // no stream between the body and the window, so nothing is allocated per read.
  reader: ByteReader;
  // The same bytes as a byte stream (made when asked for; read one or the other).
  readonly stream: ReadableStream<Uint8Array>;
}

function unparsable(): EdgevitError {
  return new EdgevitError("bad_parameter", "the multipart/form-data body could not be parsed");
}

// The boundary parameter of a multipart Content-Type (RFC 2046: 1 to 70 characters, maybe quoted).
function boundaryOf(contentType: string): string {
  const match = /;\s*boundary\s*=\s*(?:"([^"]{1,70})"|([^;\s]{1,70}))\s*(?:;|$)/i.exec(contentType);
  if (!match) throw unparsable();
  return match[1] ?? match[2];
}

// The first position of `needle` in `hay` at or after `from`, or -1.
function indexOf(hay: Uint8Array, needle: Uint8Array, from: number): number {
  const last = hay.length - needle.length;
  for (let i = hay.indexOf(needle[0], from); i !== -1 && i <= last; i = hay.indexOf(needle[0], i + 1)) {
    let j = 1;
    while (j < needle.length && hay[i + j] === needle[j]) j++;
    if (j === needle.length) return i;
  }
  return -1;
}

// Header lines by lower-case name (a part has few; obsolete folded lines are not supported).
function parseHeaders(text: string): Map<string, string> {
  const headers = new Map<string, string>();
  for (const line of text.split("\r\n")) {
    const colon = line.indexOf(":");
    if (colon <= 0) throw unparsable();
    headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  return headers;
}

// `form-data; name="image"; filename="cat.jpg"`: the field's name, and its file name when it is a file.
function disposition(value: string | undefined): { name: string; filename?: string } {
  if (value === undefined || !/^form-data\s*(;|$)/i.test(value)) throw unparsable();
  const params = new Map<string, string>();
  for (const m of value.matchAll(/;\s*([^=;\s]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;]*))/g)) {
    params.set(m[1].toLowerCase(), m[2] !== undefined ? m[2].replace(/\\(.)/g, "$1") : m[3].trim());
  }
  const name = params.get("name");
  if (name === undefined) throw unparsable();
  const filename = params.get("filename") ?? params.get("filename*");
  return filename === undefined ? { name } : { name, filename };
}

class FormReader {
  private readonly reader: ReadableStreamDefaultReader<Uint8Array> | ReadableStreamBYOBReader;
  private readonly byob: boolean;
  private readonly delimiter: Uint8Array; // CRLF "--" boundary
  private readonly limit: number;
  private readonly failed: StreamFailure;
  // The one buffer the body is read into (a byte stream's reads transfer it and hand it back): the unread
  // bytes (at most a part's headers, or a delimiter's length) then a read's worth. A piece handed on is
  // copied out before the next read.
  private work = new Uint8Array(FORM_BUFFER_BYTES);
  // Unread bytes are buf[pos..], a view of `work`. It starts with a line break, so that a delimiter at the
  // very start is found as every other one.
  private buf: Uint8Array;
  private pos = 0;
  private received = 0;
  private done = false;
  private reading = false; // a read of the body is in flight

  constructor(body: ReadableStream<Uint8Array>, boundary: string, limit: number, failed: StreamFailure) {
    let byob: ReadableStreamBYOBReader | null = null;
    try {
      byob = body.getReader({ mode: "byob" });
    } catch {
      // Not a byte stream: its chunks are copied in as they come.
    }
    this.reader = byob ?? body.getReader();
    this.byob = byob !== null;
    this.delimiter = new TextEncoder().encode(`\r\n--${boundary}`);
    this.limit = limit;
    this.failed = failed;
    this.work.set([CR, LF]);
    this.buf = this.work.subarray(0, 2);
  }

  // The `image` part: the parts before it (and the preamble) read past, or kept in `fields` when they are
  // text, its headers checked.
  async image(fields?: FormFields): Promise<FormImage> {
    try {
      await this.skip();
      let kept = 0;
      while (await this.nextPart()) {
        const headers = await this.headers();
        const { name, filename } = disposition(headers.get("content-disposition"));
        if (name !== "image") {
          if (fields && filename === undefined) {
            const text = await this.text(fields.maxBytes - kept, fields.maxBytes);
            kept += text.length;
            fields.values.set(name, new TextDecoder().decode(text));
          } else await this.skip();
          continue;
        }
        if (filename === undefined)
          throw new EdgevitError("bad_parameter", 'the "image" field must be a file, not text');
        const reader = this.partReader();
        let stream: ReadableStream<Uint8Array> | undefined;
        return {
          type: headers.get("content-type") ?? "",
          reader,
          get stream() {
            stream ??= byteStream(reader);
            return stream;
          },
        };
      }
      throw new EdgevitError("bad_parameter", 'the multipart form has no "image" field');
    } catch (error) {
      this.cancel();
      throw error;
    }
  }

  // The current part's bytes copied into the caller's views as it reads; done at the part's delimiter,
  // which lets the rest of the body go.
  private partReader(): ByteReader {
    return {
      read: async (view) => {
        if (this.done) return { done: true, value: undefined };
        let piece: Uint8Array | null;
        try {
          piece = await this.data(view.length);
        } catch (error) {
          this.cancel();
          throw error;
        }
        if (piece === null) {
          this.cancel();
          return { done: true, value: undefined };
        }
        view.set(piece);
        return { done: false, value: view.subarray(0, piece.length) };
      },
      cancel: async () => this.cancel(),
    };
  }

  // Stops reading the body; the reader's buffer is freed at once (freeNow) unless a read has it.
  private cancel(): void {
    if (this.done) return;
    this.done = true;
    this.reader.cancel().catch(() => {});
    const memory = this.work.buffer as ArrayBuffer;
    this.buf = this.work = new Uint8Array(0);
    if (!this.reading) freeNow(memory);
  }

  // Reads more of the body after the unread bytes (moved to the front); false once the body has ended.
  private async fill(): Promise<boolean> {
    if (this.done) return false;
    const rest = this.buf.length - this.pos;
    this.work.copyWithin(0, this.buf.byteOffset + this.pos, this.buf.byteOffset + this.buf.length);
    let read: number;
    this.reading = true;
    try {
      read = await this.read(rest);
    } catch (cause) {
      this.done = true;
      throw this.failed(this.received, cause);
    } finally {
      this.reading = false;
    }
    if (read < 0) {
      this.done = true;
      return false;
    }
    if (this.received + read > this.limit) {
      this.cancel();
      throw tooLarge(this.limit);
    }
    this.received += read;
    this.buf = this.work.subarray(0, rest + read);
    this.pos = 0;
    return true;
  }

  // One read of the body into work[at..]: the bytes read, or -1 at its end.
  private async read(at: number): Promise<number> {
    if (this.byob) {
      const { done, value } = await (this.reader as ReadableStreamBYOBReader).read(this.work.subarray(at));
      if (value) this.work = new Uint8Array(value.buffer);
      return done ? -1 : value.byteLength;
    }
    const { done, value } = await (this.reader as ReadableStreamDefaultReader<Uint8Array>).read();
    if (done) return -1;
    if (at + value.length > this.work.length) {
      const grown = new Uint8Array(at + value.length);
      grown.set(this.work.subarray(0, at));
      this.work = grown;
    }
    this.work.set(value, at);
    return value.length;
  }

  // At least `n` unread bytes, or false when the body ends first.
  private async need(n: number): Promise<boolean> {
    while (this.buf.length - this.pos < n) if (!(await this.fill())) return false;
    return true;
  }

  // The next piece of the current part's bytes (at most `max`), or null at its delimiter (left unread). A
  // body that ends inside a part is no form.
  private async data(max = Infinity): Promise<Uint8Array | null> {
    for (;;) {
      const at = indexOf(this.buf, this.delimiter, this.pos);
      if (at === this.pos) return null;
      // Without a delimiter in sight, its length less one bytes at the end may be the start of one.
      const end = Math.min(at >= 0 ? at : this.buf.length - (this.delimiter.length - 1), this.pos + max);
      if (end > this.pos) {
        const piece = this.buf.subarray(this.pos, end);
        this.pos = end;
        return piece;
      }
      if (!(await this.fill())) throw unparsable();
    }
  }

  private async skip(): Promise<void> {
    while ((await this.data()) !== null);
  }

  // The current part's bytes, refused past `max` (what is left of the fields' `total`).
  private async text(max: number, total: number): Promise<Uint8Array> {
    const pieces: Uint8Array[] = [];
    let length = 0;
    for (let piece = await this.data(); piece !== null; piece = await this.data()) {
      length += piece.length;
      if (length > max)
        throw new EdgevitError("bad_parameter", `the form's text fields before the image are over ${total} bytes`);
      pieces.push(piece.slice());
    }
    const out = new Uint8Array(length);
    let at = 0;
    for (const piece of pieces) {
      out.set(piece, at);
      at += piece.length;
    }
    return out;
  }

  // Past a delimiter and the rest of its line: true when a part follows, false after the closing one.
  private async nextPart(): Promise<boolean> {
    this.pos += this.delimiter.length;
    if (!(await this.need(2))) throw unparsable();
    if (this.buf[this.pos] === DASH && this.buf[this.pos + 1] === DASH) return false;
    for (;;) {
      if (!(await this.need(2))) throw unparsable();
      const b = this.buf[this.pos];
      if (b === CR && this.buf[this.pos + 1] === LF) {
        this.pos += 2;
        return true;
      }
      // Transport padding (RFC 2046): spaces and tabs before the line break.
      if (b !== 0x20 && b !== 0x09) throw unparsable();
      this.pos++;
    }
  }

  // A part's header lines, up to the empty line that ends them.
  private async headers(): Promise<Map<string, string>> {
    if (!(await this.need(2))) throw unparsable();
    if (this.buf[this.pos] === CR && this.buf[this.pos + 1] === LF) {
      this.pos += 2;
      return new Map();
    }
    for (;;) {
      const end = indexOf(this.buf, END_OF_HEADERS, this.pos);
      if (end - this.pos > MAX_PART_HEADER_BYTES) throw unparsable();
      if (end >= 0) {
        const text = new TextDecoder().decode(this.buf.subarray(this.pos, end));
        this.pos = end + END_OF_HEADERS.length;
        return parseHeaders(text);
      }
      if (this.buf.length - this.pos > MAX_PART_HEADER_BYTES || !(await this.fill())) throw unparsable();
    }
  }
}

// The `image` field of a multipart/form-data body (`contentType` carries its boundary), once the body has
// been read as far as that part's headers; `fields` receives the text fields before it. Refusals:
// bad_parameter for a body that is no form, a form without an `image` field or with a text one, text fields
// over `fields.maxBytes`; payload_too_large past `limit` bytes of body, counted as it is read (the image's
// own bytes included); a failed read is `failed`'s error.
export function formImage(
  body: ReadableStream<Uint8Array>,
  contentType: string,
  limit: number,
  failed: StreamFailure,
  fields?: FormFields,
): Promise<FormImage> {
  return new FormReader(body, boundaryOf(contentType), limit, failed).image(fields);
}

// A ByteReader's bytes as a byte stream: each read fills the stream's view in place.
function byteStream(reader: ByteReader): ReadableStream<Uint8Array> {
  return new ReadableStream({
    type: "bytes",
    autoAllocateChunkSize: BYOB_READ_BYTES,
    pull: async (controller) => {
      const request = controller.byobRequest!;
      const view = request.view!;
      const { done, value } = await reader.read(
        new Uint8Array(view.buffer as ArrayBuffer, view.byteOffset, view.byteLength),
      );
      if (done) {
        controller.close();
        request.respond(0);
        return;
      }
      request.respond(value.length);
    },
    cancel: () => reader.cancel(),
  });
}
