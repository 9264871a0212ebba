// The JPEG decoder: reads the header on open, then decodes at 1/1, 1/2, 1/4 or 1/8 and pushes RGB rows.
//
// A sequential JPEG whose first scan holds every component is decoded one MCU row at a time: its samples
// go into a ring of three MCU-row bands per component (the previous band's last row and the next band's
// first row are what the vertical upsampling filters read), and rows are emitted one band behind the
// decoding. Memory is O(width). Progressive and multi-scan files keep their coefficients until the end
// of the file (int16, only those the chosen scale's IDCT reads, plus a nonzero bit per dropped coefficient
// so refinement scans still parse), then run the same band pipeline.
//
// Work is bounded: a scan-count cap and a budget of coefficient visits for progressive files, so a valid
// but pathological file (hundreds of refinement scans) is refused quickly instead of blocking.

import { buffers, sizeClass } from "../../buffers.ts";
import { EdgevitError } from "../../errors.ts";
import { checkPixels, type Limits } from "../../limits.ts";
import { ByteSource, yieldToOthers } from "../bytes.ts";
import {
  AC_FIRST_COMPACT,
  AC_FIRST_FULL,
  AC_REFINE_COMPACT,
  AC_REFINE_DROPPED,
  AC_REFINE_FULL,
  type DcComponent,
  type DecodeKernels,
  decodeKernels,
  MCUS_TOO_LARGE,
  MCUS_TRUNCATED,
  type McuComponent,
} from "../kernels.ts";
import type { DecodedSize, ImageDecoder, ImageHeader, RowSink } from "../source.ts";
import {
  ARITHMETIC_STATS_BYTES,
  ArithmeticDecoder,
  ArithmeticState,
  pillowReadEnd,
  readConditioning,
} from "./arithmetic.ts";
import {
  cmykToRgb,
  grayToRgb,
  h2v2YccRow,
  rgbToRgb,
  type UpsampleMethod,
  upsampleMethod,
  upsampleRow,
  yccToRgb,
} from "./color.ts";
import { corrupt, isTruncation, truncatedJpeg } from "./errors.ts";
import {
  BitReader,
  decodeAcFirst,
  decodeAcFirstCompact,
  decodeAcRefine,
  decodeAcRefineCompact,
  decodeAcRefineDropped,
  decodeBlock,
  decodeDcFirst,
  decodeDcRefine,
  HUFFMAN_TABLE_BYTES,
  type HuffmanTable,
  skipBlockAc,
} from "./huffman.ts";
import { idct1, idct2, idct4, idct8 } from "./idct.ts";
import {
  type Component,
  checkCutSegment,
  type Frame,
  installStandardTables,
  type JpegColorSpace,
  type JpegHeader,
  nextMarker,
  readHuffmanTables,
  readJpegHeader,
  readQuantTables,
  readScan,
  type Scan,
  segmentEnd,
  type Tables,
  u16,
} from "./markers.ts";
import { ZIGZAG } from "./zigzag.ts";

// The bounds the streaming JPEG decoder reads (see core/limits.ts); each optional one has its default below.
export type JpegLimits = Pick<
  Limits,
  "maxPixels" | "maxScans" | "maxCoefficientPasses" | "maxVisitsPerByte" | "maxCoefficientBytes"
>;

export const DEFAULT_MAX_SCANS = 256;
export const DEFAULT_MAX_COEFFICIENT_PASSES = 16;
export const DEFAULT_MAX_VISITS_PER_BYTE = 64;
const BASE_PASSES = 3;
export const DEFAULT_MAX_COEFFICIENT_BYTES = 256 * 1024 * 1024;

// The scaled DCT size libjpeg gives a component at output scale 1/scale (jdmaster.c: subsampled components
// are scaled up through the IDCT where the sampling ratios allow, instead of being upsampled).
function componentSize(f: Frame, c: Component, scale: number): number {
  const minSize = 8 / scale;
  let size = minSize;
  while (size < 8 && (f.maxH * minSize) % (c.h * size * 2) === 0 && (f.maxV * minSize) % (c.v * size * 2) === 0) {
    size *= 2;
  }
  return size;
}

// Coefficients kept per block for an IDCT of this size: all 64, the 25 the 2x2 transform reads, or the DC.
function keptFor(size: number): number {
  return size >= 4 ? 64 : size === 2 ? 25 : 1;
}

// What a decode did, for tests and benchmarks.
export interface DecodeStats {
  scans: number;
  coefficientVisits: number;
}

type Idct = (blk: Int32Array, out: Uint8Array, outOff: number, stride: number) => void;

// Per component, for one decode at one scale.
interface Plane {
  comp: Component;
  size: number; // its scaled DCT size: 1, 2, 4 or 8 (libjpeg may pick a larger one for subsampled chroma)
  idct: Idct;
  bandRows: number; // sample rows per MCU row: v * size
  stride: number; // paddedBlocksPerLine * size
  ring: Uint8Array; // (3 bands, bandRows, stride)
  width: number; // samples after the IDCT (libjpeg's downsampled_width)
  height: number;
  method: UpsampleMethod;
  hExpand: number;
  vExpand: number;
  upsampled: Uint8Array; // one upsampled row, (outWidth + 8)
  // Buffered mode: coefficients, (paddedBlocksPerColumn * paddedBlocksPerLine, kept) and dropped-nonzero bits.
  coefs: Int16Array | null;
  kept: number; // coefficients kept per block: 64, 25 (2x2 IDCT) or 1 (1x1)
  keepIndex: Int8Array; // natural index -> kept slot, -1 if dropped
  keptNatural: Int8Array; // natural index of each kept slot
  keptZigzag: Int8Array; // zigzag indices of the kept coefficients, ascending
  keepZigzag: Int8Array; // zigzag index -> kept slot, -1 if dropped
  nonzero: Uint32Array | null; // (blocks, 2)
  lastNonzero: Uint8Array | null; // (blocks) highest zigzag index that may be nonzero, full store only
  undo: Undo | null; // a streamed progressive file's refinement rows
}

// One block row of a plane's coefficient store (with its nonzero bits or last-nonzero indices), saved before
// a refinement row that may run out of bytes and restored if it does: libjpeg's suspension undoes the
// coefficients a refinement made nonzero in the same way.
class Undo {
  private readonly p: Plane;
  private readonly coefs: Int16Array; // (blocksPerLine, kept)
  private readonly bits: Uint32Array | Uint8Array; // (blocksPerLine, 2) nonzero bits or (blocksPerLine) last
  private first = 0; // the row's first block

  constructor(p: Plane) {
    this.p = p;
    const n = p.comp.blocksPerLine;
    this.coefs = new Int16Array(n * p.kept);
    this.bits = p.kept < 64 ? new Uint32Array(2 * n) : new Uint8Array(n);
  }

  at(by: number): void {
    this.first = by * this.p.comp.paddedBlocksPerLine;
  }

  save(): void {
    const { p, first } = this;
    const n = p.comp.blocksPerLine;
    this.coefs.set((p.coefs as Int16Array).subarray(first * p.kept, (first + n) * p.kept));
    if (p.nonzero) this.bits.set(p.nonzero.subarray(2 * first, 2 * (first + n)));
    else this.bits.set((p.lastNonzero as Uint8Array).subarray(first, first + n));
  }

  restore(): void {
    const { p, first } = this;
    (p.coefs as Int16Array).set(this.coefs, first * p.kept);
    if (p.nonzero) p.nonzero.set(this.bits, 2 * first);
    else (p.lastNonzero as Uint8Array).set(this.bits, first);
  }
}

function idctFor(size: number): Idct {
  if (size === 8) return idct8;
  if (size === 4) return idct4;
  if (size === 2) return idct2;
  return (blk, out, outOff) => idct1(blk, out, outOff);
}

const MARKER_EOI = 0xd9;
const MARKER_SOS = 0xda;
// Multi-scan sequential files store coefficients as decoded; they are dequantized before the IDCT.
const UNIT_QUANT = new Int32Array(64).fill(1);

// Block smoothing (jdcoefct.c): coefficients 0..9 in zigzag order are the ones latched and estimated; their
// natural positions (DC, then libjpeg's Q01, Q10, Q20, Q11, Q02, Q03, Q12, Q21, Q30).
const SAVED_COEFS = 10;
const SMOOTHED = [0, 1, 8, 16, 9, 2, 3, 10, 17, 24];

// A 5x5 grid of weights as its nonzero terms: positions in the grid (libjpeg's DC01..DC25 less one), then
// their weights.
interface Weights {
  at: Int8Array;
  by: Int32Array;
}
function grid(rows: number[][]): Weights {
  const flat = rows.flat();
  const at = Int8Array.from(flat.flatMap((w, i) => (w !== 0 ? [i] : [])));
  return { at, by: Int32Array.from(at, (i) => flat[i]) };
}
function weighted(w: Weights, dc: Int32Array): number {
  let sum = 0;
  for (let i = 0; i < w.at.length; i++) sum += w.by[i] * dc[w.at[i]];
  return sum;
}
// The weights of the 5x5 DC values (block rows two above to two below, columns two left to two right) in
// each estimate, by the coefficient's quantization position: NARROW when some AC coefficient has arrived
// (the first five coefficients only), WIDE when none has (all nine, and DC_WEIGHTS for the DC).
const NARROW = [
  grid([
    [0, 0, 0, 0, 0],
    [0, 0, 0, 0, 0],
    [-7, 50, 0, -50, 7],
    [0, 0, 0, 0, 0],
    [0, 0, 0, 0, 0],
  ]), // Q01
  grid([
    [0, 0, -7, 0, 0],
    [0, 0, 50, 0, 0],
    [0, 0, 0, 0, 0],
    [0, 0, -50, 0, 0],
    [0, 0, 7, 0, 0],
  ]), // Q10
  grid([
    [0, 0, -1, 0, 0],
    [0, 0, 13, 0, 0],
    [0, 0, -24, 0, 0],
    [0, 0, 13, 0, 0],
    [0, 0, -1, 0, 0],
  ]), // Q20
  grid([
    [0, -1, 0, 1, 0],
    [-1, 10, 0, -10, 1],
    [0, 0, 0, 0, 0],
    [1, -10, 0, 10, -1],
    [0, 1, 0, -1, 0],
  ]), // Q11
  grid([
    [0, 0, 0, 0, 0],
    [0, 0, 0, 0, 0],
    [-1, 13, -24, 13, -1],
    [0, 0, 0, 0, 0],
    [0, 0, 0, 0, 0],
  ]), // Q02
];
const WIDE = [
  grid([
    [-1, -1, 0, 1, 1],
    [-3, 13, 0, -13, 3],
    [-3, 38, 0, -38, 3],
    [-3, 13, 0, -13, 3],
    [-1, -1, 0, 1, 1],
  ]), // Q01
  grid([
    [-1, -3, -3, -3, -1],
    [-1, 13, 38, 13, -1],
    [0, 0, 0, 0, 0],
    [1, -13, -38, -13, 1],
    [1, 3, 3, 3, 1],
  ]), // Q10
  grid([
    [0, 0, 1, 0, 0],
    [0, 2, 7, 2, 0],
    [0, -5, -14, -5, 0],
    [0, 2, 7, 2, 0],
    [0, 0, 1, 0, 0],
  ]), // Q20
  grid([
    [-1, 0, 0, 0, 1],
    [0, 9, 0, -9, 0],
    [0, 0, 0, 0, 0],
    [0, -9, 0, 9, 0],
    [1, 0, 0, 0, -1],
  ]), // Q11
  grid([
    [0, 0, 0, 0, 0],
    [0, 2, -5, 2, 0],
    [1, 7, -14, 7, 1],
    [0, 2, -5, 2, 0],
    [0, 0, 0, 0, 0],
  ]), // Q02
  grid([
    [0, 0, 0, 0, 0],
    [0, 1, 0, -1, 0],
    [0, 2, 0, -2, 0],
    [0, 1, 0, -1, 0],
    [0, 0, 0, 0, 0],
  ]), // Q03
  grid([
    [0, 0, 0, 0, 0],
    [0, 1, -3, 1, 0],
    [0, 0, 0, 0, 0],
    [0, -1, 3, -1, 0],
    [0, 0, 0, 0, 0],
  ]), // Q12
  grid([
    [0, 0, 0, 0, 0],
    [0, 1, 0, -1, 0],
    [0, -3, 0, 3, 0],
    [0, 1, 0, -1, 0],
    [0, 0, 0, 0, 0],
  ]), // Q21
  grid([
    [0, 0, 0, 0, 0],
    [0, 1, 2, 1, 0],
    [0, 0, 0, 0, 0],
    [0, -1, -2, -1, 0],
    [0, 0, 0, 0, 0],
  ]), // Q30
];
const DC_WEIGHTS = grid([
  [-2, -6, -8, -6, -2],
  [-6, 6, 42, 6, -6],
  [-8, 42, 152, 42, -8],
  [-6, 6, 42, 6, -6],
  [-2, -6, -8, -6, -2],
]);

// An estimate from num = Q00 * (weighted DC sum) for a coefficient quantized by q: |num| / (256 q) rounded
// to nearest (halves up), capped at 2^al - 1 when al > 0, with num's sign. Exact integer division (num can
// pass 2^32 with 16-bit quantization values).
function estimate(num: number, q: number, al: number): number {
  const a = q * 128 + Math.abs(num);
  const d = q * 256;
  let pred = Math.floor(a / d);
  if (pred * d > a) pred--;
  else if ((pred + 1) * d <= a) pred++;
  if (al > 0 && pred >= 1 << al) pred = (1 << al) - 1;
  return num >= 0 ? pred : -pred;
}

// Blocks decoded between two yields to the event loop (../bytes.ts): ~1 MP of 8x8 blocks, a few ms.
const SLICE_BLOCKS = 16384;

// Held besides the planes: the Huffman table slots, four quantization tables, per-component bookkeeping.
const TABLES_BYTES = 8 * HUFFMAN_TABLE_BYTES + 4 * 64 * 4 + 4096;

// A component's buffers at one scale: what a Pass allocates and memoryBytes adds up, from the same sizes.
interface PlaneSizes {
  size: number; // scaled DCT size
  bandRows: number;
  stride: number;
  kept: number;
  ringBytes: number; // 3 bands of bandRows x stride samples
  coefficientBytes: number; // buffered files: int16 per kept coefficient + nonzero bits or last-nonzero index
  pooledBytes: number; // the same as the pool hands them out (../../buffers.ts): two buffers of their size class
  undoBytes: number; // one block row of the same, saved before a refinement row that may be retried
  smoothBytes: number; // a progressive file's MCU row of int16 coefficients, copied to be smoothed
}

function planeSizes(f: Frame, c: Component, scale: number): PlaneSizes {
  const size = componentSize(f, c, scale);
  const kept = keptFor(size);
  const bandRows = c.v * size;
  const stride = c.paddedBlocksPerLine * size;
  const perBlock = 2 * kept + (kept < 64 ? 8 : 1);
  const blocks = c.paddedBlocksPerLine * c.paddedBlocksPerColumn;
  return {
    size,
    bandRows,
    stride,
    kept,
    ringBytes: 3 * bandRows * stride,
    coefficientBytes: blocks * perBlock,
    pooledBytes: sizeClass(blocks * 2 * kept) + sizeClass(blocks * (kept < 64 ? 8 : 1)),
    undoBytes: c.blocksPerLine * perBlock,
    smoothBytes: 2 * c.v * c.paddedBlocksPerLine * kept,
  };
}

export class JpegDecoder implements ImageDecoder {
  readonly header: ImageHeader;
  readonly colorSpace: JpegColorSpace;
  readonly frame: Frame;
  readonly stats: DecodeStats = { scans: 0, coefficientVisits: 0 };
  readonly source: ByteSource;
  private readonly tables: Tables; // as of the first scan header
  private readonly firstScan: number; // offset in the file of the 0xFF before the first SOS marker
  readonly maxScans: number;
  private readonly maxPasses: number;
  private readonly maxVisitsPerByte: number;
  private readonly maxCoefficientBytes: number;
  // A sequential file whose first scan holds every component decodes row by row, holding no coefficients.
  readonly streams: boolean;
  private used = false;

  constructor(source: ByteSource, h: JpegHeader, limits: JpegLimits) {
    this.source = source;
    this.maxScans = limits.maxScans ?? DEFAULT_MAX_SCANS;
    this.maxPasses = limits.maxCoefficientPasses ?? DEFAULT_MAX_COEFFICIENT_PASSES;
    this.maxVisitsPerByte = limits.maxVisitsPerByte ?? DEFAULT_MAX_VISITS_PER_BYTE;
    this.maxCoefficientBytes = limits.maxCoefficientBytes ?? DEFAULT_MAX_COEFFICIENT_BYTES;
    if (h.firstScan < 0) throw truncatedJpeg();
    this.frame = h.frame;
    this.tables = h.tables;
    this.firstScan = h.firstScan;
    this.streams = !h.frame.progressive && h.firstScanComponents === h.frame.components.length;
    this.colorSpace = h.colorSpace;
    checkPixels(h.frame.width, h.frame.height, limits.maxPixels);
    this.header = {
      format: "jpeg",
      width: h.frame.width,
      height: h.frame.height,
      orientation: h.orientation,
      scales: [1, 2, 4, 8],
    };
  }

  // Rows reach `sink` as MCU rows are decoded (a streamed file: as its bytes arrive), yielding to the event
  // loop every SLICE_BLOCKS blocks. Whole bytes decode again at any scale; a stream decodes once (its
  // first bytes are gone), and its reader is left to the caller to close.
  async decode(scale: number, sink: RowSink): Promise<DecodedSize> {
    if (scale !== 1 && scale !== 2 && scale !== 4 && scale !== 8) {
      throw new EdgevitError("bad_parameter", `A JPEG decodes at scale 1, 2, 4 or 8, not ${scale}.`);
    }
    if (!this.source.whole && this.used) throw new RangeError("a streamed JPEG decodes once");
    this.used = true;
    this.stats.scans = 0;
    this.stats.coefficientVisits = 0;
    return new Pass(this, cloneTables(this.tables), this.firstScan, scale, sink).run();
  }

  // Memory the coefficients take until the last scan when decoding at 1/scale: int16 per kept coefficient,
  // plus 8 bytes of nonzero bits per block when some are dropped, or 1 byte (last nonzero index) when not.
  // 0 for a file that streams. A caller can pick its scale with this before decoding.
  coefficientBytes(scale: number): number {
    if (this.streams) return 0;
    let bytes = 0;
    for (const c of this.frame.components) bytes += planeSizes(this.frame, c, scale).coefficientBytes;
    return bytes;
  }

  // The most bytes a decode at 1/scale holds, from the header: the output band, each component's ring of
  // three MCU-row bands and upsampled row, the coefficients of a buffered file (and, streamed, one block
  // row of them saved for a retried refinement row; progressive, one MCU row of them to smooth), the
  // tables, and the source's window.
  memoryBytes(scale: number): number {
    const f = this.frame;
    const outWidth = Math.ceil(f.width / scale);
    let bytes = f.maxV * (8 / scale) * outWidth * 3 + TABLES_BYTES + this.source.memoryBytes;
    if (f.arithmetic) bytes += ARITHMETIC_STATS_BYTES;
    let smoothBytes = 0;
    for (const c of f.components) {
      const s = planeSizes(f, c, scale);
      bytes += s.ringBytes + outWidth + 8;
      if (!this.streams) bytes += s.pooledBytes + (f.progressive && !this.source.whole ? s.undoBytes : 0);
      smoothBytes = Math.max(smoothBytes, s.smoothBytes);
    }
    // One component's band at a time is smoothed, in one buffer (a progressive file that stops early).
    return bytes + (f.progressive ? smoothBytes : 0);
  }

  checkCoefficientBytes(scale: number): void {
    const bytes = this.coefficientBytes(scale);
    if (bytes > this.maxCoefficientBytes) {
      const mb = (n: number) => (n / 1048576).toFixed(0);
      throw new EdgevitError(
        "image_too_large",
        `The JPEG is ${this.frame.width}x${this.frame.height} and progressive: decoding it at 1/${scale} needs ${mb(bytes)} MB for its coefficients; the limit is ${mb(this.maxCoefficientBytes)} MB.`,
      );
    }
  }

  // Coefficient visits allowed for this file at `blocks` blocks (all components, in whole MCUs), given
  // the file's length (a streamed file of unknown length: the bytes arrived so far).
  visitBudget(blocks: number, fileBytes: number): number {
    const perBlock = 64 * blocks;
    return Math.min(this.maxPasses * perBlock, BASE_PASSES * perBlock + this.maxVisitsPerByte * fileBytes);
  }
}

// Reads the header from whole bytes.
export function openJpegBytes(bytes: Uint8Array, limits: JpegLimits): JpegDecoder {
  return new JpegDecoder(ByteSource.of(bytes), readJpegHeader(bytes, checkProcess), limits);
}

// Reads the header from a source, waiting for its bytes (up to the source's window, the header bound)
// as far as the first scan header; nothing is released meanwhile, so byte 0 is still in the window after.
export async function openJpegSource(source: ByteSource, limits: JpegLimits): Promise<JpegDecoder> {
  for (;;) {
    try {
      const h = readJpegHeader(source.bytes, checkProcess);
      if (h.firstScan < 0 && !source.ended) throw truncatedJpeg();
      return new JpegDecoder(source, h, limits);
    } catch (error) {
      if (source.ended || !isTruncation(error)) throw error;
      await source.more(0, source.bytes.length);
    }
  }
}
function checkProcess(marker: number): void {
  if (marker <= 0xc2 || marker === 0xc9 || marker === 0xca) return;
  // libjpeg-turbo 2.1 refuses these processes ("Unsupported JPEG process"), so Pillow 9.4 does too.
  const kind = marker === 0xc3 || marker === 0xcb ? "lossless" : "hierarchical";
  throw new EdgevitError(
    "invalid_image",
    `The JPEG is a ${kind} JPEG, which Pillow does not decode either; only baseline and progressive JPEGs are.`,
  );
}

function cloneTables(t: Tables): Tables {
  return {
    quant: t.quant.slice(),
    dc: t.dc.slice(),
    ac: t.ac.slice(),
    restartInterval: t.restartInterval,
    conditioning: t.conditioning,
  };
}

// One decode at one scale.
class Pass {
  private readonly d: JpegDecoder;
  private readonly src: ByteSource;
  private b: Uint8Array; // the source's window; positions below are in it
  private readonly frame: Frame;
  private readonly tables: Tables;
  private readonly sink: RowSink;
  private readonly planes: Plane[];
  private readonly held: ArrayBuffer[] = []; // the pool's buffers the planes use
  private readonly quants: (Int32Array | null)[];
  private readonly outWidth: number;
  private readonly outHeight: number;
  private readonly bandHeight: number; // output rows per MCU row
  private readonly out: Uint8Array; // (bandHeight, outWidth, 3)
  private readonly dequantized = new Int32Array(64); // the block the IDCT reads
  private readonly coefBits: Int8Array[]; // per component, per coefficient: libjpeg's coef_bits
  // Per component, coefficients 0..9: coef_bits as they were when the component's latest scan started
  // (libjpeg's second half of coef_bits, 0 after the first scan), for the rows the last scan left short.
  private readonly prevBits: Int8Array[];
  private lastGoodRow = 0; // libjpeg's last_good_iMCU_row: the last iMCU row a scan began with data left
  private scanCount = 0; // this pass's own (the decoder's stats are shared by the passes of a whole file)
  private readonly saved = new Int32Array(4); // a row's DC predictors or EOB run, kept for a retry
  private pos: number;
  private blocks = 0; // all components, in whole MCUs
  private work = 0; // blocks decoded since the last yield
  private readonly scale: number;

  constructor(d: JpegDecoder, tables: Tables, pos: number, scale: number, sink: RowSink) {
    this.d = d;
    this.src = d.source;
    this.b = this.src.bytes;
    this.frame = d.frame;
    this.tables = tables;
    installStandardTables(tables);
    this.pos = pos;
    this.sink = sink;
    this.scale = scale;
    const f = this.frame;
    const minSize = 8 / scale;
    this.outWidth = Math.ceil(f.width / scale);
    this.outHeight = Math.ceil(f.height / scale);
    this.bandHeight = f.maxV * minSize;
    this.out = new Uint8Array(this.bandHeight * this.outWidth * 3);
    this.quants = f.components.map(() => null);
    this.coefBits = f.components.map(() => new Int8Array(64).fill(-1));
    this.prevBits = f.components.map(() => new Int8Array(SAVED_COEFS));
    // libjpeg's fancy upsampling needs context rows, which it cannot provide at scaled DCT size 1.
    const fancy = minSize > 1;
    this.planes = f.components.map((c) => {
      const { size, bandRows, stride, ringBytes } = planeSizes(f, c, scale);
      const hIn = (c.h * size) / minSize;
      const vIn = (c.v * size) / minSize;
      const width = Math.ceil((f.width * c.h * size) / (f.maxH * 8));
      const height = Math.ceil((f.height * c.v * size) / (f.maxV * 8));
      const method = upsampleMethod(f.maxH / hIn, f.maxV / vIn, width, fancy);
      const keepIndex = new Int8Array(64).fill(-1);
      // The same choice as keptFor: all 64, rows and columns 0, 1, 3, 5, 7 for the 2x2 IDCT, or the DC.
      let kept = 0;
      for (let i = 0; i < 64; i++) {
        const row = i >> 3;
        const col = i & 7;
        const needed = size >= 4 || (size === 2 ? row % 2 === 1 || row === 0 : i === 0);
        const neededCol = size >= 4 || (size === 2 ? col % 2 === 1 || col === 0 : i === 0);
        if (needed && neededCol) keepIndex[i] = kept++;
      }
      return {
        comp: c,
        size,
        idct: idctFor(size),
        bandRows,
        stride,
        ring: new Uint8Array(ringBytes),
        width,
        height,
        method,
        hExpand: f.maxH / hIn,
        vExpand: f.maxV / vIn,
        upsampled: new Uint8Array(this.outWidth + 8),
        coefs: null,
        kept,
        keepIndex,
        keepZigzag: Int8Array.from(ZIGZAG.subarray(0, 64), (z) => keepIndex[z]),
        keptNatural: Int8Array.from({ length: kept }, (_, slot) => keepIndex.indexOf(slot)),
        keptZigzag: Int8Array.from(
          Array.from(ZIGZAG.subarray(0, 64))
            .map((z, k) => (keepIndex[z] >= 0 ? k : -1))
            .filter((k) => k >= 0),
        ),
        nonzero: null,
        lastNonzero: null,
        undo: null,
      };
    });
  }

  // The coefficient planes come from the isolate's pool and go back to it however the decode ends.
  async run(): Promise<DecodedSize> {
    try {
      return await this.decodeScans();
    } finally {
      for (const p of this.planes) {
        p.coefs = null;
        p.nonzero = null;
        p.lastNonzero = null;
      }
      for (const buffer of this.held.splice(0)) buffers.release(buffer);
    }
  }

  private acquire(bytes: number): ArrayBuffer {
    const buffer = buffers.acquire(bytes);
    this.held.push(buffer);
    return buffer;
  }

  private async decodeScans(): Promise<DecodedSize> {
    const f = this.frame;
    this.blocks = this.planes.reduce((n, p) => n + p.comp.paddedBlocksPerLine * p.comp.paddedBlocksPerColumn, 0);
    const maxScans = this.d.maxScans;
    let buffered = false;
    let scans = 0;
    for (;;) {
      const m = await this.nextSegment();
      const marker = this.b[m];
      if (marker === MARKER_EOI) break;
      if (marker === MARKER_SOS) {
        const end = segmentEnd(this.b, m + 1);
        const scan = readScan(this.b, m + 3, end, f);
        if (++scans > maxScans) {
          throw new EdgevitError(
            "invalid_image",
            `The JPEG has more than ${maxScans} scans; a real photograph has a few dozen at most.`,
          );
        }
        this.d.stats.scans = scans;
        this.scanCount = scans;
        this.pos = end;
        this.latchTables(scan);
        if (scans === 1 && !f.progressive && scan.components.length === f.components.length) {
          // Single-scan sequential: stream it.
          if (f.arithmetic) await this.decodeArithmetic(scan, false);
          else await this.decodeSequential(scan, false);
          this.emitBand(f.mcusPerColumn - 1);
          await this.readTrailer();
          return { width: this.outWidth, height: this.outHeight };
        }
        if (!buffered) {
          this.d.checkCoefficientBytes(this.scale);
          buffered = true;
          for (const p of this.planes) {
            const n = p.comp.paddedBlocksPerLine * p.comp.paddedBlocksPerColumn;
            p.coefs = new Int16Array(this.acquire(2 * n * p.kept), 0, n * p.kept);
            if (p.kept < 64) p.nonzero = new Uint32Array(this.acquire(8 * n), 0, n * 2);
            else p.lastNonzero = new Uint8Array(this.acquire(n), 0, n);
          }
        }
        if (f.arithmetic) await this.decodeArithmetic(scan, true);
        else if (f.progressive) await this.decodeProgressive(scan);
        else await this.decodeSequential(scan, true);
        continue;
      }
      this.readTableMarker(marker, m);
    }
    if (!buffered) throw corrupt("it has no image data");
    const smoothing = this.smoothingLatch();
    for (let row = 0; row < f.mcusPerColumn; row++) {
      for (let ci = 0; ci < this.planes.length; ci++) {
        const p = this.planes[ci];
        if (smoothing) {
          this.idctBandFromCoefs(p, row, this.smoothBand(p, ci, row, smoothing.current[ci], smoothing.prev[ci]));
        } else {
          this.idctBandFromCoefs(p, row);
        }
      }
      if (row > 0) this.emitBand(row - 1);
      await this.worked(this.blocks / f.mcusPerColumn);
    }
    this.emitBand(f.mcusPerColumn - 1);
    return { width: this.outWidth, height: this.outHeight };
  }

  // A truncation met while the stream's end has not arrived: the step is retried with more bytes.
  private retryable(error: unknown): boolean {
    return !this.src.ended && isTruncation(error);
  }

  // Waits for more bytes (`want` at least: by default as many as are held from `keep`), releasing those
  // before `keep`; returns how far positions in the window moved.
  private async refill(keep: number, want = this.b.length - keep): Promise<number> {
    const shift = await this.src.more(keep, want);
    this.b = this.src.bytes;
    this.pos -= shift;
    return shift;
  }

  private async worked(blocks: number): Promise<void> {
    this.work += blocks;
    if (this.work < SLICE_BLOCKS) return;
    this.work = 0;
    await yieldToOthers();
  }

  // The next marker at or after pos, with its whole segment in the window.
  private async nextSegment(): Promise<number> {
    for (;;) {
      try {
        const m = nextMarker(this.b, this.pos);
        if (m < 0) throw truncatedJpeg();
        const marker = this.b[m];
        if (marker !== 0x01 && (marker < 0xd0 || marker > 0xd9)) segmentEnd(this.b, m + 1);
        return m;
      } catch (error) {
        if (!this.retryable(error)) throw error;
        await this.refill(this.pos);
      }
    }
  }

  // Runs one row of a scan. When the row runs out of bytes before the stream's end, the reader, the
  // restart state, `counters` (DC predictors or the EOB run) and the coefficients `undo` covers go back
  // to where the row started, and the row runs again once more bytes are in.
  private async row(r: BitReader, counters: Int32Array, undo: Undo | null, decodeRow: () => void): Promise<void> {
    for (;;) {
      const { pos, acc, bits, pad, atMarker } = r;
      const nextRestart = this.nextRestart;
      const exhausted = this.exhausted;
      const saving = !this.src.ended;
      if (saving) {
        this.saved.set(counters);
        undo?.save();
      }
      try {
        decodeRow();
        return;
      } catch (error) {
        if (!saving || !this.retryable(error)) throw error;
        r.acc = acc;
        r.bits = bits;
        r.pad = pad;
        r.atMarker = atMarker;
        this.nextRestart = nextRestart;
        this.exhausted = exhausted;
        counters.set(this.saved.subarray(0, counters.length));
        undo?.restore();
        const shift = await this.refill(atMarker ? pos - 1 : pos);
        r.pos = pos - shift;
        r.data = this.b;
      }
    }
  }

  // After the rows of a single-scan file Pillow calls jpeg_finish_decompress, which reads the markers up to
  // EOI: a broken one fails the whole decode, while the end of the file there is accepted.
  private async readTrailer(): Promise<void> {
    for (;;) {
      try {
        const m = nextMarker(this.b, this.pos);
        if (m < 0) {
          if (this.src.ended) return;
          throw truncatedJpeg();
        }
        const marker = this.b[m];
        if (marker === MARKER_EOI || marker === MARKER_SOS) return;
        // libjpeg judges the marker's type before it reads the segment, which may then suspend harmlessly.
        const table = marker === 0xc4 || marker === 0xdb || marker === 0xdd || marker === 0xcc || marker === 0xdc;
        const ignored = (marker >= 0xe0 && marker <= 0xef) || marker === 0xfe;
        if ((table || ignored) && (m + 3 > this.b.length || m + 1 + u16(this.b, m + 1) > this.b.length)) {
          if (this.src.ended) return checkCutSegment(this.b, marker, m + 1);
          throw truncatedJpeg();
        }
        this.readTableMarker(marker, m);
      } catch (error) {
        if (!this.retryable(error)) throw error;
        await this.refill(this.pos);
      }
    }
  }

  private readTableMarker(marker: number, m: number): void {
    const b = this.b;
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      this.pos = m + 1; // a stray restart marker: libjpeg ignores it
      return;
    }
    if (marker === 0xd8) throw corrupt("it has a second start-of-image marker");
    const end = segmentEnd(b, m + 1);
    const start = m + 3;
    if (marker === 0xc4) readHuffmanTables(b, start, end, this.tables);
    else if (marker === 0xdb) readQuantTables(b, start, end, this.tables);
    else if (marker === 0xcc) this.tables.conditioning = readConditioning(b, start, end, this.tables.conditioning);
    else if (marker === 0xdd) {
      if (end - start < 2) throw corrupt("its restart interval marker is cut short");
      this.tables.restartInterval = u16(b, start);
    } else if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      throw corrupt("it has two frame headers");
    } else if (!((marker >= 0xe0 && marker <= 0xef) || marker === 0xfe || marker === 0xcc || marker === 0xdc)) {
      throw corrupt(`it has an unknown marker 0xFF${marker.toString(16).toUpperCase()}`);
    }
    this.pos = end;
  }

  // libjpeg copies a component's quantization table when its first scan starts, and derives the Huffman
  // tables a scan uses when it starts (refusing missing or over-full ones).
  private latchTables(scan: Scan): void {
    const f = this.frame;
    for (const sc of scan.components) {
      const c = f.components[sc.index];
      if (!this.quants[sc.index]) {
        const q = this.tables.quant[c.quantIndex];
        if (!q) throw corrupt("a quantization table it uses is missing");
        this.quants[sc.index] = q;
      }
      if (f.arithmetic) continue;
      const needDc = !f.progressive || (scan.ss === 0 && scan.ah === 0);
      const needAc = !f.progressive || scan.ss > 0;
      if (needDc) checkTable(this.tables.dc[sc.dcTable], true);
      if (needAc) checkTable(this.tables.ac[sc.acTable], false);
    }
  }

  private restartCheck(r: BitReader): void {
    // libjpeg's process_restart + read_restart_marker + jpeg_resync_to_restart, in outline: the expected
    // RSTn is consumed; anything else is resolved the way jdmarker.c resolves it.
    r.reset();
    const b = this.b;
    let m = r.atMarker ? r.pos : nextMarker(b, r.pos);
    if (m < 0) throw truncatedJpeg();
    const expected = 0xd0 + this.nextRestart;
    this.nextRestart = (this.nextRestart + 1) & 7;
    for (;;) {
      const marker = b[m];
      let action: number;
      if (marker === expected) action = 1;
      else if (marker < 0xc0) action = 2;
      else if (marker < 0xd0 || marker > 0xd7) action = 3;
      else {
        const want = expected - 0xd0;
        const got = marker - 0xd0;
        if (got === ((want + 1) & 7) || got === ((want + 2) & 7)) action = 3;
        else if (got === ((want - 1) & 7) || got === ((want - 2) & 7)) action = 2;
        else action = 1;
      }
      if (action === 1) {
        r.pos = m + 1;
        r.atMarker = false;
        this.exhausted = false;
        return;
      }
      if (action === 3) {
        r.pos = m;
        r.atMarker = true;
        return;
      }
      m = nextMarker(b, m + 1);
      if (m < 0) throw truncatedJpeg();
    }
  }

  private nextRestart = 0;
  private exhausted = false; // libjpeg's insufficient_data for the current segment
  private arithmetic: ArithmeticState | undefined; // an arithmetic-coded file's statistics, for every scan

  // Sequential scan. Streaming: all components interleaved, each MCU row turned into samples as it comes.
  private async decodeSequential(scan: Scan, buffered: boolean): Promise<void> {
    const f = this.frame;
    const r = new BitReader(this.b, this.pos);
    const preds = new Int32Array(scan.components.length);
    const interleaved = scan.components.length > 1;
    const restart = this.tables.restartInterval;
    this.nextRestart = 0;
    this.exhausted = false;
    const dq = this.dequantized;
    const qs = scan.components.map((s) => this.quants[s.index] as Int32Array);
    const dcs = scan.components.map((s) => this.tables.dc[s.dcTable] as HuffmanTable);
    const acs = scan.components.map((s) => this.tables.ac[s.acTable] as HuffmanTable);
    const single = this.planes[scan.components[0].index];
    const mcusX = interleaved ? f.mcusPerLine : single.comp.blocksPerLine;
    const mcusY = interleaved ? f.mcusPerColumn : single.comp.blocksPerColumn;
    let blocksPerMcu = 0;
    for (const sc of scan.components)
      blocksPerMcu += interleaved ? f.components[sc.index].h * f.components[sc.index].v : 1;
    // With the wasm kernels, a streamed interleaved MCU row is decoded into their coefficient
    // band (each component's block rows, c.v of paddedBlocksPerLine blocks, one after the other) and goes
    // through the IDCT there in one call per component.
    const kernels = decodeKernels();
    const bandAt: number[] = [];
    let bandBlocks = 0;
    let bandOut = 0;
    for (const sc of scan.components) {
      const c = f.components[sc.index];
      bandAt.push(bandBlocks * 64);
      bandBlocks += c.v * c.paddedBlocksPerLine;
      const p = this.planes[sc.index];
      bandOut = Math.max(bandOut, p.bandRows * p.stride);
    }
    const banded = kernels !== null && !buffered && interleaved && kernels.fitsBand(bandBlocks, bandOut);
    const decodeRow = (my: number) => {
      if (banded) {
        this.decodeBandedRow(r, scan, my, preds, dcs, acs, qs, bandAt, bandBlocks);
        return;
      }
      for (let mx = 0, mcu = my * mcusX; mx < mcusX; mx++, mcu++) {
        if (restart > 0 && mcu > 0 && mcu % restart === 0) {
          this.restartCheck(r);
          preds.fill(0);
        }
        if (this.exhausted) {
          // Out of data in this segment: the blocks stay zero (libjpeg leaves them so), i.e. flat gray.
          if (!buffered) this.zeroMcu(scan, mx, my);
          continue;
        }
        for (let i = 0; i < scan.components.length; i++) {
          const p = this.planes[scan.components[i].index];
          const c = p.comp;
          const bh = interleaved ? c.h : 1;
          const bv = interleaved ? c.v : 1;
          for (let v = 0; v < bv; v++) {
            for (let h = 0; h < bh; h++) {
              const bx = interleaved ? mx * c.h + h : mx;
              const by = interleaved ? my * c.v + v : my;
              const out = ((my % 3) * p.bandRows + v * p.size) * p.stride + bx * p.size;
              if (!buffered && p.size === 1) {
                preds[i] = skipBlockAc(r, dcs[i], acs[i], preds[i]);
                dq[0] = ((preds[i] << 16) >> 16) * qs[i][0];
                idct1(dq, p.ring, out);
                continue;
              }
              dq.fill(0);
              preds[i] = decodeBlock(r, dcs[i], acs[i], dq, 0, buffered ? UNIT_QUANT : qs[i], preds[i]);
              if (buffered) this.storeBlock(p, bx, by);
              else p.idct(dq, p.ring, out, p.stride);
            }
          }
        }
        if (r.exhausted) this.exhausted = true;
      }
    };
    // A streamed row whose bytes have not all arrived runs again once they have: before each row, the
    // bytes of the largest row so far are awaited (within half the window), so that the decoder, when it
    // is ahead of the stream, waits instead of decoding most rows twice.
    let rowBytes = 0;
    for (let my = 0; my < mcusY; my++) {
      const start = this.src.offset + r.pos;
      const held = this.b.length - r.pos;
      const need = Math.min(rowBytes, this.src.maxWindowBytes >> 1);
      if (!this.src.ended && !r.atMarker && held < need) {
        r.pos -= await this.refill(r.pos, need - held);
        r.data = this.b;
      }
      await this.row(r, preds, null, () => decodeRow(my));
      if (!r.atMarker) rowBytes = Math.max(rowBytes, this.src.offset + r.pos - start);
      if (!buffered && my > 0) this.emitBand(my - 1);
      await this.worked(mcusX * blocksPerMcu);
    }
    this.pos = r.atMarker ? r.pos - 1 : r.pos;
  }

  // One MCU row of an interleaved streamed scan through the wasm kernels: every block Huffman-decoded into
  // the coefficient band (the MCUs between restart markers in one call; only the DC of a component at
  // scaled size 1), then each component's blocks through the IDCT into its ring. A block of a segment that
  // ran out of data stays zero, i.e. 128, as libjpeg leaves it.
  private decodeBandedRow(
    r: BitReader,
    scan: Scan,
    my: number,
    preds: Int32Array,
    dcs: HuffmanTable[],
    acs: HuffmanTable[],
    qs: Int32Array[],
    bandAt: number[],
    bandBlocks: number,
  ): void {
    const kernels = decodeKernels() as DecodeKernels;
    const { at } = kernels.coefficients(bandBlocks);
    const f = this.frame;
    const restart = this.tables.restartInterval;
    const n = scan.components.length;
    const layout: McuComponent[] = scan.components.map((sc, i) => {
      const c = f.components[sc.index];
      const dcOnly = this.planes[sc.index].size === 1;
      return { h: c.h, v: c.v, band: bandAt[i], perRow: c.paddedBlocksPerLine, dcOnly };
    });
    kernels.sequentialTables(dcs, acs, qs);
    for (let mx = 0, mcu = my * f.mcusPerLine; mx < f.mcusPerLine; ) {
      if (restart > 0 && mcu > 0 && mcu % restart === 0) {
        this.restartCheck(r);
        preds.fill(0);
      }
      let done = 1;
      if (!this.exhausted) {
        const mcus = restart > 0 ? Math.min(f.mcusPerLine - mx, restart - (mcu % restart)) : f.mcusPerLine - mx;
        done = kernels.decodeMcus(r, preds, layout, at, mx, mcus);
        if (done === MCUS_TRUNCATED) throw truncatedJpeg();
        if (done === MCUS_TOO_LARGE) {
          // More entropy data than the kernels' scratch holds: this MCU in JavaScript.
          const view = kernels.coefficientView();
          for (let i = 0; i < n; i++) {
            const c = layout[i];
            for (let v = 0; v < c.v; v++) {
              for (let h = 0; h < c.h; h++) {
                const off = at + c.band + (v * c.perRow + mx * c.h + h) * 64;
                if (c.dcOnly) {
                  preds[i] = skipBlockAc(r, dcs[i], acs[i], preds[i]);
                  view[off] = ((preds[i] << 16) >> 16) * qs[i][0];
                } else {
                  preds[i] = decodeBlock(r, dcs[i], acs[i], view, off, qs[i], preds[i]);
                }
              }
            }
          }
          done = 1;
        }
        if (r.exhausted) this.exhausted = true;
      }
      mx += done;
      mcu += done;
    }
    for (let i = 0; i < n; i++) {
      const p = this.planes[scan.components[i].index];
      const c = p.comp;
      const off = (my % 3) * p.bandRows * p.stride;
      if (p.size > 1) {
        kernels.idctBand(p.size, at + bandAt[i], c.paddedBlocksPerLine, c.v, p.ring, off, p.stride);
        continue;
      }
      // The 1x1 IDCT of each DC, which is zeroed again for the band's next use.
      const view = kernels.coefficientView();
      const dq = this.dequantized;
      for (let b = 0, o = at + bandAt[i]; b < c.v * c.paddedBlocksPerLine; b++, o += 64) {
        dq[0] = view[o];
        view[o] = 0;
        idct1(dq, p.ring, off + b);
      }
    }
    kernels.released();
  }

  private zeroMcu(scan: Scan, mx: number, my: number): void {
    // A block of zero coefficients decodes to 128 at every scale.
    for (const sc of scan.components) {
      const p = this.planes[sc.index];
      const c = p.comp;
      const s = p.size;
      for (let row = 0; row < c.v * s; row++) {
        const o = ((my % 3) * p.bandRows + row) * p.stride + mx * c.h * s;
        p.ring.fill(128, o, o + c.h * s);
      }
    }
  }

  // The decoded (not dequantized) block into the coefficient store; Int16Array stores wrap as JCOEF does.
  private storeBlock(p: Plane, bx: number, by: number): void {
    const coefs = p.coefs as Int16Array;
    const blk = this.dequantized;
    const n = by * p.comp.paddedBlocksPerLine + bx;
    if (p.kept === 64) {
      coefs.set(blk, n * 64);
      return;
    }
    const o = n * p.kept;
    const keep = p.keepIndex;
    for (let i = 0; i < 64; i++) if (keep[i] >= 0) coefs[o + keep[i]] = blk[i];
  }

  private async decodeProgressive(scan: Scan): Promise<void> {
    const f = this.frame;
    const { ss, se, ah, al } = scan;
    const restart = this.tables.restartInterval;
    const n = scan.components.length;
    this.progression(scan);
    if (ss === 0) {
      const dcs = scan.components.map((s) => this.tables.dc[s.dcTable] as HuffmanTable);
      const interleaved = n > 1;
      const single = this.planes[scan.components[0].index];
      const mcusX = interleaved ? f.mcusPerLine : single.comp.blocksPerLine;
      const mcusY = interleaved ? f.mcusPerColumn : single.comp.blocksPerColumn;
      let blocksPerMcu = 0;
      for (const sc of scan.components)
        blocksPerMcu += interleaved ? f.components[sc.index].h * f.components[sc.index].v : 1;
      await this.spend(mcusX * mcusY * blocksPerMcu);
      const r = new BitReader(this.b, this.pos);
      this.nextRestart = 0;
      this.exhausted = false;
      const preds = new Int32Array(n);
      // A scan's iMCU row: its MCU row when interleaved, else v of the component's block rows.
      const iMcuRow = (my: number) => (interleaved ? my : Math.floor(my / single.comp.iMcuBlockRows));
      // DC first scans assign and DC refinements OR a bit: a retried row rewrites the same values.
      const decodeRow = (my: number) => {
        const iRow = iMcuRow(my);
        for (let mx = 0, mcu = my * mcusX; mx < mcusX; mx++, mcu++) {
          // libjpeg notes the row as begun with data before the MCU's restart marker is read.
          if (!this.exhausted) this.lastGoodRow = iRow;
          if (restart > 0 && mcu > 0 && mcu % restart === 0) {
            this.restartCheck(r);
            preds.fill(0);
          }
          if (this.exhausted) continue;
          for (let i = 0; i < n; i++) {
            const p = this.planes[scan.components[i].index];
            const c = p.comp;
            const coefs = p.coefs as Int16Array;
            const bh = interleaved ? c.h : 1;
            const bv = interleaved ? c.v : 1;
            for (let v = 0; v < bv; v++) {
              for (let h = 0; h < bh; h++) {
                const bx = interleaved ? mx * c.h + h : mx;
                const by = interleaved ? my * c.v + v : my;
                const off = (by * c.paddedBlocksPerLine + bx) * p.kept;
                if (ah === 0) preds[i] = decodeDcFirst(r, dcs[i], coefs, off, preds[i], al);
                else decodeDcRefine(r, coefs, off, al);
              }
            }
          }
          if (r.exhausted) this.exhausted = true;
        }
      };
      const kernels = decodeKernels();
      if (kernels) kernels.progressiveTables(dcs, null);
      for (let my = 0; my < mcusY; my++) {
        const kernelRow = kernels
          ? () => this.decodeDcRowWithKernels(kernels, r, scan, my, iMcuRow(my), preds, decodeRow)
          : null;
        await this.row(r, preds, null, kernelRow ?? (() => decodeRow(my)));
        await this.worked(mcusX * blocksPerMcu);
      }
      this.pos = r.atMarker ? r.pos - 1 : r.pos;
      return;
    }
    // AC scans cover one component, block by block.
    const p = this.planes[scan.components[0].index];
    const c = p.comp;
    const ac = this.tables.ac[scan.components[0].acTable] as HuffmanTable;
    const coefs = p.coefs as Int16Array;
    await this.spend(c.blocksPerLine * c.blocksPerColumn * (se - ss + 1));
    const r = new BitReader(this.b, this.pos);
    this.nextRestart = 0;
    this.exhausted = false;
    const eobrun = new Int32Array(1);
    const full = p.kept === 64;
    const nz = p.nonzero as Uint32Array;
    const last = p.lastNonzero as Uint8Array;
    // No coefficient of the band is kept: refinement only tracks which are nonzero.
    const dropped = !Array.from(p.keptZigzag).some((k) => k >= ss && k <= se);
    // First scans assign (a retried row rewrites the same values); refinements add, so a row that may be
    // retried saves what it changes.
    if (ah > 0 && !this.src.ended && p.undo === null) p.undo = new Undo(p);
    const undo = ah > 0 ? p.undo : null;
    const decodeOne = (by: number, bx: number) => {
      const nb = by * c.paddedBlocksPerLine + bx;
      let run = eobrun[0];
      if (full) {
        run =
          ah === 0
            ? decodeAcFirst(r, ac, coefs, nb * 64, last, nb, ss, se, al, run)
            : decodeAcRefine(r, ac, coefs, nb * 64, last, nb, ss, se, al, run);
      } else {
        const o = nb * p.kept;
        if (ah === 0) run = decodeAcFirstCompact(r, ac, coefs, o, p.keepZigzag, nz, nb, ss, se, al, run);
        else if (dropped) run = decodeAcRefineDropped(r, ac, nz, nb, ss, se, run);
        else run = decodeAcRefineCompact(r, ac, coefs, o, p.keepZigzag, p.keptZigzag, nz, nb, ss, se, al, run);
      }
      eobrun[0] = run;
    };
    const decodeRow = (by: number) => {
      const iRow = Math.floor(by / c.iMcuBlockRows);
      for (let bx = 0, mcu = by * c.blocksPerLine; bx < c.blocksPerLine; bx++, mcu++) {
        if (!this.exhausted) this.lastGoodRow = iRow;
        if (restart > 0 && mcu > 0 && mcu % restart === 0) {
          this.restartCheck(r);
          eobrun[0] = 0;
        }
        if (this.exhausted) continue;
        decodeOne(by, bx);
        if (r.exhausted) this.exhausted = true;
      }
    };
    // With the wasm kernels, each block row is copied into their scratch, decoded there and copied back.
    const kernels = decodeKernels();
    let kind: number;
    if (full) kind = ah === 0 ? AC_FIRST_FULL : AC_REFINE_FULL;
    else kind = ah === 0 ? AC_FIRST_COMPACT : dropped ? AC_REFINE_DROPPED : AC_REFINE_COMPACT;
    if (kernels) kernels.progressiveTables([ac], full ? null : p.keepZigzag);
    const kernelRow = (by: number) => {
      const k = kernels as DecodeKernels;
      const first = by * c.paddedBlocksPerLine;
      const n = c.blocksPerLine;
      const keptCoefs = kind === AC_REFINE_DROPPED ? 0 : n * p.kept;
      const band = () =>
        full
          ? k.progressiveBand(coefs, first * p.kept, keptCoefs, last, first, n)
          : k.progressiveBand(coefs, first * p.kept, keptCoefs, nz, 2 * first, 2 * n);
      if (!band()) {
        decodeRow(by);
        return;
      }
      const iRow = Math.floor(by / c.iMcuBlockRows);
      try {
        for (let bx = 0, mcu = by * c.blocksPerLine; bx < n; ) {
          if (!this.exhausted) this.lastGoodRow = iRow;
          if (restart > 0 && mcu > 0 && mcu % restart === 0) {
            this.restartCheck(r);
            eobrun[0] = 0;
          }
          let done = 1;
          if (!this.exhausted) {
            const blocks = restart > 0 ? Math.min(n - bx, restart - (mcu % restart)) : n - bx;
            done = k.decodeAcBlocks(r, eobrun, bx, blocks, kind, p.kept, ss, se, al);
            if (done >= 2) this.lastGoodRow = iRow;
            if (done === MCUS_TRUNCATED) throw truncatedJpeg();
            if (done === MCUS_TOO_LARGE) {
              // More entropy data than the kernels' scratch holds: this block in JavaScript, on the store.
              k.progressiveBandBack();
              decodeOne(by, bx);
              band();
              done = 1;
            }
            if (r.exhausted) this.exhausted = true;
          }
          bx += done;
          mcu += done;
        }
      } finally {
        k.progressiveBandBack();
      }
    };
    for (let by = 0; by < c.blocksPerColumn; by++) {
      undo?.at(by);
      await this.row(r, eobrun, undo, kernels ? () => kernelRow(by) : () => decodeRow(by));
      await this.worked(c.blocksPerLine);
    }
    this.pos = r.atMarker ? r.pos - 1 : r.pos;
  }

  // One MCU row of a progressive DC scan through the wasm kernels: the DC coefficients of each component's
  // block rows of it gathered into their scratch (one int16 per block), decoded there (the MCUs between
  // restart markers in one call) and scattered back; in JavaScript (`decodeRow`) when they do not fit.
  private decodeDcRowWithKernels(
    kernels: DecodeKernels,
    r: BitReader,
    scan: Scan,
    my: number,
    iMcuRow: number,
    preds: Int32Array,
    decodeRow: (my: number) => void,
  ): void {
    const f = this.frame;
    const n = scan.components.length;
    const interleaved = n > 1;
    const mcusX = interleaved ? f.mcusPerLine : this.planes[scan.components[0].index].comp.blocksPerLine;
    let blocks = 0;
    for (const sc of scan.components) {
      const c = f.components[sc.index];
      blocks += (interleaved ? c.v : 1) * c.paddedBlocksPerLine;
    }
    const area = kernels.progressiveScratch(2 * blocks);
    if (!area) {
      decodeRow(my);
      return;
    }
    // Component i's DC values: `count` of them from block `first` of its store, at element `at` of memory.
    const spans: { p: Plane; first: number; count: number; at: number }[] = [];
    const layout: DcComponent[] = [];
    for (let i = 0, at = area.at; i < n; i++) {
      const p = this.planes[scan.components[i].index];
      const c = p.comp;
      const rows = interleaved ? c.v : 1;
      const count = rows * c.paddedBlocksPerLine;
      const first = my * count;
      const coefs = p.coefs as Int16Array;
      for (let b = 0, o = first * p.kept; b < count; b++, o += p.kept) area.view[at + b] = coefs[o];
      spans.push({ p, first, count, at });
      layout.push({ h: interleaved ? c.h : 1, v: rows, at: 2 * at, perRow: c.paddedBlocksPerLine, blockBytes: 2 });
      at += count;
    }
    const restart = this.tables.restartInterval;
    const refine = scan.ah > 0;
    const dcs = scan.components.map((s) => this.tables.dc[s.dcTable] as HuffmanTable);
    try {
      for (let mx = 0, mcu = my * mcusX; mx < mcusX; ) {
        if (!this.exhausted) this.lastGoodRow = iMcuRow;
        if (restart > 0 && mcu > 0 && mcu % restart === 0) {
          this.restartCheck(r);
          preds.fill(0);
        }
        let done = 1;
        if (!this.exhausted) {
          const mcus = restart > 0 ? Math.min(mcusX - mx, restart - (mcu % restart)) : mcusX - mx;
          done = kernels.decodeDcMcus(r, preds, layout, mx, mcus, refine, scan.al);
          // The kernels stop after an MCU that ran out of data, so a second one began with data.
          if (done >= 2) this.lastGoodRow = iMcuRow;
          if (done === MCUS_TRUNCATED) throw truncatedJpeg();
          if (done === MCUS_TOO_LARGE) {
            // More entropy data than the kernels' scratch holds: this MCU in JavaScript, in scratch.
            const view = kernels.int16View();
            for (let i = 0; i < n; i++) {
              const c = layout[i];
              for (let v = 0; v < c.v; v++) {
                for (let h = 0; h < c.h; h++) {
                  const off = (c.at + (v * c.perRow + mx * c.h + h) * c.blockBytes) >> 1;
                  if (refine) decodeDcRefine(r, view, off, scan.al);
                  else preds[i] = decodeDcFirst(r, dcs[i], view, off, preds[i], scan.al);
                }
              }
            }
            done = 1;
          }
          if (r.exhausted) this.exhausted = true;
        }
        mx += done;
        mcu += done;
      }
    } finally {
      const view = kernels.int16View();
      for (const { p, first, count, at } of spans) {
        const coefs = p.coefs as Int16Array;
        for (let b = 0, o = first * p.kept; b < count; b++, o += p.kept) coefs[o] = view[at + b];
      }
    }
  }

  // Counts a scan's coefficient visits against the budget before the scan is decoded. A streamed file of
  // unknown length is judged by the bytes arrived so far; over the budget, it waits for more of them.
  private async spend(visits: number): Promise<void> {
    const stats = this.d.stats;
    const fileBytes = () => this.src.length ?? this.src.offset + this.b.length;
    while (
      stats.coefficientVisits + visits > this.d.visitBudget(this.blocks, fileBytes()) &&
      !this.src.ended &&
      this.src.length === null &&
      this.b.length < this.src.maxWindowBytes
    ) {
      await this.refill(this.pos);
    }
    stats.coefficientVisits += visits;
    if (stats.coefficientVisits > this.d.visitBudget(this.blocks, fileBytes())) {
      throw new EdgevitError(
        "invalid_image",
        "The JPEG's progressive scans need far more decoding work than its size warrants; it is refused as a likely decompression bomb.",
      );
    }
  }

  // libjpeg's progression bookkeeping as a progressive scan starts (jdphuff.c, jdarith.c start_pass): the
  // coefficients' bits still unknown (coef_bits, -1 before any scan), and for coefficients min(Ss, 1) to
  // max(Se, 9) the same as they were before this scan (0 when it is the file's first).
  private progression(scan: Scan): void {
    for (const sc of scan.components) {
      const bits = this.coefBits[sc.index];
      const prev = this.prevBits[sc.index];
      for (let k = Math.min(scan.ss, 1); k <= Math.max(scan.se, 9) && k < SAVED_COEFS; k++) {
        prev[k] = this.scanCount > 1 ? bits[k] : 0;
      }
      for (let k = scan.ss; k <= scan.se; k++) bits[k] = scan.al;
    }
  }

  // libjpeg's smoothing_ok (jdcoefct.c), decided once the file is read (Pillow does not use buffered-image
  // mode): block smoothing runs when every component has a scan, a DC scan and nonzero quantization values
  // at the ten positions the estimates divide by, and some component's coefficients 1..9 (zigzag) are not
  // exact yet. Returns coef_bits 0..9 latched per component, and the previous ones (-1 after one scan).
  private smoothingLatch(): { current: Int8Array[]; prev: Int8Array[] } | null {
    if (!this.frame.progressive) return null;
    let useful = false;
    const current: Int8Array[] = [];
    const prev: Int8Array[] = [];
    for (let ci = 0; ci < this.planes.length; ci++) {
      const q = this.quants[ci];
      if (!q) return null;
      for (const z of SMOOTHED) if (q[z] === 0) return null;
      const bits = this.coefBits[ci];
      if (bits[0] < 0) return null;
      const now = bits.slice(0, SAVED_COEFS);
      const before = new Int8Array(SAVED_COEFS);
      for (let k = 1; k < SAVED_COEFS; k++) {
        before[k] = this.scanCount > 1 ? this.prevBits[ci][k] : -1;
        if (now[k] !== 0) useful = true;
      }
      current.push(now);
      prev.push(before);
    }
    return useful ? { current, prev } : null;
  }

  // jdcoefct.c decompress_smooth_data for one component's blocks in MCU row `row`: a copy of its block rows
  // in which coefficients 1..9 (zigzag) that are still zero and not known exactly are estimated from the DC
  // values of the 5x5 blocks around (Q00 times a weighted sum over 256 times the coefficient's quantization
  // value, rounded, and below 2^Al in magnitude where Al > 0 bits are unknown). When no AC coefficient has
  // arrived (all of 1..9 at -1) the nine use a wider kernel and the DC is re-estimated too. Past the
  // picture's edges the neighbours are the rows and columns libjpeg picks (mostly the nearest ones). A
  // coefficient the store does not keep is one the IDCT at this scale does not read: it is skipped.
  private smoothBand(p: Plane, ci: number, row: number, current: Int8Array, prev: Int8Array): Int16Array {
    const c = p.comp;
    const kept = p.kept;
    const perRow = c.paddedBlocksPerLine;
    const store = p.coefs as Int16Array;
    const rows = Math.max(0, Math.min(c.v, c.blocksPerColumn - row * c.v));
    const band = this.smoothScratch(rows * perRow * kept);
    const first = row * c.v * perRow * kept;
    band.set(store.subarray(first, first + rows * perRow * kept));
    const q = this.quants[ci] as Int32Array;
    const keep = p.keepIndex;
    // libjpeg's iMCU rows of this component: v block rows each (a single component's declared v).
    const v = c.iMcuBlockRows;
    const lastRow = Math.ceil(c.blocksPerColumn / v) - 1;
    const lastColumn = c.blocksPerLine - 1;
    const q00 = q[0];
    const dc = this.smoothDc;
    const rowAt = [0, 0, 0, 0, 0]; // first coefficient of the five block rows read, in the store
    for (let b = row * c.v; b < row * c.v + rows; b++) {
      const iRow = Math.floor(b / v);
      const br = b - iRow * v;
      const blockRows = iRow < lastRow ? v : c.blocksPerColumn % v || v;
      // Rows after the last one the final scan began with data: the progression before that scan.
      const bits = iRow > this.lastGoodRow ? prev : current;
      let changeDc = true;
      for (let k = 1; k < SAVED_COEFS; k++) if (bits[k] !== -1) changeDc = false;
      const estimates = changeDc ? WIDE : NARROW;
      const prevRow = br > 0 || iRow > 0 ? b - 1 : b;
      const prevPrev = br > 1 || iRow > 1 ? b - 2 : prevRow;
      const next = br < blockRows - 1 || iRow < lastRow ? b + 1 : b;
      const nextNext = br < blockRows - 2 || iRow + 1 < lastRow ? b + 2 : next;
      rowAt[0] = prevPrev * perRow * kept;
      rowAt[1] = prevRow * perRow * kept;
      rowAt[2] = b * perRow * kept;
      rowAt[3] = next * perRow * kept;
      rowAt[4] = nextNext * perRow * kept;
      // dc[5 * r + k]: DC of block row r (two above .. two below) at column offset k - 2, as libjpeg's sliding
      // registers DC01..DC25 hold them (all five start at column 0; on a two-block row the right neighbours
      // past the edge stay at column 0).
      for (let r = 0; r < 5; r++) dc.fill(store[rowAt[r]], 5 * r, 5 * r + 5);
      for (let bx = 0; bx <= lastColumn; bx++) {
        if (bx === 0 && bx < lastColumn) for (let r = 0; r < 5; r++) dc[5 * r + 3] = store[rowAt[r] + kept];
        if (bx + 1 < lastColumn) for (let r = 0; r < 5; r++) dc[5 * r + 4] = store[rowAt[r] + (bx + 2) * kept];
        const o = ((b - row * c.v) * perRow + bx) * kept;
        for (let e = 0; e < estimates.length; e++) {
          const al = bits[e + 1];
          const slot = keep[SMOOTHED[e + 1]];
          if (al === 0 || slot < 0 || band[o + slot] !== 0) continue;
          band[o + slot] = estimate(q00 * weighted(estimates[e], dc), q[SMOOTHED[e + 1]], al);
        }
        if (changeDc) band[o] = estimate(q00 * weighted(DC_WEIGHTS, dc), q00, -1);
        for (let i = 0; i < 25; i += 5) {
          dc[i] = dc[i + 1];
          dc[i + 1] = dc[i + 2];
          dc[i + 2] = dc[i + 3];
          dc[i + 3] = dc[i + 4];
        }
      }
    }
    return band;
  }

  private readonly smoothDc = new Int32Array(25);
  private smoothed: Int16Array = new Int16Array(0);

  private smoothScratch(n: number): Int16Array {
    if (this.smoothed.length < n) this.smoothed = new Int16Array(n);
    return this.smoothed.subarray(0, n);
  }

  // An arithmetic-coded scan (./arithmetic.ts). Its bytes are in the window before it starts, as far as
  // the Pillow read that brought in its header reaches (or the file's end); nothing is retried, and data
  // that runs out inside the scan refuses the file, as it does in Pillow. A sequential scan's blocks go as
  // the Huffman path's do (into the rings, or the coefficient store); progressive bands into the store.
  private async decodeArithmetic(scan: Scan, buffered: boolean): Promise<void> {
    const f = this.frame;
    const src = this.src;
    const { ss, se, ah, al } = scan;
    const n = scan.components.length;
    const interleaved = n > 1;
    const single = this.planes[scan.components[0].index];
    const mcusX = interleaved ? f.mcusPerLine : single.comp.blocksPerLine;
    const mcusY = interleaved ? f.mcusPerColumn : single.comp.blocksPerColumn;
    let blocksPerMcu = 0;
    for (const sc of scan.components) {
      blocksPerMcu += interleaved ? f.components[sc.index].h * f.components[sc.index].v : 1;
    }
    if (f.progressive) {
      this.progression(scan);
      // jdarith.c never sets insufficient_data: every iMCU row of the scan counts as begun with data.
      this.lastGoodRow = Number.MAX_SAFE_INTEGER;
      await this.spend(mcusX * mcusY * blocksPerMcu * (se - ss + 1));
    }
    this.arithmetic ??= new ArithmeticState();
    const readEnd = pillowReadEnd(src.offset + this.pos, src.length ?? Number.POSITIVE_INFINITY);
    while (!src.ended && src.offset + this.b.length < readEnd) await this.refill(this.pos);
    const fileEnd = src.ended ? src.offset + this.b.length : (src.length ?? Number.POSITIVE_INFINITY);
    const end = Math.min(readEnd, fileEnd);
    const arith = new ArithmeticDecoder(
      this.b,
      this.pos,
      end - src.offset,
      end === fileEnd,
      end,
      this.tables.conditioning,
      f.progressive,
      scan,
      this.arithmetic,
    );
    const restart = this.tables.restartInterval;
    const dq = this.dequantized;
    const qs = scan.components.map((s) => this.quants[s.index] as Int32Array);
    for (let my = 0; my < mcusY; my++) {
      for (let mx = 0, mcu = my * mcusX; mx < mcusX; mx++, mcu++) {
        if (restart > 0 && mcu > 0 && mcu % restart === 0) arith.restart();
        for (let i = 0; i < n; i++) {
          const p = this.planes[scan.components[i].index];
          const c = p.comp;
          const coefs = p.coefs as Int16Array;
          for (let v = 0; v < (interleaved ? c.v : 1); v++) {
            for (let h = 0; h < (interleaved ? c.h : 1); h++) {
              const bx = interleaved ? mx * c.h + h : mx;
              const by = interleaved ? my * c.v + v : my;
              const o = (by * c.paddedBlocksPerLine + bx) * p.kept;
              if (!f.progressive) {
                dq.fill(0);
                arith.sequentialBlock(i, dq);
                if (buffered) {
                  this.storeBlock(p, bx, by);
                  continue;
                }
                for (let z = 0; z < 64; z++) dq[z] *= qs[i][z];
                p.idct(dq, p.ring, ((my % 3) * p.bandRows + v * p.size) * p.stride + bx * p.size, p.stride);
              } else if (ss === 0) {
                if (ah === 0) arith.dcFirst(i, coefs, o, al);
                else arith.dcRefine(coefs, o, al);
              } else {
                const nb = by * c.paddedBlocksPerLine + bx;
                if (ah === 0) arith.acFirst(coefs, o, p.keepZigzag, p.nonzero, nb, al);
                else arith.acRefine(coefs, o, p.keepZigzag, p.nonzero, nb, al);
              }
            }
          }
        }
      }
      if (!buffered && my > 0) this.emitBand(my - 1);
      await this.worked(mcusX * blocksPerMcu);
    }
    this.pos = arith.after;
  }

  // The IDCT of a component's blocks in MCU row `row`, from the store or from `band` (those block rows alone,
  // smoothed).
  private idctBandFromCoefs(p: Plane, row: number, band: Int16Array | null = null): void {
    const c = p.comp;
    const q = this.quants[this.planes.indexOf(p)];
    const s = p.size;
    const slot = (row % 3) * p.bandRows;
    const coefs = band ?? (p.coefs as Int16Array);
    const base = band ? 0 : row * c.v * c.paddedBlocksPerLine * p.kept; // the band's first block in `coefs`
    if (!q) {
      // A component no scan ever covered: libjpeg outputs zero coefficients, i.e. 128.
      p.ring.fill(128, slot * p.stride, (slot + p.bandRows) * p.stride);
      return;
    }
    const kernels = decodeKernels();
    if (kernels && p.kept > 1 && kernels.fitsBand(c.v * c.paddedBlocksPerLine, p.bandRows * p.stride)) {
      // The band's blocks (padding columns included, so the whole ring row is written) dequantized into
      // the kernels' coefficient band, then one IDCT call. A compact block's kept coefficients go to their
      // natural positions; the others stay zero, as the band is between uses.
      const rows = Math.min(c.v, c.blocksPerColumn - row * c.v);
      const perRow = c.paddedBlocksPerLine;
      const { at } = kernels.coefficients(rows * perRow);
      kernels.dequantize(coefs, base, rows * perRow, p.kept, p.keptNatural, q, at);
      if (rows > 0) kernels.idctBand(s, at, perRow, rows, p.ring, slot * p.stride, p.stride);
      kernels.released();
      return;
    }
    const dq = this.dequantized;
    const natural = p.keptNatural;
    for (let v = 0; v < c.v; v++) {
      const by = row * c.v + v;
      if (by >= c.blocksPerColumn) break;
      for (let bx = 0; bx < c.blocksPerLine; bx++) {
        const o = base + (v * c.paddedBlocksPerLine + bx) * p.kept;
        const out = (slot + v * s) * p.stride + bx * s;
        if (p.kept === 64) {
          for (let i = 0; i < 64; i++) dq[i] = coefs[o + i] * q[i];
        } else if (p.kept === 1) {
          dq[0] = coefs[o] * q[0];
          idct1(dq, p.ring, out);
          continue;
        } else {
          dq.fill(0);
          for (let i = 0; i < p.kept; i++) dq[natural[i]] = coefs[o + i] * q[natural[i]];
        }
        p.idct(dq, p.ring, out, p.stride);
      }
    }
  }

  // Upsamples and converts the output rows of MCU row `band` (whose neighbours are still in the rings).
  private emitBand(band: number): void {
    const first = band * this.bandHeight;
    const count = Math.min(this.bandHeight, this.outHeight - first);
    if (count <= 0) return;
    const w = this.outWidth;
    const out = this.out;
    const planes = this.planes;
    const n = planes.length;
    const arrays: Uint8Array[] = new Array(n);
    const offsets: number[] = new Array(n);
    const [p0, p1, p2] = planes;
    const fused = this.d.colorSpace === "ycbcr" && p0.method === "full" && p1.method === "h2v2" && p2.method === "h2v2";
    const kernels = decodeKernels();
    // YCbCr with every component at full resolution (4:2:0 at 1/2 and below: the chroma IDCT scaled up),
    // the band's rows in one kernel call: they lie one after the other in each ring.
    if (
      kernels &&
      this.d.colorSpace === "ycbcr" &&
      p0.method === "full" &&
      p1.method === "full" &&
      p2.method === "full" &&
      p1.stride === p2.stride &&
      consecutive(p0, first, count) &&
      consecutive(p1, first, count) &&
      consecutive(p2, first, count) &&
      kernels.fitsYccRows(p0.stride, p1.stride, w, count)
    ) {
      const yo = rowOffset(p0, first);
      kernels.yccRows(
        p0.ring,
        yo,
        p0.stride,
        p1.ring,
        rowOffset(p1, first),
        p2.ring,
        rowOffset(p2, first),
        p1.stride,
        out,
        0,
        w,
        count,
      );
      this.sink(count === this.bandHeight ? out : out.subarray(0, count * w * 3), first, count);
      return;
    }
    const fusedRow = kernels?.fitsRow(w) ? kernels.h2v2YccRow.bind(kernels) : h2v2YccRow;
    for (let i = 0; i < count; i++) {
      const y = first + i;
      if (fused) {
        const near = y >> 1;
        const far = y & 1 ? near + 1 : near - 1;
        const cbNear = rowOffset(p1, near);
        const crNear = rowOffset(p2, near);
        const cbFar = rowOffset(p1, far);
        const crFar = rowOffset(p2, far);
        fusedRow(
          p0.ring,
          rowOffset(p0, y),
          p1.ring,
          cbNear,
          cbFar,
          p2.ring,
          crNear,
          crFar,
          p1.width,
          out,
          i * w * 3,
          w,
        );
        continue;
      }
      for (let ci = 0; ci < n; ci++) {
        const p = planes[ci];
        if (p.method === "full") {
          arrays[ci] = p.ring;
          offsets[ci] = rowOffset(p, y);
          continue;
        }
        let near: number;
        let far = 0;
        if (p.method === "replicate") near = rowOffset(p, Math.floor(y / p.vExpand));
        else if (p.method === "h2v1") near = rowOffset(p, y);
        else {
          near = rowOffset(p, y >> 1);
          far = rowOffset(p, y & 1 ? (y >> 1) + 1 : (y >> 1) - 1);
        }
        upsampleRow(p.method, p.hExpand, p.width, p.ring, near, far, (y & 1) === 1, p.upsampled, w);
        arrays[ci] = p.upsampled;
        offsets[ci] = 0;
      }
      const o = i * w * 3;
      switch (this.d.colorSpace) {
        case "gray":
          grayToRgb(arrays[0], offsets[0], out, o, w);
          break;
        case "ycbcr":
          yccToRgb(arrays[0], offsets[0], arrays[1], offsets[1], arrays[2], offsets[2], out, o, w);
          break;
        case "rgb":
          rgbToRgb(arrays[0], offsets[0], arrays[1], offsets[1], arrays[2], offsets[2], out, o, w);
          break;
        default:
          cmykToRgb(arrays, offsets, this.d.colorSpace === "ycck", out, o, w);
      }
    }
    this.sink(count === this.bandHeight ? out : out.subarray(0, count * w * 3), first, count);
  }
}

// Offset in the plane's ring of component row r, clamped to the rows the component has (libjpeg repeats the
// first and last rows as context for the vertical filters).
function rowOffset(p: Plane, r: number): number {
  const rr = r < 0 ? 0 : r >= p.height ? p.height - 1 : r;
  const band = (rr / p.bandRows) | 0;
  return ((band % 3) * p.bandRows + (rr - band * p.bandRows)) * p.stride;
}

// Whether rows r..r + count - 1 of the plane lie one after the other in its ring (one band, none clamped).
function consecutive(p: Plane, r: number, count: number): boolean {
  return r + count <= p.height && rowOffset(p, r + count - 1) - rowOffset(p, r) === (count - 1) * p.stride;
}

function checkTable(t: HuffmanTable | null, dc: boolean): void {
  if (!t) throw corrupt("a Huffman table it uses is missing");
  if (!t.valid) throw corrupt("a Huffman table has more codes than its lengths allow");
  if (dc && t.maxSymbol > 15) throw corrupt("a DC Huffman table has a symbol above 15");
}
