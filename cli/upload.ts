// `edgevit upload <model.evit> [--name NAME] [--remote]`: checks the bundle (header, length, payload
// CRC-32) and puts it into the Worker's R2 bucket as `<name>.evit`, in wrangler's local state unless
// --remote.

import { spawnSync } from "node:child_process";
import { closeSync, openSync, readFileSync, readSync, statSync } from "node:fs";
import { join } from "node:path";
import { crc32 } from "node:zlib";
import { checkPayload, headerTruncated, parsePrefix, readBundle } from "../core/bundle/reader.ts";
import { fileEnd } from "../core/bundle/text.ts";
import { describe, type BundleHeader } from "../core/bundle/format.ts";
import { keyOf, modelName } from "../core/names.ts";
import { runCommand, type CommandSpec } from "./args.ts";
import { bucketOf, readWranglerConfig } from "./wrangler-config.ts";

const root = new URL("..", import.meta.url).pathname;
export const spec: CommandSpec = {
  name: "upload",
  synopsis: "<model.evit> [--name NAME] [--remote]",
  summary:
    "Checks a bundle (header, length, payload CRC-32) and puts it into the Worker's MODELS bucket as " +
    "<name>.evit: wrangler's local state (what `npm run dev` serves) unless --remote.",
  options: {
    name: { type: "string", value: "NAME", help: "the model's name (default: the bundle's own)" },
    remote: { type: "boolean", help: "the real bucket in your Cloudflare account" },
  },
  positionals: { min: 1, max: 1 },
};

// Everything the Worker's loader checks (header and its limits, length, payload CRC-32, finite floats),
// so a bad bundle is refused here rather than served as a 503. The header is read and checked first, from
// the file's first bytes: a hostile header or a file of the wrong size is refused before the payload is read.
export function checkBundle(path: string): BundleHeader {
  const size = statSync(path).size;
  const fd = openSync(path, "r");
  try {
    let head = new Uint8Array(0);
    for (;;) {
      const result = parsePrefix(head);
      if ("header" in result) {
        const { header, payloadOffset } = result;
        // a file of the wrong length: checkPayload says which way, before the CRC (the sections, a text
        // tower, follow the payload to the file's declared end)
        const end = fileEnd(header.sections ?? [], payloadOffset + header.payload.length);
        const received = size - payloadOffset - (end - payloadOffset - header.payload.length);
        if (size !== end) checkPayload(header, received, 0);
        break;
      }
      if (result.need > size) throw headerTruncated(size);
      head = new Uint8Array(result.need);
      readSync(fd, head, 0, result.need, 0);
    }
  } finally {
    closeSync(fd);
  }
  return readBundle(new Uint8Array(readFileSync(path)), crc32).header;
}

// The bucket the Worker binds as MODELS, from wrangler.toml (the one place it is configured).
export function bucketName(): string {
  return bucketOf(readWranglerConfig(), "MODELS");
}

// Puts `file` into the bucket as `<name>.evit` with wrangler: the remote bucket, or the local state that
// `wrangler dev` reads (`persistTo` picks a state folder other than the default .wrangler/state).
export function putObject(
  bucket: string,
  file: string,
  name: string,
  where: { remote: boolean; persistTo?: string; quiet?: boolean },
): void {
  const wrangler = join(root, "node_modules", "wrangler", "bin", "wrangler.js");
  const args = [
    "r2",
    "object",
    "put",
    `${bucket}/${keyOf(name)}`,
    "--file",
    file,
    where.remote ? "--remote" : "--local",
  ];
  if (where.persistTo) args.push("--persist-to", where.persistTo);
  const run = spawnSync(process.execPath, [wrangler, ...args], {
    cwd: root,
    stdio: where.quiet ? "pipe" : "inherit",
    encoding: "utf8",
  });
  if (run.status !== 0)
    throw new Error(
      `wrangler ${args.join(" ")} exited with ${run.status}${where.quiet ? `:\n${run.stdout}${run.stderr}` : ""}`,
    );
}

export function main(args: string[]): Promise<number> {
  return runCommand(spec, args, async ({ values, positionals: [file] }) => {
    const header = checkBundle(file);
    const target = modelName((values.name as string | undefined) ?? header.name);
    console.log(
      `${file}: ${header.name}, ${describe(header.config)}, payload ${header.payload.length} bytes, CRC-32 ok`,
    );
    const remote = values.remote === true;
    const bucket = bucketName();
    putObject(bucket, file, target, { remote });
    console.log(`uploaded as ${keyOf(target)} (${remote ? "remote" : "local"} bucket ${bucket})`);
    return 0;
  });
}

if (import.meta.main) process.exitCode = await main(process.argv.slice(2));
