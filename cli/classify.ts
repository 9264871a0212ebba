// `edgevit classify [-m model.evit] [-k N] [--logits] <image>...`: one JSON line per image.
import { readFile } from "node:fs/promises";
import { EdgevitError } from "../core/errors.ts";
import { type DecodeMode, runImage } from "../core/pipeline.ts";
import { DECODE_MODES, DEFAULT_DECODE_MODE } from "../core/preprocess/stream.ts";
import { topPredictions } from "../core/answers/predictions.ts";
import { towerOf } from "../core/bundle/format.ts";
import type { Model } from "../core/engine/model.ts";
import { intValue, runCommand, UsageError, type CommandSpec } from "./args.ts";
import { CLI_LIMITS, DEFAULT_MODEL, loadModelFile, nodeEngine } from "./node-engine.ts";

export const spec: CommandSpec = {
  name: "classify",
  synopsis: "[-m model.evit] [-k N] [--logits] [--decode fast|exact] <image>...",
  summary:
    "Classifies JPEG, PNG, WebP, GIF and BMP files on this machine, as the Worker would: one JSON line per image.",
  options: {
    model: { type: "string", short: "m", value: "FILE", help: "the bundle (default: the committed model)" },
    top: { type: "string", short: "k", value: "N", help: "how many labels per image (default 5)" },
    logits: { type: "boolean", help: "add every class's logit" },
    decode: { type: "string", value: "MODE", help: "fast (default: DCT-domain scaling when it applies) or exact" },
  },
  positionals: { min: 1, max: Infinity },
};

export async function classifyBytes(model: Model, bytes: Uint8Array, mode?: DecodeMode): Promise<Float32Array> {
  return (await runImage(model, bytes, CLI_LIMITS, { decode: mode })).result.logits;
}

function errorOf(e: unknown): { code: string; message: string } {
  if (e instanceof EdgevitError) return { code: e.code, message: e.message };
  const err = e as NodeJS.ErrnoException;
  if (err.code === "ENOENT") return { code: "file_not_found", message: `no such file: ${err.path}` };
  if (err.code === "EISDIR") return { code: "invalid_image", message: `${err.path} is a directory` };
  throw e;
}

export function main(args: string[]): Promise<number> {
  return runCommand(spec, args, async ({ values, positionals: files }) => {
    const k = intValue("top", values.top, 5, 1);
    const mode = (values.decode as string | undefined) ?? DEFAULT_DECODE_MODE;
    if (!(DECODE_MODES as readonly string[]).includes(mode)) throw new UsageError("--decode needs fast or exact");
    const model = await loadModelFile(await nodeEngine(), (values.model as string | undefined) ?? DEFAULT_MODEL);
    if (model.header.config.classes === 0) {
      throw new Error(
        `${model.header.name} is an image tower without a classifier (${towerOf(model.header.config).family}): ` +
          "it answers embeddings (the Worker's /v1/embed), not labels",
      );
    }
    let failed = 0;
    for (const file of files) {
      let line: object;
      try {
        const logits = await classifyBytes(model, new Uint8Array(await readFile(file)), mode as DecodeMode);
        line = {
          file,
          predictions: topPredictions(logits, model.header.labels, k),
          ...(values.logits ? { logits: Array.from(logits) } : {}),
        };
      } catch (e) {
        failed++;
        line = { file, error: errorOf(e) };
      }
      process.stdout.write(`${JSON.stringify(line)}\n`);
    }
    return failed ? 1 : 0;
  });
}
