// Image embeddings from a forward pass: what each family's users take as one, and the alternatives.
import { patches, towerOf, type ModelConfig } from "../bundle/format.ts";
import type { RunOutput, RunResult } from "../engine/model.ts";

// cls        the class token of last_hidden_state (ViT, DeiT; DINOv2's pooler_output: after its layernorm)
// mean       the mean of the patch tokens of last_hidden_state (registers and class tokens left out)
// cls_mean   DINOv2: the class token and the mean patch token concatenated ([2 dim]), what DINOv2's
//            linear classification heads read
// image_embeds  CLIP: the pooled class token after post_layernorm, through visual_projection
// pooler     pooler_output: SigLIP's attention pooling head; CLIP's post_layernorm class token (unprojected)
export const POOLS = ["cls", "mean", "cls_mean", "image_embeds", "pooler"] as const;
export type Pool = (typeof POOLS)[number];

// The pools a model answers, its family's default first.
export function poolsOf(config: ModelConfig): readonly Pool[] {
  const t = towerOf(config);
  // a VLM's tower without a pooled output (Idefics3's): its patches' mean
  if (t.pooling === "none") return ["mean"];
  if (t.family === "clip") return t.projection > 0 ? ["image_embeds", "pooler"] : ["pooler"];
  if (t.family === "siglip") return ["pooler", "mean"];
  if (t.family === "dinov2") return ["cls", "mean", "cls_mean"];
  return ["cls", "mean"];
}

// The mean of the last `count` tokens of output ([tokens][dim]): the patches, after any prefix tokens.
function meanTokens(output: Float32Array, dim: number, count: number): Float32Array {
  const first = output.length / dim - count;
  const sum = new Float64Array(dim);
  for (let t = first; t < first + count; t++) {
    for (let d = 0; d < dim; d++) sum[d] += output[t * dim + d];
  }
  return Float32Array.from(sum, (s) => s / count);
}

// The run output `pool` reads.
export function poolOutput(pool: Pool): RunOutput {
  if (pool === "image_embeds") return "projected";
  if (pool === "pooler") return "pooler";
  return "output";
}

// The embedding `pool` (one of poolsOf(config)) of a run's outputs.
export function poolEmbedding(result: RunResult, config: ModelConfig, pool: Pool): Float32Array {
  const { dim } = config;
  switch (pool) {
    case "cls":
      return result.output.slice(0, dim);
    case "mean":
      return meanTokens(result.output, dim, patches(config));
    case "cls_mean": {
      const out = new Float32Array(2 * dim);
      out.set(result.output.subarray(0, dim));
      out.set(meanTokens(result.output, dim, patches(config)), dim);
      return out;
    }
    case "image_embeds":
      return result.projected!.slice();
    case "pooler":
      return result.pooler.slice();
  }
}
