// The small ViT config the bundle format's tests lay out and round-trip: two layers, a 2x2 patch grid.
import type { ModelConfig, Preprocessing } from "../../../core/bundle/format.ts";

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

// Its preprocessing: a bilinear resize to its 8x8 input, no crop, mean = std = 0.5.
export const TINY_PREPROCESSING: Preprocessing = {
  doResize: true,
  size: { height: 8, width: 8 },
  resample: 2,
  doCenterCrop: false,
  cropSize: null,
  doRescale: true,
  rescaleFactor: 1 / 255,
  doNormalize: true,
  imageMean: [0.5, 0.5, 0.5],
  imageStd: [0.5, 0.5, 0.5],
};
