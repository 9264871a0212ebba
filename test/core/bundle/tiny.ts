// The small ViT config the bundle format's tests lay out and round-trip: two layers, a 2x2 patch grid.
import type { ModelConfig } from "../../../core/bundle/format.ts";

export const TINY_CONFIG: ModelConfig = {
  imageSize: 8,
  patchSize: 4,
  channels: 3,
  dim: 8,
  heads: 2,
  hidden: 20,
  layers: 2,
  classes: 3,
  eps: 1e-6,
  distilled: false,
};
