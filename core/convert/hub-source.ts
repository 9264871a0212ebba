// A checkpoint read from the hub by range requests, as a CheckpointSource for the converter: the JSON files
// whole, each safetensors header with two ranges (its length, then its JSON), then each tensor with one range
// when the converter reaches it, in the bundle's order. Nothing but the tensor being packed is held.
//
// The bundle records each file's size and CRC-32 as `edgevit convert` does. The small files (the JSON files,
// a text tower's tokenizer files) are read whole; a weights file's CRC-32 is put together at the end from the
// CRC-32s of the ranges read (header and tensors, in whatever order they came), with the bytes no tensor
// covers (tensors the bundle does not use, padding) read then: each byte of the file is fetched once.

import { hex32, LIMITS, type SourceFile } from "../bundle/format.ts";
import { MAX_TENSORS } from "../bundle/layout.ts";
import { crc32, crc32Combine } from "../crc32.ts";
import { EdgevitError } from "../errors.ts";
import { sizeText } from "../sizes.ts";
import type { HubClient, HubFile } from "../hub/client.ts";
import { checkpointId, type CheckpointFiles } from "../hub/files.ts";
import { ConvertError, type CheckpointSource, type Json } from "./convert.ts";
import {
  decode,
  floatDtype,
  INDEX_FILE,
  MAX_HEADER_BYTES,
  parseHeader,
  rowRange,
  SafetensorsError,
  type TensorInfo,
  type TensorSource,
} from "./safetensors.ts";

// A safetensors header entry (`"name": {"dtype", "shape", "data_offsets"}`) is under 256 bytes:
// transformers' longest tensor names are about 80 characters.
const HEADER_BYTES_PER_TENSOR = 256;
// The headers read for one checkpoint, all its weights files together: a file of both towers (CLIP, SigLIP)
// holds a text tower beside the image tower, so twice the tensors a bundle can have (MAX_TENSORS), 727.5 KiB.
// A safetensors length field may claim up to MAX_HEADER_BYTES (100 MiB); past this bound the checkpoint is
// refused before its header is read.
export const MAX_REMOTE_HEADER_BYTES = 2 * MAX_TENSORS * HEADER_BYTES_PER_TENSOR;
// The small files read whole (config.json, preprocessor_config.json, the shard index, a text tower's tokenizer
// files): a config with ImageNet-21k's 21,843 labels is under 1 MiB, CLIP's vocab.json 0.8 MiB.
export const MAX_JSON_BYTES = LIMITS.headerBytes;

// Attempts of one range before the import fails: a dropped connection is retried, a hub that keeps
// dropping it is not.
const ATTEMPTS = 3;
// The bytes no tensor covers are read in pieces of at most this many.
export const GAP_PIECE = 8 << 20;
const PENDING_CRC = "00000000";

export interface HubSourceProgress {
  tensorsRead: number;
  bytesRead: number; // of the weights files
}

export interface HubSourceOptions {
  progress?: (p: HubSourceProgress) => void;
  // Called with the length of a JSON file or a safetensors header before it is read, so the caller can
  // reserve memory for it (the Worker's ledger); what it throws stops the read.
  reserve?: (bytes: number) => Promise<void>;
}

// Refuses what the hub-read checkpoint may not hold: `bytes` of `what` over `limit`.
function overRead(what: string, bytes: number | bigint, limit: number, why: string): ConvertError {
  return new ConvertError(
    `${what} is ${sizeText(Number(bytes))}, over the ${sizeText(limit)} read from the hub for a checkpoint (${why}); ` +
      "`npx edgevit pull` converts it on your machine",
  );
}

// A weights file and the CRC-32 of every range of it read so far.
class RemoteFile {
  readonly pieces = new Map<number, { end: number; crc: number }>();
  readonly hub: HubClient;
  readonly file: HubFile;
  private readonly reserve: (bytes: number) => Promise<void>;

  constructor(hub: HubClient, file: HubFile, reserve: (bytes: number) => Promise<void>) {
    this.hub = hub;
    this.file = file;
    this.reserve = reserve;
  }

  async range(start: number, end: number): Promise<Uint8Array> {
    for (let attempt = 1; ; attempt++) {
      try {
        const bytes = await this.hub.range(this.file, start, end);
        this.pieces.set(start, { end, crc: crc32(bytes) });
        return bytes;
      } catch (error) {
        if (!(error instanceof EdgevitError) || error.code !== "hub_unavailable" || attempt >= ATTEMPTS) throw error;
      }
    }
  }

  // The whole file's CRC-32: the ranges read in file order, the bytes between them read now.
  async crc(): Promise<number> {
    let crc = 0;
    let at = 0;
    const starts = [...this.pieces.keys()].sort((a, b) => a - b);
    for (const start of [...starts, this.file.size]) {
      while (at < start) {
        const end = Math.min(start, at + GAP_PIECE);
        crc = crc32(await this.range(at, end), crc);
        at = end;
      }
      const piece = this.pieces.get(start);
      if (!piece || piece.end <= at) continue;
      if (start !== at) throw new Error(`overlapping ranges of ${this.file.file}`);
      crc = crc32Combine(crc, piece.crc, piece.end - start);
      at = piece.end;
    }
    return crc;
  }

  // The safetensors header: its u64 length, then its JSON, at most `room` bytes of it.
  async header(room: number): Promise<{ tensors: Map<string, TensorInfo>; bytes: number }> {
    const name = this.file.file;
    if (this.file.size < 8) throw new SafetensorsError(`${name}: too short for a safetensors file`);
    const n = new DataView((await this.range(0, 8)).buffer).getBigUint64(0, true);
    if (n > BigInt(Math.min(MAX_HEADER_BYTES, this.file.size - 8)))
      throw new SafetensorsError(`${name}: header length ${n} does not fit in the ${this.file.size}-byte file`);
    if (n > BigInt(room)) {
      throw overRead(
        `the safetensors header of ${name}`,
        n,
        MAX_REMOTE_HEADER_BYTES,
        `${HEADER_BYTES_PER_TENSOR} bytes for each of twice the ${MAX_TENSORS} tensors a bundle can have`,
      );
    }
    await this.reserve(Number(n));
    const json = new TextDecoder().decode(await this.range(8, 8 + Number(n)));
    return { tensors: parseHeader(json, 8 + Number(n), this.file.size).tensors, bytes: Number(n) };
  }
}

// A JSON file of the checkpoint, whole: refused past MAX_JSON_BYTES, reserved before it is read.
export async function jsonBytes(
  hub: HubClient,
  file: HubFile,
  reserve: (bytes: number) => Promise<void> = async () => {},
): Promise<Uint8Array> {
  if (file.size > MAX_JSON_BYTES) throw overRead(file.file, file.size, MAX_JSON_BYTES, "a JSON file");
  await reserve(file.size);
  return hub.bytes(file);
}

class RemoteTensors implements TensorSource {
  readonly tensors = new Map<string, TensorInfo>();
  private readonly progress: (p: HubSourceProgress) => void;
  private readonly counts: HubSourceProgress;
  readonly files: string[];
  readonly bytes: number;
  private readonly owner = new Map<string, RemoteFile>();

  constructor(
    index: string | null,
    shards: { remote: RemoteFile; tensors: Map<string, TensorInfo> }[],
    progress: (p: HubSourceProgress) => void,
    counts: HubSourceProgress,
  ) {
    this.progress = progress;
    this.counts = counts;
    this.files = [...(index ? [index] : []), ...shards.map((s) => s.remote.file.file)];
    this.bytes = shards.reduce((a, s) => a + s.remote.file.size, 0);
    for (const { remote, tensors } of shards) {
      for (const [name, info] of tensors) {
        if (this.tensors.has(name)) throw new SafetensorsError(`${name} is in more than one shard`);
        this.tensors.set(name, info);
        this.owner.set(name, remote);
      }
    }
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  info(name: string): TensorInfo {
    const info = this.tensors.get(name);
    if (!info) throw new SafetensorsError(`no tensor ${name}`);
    return info;
  }

  read(name: string): Promise<Float32Array> {
    const info = this.info(name);
    return this.readRange(info, info, true);
  }

  // Rows of a table: its pieces together count as one tensor read once the last one is in.
  readRows(name: string, first: number, end: number): Promise<Float32Array> {
    const info = this.info(name);
    return this.readRange(info, rowRange(info, first, end), end === info.shape[0]);
  }

  private async readRange(info: TensorInfo, range: { begin: number; end: number }, last: boolean) {
    const remote = this.owner.get(info.name) as RemoteFile;
    const dtype = floatDtype(info, remote.file.file);
    const bytes = await remote.range(range.begin, range.end);
    if (last) this.counts.tensorsRead++;
    this.counts.bytesRead += bytes.length;
    this.progress(this.counts);
    return decode(dtype, bytes);
  }

  async close(): Promise<void> {}
}

// The converter's source for a hub checkpoint (the files checkpointFiles found).
export function hubSource(hub: HubClient, files: CheckpointFiles, options: HubSourceOptions = {}): CheckpointSource {
  const { progress = () => {}, reserve = async () => {} } = options;
  const small = new Map<string, { bytes: Uint8Array; record: SourceFile }>();
  const remote = new Map<string, RemoteFile>();
  const counts: HubSourceProgress = { tensorsRead: 0, bytesRead: 0 };
  const byName = new Map(
    [files.config, files.preprocessor, files.index, ...files.tokenizer]
      .filter((f): f is HubFile => f !== null)
      .map((f) => [f.file, f]),
  );
  const smallFile = async (name: string) => {
    let got = small.get(name);
    const file = byName.get(name);
    if (!got && file) {
      const bytes = await jsonBytes(hub, file, reserve);
      got = { bytes, record: { bytes: bytes.length, crc32: hex32(crc32(bytes)) } };
      small.set(name, got);
    }
    return got;
  };
  const parseJson = (name: string, bytes: Uint8Array): Json => {
    try {
      return JSON.parse(new TextDecoder().decode(bytes)) as Json;
    } catch (e) {
      throw new ConvertError(`${name} is not JSON: ${(e as Error).message}`);
    }
  };
  return {
    checkpoint: checkpointId(files.repo, files.commit),
    defaultName: files.repo.split("/").pop() as string,
    async json(name, optional) {
      const got = await smallFile(name);
      if (!got) {
        if (optional) return null;
        throw new ConvertError(`${files.repo} has no ${name}`);
      }
      return parseJson(name, got.bytes);
    },
    async file(name) {
      return (await smallFile(name))?.bytes ?? null;
    },
    async tensors() {
      const shards = [];
      let room = MAX_REMOTE_HEADER_BYTES;
      for (const file of files.weights) {
        const r = new RemoteFile(hub, file, reserve);
        remote.set(file.file, r);
        const { tensors, bytes } = await r.header(room);
        room -= bytes;
        shards.push({ remote: r, tensors });
      }
      if (files.index) await smallFile(INDEX_FILE);
      return new RemoteTensors(files.index ? INDEX_FILE : null, shards, progress, counts);
    },
    async record(name) {
      const got = await smallFile(name);
      if (got) return got.record;
      const r = remote.get(name);
      if (!r) throw new Error(`${name} is not a file of ${files.repo}`);
      return { bytes: r.file.size, crc32: PENDING_CRC }; // filled in by final()
    },
    async final() {
      const records: Record<string, SourceFile> = {};
      for (const [name, got] of small) records[name] = got.record;
      for (const [name, r] of remote) records[name] = { bytes: r.file.size, crc32: hex32(await r.crc()) };
      return records;
    },
  };
}
