// `edgevit convert <checkpoint-dir> -o <model.evit> [--name NAME] [--lm-embeddings]`
import { convertToFile } from "../models/convert-folder.ts";
import { runCommand, UsageError, type CommandSpec } from "./args.ts";

export const spec: CommandSpec = {
  name: "convert",
  synopsis: "<checkpoint-dir> -o <model.evit> [--name NAME] [--lm-embeddings]",
  summary:
    "Converts a Hugging Face or timm ViT / DeiT checkpoint (config.json, model.safetensors, " +
    "preprocessor_config.json) to an int8 edgevit bundle.",
  options: {
    out: { type: "string", short: "o", value: "FILE", help: "the bundle to write (required)" },
    name: { type: "string", value: "NAME", help: "the model's name (default: from the checkpoint folder)" },
    "lm-embeddings": {
      type: "boolean",
      help:
        "a vision-language model (SmolVLM, LLaVA): also carry its LLM's input embedding table (int8) and " +
        "tokenizer.json's strings, for /v1/image_tokens?nearest=k",
    },
  },
  positionals: { min: 1, max: 1 },
};

export function main(args: string[]): Promise<number> {
  return runCommand(spec, args, async ({ values, positionals }) => {
    const out = values.out as string | undefined;
    if (!out) throw new UsageError("-o <model.evit> is required");
    const started = performance.now();
    await convertToFile(positionals[0], out, {
      name: values.name as string | undefined,
      lmEmbeddings: values["lm-embeddings"] === true,
      log: (l) => console.error(l),
    });
    console.error(`converted in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    return 0;
  });
}
