// What the end-to-end benchmark compares across systems for one image: a classifier's logits, a VLM
// connector's image tokens (flattened, /v1/image_tokens for one tile), or an image tower's default embedding,
// the one /v1/embed answers (CLIP image_embeds, SigLIP's pooler, DINOv2's class token after its layernorm).
import { imageTokens, type ModelConfig, towerOf } from "../core/bundle/format.ts";
import { poolEmbedding, poolsOf } from "../core/answers/pool.ts";
import type { RunResult } from "../core/engine/model.ts";

export function outputName(c: ModelConfig): string {
  if (imageTokens(c) > 0) return "image_tokens";
  return c.classes > 0 ? "logits" : poolsOf(c)[0];
}

export function outputOf(result: RunResult, c: ModelConfig): Float32Array {
  if (imageTokens(c) > 0) return result.imageTokens!;
  return c.classes > 0 ? result.logits : poolEmbedding(result, c, poolsOf(c)[0]);
}

export function outputLength(c: ModelConfig): number {
  if (imageTokens(c) > 0) return imageTokens(c) * towerOf(c).lmDim;
  if (c.classes > 0) return c.classes;
  const pool = poolsOf(c)[0];
  return pool === "image_embeds" ? towerOf(c).projection : pool === "cls_mean" ? 2 * c.dim : c.dim;
}
