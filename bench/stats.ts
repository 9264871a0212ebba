// Numbers the end-to-end benchmark reports: latency summaries, logit agreement, the work of one forward pass.

export interface Summary {
  median: number;
  min: number;
  max: number;
  count: number;
}

export function summarize(values: number[]): Summary {
  if (values.length === 0) throw new Error("summarize: no values");
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  return { median, min: sorted[0], max: sorted[sorted.length - 1], count: sorted.length };
}

export function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`cosine: lengths ${a.length} and ${b.length} differ`);
  let dot = 0,
    aa = 0,
    bb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    aa += a[i] * a[i];
    bb += b[i] * b[i];
  }
  return dot / Math.sqrt(aa * bb);
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`maxAbsDiff: lengths ${a.length} and ${b.length} differ`);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

// The sizes of a config.json that fix its work; the tower fields as the bundle's ModelConfig names them
// (core/bundle/format.ts), each absent for a ViT.
export interface VitShape {
  channels: number;
  imageSize: number;
  patch: number;
  dim: number;
  hidden: number;
  layers: number;
  classes: number;
  distilled: boolean;
  classToken?: boolean; // true; SigLIP has none
  registerTokens?: number; // DINOv2 with registers
  pooling?: "cls" | "map" | "none"; // SigLIP "map": the multihead attention pooling head; "none": a VLM tower
  projection?: number; // CLIP's visual_projection width
}

// Multiply-accumulates of one forward pass: the patch projection, per layer the four attention
// projections, Q K^T and P V over all heads, the two MLP matmuls, then the head(s): the classifier(s),
// CLIP's projection, or SigLIP's pooling head (its probe's query, K and V of every token, the probe's
// scores and context, out_proj and its MLP). ViT-B/16 at 224: ~17.6 G.
export function forwardMacs(s: VitShape): number {
  const patches = (s.imageSize / s.patch) ** 2;
  const tokens = patches + (s.classToken === false ? 0 : 1) + (s.distilled ? 1 : 0) + (s.registerTokens ?? 0);
  const projection = patches * s.channels * s.patch * s.patch * s.dim;
  const attention = tokens * 4 * s.dim * s.dim + 2 * tokens * tokens * s.dim;
  const mlp = tokens * 2 * s.dim * s.hidden;
  const classifiers = (s.distilled ? 2 : 1) * s.dim * s.classes;
  const pooling =
    s.pooling === "map"
      ? s.dim * s.dim + 2 * tokens * s.dim * s.dim + 2 * tokens * s.dim + s.dim * s.dim + 2 * s.dim * s.hidden
      : 0;
  return projection + s.layers * (attention + mlp) + classifiers + (s.projection ?? 0) * s.dim + pooling;
}
