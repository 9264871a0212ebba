// The full-matrix attention rollout (Abnar & Zuidema 2020), written out as the paper defines it: the
// reference the engine's running product (assembly/model.ts, rolloutStep) is checked against. Per layer A' = 0.5 * A_mean + 0.5 * I with rows
// renormalised; R = A'_n ... A'_2 A'_1. Runtime-neutral: the workerd tests import it too.

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
