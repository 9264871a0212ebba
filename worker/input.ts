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

// How a stream is read: `expected` bytes when its length is declared (read into one buffer of that size);
// when it is not, `reserve(bytes)` is awaited before more than `bytes` of body are held (the memory
// ledger's reservation grows with the body, in steps).
export interface ReadOptions {
  expected?: number;
  reserve?: (bytes: number) => Promise<void>;
}

// Reservations grow by this much at a time while a body of unknown length is read.
const RESERVE_STEP = 256 * 1024;

// The whole stream, refused as soon as it would pass `limit` (the rest is cancelled, not read).
export async function readBounded(
  stream: ReadableStream<Uint8Array>,
  limit: number,
  failed: StreamFailure,
  options: ReadOptions = {},
): Promise<Uint8Array> {
  const { expected, reserve } = options;
  const whole = expected !== undefined && expected <= limit ? new Uint8Array(expected) : null;
  const chunks: Uint8Array[] = [];
  let length = 0;
  let reserved = 0;
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
    if (whole && length + value.byteLength <= whole.length) {
      whole.set(value, length);
    } else {
      if (whole && chunks.length === 0) chunks.push(whole.subarray(0, length));
      const needs = length + value.byteLength;
      if (reserve && needs > reserved) {
        reserved = Math.min(limit, Math.ceil(needs / RESERVE_STEP) * RESERVE_STEP);
        await reserve(reserved).catch(async (error: unknown) => {
          await reader.cancel().catch(() => {});
          throw error;
        });
      }
      chunks.push(value);
    }
    length += value.byteLength;
  }
  if (chunks.length === 0) return whole ? whole.subarray(0, length) : new Uint8Array(0);
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

// An RPC caller's image: bytes as they are, a stream read under the limit (its reservation growing with it).
export async function readInput(image: ImageInput, limit: number, options: ReadOptions = {}): Promise<Uint8Array> {
  const bytes = inputBytes(image);
  if (bytes === null) return readBounded(image as ReadableStream<Uint8Array>, limit, callerStreamFailed, options);
  if (bytes.byteLength > limit) throw tooLarge(limit);
  return bytes;
}

// An RPC caller's bytes (already in this isolate when the call arrives), or null for a stream.
export function inputBytes(image: ImageInput): Uint8Array | null {
  if (image instanceof ReadableStream) return null;
  const bytes = image instanceof Uint8Array ? image : image instanceof ArrayBuffer ? new Uint8Array(image) : null;
  if (!bytes)
    throw new EdgevitError("bad_parameter", "the image must be an ArrayBuffer, a Uint8Array or a ReadableStream");
  return bytes;
}
