// Hugging Face image-processor semantics (ViTImageProcessor, DeiTImageProcessor and the shortest-edge
// processors) on a decoded RGB image: resize with PIL, center crop, rescale, normalize, written as
// pixel_values [channels][height][width] float32 straight into the engine's input view.
//
// Arithmetic matched, step by step (transformers' image_transforms):
//   resize     PIL Image.resize on uint8 (./resize.ts), result uint8
//   rescale    float32(float64(v) * rescaleFactor)               (astype(float64) * scale, then float32)
//   normalize  float32(float32(x - float32(mean)) / float32(std)) (mean and std cast to the image dtype)
// Every output value is a function of one uint8 and its channel, so a 3x256 table computes it exactly.

import type { Preprocessing } from "../bundle/format.ts";
import type { RgbImage } from "../image/source.ts";
import { resize } from "./resize.ts";

export type { Preprocessing };

export interface Size {
  height: number;
  width: number;
}

const CHANNELS = 3;

// The size after the resize step (get_resize_output_image_size for shortestEdge: the short side becomes
// shortestEdge, the long side int(shortestEdge * long / short), truncated as Python's int()).
export function resizedSize(pp: Preprocessing, image: Size): Size {
  if (!pp.doResize) return { height: image.height, width: image.width };
  const size = pp.size;
  if ("shortestEdge" in size) {
    const s = size.shortestEdge;
    const short = Math.min(image.width, image.height);
    const long = Math.max(image.width, image.height);
    const scaledLong = Math.trunc((s * long) / short);
    return image.width <= image.height ? { height: scaledLong, width: s } : { height: s, width: scaledLong };
  }
  return { height: size.height, width: size.width };
}

// The shape of pixel_values. Without a crop, a shortest-edge resize or no resize leaves the shape to the
// image, which must then be given.
export function outputSize(pp: Preprocessing, image?: Size): Size {
  if (pp.doCenterCrop && pp.cropSize) return { height: pp.cropSize.height, width: pp.cropSize.width };
  if (pp.doResize && !("shortestEdge" in pp.size)) return { height: pp.size.height, width: pp.size.width };
  if (!image) throw new RangeError("the output size depends on the image: pass its size");
  return resizedSize(pp, image);
}

// lut[c * 256 + v]: the final value of a pixel whose channel c holds v after resize and crop.
export function valueTable(pp: Preprocessing): Float32Array {
  if (pp.doNormalize && (pp.imageMean.length !== CHANNELS || pp.imageStd.length !== CHANNELS)) {
    throw new RangeError(`imageMean and imageStd need ${CHANNELS} values`);
  }
  const lut = new Float32Array(CHANNELS * 256);
  for (let c = 0; c < CHANNELS; c++) {
    const mean = Math.fround(pp.imageMean[c]);
    const std = Math.fround(pp.imageStd[c]);
    for (let v = 0; v < 256; v++) {
      // float32 + - * / computed in double and rounded once equal the float32 IEEE operations.
      let x = pp.doRescale ? Math.fround(v * pp.rescaleFactor) : v;
      if (pp.doNormalize) x = Math.fround(Math.fround(x - mean) / std);
      lut[c * 256 + v] = x;
    }
  }
  return lut;
}

// Writes pixel_values into out (length channels * height * width of outputSize). Returns that size.
export function preprocess(image: RgbImage, pp: Preprocessing, out: Float32Array): Size {
  const target = resizedSize(pp, image);
  const resized = pp.doResize ? resize(image, target.width, target.height, pp.resample) : image;
  return cropAndNormalize(resized, outputSize(pp, image), pp, out);
}

// The steps after the resize: center crop (or pad) `resized` to `size`, rescale, normalize, into `out`
// ([channels][height][width]).
export function cropAndNormalize(resized: RgbImage, size: Size, pp: Preprocessing, out: Float32Array): Size {
  const { height, width } = size;
  if (out.length !== CHANNELS * height * width) {
    throw new RangeError(`pixel_values needs ${CHANNELS}x${height}x${width} floats, the buffer holds ${out.length}`);
  }
  // HF center_crop: top = (H - cropH) // 2 (floor, negative when the image is smaller); pixels outside
  // the image are the zero padding it adds before cropping.
  const top = Math.floor((resized.height - height) / 2);
  const left = Math.floor((resized.width - width) / 2);
  const lut = valueTable(pp);
  const plane = height * width;
  const src = resized.data;
  for (let y = 0; y < height; y++) {
    const sy = y + top;
    const rowInside = sy >= 0 && sy < resized.height;
    for (let x = 0; x < width; x++) {
      const sx = x + left;
      const o = y * width + x;
      if (rowInside && sx >= 0 && sx < resized.width) {
        const s = (sy * resized.width + sx) * 3;
        out[o] = lut[src[s]];
        out[plane + o] = lut[256 + src[s + 1]];
        out[2 * plane + o] = lut[512 + src[s + 2]];
      } else {
        out[o] = lut[0];
        out[plane + o] = lut[256];
        out[2 * plane + o] = lut[512];
      }
    }
  }
  return { height, width };
}
