// `edgevit convert <checkpoint-dir> -o <model.evit> [--name NAME]`
import { convertToFile } from "../models/convert.ts";

const USAGE = "usage: edgevit convert <checkpoint-dir> -o <model.evit> [--name NAME]";

export async function main(args: string[]): Promise<number> {
  let dir: string | undefined;
  let out: string | undefined;
  let name: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "-o" || a === "--out") out = args[++i];
    else if (a === "--name") name = args[++i];
    else if (!a.startsWith("-") && dir === undefined) dir = a;
    else {
      console.error(`edgevit convert: unexpected argument ${a}\n${USAGE}`);
      return 2;
    }
  }
  if (!dir || !out) {
    console.error(USAGE);
    return 2;
  }
  const started = performance.now();
  await convertToFile(dir, out, { name, log: (line) => console.error(line) });
  console.error(`converted in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  return 0;
}
