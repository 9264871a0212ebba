// Attention rollout (Abnar & Zuidema, "Quantifying Attention Flow in Transformers", 2020): how much each
// input token reaches a token after several layers, when the residual connection is counted as half of
// every layer's mixing. Per layer A' = 0.5 * A_mean + 0.5 * I with rows renormalised, and the layers
// compose by matrix product: R = A'_n ... A'_2 A'_1.

// Layer l's A' ([tokens][tokens]) from the head-mean probabilities `mean` ([layers][tokens][tokens]).
function residualAttention(mean: ArrayLike<number>, l: number, tokens: number): Float64Array {
  const a = new Float64Array(tokens * tokens);
  const base = l * tokens * tokens;
  for (let i = 0; i < tokens; i++) {
    let sum = 0;
    for (let j = 0; j < tokens; j++) {
      const v = 0.5 * mean[base + i * tokens + j] + (i === j ? 0.5 : 0);
      a[i * tokens + j] = v;
      sum += v;
    }
    if (sum > 0) for (let j = 0; j < tokens; j++) a[i * tokens + j] /= sum;
  }
  return a;
}

// R = A'_upTo ... A'_1 ([tokens][tokens]) for layers 1..upTo of `mean` ([layers][tokens][tokens]).
export function rollout(mean: ArrayLike<number>, tokens: number, upTo: number): Float64Array {
  let r = new Float64Array(tokens * tokens);
  for (let i = 0; i < tokens; i++) r[i * tokens + i] = 1;
  for (let l = 0; l < upTo; l++) {
    const a = residualAttention(mean, l, tokens);
    const next = new Float64Array(tokens * tokens); // A'_l R
    for (let i = 0; i < tokens; i++) {
      for (let k = 0; k < tokens; k++) {
        const v = a[i * tokens + k];
        if (v === 0) continue;
        for (let j = 0; j < tokens; j++) next[i * tokens + j] += v * r[k * tokens + j];
      }
    }
    r = next;
  }
  return r;
}

// Row `token` of rollout(mean, tokens, upTo) ([tokens]) without forming a matrix: the row vector is
// multiplied through A'_upTo, ..., A'_1, reading A' from `mean` as it goes (tokens^2 work and no
// allocation per layer, instead of tokens^3).
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
