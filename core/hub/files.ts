// Which files of a hub repository a conversion needs, found with HEAD requests (no listing API): config.json,
// preprocessor_config.json when there is one (timm checkpoints describe preprocessing in config.json),
// model.safetensors or the shards its index names, and the tokenizer files when the config has a text tower.
// Every file is taken from the one commit config.json resolved to, so a branch moving meanwhile cannot mix
// two versions.

import { EdgevitError } from "../errors.ts";
import type { HubClient, HubFile } from "./client.ts";

export const INDEX_FILE = "model.safetensors.index.json";
// What transformers' tokenizers read (CLIP: vocab.json + merges.txt; SigLIP: spiece.model), each optional.
export const TOKENIZER_FILES = [
  "tokenizer.json",
  "tokenizer_config.json",
  "special_tokens_map.json",
  "added_tokens.json",
  "vocab.json",
  "merges.txt",
  "spiece.model",
];

export interface CheckpointFiles {
  repo: string;
  commit: string;
  config: HubFile;
  preprocessor: HubFile | null;
  index: HubFile | null; // model.safetensors.index.json of a sharded checkpoint
  weights: HubFile[]; // model.safetensors, or the shards in file-name order
  tokenizer: HubFile[];
}

// Every file in the order a download goes: the small JSON files first, then the weights.
export function allFiles(c: CheckpointFiles): HubFile[] {
  return [
    c.config,
    ...(c.preprocessor ? [c.preprocessor] : []),
    ...(c.index ? [c.index] : []),
    ...c.tokenizer,
    ...c.weights,
  ];
}

// The shard names of an index file (`{"weight_map": {tensor: shard}}`), sorted.
export function shardNames(index: Uint8Array, repo: string): string[] {
  let json: { weight_map?: unknown };
  try {
    json = JSON.parse(new TextDecoder().decode(index));
  } catch {
    throw new EdgevitError("unsupported_checkpoint", `${repo}: ${INDEX_FILE} is not JSON`);
  }
  const map = json.weight_map;
  if (!map || typeof map !== "object")
    throw new EdgevitError("unsupported_checkpoint", `${repo}: ${INDEX_FILE} has no weight_map`);
  const shards = [...new Set(Object.values(map as Record<string, unknown>))];
  const bad = shards.find((s) => typeof s !== "string" || !/^[\w.-]+\.safetensors$/.test(s) || s.startsWith("."));
  if (bad !== undefined || shards.length === 0)
    throw new EdgevitError(
      "unsupported_checkpoint",
      `${repo}: ${INDEX_FILE} names a shard ${JSON.stringify(bad)} that is not a .safetensors file`,
    );
  return (shards as string[]).sort();
}

const required = async (hub: HubClient, repo: string, revision: string, file: string, why: string) => {
  const found = await hub.head(repo, revision, file);
  if (!found) throw new EdgevitError("unsupported_checkpoint", `${repo} at ${revision} has no ${file}: ${why}`);
  return found;
};

// The files to fetch. `read` gives a small file's bytes (the index, config.json): the CLI reads them from its
// cache, the Worker from the hub.
export async function checkpointFiles(
  hub: HubClient,
  repo: string,
  revision: string,
  read: (file: HubFile) => Promise<Uint8Array>,
): Promise<CheckpointFiles> {
  const config = await required(hub, repo, revision, "config.json", "not a transformers or timm checkpoint");
  const commit = config.commit;
  const preprocessor = await hub.head(repo, commit, "preprocessor_config.json");
  let index: HubFile | null = null;
  let weights: HubFile[];
  const single = await hub.head(repo, commit, "model.safetensors");
  if (single) weights = [single];
  else {
    index = await hub.head(repo, commit, INDEX_FILE);
    if (!index) {
      const bin =
        (await hub.head(repo, commit, "pytorch_model.bin")) ??
        (await hub.head(repo, commit, "pytorch_model.bin.index.json"));
      throw new EdgevitError(
        "unsupported_checkpoint",
        bin
          ? `${repo} publishes its weights only as pytorch_model.bin; edgevit reads safetensors only, because a .bin ` +
              "is a Python pickle that can run code when loaded and cannot be read a tensor at a time " +
              "(a model.safetensors made by transformers' save_pretrained, or the hub's conversion, works)"
          : `${repo} at ${revision} has neither model.safetensors nor ${INDEX_FILE}`,
      );
    }
    weights = [];
    for (const name of shardNames(await read(index), repo))
      weights.push(await required(hub, repo, commit, name, `${INDEX_FILE} names it`));
  }
  let configJson: Record<string, unknown>;
  try {
    configJson = JSON.parse(new TextDecoder().decode(await read(config)));
  } catch {
    throw new EdgevitError("unsupported_checkpoint", `${repo}: config.json is not JSON`);
  }
  const tokenizer: HubFile[] = [];
  if (configJson?.text_config) {
    for (const name of TOKENIZER_FILES) {
      const found = await hub.head(repo, commit, name);
      if (found) tokenizer.push(found);
    }
  }
  return { repo, commit, config, preprocessor, index, weights, tokenizer };
}

// What a bundle records as its source checkpoint when it comes from the hub: `org/name@commit`.
export const checkpointId = (repo: string, commit: string): string => `${repo}@${commit}`;

// The repository and commit of a folder in huggingface_hub's cache (`.../models--org--name/snapshots/<commit>`),
// or null for any other folder.
export function cachedSnapshot(path: string): { repo: string; commit: string } | null {
  const m = /(?:^|[\\/])models--([^\\/]+)[\\/]snapshots[\\/]([0-9a-f]{40})[\\/]*$/.exec(path);
  return m ? { repo: m[1].split("--").join("/"), commit: m[2] } : null;
}
