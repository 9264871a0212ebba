// The one reader of wrangler.toml for the CLI and the scripts: wrangler's own parser
// (`experimental_readRawConfig`), so what they read is what `wrangler dev` and `wrangler deploy` read.
// Required on first use (wrangler's CommonJS build, so the reader stays synchronous): loading it takes a
// second or more, and only upload and dev need it.

import { createRequire } from "node:module";
import { join } from "node:path";

const root = new URL("..", import.meta.url).pathname;

export interface WranglerConfig {
  vars: Record<string, unknown>;
  r2Buckets: { binding: string; bucket_name?: string }[];
}

export function readWranglerConfig(path = join(root, "wrangler.toml")): WranglerConfig {
  const { experimental_readRawConfig } = createRequire(import.meta.url)("wrangler") as typeof import("wrangler");
  const { rawConfig } = experimental_readRawConfig({ config: path });
  return {
    vars: (rawConfig.vars ?? {}) as Record<string, unknown>,
    r2Buckets: (rawConfig.r2_buckets ?? []) as WranglerConfig["r2Buckets"],
  };
}

// The bucket bound as `binding` (e.g. MODELS).
export function bucketOf(config: WranglerConfig, binding: string): string {
  const bucket = config.r2Buckets.find((b) => b.binding === binding)?.bucket_name;
  if (!bucket) throw new Error(`wrangler.toml has no R2 bucket bound as ${binding}`);
  return bucket;
}

// A string var from [vars], or undefined.
export function stringVar(config: WranglerConfig, name: string): string | undefined {
  const value = config.vars[name];
  return typeof value === "string" ? value : undefined;
}
