// Helpers to call the Worker inside workerd.

import { createExecutionContext, env } from "cloudflare:test";
import worker from "../../worker/index.ts";

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
