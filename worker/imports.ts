// Imports from the Hugging Face hub into the bucket: `POST /v1/models` checks the request against the hub
// (the repository, its files, the sizes and shapes against the bundle's limits: every refusal is an answer
// right away), records the import as `<name>.import.json` beside the bundle and queues it (IMPORTS); the queue
// consumer converts the checkpoint with the converter `edgevit convert` uses (core/convert/), reading each
// tensor by range in the bundle's order and writing the bundle with an R2 multipart upload.
//
// The consumer runs in an isolate that serves requests too: before the first tensor is read it reserves its
// peak (importBytes) in the isolate's memory ledger (worker/memory.ts), waiting its turn as uploads do; an
// isolate without room retries the message later.
//
// The bundle's key is replaced only when the upload completes: a failed import aborts its upload and the
// older version keeps serving. A job whose isolate died is redelivered by the queue: it aborts the upload
// the record names and starts again. A newer POST for the same name supersedes a queued or running import.

import { type BundleHeader, describe } from "../core/bundle/format.ts";
import { BundleWriter } from "../core/bundle/writer.ts";
import { convert, type Plan, plan, tensorPeakBytes } from "../core/convert/convert.ts";
import { GAP_PIECE, hubSource, jsonBytes } from "../core/convert/hub-source.ts";
import { crc32 } from "../core/crc32.ts";
import { EdgevitError, type ErrorCode } from "../core/errors.ts";
import { checkRepo, checkRevision, HubClient } from "../core/hub/client.ts";
import { checkpointFiles } from "../core/hub/files.ts";
import { keyOf, modelName } from "../core/names.ts";
import { sizeText } from "../core/sizes.ts";
import { ClientDisconnected, readBounded } from "./input.ts";
import { Busy, FIXED_HEAP_BYTES, ledgerOf, type MemoryLedger, reservationBytes, type Ticket } from "./memory.ts";
import { backoffSeconds } from "./queue.ts";

export const IMPORT_QUEUE = "edgevit-imports";
// R2 multipart: every part but the last the same size, at least 5 MiB. Two are held at once (the first,
// which the final header overwrites, and the one filling).
export const PART_BYTES = 8 << 20;
const MAX_REQUEST_BYTES = 4096;
// The JS objects an import holds beside its buffers: the record, the parsed headers, the plan.
const IMPORT_OBJECT_BYTES = 1 << 20;
// A message is delivered once and retried at most max_retries times (wrangler.toml: 3): an import still
// without room on its last delivery fails with `busy` instead of staying queued.
const LAST_ATTEMPT = 4;

export interface ImportMessage {
  name: string;
  id: string;
}

export interface ImportRecord {
  id: string;
  name: string;
  repo: string;
  revision: string;
  commit: string;
  state: "queued" | "running" | "done" | "failed";
  requested: string; // ISO times
  updated: string;
  summary: string; // the model's sizes, from its config
  // tensors and bytes read from the hub; the bundle's size (known once the checkpoint is planned) and the
  // bytes of it in uploaded parts
  progress: {
    tensorsRead: number;
    bytesDownloaded: number;
    weightsBytes: number;
    bundleBytes: number;
    bundleWritten: number;
    partsUploaded: number;
  };
  uploadId?: string; // the multipart upload in progress
  bundle?: { key: string; bytes: number; version: string; etag: string };
  error?: { code: ErrorCode | "internal_error"; message: string };
}

export const recordKey = (name: string) => `${name}.import.json`;

export function hubOf(env: Env): HubClient {
  const stall = env.HF_HUB_DOWNLOAD_TIMEOUT;
  return new HubClient({
    endpoint: env.HF_ENDPOINT,
    token: env.HF_TOKEN,
    stallSeconds: stall === undefined ? undefined : Number(stall),
  });
}

export async function readRecord(bucket: R2Bucket, name: string): Promise<ImportRecord | null> {
  const object = await bucket.get(recordKey(name));
  return object ? ((await object.json()) as ImportRecord) : null;
}

async function writeRecord(bucket: R2Bucket, record: ImportRecord): Promise<void> {
  record.updated = new Date().toISOString();
  await bucket.put(recordKey(record.name), JSON.stringify(record), {
    httpMetadata: { contentType: "application/json" },
  });
}

// What POST /v1/models accepts: {"repo", "revision"?, "name"?}.
export async function importRequest(request: Request): Promise<{ repo: string; revision: string; name?: string }> {
  const bytes = request.body
    ? await readBounded(request.body, MAX_REQUEST_BYTES, (received, cause) => new ClientDisconnected(received, cause))
    : new Uint8Array(0);
  let body: unknown;
  try {
    body = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    throw new EdgevitError("bad_parameter", 'the body must be JSON: {"repo": "org/name", "revision"?, "name"?}');
  }
  const { repo, revision = "main", name } = (body ?? {}) as Record<string, unknown>;
  if (typeof repo !== "string")
    throw new EdgevitError("bad_parameter", '"repo" (a hub repository id, org/name) is required');
  if (typeof revision !== "string") throw new EdgevitError("bad_parameter", '"revision" must be a string');
  if (name !== undefined && typeof name !== "string")
    throw new EdgevitError("bad_parameter", '"name" must be a string');
  return {
    repo: checkRepo(repo),
    revision: checkRevision(revision),
    name: name === undefined ? undefined : modelName(name),
  };
}

// What an import holds at its most, in bytes, once `planned`: the multipart parts it buffers (part 1 until the
// end, and the one filling), the converter's largest tensor (tensorPeakBytes: raw, f32 and packed) or, at the
// end, one piece of the bytes no tensor covers (read for the files' CRC-32s), and the objects around them.
export function importBytes(planned: Plan): number {
  const writer = new BundleWriter(planned.parts, crc32);
  const bundle = writer.fileLength;
  const parts = Math.min(PART_BYTES, bundle) + Math.min(PART_BYTES, Math.max(0, bundle - PART_BYTES));
  const gap = Math.min(GAP_PIECE, planned.ckpt.bytes);
  return IMPORT_OBJECT_BYTES + parts + Math.max(tensorPeakBytes(planned), gap);
}

// An import that could not run even in an isolate of its own: refused when it is requested.
function checkImportMemory(planned: Plan, ledger: MemoryLedger): void {
  const bytes = importBytes(planned);
  const room = ledger.capacityBytes - FIXED_HEAP_BYTES;
  if (bytes > room) {
    throw new EdgevitError(
      "unsupported_checkpoint",
      `importing ${describe(planned.parts.config)} in the Worker holds ${sizeText(bytes)} at once, more than ` +
        `the ${sizeText(room)} an isolate has for it; convert it with npx edgevit pull and upload the bundle`,
    );
  }
}

// What reading a JSON file or a safetensors header of n bytes holds until the request ends: the bytes, their
// text (two bytes a character at worst) and what JSON.parse makes of it (about as much again as the text).
export const JSON_HELD_PER_BYTE = 5;

// Everything that can refuse an import before a tensor is read: the hub's answers, the architecture, the
// sizes and shapes against the bundle's limits, the memory the import needs (the converter's plan reads the
// JSON files and the safetensors headers only). What it reads is bounded (MAX_JSON_BYTES a file,
// MAX_REMOTE_HEADER_BYTES of headers) and reserved in the isolate's ledger before it is read.
async function checkImport(hub: HubClient, repo: string, revision: string, ledger: MemoryLedger) {
  const ticket = await ledger.admit(reservationBytes({ body: 0 })); // the request's own objects
  try {
    const reserve = (bytes: number) => ticket.resize(ticket.bytes + JSON_HELD_PER_BYTE * bytes);
    const files = await checkpointFiles(hub, repo, revision, (file) => jsonBytes(hub, file, reserve)).catch(
      refuseCheckpoint,
    );
    const planned = await plan(hubSource(hub, files, { reserve }), {}).catch(refuseCheckpoint);
    await planned.ckpt.close();
    checkImportMemory(planned, ledger);
    return { files, config: planned.parts.config };
  } finally {
    ticket.release();
  }
}

// The converter's refusals (ConvertError, SafetensorsError) are about the checkpoint: unsupported_checkpoint.
function refuseCheckpoint(error: unknown): never {
  if (error instanceof EdgevitError || !(error instanceof Error)) throw error;
  throw new EdgevitError("unsupported_checkpoint", error.message, { cause: error });
}

export async function startImport(request: Request, env: Env): Promise<ImportRecord> {
  const { repo, revision, name: asked } = await importRequest(request);
  const name = asked ?? modelName(repo.split("/").pop() as string);
  const hub = hubOf(env);
  const { files, config } = await checkImport(hub, repo, revision, ledgerOf(env));
  const now = new Date().toISOString();
  const record: ImportRecord = {
    id: crypto.randomUUID(),
    name,
    repo,
    revision,
    commit: files.commit,
    state: "queued",
    requested: now,
    updated: now,
    summary: describe(config),
    progress: {
      tensorsRead: 0,
      bytesDownloaded: 0,
      weightsBytes: files.weights.reduce((a, f) => a + f.size, 0),
      bundleBytes: 0,
      bundleWritten: 0,
      partsUploaded: 0,
    },
  };
  const previous = await readRecord(env.MODELS, name);
  if (previous?.uploadId) await abortUpload(env.MODELS, name, previous.uploadId);
  await writeRecord(env.MODELS, record);
  await env.IMPORTS.send({ name, id: record.id } satisfies ImportMessage);
  return record;
}

async function abortUpload(bucket: R2Bucket, name: string, uploadId: string): Promise<void> {
  await bucket
    .resumeMultipartUpload(keyOf(name), uploadId)
    .abort()
    .catch(() => {}); // already completed or aborted
}

// The bundle written as R2 multipart parts of PART_BYTES, in order; part 1 is held until the end, when the
// final head (with the payload CRC-32 and the file records) is written over its placeholder at 0.
export class MultipartSink {
  private readonly first: Uint8Array;
  private current: Uint8Array;
  private part = 1; // the part `current` fills
  private at = 0; // bytes written in order
  private readonly uploaded: R2UploadedPart[] = [];

  private readonly upload: R2MultipartUpload;
  readonly size: number;
  private readonly onPart: (written: number, parts: number) => Promise<void>;

  constructor(upload: R2MultipartUpload, size: number, onPart: (written: number, parts: number) => Promise<void>) {
    this.upload = upload;
    this.size = size;
    this.onPart = onPart;
    this.first = new Uint8Array(Math.min(PART_BYTES, size));
    this.current = this.first;
  }

  async write(chunk: Uint8Array, position: number): Promise<void> {
    if (position === 0 && this.at > 0) {
      this.first.set(chunk, 0); // the final head
      return;
    }
    if (position !== this.at) throw new Error(`bundle bytes out of order at ${position}, expected ${this.at}`);
    for (let done = 0; done < chunk.length; ) {
      const offset = this.at - (this.part - 1) * PART_BYTES;
      const n = Math.min(chunk.length - done, this.current.length - offset);
      this.current.set(chunk.subarray(done, done + n), offset);
      done += n;
      this.at += n;
      if (offset + n === this.current.length && this.at < this.size) {
        if (this.part > 1) {
          this.uploaded.push(await this.upload.uploadPart(this.part, this.current));
          await this.onPart(this.at, this.uploaded.length);
        }
        this.part++;
        this.current = new Uint8Array(Math.min(PART_BYTES, this.size - this.at));
      }
    }
  }

  async complete(): Promise<R2Object> {
    if (this.at !== this.size) throw new Error(`bundle ended after ${this.at} of ${this.size} bytes`);
    const last = this.part > 1 ? [await this.upload.uploadPart(this.part, this.current)] : [];
    const first = await this.upload.uploadPart(1, this.first);
    return this.upload.complete([first, ...this.uploaded, ...last]);
  }
}

// A newer POST for the same name took over: this job stops without writing its record.
class Superseded extends Error {}

// The queue consumer of IMPORTS: one import per message; its outcome is in its record, so every message is
// acknowledged (a crash is redelivered by the queue), except one that found no memory in this isolate: it is
// retried later, as the image queue's are.
export async function runImports(batch: MessageBatch<ImportMessage>, env: Env): Promise<void> {
  for (const message of batch.messages) {
    try {
      await runImport(message.body, env, message.attempts >= LAST_ATTEMPT);
      message.ack();
    } catch (error) {
      if (!(error instanceof Busy)) throw error;
      const delaySeconds = backoffSeconds(message.attempts);
      console.warn(`import ${message.body.name} is retried in ${delaySeconds} s: ${error.message}`);
      message.retry({ delaySeconds });
    }
  }
}

// Runs one import. Without room in the isolate's ledger it throws Busy, its record still queued, unless
// `last`: then the import fails with `busy`.
export async function runImport(job: ImportMessage, env: Env, last = false): Promise<ImportRecord | null> {
  const record = await readRecord(env.MODELS, job.name);
  if (!record || record.id !== job.id || record.state === "done" || record.state === "failed") return record;
  if (record.uploadId) await abortUpload(env.MODELS, record.name, record.uploadId); // a redelivery after a crash
  const hub = hubOf(env);
  const ledger = ledgerOf(env);
  const ours = async () => {
    if ((await readRecord(env.MODELS, job.name))?.id !== job.id) throw new Superseded();
  };
  let upload: R2MultipartUpload | null = null;
  let ticket: Ticket | undefined;
  // Room the loaded models leave none of: busy, as for any request, and retried later.
  const busy = () => new Busy(ledger.retryAfter);
  try {
    // The JSON files and headers are reserved as they are read, as when the import was requested.
    const held = await ledger.admit(IMPORT_OBJECT_BYTES, undefined, busy);
    ticket = held;
    const reserve = (bytes: number) => held.resize(held.bytes + JSON_HELD_PER_BYTE * bytes, busy);
    const files = await checkpointFiles(hub, record.repo, record.commit, (file) => jsonBytes(hub, file, reserve)).catch(
      refuseCheckpoint,
    );
    let sink: MultipartSink | undefined;
    const source = hubSource(hub, files, {
      reserve,
      progress: ({ tensorsRead, bytesRead }) => {
        record.progress.tensorsRead = tensorsRead;
        record.progress.bytesDownloaded = bytesRead;
      },
    });
    // Progress is written with each part, not each tensor: a record put costs a request.
    const onPart = async (written: number, parts: number) => {
      Object.assign(record.progress, { bundleWritten: written, partsUploaded: parts });
      await ours();
      await writeRecord(env.MODELS, record);
    };
    // Planned (the JSON files and the headers read), nothing of the weights read yet: the import's memory is
    // reserved, then its upload starts.
    const start = async (bytes: number, planned: Plan) => {
      checkImportMemory(planned, ledger);
      await held.resize(Math.max(held.bytes, importBytes(planned)), busy);
      await ours();
      upload = await env.MODELS.createMultipartUpload(keyOf(record.name), {
        httpMetadata: { contentType: "application/octet-stream" },
      });
      record.progress.bundleBytes = bytes;
      Object.assign(record, { state: "running", uploadId: upload.uploadId });
      await writeRecord(env.MODELS, record);
      sink = new MultipartSink(upload, bytes, onPart);
    };
    const header: BundleHeader = await convert(
      source,
      { name: record.name, convertedAt: record.requested.replace(/\.\d+Z$/, "Z") },
      (chunk, position) => (sink as MultipartSink).write(chunk, position),
      start,
    ).catch(refuseCheckpoint);
    await ours();
    const object = await (sink as unknown as MultipartSink).complete();
    record.progress.bundleWritten = object.size;
    Object.assign(record, {
      state: "done",
      uploadId: undefined,
      bundle: { key: object.key, bytes: object.size, version: header.payload.crc32, etag: object.etag },
    });
    await writeRecord(env.MODELS, record);
    return record;
  } catch (error) {
    if (upload) await (upload as R2MultipartUpload).abort().catch(() => {});
    if (error instanceof Superseded) return null;
    if (error instanceof Busy && !last) throw error; // nothing started: the record stays queued
    record.state = "failed";
    record.uploadId = undefined;
    record.error =
      error instanceof EdgevitError
        ? { code: error.code, message: error.message }
        : { code: "internal_error", message: "the import failed inside the Worker" };
    if (!(error instanceof EdgevitError)) console.error(`import of ${record.repo} as ${record.name}:`, error);
    await ours()
      .then(() => writeRecord(env.MODELS, record))
      .catch(() => {});
    return record;
  } finally {
    ticket?.release();
  }
}
