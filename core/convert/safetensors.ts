// The safetensors format, runtime-neutral: u64 LE header length N, N bytes of JSON
// `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__"?: {...}}`, then the data; offsets are
// relative to the end of the header. The header's parsing and the dtype decoding, shared by the Node reader
// (models/safetensors.ts) and the Worker's import, which reads a hub file by range requests.

export type Dtype = "F32" | "F16" | "BF16";
// Integer tensors are listed but never read: the converter ignores the buffers checkpoints carry
// (openai's CLIP files hold I64 position_ids).
export type IntDtype = "I64" | "I32" | "I16" | "I8" | "U8" | "BOOL";
export const ITEM_BYTES: Record<Dtype | IntDtype, number> = {
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};
const FLOATS: readonly string[] = ["F32", "F16", "BF16"];
// Longer headers exist only for checkpoints with huge tensor counts; this bounds a corrupt length field.
export const MAX_HEADER_BYTES = 100 << 20;

export interface TensorInfo {
  name: string;
  dtype: Dtype | IntDtype;
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
export function parseHeader(
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
        `tensor ${name} has dtype ${JSON.stringify(info.dtype)}; only F32, F16 and BF16 are read (integer buffers are skipped)`,
      );
    }
    const dtype = info.dtype as Dtype | IntDtype;
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

// A tensor's float dtype, refused (`where` names its file) when it is an integer buffer.
export function floatDtype(info: TensorInfo, where: string): Dtype {
  if (!FLOATS.includes(info.dtype))
    throw new SafetensorsError(`${where}: tensor ${info.name} is ${info.dtype}, not a float tensor`);
  return info.dtype as Dtype;
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
  // Rows first..end-1 of the tensor's first dimension: a table too large to hold in f32 at once, in pieces.
  readRows(name: string, first: number, end: number): Promise<Float32Array>;
  close(): Promise<void>;
}

// The absolute file range of rows first..end-1 (along the first dimension) of a tensor.
export function rowRange(info: TensorInfo, first: number, end: number): { begin: number; end: number } {
  const rows = info.shape[0] ?? 1;
  if (!(first >= 0 && first <= end && end <= rows))
    throw new SafetensorsError(`rows ${first}..${end} of ${info.name}, which has ${rows}`);
  const rowBytes = (info.end - info.begin) / rows;
  return { begin: info.begin + first * rowBytes, end: info.begin + end * rowBytes };
}

export const INDEX_FILE = "model.safetensors.index.json";
