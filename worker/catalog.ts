// The bucket's catalogue: the bundles in R2 and their headers, read without the payloads.

import { BundleError, describe, towerOf, type BundleHeader, type ModelConfig } from "../core/bundle/format.ts";
import { poolsOf } from "../core/answers/pool.ts";
import { hasLooker } from "../core/pictures/see.ts";
import { parsePrefix } from "../core/bundle/reader.ts";
import { textSectionNamed } from "../core/bundle/text.ts";
import { SUFFIX } from "../core/names.ts";
import type { BundleListing } from "./types.ts";

// Enough for the prefix and the header of any realistic bundle in one ranged read.
const HEAD_READ = 64 * 1024;

// What the catalogue knows of a bundle: the listing without what this isolate has loaded.
export type BundleSummary = Omit<BundleListing, "loaded">;

// Headers read at once: each read holds at most one header (LIMITS.headerBytes) in memory.
const CONCURRENT_READS = 6;

// The bundle's header, from ranged reads of its first bytes only: at most the prefix and a header of
// LIMITS.headerBytes, so any object costs a bounded read and a bounded check (parsePrefix is O(1) in the
// header's numbers).
export async function readHeader(bucket: R2Bucket, object: R2Object): Promise<BundleHeader> {
  if (object.size === 0) throw new BundleError("truncated", "the object is empty (0 bytes)");
  let length = Math.min(HEAD_READ, object.size);
  for (;;) {
    const read = await bucket.get(object.key, { range: { offset: 0, length } });
    if (!read) throw new BundleError("truncated", "the object disappeared while it was read");
    const bytes = new Uint8Array(await read.arrayBuffer());
    const result = parsePrefix(bytes);
    if ("header" in result) return result.header;
    if (result.need > object.size || result.need <= length) {
      throw new BundleError("truncated", `the ${object.size}-byte object ends inside its prefix or header`);
    }
    length = result.need;
  }
}

// Every `.evit` object, each with its config or, when it cannot be read, its error: one bad object
// shows as an entry with `error` and never fails the listing.
export async function listBundles(bucket: R2Bucket): Promise<BundleSummary[]> {
  const objects: R2Object[] = [];
  let cursor: string | undefined;
  do {
    const page = await bucket.list({ cursor });
    objects.push(...page.objects.filter((o) => o.key.endsWith(SUFFIX)));
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor);

  const summaries: BundleSummary[] = new Array(objects.length);
  let next = 0;
  const worker = async () => {
    while (next < objects.length) {
      const i = next++;
      summaries[i] = await summarize(bucket, objects[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENT_READS, objects.length) }, worker));
  return summaries;
}

async function summarize(bucket: R2Bucket, object: R2Object): Promise<BundleSummary> {
  const base = {
    name: object.key.slice(0, -SUFFIX.length),
    bytes: object.size,
    uploaded: object.uploaded.toISOString(),
    etag: object.etag,
  };
  try {
    const header = await readHeader(bucket, object);
    const { config } = header;
    const lm = header.sections?.find((s) => s.kind === "lm-embeddings");
    return {
      ...base,
      version: header.payload.crc32,
      config,
      summary: describe(config),
      family: towerOf(config).family,
      answers: answersOf(config, textSectionNamed(header.sections, "text") !== undefined),
      pools: [...poolsOf(config)],
      ...(lm ? { lmVocab: lm.config.vocab } : {}),
    };
  } catch (error) {
    if (error instanceof BundleError) return { ...base, error: { code: error.code, message: error.message } };
    // R2 itself failed for this object: report it there, keep listing the rest.
    console.error(`reading the header of ${object.key}:`, error);
    return { ...base, error: { code: "unreadable", message: "the object could not be read from the bucket" } };
  }
}

// The routes a model answers: every one, but /v1/classify needs a classifier, /v1/image_tokens a connector
// and the text routes a text tower. Without a class token (SigLIP), /v1/see and /v1/attention_map draw its
// pooling head's attention instead; a VLM's tower with neither has no attention map to draw.
export function answersOf(config: ModelConfig, text = false): string[] {
  return [
    ...(text ? ["/v1/zero_shot", "/v1/embed_text", "/v1/tokenize", "/v1/search"] : []),
    ...(config.classes > 0 ? ["/v1/classify"] : []),
    "/v1/embed",
    "/v1/hidden_states",
    "/v1/attentions",
    "/v1/pca",
    ...(hasLooker(config) ? ["/v1/attention_map", "/v1/see"] : []),
    ...(towerOf(config).connector !== "none" ? ["/v1/image_tokens"] : []),
  ];
}
