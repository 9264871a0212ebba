// Plain float64 ViT forward pass over the weights of checkpoints.ts (HF semantics), the reference the
// loaded int8 engine is compared with.
import type { Tiny, Weights } from "./checkpoints.ts";

// Abramowitz-Stegun 7.1.26, |error| < 1.5e-7: far below the int8 tolerance.
function erf(x: number): number {
  const s = Math.sign(x),
    a = Math.abs(x),
    t = 1 / (1 + 0.3275911 * a);
  const y =
    1 -
    ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-a * a);
  return s * y;
}
const gelu = (x: number) => 0.5 * x * (1 + erf(x / Math.SQRT2));

function linear(x: number[], w: Float32Array, b: Float32Array, n: number): number[] {
  const k = x.length;
  return Array.from({ length: n }, (_, i) => {
    let acc = b[i];
    for (let j = 0; j < k; j++) acc += w[i * k + j] * x[j];
    return acc;
  });
}

function layerNorm(x: number[], g: Float32Array, b: Float32Array, eps: number): number[] {
  const mean = x.reduce((a, v) => a + v, 0) / x.length;
  const variance = x.reduce((a, v) => a + (v - mean) ** 2, 0) / x.length;
  return x.map((v, i) => ((v - mean) / Math.sqrt(variance + eps)) * g[i] + b[i]);
}

// input: [channels][imageSize][imageSize] -> logits [classes], output [tokens][dim]
export function forward(
  t: Tiny,
  w: Weights,
  input: Float32Array,
  eps: number,
): { logits: number[]; output: number[][] } {
  const W = (name: string) => w.get(name)!.data;
  const { dim, heads, patchSize: p, imageSize: size, channels } = t;
  const side = size / p,
    headDim = dim / heads;
  let x: number[][] = [Array.from(W("cls"))];
  if (t.distilled) x.push(Array.from(W("dist")));
  for (let py = 0; py < side; py++) {
    for (let px = 0; px < side; px++) {
      const v: number[] = [];
      for (let c = 0; c < channels; c++)
        for (let dy = 0; dy < p; dy++)
          for (let dx = 0; dx < p; dx++) v.push(input[(c * size + py * p + dy) * size + px * p + dx]);
      x.push(linear(v, W("patch.weight"), W("patch.bias"), dim));
    }
  }
  const pos = W("pos");
  x = x.map((row, i) => row.map((v, j) => v + pos[i * dim + j]));
  for (let l = 0; l < t.layers; l++) {
    const h = x.map((r) => layerNorm(r, W(`${l}.ln1.weight`), W(`${l}.ln1.bias`), eps));
    const [q, k, v] = ["q", "k", "v"].map((m) =>
      h.map((r) => linear(r, W(`${l}.${m}.weight`), W(`${l}.${m}.bias`), dim)),
    );
    const attn = x.map(() => new Array<number>(dim).fill(0));
    for (let hd = 0; hd < heads; hd++) {
      const o = hd * headDim;
      for (let i = 0; i < x.length; i++) {
        const scores = x.map((_, j) => {
          let s = 0;
          for (let d = 0; d < headDim; d++) s += q[i][o + d] * k[j][o + d];
          return s / Math.sqrt(headDim);
        });
        const m = Math.max(...scores);
        const e = scores.map((s) => Math.exp(s - m));
        const z = e.reduce((a, b) => a + b, 0);
        for (let j = 0; j < x.length; j++) for (let d = 0; d < headDim; d++) attn[i][o + d] += (e[j] / z) * v[j][o + d];
      }
    }
    x = x.map((r, i) => linear(attn[i], W(`${l}.o.weight`), W(`${l}.o.bias`), dim).map((v, j) => r[j] + v));
    x = x.map((r) => {
      const hidden = linear(
        layerNorm(r, W(`${l}.ln2.weight`), W(`${l}.ln2.bias`), eps),
        W(`${l}.fc1.weight`),
        W(`${l}.fc1.bias`),
        t.hidden,
      ).map(gelu);
      return linear(hidden, W(`${l}.fc2.weight`), W(`${l}.fc2.bias`), dim).map((v, j) => r[j] + v);
    });
  }
  const output = x.map((r) => layerNorm(r, W("norm.weight"), W("norm.bias"), eps));
  let logits = linear(output[0], W("head.weight"), W("head.bias"), t.classes);
  if (t.distilled) {
    const dist = linear(output[1], W("head_dist.weight"), W("head_dist.bias"), t.classes);
    logits = logits.map((v, i) => (v + dist[i]) / 2);
  }
  return { logits, output };
}
