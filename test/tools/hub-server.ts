// A local stand-in for the Hugging Face hub's file routes, for tests: serves a directory of repositories
// (`<root>/<org>/<name>/<files>`) as `{hub}/{repo}/resolve/{revision}/{file}` with the headers the hub sends
// (X-Repo-Commit, ETag as the git blob sha1 of a small file, X-Linked-Etag (sha256) and X-Linked-Size on
// the 302 that sends a large file to a second origin, the "CDN"), Range requests, the hub's X-Error-Code
// refusals (401 RepoNotFound without a token, 401 GatedRepo for a repository with a `.gated` file and no
// or a wrong token, 404 RevisionNotFound / EntryNotFound), and a switch that cuts a download mid-file.
//
// One handler, `(Request) => Promise<Response>`: Node tests run it behind two loopback HTTP servers
// (startHubServer), the workerd tests as miniflare's outbound service (every fetch the Worker makes).

import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";

export interface HubOptions {
  root: string; // <root>/<org>/<name>/<files>
  hub: string; // the hub's origin
  cdn: string; // the origin large files are redirected to
  token?: string; // the token a gated repository accepts
  // how a cut shows: "error" fails the body (the Node server then drops the connection); "end" ends it early
  // without Content-Length (miniflare's outbound service passes an early end through, not a failed stream)
  cutBy?: "error" | "end";
  largeFileBytes?: number; // files at least this big are "LFS": redirected to the CDN (default 1 KiB)
}

export interface Logged {
  method: string;
  url: string;
  range: string | null;
  authorization: string | null;
}

interface Entry {
  path: string;
  size: number;
  sha1: string; // git blob sha1
  sha256: string;
}

// A cut: GETs of `file` that reach byte `at` send the bytes before it, then the connection fails (`stall`:
// stays open and sends nothing more, as a hung connection does); `times` cuts, then downloads go through
// (Infinity: every time).
export interface Cut {
  file: string;
  at: number;
  times: number;
  stall?: boolean;
}

export class LocalHub {
  readonly options: Required<Omit<HubOptions, "token">> & { token?: string };
  readonly log: Logged[] = [];
  cut: Cut | null = null;
  private readonly hashes = new Map<string, Entry>();

  constructor(options: HubOptions) {
    this.options = { largeFileBytes: 1024, cutBy: "error", ...options };
  }

  // The commit of a repository: a hash of its files' hashes, so changing a file makes a new commit.
  commitOf(repo: string): string {
    const hash = createHash("sha1");
    for (const name of this.files(repo)) hash.update(`${name} ${this.entry(repo, name).sha1}\n`);
    return hash.digest("hex");
  }

  requests(method?: string): Logged[] {
    return this.log.filter((l) => !method || l.method === method);
  }

  private files(repo: string): string[] {
    return readdirSync(join(this.options.root, repo))
      .filter((n) => !n.startsWith("."))
      .sort();
  }

  private entry(repo: string, file: string): Entry {
    const path = join(this.options.root, repo, file);
    const { size, mtimeMs } = statSync(path);
    const key = `${path} ${size} ${mtimeMs}`;
    let entry = this.hashes.get(key);
    if (!entry) {
      const data = readFileSync(path);
      entry = {
        path,
        size,
        sha1: createHash("sha1").update(`blob ${size}\0`).update(data).digest("hex"),
        sha256: createHash("sha256").update(data).digest("hex"),
      };
      this.hashes.set(key, entry);
    }
    return entry;
  }

  handle = async (request: Request): Promise<Response> => {
    const url = new URL(request.url);
    this.log.push({
      method: request.method,
      url: url.href,
      range: request.headers.get("range"),
      authorization: request.headers.get("authorization"),
    });
    if (url.origin === new URL(this.options.cdn).origin) return this.cdn(request, url);
    if (url.origin !== new URL(this.options.hub).origin) return new Response("not this server", { status: 502 });
    return this.resolve(request, url);
  };

  private resolve(request: Request, url: URL): Response {
    const m = /^\/([^/]+\/[^/]+|[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname);
    if (!m) return new Response("Not Found", { status: 404 });
    const [, repo, revision, file] = m.map(decodeURIComponent);
    const authorization = request.headers.get("authorization");
    const dir = join(this.options.root, repo);
    if (!existsSync(dir) || !statSync(dir).isDirectory())
      return refuse(authorization ? 404 : 401, "RepoNotFound", "Repository not found");
    if (existsSync(join(dir, ".gated")) && authorization !== `Bearer ${this.options.token}`)
      return refuse(
        401,
        "GatedRepo",
        `Access to model ${repo} is restricted. You must have access to it and be authenticated to access it. Please log in.`,
      );
    const commit = this.commitOf(repo);
    if (revision !== "main" && revision !== commit) return refuse(404, "RevisionNotFound", "Invalid rev id");
    if (!this.files(repo).includes(file))
      return refuse(404, "EntryNotFound", `${file} does not exist on "${revision}"`, { "x-repo-commit": commit });
    const entry = this.entry(repo, file);
    const headers = { "x-repo-commit": commit, "accept-ranges": "bytes" };
    if (entry.size >= this.options.largeFileBytes) {
      // As the hub: 302 to signed storage, the file's identity in X-Linked-*.
      const location = `${this.options.cdn}/blobs/${entry.sha256}?repo=${encodeURIComponent(repo)}&file=${encodeURIComponent(file)}&signature=local`;
      return new Response(null, {
        status: 302,
        headers: {
          ...headers,
          location,
          etag: `"${entry.sha1}"`,
          "x-linked-etag": `"${entry.sha256}"`,
          "x-linked-size": String(entry.size),
        },
      });
    }
    return this.body(request, entry, file, { ...headers, etag: `"${entry.sha1}"` });
  }

  private cdn(request: Request, url: URL): Response {
    const repo = url.searchParams.get("repo") ?? "";
    const file = url.searchParams.get("file") ?? "";
    const sha = url.pathname.replace(/^\/blobs\//, "");
    if (!existsSync(join(this.options.root, repo, file)) || this.entry(repo, file).sha256 !== sha)
      return new Response("<Error><Code>NoSuchKey</Code></Error>", { status: 404 });
    return this.body(request, this.entry(repo, file), file, { etag: `"${sha}"`, "accept-ranges": "bytes" });
  }

  private body(request: Request, entry: Entry, file: string, headers: Record<string, string>): Response {
    let start = 0;
    let end = entry.size; // exclusive
    let status = 200;
    const range = request.headers.get("range");
    if (range) {
      const r = /^bytes=(\d+)-(\d*)$/.exec(range);
      if (!r || Number(r[1]) >= entry.size || (r[2] && Number(r[2]) < Number(r[1])))
        return new Response(null, { status: 416, headers: { "content-range": `bytes */${entry.size}` } });
      start = Number(r[1]);
      end = r[2] ? Math.min(entry.size, Number(r[2]) + 1) : entry.size;
      status = 206;
      headers = { ...headers, "content-range": `bytes ${start}-${end - 1}/${entry.size}` };
    }
    headers = { ...headers, "content-length": String(end - start), "content-type": "application/octet-stream" };
    if (request.method === "HEAD") return new Response(null, { status, headers });
    const data = readFileSync(entry.path).subarray(start, end);
    const cut = this.cut;
    if (cut && cut.file === file && cut.times > 0 && start <= cut.at && cut.at < end) {
      cut.times--;
      const sent = data.subarray(0, cut.at - start);
      const end = this.options.cutBy === "end" && !cut.stall;
      const stall = cut.stall === true;
      const stream = new ReadableStream<Uint8Array>({
        start(controller) {
          if (sent.length) controller.enqueue(new Uint8Array(sent));
          if (end) controller.close();
        },
        pull(controller) {
          if (stall) return new Promise<void>(() => {}); // never another byte, never closed
          controller.error(new Error("connection cut by the test hub"));
        },
      });
      if (end) delete headers["content-length"];
      return new Response(stream, { status, headers });
    }
    return new Response(new Uint8Array(data), { status, headers });
  }
}

function refuse(status: number, code: string, message: string, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify({ error: message }), {
    status,
    headers: { ...headers, "x-error-code": code, "x-error-message": message, "content-type": "application/json" },
  });
}

// Two loopback HTTP servers in front of a LocalHub: the hub, and the CDN its redirects point at.
export async function startHubServer(
  options: Omit<HubOptions, "hub" | "cdn">,
): Promise<{ hub: LocalHub; endpoint: string; close(): Promise<void> }> {
  let hub!: LocalHub;
  const serve = (server: Server) =>
    server.on("request", async (req, res) => {
      const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const headers = new Headers();
      for (const [k, v] of Object.entries(req.headers)) if (typeof v === "string") headers.set(k, v);
      const response = await hub.handle(new Request(origin + req.url, { method: req.method, headers }));
      res.writeHead(response.status, Object.fromEntries(response.headers));
      res.flushHeaders(); // a cut at a body's first byte still answers with its status
      if (!response.body) return void res.end();
      try {
        // each chunk flushed before the next read, so a cut sends the bytes before it
        for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>)
          await new Promise((resolve) => res.write(chunk, resolve));
        res.end();
      } catch {
        // the cut: the connection closes before Content-Length bytes, once the client has had the bytes sent
        setTimeout(() => res.destroy(), 50);
      }
    });
  const listen = (server: Server) =>
    new Promise<string>((resolve) =>
      server.listen(0, "127.0.0.1", () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)),
    );
  const servers = [serve(createServer()), serve(createServer())];
  const [endpoint, cdn] = await Promise.all(servers.map(listen));
  hub = new LocalHub({ ...options, hub: endpoint, cdn });
  return {
    hub,
    endpoint,
    async close() {
      for (const s of servers) s.closeAllConnections();
      await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
    },
  };
}
