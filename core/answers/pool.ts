// Image embeddings from the final LayerNorm output (last_hidden_state).

export type Pool = "cls" | "mean";

// `output` is [tokens][dim]; the last `patches` tokens are the patch tokens (they follow the class token
// and, in distilled DeiT, the distillation token). "cls" is the class token; "mean" the patch tokens' mean.
export function poolEmbedding(output: Float32Array, dim: number, patches: number, pool: Pool): Float32Array {
  if (pool === "cls") return output.slice(0, dim);
  const first = output.length / dim - patches;
  const sum = new Float64Array(dim);
  for (let t = first; t < first + patches; t++) {
    for (let d = 0; d < dim; d++) sum[d] += output[t * dim + d];
  }
  return Float32Array.from(sum, (s) => s / patches);
}
