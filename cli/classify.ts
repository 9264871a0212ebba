// `edgevit classify [-m model.evit] [-k N] [--logits] <image>...`: one JSON line per image.
import { readFile } from "node:fs/promises";
import { EdgevitError } from "../core/errors.ts";
import { type DecodeMode, runImage } from "../core/pipeline.ts";
import { DECODE_MODES, DEFAULT_DECODE_MODE } from "../core/image/stream.ts";
import { topPredictions } from "../core/predictions.ts";
import type { Model } from "../core/engine.ts";
import { CLI_LIMITS, DEFAULT_MODEL, loadModelFile, nodeEngine } from "./node-engine.ts";

const USAGE = "usage: edgevit classify [-m model.evit] [-k N] [--logits] [--decode fast|exact] <image>...";

export async function classifyBytes(model: Model, bytes: Uint8Array, mode?: DecodeMode): Promise<Float32Array> {
  return (await runImage(model, bytes, CLI_LIMITS, -1, mode)).result.logits;
}

function errorOf(e: unknown): { code: string; message: string } {
  if (e instanceof EdgevitError) return { code: e.code, message: e.message };
  const err = e as NodeJS.ErrnoException;
  if (err.code === "ENOENT") return { code: "file_not_found", message: `no such file: ${err.path}` };
  if (err.code === "EISDIR") return { code: "invalid_image", message: `${err.path} is a directory` };
  throw e;
}

export async function main(args: string[]): Promise<number> {
  let modelPath = DEFAULT_MODEL;
  let k = 5;
  let withLogits = false;
  let mode: DecodeMode = DEFAULT_DECODE_MODE;
  const files: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "-m" || a === "--model") modelPath = args[++i];
    else if (a === "-k" || a === "--top") k = Number(args[++i]);
    else if (a === "--logits") withLogits = true;
    else if (a === "--decode") mode = args[++i] as DecodeMode;
    else if (a.startsWith("-")) return usage(`unknown option ${a}`);
    else files.push(a);
  }
  if (!modelPath) return usage("-m needs a model file");
  if (!Number.isInteger(k) || k < 1) return usage("-k needs a positive integer");
  if (files.length === 0) return usage("no images given");
  if (!DECODE_MODES.includes(mode)) return usage("--decode needs fast or exact");

  const model = await loadModelFile(await nodeEngine(), modelPath);
  let failed = 0;
  for (const file of files) {
    let line: object;
    try {
      const logits = await classifyBytes(model, new Uint8Array(await readFile(file)), mode);
      line = {
        file,
        predictions: topPredictions(logits, model.header.labels, k),
        ...(withLogits ? { logits: Array.from(logits) } : {}),
      };
    } catch (e) {
      failed++;
      line = { file, error: errorOf(e) };
    }
    process.stdout.write(`${JSON.stringify(line)}\n`);
  }
  return failed ? 1 : 0;
}

function usage(problem: string): number {
  console.error(`edgevit classify: ${problem}\n${USAGE}`);
  return 2;
}
