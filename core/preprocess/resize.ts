// Image resize, a port of Pillow's ImagingResample (src/libImaging/Resample.c) for 8-bit RGB, so that
// the pixels match PIL's Image.resize((width, height), resample) bit for bit: separable convolution,
// horizontal pass first into a uint8 image covering only the rows the vertical pass reads, then the
// vertical pass; coefficients normalized to sum 1 and rounded to 22-bit fixed point; integer
// accumulation starting at one half, then clip to 0..255. Nearest follows Pillow's affine scaling.

import type { RgbImage } from "../image/source.ts";

// PIL's resample ids, as preprocessor_config.json stores them.
export const NEAREST = 0;
export const LANCZOS = 1;
export const BILINEAR = 2;
export const BICUBIC = 3;
export const BOX = 4;
export const HAMMING = 5;

// 8 bits of result and 2 bits of headroom (filters with negative lobes overshoot) in an int32.
export const PRECISION_BITS = 32 - 8 - 2;
export const HALF = 1 << (PRECISION_BITS - 1);
const SCALE = 1 << PRECISION_BITS;

export interface Filter {
  fn: (x: number) => number;
  support: number;
}

function sinc(x: number): number {
  if (x === 0) return 1;
  x *= Math.PI;
  return Math.sin(x) / x;
}

// Pillow writes the Hamming constants as C floats (0.54f, 0.46f); their float32 values matter here.
const HAMMING_A = Math.fround(0.54);
const HAMMING_B = Math.fround(0.46);

const FILTERS: Record<number, Filter> = {
  [BOX]: { support: 0.5, fn: (x) => (x > -0.5 && x <= 0.5 ? 1 : 0) },
  [BILINEAR]: {
    support: 1,
    fn: (x) => {
      if (x < 0) x = -x;
      return x < 1 ? 1 - x : 0;
    },
  },
  [HAMMING]: {
    support: 1,
    fn: (x) => {
      if (x < 0) x = -x;
      if (x === 0) return 1;
      if (x >= 1) return 0;
      x *= Math.PI;
      return (Math.sin(x) / x) * (HAMMING_A + HAMMING_B * Math.cos(x));
    },
  },
  [BICUBIC]: {
    support: 2,
    fn: (x) => {
      const a = -0.5;
      if (x < 0) x = -x;
      if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
      if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
      return 0;
    },
  },
  [LANCZOS]: { support: 3, fn: (x) => (x >= -3 && x < 3 ? sinc(x) * sinc(x / 3) : 0) },
};

// Per output pixel: the first input pixel it reads, how many, and ksize fixed-point weights.
export interface Coefficients {
  ksize: number;
  bounds: Int32Array; // [outSize][2]: xmin, count
  weights: Int32Array; // [outSize][ksize]
}

// precompute_coeffs + normalize_coeffs_8bpc. Downscaling widens the filter by the scale (antialias).
export function coefficients(inSize: number, outSize: number, filter: Filter): Coefficients {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = filter.support * filterScale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const weights = new Int32Array(outSize * ksize);
  const k = new Float64Array(ksize);
  const ss = 1 / filterScale;
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    // C casts to int, truncating toward zero.
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const count = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    let ww = 0;
    for (let x = 0; x < count; x++) {
      const w = filter.fn((x + xmin - center + 0.5) * ss);
      k[x] = w;
      ww += w;
    }
    for (let x = 0; x < count; x++) {
      const w = ww !== 0 ? k[x] / ww : k[x];
      weights[xx * ksize + x] = Math.trunc(w < 0 ? -0.5 + w * SCALE : 0.5 + w * SCALE);
    }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = count;
  }
  return { ksize, bounds, weights };
}

// Pillow's clip8: the accumulator shifted down (arithmetic shift), clamped to 0..255.
export function clip8(ss: number): number {
  const v = ss >> PRECISION_BITS;
  return v < 0 ? 0 : Math.min(v, 255);
}

// One row: src[from..] (RGB pixels of the input row) -> out[at..] (outWidth RGB pixels).
export function horizontalRow(
  src: Uint8Array,
  from: number,
  out: Uint8Array,
  at: number,
  outWidth: number,
  c: Coefficients,
): void {
  const { ksize, bounds, weights } = c;
  let o = at;
  for (let xx = 0; xx < outWidth; xx++) {
    const count = bounds[xx * 2 + 1];
    const kBase = xx * ksize;
    let p = from + bounds[xx * 2] * 3;
    let ss0 = HALF,
      ss1 = HALF,
      ss2 = HALF;
    for (let x = 0; x < count; x++, p += 3) {
      const k = weights[kBase + x];
      ss0 += src[p] * k;
      ss1 += src[p + 1] * k;
      ss2 += src[p + 2] * k;
    }
    out[o++] = clip8(ss0);
    out[o++] = clip8(ss1);
    out[o++] = clip8(ss2);
  }
}

// src rows [rowOffset, rowOffset + outHeight) of a width-inWidth RGB image -> outWidth columns.
function horizontal(
  src: Uint8Array,
  inWidth: number,
  rowOffset: number,
  outWidth: number,
  outHeight: number,
  c: Coefficients,
): Uint8Array {
  const out = new Uint8Array(outWidth * outHeight * 3);
  for (let yy = 0; yy < outHeight; yy++) {
    horizontalRow(src, (yy + rowOffset) * inWidth * 3, out, yy * outWidth * 3, outWidth, c);
  }
  return out;
}

// bounds are relative to the first row of src.
export function vertical(src: Uint8Array, width: number, outHeight: number, c: Coefficients): Uint8Array {
  const out = new Uint8Array(width * outHeight * 3);
  const { ksize, bounds, weights } = c;
  const stride = width * 3;
  let o = 0;
  for (let yy = 0; yy < outHeight; yy++) {
    const ymin = bounds[yy * 2];
    const count = bounds[yy * 2 + 1];
    const kBase = yy * ksize;
    for (let xx = 0; xx < stride; xx += 3) {
      let p = ymin * stride + xx;
      let ss0 = HALF,
        ss1 = HALF,
        ss2 = HALF;
      for (let y = 0; y < count; y++, p += stride) {
        const k = weights[kBase + y];
        ss0 += src[p] * k;
        ss1 += src[p + 1] * k;
        ss2 += src[p + 2] * k;
      }
      out[o++] = clip8(ss0);
      out[o++] = clip8(ss1);
      out[o++] = clip8(ss2);
    }
  }
  return out;
}

// ImagingScaleAffine on the whole image.
function nearest(image: RgbImage, width: number, height: number): RgbImage {
  const { width: inW, height: inH, data } = image;
  const out = new Uint8Array(width * height * 3);
  const xin = nearestIndices(inW, width);
  const yin = nearestIndices(inH, height);
  for (let y = 0; y < height; y++) {
    const yi = yin[y];
    if (yi < 0 || yi >= inH) continue;
    for (let x = 0; x < width; x++) {
      const xi = xin[x];
      if (xi < 0 || xi >= inW) continue;
      const s = (yi * inW + xi) * 3;
      const o = (y * width + x) * 3;
      out[o] = data[s];
      out[o + 1] = data[s + 1];
      out[o + 2] = data[s + 2];
    }
  }
  return { width, height, data: out };
}

// The filter of a resample id other than NEAREST.
export function filterOf(resample: number): Filter {
  const filter = FILTERS[resample];
  if (!filter) throw new RangeError(`unsupported resampling filter ${resample}`);
  return filter;
}

// ImagingScaleAffine's source index per output index: coordinates accumulate in doubles from the first
// pixel's center; -1 or >= inSize falls outside (left at zero).
export function nearestIndices(inSize: number, outSize: number): Int32Array {
  const index = new Int32Array(outSize);
  const a = inSize / outSize;
  let o = a * 0.5;
  for (let i = 0; i < outSize; i++, o += a) index[i] = o < 0 ? -1 : Math.trunc(o);
  return index;
}

// PIL's Image.resize((width, height), resample) on an RGB image.
export function resize(image: RgbImage, width: number, height: number, resample: number): RgbImage {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new RangeError(`resize to ${width}x${height}: the size must be positive integers`);
  }
  if (width === image.width && height === image.height) {
    return { width, height, data: image.data.slice() };
  }
  if (resample === NEAREST) return nearest(image, width, height);
  const filter = filterOf(resample);

  const vert = coefficients(image.height, height, filter);
  const firstRow = vert.bounds[0];
  const lastRow = vert.bounds[height * 2 - 2] + vert.bounds[height * 2 - 1];
  let src = image.data;
  if (width !== image.width) {
    const horiz = coefficients(image.width, width, filter);
    src = horizontal(image.data, image.width, firstRow, width, lastRow - firstRow, horiz);
    for (let i = 0; i < height; i++) vert.bounds[i * 2] -= firstRow;
  }
  if (height === image.height) return { width, height, data: src };
  return { width, height, data: vertical(src, width, height, vert) };
}
