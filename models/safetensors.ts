// safetensors reader (and a small writer for tests and tools). Layout: u64 LE header length N, N bytes of
// JSON `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__"?: {...}}`, then the data; offsets
// are relative to the end of the header. The reader keeps a file handle and reads one tensor at a time, so
// a 350 MB checkpoint never sits in memory whole.
import { open, readFile, stat, type FileHandle } from "node:fs/promises";
import { basename, join } from "node:path";

export type Dtype = "F32" | "F16" | "BF16";
const ITEM_BYTES: Record<Dtype, number> = { F32: 4, F16: 2, BF16: 2 };
// Longer headers exist only for checkpoints with huge tensor counts; this bounds a corrupt length field.
const MAX_HEADER_BYTES = 100 << 20;

export interface TensorInfo {
  name: string;
  dtype: Dtype;
  shape: number[];
  begin: number; // absolute file offset
  end: number;
}

export class SafetensorsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SafetensorsError";
  }
}

// Parses the JSON header; `dataStart` = 8 + N, `fileBytes` bounds the offsets.
function parseHeader(
  json: string,
  dataStart: number,
  fileBytes: number,
): { tensors: Map<string, TensorInfo>; metadata: Record<string, string> } {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (e) {
    throw new SafetensorsError(`safetensors header is not JSON: ${(e as Error).message}`);
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw))
    throw new SafetensorsError("safetensors header is not a JSON object");
  const tensors = new Map<string, TensorInfo>();
  let metadata: Record<string, string> = {};
  for (const [name, v] of Object.entries(raw as Record<string, unknown>)) {
    if (name === "__metadata__") {
      metadata = v as Record<string, string>;
      continue;
    }
    const info = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (!(typeof info.dtype === "string" && info.dtype in ITEM_BYTES)) {
      throw new SafetensorsError(
        `tensor ${name} has dtype ${JSON.stringify(info.dtype)}; only F32, F16 and BF16 are read`,
      );
    }
    const dtype = info.dtype as Dtype;
    const shape = info.shape;
    const offsets = info.data_offsets;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
      throw new SafetensorsError(`tensor ${name} has a malformed shape ${JSON.stringify(shape)}`);
    }
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((d) => Number.isInteger(d) && d >= 0)) {
      throw new SafetensorsError(`tensor ${name} has malformed data_offsets ${JSON.stringify(offsets)}`);
    }
    const count = shape.reduce((a: number, b: number) => a * b, 1);
    const [b, e] = offsets as [number, number];
    if (e - b !== count * ITEM_BYTES[dtype]) {
      throw new SafetensorsError(
        `tensor ${name}: ${e - b} bytes for ${dtype} shape [${shape.join(", ")}] (expected ${count * ITEM_BYTES[dtype]})`,
      );
    }
    if (dataStart + e > fileBytes) {
      throw new SafetensorsError(
        `tensor ${name} ends at byte ${dataStart + e}, past the end of the ${fileBytes}-byte file (truncated?)`,
      );
    }
    tensors.set(name, { name, dtype, shape: shape as number[], begin: dataStart + b, end: dataStart + e });
  }
  return { tensors, metadata };
}

const F16_EXP = new Float32Array(32).map((_, e) => 2 ** (e - 15));

function f16ToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24; // subnormal
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * F16_EXP[exp] * (1 + frac / 1024);
}

// Little-endian raw bytes of one tensor -> f32 values.
export function decode(dtype: Dtype, bytes: Uint8Array): Float32Array {
  const count = bytes.length / ITEM_BYTES[dtype];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(count);
  if (dtype === "F32") {
    for (let i = 0; i < count; i++) out[i] = view.getFloat32(4 * i, true);
  } else if (dtype === "F16") {
    for (let i = 0; i < count; i++) out[i] = f16ToF32(view.getUint16(2 * i, true));
  } else {
    // bfloat16 is the top half of an f32
    const bits = new Uint32Array(out.buffer);
    for (let i = 0; i < count; i++) bits[i] = view.getUint16(2 * i, true) << 16;
  }
  return out;
}

// The tensors of a checkpoint folder: model.safetensors, or the shards model.safetensors.index.json names.
export interface TensorSource {
  readonly bytes: number;
  readonly tensors: Map<string, TensorInfo>;
  readonly files: string[]; // the files it was read from, by name in the folder
  has(name: string): boolean;
  info(name: string): TensorInfo;
  read(name: string): Promise<Float32Array>;
  close(): Promise<void>;
}

export const INDEX_FILE = "model.safetensors.index.json";

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
    return decode(this.info(name).dtype, await this.raw(name));
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
  dtype: Dtype;
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
