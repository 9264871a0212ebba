// `npm run dev [-- [--events] <wrangler dev args>]`: builds the wasm engine, puts the default model into the
// local R2 bucket, then runs `wrangler dev` with the extra arguments (e.g. `-- --port 8788`).

import { spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { main as upload } from "../cli/upload.ts";
import { readWranglerConfig, stringVar } from "../cli/wrangler-config.ts";

const root = new URL("..", import.meta.url).pathname;

const build = spawnSync(process.execPath, [join(root, "scripts", "build-wasm.ts")], { cwd: root, stdio: "inherit" });
if (build.status !== 0) process.exit(build.status ?? 1);

// The default model's name is configured once, in wrangler.toml's [vars].
const defaultModel = stringVar(readWranglerConfig(), "DEFAULT_MODEL");
const bundle = join(root, "models", "default", `${defaultModel}.evit`);
if (!defaultModel || !existsSync(bundle)) {
  console.warn(
    `dev: no bundle at ${bundle}; the default model will answer 404 until one is uploaded (npx edgevit upload)`,
  );
} else if ((await upload([bundle, "--name", defaultModel])) !== 0) {
  process.exit(1);
}

// The text Worker (wrangler.text.toml) runs in the same session, behind the main Worker's TEXT binding, as
// deployed. --events: one more Worker in front (scripts/local-events) stands in for R2 event notifications,
// which miniflare does not emit: `PUT /images/<key>` puts an image into the input bucket and queues its
// event, `GET /results/<key>` reads the consumer's output, the rest goes to edgevit. The state folder is
// named so that every Worker of the session shares the buckets (miniflare shares storage by bucket name).
const args = process.argv.slice(2);
const events = args.includes("--events");
const sessions = [
  ...(events ? ["-c", join("scripts", "local-events", "wrangler.toml")] : []),
  "-c",
  "wrangler.toml",
  "-c",
  "wrangler.text.toml",
  "--persist-to",
  ".wrangler/state",
];
const wrangler = spawn(
  process.execPath,
  [
    join(root, "node_modules", "wrangler", "bin", "wrangler.js"),
    "dev",
    ...sessions,
    ...args.filter((a) => a !== "--events"),
  ],
  {
    cwd: root,
    stdio: "inherit",
  },
);
for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => wrangler.kill(signal));
wrangler.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
