// Attention rollout (Abnar & Zuidema, "Quantifying Attention Flow in Transformers", 2020): how much each
// input token reaches a token after several layers, when the residual connection is counted as half of
// every layer's mixing. Per layer A' = 0.5 * A_mean + 0.5 * I with rows renormalised, and the layers
// compose by matrix product: R = A'_n ... A'_2 A'_1.

// Row `token` of R ([tokens]) for layers 1..upTo of `mean` ([layers][tokens][tokens]) without forming a
// matrix: the row vector is multiplied through A'_upTo, ..., A'_1, reading A' from `mean` as it goes
// (tokens^2 work and no allocation per layer, instead of tokens^3 for the full product, which the tests
// keep as the reference: test/core/rollout-reference.ts).
export function rolloutRow(mean: ArrayLike<number>, tokens: number, upTo: number, token = 0): Float64Array {
  let v = new Float64Array(tokens);
  let next = new Float64Array(tokens);
  v[token] = 1;
  for (let l = upTo - 1; l >= 0; l--) {
    const base = l * tokens * tokens;
    next.fill(0);
    for (let i = 0; i < tokens; i++) {
      if (v[i] === 0) continue;
      let sum = 0.5; // row i of 0.5 * A + 0.5 * I, before renormalising
      for (let j = 0; j < tokens; j++) sum += 0.5 * mean[base + i * tokens + j];
      const w = v[i] / sum;
      for (let j = 0; j < tokens; j++) next[j] += w * 0.5 * mean[base + i * tokens + j];
      next[i] += w * 0.5;
    }
    [v, next] = [next, v];
  }
  return v;
}
