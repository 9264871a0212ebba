// `edgevit pull` against a local hub (test/tools/hub-server.ts: two loopback servers, the hub and the CDN its
// large files redirect to): the bundle is the converter's on the same files, the cache is huggingface_hub's,
// a cut download continues where it stopped, a second pull downloads nothing, and refusals say why.

import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { createHash } from "node:crypto";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { convertDirectory } from "../../models/convert-folder.ts";
import { encodeSafetensors, SafetensorsFile, type WriteTensor } from "../../models/safetensors.ts";
import { pull, type PullOptions } from "../../cli/pull.ts";
import type { Progress } from "../../cli/hub-cache.ts";
import { startHubServer, type LocalHub } from "../tools/hub-server.ts";

const repoRoot = new URL("../..", import.meta.url).pathname;
const checkpoint = join(repoRoot, "models/default/checkpoint");
const root = mkdtempSync(join(tmpdir(), "edgevit-pull-"));
const repos = join(root, "repos");
const TOKEN = "hf_test_token";
const AT = "2026-12-01T00:00:00Z";
let server: Awaited<ReturnType<typeof startHubServer>>;
let hub: LocalHub;
let homes = 0;

const quiet: Progress = { start() {}, advance() {}, done() {} };

function repo(name: string, files: Record<string, Uint8Array | string>, gated = false): void {
  const dir = join(repos, name);
  mkdirSync(dir, { recursive: true });
  for (const [file, data] of Object.entries(files)) writeFileSync(join(dir, file), data);
  if (gated) writeFileSync(join(dir, ".gated"), "");
}

const defaultFiles = () =>
  Object.fromEntries(
    ["config.json", "preprocessor_config.json", "model.safetensors"].map((f) => [f, readFileSync(join(checkpoint, f))]),
  );

// The default checkpoint's tensors split over two shards, with the index transformers writes.
async function shardedFiles(): Promise<Record<string, Uint8Array | string>> {
  const st = await SafetensorsFile.open(join(checkpoint, "model.safetensors"));
  const names = [...st.tensors.keys()];
  const halves = [names.slice(0, names.length / 2), names.slice(names.length / 2)];
  const files: Record<string, Uint8Array | string> = {};
  const weightMap: Record<string, string> = {};
  for (const [i, half] of halves.entries()) {
    const shard = `model-0000${i + 1}-of-00002.safetensors`;
    const tensors: Record<string, WriteTensor> = {};
    for (const n of half) {
      const info = st.info(n);
      tensors[n] = { dtype: info.dtype, shape: info.shape, data: await st.raw(n) };
      weightMap[n] = shard;
    }
    files[shard] = encodeSafetensors(tensors);
  }
  await st.close();
  files["model.safetensors.index.json"] = JSON.stringify({ metadata: { total_size: 0 }, weight_map: weightMap });
  for (const f of ["config.json", "preprocessor_config.json"]) files[f] = readFileSync(join(checkpoint, f));
  return files;
}

// A fresh HF_HOME per test unless one is given.
function options(repoId: string, extra: Partial<PullOptions> & { home?: string; token?: string } = {}): PullOptions {
  const home = extra.home ?? join(root, `home-${++homes}`);
  return {
    repo: repoId,
    upload: null,
    out: join(root, `out-${homes}-${repoId.replace("/", "_")}.evit`),
    env: { HF_ENDPOINT: server.endpoint, HF_HOME: home, ...(extra.token ? { HF_TOKEN: extra.token } : {}) },
    log: () => {},
    progress: quiet,
    convertedAt: AT,
    ...extra,
  };
}

beforeAll(async () => {
  repo("org/tiny-vit", defaultFiles());
  repo("org/gated-vit", defaultFiles(), true);
  repo("org/sharded-vit", await shardedFiles());
  repo("org/bin-only", {
    "config.json": readFileSync(join(checkpoint, "config.json")),
    "pytorch_model.bin": new Uint8Array(4096).fill(7),
  });
  server = await startHubServer({ root: repos, token: TOKEN });
  hub = server.hub;
});

afterAll(async () => {
  await server?.close();
  rmSync(root, { recursive: true, force: true });
});

const sha256 = (path: string) => createHash("sha256").update(readFileSync(path)).digest("hex");

describe("a pull", () => {
  test("makes the bundle `edgevit convert` makes of the same files, in huggingface_hub's cache layout", async () => {
    hub.log.length = 0;
    const o = options("org/tiny-vit", { token: TOKEN });
    const pulled = await pull(o);
    const commit = hub.commitOf("org/tiny-vit");
    expect(pulled.commit).toBe(commit);
    expect(pulled.downloaded.sort()).toEqual(["config.json", "model.safetensors", "preprocessor_config.json"]);

    const reference = await convertDirectory(pulled.snapshot, { name: "tiny-vit", convertedAt: AT });
    expect(Buffer.compare(readFileSync(o.out as string), reference)).toBe(0);
    expect(pulled.header.name).toBe("tiny-vit");
    expect(pulled.header.source.checkpoint).toBe(`org/tiny-vit@${commit}`);
    // the same files outside the cache convert to the same payload
    const plain = await convertDirectory(checkpoint, { name: "tiny-vit", convertedAt: AT });
    const payloadOf = (b: Uint8Array) => b.subarray(new DataView(b.buffer, b.byteOffset).getUint32(12, true));
    expect(Buffer.compare(payloadOf(reference), payloadOf(plain))).toBe(0);

    // models--org--tiny-vit/{blobs,refs,snapshots}, blobs named by the hub's etags
    const folder = join(o.env?.HF_HOME as string, "hub", "models--org--tiny-vit");
    expect(readFileSync(join(folder, "refs", "main"), "utf8")).toBe(commit);
    const weights = join(folder, "snapshots", commit, "model.safetensors");
    const blob = sha256(join(checkpoint, "model.safetensors"));
    expect(readlinkSync(weights)).toBe(`../../blobs/${blob}`);
    expect(sha256(weights)).toBe(blob);
    const config = readFileSync(join(checkpoint, "config.json"));
    const gitSha1 = createHash("sha1").update(`blob ${config.length}\0`).update(config).digest("hex");
    expect(readlinkSync(join(folder, "snapshots", commit, "config.json"))).toBe(`../../blobs/${gitSha1}`);

    // the large file came from the second origin, without the token; the hub got the token
    const cdnGets = hub.log.filter((l) => l.method === "GET" && !l.url.startsWith(server.endpoint));
    expect(cdnGets.length).toBe(1);
    expect(cdnGets[0].url).toContain(`/blobs/${blob}`);
    expect(cdnGets.every((l) => l.authorization === null)).toBe(true);
    const hubRequests = hub.log.filter((l) => l.url.startsWith(server.endpoint));
    expect(hubRequests.every((l) => l.authorization === `Bearer ${TOKEN}`)).toBe(true);

    // a second pull into the same cache downloads nothing, and gives the same bundle
    hub.log.length = 0;
    const again = await pull({ ...o, out: join(root, "again.evit") });
    expect(again.downloaded).toEqual([]);
    expect(hub.requests("GET")).toEqual([]);
    expect(Buffer.compare(readFileSync(join(root, "again.evit")), reference)).toBe(0);
  });

  test("reuses a cache that already holds the files (from huggingface_hub or an earlier pull)", async () => {
    const home = join(root, "shared-home");
    await pull(options("org/tiny-vit", { home }));
    // the same blobs under another revision name of the same commit: only the pointers are new
    hub.log.length = 0;
    const pulled = await pull(options("org/tiny-vit", { home, revision: hub.commitOf("org/tiny-vit") }));
    expect(pulled.downloaded).toEqual([]);
    expect(hub.requests("GET")).toEqual([]);
  });

  test("a cut download fails, keeps its .incomplete blob, and the next run continues it with Range", async () => {
    const home = join(root, "cut-home");
    const size = statSync(join(checkpoint, "model.safetensors")).size;
    const at = Math.floor(size / 2);
    hub.cut = { file: "model.safetensors", at, times: Infinity };
    try {
      await expect(pull(options("org/tiny-vit", { home }))).rejects.toThrow(
        new RegExp(`model.safetensors stopped after ${at} of ${size} bytes.*run the same command again`),
      );
    } finally {
      hub.cut = null;
    }
    const blob = join(home, "hub", "models--org--tiny-vit", "blobs", sha256(join(checkpoint, "model.safetensors")));
    const kept = statSync(`${blob}.incomplete`).size;
    expect(kept).toBe(at);
    expect(existsSync(blob)).toBe(false);

    hub.log.length = 0;
    const o = options("org/tiny-vit", { home });
    const pulled = await pull(o);
    expect(pulled.downloaded).toEqual(["model.safetensors"]);
    expect(hub.requests("GET").map((l) => l.range)).toEqual([`bytes=${kept}-`]);
    expect(existsSync(`${blob}.incomplete`)).toBe(false);
    const reference = await convertDirectory(pulled.snapshot, { name: "tiny-vit", convertedAt: AT });
    expect(Buffer.compare(readFileSync(o.out as string), reference)).toBe(0);
  });

  test("a connection cut once is retried from where it stopped within the same run", async () => {
    const size = statSync(join(checkpoint, "model.safetensors")).size;
    hub.cut = { file: "model.safetensors", at: 1000, times: 1 };
    hub.log.length = 0;
    try {
      const pulled = await pull(options("org/tiny-vit"));
      expect(pulled.downloaded).toContain("model.safetensors");
    } finally {
      hub.cut = null;
    }
    const ranges = hub
      .requests("GET")
      .filter((l) => l.url.includes("/blobs/"))
      .map((l) => l.range);
    expect(ranges).toEqual([null, "bytes=1000-"]);
    expect(size).toBeGreaterThan(1000);
  });

  test("a sharded checkpoint: every shard named by model.safetensors.index.json, the same weights", async () => {
    const o = options("org/sharded-vit");
    const pulled = await pull(o);
    expect(pulled.downloaded.sort()).toEqual([
      "config.json",
      "model-00001-of-00002.safetensors",
      "model-00002-of-00002.safetensors",
      "model.safetensors.index.json",
      "preprocessor_config.json",
    ]);
    const bundle = readFileSync(o.out as string);
    const reference = await convertDirectory(pulled.snapshot, { name: "sharded-vit", convertedAt: AT });
    expect(Buffer.compare(bundle, reference)).toBe(0);
    expect(Object.keys(pulled.header.source.files)).toEqual([
      "config.json",
      "preprocessor_config.json",
      "model.safetensors.index.json",
      "model-00001-of-00002.safetensors",
      "model-00002-of-00002.safetensors",
    ]);
    // the payload is the unsharded checkpoint's
    const single = await convertDirectory(checkpoint, { name: "sharded-vit", convertedAt: AT });
    const payloadOf = (b: Uint8Array) => b.subarray(new DataView(b.buffer, b.byteOffset).getUint32(12, true));
    expect(Buffer.compare(payloadOf(bundle), payloadOf(single))).toBe(0);
  });
});

describe("refusals say why", () => {
  test("a gated repository without HF_TOKEN: set HF_TOKEN, accept the licence", async () => {
    await expect(pull(options("org/gated-vit"))).rejects.toThrow(
      /org\/gated-vit is gated or private: set HF_TOKEN to a token of an account that has accepted its licence at http:\/\/127\.0\.0\.1:\d+\/org\/gated-vit/,
    );
    await expect(pull(options("org/gated-vit", { token: "hf_wrong" }))).rejects.toThrow(/gated or private/);
    expect((await pull(options("org/gated-vit", { token: TOKEN }))).header.name).toBe("gated-vit");
  });

  test("no such repository, revision or file: 404s in a sentence", async () => {
    await expect(pull(options("org/missing"))).rejects.toThrow(
      /no repository org\/missing on http:\/\/127\.0\.0\.1:\d+ \(or it is private/,
    );
    await expect(pull(options("org/tiny-vit", { revision: "v9" }))).rejects.toThrow(
      /org\/tiny-vit has no revision "v9"/,
    );
    repo("org/no-weights", { "config.json": "{}" });
    await expect(pull(options("org/no-weights"))).rejects.toThrow(
      /has neither model.safetensors nor model.safetensors.index.json/,
    );
  });

  test("a repository with only pytorch_model.bin is refused with the reason", async () => {
    await expect(pull(options("org/bin-only"))).rejects.toThrow(
      /org\/bin-only publishes its weights only as pytorch_model.bin; edgevit reads safetensors only, because a .bin is a Python pickle/,
    );
    expect(hub.log.some((l) => l.url.endsWith("pytorch_model.bin") && l.method === "GET")).toBe(false);
  });

  test("a repository id or revision that is not one is a usage error", async () => {
    await expect(pull(options("../etc"))).rejects.toThrow(/not a hub repository id/);
    await expect(pull(options("org/tiny-vit", { revision: "../main" }))).rejects.toThrow(/not a revision/);
  });
});

test("npx edgevit pull: downloads, converts and puts the bundle into wrangler's local bucket", async () => {
  const persist = join(root, "state");
  const env = { ...process.env, HF_ENDPOINT: server.endpoint, HF_HOME: join(root, "cli-home"), HF_TOKEN: "" };
  // asynchronously: the hub runs in this process
  const run = await promisify(execFile)(
    process.execPath,
    [join(repoRoot, "bin/edgevit.mjs"), "pull", "org/tiny-vit", "--name", "pulled-vit", "--persist-to", persist],
    { cwd: repoRoot, encoding: "utf8", env },
  );
  expect(run.stderr).toMatch(/downloading model.safetensors \(1\.3 MB\)/);
  expect(run.stdout).toMatch(/^pulled-vit: .* from org\/tiny-vit@[0-9a-f]{40}/m);
  const got = join(root, "got.evit");
  const wrangler = join(repoRoot, "node_modules/wrangler/bin/wrangler.js");
  await promisify(execFile)(
    process.execPath,
    [
      wrangler,
      "r2",
      "object",
      "get",
      "edgevit-models/pulled-vit.evit",
      "--file",
      got,
      "--local",
      "--persist-to",
      persist,
    ],
    { cwd: repoRoot },
  );
  const bytes = readFileSync(got);
  const header = JSON.parse(bytes.subarray(16, 16 + bytes.readUInt32LE(8)).toString());
  const commit = hub.commitOf("org/tiny-vit");
  const snapshot = join(root, "cli-home", "hub", "models--org--tiny-vit", "snapshots", commit);
  const reference = await convertDirectory(snapshot, { name: "pulled-vit", convertedAt: header.source.convertedAt });
  expect(Buffer.compare(bytes, reference)).toBe(0);
});
