// The bucket's catalogue: the bundles in R2 and their headers, read without the payloads.

import { BundleError, describe, parsePrefix, type BundleHeader, type ModelConfig } from "../models/bundle.ts";
import { SUFFIX } from "../core/names.ts";

// Enough for the prefix and the header of any realistic bundle in one ranged read.
const HEAD_READ = 64 * 1024;

export interface BundleSummary {
  name: string;
  bytes: number;
  uploaded: string;
  etag: string;
  version?: string; // the payload CRC-32 from the header: what a loaded model reports as its version
  config?: ModelConfig;
  summary?: string;
  error?: { code: string; message: string };
}

// The bundle's header, from ranged reads of its first bytes only.
async function readHeader(bucket: R2Bucket, key: string): Promise<BundleHeader> {
  let length = HEAD_READ;
  for (;;) {
    const object = await bucket.get(key, { range: { offset: 0, length } });
    if (!object) throw new BundleError("truncated", "the object disappeared while it was read");
    const bytes = new Uint8Array(await object.arrayBuffer());
    const result = parsePrefix(bytes);
    if ("header" in result) return result.header;
    if (bytes.length < length || result.need <= length)
      throw new BundleError("truncated", `the bundle ends inside its header`);
    length = result.need;
  }
}

export async function listBundles(bucket: R2Bucket): Promise<BundleSummary[]> {
  const objects: R2Object[] = [];
  let cursor: string | undefined;
  do {
    const page = await bucket.list({ cursor });
    objects.push(...page.objects.filter((o) => o.key.endsWith(SUFFIX)));
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor);

  return Promise.all(
    objects.map(async (object): Promise<BundleSummary> => {
      const base = {
        name: object.key.slice(0, -SUFFIX.length),
        bytes: object.size,
        uploaded: object.uploaded.toISOString(),
        etag: object.etag,
      };
      try {
        const header = await readHeader(bucket, object.key);
        return { ...base, version: header.payload.crc32, config: header.config, summary: describe(header.config) };
      } catch (error) {
        if (!(error instanceof BundleError)) throw error;
        return { ...base, error: { code: error.code, message: error.message } };
      }
    }),
  );
}
