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

// What coefficients() allocates: the tables and its scratch row of ksize doubles.
export function coefficientBytes(c: Coefficients | null): number {
  return c ? c.bounds.byteLength + c.weights.byteLength + 8 * c.ksize : 0;
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

// One output row of the vertical pass: `at[y]` is where input row ymin + y starts in src (a whole image's row,
// or a ring slot), y < count, summed in PIL's order.
export function verticalRow(
  src: Uint8Array,
  at: Int32Array,
  count: number,
  weights: Int32Array,
  kBase: number,
  stride: number,
  out: Uint8Array,
  o: number,
): void {
  for (let xx = 0; xx < stride; xx += 3) {
    let ss0 = HALF,
      ss1 = HALF,
      ss2 = HALF;
    for (let y = 0; y < count; y++) {
      const k = weights[kBase + y];
      const p = at[y] + xx;
      ss0 += src[p] * k;
      ss1 += src[p + 1] * k;
      ss2 += src[p + 2] * k;
    }
    out[o++] = clip8(ss0);
    out[o++] = clip8(ss1);
    out[o++] = clip8(ss2);
  }
}

// The most input rows one output row of a pass reads: the rows a ring of the vertical pass keeps.
export function maxCount(c: Coefficients): number {
  let most = 0;
  for (let i = 1; i < c.bounds.length; i += 2) most = Math.max(most, c.bounds[i]);
  return most;
}

// What a RowResize computes from and holds, made once: what the caller's ledger reserves (`bytes`) is
// known before any of it is allocated beyond the coefficients.
export interface RowResizePlan {
  inWidth: number;
  inHeight: number;
  width: number; // output
  height: number;
  horiz: Coefficients | null; // null when a side keeps its size, as PIL skips that pass
  vert: Coefficients | null;
  xin: Int32Array | null; // NEAREST: the input column and row each output column and row samples
  yin: Int32Array | null;
  firstRow: number; // the input rows the vertical pass reads: [firstRow, lastRow)
  lastRow: number;
  ringRows: number; // the most input rows one output row reads
  burst: number; // the most output rows one push emits
  bytes: number; // the ring, the output row, the coefficients or NEAREST's indices
}

export function rowResizePlan(
  inWidth: number,
  inHeight: number,
  width: number,
  height: number,
  resample: number,
): RowResizePlan {
  const base = { inWidth, inHeight, width, height, xin: null, yin: null, firstRow: 0, lastRow: inHeight };
  const same = width === inWidth && height === inHeight;
  if (resample === NEAREST && !same) {
    const xin = nearestIndices(inWidth, width);
    const yin = nearestIndices(inHeight, height);
    let burst = 1;
    for (let y = 1, run = 1; y < height; y++) {
      run = yin[y] === yin[y - 1] ? run + 1 : 1;
      burst = Math.max(burst, run);
    }
    const bytes = width * 3 + xin.byteLength + yin.byteLength;
    return { ...base, horiz: null, vert: null, xin, yin, ringRows: 0, burst, bytes };
  }
  const filter = same ? null : filterOf(resample);
  const horiz = filter && width !== inWidth ? coefficients(inWidth, width, filter) : null;
  const vert = filter && height !== inHeight ? coefficients(inHeight, height, filter) : null;
  const tables = coefficientBytes(horiz) + coefficientBytes(vert) + (vert ? 4 * vert.ksize : 0);
  if (!vert) return { ...base, horiz, vert, ringRows: 0, burst: 1, bytes: width * 3 + tables };
  const { bounds } = vert;
  let burst = 1;
  for (let y = 1, ends = 1, starts = 1; y < height; y++) {
    const start = bounds[y * 2];
    const previous = bounds[y * 2 - 2];
    // rows arriving in order emit the outputs whose window ends at one row; bottom-up, starts at one row
    ends = start + bounds[y * 2 + 1] === previous + bounds[y * 2 - 1] ? ends + 1 : 1;
    starts = start === previous ? starts + 1 : 1;
    burst = Math.max(burst, ends, starts);
  }
  const ringRows = maxCount(vert);
  const lastRow = bounds[height * 2 - 2] + bounds[height * 2 - 1];
  const bytes = (ringRows + 1) * width * 3 + tables;
  return { ...base, horiz, vert, firstRow: bounds[0], lastRow, ringRows, burst, bytes };
}

// PIL's resize on rows pushed one by one, all in increasing or all in decreasing order: each row's
// horizontal pass goes into a ring of the last rows the vertical pass still reads, and each output row is
// computed as soon as its last input row is in (its first, rows arriving bottom-up). An output row reads a
// fixed window of input rows with fixed weights, so the bytes are resize()'s; what is held is the ring (the
// most rows one output row reads, at the output width), not every input row. NEAREST copies the row each
// output row samples.
export type HorizontalPass = (src: Uint8Array, from: number, out: Uint8Array, at: number) => void;
// One output row of the vertical pass, as verticalRow computes it.
export type VerticalPass = typeof verticalRow;

export class RowResize {
  private readonly plan: RowResizePlan;
  private readonly reversed: boolean;
  private readonly emit: (row: Uint8Array, y: number) => void;
  // [ringRows][width][3]: input row y after the horizontal pass, in slot (y - firstRow) % ringRows
  private readonly ring: Uint8Array;
  private readonly row: Uint8Array; // [width][3]: the output row handed to emit
  private readonly at: Int32Array; // the ring offsets of one output row's input rows
  private next: number; // the next output row (counting down when reversed)
  // The horizontal pass of one input row from src[from..] into out[at..], and the vertical pass of one
  // output row: horizontalRow and verticalRow, or kernels bit-exact with them (../image/kernels.ts).
  private readonly horizontal: HorizontalPass | null;
  private readonly vertical: VerticalPass;

  // emit receives each output row (a buffer reused after it returns) and its y; reversed: rows arrive from
  // inHeight - 1 down to 0, and leave from height - 1 down to 0.
  constructor(
    plan: RowResizePlan,
    emit: (row: Uint8Array, y: number) => void,
    reversed = false,
    horizontal?: HorizontalPass,
    vertical: VerticalPass = verticalRow,
  ) {
    this.plan = plan;
    const { horiz, width } = plan;
    this.horizontal = horiz
      ? (horizontal ?? ((src, from, out, at) => horizontalRow(src, from, out, at, width, horiz)))
      : null;
    this.vertical = vertical;
    this.reversed = reversed;
    this.emit = emit;
    this.ring = new Uint8Array(plan.ringRows * plan.width * 3);
    this.row = new Uint8Array(plan.width * 3);
    this.at = new Int32Array(plan.vert ? plan.vert.ksize : 0);
    this.next = reversed ? plan.height - 1 : 0;
  }

  // Its buffers, for a caller that is done with it to free at once (../buffers.ts's freeNow).
  buffers(): ArrayBuffer[] {
    return [this.ring.buffer, this.row.buffer, this.at.buffer] as ArrayBuffer[];
  }

  // Input row y, [inWidth][3] from src[from..].
  push(src: Uint8Array, y: number, from = 0): void {
    const { width, height, inWidth, vert, xin, yin, firstRow, lastRow, ringRows } = this.plan;
    const stride = width * 3;
    if (xin && yin) {
      let row = true;
      while (this.next >= 0 && this.next < height && yin[this.next] === y) {
        if (row) {
          for (let x = 0, o = 0; x < width; x++, o += 3) {
            const s = from + xin[x] * 3;
            this.row[o] = src[s];
            this.row[o + 1] = src[s + 1];
            this.row[o + 2] = src[s + 2];
          }
          row = false;
        }
        this.emit(this.row, this.next);
        this.next += this.reversed ? -1 : 1;
      }
      return;
    }
    if (!vert) {
      if (this.horizontal) this.horizontal(src, from, this.row, 0);
      else this.row.set(src.subarray(from, from + stride));
      this.emit(this.row, y);
      return;
    }
    if (y < firstRow || y >= lastRow) return;
    const slot = ((y - firstRow) % ringRows) * stride;
    if (this.horizontal) this.horizontal(src, from, this.ring, slot);
    else this.ring.set(src.subarray(from, from + inWidth * 3), slot);
    const { bounds, weights, ksize } = vert;
    // Output rows whose window ends at y (rows arriving in order) or starts at y (bottom-up).
    while (this.next >= 0 && this.next < height) {
      const yy = this.next;
      const ymin = bounds[yy * 2];
      const count = bounds[yy * 2 + 1];
      if (this.reversed ? ymin < y : ymin + count - 1 > y) break;
      for (let k = 0; k < count; k++) this.at[k] = ((ymin + k - firstRow) % ringRows) * stride;
      this.vertical(this.ring, this.at, count, weights, yy * ksize, stride, this.row, 0);
      this.emit(this.row, yy);
      this.next += this.reversed ? -1 : 1;
    }
  }
}
