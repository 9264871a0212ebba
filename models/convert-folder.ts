// `edgevit convert`'s side of the converter (core/convert/convert.ts): a checkpoint folder on disk as its
// source, the bundle to a file or to memory. A folder of huggingface_hub's cache
// (`models--org--name/snapshots/<commit>`) is recorded as `org/name@commit`, as the Worker's import records
// the same files, and named after the repository.
import { open, readFile, rename, rm, stat } from "node:fs/promises";
import { basename, join, resolve } from "node:path";
import { crc32 } from "node:zlib";
import { hex32, type BundleHeader, type SourceFile } from "../core/bundle/format.ts";
import {
  type CheckpointSource,
  ConvertError,
  type ConvertOptions,
  convert,
  type Json,
} from "../core/convert/convert.ts";
import { cachedSnapshot, checkpointId } from "../core/hub/files.ts";
import { openCheckpoint } from "./safetensors.ts";

export {
  CONVERTER,
  ConvertError,
  type ConvertOptions,
  concatRows,
  normalizePreprocessing,
  SUPPORTED_ARCHITECTURES,
} from "../core/convert/convert.ts";

async function fileRecord(path: string): Promise<SourceFile> {
  const handle = await open(path, "r");
  try {
    const buf = new Uint8Array(1 << 22);
    let crc = 0,
      bytes = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buf, 0, buf.length, bytes);
      if (bytesRead === 0) break;
      crc = crc32(buf.subarray(0, bytesRead), crc);
      bytes += bytesRead;
    }
    return { bytes, crc32: hex32(crc) };
  } finally {
    await handle.close();
  }
}

async function optionalFile(path: string): Promise<Uint8Array | null> {
  try {
    return await readFile(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw new ConvertError(`cannot read ${path}: ${(e as Error).message}`);
  }
}

async function readJson(path: string, optional: boolean): Promise<Json | null> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    if (optional && (e as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw new ConvertError(`cannot read ${path}: ${(e as Error).message}`);
  }
  try {
    return JSON.parse(text) as Json;
  } catch (e) {
    throw new ConvertError(`${path} is not JSON: ${(e as Error).message}`);
  }
}

export function folderSource(dir: string): CheckpointSource {
  const snapshot = cachedSnapshot(resolve(dir));
  return {
    checkpoint: snapshot ? checkpointId(snapshot.repo, snapshot.commit) : dir,
    defaultName: basename(snapshot ? snapshot.repo : dir.replace(/\/+$/, "")),
    json: (file, optional) => readJson(join(dir, file), optional),
    file: (file) => optionalFile(join(dir, file)),
    tensors: () => openCheckpoint(dir),
    record: (file) => fileRecord(join(dir, file)),
  };
}

// A whole bundle in memory: for small models and tests (the engine fidelity tests convert with this).
export async function convertDirectory(dir: string, options: ConvertOptions = {}): Promise<Uint8Array> {
  let out = new Uint8Array(0);
  await convert(
    folderSource(dir),
    { crc32, ...options },
    (chunk, position) => out.set(chunk, position),
    (bytes) => {
      out = new Uint8Array(bytes);
    },
  );
  return out;
}

// Streams the bundle to `outPath` (through a temporary file, renamed when complete).
export async function convertToFile(dir: string, outPath: string, options: ConvertOptions = {}): Promise<BundleHeader> {
  const log = options.log ?? (() => {});
  const tmp = `${outPath}.partial`;
  const out = await open(tmp, "w");
  try {
    const header = await convert(folderSource(dir), { crc32, ...options }, async (chunk, position) => {
      const { bytesWritten } = await out.write(chunk, 0, chunk.length, position);
      if (bytesWritten !== chunk.length) throw new ConvertError(`short write to ${tmp}`);
    });
    await out.close();
    await rename(tmp, outPath);
    log(
      `wrote ${outPath}: ${((await stat(outPath)).size / 1e6).toFixed(1)} MB, payload ${header.payload.length} bytes, crc32 ${header.payload.crc32}`,
    );
    return header;
  } catch (e) {
    await out.close().catch(() => {});
    await rm(tmp, { force: true });
    throw e;
  }
}
