// The preprocessing of ./preprocess.ts on rows as a decoder pushes them, so that no one holds the whole
// picture: EXIF orientation, PIL's two-pass resize, center crop, rescale and normalize, bit-exact with
// exif_transpose + Image.resize + the image processor on the whole image.
//
// Pillow resizes the oriented image T (width tw, height th): a horizontal pass along T's rows into a uint8
// intermediate of the rows the vertical pass reads, then the vertical pass, each output row from a fixed
// window of those rows with fixed weights. Stored rows arrive top to bottom:
//   orientations 1-4 (no transpose): a stored row is a T row (flipped for 2, 3; bottom-up for 3, 4): the
//     horizontal pass runs on it as it arrives, into a ring of the last rows an output row reads, and each
//     output row is made once its window is in (resize.ts's RowResize).
//   orientations 5-8 (transpose): a stored row is a T column, and T's horizontal pass runs down the
//     stored columns. Each output column of that pass is a window of consecutive stored rows, weighted:
//     the vertical pass's arithmetic on the stored rows, made once the window's last row is in (a ring
//     keeps the last rows a window reads), into one column that the vertical pass then runs down.
// Crop and normalization run in finish(), once, straight into the model's input. Held meanwhile: the
// resized picture and the ring (36 rows of 224 for a 6000x4000 photo to 224: 24 KiB; for the same photo
// rotated, 36 stored rows of 6000 pixels, 633 KiB, or 9 rows of 1500, 40 KiB, at decode=fast's 1/4); never
// the decoded image, nor every resized row.

import type { Preprocessing } from "../bundle/format.ts";
import { freeNow } from "../buffers.ts";
import { EdgevitError } from "../errors.ts";
import { decodeKernels } from "../image/kernels.ts";
import { cropAndNormalize, outputSize, resizedSize, type Size } from "./preprocess.ts";
import {
  type Coefficients,
  coefficientBytes,
  coefficients,
  filterOf,
  maxCount,
  NEAREST,
  nearestIndices,
  RowResize,
  rowResizePlan,
  type VerticalPass,
  verticalRow,
} from "./resize.ts";
import type { ImageHeader, RgbImage, RowSink } from "../image/source.ts";

// The resize's output and its ring (or open sums) each at most: 16 MiB. What a ring holds grows with the
// ratio of the input's height to the output's, not with the image: an extreme aspect ratio reaches it.
const MAX_INTERMEDIATE_BYTES = 16 << 20;

// preprocess.ts's valueTable: 3 x 256 floats.
const VALUE_TABLE_BYTES = 3 * 256 * 4;

export type DecodeMode = "exact" | "fast";
export const DECODE_MODES: readonly DecodeMode[] = ["fast", "exact"];
// fast: DCT-domain scaling where the image is at least twice the resize target; exact: full resolution.
export const DEFAULT_DECODE_MODE: DecodeMode = "fast";

// The resize's filter: NEAREST's own plan, a filter id for the convolution, null when the size is kept.
function resampleOf(pp: Preprocessing, t: Size, outW: number, outH: number): number | null {
  return outW === t.width && outH === t.height ? null : pp.resample;
}

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
  private readonly scratch: (() => ArrayBuffer[]) | undefined;
  private finished = false; // its buffers are freed: finish and finishImage run once

  // decoded: the size the decoder pushes (stored orientation); orientation: EXIF 1..8.
  constructor(pp: Preprocessing, decoded: Size, orientation: number) {
    const o = orientation >= 1 && orientation <= 8 ? orientation : 1;
    this.pp = pp;
    this.stored = decoded;
    this.oriented = oriented(decoded, o);
    const t = this.oriented;
    this.resized = pp.doResize ? resizedSize(pp, t) : t;
    const { width: outW, height: outH } = this.resized;
    // What the resize holds, bounded here so that an extreme aspect ratio (a 1x20000 strip resized by its
    // short edge) is refused instead of allocated: the output first, then the intermediate it needs.
    const refuse = () =>
      new EdgevitError(
        "image_too_large",
        `The image is ${t.width}x${t.height}; resizing it to ${outW}x${outH} needs more memory than this server ` +
          "allows (its aspect ratio is too extreme).",
      );
    if (outW * outH * 3 > MAX_INTERMEDIATE_BYTES) throw refuse();
    const resample = resampleOf(pp, t, outW, outH);
    let plan: Plan;
    if (resample === NEAREST) plan = nearestPlan(decoded, o, outW, outH);
    else {
      const g = convolutionGeometry(decoded, o, outW, outH, resample);
      if (g.intermediate > MAX_INTERMEDIATE_BYTES) throw refuse();
      plan = convolutionPlan(g, outW, outH);
    }
    this.finishResize = plan.finish;
    this.scratch = plan.scratch;
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
    const resample = resampleOf(pp, t, outW, outH);
    if (resample === NEAREST) return nearestBytes(decoded, o, outW, outH);
    return convolutionBytes(convolutionGeometry(decoded, o, outW, outH, resample), outW, outH);
  }

  // The vertical pass, crop, rescale and normalize into `out` (pixel_values, [channels][height][width]).
  finish(out: Float32Array): Size {
    if (this.received !== this.stored.height) {
      throw new RangeError(`finish after ${this.received} of ${this.stored.height} rows`);
    }
    if (this.finished) throw new RangeError("finish after the preprocessor was finished");
    this.finished = true;
    const data = this.finishResize();
    const { width, height } = this.resized;
    const size = cropAndNormalize({ width, height, data }, outputSize(this.pp, this.oriented), this.pp, out);
    // Done: its buffers are freed at once rather than left for the collector, which under concurrent
    // requests frees them late (../buffers.ts's freeNow).
    this.free();
    freeNow(data.buffer as ArrayBuffer);
    return size;
  }

  private free(): void {
    for (const buffer of this.scratch?.() ?? []) freeNow(buffer);
  }

  // The resized uint8 picture alone, for a processor whose further steps start from it (Idefics3's tiles,
  // tiles.ts).
  finishImage(): RgbImage {
    if (this.received !== this.stored.height) {
      throw new RangeError(`finish after ${this.received} of ${this.stored.height} rows`);
    }
    if (this.finished) throw new RangeError("finish after the preprocessor was finished");
    this.finished = true;
    const { width, height } = this.resized;
    const data = this.finishResize();
    this.free(); // the picture is the caller's
    return { width, height, data };
  }
}

interface Plan {
  row: (row: Uint8Array, y: number) => void; // one stored row, [width][3], y in the decoded image
  finish: () => Uint8Array; // the resized picture, [outH][outW][3], once every row is in
  scratch?: () => ArrayBuffer[]; // the buffers it resizes through, beside the picture
}

// The sizes convolutionPlan allocates from: T's size, the passes' coefficients, the rows of T the vertical
// pass reads, and the bytes of its intermediate: not transposed, the RowResize's ring; transposed, the sums
// of the windows open at once (each T column's windows are open together) and one rounded column.
function convolutionGeometry(stored: Size, o: number, outW: number, outH: number, resample: number | null) {
  const { width: w, height: h } = stored;
  const m = mapping(o, h);
  const tw = m.swap ? h : w;
  const th = m.swap ? w : h;
  if (!m.swap) {
    const resize = resample === null ? null : rowResizePlan(tw, th, outW, outH, resample);
    const intermediate = resize?.bytes ?? 0;
    return {
      w,
      m,
      tw,
      th,
      resize,
      vert: null,
      horiz: null,
      windows: null,
      firstRow: 0,
      lastRow: th,
      rows: th,
      intermediate,
    };
  }
  const filter = resample === null ? null : filterOf(resample);
  const vert = filter && outH !== th ? coefficients(th, outH, filter) : null;
  const horiz = filter && outW !== tw ? coefficients(tw, outW, filter) : null;
  const firstRow = vert ? vert.bounds[0] : 0;
  const lastRow = vert ? vert.bounds[outH * 2 - 2] + vert.bounds[outH * 2 - 1] : th;
  const rows = lastRow - firstRow;
  const windows = horiz ? windowsOf(horiz, tw, outW) : null;
  const keep = horiz ? maxCount(horiz) : 0;
  const intermediate =
    coefficientBytes(vert) +
    coefficientBytes(horiz) +
    (horiz ? 8 * tw + keep * (rows * 3 + 4) + (m.rowsReversed ? rows * 3 : 0) : 0) +
    (vert ? vert.bounds.byteLength + outH * 3 : 0) +
    rows * 3 +
    4 * (vert?.ksize ?? 0);
  return { w, m, tw, th, resize: null, vert, horiz, windows, firstRow, lastRow, rows, intermediate };
}

type Geometry = ReturnType<typeof convolutionGeometry>;

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

// What convolutionPlan holds at most: its intermediate (with the coefficients), a mirrored row, the output,
// and the value table finish() normalizes with.
function convolutionBytes(g: Geometry, outW: number, outH: number): number {
  return g.intermediate + (!g.m.swap && g.m.mirror ? g.w * 3 : 0) + outW * outH * 3 + VALUE_TABLE_BYTES;
}

// What nearestPlan holds: the output, the index tables, and per stored row (a T row, or a T column) a JS
// array of the outputs that read it (~48 bytes each, plus 8 per entry), the value table.
function nearestBytes(stored: Size, o: number, outW: number, outH: number): number {
  const readers = o >= 5 ? outW : outH;
  return outW * outH * 3 + 4 * (outW + outH) + 48 * stored.height + 8 * readers + VALUE_TABLE_BYTES;
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

function convolutionPlan(g: Geometry, outW: number, outH: number): Plan {
  const { w, m, resize: resizePlan, vert, horiz, windows, firstRow, lastRow, rows } = g;
  const out = new Uint8Array(outW * outH * 3); // [outH][outW][3]
  const stride = outW * 3;
  const finish = () => out;

  if (!m.swap) {
    // Orientations 3 and 4 push T's rows bottom-up: the resize takes them in that order.
    // The passes through the decode module's kernels when they are installed and the rows fit them.
    const h = resizePlan?.horiz;
    const v = resizePlan?.vert;
    const kernels = decodeKernels();
    const horizontal =
      h && kernels?.fitsResample(w, outW, h)
        ? (src: Uint8Array, from: number, to: Uint8Array, at: number) =>
            kernels.horizontalRow(src, from, w, to, at, outW, h)
        : undefined;
    const vertical: VerticalPass | undefined =
      v && kernels?.fitsVertical(v.ksize, stride)
        ? (src, at, count, k, kBase, length, to, o) => kernels.verticalRow(src, at, count, k, kBase, length, to, o)
        : undefined;
    const resize =
      resizePlan &&
      new RowResize(resizePlan, (row, y) => out.set(row, y * stride), m.rowOf(0) !== 0, horizontal, vertical);
    const mirrored = m.mirror ? new Uint8Array(w * 3) : null;
    return {
      finish,
      scratch: () => [...(resize?.buffers() ?? []), ...(mirrored ? [mirrored.buffer] : [])],
      row: (row, y) => {
        const ty = m.rowOf(y);
        let src = row;
        if (mirrored) {
          for (let x = 0, s = (w - 1) * 3; x < w * 3; x += 3, s -= 3) {
            mirrored[x] = row[s];
            mirrored[x + 1] = row[s + 1];
            mirrored[x + 2] = row[s + 2];
          }
          src = mirrored;
        }
        if (resize) resize.push(src, ty);
        else out.set(src, ty * stride);
      },
    };
  }

  // Transposed: stored column sx is T row ty (sx = ty, or w - 1 - ty). Each column of the horizontal pass's
  // output (T's rows firstRow..lastRow at output column xx) is complete once its window is: the vertical
  // pass runs down it then, into output column xx.
  const sxOf = (ty: number) => (m.rowsReversed ? w - 1 - ty : ty);
  const column = new Uint8Array(rows * 3); // [rows][3]
  const at = new Int32Array(vert ? vert.ksize : 0);
  // The vertical pass down a column is the horizontal pass of a one-row image: through the decode module's
  // kernel when it fits, with the windows counted from T row firstRow, into [outH][3] then output column xx.
  const kernels = decodeKernels();
  const down: Coefficients | null = vert && {
    ksize: vert.ksize,
    weights: vert.weights,
    bounds: vert.bounds.map((b, i) => (i % 2 === 0 ? b - firstRow : b)),
  };
  const downKernel = down && kernels?.fitsResample(rows, outH, down) ? kernels : null;
  const resized = downKernel ? new Uint8Array(outH * 3) : null;
  const verticalColumn = (xx: number) => {
    if (!vert) {
      for (let r = 0, d = xx * 3; r < rows; r++, d += stride) {
        out[d] = column[r * 3];
        out[d + 1] = column[r * 3 + 1];
        out[d + 2] = column[r * 3 + 2];
      }
      return;
    }
    if (downKernel && down && resized) {
      downKernel.horizontalRow(column, 0, rows, resized, 0, outH, down);
      for (let yy = 0, d = xx * 3; yy < outH * 3; yy += 3, d += stride) {
        out[d] = resized[yy];
        out[d + 1] = resized[yy + 1];
        out[d + 2] = resized[yy + 2];
      }
      return;
    }
    // the column as a one-pixel-wide image: its rows 3 bytes apart
    for (let yy = 0; yy < outH; yy++) {
      const ymin = vert.bounds[yy * 2] - firstRow;
      const count = vert.bounds[yy * 2 + 1];
      for (let k = 0; k < count; k++) at[k] = (ymin + k) * 3;
      verticalRow(column, at, count, vert.weights, yy * vert.ksize, 3, out, yy * stride + xx * 3);
    }
  };
  // The buffers the vertical pass goes through (beside those of the horizontal pass, when it has one).
  const buffers = (...more: (ArrayBufferView | null)[]) =>
    [column, at, resized, ...more].flatMap((a) => (a ? [a.buffer as ArrayBuffer] : []));
  if (!horiz || !windows) {
    return {
      finish,
      scratch: () => buffers(),
      row: (row, y) => {
        for (let ty = firstRow, d = 0; ty < lastRow; ty++, d += 3) {
          const s = sxOf(ty) * 3;
          column[d] = row[s];
          column[d + 1] = row[s + 1];
          column[d + 2] = row[s + 2];
        }
        verticalColumn(m.colOf(y));
      },
    };
  }
  // The windows of T's horizontal pass that each T column tx falls in: [lo[tx], hi[tx]].
  const { ksize, bounds, weights } = horiz;
  const { lo, hi } = windows;
  // Columns arrive in increasing tx for orientations 5 and 8, decreasing for 6 and 7: a window is complete
  // at its last or its first column.
  const increasing = m.colOf(0) === 0;
  // The last `keep` T columns (stored rows), each as its stored pixels of T rows firstRow..lastRow (in
  // stored order: reversed T rows for orientations 7 and 8), T column tx in slot tx % keep. A complete
  // window's column is then the vertical pass of those rows: a row kernel, not a walk down columns.
  const keep = maxCount(horiz);
  const span = rows * 3;
  const from = (m.rowsReversed ? w - lastRow : firstRow) * 3;
  const ring = new Uint8Array(keep * span);
  const slots = new Int32Array(keep);
  const vertical: VerticalPass = kernels?.fitsVertical(keep, span)
    ? (src, at, count, k, kBase, length, to, o) => kernels.verticalRow(src, at, count, k, kBase, length, to, o)
    : verticalRow;
  const reversedColumn = m.rowsReversed ? new Uint8Array(span) : null;
  return {
    finish,
    scratch: () => buffers(ring, slots, reversedColumn),
    row: (row, y) => {
      const tx = m.colOf(y);
      ring.set(row.subarray(from, from + span), (tx % keep) * span);
      for (let xx = lo[tx]; xx <= hi[tx]; xx++) {
        const xmin = bounds[xx * 2];
        const count = bounds[xx * 2 + 1];
        if (tx !== (increasing ? xmin + count - 1 : xmin)) continue;
        for (let k = 0; k < count; k++) slots[k] = ((xmin + k) % keep) * span;
        if (reversedColumn) {
          vertical(ring, slots, count, weights, xx * ksize, span, reversedColumn, 0);
          for (let a = 0, b = span - 3; a < span; a += 3, b -= 3) {
            column[a] = reversedColumn[b];
            column[a + 1] = reversedColumn[b + 1];
            column[a + 2] = reversedColumn[b + 2];
          }
        } else {
          vertical(ring, slots, count, weights, xx * ksize, span, column, 0);
        }
        verticalColumn(xx);
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
