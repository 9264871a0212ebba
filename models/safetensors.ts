// safetensors files on disk (and a small writer for tests and tools); the format itself is
// core/convert/safetensors.ts. The reader keeps a file handle and reads one tensor at a time, so a 350 MB
// checkpoint never sits in memory whole.
import { open, readFile, stat, type FileHandle } from "node:fs/promises";
import { basename, join } from "node:path";
import {
  decode,
  floatDtype,
  INDEX_FILE,
  MAX_HEADER_BYTES,
  parseHeader,
  rowRange,
  SafetensorsError,
  type Dtype,
  type IntDtype,
  type TensorInfo,
  type TensorSource,
} from "../core/convert/safetensors.ts";

export { decode, INDEX_FILE, SafetensorsError, type Dtype, type IntDtype, type TensorInfo, type TensorSource };

export class SafetensorsFile implements TensorSource {
  readonly path: string;
  readonly bytes: number;
  readonly tensors: Map<string, TensorInfo>;
  readonly metadata: Record<string, string>;
  private readonly handle: FileHandle;

  private constructor(path: string, handle: FileHandle, bytes: number, parsed: ReturnType<typeof parseHeader>) {
    this.path = path;
    this.handle = handle;
    this.bytes = bytes;
    this.tensors = parsed.tensors;
    this.metadata = parsed.metadata;
  }

  static async open(path: string): Promise<SafetensorsFile> {
    const handle = await open(path, "r");
    try {
      const { size } = await handle.stat();
      const prefix = Buffer.alloc(8);
      if (size < 8 || (await handle.read(prefix, 0, 8, 0)).bytesRead !== 8)
        throw new SafetensorsError(`${path}: too short for a safetensors file`);
      const n = prefix.readBigUInt64LE(0);
      if (n > BigInt(Math.min(MAX_HEADER_BYTES, size - 8))) {
        throw new SafetensorsError(`${path}: header length ${n} does not fit in the ${size}-byte file`);
      }
      const json = Buffer.alloc(Number(n));
      await handle.read(json, 0, json.length, 8);
      return new SafetensorsFile(path, handle, size, parseHeader(json.toString("utf8"), 8 + json.length, size));
    } catch (e) {
      await handle.close();
      throw e;
    }
  }

  get files(): string[] {
    return [basename(this.path)];
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  info(name: string): TensorInfo {
    const info = this.tensors.get(name);
    if (!info) throw new SafetensorsError(`${this.path}: no tensor ${name}`);
    return info;
  }

  async raw(name: string): Promise<Uint8Array> {
    const info = this.info(name);
    const buf = new Uint8Array(info.end - info.begin);
    const { bytesRead } = await this.handle.read(buf, 0, buf.length, info.begin);
    if (bytesRead !== buf.length) throw new SafetensorsError(`${this.path}: short read of ${name}`);
    return buf;
  }

  async read(name: string): Promise<Float32Array> {
    return decode(floatDtype(this.info(name), this.path), await this.raw(name));
  }

  async readRows(name: string, first: number, end: number): Promise<Float32Array> {
    const info = this.info(name);
    const dtype = floatDtype(info, this.path);
    const range = rowRange(info, first, end);
    const buf = new Uint8Array(range.end - range.begin);
    const { bytesRead } = await this.handle.read(buf, 0, buf.length, range.begin);
    if (bytesRead !== buf.length) throw new SafetensorsError(`${this.path}: short read of ${name}`);
    return decode(dtype, buf);
  }

  close(): Promise<void> {
    return this.handle.close();
  }
}

// A sharded checkpoint: the index's weight_map says which shard holds each tensor.
export class ShardedSafetensors implements TensorSource {
  readonly tensors = new Map<string, TensorInfo>();
  readonly files: string[];
  readonly bytes: number;
  private readonly owner = new Map<string, SafetensorsFile>();
  private readonly shards: SafetensorsFile[];

  private constructor(index: string, shards: SafetensorsFile[], weightMap: Record<string, string>) {
    this.shards = shards;
    this.files = [index, ...shards.map((s) => basename(s.path))];
    this.bytes = shards.reduce((a, s) => a + s.bytes, 0);
    const byName = new Map(shards.map((s) => [basename(s.path), s]));
    for (const [name, shardName] of Object.entries(weightMap)) {
      const shard = byName.get(shardName);
      if (!shard?.has(name)) throw new SafetensorsError(`${index}: ${name} is not in ${shardName}`);
      this.owner.set(name, shard);
      this.tensors.set(name, shard.info(name));
    }
    for (const shard of shards) {
      const stray = [...shard.tensors.keys()].find((name) => this.owner.get(name) !== shard);
      if (stray)
        throw new SafetensorsError(`${basename(shard.path)} holds ${stray}, which ${index} does not map to it`);
    }
  }

  static async open(dir: string): Promise<ShardedSafetensors> {
    let weightMap: Record<string, string>;
    try {
      weightMap = (JSON.parse(await readFile(join(dir, INDEX_FILE), "utf8")) as { weight_map: Record<string, string> })
        .weight_map;
    } catch (e) {
      throw new SafetensorsError(`${join(dir, INDEX_FILE)}: ${(e as Error).message}`);
    }
    const names = [...new Set(Object.values(weightMap ?? {}))].sort();
    if (names.length === 0 || names.some((n) => typeof n !== "string" || n.includes("/")))
      throw new SafetensorsError(`${join(dir, INDEX_FILE)}: weight_map does not name shard files in this folder`);
    const shards: SafetensorsFile[] = [];
    try {
      for (const name of names) shards.push(await SafetensorsFile.open(join(dir, name)));
      return new ShardedSafetensors(INDEX_FILE, shards, weightMap);
    } catch (e) {
      await Promise.all(shards.map((s) => s.close()));
      throw e;
    }
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  info(name: string): TensorInfo {
    const info = this.tensors.get(name);
    if (!info) throw new SafetensorsError(`${INDEX_FILE}: no tensor ${name}`);
    return info;
  }

  read(name: string): Promise<Float32Array> {
    this.info(name);
    return (this.owner.get(name) as SafetensorsFile).read(name);
  }

  readRows(name: string, first: number, end: number): Promise<Float32Array> {
    this.info(name);
    return (this.owner.get(name) as SafetensorsFile).readRows(name, first, end);
  }

  async close(): Promise<void> {
    await Promise.all(this.shards.map((s) => s.close()));
  }
}

// A checkpoint folder's tensors: model.safetensors when there is one, else the shards of its index.
export async function openCheckpoint(dir: string): Promise<TensorSource> {
  const exists = (name: string) =>
    stat(join(dir, name)).then(
      () => true,
      () => false,
    );
  if (!(await exists("model.safetensors")) && (await exists(INDEX_FILE))) return ShardedSafetensors.open(dir);
  return SafetensorsFile.open(join(dir, "model.safetensors"));
}

export interface WriteTensor {
  dtype: Dtype | IntDtype; // integer buffers too: the files openai publishes carry some
  shape: number[];
  data: Uint8Array; // little-endian raw bytes
}

// A whole safetensors file in memory (test checkpoints, tools).
export function encodeSafetensors(tensors: Record<string, WriteTensor>, metadata?: Record<string, string>): Uint8Array {
  const header: Record<string, unknown> = metadata ? { __metadata__: metadata } : {};
  let at = 0;
  for (const [name, t] of Object.entries(tensors)) {
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [at, at + t.data.length] };
    at += t.data.length;
  }
  const raw = new TextEncoder().encode(JSON.stringify(header));
  // data aligned to 8 bytes with trailing spaces, as the reference writer does
  const jsonBytes = new Uint8Array(Math.ceil(raw.length / 8) * 8).fill(0x20);
  jsonBytes.set(raw);
  const out = new Uint8Array(8 + jsonBytes.length + at);
  new DataView(out.buffer).setBigUint64(0, BigInt(jsonBytes.length), true);
  out.set(jsonBytes, 8);
  let pos = 8 + jsonBytes.length;
  for (const t of Object.values(tensors)) {
    out.set(t.data, pos);
    pos += t.data.length;
  }
  return out;
}
