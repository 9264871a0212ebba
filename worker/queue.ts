// The queue consumer: R2 event notifications for images put into the input bucket (IMAGES) become results
// in the output bucket (RESULTS): `<RESULT_PREFIX><key>.json` with the answers of PIPELINE_TASKS
// (classify, embed), and for embed `<RESULT_PREFIX><key>.vectors.ndjson`, one line in the form
// `wrangler vectorize insert --file` reads ({"id", "values", "metadata"}).
//
// Delivery is at least once: a redelivered message writes the same objects (no timestamps of our own, the
// vector id derived from bucket and key). An image that cannot be read is a result too (an `error` with
// the stable code) and is acknowledged, so it is never retried; anything else (R2 or the model being
// unavailable, the isolate busy with other requests' memory) is retried with exponential backoff, and after
// max_retries the queue moves the message to the dead letter queue configured in wrangler.toml.

import { EdgevitError, type ErrorCode } from "../core/errors.ts";
import { tooLarge } from "./input.ts";
import { Busy, STREAM_CHUNK_BYTES, streamedBodyBytes, type Ticket } from "./memory.ts";
import { indexImage, unindexImage } from "./search.ts";
import { admit, classifyAnswer, embedAnswer, hasClassifier, modelOf, prepare, run, streamedUpload } from "./service.ts";
import type { ClassifyAnswer, EmbedAnswer } from "./types.ts";

// The message body R2 sends for an event (event notifications, "Message format").
export interface R2EventMessage {
  account: string;
  action: string; // PutObject, CopyObject, CompleteMultipartUpload, DeleteObject, LifecycleDeletion
  bucket: string;
  object: { key: string; size?: number; eTag?: string };
  eventTime: string;
  copySource?: { bucket: string; object: string };
}

const CREATED = new Set(["PutObject", "CopyObject", "CompleteMultipartUpload"]);
const TASKS = ["classify", "embed"] as const;
type Task = (typeof TASKS)[number];

// Refusals of the image itself: retrying cannot change them.
const PERMANENT: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  "invalid_image",
  "image_too_large",
  "payload_too_large",
  "unsupported_media_type",
  "bad_parameter",
]);

export interface PipelineResult {
  bucket: string;
  key: string;
  etag: string;
  size: number;
  eventTime: string;
  classify?: ClassifyAnswer;
  embed?: EmbedAnswer & { vectorId: string };
  error?: { code: ErrorCode; message: string };
}

// Seconds before retry `attempts` (1-based): 10 s doubling per attempt, at most 15 minutes.
export function backoffSeconds(attempts: number): number {
  return Math.min(10 * 2 ** Math.max(0, attempts - 1), 900);
}

// The tasks this deployment runs, from PIPELINE_TASKS ("classify,embed"), or the sentence saying why the
// setting cannot be run.
function tasksOf(env: Env): Set<Task> | string {
  const raw = String(env.PIPELINE_TASKS ?? "classify")
    .split(",")
    .map((t) => t.trim())
    .filter((t) => t !== "");
  for (const task of raw) {
    if (!(TASKS as readonly string[]).includes(task))
      return `PIPELINE_TASKS accepts ${TASKS.join(", ")}, got ${JSON.stringify(task)}`;
  }
  if (raw.length === 0) return `PIPELINE_TASKS names no task: it accepts ${TASKS.join(", ")}`;
  return new Set(raw as Task[]);
}

// Vectorize ids are at most 64 bytes: the SHA-256 of "bucket/key", hex. The same object gives the same
// id, so a re-upload or a redelivery overwrites its vector instead of adding one.
async function vectorId(bucket: string, key: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(`${bucket}/${key}`));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

export const resultKey = (env: Env, key: string): string => `${env.RESULT_PREFIX ?? "results/"}${key}.json`;
export const vectorsKey = (env: Env, key: string): string => `${env.RESULT_PREFIX ?? "results/"}${key}.vectors.ndjson`;

// Runs the tasks on one object and writes its results. Throws only for failures worth retrying.
async function processObject(env: Env, event: R2EventMessage, tasks: Set<Task>): Promise<PipelineResult | null> {
  const key = event.object.key;
  const object = await env.IMAGES.get(key);
  // Deleted since the event: nothing to describe; a later event covers a new upload.
  if (!object) return null;
  const base = {
    bucket: event.bucket,
    key,
    etag: object.etag,
    size: object.size,
    eventTime: event.eventTime,
  };
  let result: PipelineResult;
  let vectors: string | null = null;
  let indexed: { version: string; embedding: Float32Array } | null = null;
  let ticket: Ticket | undefined;
  const name = modelOf(env, env.PIPELINE_MODEL || undefined);
  try {
    const limit = Number(env.MAX_BODY_BYTES);
    if (object.size > limit) {
      await object.body.cancel();
      throw tooLarge(limit);
    }
    // Its memory is reserved before it is read (waiting its turn, or busy); it streams into the decoder.
    ticket = await admit(env, name, streamedBodyBytes(STREAM_CHUNK_BYTES)).catch(async (error: unknown) => {
      await object.body.cancel().catch(() => {});
      throw error;
    });
    const upload = streamedUpload(ticket, object.body, {
      limit,
      length: object.size,
      // R2 failing mid-read is worth a retry: a plain Error, not a refusal of the image.
      failed: (received, cause) =>
        new Error(`reading ${key} from the input bucket failed after ${received} bytes`, { cause }),
      readerBytes: STREAM_CHUNK_BYTES,
    });
    const answer = tasks.has("embed") ? ({ kind: "embed" } as const) : undefined;
    const inference = await run(env, await prepare(env, name, upload), { answer });
    result = { ...base };
    // an image tower has no classifier: its results carry the embedding only
    if (tasks.has("classify") && hasClassifier(inference.model.header.config)) {
      result.classify = classifyAnswer(inference, 5, false);
    }
    if (tasks.has("embed")) {
      // The family's embedding (CLIP image_embeds, SigLIP pooler, ViT and DINOv2 cls), normalized:
      // Vectorize indexes for images are cosine (or dot product on unit vectors), of the tower's dimension.
      const embedding = embedAnswer(inference, undefined, true);
      const id = await vectorId(event.bucket, key);
      result.embed = { ...embedding, vectorId: id };
      const metadata = {
        bucket: event.bucket,
        key,
        etag: object.etag,
        model: embedding.model,
        version: embedding.version,
      };
      vectors = `${JSON.stringify({ id, values: embedding.embedding, metadata })}\n`;
      indexed = { version: embedding.version, embedding: Float32Array.from(embedding.embedding) };
    }
  } catch (error) {
    if (!(error instanceof EdgevitError) || !PERMANENT.has(error.code)) throw error;
    result = { ...base, error: { code: error.code, message: error.message } };
  } finally {
    ticket?.release();
  }
  const json = { httpMetadata: { contentType: "application/json; charset=utf-8" } };
  await env.RESULTS.put(resultKey(env, key), JSON.stringify(result), json);
  if (vectors !== null && indexed !== null) {
    await env.RESULTS.put(vectorsKey(env, key), vectors, { httpMetadata: { contentType: "application/x-ndjson" } });
    // text search's index of the model (worker/search.ts)
    await indexImage(env, name, indexed.version, key, indexed.embedding);
  } else {
    // No embedding this time (the image was replaced by one that cannot be read, or embed left PIPELINE_TASKS):
    // a vector line from an earlier version of the object would describe an image that is no longer there.
    await env.RESULTS.delete(vectorsKey(env, key));
    await unindexImage(env, name, key);
  }
  return result;
}

function isEvent(body: unknown): body is R2EventMessage {
  const b = body as R2EventMessage;
  return typeof b === "object" && b !== null && typeof b.action === "string" && typeof b.object?.key === "string";
}

// One batch: every message acknowledged or retried on its own, so one bad image never holds back others.
export async function consume(batch: MessageBatch<unknown>, env: Env): Promise<void> {
  // Checked once per batch, before any object is read: a setting that cannot run is the deployment's
  // fault, not the images'. Every message waits for a fixed deployment (retried; the dead letter queue
  // keeps them if it never comes), and the log says why once rather than once per message.
  const tasks = tasksOf(env);
  if (typeof tasks === "string") {
    console.error(`queue: ${tasks}; the batch of ${batch.messages.length} messages is retried unprocessed`);
    for (const message of batch.messages) message.retry({ delaySeconds: backoffSeconds(message.attempts) });
    return;
  }
  for (const message of batch.messages) {
    const body = message.body;
    // Not an object-create event of the input bucket (a delete, another bucket, a stray message):
    // acknowledged so the queue drops it.
    if (!isEvent(body) || !CREATED.has(body.action) || (env.INPUT_BUCKET && body.bucket !== env.INPUT_BUCKET)) {
      message.ack();
      continue;
    }
    try {
      await processObject(env, body, tasks);
      message.ack();
    } catch (error) {
      const delaySeconds = backoffSeconds(message.attempts);
      if (error instanceof Busy) {
        // Not a failure: other requests had the memory; the image waits for a quieter moment.
        console.warn(`queue: ${body.bucket}/${body.object.key} is retried in ${delaySeconds} s: ${error.message}`);
      } else {
        console.error(`queue: ${body.bucket}/${body.object.key}, attempt ${message.attempts}:`, error);
      }
      message.retry({ delaySeconds });
    }
  }
}
