// The bytes an image decoder reads: a whole Uint8Array, or a ReadableStream read only as far as the decoder
// has got. A streamed source keeps a window: the bytes from the oldest position the decoder may still need
// to the end of what has arrived. A decoder step that runs past the window while more may come throws
// NEED_MORE; the decoder restores the state it saved before the step, asks for more (which releases the
// bytes before that state) and runs the step again, as libjpeg's suspending data source does. Once the
// stream has ended the window ends where the file ends, and a decoder reads it exactly as whole bytes.

import { buffers } from "../buffers.ts";
import { EdgevitError } from "../errors.ts";

// The most a streamed source holds at once (one MCU row of entropy data, a header, a PNG chunk's
// metadata): 1 MiB, some ten times the data of one 16-pixel MCU row of a 6000-pixel-wide photo at high
// quality.
export const DEFAULT_MAX_WINDOW_BYTES = 1 << 20;
// One read of a body into a reader's own buffer (the multipart reader's), and the chunk in hand beside the
// window when a stream is not a byte stream (a byte stream is read straight into the window).
export const BYOB_READ_BYTES = 64 * 1024;
// Bytes asked for at least per refill, so that a step retried after each refill costs amortized linear time
// even when the stream arrives a byte at a time (each refill at least doubles what the retried step had).
const MIN_READ = 16 * 1024;
const INITIAL_CAPACITY = 64 * 1024;

// Thrown (never escaping a decoder) by a step that needs bytes not yet arrived.
class NeedMore {
  private constructor() {}
  static readonly instance = new NeedMore();
}
export const NEED_MORE = NeedMore.instance;

function payloadTooLarge(limit: number): EdgevitError {
  return new EdgevitError("payload_too_large", `the body is larger than the limit of ${limit} bytes`);
}

// What ByteSource reads a window's free end with: a byte stream's BYOB reader (its read transfers the view's
// memory and answers a view of the new buffer), or a reader that fills the caller's view in place and answers
// a view of it (a multipart form's image part, worker/multipart.ts): a BYOB read without the transfer, so no
// stream, promise chain or buffer stands between the body and the window.
export interface ByteReader {
  read(view: Uint8Array<ArrayBuffer>): Promise<ReadableStreamReadResult<Uint8Array<ArrayBuffer>>>;
  cancel(): Promise<void>;
}

export interface StreamSourceOptions {
  maxBytes: number; // the whole stream may not be longer: payload_too_large, checked while reading
  maxWindowBytes?: number;
  minReadBytes?: number; // bytes read at least per refill (tests make it 1, to retry steps at every boundary)
  length?: number; // the stream's length when known (Content-Length, an R2 object's size, a file's)
  // What a failed read becomes, given the bytes read before it (a client that went away, a caller's stream).
  failed?: (received: number, cause: unknown) => Error;
  // Awaited before the source holds more than its window (only while retaining everything): `bytes` is what
  // it will hold. A host's memory reservation grows with it (or refuses).
  reserve?: (bytes: number) => Promise<void>;
}

export class ByteSource {
  bytes: Uint8Array; // the window: bytes[i] is byte offset + i of the file
  offset = 0;
  ended: boolean; // bytes ends where the file ends
  readonly length: number | null; // the file's length, when known before its end arrives
  readonly whole: boolean; // whole bytes, which a decoder may read again from the start; a stream is read once
  readonly maxWindowBytes: number;
  readonly maxBytes: number;
  private readonly minRead: number;
  private buffer: Uint8Array;
  private reader: ReadableStreamDefaultReader<Uint8Array> | ByteReader | null;
  // A byte stream (request, RPC and R2 bodies) is read straight into the window's free end: each read
  // transfers the window's memory and hands it back, so no chunk is allocated per read and reading leaves no
  // garbage behind; a ByteReader fills it in place. Another stream's chunks are copied in as they come.
  readonly byob: boolean;
  // A stream's window comes from the isolate's pool (../buffers.ts) and goes back on close().
  private pooled: { buffer: ArrayBuffer; bytes: number }[] = [];
  private pending: Uint8Array | null = null; // the part of the last chunk read that is not in the window yet
  private received = 0;
  private retaining = false;
  private readonly failed: ((received: number, cause: unknown) => Error) | null;
  private readonly reserve: ((bytes: number) => Promise<void>) | null;

  private constructor(
    bytes: Uint8Array,
    reader: ReadableStreamDefaultReader<Uint8Array> | ByteReader | null,
    o: StreamSourceOptions,
    byob = false,
  ) {
    this.buffer = bytes;
    this.bytes = bytes;
    this.reader = reader;
    this.byob = byob;
    this.ended = reader === null;
    this.whole = reader === null;
    this.received = bytes.length;
    this.length = reader === null ? bytes.length : (o.length ?? null);
    this.maxBytes = o.maxBytes;
    this.maxWindowBytes = reader === null ? bytes.length : (o.maxWindowBytes ?? DEFAULT_MAX_WINDOW_BYTES);
    this.failed = o.failed ?? null;
    this.reserve = o.reserve ?? null;
    this.minRead = o.minReadBytes ?? MIN_READ;
  }

  static of(bytes: Uint8Array): ByteSource {
    return new ByteSource(bytes, null, { maxBytes: bytes.length });
  }

  static from(stream: ReadableStream<Uint8Array> | ByteReader, options: StreamSourceOptions): ByteSource {
    if (options.length !== undefined && options.length > options.maxBytes) throw payloadTooLarge(options.maxBytes);
    if (!(stream instanceof ReadableStream)) return new ByteSource(new Uint8Array(0), stream, options, true);
    let byob: ReadableStreamBYOBReader | null = null;
    try {
      byob = stream.getReader({ mode: "byob" });
    } catch {
      // Not a byte stream: its chunks are read as they come.
    }
    return new ByteSource(new Uint8Array(0), byob ?? stream.getReader(), options, byob !== null);
  }

  // The most bytes this source holds: the window's bound (the whole body for whole bytes, or when retaining).
  get memoryBytes(): number {
    if (this.whole) return this.bytes.length;
    return this.retaining ? this.retainedBytes : this.maxWindowBytes;
  }

  // What the source holds when it retains everything: the whole file (its length when known, or what has
  // arrived once it has ended), at most maxBytes of it.
  get retainedBytes(): number {
    if (this.whole) return this.bytes.length;
    if (this.ended) return this.buffer.length;
    return Math.min(this.length ?? this.maxBytes, this.maxBytes);
  }

  // From now on nothing is released: a decoder that reads its file whole (WebP, GIF, BMP: ./open.ts) asks for
  // this while byte 0 is still in the window; the body limit bounds what is kept.
  retainAll(): void {
    if (this.offset !== 0) throw new RangeError("the source has released its first bytes");
    this.retaining = true;
  }

  // Releases the window's bytes before `keep` (unless retaining) and reads until at least `want` more
  // bytes are in the window or the stream ends. Returns how far the window's start moved: a caller's
  // positions in `bytes` are that much smaller after the call.
  async more(keep: number, want = MIN_READ): Promise<number> {
    if (this.ended) return 0;
    const shift = this.retaining ? 0 : keep;
    let length = this.bytes.length;
    if (shift > 0) {
      this.buffer.copyWithin(0, shift, length);
      length -= shift;
      this.offset += shift;
    }
    // Retaining a file of known length, the buffer grows to that length at most (retainedBytes).
    const limit = this.retaining ? Math.min(this.maxBytes, this.length ?? this.maxBytes) : this.maxWindowBytes;
    const target = length + Math.max(want, Math.min(this.minRead, limit - length), 1);
    let added = 0;
    while (length < target) {
      if (this.pending === null && !this.byob) {
        const chunk = await this.read();
        if (chunk === null) {
          this.ended = true;
          break;
        }
        this.pending = chunk;
      }
      if (length === this.buffer.length) {
        const capacity = Math.min(limit, Math.max(2 * this.buffer.length, INITIAL_CAPACITY, target));
        if (capacity <= length) {
          if (added > 0) break;
          this.bytes = this.buffer.subarray(0, length);
          this.close();
          throw windowFull(limit);
        }
        if (this.reserve && capacity > this.maxWindowBytes) {
          this.bytes = this.buffer.subarray(0, length);
          await this.reserve(capacity).catch((error: unknown) => {
            this.close();
            throw error;
          });
        }
        // The window is the whole of its bound at once, from the pool; a file kept whole grows as it arrives.
        const grown = this.retaining
          ? new Uint8Array(capacity)
          : new Uint8Array(this.acquire(this.maxWindowBytes), 0, this.maxWindowBytes);
        grown.set(this.buffer.subarray(0, length));
        this.buffer = grown;
      }
      if (this.byob) {
        const read = await this.readInto(length);
        if (read === null) {
          this.ended = true;
          break;
        }
        length += read;
        added += read;
        continue;
      }
      const pending = this.pending as Uint8Array;
      const take = Math.min(pending.length, this.buffer.length - length);
      this.buffer.set(pending.subarray(0, take), length);
      this.pending = take === pending.length ? null : pending.subarray(take);
      length += take;
      added += take;
    }
    this.bytes = this.buffer.subarray(0, length);
    return shift;
  }

  // Everything that remains, appended to the window (the caller retains all and bounds the file's size),
  // the buffer doubling as it fills.
  async rest(): Promise<Uint8Array> {
    while (!this.ended) await this.more(0, Math.max(this.minRead, this.bytes.length));
    return this.bytes;
  }

  // Stops reading: a decoder that is done (or has failed) lets the stream go.
  // Its buffers go back to the pool: nothing reads the window after this.
  close(): void {
    const reader = this.reader;
    this.reader = null;
    this.pending = null;
    reader?.cancel().catch(() => {});
    // A window a BYOB read has in flight is the stream's until the read ends: the pool counts it as handed
    // back and lets it go.
    if (this.pooled.length === 0) return;
    this.buffer = this.bytes = new Uint8Array(0);
    for (const { buffer, bytes } of this.pooled.splice(0)) buffers.release(buffer, bytes);
  }

  private acquire(bytes: number): ArrayBuffer {
    const buffer = buffers.acquire(bytes);
    this.pooled.push({ buffer, bytes });
    return buffer;
  }

  // One BYOB read into the window's free end, buffer[at..]: the bytes read, or null at the stream's end.
  // A byte stream's read transfers the window's memory and returns it as a new ArrayBuffer: the window (and
  // the pool's record of it) is re-made on that one. A ByteReader's answers the window's own memory.
  private async readInto(at: number): Promise<number | null> {
    const reader = this.reader as ByteReader | null;
    if (reader === null) return null;
    const window = this.buffer;
    const { byteOffset, length } = window; // a transferred view reads as empty
    let result: ReadableStreamReadResult<Uint8Array>;
    try {
      result = await reader.read(window.subarray(at) as Uint8Array<ArrayBuffer>);
    } catch (cause) {
      this.reader = null;
      throw this.failed ? this.failed(this.received, cause) : cause;
    }
    const memory = result.value?.buffer as ArrayBuffer | undefined;
    if (memory && memory !== window.buffer && this.reader !== null) {
      const pooled = this.pooled.find((p) => p.buffer === window.buffer);
      if (pooled) pooled.buffer = memory;
      this.buffer = new Uint8Array(memory, byteOffset, length);
      this.bytes = this.buffer.subarray(0, at);
    }
    if (result.done || this.reader === null) {
      this.reader = null;
      return null;
    }
    return this.count(result.value.byteLength);
  }

  private async read(): Promise<Uint8Array | null> {
    const reader = this.reader as ReadableStreamDefaultReader<Uint8Array> | null;
    if (reader === null) return null;
    let result: ReadableStreamReadResult<Uint8Array>;
    try {
      result = await reader.read();
    } catch (cause) {
      this.reader = null;
      throw this.failed ? this.failed(this.received, cause) : cause;
    }
    if (result.done) {
      this.reader = null;
      return null;
    }
    this.count(result.value.byteLength);
    return result.value;
  }

  // Counts `bytes` more of the stream against its limit.
  private count(bytes: number): number {
    if (this.received + bytes > this.maxBytes) {
      this.close();
      throw payloadTooLarge(this.maxBytes);
    }
    this.received += bytes;
    return bytes;
  }
}

function windowFull(limit: number): EdgevitError {
  const mib = (limit / (1 << 20)).toFixed(limit % (1 << 20) === 0 ? 0 : 1);
  return new EdgevitError(
    "image_too_large",
    `The image needs more than ${mib} MiB of its file at once to decode (its header, or the compressed data of one row of blocks); this server reads uploads through a window of that size.`,
  );
}

// Decoders yield to the event loop after each slice of work, counted in work (blocks, rows, bytes) rather
// than time: in workerd the clock stands still while code runs. A timer, not a microtask, so that other
// requests' I/O runs in between. Where the runtime has setImmediate (Node), that: it runs after pending I/O
// too, while a zero timer there waits at least a millisecond, which a 12 MP decode's dozens of yields add up.
const nextTurn: (resolve: () => void) => void =
  typeof (globalThis as { setImmediate?: unknown }).setImmediate === "function"
    ? (globalThis as unknown as { setImmediate: (f: () => void) => void }).setImmediate
    : (resolve) => setTimeout(resolve, 0);

export function yieldToOthers(): Promise<void> {
  return new Promise(nextTurn);
}
