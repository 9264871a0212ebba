// The local hub for the workerd tests (vitest.config.mts): repositories written into .cache/test-hub once,
// served as miniflare's outbound service (every fetch the Worker makes goes to `hubFetch`: the hub at
// http://hub.test, its CDN at http://cdn.test), and a HUB service binding for the tests themselves: the cut
// switch, the request log, the reference bundle (`edgevit convert` of the same files, in Node) and a
// repository's files as written.

import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { convertDirectory } from "../../models/convert-folder.ts";
import { makeTower } from "../../models/tools/make-random-tower.ts";
import { LocalHub } from "./hub-server.ts";
import { textTowerFiles } from "./text_towers.ts";

const root = new URL("../../", import.meta.url).pathname;
const repos = join(root, ".cache/test-hub");
const checkpoint = join(root, "models/default/checkpoint");
export const HUB_ENDPOINT = "http://hub.test";
export const HUB_TOKEN = "hf_workerd_test";

function writeRepo(name: string, files: Record<string, string | Uint8Array>, gated = false): void {
  const dir = join(repos, name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  for (const [file, data] of Object.entries(files)) writeFileSync(join(dir, file), data);
  if (gated) writeFileSync(join(dir, ".gated"), "");
}

const defaultFiles = () =>
  Object.fromEntries(
    ["config.json", "preprocessor_config.json", "model.safetensors"].map((f) => [f, readFileSync(join(checkpoint, f))]),
  );
writeRepo("org/tiny-vit", defaultFiles());
writeRepo("org/gated-vit", defaultFiles(), true);
// sizes over the bundle's limits (64 layers at most): refused from config.json, before any tensor is read
writeRepo("org/too-deep", {
  ...defaultFiles(),
  "config.json": JSON.stringify({
    ...JSON.parse(readFileSync(join(checkpoint, "config.json"), "utf8")),
    num_hidden_layers: 100,
  }),
});
// a CLIPModel (both towers, openai's I64 position_ids buffers): the import converts its image tower
const clip = makeTower({
  preset: "clip-vit-base-patch32",
  tiny: true,
  seed: 3,
  dtype: "F32",
  inputs: 1,
  textEmbeddings: false,
});
writeRepo("org/tiny-clip", {
  "config.json": clip["config.json"],
  "preprocessor_config.json": clip["preprocessor_config.json"],
  "model.safetensors": clip["model.safetensors"],
});
// the same with its tokenizer files: the import writes its text tower as a section too
writeRepo("org/tiny-clip-text", textTowerFiles("clip-vit-base-patch32", 3, 1));
// a SiglipModel with its spiece.model (search's scores, test/worker/search.test.ts)
writeRepo("org/tiny-siglip-text", textTowerFiles("siglip-base-patch16-224", 3, 1));
// a safetensors length field claiming a header past what the Worker reads (MAX_REMOTE_HEADER_BYTES) in a file
// long enough to hold it: refused from the length alone
const claimed = 1 << 20;
const hugeHeader = new Uint8Array(8 + claimed + 64);
new DataView(hugeHeader.buffer).setBigUint64(0, BigInt(claimed), true);
writeRepo("org/huge-header", { ...defaultFiles(), "model.safetensors": hugeHeader });
writeRepo("org/bin-only", {
  "config.json": readFileSync(join(checkpoint, "config.json")),
  "pytorch_model.bin": new Uint8Array(4096),
});

// SmolVLM's layout with its LLM's input embedding table and a tokenizer.json: converted with --lm-embeddings
// for /v1/image_tokens?nearest=k (test/worker/nearest.test.ts), which also reads its files (`/file`)
writeRepo(
  "org/tiny-smolvlm-lm",
  makeTower({ preset: "smolvlm-256m-instruct", tiny: true, seed: 4, dtype: "F32", inputs: 1, textEmbeddings: true }),
);

const hub = new LocalHub({ root: repos, hub: HUB_ENDPOINT, cdn: "http://cdn.test", token: HUB_TOKEN, cutBy: "end" });

export const hubFetch = (request: Request): Promise<Response> => hub.handle(request);

// The bundle `edgevit convert` makes of a repository's files, from a folder laid out as huggingface_hub's
// cache would hold them (so it records org/name@commit, as the import does).
async function reference(repo: string, name: string, convertedAt: string, lmEmbeddings: boolean): Promise<Uint8Array> {
  const commit = hub.commitOf(repo);
  const cache = mkdtempSync(join(tmpdir(), "edgevit-hub-ref-"));
  try {
    const snapshot = join(cache, `models--${repo.replace("/", "--")}`, "snapshots", commit);
    mkdirSync(snapshot, { recursive: true });
    for (const file of readdirSync(join(repos, repo)).filter((f) => !f.startsWith(".")))
      copyFileSync(join(repos, repo, file), join(snapshot, file));
    return await convertDirectory(snapshot, { name, convertedAt, lmEmbeddings });
  } finally {
    rmSync(cache, { recursive: true, force: true });
  }
}

export async function hubControl(request: Request): Promise<Response> {
  const url = new URL(request.url);
  if (url.pathname === "/cut") {
    hub.cut = (await request.json()) as LocalHub["cut"];
    if (hub.cut && hub.cut.times < 0) hub.cut.times = Infinity;
    return new Response("ok");
  }
  if (url.pathname === "/log") return Response.json(hub.log);
  if (url.pathname === "/clear") {
    hub.log.length = 0;
    return new Response("ok");
  }
  if (url.pathname === "/reference") {
    const q = url.searchParams;
    const lm = q.get("lmEmbeddings") === "1";
    const bundle = await reference(q.get("repo") ?? "", q.get("name") ?? "", q.get("convertedAt") ?? "", lm);
    return new Response(new Uint8Array(bundle));
  }
  if (url.pathname === "/file") {
    const q = url.searchParams;
    const [repo, file] = [q.get("repo") ?? "", q.get("file") ?? ""];
    if (!/^org\/[\w-]+$/.test(repo) || !/^[\w.-]+$/.test(file)) return new Response("bad file", { status: 400 });
    return new Response(new Uint8Array(readFileSync(join(repos, repo, file))));
  }
  return new Response("no such control", { status: 404 });
}
