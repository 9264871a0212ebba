// The edgevit command line: routes a subcommand to its module. Each subcommand parses its own arguments
// with cli/args.ts (so each has --help) and reports errors in the one shape.
import { readFileSync } from "node:fs";

const USAGE = `usage: edgevit <command> [options]   (edgevit <command> --help for its options)
  convert <checkpoint-dir> -o <model.evit> [--name NAME]    Hugging Face / timm checkpoint -> bundle
  classify [-m model.evit] [-k N] [--logits] <image>...    one JSON line per image
  eval [-m model.evit] [--data DIR] [--limit N] [--quality Q]  Fashion-MNIST test set accuracy and speed
  upload <model.evit> [--name NAME] [--remote]             put a bundle into the Worker's R2 bucket
  pull <repo-id> [--revision R] [--name NAME] [--remote]   hub checkpoint -> cache -> bundle -> R2 bucket
  see <image> [-m model.evit] [-o DIR] [-k N] [--size S] [--heads]  per-layer PCA, attention maps, predictions

  --version                                               the edgevit version, and the engine this runtime takes`;

type Command = { main(args: string[]): Promise<number> };

const commands: Record<string, () => Promise<Command>> = {
  convert: () => import("./convert.ts"),
  classify: () => import("./classify.ts"),
  eval: () => import("./eval.ts"),
  upload: () => import("./upload.ts"),
  pull: () => import("./pull.ts"),
  see: () => import("./see.ts"),
};

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string };
  return pkg.version;
}

// The int8 dot path this runtime's engine takes and its probe (as GET /v1/models reports them in the Worker).
async function engineLine(): Promise<string> {
  const { nodeEngine } = await import("./node-engine.ts");
  try {
    const engine = await nodeEngine();
    return `engine: dot path ${engine.dot.path} (probe ${engine.dot.probe}), Node ${process.version}`;
  } catch (e) {
    return `engine: ${(e as Error).message}`;
  }
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  if (!name) {
    console.error(USAGE);
    return 2;
  }
  if (name === "-h" || name === "--help" || name === "help") {
    console.log(USAGE);
    return 0;
  }
  if (name === "-V" || name === "--version") {
    console.log(`edgevit ${version()}`);
    console.log(await engineLine());
    return 0;
  }
  const load = commands[name];
  if (!load) {
    console.error(`edgevit: unknown command ${JSON.stringify(name)}\n${USAGE}`);
    return 2;
  }
  try {
    return await (await load()).main(args);
  } catch (e) {
    console.error(`edgevit ${name}: ${(e as Error).message}`);
    return 1;
  }
}
