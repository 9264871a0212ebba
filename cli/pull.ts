// `edgevit pull <repo-id> [--revision R] [--name N] [--remote] [-o FILE]`: downloads what a conversion
// needs from the hub (HF_ENDPOINT, HF_TOKEN) into huggingface_hub's cache (HF_HOME), converts the snapshot
// with the converter `edgevit convert` uses, and uploads the bundle as `edgevit upload` does.

import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, type BundleHeader } from "../core/bundle/format.ts";
import { HubClient, checkRepo, checkRevision } from "../core/hub/client.ts";
import { allFiles, checkpointFiles } from "../core/hub/files.ts";
import { keyOf, modelName } from "../core/names.ts";
import { convertToFile } from "../models/convert-folder.ts";
import { runCommand, type CommandSpec } from "./args.ts";
import { cacheFile, hubCacheDir, progressTo, snapshotDir, writeRef, type Progress } from "./hub-cache.ts";
import { bucketName, checkBundle, putObject } from "./upload.ts";

export const spec: CommandSpec = {
  name: "pull",
  synopsis: "<repo-id> [--revision R] [--name NAME] [--remote] [-o FILE]",
  summary:
    "Downloads a checkpoint from the Hugging Face hub (HF_ENDPOINT, default https://huggingface.co; HF_TOKEN for " +
    "gated repositories) into huggingface_hub's cache (HF_HOME), converts it as `edgevit convert` does and puts " +
    "the bundle into the Worker's MODELS bucket: wrangler's local state unless --remote.",
  options: {
    revision: { type: "string", value: "R", help: "a branch, tag or commit (default: main)" },
    name: { type: "string", value: "NAME", help: "the model's name (default: the repository's name)" },
    remote: { type: "boolean", help: "the real bucket in your Cloudflare account" },
    out: { type: "string", short: "o", value: "FILE", help: "also keep the bundle in FILE" },
    "persist-to": {
      type: "string",
      value: "DIR",
      help: "wrangler's local state folder (as wrangler dev --persist-to)",
    },
  },
  positionals: { min: 1, max: 1 },
};

export interface PullOptions {
  repo: string;
  revision?: string;
  name?: string;
  out?: string; // keep the bundle here
  upload?: { remote: boolean; persistTo?: string } | null; // null: convert only
  env?: NodeJS.ProcessEnv;
  log?: (line: string) => void;
  progress?: Progress;
  convertedAt?: string; // fixed in tests
}

export interface Pulled {
  commit: string;
  snapshot: string;
  downloaded: string[]; // files whose bytes came over the network
  header: BundleHeader;
  bundle: string | null; // the bundle file, when kept (`out`)
}

// An environment variable of seconds; unset or empty is the default.
const seconds = (value: string | undefined) => (value ? Number(value) : undefined);

export async function pull(options: PullOptions): Promise<Pulled> {
  const env = options.env ?? process.env;
  const log = options.log ?? ((line: string) => console.error(line));
  const repo = checkRepo(options.repo);
  const revision = checkRevision(options.revision ?? "main");
  const name = modelName(options.name ?? repo.split("/").pop() ?? repo);
  const hub = new HubClient({
    endpoint: env.HF_ENDPOINT,
    token: env.HF_TOKEN,
    stallSeconds: seconds(env.HF_HUB_DOWNLOAD_TIMEOUT),
  });
  const cache = hubCacheDir(env);
  const progress = options.progress ?? progressTo(process.stderr);
  const downloaded: string[] = [];
  const fetchFile = async (file: Parameters<typeof cacheFile>[2]) => {
    const cached = await cacheFile(hub, cache, file, progress);
    if (cached.downloaded) downloaded.push(file.file);
    return cached.path;
  };

  const files = await checkpointFiles(hub, repo, revision, async (file) => readFile(await fetchFile(file)));
  await writeRef(cache, repo, revision, files.commit);
  log(
    `${repo}@${files.commit} from ${hub.endpoint}: ${allFiles(files)
      .map((f) => f.file)
      .join(", ")}`,
  );
  for (const file of allFiles(files)) await fetchFile(file);
  const snapshot = snapshotDir(cache, repo, files.commit);

  const work = options.out ? null : await mkdtemp(join(tmpdir(), "edgevit-pull-"));
  const bundle = options.out ?? join(work as string, keyOf(name));
  try {
    const header = await convertToFile(snapshot, bundle, { name, log, convertedAt: options.convertedAt });
    if (options.upload) {
      checkBundle(bundle);
      const bucket = bucketName();
      putObject(bucket, bundle, name, options.upload);
      log(`uploaded as ${keyOf(name)} (${options.upload.remote ? "remote" : "local"} bucket ${bucket})`);
    }
    return { commit: files.commit, snapshot, downloaded, header, bundle: options.out ?? null };
  } finally {
    if (work) await rm(work, { recursive: true, force: true });
  }
}

export function main(args: string[]): Promise<number> {
  return runCommand(spec, args, async ({ values, positionals: [repo] }) => {
    const started = performance.now();
    const { header } = await pull({
      repo,
      revision: values.revision as string | undefined,
      name: values.name as string | undefined,
      out: values.out as string | undefined,
      upload: { remote: values.remote === true, persistTo: values["persist-to"] as string | undefined },
    });
    console.log(
      `${header.name}: ${describe(header.config)} from ${header.source.checkpoint}, in ${((performance.now() - started) / 1000).toFixed(1)} s`,
    );
    return 0;
  });
}
