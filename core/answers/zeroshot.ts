// Zero-shot image classification from an image embedding and its labels' text embeddings, as transformers'
// ZeroShotImageClassificationPipeline scores them (pipelines/zero_shot_image_classification.py,
// postprocess): logits = exp(logit_scale) x cosine (+ logit_bias for SigLIP); CLIP's scores are their
// softmax over the labels, SigLIP's an independent sigmoid each. The image embedding is the one the text
// embeddings share a space with: CLIP's image_embeds (after visual_projection), SigLIP's pooler_output.
import type { TextConfig, SectionKind } from "../bundle/text.ts";

// The pipeline's hypothesis_template default.
export const DEFAULT_TEMPLATE = "This is a photo of {}.";

// x / |x| (a zero vector stays zero).
export function normalized(v: Float32Array): Float32Array {
  let sum = 0;
  for (const x of v) sum += x * x;
  const norm = Math.sqrt(sum);
  return norm === 0 ? v.slice() : v.map((x) => x / norm);
}

// Cosine of two unit vectors (an image's and a text's, here and in worker/search.ts).
export function dot(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

// How a model's text tower turns a cosine into a logit: its kind and the checkpoint's logit_scale (a log:
// the cosine is multiplied by its exp) and logit_bias (SigLIP's; CLIP has none).
export type Scoring = { kind: SectionKind } & Pick<TextConfig, "logitScale" | "logitBias">;

// exp(logit_scale) x cosine, + logit_bias for SigLIP.
export function logitOf(scoring: Scoring, cosine: number): number {
  return Math.exp(scoring.logitScale) * cosine + (scoring.kind === "siglip-text" ? scoring.logitBias : 0);
}

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

// One score per label, in the labels' order: probabilities over the labels (CLIP) or each on its own (SigLIP).
export function zeroShotScores(
  kind: SectionKind,
  config: Pick<TextConfig, "logitScale" | "logitBias">,
  image: Float32Array,
  labels: readonly Float32Array[],
): number[] {
  const scoring = { kind, logitScale: config.logitScale, logitBias: config.logitBias };
  const unit = normalized(image);
  const logits = labels.map((t) => logitOf(scoring, dot(unit, normalized(t))));
  if (kind === "siglip-text") return logits.map(sigmoid);
  const max = Math.max(...logits);
  const exps = logits.map((x) => Math.exp(x - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => e / sum);
}

// One image-text pair's scores from its cosine (a search hit): its logit and, for SigLIP, the sigmoid of it,
// the probability that the text matches the image as SigLIP is trained to give it. CLIP has no probability
// of one pair: its softmax is over a set of texts (zero-shot's labels).
export function pairScores(scoring: Scoring, cosine: number): { logit: number; probability?: number } {
  const logit = logitOf(scoring, cosine);
  return scoring.kind === "siglip-text" ? { logit, probability: sigmoid(logit) } : { logit };
}

// `{}` in a template is where the label goes (Python's str.format with one argument): exactly once, and
// no other brace.
export function fillTemplate(template: string, label: string): string {
  return template.replace("{}", () => label);
}
