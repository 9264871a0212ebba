// Text-to-image search over the images the queue consumer embedded: an index per model and image-tower
// version, behind one interface with two implementations. Deployed with a VECTORIZE binding, the index is
// Vectorize (cosine; one namespace per model and version). Without it (`npm run dev`, where Vectorize has
// no emulation, or a deployment that never created one) the Worker keeps the index in RESULTS itself:
//
//   index/<model>/current                    the image-tower version the consumer last embedded with
//   index/<model>/<version>/<id>.f32          one image: its unit embedding, f32 little-endian; the image's
//                                             key in the object's custom metadata
//
// One object per image rather than shards of many: a redelivered event or a re-uploaded image overwrites
// its own entry, where an appended shard would hold it twice. A query lists the entries page by page and
// reads them a bounded chunk at a time, keeping the k nearest; its memory is reserved in the ledger.
// A query embeds its text with the same model's text tower (over TEXT, as zero-shot does) and ranks by
// cosine: both embeddings have unit length, so the dot product. Each result also carries the model's own
// score of the pair from that cosine, as zero-shot computes it: the logit, and SigLIP's sigmoid of it.

import { dot, normalized, pairScores } from "../core/answers/zeroshot.ts";
import { EdgevitError } from "../core/errors.ts";
const KiB = 1024;
import { ledgerOf, reservationBytes } from "./memory.ts";
import { embedTexts, type Keep, MAX_TEXT_CHARS } from "./text.ts";
import type { SearchAnswer } from "./types.ts";

// The most results a query answers: Vectorize's topK bound when it returns metadata (the image's key).
export const MAX_K = 20;
export const DEFAULT_K = 10;

// Entries read at once while a query scans the R2 index, and R2's list page.
const SCAN_CHUNK = 32;
const LIST_PAGE = 1000;
// What a query holds at most while it scans: a list page (a key of up to 1,024 bytes per entry, as strings
// and objects) and a chunk of entries (the widest towers' 1,024 floats and the image's key).
const SCAN_BYTES = LIST_PAGE * 3 * KiB + SCAN_CHUNK * (4 * 1024 + 4 * KiB);

export interface SearchHit {
  key: string;
  score: number;
}

// One model version's index of image embeddings.
export interface SearchIndex {
  // Adds (or replaces) the image `key`'s unit embedding.
  add(key: string, embedding: Float32Array): Promise<void>;
  remove(key: string): Promise<void>;
  has(key: string): Promise<boolean>;
  // The k images nearest to the unit vector `query`, nearest first (cosine).
  query(query: Float32Array, k: number): Promise<SearchHit[]>;
}

async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

const prefixOf = (model: string) => `index/${model}/`;
const currentKey = (model: string) => `${prefixOf(model)}current`;

// Keeps the k best hits, best first (k is at most MAX_K: insertion into a sorted array).
function keepBest(best: SearchHit[], hit: SearchHit, k: number): void {
  if (best.length === k && hit.score <= best[k - 1].score) return;
  let i = best.length;
  while (i > 0 && best[i - 1].score < hit.score) i--;
  best.splice(i, 0, hit);
  if (best.length > k) best.pop();
}

// The index the Worker keeps in R2 (`bucket`: RESULTS).
export class R2Index implements SearchIndex {
  private readonly env: Env;
  private readonly bucket: R2Bucket;
  private readonly model: string;
  private readonly version: string;

  constructor(env: Env, bucket: R2Bucket, model: string, version: string) {
    this.env = env;
    this.bucket = bucket;
    this.model = model;
    this.version = version;
  }

  private async entryKey(key: string): Promise<string> {
    return `${prefixOf(this.model)}${this.version}/${await sha256Hex(key)}.f32`;
  }

  async add(key: string, embedding: Float32Array): Promise<void> {
    await this.bucket.put(await this.entryKey(key), embedding.slice(), { customMetadata: { key } });
  }

  async remove(key: string): Promise<void> {
    await this.bucket.delete(await this.entryKey(key));
  }

  async has(key: string): Promise<boolean> {
    return (await this.bucket.head(await this.entryKey(key))) !== null;
  }

  async query(query: Float32Array, k: number): Promise<SearchHit[]> {
    const ticket = await ledgerOf(this.env).admit(reservationBytes({ body: SCAN_BYTES }));
    try {
      const best: SearchHit[] = [];
      const prefix = `${prefixOf(this.model)}${this.version}/`;
      let cursor: string | undefined;
      do {
        const page = await this.bucket.list({ prefix, cursor, limit: LIST_PAGE });
        for (let i = 0; i < page.objects.length; i += SCAN_CHUNK) {
          const chunk = page.objects.slice(i, i + SCAN_CHUNK);
          const entries = await Promise.all(chunk.map((o) => this.bucket.get(o.key)));
          for (const entry of entries) {
            // removed since the listing
            if (!entry) continue;
            const bytes = await entry.arrayBuffer();
            const key = entry.customMetadata?.key;
            if (key === undefined || bytes.byteLength !== query.length * 4) continue;
            keepBest(best, { key, score: dot(query, new Float32Array(bytes)) }, k);
          }
        }
        cursor = page.truncated ? page.cursor : undefined;
      } while (cursor);
      return best;
    } finally {
      ticket.release();
    }
  }
}

// The same index in Vectorize: one namespace per model and version (at most 64 bytes: hashed when longer),
// the image's key as metadata, ids derived from namespace and key so a re-upload replaces its vector.
export class VectorizeIndex implements SearchIndex {
  private readonly vectorize: Vectorize;
  private readonly model: string;
  private readonly version: string;

  constructor(vectorize: Vectorize, model: string, version: string) {
    this.vectorize = vectorize;
    this.model = model;
    this.version = version;
  }

  private async namespace(): Promise<string> {
    const name = `${this.model}@${this.version}`;
    return new TextEncoder().encode(name).length <= 64 ? name : sha256Hex(name);
  }

  private async id(key: string): Promise<string> {
    return sha256Hex(`${await this.namespace()}\n${key}`);
  }

  async add(key: string, embedding: Float32Array): Promise<void> {
    const vector = { id: await this.id(key), namespace: await this.namespace(), values: Array.from(embedding) };
    await this.vectorize.upsert([{ ...vector, metadata: { key, model: this.model, version: this.version } }]);
  }

  async remove(key: string): Promise<void> {
    await this.vectorize.deleteByIds([await this.id(key)]);
  }

  async has(key: string): Promise<boolean> {
    return (await this.vectorize.getByIds([await this.id(key)])).length > 0;
  }

  async query(query: Float32Array, k: number): Promise<SearchHit[]> {
    const { matches } = await this.vectorize.query(Array.from(query), {
      topK: k,
      namespace: await this.namespace(),
      returnMetadata: "all",
    });
    return matches
      .filter((m) => typeof m.metadata?.key === "string")
      .map((m) => ({ key: m.metadata!.key as string, score: m.score }))
      .sort((a, b) => b.score - a.score);
  }
}

// The index of `model` at `version`: Vectorize when bound, else the one in RESULTS.
export function indexOf(env: Env, model: string, version: string): SearchIndex {
  return env.VECTORIZE
    ? new VectorizeIndex(env.VECTORIZE, model, version)
    : new R2Index(env, env.RESULTS, model, version);
}

// The image-tower version `model`'s images were last embedded with, or null when none was.
export async function indexedVersion(env: Env, model: string): Promise<string | null> {
  const object = await env.RESULTS.get(currentKey(model));
  return object ? (await object.text()).trim() : null;
}

// The queue consumer's side: the image `key`, embedded by `model` at `version`, into that version's index.
export async function indexImage(
  env: Env,
  model: string,
  version: string,
  key: string,
  embedding: Float32Array,
): Promise<void> {
  await indexOf(env, model, version).add(key, normalized(embedding));
  if ((await indexedVersion(env, model)) !== version) await env.RESULTS.put(currentKey(model), version);
}

// The image `key` no longer has an embedding (replaced by an image that cannot be read): out of the index.
export async function unindexImage(env: Env, model: string, key: string): Promise<void> {
  const version = await indexedVersion(env, model);
  if (version) await indexOf(env, model, version).remove(key);
}

export function checkQuery(query: unknown): string {
  if (typeof query !== "string" || query.trim() === "") {
    throw new EdgevitError("bad_parameter", 'query must be a non-empty string, e.g. {"query": "a red bicycle"}');
  }
  if (query.length > MAX_TEXT_CHARS) {
    throw new EdgevitError(
      "bad_parameter",
      `query is ${query.length} characters, more than the limit of ${MAX_TEXT_CHARS}`,
    );
  }
  return query;
}

export function checkK(k: unknown): number {
  if (k === undefined || k === null) return DEFAULT_K;
  if (typeof k !== "number" || !Number.isInteger(k) || k < 1 || k > MAX_K) {
    throw new EdgevitError("bad_parameter", `k must be an integer from 1 to ${MAX_K}, got ${JSON.stringify(k)}`);
  }
  return k;
}

// The images nearest to `query` in `model`'s index, nearest first. An index with nothing in it answers no
// results and says why (a 200: the search worked, the bucket has nothing embedded by that model yet).
export async function search(env: Env, model: string, query: string, k: number, keep: Keep): Promise<SearchAnswer> {
  // the text first: a model without a text tower says so whether or not anything was indexed
  const { embeddings, scoring } = await embedTexts(env, model, [query], keep);
  const version = await indexedVersion(env, model);
  const empty = (message: string): SearchAnswer => ({ model, ...(version && { version }), results: [], message });
  if (!version) {
    return empty(
      `no image has been embedded by model ${model} yet: images put into the input bucket are indexed as the ` +
        "queue consumer embeds them (PIPELINE_TASKS with embed, PIPELINE_MODEL naming this model)",
    );
  }
  const hits = await indexOf(env, model, version).query(normalized(embeddings[0]), k);
  if (hits.length === 0) return empty(`the index of model ${model} is empty`);
  return { model, version, results: hits.map((hit) => ({ ...hit, ...pairScores(scoring, hit.score) })) };
}
