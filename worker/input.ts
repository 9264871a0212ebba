// What the doors share about the image a caller hands over (a request body, an RPC argument, an R2
// object): the refusal over the body limit, and what each kind of stream's failure becomes. The streams
// themselves are read by the decoders through a bounded window (core/image/bytes.ts, service.ts).

import { buffers } from "../core/buffers.ts";
import { EdgevitError } from "../core/errors.ts";
import type { ImageInput } from "./types.ts";

export function tooLarge(limit: number): EdgevitError {
  return new EdgevitError("payload_too_large", `the body is larger than the limit of ${limit} bytes`);
}

// A request body stopped with an error instead of ending: the client reset or closed the connection.
export class ClientDisconnected extends Error {
  readonly received: number; // bytes read before it stopped
  constructor(received: number, cause: unknown) {
    super(`the client disconnected after sending ${received} body bytes`, { cause });
    this.name = "ClientDisconnected";
    this.received = received;
  }
}

// What a stream's error becomes, given the bytes read before it: each caller knows what its stream is (a
// request body: the client went away; an RPC argument: the caller's stream failed; an R2 body: R2 did).
export type StreamFailure = (received: number, cause: unknown) => Error;

// A request body that failed: the client went away.
export const clientDisconnected: StreamFailure = (received, cause) => new ClientDisconnected(received, cause);

// The RPC caller's own stream failed: a refusal it can read, not a 500 of ours.
export const callerStreamFailed: StreamFailure = (received, cause) =>
  new EdgevitError("bad_parameter", `the image stream failed after ${received} bytes`, { cause });

// A small body read whole (a JSON request such as POST /v1/models'), refused as soon as it would pass
// `limit`: the rest is cancelled, not read. Images never come through here; they stream into the decoders.
export async function readBounded(
  stream: ReadableStream<Uint8Array>,
  limit: number,
  failed: StreamFailure,
): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let length = 0;
  const reader = stream.getReader();
  for (;;) {
    const { done, value } = await reader.read().catch((error: unknown) => {
      throw failed(length, error);
    });
    if (done) break;
    if (length + value.byteLength > limit) {
      await reader.cancel();
      throw tooLarge(limit);
    }
    chunks.push(value);
    length += value.byteLength;
  }
  const whole = new Uint8Array(length);
  let offset = 0;
  for (const chunk of chunks) {
    whole.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return whole;
}

// An RPC caller's bytes (already in this isolate when the call arrives), or null for a stream.
export function inputBytes(image: ImageInput): Uint8Array | null {
  if (image instanceof ReadableStream) return null;
  const bytes = image instanceof Uint8Array ? image : image instanceof ArrayBuffer ? new Uint8Array(image) : null;
  if (!bytes)
    throw new EdgevitError("bad_parameter", "the image must be an ArrayBuffer, a Uint8Array or a ReadableStream");
  return bytes;
}

// Read into by discardBody, one read at a time per body (a BYOB read hands it back).
const DISCARD_READ_BYTES = 16 * 1024;

// The body of a request refused before it was read (503 busy), read to its end, at most `limit` bytes, and
// dropped before the answer. Left unread, workerd may fail the connection instead of delivering the answer
// (cloudflare/workerd#1741; answered first and read after, most refused uploads were reset), and `wrangler
// dev`'s middleware reads it with a default reader, a new ArrayBuffer per chunk: refused 10 MB uploads made
// tens of MiB of garbage in the isolate. A byte stream is read into one buffer from the isolate's pool
// instead, which goes back when the body ends; another stream is cancelled. Resolves once the body is gone,
// never rejects.
export function discardBody(request: Request, limit: number): Promise<void> {
  const body = request.body;
  if (body === null || request.bodyUsed || body.locked) return Promise.resolve();
  let reader: ReadableStreamBYOBReader;
  try {
    reader = body.getReader({ mode: "byob" });
  } catch {
    return body.cancel().catch(() => {});
  }
  return (async () => {
    let buffer = buffers.acquire(DISCARD_READ_BYTES);
    try {
      for (let read = 0; read <= limit; ) {
        const { done, value } = await reader.read(new Uint8Array(buffer, 0, DISCARD_READ_BYTES));
        if (value) buffer = value.buffer as ArrayBuffer;
        if (done || !value) return;
        read += value.byteLength;
      }
      await reader.cancel();
    } catch {
      // The client went away: nothing is left to read.
    } finally {
      buffers.release(buffer, DISCARD_READ_BYTES);
    }
  })();
}
