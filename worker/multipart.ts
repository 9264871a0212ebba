// A multipart/form-data body read as it arrives (RFC 7578): the parts before the `image` field are skipped
// (their bytes counted against the body's limit, never held), the `image` part's bytes are handed on as a
// stream that ends at its delimiter, and nothing after it is read. What the reader holds at once: one
// chunk of the body with the few bytes of a possible delimiter carried over from the chunk before, or one
// part's headers (at most MAX_PART_HEADER_BYTES).

import { EdgevitError } from "../core/errors.ts";
import { type StreamFailure, tooLarge } from "./input.ts";

// A part's header lines (Content-Disposition, Content-Type) are a few hundred bytes; more is refused.
export const MAX_PART_HEADER_BYTES = 16 * 1024;

const CR = 0x0d;
const LF = 0x0a;
const DASH = 0x2d;
const END_OF_HEADERS = Uint8Array.of(CR, LF, CR, LF);

export interface FormImage {
  type: string; // the part's Content-Type as sent ("" when absent)
  stream: ReadableStream<Uint8Array>; // its bytes, ending where the part ends
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
  private readonly reader: ReadableStreamDefaultReader<Uint8Array>;
  private readonly delimiter: Uint8Array; // CRLF "--" boundary
  private readonly limit: number;
  private readonly failed: StreamFailure;
  // Unread bytes are buf[pos..]. buf is never written after it is made: pieces handed on stay valid.
  // It starts with a line break, so that a delimiter at the very start is found as every other one.
  private buf: Uint8Array = Uint8Array.of(CR, LF);
  private pos = 0;
  private received = 0;
  private done = false;

  constructor(body: ReadableStream<Uint8Array>, boundary: string, limit: number, failed: StreamFailure) {
    this.reader = body.getReader();
    this.delimiter = new TextEncoder().encode(`\r\n--${boundary}`);
    this.limit = limit;
    this.failed = failed;
  }

  // The `image` part: the parts before it (and the preamble) read past, its headers checked.
  async image(): Promise<FormImage> {
    try {
      await this.skip();
      while (await this.nextPart()) {
        const headers = await this.headers();
        const { name, filename } = disposition(headers.get("content-disposition"));
        if (name !== "image") {
          await this.skip();
          continue;
        }
        if (filename === undefined)
          throw new EdgevitError("bad_parameter", 'the "image" field must be a file, not text');
        return { type: headers.get("content-type") ?? "", stream: this.partStream() };
      }
      throw new EdgevitError("bad_parameter", 'the multipart form has no "image" field');
    } catch (error) {
      this.cancel();
      throw error;
    }
  }

  // The current part's bytes, pulled as the consumer reads; it closes at the part's delimiter and lets the
  // rest of the body go.
  private partStream(): ReadableStream<Uint8Array> {
    return new ReadableStream<Uint8Array>(
      {
        pull: async (controller) => {
          let piece: Uint8Array | null;
          try {
            piece = await this.data();
          } catch (error) {
            this.cancel();
            throw error;
          }
          if (piece !== null) return controller.enqueue(piece);
          controller.close();
          this.cancel();
        },
        cancel: () => this.cancel(),
      },
      { highWaterMark: 0 },
    );
  }

  private cancel(): void {
    if (this.done) return;
    this.done = true;
    this.reader.cancel().catch(() => {});
  }

  // Reads one more chunk of the body onto the unread bytes; false once the body has ended.
  private async fill(): Promise<boolean> {
    if (this.done) return false;
    let result: ReadableStreamReadResult<Uint8Array>;
    try {
      result = await this.reader.read();
    } catch (cause) {
      this.done = true;
      throw this.failed(this.received, cause);
    }
    if (result.done) {
      this.done = true;
      return false;
    }
    const chunk = result.value;
    if (this.received + chunk.byteLength > this.limit) {
      this.cancel();
      throw tooLarge(this.limit);
    }
    this.received += chunk.byteLength;
    const rest = this.buf.subarray(this.pos);
    if (rest.length === 0) {
      this.buf = chunk;
    } else {
      const joined = new Uint8Array(rest.length + chunk.length);
      joined.set(rest);
      joined.set(chunk, rest.length);
      this.buf = joined;
    }
    this.pos = 0;
    return true;
  }

  // At least `n` unread bytes, or false when the body ends first.
  private async need(n: number): Promise<boolean> {
    while (this.buf.length - this.pos < n) if (!(await this.fill())) return false;
    return true;
  }

  // The next piece of the current part's bytes, or null at its delimiter (left unread). A body that ends
  // inside a part is no form.
  private async data(): Promise<Uint8Array | null> {
    for (;;) {
      const at = indexOf(this.buf, this.delimiter, this.pos);
      if (at === this.pos) return null;
      // Without a delimiter in sight, its length less one bytes at the end may be the start of one.
      const end = at >= 0 ? at : this.buf.length - (this.delimiter.length - 1);
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
// been read as far as that part's headers. Refusals: bad_parameter for a body that is no form, a form
// without an `image` field or with a text one; payload_too_large past `limit` bytes of body, counted as
// it is read (the image's own bytes included); a failed read is `failed`'s error.
export function formImage(
  body: ReadableStream<Uint8Array>,
  contentType: string,
  limit: number,
  failed: StreamFailure,
): Promise<FormImage> {
  return new FormReader(body, boundaryOf(contentType), limit, failed).image();
}
