// Top-k labels from logits, as both the Worker and the CLI answer them.

export interface Prediction {
  label: string;
  index: number;
  score: number; // softmax probability
}

// Softmax in float64 (scores sum to 1), highest first; ties keep the lower class index first.
export function topPredictions(logits: Float32Array, labels: string[], k: number): Prediction[] {
  let max = -Infinity;
  for (const x of logits) max = Math.max(max, x);
  const exps = Array.from(logits, (x) => Math.exp(x - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps
    .map((e, index) => ({ label: labels[index], index, score: e / sum }))
    .sort((a, b) => b.score - a.score || a.index - b.index)
    .slice(0, k);
}
