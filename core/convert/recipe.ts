// How the converter builds each bundle tensor from checkpoint tensors (a recipe per bundle tensor), and the
// error it refuses a checkpoint with. Shared by the ViT layouts (convert.ts) and the towers (towers.ts).

export class ConvertError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConvertError";
  }
}

// f32 copies (optionally transformed: DINOv2's position embeddings are interpolated), or a Linear whose
// weight rows are the concatenation of `weights` (q, k, v for HF attention), or rows [first, end) of one
// packed weight (SigLIP's in_proj).
export type Recipe =
  | { kind: "f32"; from: string; shape: number[]; transform?: (data: Float32Array) => Float32Array }
  | {
      kind: "linear";
      weights: string[];
      biases: string[];
      optionalBias: boolean; // a missing bias is zero (CLIP's patch embedding and projection have none)
      n: number;
      k: number;
      weightShape?: number[]; // each checkpoint weight's shape, when not [n / weights.length][k]
      biasShape?: number[];
      rows?: [number, number];
    };

// A recipe book under construction: bundle tensor name -> recipe.
export class Recipes extends Map<string, Recipe> {
  f32(name: string, from: string, shape: number[], transform?: (data: Float32Array) => Float32Array): void {
    this.set(name, { kind: "f32", from, shape, ...(transform ? { transform } : {}) });
  }

  // A Linear from checkpoint modules `from` (their .weight and .bias), rows stacked in that order.
  linear(name: string, from: string[], k: number, n: number, optionalBias = false): void {
    this.set(name, {
      kind: "linear",
      weights: from.map((f) => `${f}.weight`),
      biases: from.map((f) => `${f}.bias`),
      optionalBias,
      n,
      k,
    });
  }

  // A LayerNorm's weight and bias.
  norm(name: string, from: string, dim: number): void {
    this.f32(`${name}.weight`, `${from}.weight`, [dim]);
    this.f32(`${name}.bias`, `${from}.bias`, [dim]);
  }

  // The patch projection: a conv weight [dim][channels][patch][patch]; flattened, K runs (c, py, px).
  patch(from: string, dim: number, channels: number, patchSize: number, optionalBias = false): void {
    this.set("embeddings.patch_embeddings.projection", {
      kind: "linear",
      weights: [`${from}.weight`],
      biases: [`${from}.bias`],
      optionalBias,
      n: dim,
      k: channels * patchSize * patchSize,
      weightShape: [dim, channels, patchSize, patchSize],
    });
  }
}

// The checkpoint tensors a recipe cannot do without.
export function required(recipe: Recipe): string[] {
  return recipe.kind === "f32"
    ? [recipe.from]
    : recipe.optionalBias
      ? recipe.weights
      : [...recipe.weights, ...recipe.biases];
}

// Row-major [N][K] matrices (or [N] vectors) stacked by rows: HF's query, key, value -> one qkv.
export function concatRows(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
