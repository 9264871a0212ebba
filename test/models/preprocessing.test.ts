// preprocessor_config.json as published -> the bundle's normalized preprocessing.
import { describe, expect, test } from "vitest";
import type { ModelConfig } from "../../core/bundle/format.ts";
import { normalizePreprocessing } from "../../models/convert-folder.ts";

const at224: ModelConfig = {
  imageSize: 224,
  patchSize: 16,
  channels: 3,
  dim: 768,
  heads: 12,
  hidden: 3072,
  layers: 12,
  classes: 1000,
  eps: 1e-12,
  distilled: false,
};

describe("normalizePreprocessing", () => {
  test("google/vit-base-patch16-224 (legacy feature extractor, int size)", () => {
    const pre = {
      do_normalize: true,
      do_resize: true,
      feature_extractor_type: "ViTFeatureExtractor",
      image_mean: [0.5, 0.5, 0.5],
      image_std: [0.5, 0.5, 0.5],
      resample: 2,
      size: 224,
    };
    expect(normalizePreprocessing(pre, "hf-vit", at224)).toEqual({
      doResize: true,
      size: { height: 224, width: 224 },
      resample: 2,
      doCenterCrop: false,
      cropSize: null,
      doRescale: true,
      rescaleFactor: 1 / 255,
      doNormalize: true,
      imageMean: [0.5, 0.5, 0.5],
      imageStd: [0.5, 0.5, 0.5],
    });
  });

  test("facebook/deit-base-distilled-patch16-224: int size is a square, then crop", () => {
    const pre = {
      crop_size: 224,
      do_center_crop: true,
      do_normalize: true,
      do_resize: true,
      feature_extractor_type: "DeiTFeatureExtractor",
      image_mean: [0.485, 0.456, 0.406],
      image_std: [0.229, 0.224, 0.225],
      resample: 3,
      size: 256,
    };
    expect(normalizePreprocessing(pre, "hf-deit", { ...at224, distilled: true })).toMatchObject({
      size: { height: 256, width: 256 },
      resample: 3,
      doCenterCrop: true,
      cropSize: { height: 224, width: 224 },
    });
  });

  test("defaults come from the processor type: a bare DeiT file is 256 bicubic, crop 224, ImageNet mean/std", () => {
    expect(normalizePreprocessing({ image_processor_type: "DeiTImageProcessor" }, "hf-vit", at224)).toEqual({
      doResize: true,
      size: { height: 256, width: 256 },
      resample: 3,
      doCenterCrop: true,
      cropSize: { height: 224, width: 224 },
      doRescale: true,
      rescaleFactor: 1 / 255,
      doNormalize: true,
      imageMean: [0.485, 0.456, 0.406],
      imageStd: [0.229, 0.224, 0.225],
    });
    expect(normalizePreprocessing({}, "hf-vit", at224)).toMatchObject({
      size: { height: 224, width: 224 },
      resample: 2,
      doCenterCrop: false,
      imageMean: [0.5, 0.5, 0.5],
    });
  });

  test("shortest_edge keeps the aspect ratio; height/width and rescale pass through", () => {
    const pre = {
      size: { shortest_edge: 256 },
      do_center_crop: true,
      crop_size: { height: 224, width: 224 },
      rescale_factor: 0.5,
      do_rescale: false,
    };
    expect(normalizePreprocessing(pre, "hf-vit", at224)).toMatchObject({
      size: { shortestEdge: 256 },
      cropSize: { height: 224, width: 224 },
      rescaleFactor: 0.5,
      doRescale: false,
    });
  });

  test("refuses what the engine cannot be fed", () => {
    expect(() => normalizePreprocessing({ size: { shortest_edge: 224 } }, "hf-vit", at224)).toThrow(
      /images come out at their own size, but the model takes 224x224/,
    );
    expect(() => normalizePreprocessing({ size: { longest_edge: 224 } }, "hf-vit", at224)).toThrow(
      /size \{"longest_edge":224\} is not an int/,
    );
    expect(() => normalizePreprocessing({ image_mean: [0.5] }, "hf-vit", at224)).toThrow(/need 3 values, got 1\/3/);
  });
});
