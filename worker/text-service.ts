// The TEXT binding: the text Worker's interface (rpc.ts's EdgevitText entrypoint), whether this isolate
// calls it, and its listing of the towers it holds for GET /v1/models. Apart from text.ts so that the
// listing (service.ts) and the text passes (text.ts, which runs images through service.ts) share it
// without importing each other.
import type { Scoring } from "../core/answers/zeroshot.ts";
import { loadedModels } from "./models.ts";
import type { LoadedListing, TextTowers, TokenizeAnswer } from "./types.ts";

// Texts' embeddings, the text section's version (its CRC-32) and how its cosines become logits.
export interface TextEmbeddings {
  version: string;
  embeddings: Float32Array[];
  scoring: Scoring;
}

// The text Worker's interface over the TEXT binding (rpc.ts's EdgevitText entrypoint).
export interface TextService {
  embedText(texts: string[], options: { model: string }): Promise<TextEmbeddings>;
  tokenize(texts: string[], options: { model: string }): Promise<TokenizeAnswer>;
  loadedTowers(): Promise<LoadedListing[]>;
}

// This isolate runs text passes itself, or the TEXT binding does (`here`: the text Worker's own entrypoint).
export function remote(env: Env, here = false): TextService | null {
  return !here && env.SERVES !== "text" && env.TEXT ? (env.TEXT as unknown as TextService) : null;
}

// The text towers this isolate holds (the text Worker's answer to loadedTowers).
export function loadedTowers(): LoadedListing[] {
  return loadedModels().models.filter((m) => m.tower === "text");
}

// A listing must not wait on a text Worker that hangs.
export const TEXT_LISTING_TIMEOUT_MS = 2000;

// The text Worker's loaded towers, for GET /v1/models: a failure of the binding becomes a reason, never the
// listing's failure.
export async function textTowers(env: Env): Promise<TextTowers> {
  const service = remote(env);
  if (!service) {
    const reason =
      env.SERVES === "text"
        ? "this is the text Worker: its text towers are in loaded"
        : "no TEXT binding: text towers load in this isolate and are in loaded";
    return { loaded: null, reason };
  }
  let timer: ReturnType<typeof setTimeout> | null = null;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`no answer within ${TEXT_LISTING_TIMEOUT_MS / 1000} s`)),
      TEXT_LISTING_TIMEOUT_MS,
    );
  });
  try {
    return { loaded: await Promise.race([Promise.resolve().then(() => service.loadedTowers()), late]) };
  } catch (error) {
    console.error("the text Worker did not list its towers:", error);
    const message = error instanceof Error ? error.message : String(error);
    return { loaded: null, reason: `the text Worker did not list its towers: ${message}` };
  } finally {
    clearTimeout(timer);
  }
}
