// HTTP plumbing for the API: the image out of a raw or multipart body as a stream, query parameters, and
// JSON / NumPy responses.

import { EdgevitError } from "../core/errors.ts";
import type { ByteReader } from "../core/image/bytes.ts";
import { ERROR_STATUS } from "./status.ts";
import { type ClientDisconnected, clientDisconnected, tooLarge } from "./input.ts";
import { boolOption, choiceOption, intOption } from "./options.ts";
import { Busy, type Ticket } from "./memory.ts";
import { type FormFields, formImage } from "./multipart.ts";

// Declared types a body may come with: any image/* or application/octet-stream. The format itself is
// sniffed from the bytes (core/image/open.ts): a PNG labelled image/jpeg is read as the PNG it is, and a
// HEIC, AVIF or TIFF gets a 415 that names it.
function imageType(type: string): boolean {
  return type === "application/octet-stream" || type.startsWith("image/");
}

// The media type without parameters, lower case ("" when absent).
function mediaType(header: string | null): string {
  return (header ?? "").split(";")[0].trim().toLowerCase();
}

// The declared length, refused at once over `limit`; null when the body comes without one (chunked).
function declaredLength(request: Request, limit: number): number | null {
  const declared = request.headers.get("content-length");
  if (declared === null) return null;
  if (Number(declared) > limit) throw tooLarge(limit);
  return Number(declared);
}

// What a request's headers say of its upload before any of its body is read: whether it is a multipart
// form, and its declared length (refused at once over `limit`; null without one). A raw body must be
// declared an image or application/octet-stream.
export function uploadHeaders(request: Request, limit: number): { form: boolean; length: number | null } {
  const length = declaredLength(request, limit);
  const type = mediaType(request.headers.get("content-type"));
  if (type === "multipart/form-data") return { form: true, length };
  if (!imageType(type)) throw unsupported(type);
  return { form: false, length };
}

// The uploaded image (null for a raw request without a body): the raw body as a stream, or the `image`
// field of a multipart form as a reader that fills the decoder's window in place (multipart.ts), the form
// read as far as that part's headers; the form's whole body
// counts against `limit` as it is read. `fields` receives a form's text fields before the image
// (zero-shot's labels and template).
export async function imageStream(
  request: Request,
  limit: number,
  form: boolean,
  fields?: FormFields,
): Promise<ReadableStream<Uint8Array> | ByteReader | null> {
  if (!form) return request.body;
  const body = request.body ?? new Blob([]).stream();
  const image = await formImage(body, request.headers.get("content-type")!, limit, clientDisconnected, fields);
  const fieldType = mediaType(image.type);
  if (fieldType !== "" && !imageType(fieldType)) {
    await image.reader.cancel();
    throw unsupported(fieldType);
  }
  return image.reader;
}

// A request's memory reservations (memory.ts), released when its answer is done: when the handler returns
// or throws for an answer built in memory, when the body has been sent or cancelled for a streamed one. The
// runtime is asked to keep the request alive until then (`waitUntil`), so a client that goes away does not
// leave a reservation behind.
export class Held {
  private readonly tickets: Ticket[] = [];
  private readonly ctx?: ExecutionContext;
  private streaming = false;
  private ended!: () => void;
  private readonly done = new Promise<void>((resolve) => {
    this.ended = resolve;
  });

  constructor(ctx?: ExecutionContext) {
    this.ctx = ctx;
  }

  add(ticket: Ticket): void {
    if (this.tickets.length === 0) this.ctx?.waitUntil(this.done);
    this.tickets.push(ticket);
  }

  release(): void {
    for (const ticket of this.tickets) ticket.release();
    this.ended();
  }

  // A streamed answer's body, keeping the reservations until it has been read to its end, failed or been
  // cancelled.
  untilSent(body: ReadableStream<Uint8Array>): ReadableStream<Uint8Array> {
    this.streaming = true;
    const reader = body.getReader();
    return new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        try {
          const { done, value } = await reader.read();
          if (!done) return controller.enqueue(value);
          this.release();
          controller.close();
        } catch (error) {
          this.release();
          controller.error(error);
        }
      },
      cancel: async (reason) => {
        this.release();
        await reader.cancel(reason);
      },
    });
  }

  // The handler is done: the reservations go now unless a streamed body keeps them.
  settle(): void {
    if (!this.streaming) this.release();
  }
}

function unsupported(type: string): EdgevitError {
  return new EdgevitError(
    "unsupported_media_type",
    `${type === "" ? "a body without Content-Type" : type} is not accepted: send a JPEG or PNG as image/jpeg, image/png or application/octet-stream, or multipart/form-data with an "image" field`,
  );
}

// An integer query parameter in [min, max], or `fallback` when absent (checked by options.ts).
export function intParam(url: URL, name: string, fallback: number, min: number, max = Infinity): number {
  const raw = url.searchParams.get(name);
  if (raw === null) return fallback;
  return intOption(name, /^-?\d+$/.test(raw.trim()) ? Number(raw) : raw, fallback, min, max, raw);
}

// One of `choices`, or the first choice when absent.
export function choiceParam<T extends string>(url: URL, name: string, choices: readonly T[]): T {
  return choiceOption(name, url.searchParams.get(name) ?? undefined, choices);
}

// A comma-separated list parameter whose every item is one of `choices`.
export function listParam<T extends string>(url: URL, name: string, choices: readonly T[]): Set<T> {
  const items = url.searchParams
    .getAll(name)
    .flatMap((v) => v.split(","))
    .map((v) => v.trim())
    .filter((v) => v !== "");
  for (const item of items) {
    if (!(choices as readonly string[]).includes(item)) {
      throw new EdgevitError("bad_parameter", `${name} accepts ${choices.join(", ")}, got ${JSON.stringify(item)}`);
    }
  }
  return new Set(items as T[]);
}

export function json(body: unknown, status = 200, headers: HeadersInit = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json; charset=utf-8", ...headers },
  });
}

export function errorResponse(error: EdgevitError, headers: Record<string, string> = {}): Response {
  const retry: Record<string, string> = error instanceof Busy ? { "retry-after": String(error.retryAfter) } : {};
  return json(error.toJSON(), ERROR_STATUS[error.code], { ...headers, ...retry });
}

// Whether the client asked for NumPy's format over JSON.
export function wantsNpy(request: Request): boolean {
  return (request.headers.get("accept") ?? "").split(",").some((part) => mediaType(part) === "application/x-npy");
}

// NumPy format version 1.0 (`<f4`, C order): the magic, the header length, a Python dict literal
// padded with spaces to a 64-byte boundary and ended by a newline, then the raw little-endian data.
function npyHeader(shape: readonly number[]): Uint8Array {
  const dims = shape.length === 1 ? `${shape[0]},` : shape.join(", ");
  const dict = `{'descr': '<f4', 'fortran_order': False, 'shape': (${dims}), }`;
  const preamble = 10; // "\x93NUMPY", major, minor, u16 header length
  const headerLength = Math.ceil((preamble + dict.length + 1) / 64) * 64 - preamble;
  const header = `${dict.padEnd(headerLength - 1, " ")}\n`;
  const out = new Uint8Array(preamble + headerLength);
  out.set([0x93, ...new TextEncoder().encode("NUMPY"), 1, 0], 0);
  new DataView(out.buffer).setUint16(8, headerLength, true);
  out.set(new TextEncoder().encode(header), preamble);
  return out;
}

function encodeNpy(data: Float32Array, shape: readonly number[]): Uint8Array {
  const header = npyHeader(shape);
  const out = new Uint8Array(header.byteLength + data.byteLength);
  out.set(header, 0);
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), header.byteLength);
  return out;
}

export function npy(data: Float32Array, shape: readonly number[], headers: HeadersInit = {}): Response {
  return new Response(encodeNpy(data, shape), { headers: { "content-type": "application/x-npy", ...headers } });
}

// A .npy answer whose data is made as it is sent: the header first (the shape is known), then each piece
// `next` makes (undefined: the end), one at a time as the client reads.
export function npyStream(
  shape: readonly number[],
  next: () => Float32Array | undefined,
  headers: HeadersInit = {},
): Response {
  const body = new ReadableStream<Uint8Array>(
    {
      start: (controller) => controller.enqueue(npyHeader(shape)),
      pull: (controller) => {
        const data = next();
        if (data === undefined) return controller.close();
        controller.enqueue(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
      },
    },
    { highWaterMark: 0 },
  );
  return new Response(body, { headers: { "content-type": "application/x-npy", ...headers } });
}

// The response for anything a handler throws: its own status for an EdgevitError, a logged 500 for a bug.
export function failure(error: unknown): Response {
  if (error instanceof EdgevitError) return errorResponse(error);
  console.error("unhandled error:", error);
  return json({ error: { code: "internal_error", message: "an internal error occurred; it has been logged" } }, 500);
}

// `true` or `false` (also 1/0), or `fallback` when absent.
export function boolParam(url: URL, name: string, fallback = false): boolean {
  const raw = url.searchParams.get(name);
  if (raw === null) return fallback;
  const value = raw === "true" || raw === "1" ? true : raw === "false" || raw === "0" ? false : raw;
  return boolOption(name, value, fallback, raw);
}

// The Server-Timing header: each phase measured, in milliseconds. Deployed workerd stands its clock still
// while code runs (it moves at I/O only), so the synchronous decode/preprocess/forward read 0 there; under
// `wrangler dev` they read in coarse whole milliseconds. A phase that read 0 is named without a duration
// rather than reported as taking no time.
export function serverTiming(timings: Record<string, number | undefined>): string {
  return Object.entries(timings)
    .filter(([, ms]) => ms !== undefined)
    .map(([name, ms]) => (ms! > 0 ? `${name};dur=${ms!.toFixed(1)}` : `${name};desc="clock did not advance"`))
    .join(", ");
}

// Nobody is left to answer: a 499-style log line (nginx's "client closed request") instead of a 500.
export function clientGone(request: Request, url: URL, error: ClientDisconnected): Response {
  console.warn(`499 client closed request: ${request.method} ${url.pathname} after ${error.received} body bytes`);
  return new Response(null, { status: 499 });
}
