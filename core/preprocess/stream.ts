// The preprocessing of ./preprocess.ts on rows as a decoder pushes them, so that no one holds the whole
// picture: EXIF orientation, PIL's two-pass resize, center crop, rescale and normalize, bit-exact with
// exif_transpose + Image.resize + the image processor on the whole image.
//
// Pillow resizes the oriented image T (width tw, height th): a horizontal pass along T's rows into a uint8
// intermediate of only the rows the vertical pass reads, then the vertical pass. Stored rows arrive top to
// bottom:
//   orientations 1-4 (no transpose): a stored row is a T row (flipped for 2, 3; bottom-up for 3, 4), so
//     the horizontal pass runs on it as it arrives.
//   orientations 5-8 (transpose): a stored row is a T column, and T's horizontal pass runs down the
//     stored columns. Each output column of that pass sums a window of consecutive stored rows: its sums
//     are accumulated as the rows of its window arrive (a few windows are open at once), then rounded into
//     the intermediate exactly as Pillow rounds them.
// The vertical pass, crop and normalization run in finish(), once, straight into the model's input.
// Held meanwhile: the intermediate, max(width, height) x output width x 3 bytes (2.7 MiB for a 4000x3000
// photo to 224), plus a few rows of accumulators; never the decoded image.

import type { Preprocessing } from "../bundle/format.ts";
import { buffers, sizeClass } from "../buffers.ts";
import { EdgevitError } from "../errors.ts";
import { decodeKernels } from "../image/kernels.ts";
import { cropAndNormalize, outputSize, resizedSize, type Size } from "./preprocess.ts";
import {
  type Coefficients,
  clip8,
  coefficients,
  filterOf,
  HALF,
  horizontalRow,
  NEAREST,
  nearestIndices,
  vertical,
} from "./resize.ts";
import type { ImageHeader, RgbImage, RowSink } from "../image/source.ts";

// The resize's uint8 intermediate at most: 16 MiB, e.g. 24,966 rows of 224 columns (a 6000x4000 photo needs
// 4,000 rows).
const MAX_INTERMEDIATE_BYTES = 16 << 20;

export type DecodeMode = "exact" | "fast";
export const DECODE_MODES: readonly DecodeMode[] = ["fast", "exact"];
// fast: DCT-domain scaling where the image is at least twice the resize target; exact: full resolution.
export const DEFAULT_DECODE_MODE: DecodeMode = "fast";

function oriented(size: Size, orientation: number): Size {
  return orientation >= 5 && orientation <= 8 ? { width: size.height, height: size.width } : size;
}

// The decoder scale to use: 1 for `exact`; for `fast`, the largest offered scale whose decoded image, once
// oriented, is still at least twice the resize target in both directions (then the result stays within
// ~0.5 levels of full decoding). Without a resize step every pixel is kept.
export function chooseScale(header: ImageHeader, pp: Preprocessing, mode: DecodeMode): number {
  if (mode === "exact" || !pp.doResize) return 1;
  let best = 1;
  for (const s of header.scales) {
    const decoded = oriented(
      { width: Math.ceil(header.width / s), height: Math.ceil(header.height / s) },
      header.orientation,
    );
    const target = resizedSize(pp, decoded);
    if (s > best && decoded.width >= 2 * target.width && decoded.height >= 2 * target.height) best = s;
  }
  return best;
}

export class StreamingPreprocessor {
  readonly sink: RowSink;
  readonly oriented: Size; // T: the decoded image after the EXIF orientation
  private readonly pp: Preprocessing;
  private readonly resized: Size;
  private received = 0;
  private readonly stored: Size;
  private readonly finishResize: () => Uint8Array; // [resized.height][resized.width][3]
  private readonly releasePlan: () => void;

  // decoded: the size the decoder pushes (stored orientation); orientation: EXIF 1..8.
  constructor(pp: Preprocessing, decoded: Size, orientation: number) {
    const o = orientation >= 1 && orientation <= 8 ? orientation : 1;
    this.pp = pp;
    this.stored = decoded;
    this.oriented = oriented(decoded, o);
    const t = this.oriented;
    this.resized = pp.doResize ? resizedSize(pp, t) : t;
    const { width: outW, height: outH } = this.resized;
    const identity = outW === t.width && outH === t.height;
    // The intermediate is T's height x the output width: bounded here, so an extreme aspect ratio (a
    // 1x20000 strip resized by its short edge) is refused instead of allocated.
    const held = Math.max(t.height * outW, outW * outH) * 3;
    if (held > MAX_INTERMEDIATE_BYTES) {
      throw new EdgevitError(
        "image_too_large",
        `The image is ${t.width}x${t.height}; resizing it to ${outW}x${outH} needs more memory than this server ` +
          "allows (its aspect ratio is too extreme).",
      );
    }
    const plan =
      !identity && pp.resample === NEAREST
        ? nearestPlan(decoded, o, outW, outH)
        : convolutionPlan(decoded, o, outW, outH, identity ? null : filterOf(pp.resample));
    this.finishResize = plan.finish;
    this.releasePlan = plan.release ?? (() => {});
    const push = plan.row;
    const stride = decoded.width * 3;
    this.sink = (rows, first, count) => {
      if (first !== this.received || first + count > decoded.height) {
        throw new RangeError(`rows ${first}..${first + count} pushed after ${this.received} of ${decoded.height}`);
      }
      for (let i = 0; i < count; i++) push(rows.subarray(i * stride, (i + 1) * stride), first + i);
      this.received += count;
    };
  }

  // The most bytes the preprocessing of an image of `decoded` size holds (its intermediate, accumulators,
  // coefficients and the resized picture finish() makes), from the same plan its buffers are allocated
  // from; pixel_values itself is the caller's.
  static memoryBytes(pp: Preprocessing, decoded: Size, orientation: number): number {
    const o = orientation >= 1 && orientation <= 8 ? orientation : 1;
    const t = oriented(decoded, o);
    const { width: outW, height: outH } = pp.doResize ? resizedSize(pp, t) : t;
    if ((outW !== t.width || outH !== t.height) && pp.resample === NEAREST) return nearestBytes(decoded, o, outW, outH);
    const identity = outW === t.width && outH === t.height;
    return convolutionBytes(
      convolutionGeometry(decoded, o, outW, outH, identity ? null : filterOf(pp.resample)),
      outW,
      outH,
    );
  }

  // The vertical pass, crop, rescale and normalize into `out` (pixel_values, [channels][height][width]).
  finish(out: Float32Array): Size {
    if (this.received !== this.stored.height) {
      throw new RangeError(`finish after ${this.received} of ${this.stored.height} rows`);
    }
    try {
      const data = this.finishResize();
      const { width, height } = this.resized;
      return cropAndNormalize({ width, height, data }, outputSize(this.pp, this.oriented), this.pp, out);
    } finally {
      this.release();
    }
  }

  // Hands the intermediate back to the isolate's pool: finish() does, and a caller whose decode failed.
  release(): void {
    this.releasePlan();
  }

  // The vertical pass alone: the resized uint8 picture, for a processor whose further steps need it whole
  // (Idefics3's tiles, tiles.ts).
  finishImage(): RgbImage {
    if (this.received !== this.stored.height) {
      throw new RangeError(`finish after ${this.received} of ${this.stored.height} rows`);
    }
    const { width, height } = this.resized;
    return { width, height, data: this.finishResize() };
  }
}

interface Plan {
  row: (row: Uint8Array, y: number) => void; // one stored row, [width][3], y in the decoded image
  finish: () => Uint8Array;
  release?: () => void; // the pool's buffers back (once; nothing reads them after)
}

const coefficientBytes = (c: Coefficients | null) => (c ? c.bounds.byteLength + c.weights.byteLength : 0);

// The sizes convolutionPlan allocates from: T's size, the two passes' coefficients, the rows of T the
// vertical pass reads.
function convolutionGeometry(
  stored: Size,
  o: number,
  outW: number,
  outH: number,
  filter: ReturnType<typeof filterOf> | null,
) {
  const { width: w, height: h } = stored;
  const m = mapping(o, h);
  const tw = m.swap ? h : w;
  const th = m.swap ? w : h;
  const hPass = filter !== null && outW !== tw;
  const vert = filter !== null && outH !== th ? coefficients(th, outH, filter) : null;
  const firstRow = vert ? vert.bounds[0] : 0;
  const lastRow = vert ? vert.bounds[outH * 2 - 2] + vert.bounds[outH * 2 - 1] : th;
  const horiz = hPass ? coefficients(tw, outW, filter!) : null;
  return { w, h, m, tw, th, vert, horiz, firstRow, lastRow, rows: lastRow - firstRow };
}

// Transposed with a horizontal pass: the windows [lo[tx], hi[tx]] of that pass each T column falls in.
function windowsOf(horiz: Coefficients, tw: number, outW: number): { lo: Int32Array; hi: Int32Array } {
  const { bounds } = horiz;
  const lo = new Int32Array(tw).fill(-1);
  const hi = new Int32Array(tw).fill(-2);
  for (let xx = 0; xx < outW; xx++) {
    for (let t = bounds[xx * 2]; t < bounds[xx * 2] + bounds[xx * 2 + 1]; t++) {
      if (lo[t] < 0) lo[t] = xx;
      hi[t] = xx;
    }
  }
  return { lo, hi };
}

// What convolutionPlan holds at most: the intermediate, a mirrored row, the accumulators of the windows
// open at once (each T column's windows are open together), the coefficients (the vertical ones twice:
// finish() shifts a copy) and the vertical pass's output.
function convolutionBytes(g: ReturnType<typeof convolutionGeometry>, outW: number, outH: number): number {
  let bytes = sizeClass(g.rows * outW * 3) + coefficientBytes(g.horiz) + 2 * coefficientBytes(g.vert);
  if (!g.m.swap && g.m.mirror) bytes += g.w * 3;
  if (g.m.swap && g.horiz) {
    const { lo, hi } = windowsOf(g.horiz, g.tw, outW);
    let open = 0;
    for (let t = 0; t < g.tw; t++) open = Math.max(open, hi[t] - lo[t] + 1);
    bytes += lo.byteLength + hi.byteLength + open * g.rows * 3 * 8;
  }
  if (g.vert) bytes += outW * outH * 3;
  return bytes;
}

// What nearestPlan holds: the output, the index tables, and per stored row (a T row, or a T column) a JS
// array of the outputs that read it (~48 bytes each, plus 8 per entry).
function nearestBytes(stored: Size, o: number, outW: number, outH: number): number {
  const readers = o >= 5 ? outW : outH;
  return outW * outH * 3 + 4 * (outW + outH) + 48 * stored.height + 8 * readers;
}

// Which T coordinates a stored pixel lands on. Non-transposed: T row of stored row y, mirrored columns.
// Transposed: T column of stored row y, T row of stored column x.
function mapping(o: number, h: number) {
  const swap = o >= 5;
  return {
    swap,
    // not transposed
    rowOf: (y: number) => (o === 3 || o === 4 ? h - 1 - y : y),
    mirror: o === 2 || o === 3,
    // transposed
    colOf: (y: number) => (o === 6 || o === 7 ? h - 1 - y : y),
    rowsReversed: o === 7 || o === 8, // T row ty is stored column w - 1 - ty
  };
}

function convolutionPlan(
  stored: Size,
  o: number,
  outW: number,
  outH: number,
  filter: ReturnType<typeof filterOf> | null,
): Plan {
  const { w, m, tw, vert, horiz, firstRow, lastRow, rows } = convolutionGeometry(stored, o, outW, outH, filter);
  const interStride = outW * 3;
  // [rows][outW][3]: T's rows firstRow..lastRow after the horizontal pass
  // From the isolate's pool (the largest buffer of the preprocessing: 2.6 MiB for 6000x4000 to 224).
  let pooled: ArrayBuffer | null = buffers.acquire(rows * interStride);
  const inter = new Uint8Array(pooled, 0, rows * interStride);
  const release = () => {
    buffers.release(pooled);
    pooled = null;
  };

  const finish = () => {
    if (!vert) return inter;
    const shifted: Coefficients = { ...vert, bounds: vert.bounds.slice() };
    for (let i = 0; i < outH; i++) shifted.bounds[i * 2] -= firstRow;
    return vertical(inter, outW, outH, shifted);
  };

  if (!m.swap) {
    const mirrored = m.mirror ? new Uint8Array(w * 3) : null;
    const installed = decodeKernels();
    const kernels = horiz && installed?.fitsResample(w, outW, horiz) ? installed : null;
    return {
      finish,
      release,
      row: (row, y) => {
        const ty = m.rowOf(y);
        if (ty < firstRow || ty >= lastRow) return;
        let src = row;
        if (mirrored) {
          for (let x = 0, s = (w - 1) * 3; x < w * 3; x += 3, s -= 3) {
            mirrored[x] = row[s];
            mirrored[x + 1] = row[s + 1];
            mirrored[x + 2] = row[s + 2];
          }
          src = mirrored;
        }
        const at = (ty - firstRow) * interStride;
        if (!horiz) inter.set(src, at);
        else if (kernels) kernels.horizontalRow(src, 0, w, inter, at, outW, horiz);
        else horizontalRow(src, 0, inter, at, outW, horiz);
      },
    };
  }

  // Transposed: stored column sx is T row ty (sx = ty, or w - 1 - ty).
  const sxOf = (ty: number) => (m.rowsReversed ? w - 1 - ty : ty);
  if (!horiz) {
    return {
      finish,
      release,
      row: (row, y) => {
        const tx = m.colOf(y);
        for (let ty = firstRow; ty < lastRow; ty++) {
          const s = sxOf(ty) * 3;
          const d = (ty - firstRow) * interStride + tx * 3;
          inter[d] = row[s];
          inter[d + 1] = row[s + 1];
          inter[d + 2] = row[s + 2];
        }
      },
    };
  }
  // The windows of T's horizontal pass that each T column tx falls in: [lo[tx], hi[tx]].
  const { ksize, bounds, weights } = horiz;
  const { lo, hi } = windowsOf(horiz, tw, outW);
  // Columns arrive in increasing tx for orientations 5 and 8, decreasing for 6 and 7: a window is complete
  // at its last or its first column.
  const increasing = m.colOf(0) === 0;
  const open: (Float64Array | null)[] = new Array(outW).fill(null); // per window: [rows][3] sums
  const spare: Float64Array[] = [];
  return {
    finish,
    release,
    row: (row, y) => {
      const tx = m.colOf(y);
      // The stored pixel of T row firstRow, and the step to the next T row's.
      const s0 = sxOf(firstRow) * 3;
      const step = m.rowsReversed ? -3 : 3;
      for (let xx = lo[tx]; xx <= hi[tx]; xx++) {
        if (!open[xx]) {
          const acc = spare.pop() ?? new Float64Array(rows * 3);
          acc.fill(HALF);
          open[xx] = acc;
        }
      }
      // The hot loop of an orientation that swaps the axes: every pixel of the row into each window it
      // falls in, two windows (what a downscale has at most) in one pass over the row.
      for (let xx = lo[tx]; xx <= hi[tx]; xx += 2) {
        const acc = open[xx] as Float64Array;
        const k = weights[xx * ksize + tx - bounds[xx * 2]];
        if (xx + 1 <= hi[tx]) {
          const acc2 = open[xx + 1] as Float64Array;
          const k2 = weights[(xx + 1) * ksize + tx - bounds[(xx + 1) * 2]];
          for (let a = 0, s = s0; a < rows * 3; a += 3, s += step) {
            const r = row[s];
            const g = row[s + 1];
            const b = row[s + 2];
            acc[a] += r * k;
            acc[a + 1] += g * k;
            acc[a + 2] += b * k;
            acc2[a] += r * k2;
            acc2[a + 1] += g * k2;
            acc2[a + 2] += b * k2;
          }
        } else if (k !== 0) {
          for (let a = 0, s = s0; a < rows * 3; a += 3, s += step) {
            acc[a] += row[s] * k;
            acc[a + 1] += row[s + 1] * k;
            acc[a + 2] += row[s + 2] * k;
          }
        }
      }
      for (let xx = lo[tx]; xx <= hi[tx]; xx++) {
        const acc = open[xx] as Float64Array;
        const xmin = bounds[xx * 2];
        if (tx === (increasing ? xmin + bounds[xx * 2 + 1] - 1 : xmin)) {
          for (let r = 0, a = 0, d = xx * 3; r < rows; r++, a += 3, d += interStride) {
            inter[d] = clip8(acc[a]);
            inter[d + 1] = clip8(acc[a + 1]);
            inter[d + 2] = clip8(acc[a + 2]);
          }
          spare.push(acc);
          open[xx] = null;
        }
      }
    },
  };
}

// ImagingScaleAffine (NEAREST): output pixel (x, y) is T(xin[x], yin[y]), zero where that falls outside.
function nearestPlan(stored: Size, o: number, outW: number, outH: number): Plan {
  const { width: w, height: h } = stored;
  const m = mapping(o, h);
  const tw = m.swap ? h : w;
  const th = m.swap ? w : h;
  const xin = nearestIndices(tw, outW);
  const yin = nearestIndices(th, outH);
  const out = new Uint8Array(outW * outH * 3);
  // For each T row (not transposed) or T column (transposed): the output rows or columns that read it.
  const [readers, size] = m.swap ? [xin, tw] : [yin, th];
  const byIndex: number[][] = Array.from({ length: size }, () => []);
  readers.forEach((t, i) => {
    if (t >= 0 && t < size) byIndex[t].push(i);
  });
  const finish = () => out;
  if (!m.swap) {
    return {
      finish,
      row: (row, y) => {
        for (const oy of byIndex[m.rowOf(y)]) {
          for (let x = 0; x < outW; x++) {
            const tx = xin[x];
            if (tx < 0 || tx >= tw) continue;
            const s = (m.mirror ? w - 1 - tx : tx) * 3;
            const d = (oy * outW + x) * 3;
            out[d] = row[s];
            out[d + 1] = row[s + 1];
            out[d + 2] = row[s + 2];
          }
        }
      },
    };
  }
  return {
    finish,
    row: (row, y) => {
      for (const ox of byIndex[m.colOf(y)]) {
        for (let oy = 0; oy < outH; oy++) {
          const ty = yin[oy];
          if (ty < 0 || ty >= th) continue;
          const s = (m.rowsReversed ? w - 1 - ty : ty) * 3;
          const d = (oy * outW + ox) * 3;
          out[d] = row[s];
          out[d + 1] = row[s + 1];
          out[d + 2] = row[s + 2];
        }
      }
    },
  };
}
