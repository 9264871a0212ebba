// /v1/image_tokens?nearest=k: each image token's nearest rows of the LLM's input embedding table, read from
// the bundle's "lm_embeddings" section (core/bundle/embeddings.ts) by ranged reads of the R2 object the
// model was loaded from, a piece of rows at a time (core/answers/nearest.ts): the table is never held whole,
// and what is held is reserved with the request (worker/memory.ts, `nearestBytes`).
import { type EmbeddingsSection, type BundleHeader, align64 } from "../core/bundle/format.ts";
import { tokenStrings } from "../core/bundle/embeddings.ts";
import { NEAREST_MAX, NearestRows } from "../core/answers/nearest.ts";
import { EdgevitError } from "../core/errors.ts";
import { keyOf } from "../core/names.ts";

export { NEAREST_MAX };

// Image tokens x rows x width one request may compare: SmolVLM's global view (64 tokens) against its
// 49,280 x 576 table is 1.8e9, about two seconds of CPU; its 17 frames of a large image would be 30 s.
export const NEAREST_MAX_PRODUCTS = 4e9;

// Rows of the table read and compared at a time: a piece of about 1 MiB whatever the LLM's width.
export const NEAREST_PIECE_BYTES = 1024 * 1024;
export const pieceRows = (dim: number): number => Math.max(1, Math.floor(NEAREST_PIECE_BYTES / dim));

// The bundle's embedding table, or a sentence saying it was converted without one.
export function embeddingsSectionOf(name: string, header: BundleHeader): EmbeddingsSection {
  const section = header.sections?.find((s): s is EmbeddingsSection => s.kind === "lm-embeddings");
  if (!section) {
    throw new EdgevitError(
      "bad_parameter",
      `model ${name} has no LLM embedding table to find image tokens' nearest words in: convert it with ` +
        "`edgevit convert --lm-embeddings` to answer nearest",
    );
  }
  return section;
}

// The comparisons nearest=k makes for `queries` image tokens, refused past NEAREST_MAX_PRODUCTS.
export function checkNearestWork(section: EmbeddingsSection, queries: number, split: boolean): void {
  const { vocab, dim } = section.config;
  if (queries * vocab * dim > NEAREST_MAX_PRODUCTS) {
    throw new EdgevitError(
      "bad_parameter",
      `nearest would compare each of this image's ${queries} image tokens with the ${vocab} rows of the LLM's ` +
        `embedding table, ${dim} numbers each: over the ${NEAREST_MAX_PRODUCTS / 1e9} billion multiplications ` +
        `one request makes${split ? "; ask with split=false for the global view's tokens alone" : ""}`,
    );
  }
}

// What nearest holds beside the image tokens: a piece of rows, the normalized queries and their best rows,
// the tokens' offsets and strings, and their part of the JSON answer (~80 bytes an entry).
export function nearestBytes(section: EmbeddingsSection["config"], queries: number, k: number): number {
  const strings = section.tokensBytes > 0 ? align64(4 * (section.vocab + 1)) + section.tokensBytes : 0;
  return (
    pieceRows(section.dim) * section.dim + NearestRows.memoryBytes(queries, section.dim, k) + strings + queries * k * 80
  );
}

export interface NearestTokens {
  k: number;
  ids: Int32Array; // [queries][k], highest cosine first
  cosines: Float32Array;
  tokens: string[] | null; // [queries * k] the ids' strings; null when the bundle has none
}

// A ranged read of the section's bytes [from, from + length) in the object of version `etag`.
async function sectionRange(
  bucket: R2Bucket,
  name: string,
  etag: string,
  offset: number,
  length: number,
): Promise<ReadableStream<Uint8Array>> {
  let object: R2ObjectBody | R2Object | null;
  try {
    object = await bucket.get(keyOf(name), { range: { offset, length }, onlyIf: { etagMatches: etag } });
  } catch (error) {
    throw new EdgevitError("model_unavailable", `model ${name}'s embedding table cannot be read: try again`, {
      cause: error,
    });
  }
  if (!object || !("body" in object)) {
    throw new EdgevitError("model_unavailable", `model ${name} changed while its embedding table was read; try again`);
  }
  return object.body;
}

// Reads a stream of exactly `length` bytes into `out` from `at` on, piece by piece: `full` is called with
// each piece once it has `piece` bytes (the last one maybe fewer).
async function readPieces(
  stream: ReadableStream<Uint8Array>,
  length: number,
  piece: Uint8Array,
  full: (bytes: Uint8Array) => void,
  name: string,
): Promise<void> {
  const reader = stream.getReader();
  let filled = 0;
  let received = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      received += value.length;
      if (received > length) break;
      let at = 0;
      while (at < value.length) {
        const n = Math.min(piece.length - filled, value.length - at);
        piece.set(value.subarray(at, at + n), filled);
        filled += n;
        at += n;
        if (filled === piece.length) {
          full(piece);
          filled = 0;
        }
      }
    }
  } finally {
    reader.releaseLock();
  }
  if (received !== length) {
    await stream.cancel().catch(() => {});
    throw new EdgevitError(
      "model_unavailable",
      `model ${name}'s embedding table ended after ${received} of ${length} bytes`,
    );
  }
  if (filled > 0) full(piece.subarray(0, filled));
}

// Each of `queries` ([count][dim], the image tokens) against every row of the table, the best k kept.
export async function nearestTokens(
  bucket: R2Bucket,
  name: string,
  etag: string,
  section: EmbeddingsSection,
  queries: Float32Array,
  k: number,
): Promise<NearestTokens> {
  const { vocab, dim, tokensBytes } = section.config;
  const entry = (tensor: string) => {
    const found = section.tensors.find((t) => t.name === tensor);
    if (!found) throw new EdgevitError("model_unavailable", `model ${name}'s embedding table has no ${tensor}`);
    return found;
  };
  const weight = entry("embed_tokens.weight");
  const nearest = new NearestRows(queries, dim, k);
  const piece = new Uint8Array(pieceRows(dim) * dim);
  const rows = await sectionRange(bucket, name, etag, section.offset + weight.offset, vocab * dim);
  await readPieces(
    rows,
    vocab * dim,
    piece,
    (bytes) => nearest.add(new Int8Array(bytes.buffer, bytes.byteOffset, bytes.length)),
    name,
  );
  const { ids, cosines } = nearest.result();
  let tokens: string[] | null = null;
  if (tokensBytes > 0) {
    // the offsets and the strings after them, in one read
    const offsets = entry("tokens.offsets");
    const text = entry("tokens.text");
    const length = text.offset + text.bytes - offsets.offset;
    const bytes = new Uint8Array(length);
    const stream = await sectionRange(bucket, name, etag, section.offset + offsets.offset, length);
    let at = 0;
    await readPieces(
      stream,
      length,
      new Uint8Array(Math.min(length, NEAREST_PIECE_BYTES)),
      (b) => {
        bytes.set(b, at);
        at += b.length;
      },
      name,
    );
    tokens = tokenStrings(
      new Uint32Array(bytes.buffer, 0, vocab + 1),
      bytes.subarray(text.offset - offsets.offset),
      Array.from(ids),
    );
  }
  return { k, ids, cosines, tokens };
}
