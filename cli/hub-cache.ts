// huggingface_hub's cache on disk, read and written the way its file_download.py does, so files a user already
// has (from transformers, huggingface-cli) are reused and files pulled here serve them too:
//
//   $HF_HUB_CACHE (default $HF_HOME/hub, $HF_HOME default ~/.cache/huggingface)
//     models--org--name/
//       blobs/<etag>                  the bytes, named by the sha256 (large files) or git blob sha1 (small)
//       blobs/<etag>.incomplete       a download in progress, continued with a Range request
//       refs/<revision>               the commit the branch or tag resolved to
//       snapshots/<commit>/<file>     a relative symlink to ../../blobs/<etag>

import { createHash } from "node:crypto";
import { createReadStream, existsSync } from "node:fs";
import { mkdir, open, readFile, rename, stat, symlink, truncate, unlink, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { dirname, join, relative } from "node:path";
import { EdgevitError } from "../core/errors.ts";
import { cut, type HubClient, type HubFile, readWithin } from "../core/hub/client.ts";

// Attempts in a row that bring no bytes before a download gives up (the .incomplete blob stays for the next run).
const ATTEMPTS = 3;

export function hubCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.HF_HUB_CACHE) return env.HF_HUB_CACHE;
  const home = env.HF_HOME || join(env.XDG_CACHE_HOME || join(homedir(), ".cache"), "huggingface");
  return join(home, "hub");
}

export const repoFolder = (cache: string, repo: string) => join(cache, `models--${repo.split("/").join("--")}`);

export const snapshotDir = (cache: string, repo: string, commit: string) =>
  join(repoFolder(cache, repo), "snapshots", commit);

// What a download reports as it goes: bytes so far of the file's size.
export interface Progress {
  start(file: HubFile, from: number): void;
  advance(bytes: number): void;
  done(): void;
}

// Records `revision` -> `commit` (atomically: a reader never sees half a commit).
export async function writeRef(cache: string, repo: string, revision: string, commit: string): Promise<void> {
  if (revision === commit) return;
  const ref = join(repoFolder(cache, repo), "refs", revision);
  if (existsSync(ref) && (await readFile(ref, "utf8")) === commit) return;
  await mkdir(dirname(ref), { recursive: true });
  const tmp = `${ref}.${process.pid}.tmp`;
  await writeFile(tmp, commit);
  await rename(tmp, ref);
}

async function sha256Of(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

// Appends the file's bytes from `from` to the open .incomplete file; returns the bytes it got before any cut.
async function fetchInto(
  hub: HubClient,
  file: HubFile,
  path: string,
  from: number,
  progress: Progress,
): Promise<number> {
  const response = await hub.get(file, from);
  const out = await open(path, "a");
  let got = 0;
  try {
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    for (;;) {
      let chunk: ReadableStreamReadResult<Uint8Array>;
      try {
        chunk = await readWithin(reader, hub.stallMs, file.file, from + got, file.size);
      } catch (error) {
        const failure = error instanceof EdgevitError ? error : cut(file.file, from + got, file.size, error);
        throw Object.assign(failure, { got });
      }
      if (chunk.done) break;
      await out.write(chunk.value);
      got += chunk.value.length;
      progress.advance(got + from);
    }
  } finally {
    await out.close();
  }
  if (from + got !== file.size) throw Object.assign(cut(file.file, from + got, file.size), { got });
  return got;
}

// Downloads a blob into blobs/<etag>, continuing a .incomplete one; checks its size and, for a sha256 etag, its
// hash before it takes the blob's name.
async function downloadBlob(hub: HubClient, file: HubFile, blob: string, progress: Progress): Promise<void> {
  const partial = `${blob}.incomplete`;
  await mkdir(dirname(blob), { recursive: true });
  let have = existsSync(partial) ? (await stat(partial)).size : 0;
  if (have > file.size) {
    await truncate(partial, 0);
    have = 0;
  }
  progress.start(file, have);
  // a cut is retried from where it stopped while attempts bring bytes; the .incomplete file keeps them for
  // the next run when they stop coming
  for (let stalled = 0; have < file.size || !existsSync(partial); ) {
    try {
      have += await fetchInto(hub, file, partial, have, progress);
    } catch (error) {
      if (!(error instanceof EdgevitError) || error.code !== "hub_unavailable") throw error;
      const got = (error as { got?: number }).got ?? 0;
      have += got;
      stalled = got > 0 ? 0 : stalled + 1;
      if (stalled >= ATTEMPTS) {
        throw new EdgevitError(
          "hub_unavailable",
          `${error.message}; run the same command again to continue from ${partial}`,
        );
      }
    }
  }
  if (/^[0-9a-f]{64}$/.test(file.etag)) {
    const actual = await sha256Of(partial);
    if (actual !== file.etag) {
      await unlink(partial);
      throw new EdgevitError(
        "hub_unavailable",
        `${file.file}: downloaded bytes have sha256 ${actual}, the hub says ${file.etag}`,
      );
    }
  }
  await rename(partial, blob);
  progress.done();
}

// The file in the cache's snapshot for its commit, downloaded only when no blob of its etag is there.
// Returns the snapshot path and whether bytes were downloaded.
export async function cacheFile(
  hub: HubClient,
  cache: string,
  file: HubFile,
  progress: Progress,
): Promise<{ path: string; downloaded: boolean }> {
  const folder = repoFolder(cache, file.repo);
  const pointer = join(folder, "snapshots", file.commit, ...file.file.split("/"));
  if (existsSync(pointer)) return { path: pointer, downloaded: false };
  const blob = join(folder, "blobs", file.etag);
  const downloaded = !existsSync(blob);
  if (downloaded) await downloadBlob(hub, file, blob, progress);
  await mkdir(dirname(pointer), { recursive: true });
  await symlink(relative(dirname(pointer), blob), pointer).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== "EEXIST") throw error;
  });
  return { path: pointer, downloaded };
}

const MB = 1e6;

// A bar redrawn in place on a terminal; a line per file otherwise (logs, CI).
export function progressTo(stream: NodeJS.WriteStream): Progress {
  let file: HubFile | null = null;
  let started = 0;
  let from = 0;
  let shown = 0;
  const mb = (n: number) => (n / MB).toFixed(1);
  return {
    start(f, at) {
      file = f;
      from = at;
      started = performance.now();
      shown = 0;
      if (!stream.isTTY)
        stream.write(`downloading ${f.file} (${mb(f.size)} MB${at ? `, continuing at ${mb(at)} MB` : ""})\n`);
    },
    advance(bytes) {
      if (!file || !stream.isTTY) return;
      const now = performance.now();
      if (now - shown < 100 && bytes < file.size) return;
      shown = now;
      const width = 30;
      const filled = Math.round((width * bytes) / Math.max(1, file.size));
      const rate = (bytes - from) / MB / Math.max(1e-3, (now - started) / 1000);
      stream.write(
        `\r${file.file} [${"#".repeat(filled)}${".".repeat(width - filled)}] ${mb(bytes)}/${mb(file.size)} MB ${rate.toFixed(1)} MB/s `,
      );
    },
    done() {
      if (!file) return;
      const seconds = (performance.now() - started) / 1000;
      stream.write(`${stream.isTTY ? "\n" : ""}${file.file}: ${mb(file.size - from)} MB in ${seconds.toFixed(1)} s\n`);
      file = null;
    },
  };
}
