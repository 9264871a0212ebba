// Preprocessing of well-known checkpoints, as their preprocessor_config.json gives it, for the benchmarks
// and measurements that run the upload path without a bundle (a bundle carries its own).
import type { Preprocessing } from "../core/bundle/format.ts";

// google/vit-base-patch16-224 (and every google/vit-*-224): 224x224 bilinear, no crop, mean = std = 0.5.
export const VIT_BASE_PREPROCESSING: Preprocessing = {
  doResize: true,
  size: { height: 224, width: 224 },
  resample: 2, // PIL.Image.BILINEAR
  doCenterCrop: false,
  cropSize: null,
  doRescale: true,
  rescaleFactor: 1 / 255,
  doNormalize: true,
  imageMean: [0.5, 0.5, 0.5],
  imageStd: [0.5, 0.5, 0.5],
};
