// A client for the Hugging Face hub's file routes, `{endpoint}/{repo}/resolve/{revision}/{file}`, on fetch
// alone, so the CLI's `pull` (Node) and the Worker's import (workerd) share it.
//
// Which origins it talks to: requests are made to the endpoint's origin only. A redirect is followed when
// the endpoint's origin answered it: to its own origin (a renamed repository), or to the storage it names for
// a large file (the hub's CDN, another origin). A redirect answered by any other origin is refused, so a
// Worker fetches only HF_ENDPOINT and the addresses HF_ENDPOINT itself hands out. The token (HF_TOKEN) is
// sent to the endpoint's origin only, never to the storage a redirect leads to (its URLs are signed).
//
// What the hub answers (as huggingface_hub reads it): `X-Repo-Commit` the commit the revision resolved to;
// a small file answers 200 with `ETag` its git blob sha1; a large (LFS / Xet) file answers 302 with
// `Location` on the CDN, `X-Linked-Etag` its sha256 and `X-Linked-Size` its size. Failures carry
// `X-Error-Code`: RepoNotFound (401 without a token: private and missing look alike), GatedRepo (401 or
// 403), RevisionNotFound, EntryNotFound (404).

import { EdgevitError } from "../errors.ts";

export const DEFAULT_ENDPOINT = "https://huggingface.co";
// Same-origin hops (renames) plus the one hop to storage; more is a loop.
const MAX_REDIRECTS = 5;
// How long the hub may go silent: before it answers a request, and between two reads of a body. A
// connection that stalls without closing is abandoned then (hub_unavailable, as a cut), so a download never
// hangs. huggingface_hub's default for the same setting, HF_HUB_DOWNLOAD_TIMEOUT, which both hosts read.
export const DEFAULT_STALL_SECONDS = 10;

export interface HubOptions {
  endpoint?: string; // HF_ENDPOINT; default the hub
  token?: string; // HF_TOKEN, for gated and private repositories
  fetch?: typeof fetch;
  stallSeconds?: number; // HF_HUB_DOWNLOAD_TIMEOUT; default DEFAULT_STALL_SECONDS
}

// One file of one commit, as a HEAD on its resolve URL describes it.
export interface HubFile {
  repo: string;
  file: string;
  commit: string; // the 40-hex commit the revision resolved to
  etag: string; // sha256 (large files) or git blob sha1, unquoted: huggingface_hub names blobs by it
  size: number;
  url: string; // where the bytes are: the resolve URL, or the storage address the hub redirected to
}

// A repository id as the hub spells it: `name` or `org/name`.
const REPO = /^(?:[A-Za-z0-9][\w.-]{0,95}\/)?[A-Za-z0-9][\w.-]{0,95}$/;
const REVISION = /^[\w.-][\w./-]{0,127}$/;
export const COMMIT = /^[0-9a-f]{40}$/;

export function checkRepo(repo: string): string {
  if (!REPO.test(repo) || repo.includes("..") || repo.includes("--")) {
    throw new EdgevitError("bad_parameter", `${JSON.stringify(repo)} is not a hub repository id (org/name)`);
  }
  return repo;
}

export function checkRevision(revision: string): string {
  if (!REVISION.test(revision) || revision.includes("..")) {
    throw new EdgevitError("bad_parameter", `${JSON.stringify(revision)} is not a revision (a branch, tag or commit)`);
  }
  return revision;
}

const isRedirect = (status: number) =>
  status === 301 || status === 302 || status === 303 || status === 307 || status === 308;

export class HubClient {
  readonly endpoint: string;
  readonly origin: string;
  private readonly token: string | undefined;
  private readonly fetcher: typeof fetch;
  readonly stallMs: number;

  constructor(options: HubOptions = {}) {
    this.endpoint = (options.endpoint || DEFAULT_ENDPOINT).replace(/\/+$/, "");
    let origin: string;
    try {
      origin = new URL(this.endpoint).origin;
    } catch {
      throw new EdgevitError("bad_parameter", `HF_ENDPOINT ${JSON.stringify(this.endpoint)} is not a URL`);
    }
    this.origin = origin;
    this.token = options.token || undefined;
    this.fetcher = options.fetch ?? ((input, init) => fetch(input, init));
    const stall = options.stallSeconds ?? DEFAULT_STALL_SECONDS;
    if (!(Number.isFinite(stall) && stall > 0))
      throw new EdgevitError("bad_parameter", `HF_HUB_DOWNLOAD_TIMEOUT ${stall} is not a positive number of seconds`);
    this.stallMs = stall * 1000;
  }

  resolveUrl(repo: string, revision: string, file: string): string {
    const path = file.split("/").map(encodeURIComponent).join("/");
    return `${this.endpoint}/${checkRepo(repo)}/resolve/${encodeURIComponent(checkRevision(revision))}/${path}`;
  }

  // One request, the token added for the endpoint's origin only; no answer within stallMs aborts it.
  private async send(url: string, init: RequestInit): Promise<Response> {
    const headers = new Headers(init.headers);
    if (this.token && new URL(url).origin === this.origin) headers.set("authorization", `Bearer ${this.token}`);
    const abort = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const silent = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        reject(
          new EdgevitError("hub_unavailable", `${new URL(url).origin} did not answer within ${this.stallMs / 1000} s`),
        );
        abort.abort(); // after the rejection, so the fetch's own AbortError does not take its place
      }, this.stallMs);
    });
    try {
      return await Promise.race([
        this.fetcher(url, { ...init, headers, redirect: "manual", signal: abort.signal }).catch((error: unknown) => {
          throw unreachable(url, error);
        }),
        silent,
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  // Follows the endpoint's own redirects; `stopAtStorage` returns the redirect to another origin unfollowed
  // (a HEAD: the hub's redirect carries the file's metadata).
  private async follow(
    url: string,
    init: RequestInit,
    stopAtStorage: boolean,
  ): Promise<{ response: Response; url: string }> {
    for (let hop = 0; ; hop++) {
      const response = await this.send(url, init);
      if (!isRedirect(response.status)) return { response, url };
      await response.body?.cancel();
      const from = new URL(url);
      if (from.origin !== this.origin) {
        throw new EdgevitError(
          "hub_unavailable",
          `${from.origin} redirected a download elsewhere; only redirects answered by ${this.origin} are followed`,
        );
      }
      const location = response.headers.get("location");
      if (!location || hop === MAX_REDIRECTS)
        throw new EdgevitError("hub_unavailable", `${url} answered ${response.status} without a usable Location`);
      const next = new URL(location, url);
      if (next.protocol !== "https:" && next.protocol !== "http:")
        throw new EdgevitError("hub_unavailable", `${url} redirected to a ${next.protocol} address`);
      if (stopAtStorage && next.origin !== this.origin) return { response, url: next.href };
      url = next.href;
    }
  }

  // The file's commit, etag, size and address, or null when the revision has no such file (EntryNotFound).
  async head(repo: string, revision: string, file: string): Promise<HubFile | null> {
    const url = this.resolveUrl(repo, revision, file);
    const { response, url: at } = await this.follow(
      url,
      { method: "HEAD", headers: { "accept-encoding": "identity" } },
      true,
    );
    if (response.status === 404 && response.headers.get("x-error-code") === "EntryNotFound") return null;
    if (!response.ok && !isRedirect(response.status)) throw refusal(response, repo, revision, file, this.endpoint);
    const commit = response.headers.get("x-repo-commit");
    const etag = (response.headers.get("x-linked-etag") ?? response.headers.get("etag"))
      ?.replace(/^W\//, "")
      .replace(/"/g, "");
    const size = Number(
      response.headers.get("x-linked-size") ??
        (isRedirect(response.status) ? null : response.headers.get("content-length")),
    );
    if (!commit || !COMMIT.test(commit) || !etag || !/^[\w-]+$/.test(etag) || !Number.isSafeInteger(size) || size < 0) {
      throw new EdgevitError(
        "hub_unavailable",
        `${this.endpoint} answered for ${repo}/${file} without the hub's X-Repo-Commit, ETag and size: is HF_ENDPOINT a Hugging Face hub?`,
      );
    }
    // the bytes of that commit, whatever the branch says by the time they are read
    return { repo, file, commit, etag, size, url: at === url ? this.resolveUrl(repo, commit, file) : at };
  }

  // The file's bytes from `start` (to `end`, exclusive, when given): a 206 for a range, 200 from the start.
  async get(file: HubFile, start = 0, end?: number): Promise<Response> {
    const headers: Record<string, string> = { "accept-encoding": "identity" };
    const ranged = start > 0 || (end !== undefined && end < file.size);
    if (ranged) headers.range = `bytes=${start}-${end === undefined ? "" : end - 1}`;
    const { response } = await this.follow(file.url, { method: "GET", headers }, false);
    if (!response.ok) throw refusal(response, file.repo, file.commit, file.file, this.endpoint);
    const expected = (end ?? file.size) - start;
    if (ranged && response.status !== 206) {
      await response.body?.cancel();
      throw new EdgevitError("hub_unavailable", `${file.url} ignored a Range request (status ${response.status})`);
    }
    const length = response.headers.get("content-length");
    if (length !== null && Number(length) !== expected) {
      await response.body?.cancel();
      throw new EdgevitError(
        "hub_unavailable",
        `${file.file}: the hub sent ${length} bytes where ${expected} were asked for (was the file replaced?)`,
      );
    }
    return response;
  }

  // A whole small file (JSON), checked against its size.
  async bytes(file: HubFile): Promise<Uint8Array> {
    return readBody(await this.get(file), file.size, file.file, this.stallMs);
  }

  // Bytes [start, end) of a file.
  async range(file: HubFile, start: number, end: number): Promise<Uint8Array> {
    return readBody(await this.get(file, start, end), end - start, file.file, this.stallMs);
  }
}

// One read of a body, or hub_unavailable when nothing arrives within `stallMs` (the stream is cancelled).
export async function readWithin<T>(
  reader: ReadableStreamDefaultReader<T>,
  stallMs: number,
  what: string,
  got: number,
  length: number,
): Promise<ReadableStreamReadResult<T>> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const silent = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(stalled(what, got, length, stallMs)); // before the cancel ends the pending read
      void reader.cancel().catch(() => {});
    }, stallMs);
  });
  try {
    return await Promise.race([reader.read(), silent]);
  } finally {
    clearTimeout(timer);
  }
}

function stalled(what: string, got: number, length: number, stallMs: number): EdgevitError {
  return new EdgevitError(
    "hub_unavailable",
    `the download of ${what} stalled after ${got} of ${length} bytes: nothing arrived for ${stallMs / 1000} s`,
  );
}

// Reads a body of exactly `length` bytes; a connection cut, a stall or a short body is hub_unavailable.
export async function readBody(response: Response, length: number, what: string, stallMs: number): Promise<Uint8Array> {
  const out = new Uint8Array(length);
  let at = 0;
  try {
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    for (;;) {
      const { done, value } = await readWithin(reader, stallMs, what, at, length);
      if (done) break;
      if (at + value.length > length) {
        await reader.cancel();
        throw new EdgevitError("hub_unavailable", `${what}: the hub sent more than the ${length} bytes asked for`);
      }
      out.set(value, at);
      at += value.length;
    }
  } catch (error) {
    if (error instanceof EdgevitError) throw error;
    throw cut(what, at, length, error);
  }
  if (at !== length) throw cut(what, at, length);
  return out;
}

export function cut(what: string, got: number, length: number, cause?: unknown): EdgevitError {
  return new EdgevitError(
    "hub_unavailable",
    `the download of ${what} stopped after ${got} of ${length} bytes${cause ? ` (${(cause as Error).message})` : ""}`,
    { cause },
  );
}

function unreachable(url: string, error: unknown): EdgevitError {
  return new EdgevitError("hub_unavailable", `cannot reach ${new URL(url).origin}: ${(error as Error).message}`, {
    cause: error,
  });
}

// The hub's refusal as a sentence about what the user asked for.
function refusal(response: Response, repo: string, revision: string, file: string, endpoint: string): EdgevitError {
  void response.body?.cancel();
  const code = response.headers.get("x-error-code");
  const page = `${endpoint}/${repo}`;
  if (code === "GatedRepo" || ((response.status === 401 || response.status === 403) && code !== "RepoNotFound")) {
    return new EdgevitError(
      "hub_access_denied",
      `${repo} is gated or private: set HF_TOKEN to a token of an account that has accepted its licence at ${page}`,
    );
  }
  if (code === "RepoNotFound" || (response.status === 404 && !code)) {
    return new EdgevitError(
      "not_found",
      `no repository ${repo} on ${endpoint} (or it is private and HF_TOKEN is not set or cannot read it)`,
    );
  }
  if (code === "RevisionNotFound")
    return new EdgevitError("not_found", `${repo} has no revision ${JSON.stringify(revision)}`);
  if (code === "EntryNotFound") return new EdgevitError("not_found", `${repo} at ${revision} has no file ${file}`);
  return new EdgevitError("hub_unavailable", `${endpoint} answered ${response.status} for ${repo}/${file}`);
}
