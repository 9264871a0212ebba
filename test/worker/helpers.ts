// Helpers to call the Worker inside workerd.

import { createExecutionContext, env } from "cloudflare:test";
import worker from "../../worker/index.ts";
import { pngChunk } from "../png-chunk.ts";

export { randomBundle, SMALL_CONFIG } from "./bundles.ts";

// Calls the Worker's own fetch with bindings and vars replaced (e.g. a counting bucket, a smaller limit).
export function call(request: Request, overrides: Partial<Env> = {}): Promise<Response> {
  // A test builds a plain Request; the Worker reads no `cf` properties.
  return worker.fetch(
    request as Request<unknown, IncomingRequestCfProperties>,
    { ...env, ...overrides },
    createExecutionContext(),
  );
}

// The real R2 binding, counting the reads of each key (ranged reads are counted apart).
export function countingBucket(bucket: R2Bucket): { bucket: R2Bucket; gets: Map<string, number> } {
  const gets = new Map<string, number>();
  const counted = new Proxy(bucket, {
    get(target, property) {
      if (property === "get") {
        return (key: string, options?: R2GetOptions) => {
          if (!options?.range) gets.set(key, (gets.get(key) ?? 0) + 1);
          return target.get(key, options);
        };
      }
      const value = Reflect.get(target, property);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  return { bucket: counted, gets };
}

export function jpegRequest(path: string, body: BodyInit, type = "image/jpeg", headers: HeadersInit = {}): Request {
  return new Request(`http://edgevit.test${path}`, {
    method: "POST",
    body,
    headers: { "content-type": type, ...headers },
  });
}

// A multipart form: the text `fields`, then `image` as its `image` field.
export function imageForm(
  boundary: string,
  image: Uint8Array,
  {
    type = "image/jpeg",
    filename = "x",
    fields = {},
  }: { type?: string; filename?: string; fields?: Record<string, string> } = {},
): Uint8Array {
  const text = new TextEncoder();
  let head = "";
  for (const [name, value] of Object.entries(fields)) {
    head += `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`;
  }
  head += `--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="${filename}"\r\nContent-Type: ${type}\r\n\r\n`;
  const before = text.encode(head);
  const tail = text.encode(`\r\n--${boundary}--\r\n`);
  const body = new Uint8Array(before.length + image.length + tail.length);
  body.set(before);
  body.set(image, before.length);
  body.set(tail, before.length + image.length);
  return body;
}

// The real R2 binding, except that a full (not ranged) read waits until `release()`; `atRead` resolves when
// such a read has begun. Holds a model load open while a test looks at the Worker.
export function gatedBucket(bucket: R2Bucket): { bucket: R2Bucket; atRead: Promise<void>; release: () => void } {
  let reached!: () => void;
  const atRead = new Promise<void>((resolve) => {
    reached = resolve;
  });
  let release!: () => void;
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  const gated = new Proxy(bucket, {
    get(target, property) {
      if (property === "get")
        return async (key: string, options?: R2GetOptions) => {
          if (!options?.range) {
            reached();
            await gate;
          }
          return target.get(key, options);
        };
      const value = Reflect.get(target, property);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  return { bucket: gated, atRead, release };
}

// A valid RGB PNG of gray pixels whose zlib stream is stored, not compressed: its file is larger than its
// pixels (3 x width x height bytes), so a body of any length that the decoder must read to its end.
export function storedPng(width: number, height: number): Uint8Array {
  const rowBytes = 1 + 3 * width;
  const raw = new Uint8Array(rowBytes * height).fill(128);
  for (let y = 0; y < height; y++) raw[y * rowBytes] = 0; // filter: none
  const blocks = Math.ceil(raw.length / 65535);
  const zlib = new Uint8Array(2 + raw.length + 5 * blocks + 4);
  zlib.set([0x78, 0x01]);
  let at = 2;
  for (let b = 0; b < blocks; b++) {
    const piece = raw.subarray(b * 65535, Math.min(raw.length, (b + 1) * 65535));
    zlib.set(
      [
        b === blocks - 1 ? 1 : 0,
        piece.length & 0xff,
        piece.length >> 8,
        ~piece.length & 0xff,
        (~piece.length >> 8) & 0xff,
      ],
      at,
    );
    zlib.set(piece, at + 5);
    at += 5 + piece.length;
  }
  let s1 = 1;
  let s2 = 0;
  for (const byte of raw) {
    s1 = (s1 + byte) % 65521;
    s2 = (s2 + s1) % 65521;
  }
  new DataView(zlib.buffer).setUint32(at, ((s2 << 16) | s1) >>> 0);
  const ihdr = new Uint8Array(13);
  new DataView(ihdr.buffer).setUint32(0, width);
  new DataView(ihdr.buffer).setUint32(4, height);
  ihdr.set([8, 2, 0, 0, 0], 8);
  const parts = [Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a), pngChunk("IHDR", ihdr)];
  for (let i = 0; i < zlib.length; i += 1 << 20) parts.push(pngChunk("IDAT", zlib.subarray(i, i + (1 << 20))));
  parts.push(pngChunk("IEND", new Uint8Array(0)));
  const png = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    png.set(p, o);
    o += p.length;
  }
  return png;
}
