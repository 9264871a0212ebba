// Image bytes from whatever a caller hands over (a request body, an RPC argument, an R2 object), read
// with one bound: no more than `limit` bytes are ever held.

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

// The whole stream, refused as soon as it would pass `limit` (the rest is cancelled, not read).
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
  if (chunks.length === 1) return chunks[0];
  const body = new Uint8Array(length);
  let at = 0;
  for (const chunk of chunks) {
    body.set(chunk, at);
    at += chunk.byteLength;
  }
  return body;
}

// The RPC caller's own stream failed: a refusal it can read, not a 500 of ours.
const callerStreamFailed: StreamFailure = (received, cause) =>
  new EdgevitError("bad_parameter", `the image stream failed after ${received} bytes`, { cause });

// An RPC caller's image: bytes as they are, a stream read under the limit.
export async function readInput(image: ImageInput, limit: number): Promise<Uint8Array> {
  if (image instanceof ReadableStream) return readBounded(image, limit, callerStreamFailed);
  const bytes = image instanceof Uint8Array ? image : image instanceof ArrayBuffer ? new Uint8Array(image) : null;
  if (!bytes)
    throw new EdgevitError("bad_parameter", "the image must be an ArrayBuffer, a Uint8Array or a ReadableStream");
  if (bytes.byteLength > limit) throw tooLarge(limit);
  return bytes;
}
