// `edgevit convert <checkpoint-dir> -o <model.evit> [--name NAME]`
import { convertToFile } from "../models/convert-folder.ts";
import { runCommand, UsageError, type CommandSpec } from "./args.ts";

export const spec: CommandSpec = {
  name: "convert",
  synopsis: "<checkpoint-dir> -o <model.evit> [--name NAME]",
  summary:
    "Converts a Hugging Face or timm ViT / DeiT checkpoint (config.json, model.safetensors, " +
    "preprocessor_config.json) to an int8 edgevit bundle.",
  options: {
    out: { type: "string", short: "o", value: "FILE", help: "the bundle to write (required)" },
    name: { type: "string", value: "NAME", help: "the model's name (default: from the checkpoint folder)" },
  },
  positionals: { min: 1, max: 1 },
};

export function main(args: string[]): Promise<number> {
  return runCommand(spec, args, async ({ values, positionals }) => {
    const out = values.out as string | undefined;
    if (!out) throw new UsageError("-o <model.evit> is required");
    const started = performance.now();
    await convertToFile(positionals[0], out, { name: values.name as string | undefined, log: (l) => console.error(l) });
    console.error(`converted in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    return 0;
  });
}
