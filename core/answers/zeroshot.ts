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

// Cosine of two unit vectors.
function dot(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

// One score per label, in the labels' order: probabilities over the labels (CLIP) or each on its own (SigLIP).
export function zeroShotScores(
  kind: SectionKind,
  config: Pick<TextConfig, "logitScale" | "logitBias">,
  image: Float32Array,
  labels: readonly Float32Array[],
): number[] {
  const unit = normalized(image);
  const scale = Math.exp(config.logitScale);
  const logits = labels.map((t) => scale * dot(unit, normalized(t)) + (kind === "siglip-text" ? config.logitBias : 0));
  if (kind === "siglip-text") return logits.map((x) => 1 / (1 + Math.exp(-x)));
  const max = Math.max(...logits);
  const exps = logits.map((x) => Math.exp(x - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => e / sum);
}

// `{}` in a template is where the label goes (Python's str.format with one argument): exactly once, and
// no other brace.
export function fillTemplate(template: string, label: string): string {
  return template.replace("{}", () => label);
}
