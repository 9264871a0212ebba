// WebP lossy (VP8 key frames), as libwebp 1.2.4 decodes them for Pillow: the boolean decoder with libwebp's
// end-of-data rule, the frame header (segments, loop filter, token partitions, quantizers, coefficient
// probabilities), intra modes, tokens, the inverse WHT and DCT, intra prediction with libwebp's borders
// (127 above the frame, 129 left of it), the simple and complex loop filters, and the output libwebp's
// RGBA decoding gives: fancy upsampling of the chroma and its fixed-point YUV->RGB (yuv.h).
// Rows are emitted as each macroblock row is filtered: the planes hold that row and what the next one's
// loop filter and the upsampler still read of the one before (Y_KEEP luma and UV_KEEP chroma rows).
// With the decode kernels installed (../kernels.ts, assembly/image/vp8-*.ts), a macroblock row's tokens,
// prediction, inverse transforms and loop filter run in one kernel call and the output lines four at a time
// in another; the JavaScript here is their twin, and the path without them (or for frames too wide).

import { AC_TABLE, BMODES_PROBA, COEFFS_PROBA0, COEFFS_UPDATE_PROBA, DC_TABLE } from "./vp8-tables.ts";
import { yieldToOthers } from "../bytes.ts";
import { decodeKernels } from "../kernels.ts";
import { WebpError } from "./vp8l.ts";

// libwebp's VP8BitReader, a byte at a time: `range` is kept minus one, `bits` counts the bits of `value`
// below the 8 in use; reading past the end appends one zero byte and flags eof, which the decoder checks
// after each macroblock and each row of modes.
class BoolReader {
  // Public for the token kernel (../kernels.ts vp8DecodeRow), which reads and writes them back.
  value = 0;
  range = 254;
  bits = -8;
  pos: number;
  readonly data: Uint8Array;
  readonly end: number;
  eof = false;
  constructor(data: Uint8Array, start: number, end: number) {
    this.data = data;
    this.end = end;
    this.pos = start;
    this.load();
  }
  // Three bytes at once while they are there (libwebp loads a machine word), then the last ones one by one.
  // `value` stays below (range + 1) << bits < 2^31.
  private load(): void {
    const pos = this.pos;
    if (pos + 3 <= this.end) {
      this.bits += 24;
      this.value = (this.value << 24) | (this.data[pos] << 16) | (this.data[pos + 1] << 8) | this.data[pos + 2];
      this.pos = pos + 3;
    } else if (pos < this.end) {
      this.bits += 8;
      this.value = this.data[this.pos++] | (this.value << 8);
    } else if (!this.eof) {
      this.value <<= 8;
      this.bits += 8;
      this.eof = true;
    } else {
      this.bits = 0;
    }
  }
  bit(prob: number): number {
    if (this.bits < 0) this.load();
    const pos = this.bits;
    const split = (this.range * prob) >>> 8;
    const value = this.value >>> pos;
    let range: number;
    let bit = 0;
    if (value > split) {
      range = this.range - split;
      this.value -= (split + 1) << pos;
      bit = 1;
    } else {
      range = split + 1;
    }
    const shift = 7 ^ (31 - Math.clz32(range));
    this.bits -= shift;
    this.range = (range << shift) - 1;
    return bit;
  }
  // VP8GetSigned: a sign at probability 1/2, with libwebp's one-bit renormalisation.
  signed(v: number): number {
    if (this.bits < 0) this.load();
    const pos = this.bits;
    const split = this.range >>> 1;
    const value = this.value >>> pos;
    const mask = (split - value) >> 31; // -1 when the bit is 1
    this.bits -= 1;
    this.range = (this.range + mask) | 1;
    this.value -= ((split + 1) & mask) << pos;
    return (v ^ mask) - mask;
  }
  // The hot spot of lossy decoding: one 4x4 block's coefficient tokens from position n, dequantized into
  // out[at + ZIGZAG[k]] (libwebp's GetCoeffs); returns the last non-zero position plus one. The decisions
  // nearly every coefficient takes (end of block, zero, one, sign) run on the registers held in locals, as
  // bit() and signed() would; a larger value is read through bit().
  coefficients(
    proba: Uint8Array,
    type: number,
    ctx: number,
    dc: number,
    ac: number,
    n: number,
    out: Int16Array,
    at: number,
  ): number {
    let value = this.value;
    let range = this.range;
    let bits = this.bits;
    let p = ((type * 8 + BANDS[n]) * 3 + ctx) * 11;
    let end = 16;
    let split: number;
    let shift: number;
    tokens: for (; n < 16; n++) {
      // End of block?
      if (bits < 0) {
        this.value = value;
        this.bits = bits;
        this.load();
        value = this.value;
        bits = this.bits;
      }
      split = (range * proba[p]) >>> 8;
      const more = value >>> bits > split;
      if (more) {
        range -= split;
        value -= (split + 1) << bits;
      } else range = split + 1;
      shift = 7 ^ (31 - Math.clz32(range));
      bits -= shift;
      range = (range << shift) - 1;
      if (!more) {
        end = n;
        break;
      }
      // Zeros, each moving to the next position's probabilities.
      for (;;) {
        if (bits < 0) {
          this.value = value;
          this.bits = bits;
          this.load();
          value = this.value;
          bits = this.bits;
        }
        split = (range * proba[p + 1]) >>> 8;
        const nonzero = value >>> bits > split;
        if (nonzero) {
          range -= split;
          value -= (split + 1) << bits;
        } else range = split + 1;
        shift = 7 ^ (31 - Math.clz32(range));
        bits -= shift;
        range = (range << shift) - 1;
        if (nonzero) break;
        n++;
        p = (type * 8 + BANDS[n]) * 3 * 11;
        if (n === 16) break tokens;
      }
      const next = (type * 8 + BANDS[n + 1]) * 3;
      // One, or more.
      if (bits < 0) {
        this.value = value;
        this.bits = bits;
        this.load();
        value = this.value;
        bits = this.bits;
      }
      split = (range * proba[p + 2]) >>> 8;
      let v = 1;
      const large = value >>> bits > split;
      if (large) {
        range -= split;
        value -= (split + 1) << bits;
      } else range = split + 1;
      shift = 7 ^ (31 - Math.clz32(range));
      bits -= shift;
      range = (range << shift) - 1;
      if (large) {
        this.value = value;
        this.range = range;
        this.bits = bits;
        v = this.largeValue(proba, p);
        value = this.value;
        range = this.range;
        bits = this.bits;
        p = (next + 2) * 11;
      } else p = (next + 1) * 11;
      // The sign, at probability 1/2 (signed()).
      if (bits < 0) {
        this.value = value;
        this.bits = bits;
        this.load();
        value = this.value;
        bits = this.bits;
      }
      split = range >>> 1;
      const mask = (split - (value >>> bits)) >> 31; // -1 when the bit is 1
      range = (range + mask) | 1;
      value -= ((split + 1) & mask) << bits;
      bits -= 1;
      out[at + ZIGZAG[n]] = ((v ^ mask) - mask) * (n > 0 ? ac : dc);
    }
    this.value = value;
    this.range = range;
    this.bits = bits;
    return end;
  }

  // A coefficient's value above 1, its first decision taken (GetLargeValue).
  private largeValue(proba: Uint8Array, p: number): number {
    if (!this.bit(proba[p + 3])) return !this.bit(proba[p + 4]) ? 2 : 3 + this.bit(proba[p + 5]);
    if (!this.bit(proba[p + 6])) {
      return !this.bit(proba[p + 7]) ? 5 + this.bit(159) : 7 + 2 * this.bit(165) + this.bit(145);
    }
    const bit1 = this.bit(proba[p + 8]);
    const bit0 = this.bit(proba[p + 9 + bit1]);
    const cat = 2 * bit1 + bit0;
    const probas = CAT3456[cat];
    let v = 0;
    for (let i = 0; i < probas.length; i++) v = 2 * v + this.bit(probas[i]);
    return v + 3 + (8 << cat);
  }

  literal(n: number): number {
    let v = 0;
    while (n-- > 0) v |= this.bit(0x80) << n;
    return v;
  }
  signedLiteral(n: number): number {
    const v = this.literal(n);
    return this.bit(0x80) ? -v : v;
  }
}

export function vp8Info(data: Uint8Array): { width: number; height: number } {
  if (data.length < 10) throw new WebpError("a lossy header shorter than 10 bytes");
  const bits = data[0] | (data[1] << 8) | (data[2] << 16);
  if (bits & 1) throw new WebpError("a lossy image that is not a key frame");
  if (((bits >> 1) & 7) > 3 || !((bits >> 4) & 1) || bits >> 5 >= data.length) {
    throw new WebpError("a lossy frame header with invalid fields");
  }
  if (data[3] !== 0x9d || data[4] !== 0x01 || data[5] !== 0x2a) throw new WebpError("a lossy start code missing");
  const width = (data[6] | (data[7] << 8)) & 0x3fff;
  const height = (data[8] | (data[9] << 8)) & 0x3fff;
  if (width === 0 || height === 0) throw new WebpError("a lossy image of zero size");
  return { width, height };
}

const BPS = 32; // the work buffer's stride, as libwebp's yuv_b_
const Y_OFF = BPS + 8;
const U_OFF = Y_OFF + BPS * 16 + BPS;
const V_OFF = U_OFF + 16;
const ZIGZAG = Uint8Array.of(0, 1, 4, 8, 5, 2, 3, 6, 9, 12, 13, 10, 7, 11, 14, 15);
const BANDS = Uint8Array.of(0, 1, 2, 3, 6, 4, 5, 6, 6, 6, 6, 6, 6, 6, 6, 7, 0);
const CAT3456 = [
  [173, 148, 140],
  [176, 155, 140, 135],
  [180, 157, 141, 134, 130],
  [254, 254, 243, 230, 196, 177, 153, 140, 133, 130, 129],
];
const SCAN = Array.from({ length: 16 }, (_, n) => (n & 3) * 4 + (n >> 2) * 4 * BPS);

// Modes (libwebp's numbering): B_DC 0, B_TM 1, B_VE 2, B_HE 3, B_RD 4, B_VR 5, B_LD 6, B_VL 7, B_HD 8, B_HU 9;
// 16x16 and chroma use DC 0, TM 1, V 2, H 3, plus DC without top 4, without left 5, without either 6.

const clip8 = (v: number) => (v < 0 ? 0 : Math.min(v, 255));
const avg3 = (a: number, b: number, c: number) => (a + 2 * b + c + 2) >> 2;
const avg2 = (a: number, b: number) => (a + b + 1) >> 1;
// Words from one 32-bit view into another: the reconstruction's row moves.
function copy32(from: Uint32Array, at: number, to: Uint32Array, dst: number, words: number): void {
  for (let i = 0; i < words; i++) to[dst + i] = from[at + i];
}
// The transforms' scratch (they run to completion between two yields).
const TMP = new Int32Array(16);

interface Segment {
  y1: [number, number];
  y2: [number, number];
  uv: [number, number];
}

interface FilterInfo {
  limit: number; // 0: none
  ilevel: number;
  hevThresh: number;
  inner: boolean; // a 4x4-predicted macroblock's inner edges are filtered even without coefficients
}

interface Macroblock {
  segment: number;
  skip: number;
  i4x4: boolean;
  modes: Uint8Array; // 16 4x4 modes, or [0] the 16x16 mode
  uvMode: number;
}

function mulHi(v: number, coeff: number): number {
  return (v * coeff) >> 8;
}
function yuvClip(v: number): number {
  return (v & ~16383) === 0 ? v >> 6 : v < 0 ? 0 : 255;
}

// After macroblock row m is filtered, the next row's filter changes at most its last 3 luma and 3 chroma
// rows (and reads 4), so output rows up to 16m + 8 are final: their chroma neighbours, rows up to 8m + 4,
// are too. What is kept for the rows after them: luma from 16m + 8, chroma from 8m + 3.
const Y_KEEP = 8;
const UV_KEEP = 5;

// The planes' bytes for a frame `width` wide: Y_KEEP + 16 luma rows and UV_KEEP + 8 rows of each chroma
// plane, the macroblock columns padded to 16, a macroblock row's modes, the fixed work buffers (coefficient
// probabilities, the prediction buffer, a macroblock's coefficients) and the band of RGB rows the kernels
// convert.
const WORK_BYTES = 4096;
// A macroblock row's modes (18) and the token kernel's bytes (4) per column.
const ROW_BYTES = 18 + 4;
// With the wasm kernels, output lines are converted EMIT_ROWS at a time into a band of RGB rows.
const EMIT_ROWS = 4;
export function vp8PlaneBytes(width: number): number {
  const mbW = (width + 15) >> 4;
  const planes = mbW * 16 * (Y_KEEP + 16) + 2 * mbW * 8 * (UV_KEEP + 8);
  return planes + mbW * ROW_BYTES + WORK_BYTES + EMIT_ROWS * 3 * width;
}

// Decodes the frame, handing `row` its RGB rows top to bottom (the array is reused) as soon as they are
// final, and yielding to the event loop every few macroblock rows.
export async function decodeVp8(data: Uint8Array, row: (rgb: Uint8Array) => void): Promise<void> {
  const { width, height } = vp8Info(data);
  const mbW = (width + 15) >> 4;
  const mbH = (height + 15) >> 4;
  const first = (data[0] | (data[1] << 8) | (data[2] << 16)) >> 5;
  let at = 10;
  if (first > data.length - at) throw new WebpError("a first partition longer than the data");
  const br = new BoolReader(data, at, at + first);
  at += first;
  br.literal(1); // colour space
  br.literal(1); // clamping type

  // Segments.
  const useSegment = br.literal(1);
  let updateMap = 0;
  let absoluteDelta = 1;
  const quantizer = [0, 0, 0, 0];
  const filterStrength = [0, 0, 0, 0];
  const segmentProba = [255, 255, 255];
  if (useSegment) {
    updateMap = br.literal(1);
    if (br.literal(1)) {
      absoluteDelta = br.literal(1);
      for (let s = 0; s < 4; s++) quantizer[s] = br.literal(1) ? br.signedLiteral(7) : 0;
      for (let s = 0; s < 4; s++) filterStrength[s] = br.literal(1) ? br.signedLiteral(6) : 0;
    }
    if (updateMap) for (let s = 0; s < 3; s++) segmentProba[s] = br.literal(1) ? br.literal(8) : 255;
  }
  if (br.eof) throw new WebpError("the segment header is truncated");

  // Loop filter.
  const simple = br.literal(1);
  const level = br.literal(6);
  const sharpness = br.literal(3);
  const useLfDelta = br.literal(1);
  const refLfDelta = [0, 0, 0, 0];
  const modeLfDelta = [0, 0, 0, 0];
  if (useLfDelta && br.literal(1)) {
    for (let i = 0; i < 4; i++) if (br.literal(1)) refLfDelta[i] = br.signedLiteral(6);
    for (let i = 0; i < 4; i++) if (br.literal(1)) modeLfDelta[i] = br.signedLiteral(6);
  }
  const filterType = level === 0 ? 0 : simple ? 1 : 2;
  if (br.eof) throw new WebpError("the filter header is truncated");

  // Token partitions: sizes of all but the last, then the data.
  const numParts = 1 << br.literal(2);
  const sizes = at;
  const end = data.length;
  if (end - at < 3 * (numParts - 1)) throw new WebpError("the partition sizes are truncated");
  let partStart = at + 3 * (numParts - 1);
  const parts: BoolReader[] = [];
  for (let p = 0; p < numParts - 1; p++) {
    const s = sizes + 3 * p;
    const psize = Math.min(data[s] | (data[s + 1] << 8) | (data[s + 2] << 16), end - partStart);
    parts.push(new BoolReader(data, partStart, partStart + psize));
    partStart += psize;
  }
  if (partStart >= end) throw new WebpError("the last partition is empty");
  parts.push(new BoolReader(data, partStart, end));

  // Quantizers.
  const baseQ = br.literal(7);
  const delta = () => (br.literal(1) ? br.signedLiteral(4) : 0);
  const dqY1Dc = delta();
  const dqY2Dc = delta();
  const dqY2Ac = delta();
  const dqUvDc = delta();
  const dqUvAc = delta();
  const clipQ = (q: number, max: number) => (q < 0 ? 0 : Math.min(q, max));
  const segments: Segment[] = [];
  for (let s = 0; s < 4; s++) {
    const q = useSegment ? quantizer[s] + (absoluteDelta ? 0 : baseQ) : baseQ;
    const y2ac = (AC_TABLE[clipQ(q + dqY2Ac, 127)] * 101581) >> 16;
    segments.push({
      y1: [DC_TABLE[clipQ(q + dqY1Dc, 127)], AC_TABLE[clipQ(q, 127)]],
      y2: [DC_TABLE[clipQ(q + dqY2Dc, 127)] * 2, Math.max(8, y2ac)],
      uv: [DC_TABLE[clipQ(q + dqUvDc, 117)], AC_TABLE[clipQ(q + dqUvAc, 127)]],
    });
  }
  br.literal(1); // refresh entropy probs: ignored for a key frame
  const proba = new Uint8Array(4 * 8 * 3 * 11);
  for (let i = 0; i < proba.length; i++) {
    proba[i] = br.bit(COEFFS_UPDATE_PROBA[i]) ? br.literal(8) : COEFFS_PROBA0[i];
  }
  const useSkip = br.literal(1);
  const skipProba = useSkip ? br.literal(8) : 0;

  // Filter strengths per segment and 16x16/4x4.
  const strengths: FilterInfo[][] = [];
  for (let s = 0; s < 4; s++) {
    const base = useSegment ? filterStrength[s] + (absoluteDelta ? 0 : level) : level;
    strengths.push(
      [0, 1].map((i4x4) => {
        let lv = base;
        if (useLfDelta) {
          lv += refLfDelta[0];
          if (i4x4) lv += modeLfDelta[0];
        }
        lv = lv < 0 ? 0 : Math.min(lv, 63);
        if (lv === 0) return { limit: 0, ilevel: 0, hevThresh: 0, inner: i4x4 === 1 };
        let ilevel = lv;
        if (sharpness > 0) {
          ilevel >>= sharpness > 4 ? 2 : 1;
          if (ilevel > 9 - sharpness) ilevel = 9 - sharpness;
        }
        if (ilevel < 1) ilevel = 1;
        return { limit: 2 * lv + ilevel, ilevel, hevThresh: lv >= 40 ? 2 : lv >= 15 ? 1 : 0, inner: i4x4 === 1 };
      }),
    );
  }

  // The planes: the current macroblock row (unfiltered while it is reconstructed, filtered after it) at
  // rows Y_KEEP and UV_KEEP, below what is kept of the rows above it.
  const yStride = mbW * 16;
  const uvStride = mbW * 8;
  const Y = new Uint8Array(yStride * (Y_KEEP + 16));
  const U = new Uint8Array(uvStride * (UV_KEEP + 8));
  const V = new Uint8Array(uvStride * (UV_KEEP + 8));
  const uvW = (width + 1) >> 1;
  const rgb = new Uint8Array(width * 3); // the emitted row
  // With the upsampling kernel: the band of rows it converts, and their plane rows (luma, near and far
  // chroma); it is given an area no larger than the kernels' bounds allow for the widest frames.
  const kernels = decodeKernels();
  const emitKernel = kernels?.fitsVp8Upsample(width, EMIT_ROWS, yStride, uvStride) ? kernels : null;
  const band = emitKernel ? new Uint8Array(EMIT_ROWS * 3 * width) : rgb;
  const bandLines = new Int32Array(3 * EMIT_ROWS);
  let next = 0; // the next output row
  // Per column: the unfiltered bottom samples of the macroblock above, its non-zero context, intra modes.
  const top = new Uint8Array(mbW * 32); // luma, then U, then V (the kernel's layout)
  const topY = top.subarray(0, mbW * 16);
  const topNz = new Uint8Array(mbW);
  const topNzDc = new Uint8Array(mbW);
  const intraT = new Uint8Array(mbW * 4);
  const intraL = new Uint8Array(4);
  const yuv = new Uint8Array(BPS * 17 + BPS * 9); // libwebp's work buffer with its borders
  const yuvClamped = new Uint8ClampedArray(yuv.buffer); // stores clip to 0..255
  const yuv32 = new Uint32Array(yuv.buffer);
  const topY32 = new Uint32Array(top.buffer, 0, mbW * 4);
  const topU32 = new Uint32Array(top.buffer, mbW * 16, mbW * 2);
  const topV32 = new Uint32Array(top.buffer, mbW * 24, mbW * 2);
  const Y32 = new Uint32Array(Y.buffer);
  const U32 = new Uint32Array(U.buffer);
  const V32 = new Uint32Array(V.buffer);
  const coeffs = new Int16Array(384);
  // Per 4x4 block of coeffs (16 luma, 4 U, 4 V): whether it has AC coefficients (else its DC alone).
  const hasAc = new Uint8Array(24);
  // With the kernels a row's tokens are parsed and its macroblocks reconstructed in one call, from the
  // row's modes (4x4-predicted, chroma mode, the 16 4x4 modes or the 16x16 one, per column) and mbInfo.
  const rowKernel = kernels?.fitsVp8DecodeRow(mbW, yStride, uvStride) ? kernels : null;
  const rowModes = new Uint8Array(mbW * 18);
  const mbInfo = new Uint8Array(4 * mbW); // the kernel's: segment, skip, 4x4-predicted, no non-zero coefficient
  // The filter strengths by segment and 4x4 prediction, as the kernels read them.
  const strengthTable = Uint8Array.from(
    strengths.flatMap((s) => s.flatMap((f) => [f.limit, f.ilevel, f.hevThresh, f.inner ? 1 : 0])),
  );
  const quantTable = Int32Array.from(segments.flatMap((q) => [...q.y1, ...q.y2, ...q.uv]));
  const dcCoeffs = new Int16Array(16); // the Y2 block's
  // Each column's modes are its stretch of rowModes, where the kernel reads them.
  const blocks: Macroblock[] = Array.from({ length: mbW }, (_, x) => ({
    segment: 0,
    skip: 0,
    i4x4: false,
    modes: rowModes.subarray(18 * x + 2, 18 * x + 18),
    uvMode: 0,
  }));
  // The row's filter by column, 4 bytes each: limit (0: none), interior limit, hev threshold, and whether
  // the inner edges are filtered (the layout of the kernel's, assembly/image/vp8-filter.ts).
  const filterInfo = new Uint8Array(4 * mbW);
  const filterKernel = filterType > 0 && kernels?.fitsVp8Filter(yStride, uvStride) ? kernels : null;
  const sliceRows = Math.max(1, Math.floor(4096 / mbW)); // about a million pixels between yields

  let leftNz = 0;
  let leftNzDc = 0;
  // Returns whether the macroblock has no non-zero coefficient.
  const parseResiduals = (mbX: number, mb: Macroblock, r: BoolReader): boolean => {
    const q = segments[mb.segment];
    coeffs.fill(0);
    let first: number;
    let acType: number;
    let nonZero = false;
    if (!mb.i4x4) {
      const dc = dcCoeffs;
      dc.fill(0);
      const nz = r.coefficients(proba, 1, topNzDc[mbX] + leftNzDc, q.y2[0], q.y2[1], 0, dc, 0);
      topNzDc[mbX] = leftNzDc = nz > 0 ? 1 : 0;
      if (nz > 1) {
        inverseWht(dc, coeffs);
      } else {
        const dc0 = (dc[0] + 3) >> 3;
        for (let i = 0; i < 256; i += 16) coeffs[i] = dc0;
      }
      first = 1;
      acType = 0;
    } else {
      first = 0;
      acType = 3;
    }
    let tnz = topNz[mbX] & 0x0f;
    let lnz = leftNz & 0x0f;
    for (let y = 0; y < 4; y++) {
      let l = lnz & 1;
      for (let x = 0; x < 4; x++) {
        const at = (y * 4 + x) * 16;
        const nz = r.coefficients(proba, acType, l + (tnz & 1), q.y1[0], q.y1[1], first, coeffs, at);
        l = nz > first ? 1 : 0;
        tnz = (tnz >> 1) | (l << 7);
        hasAc[at >> 4] = nz > 1 ? 1 : 0;
        if (nz > 1 || coeffs[at] !== 0) nonZero = true;
      }
      tnz >>= 4;
      lnz = (lnz >> 1) | (l << 7);
    }
    let outT = tnz;
    let outL = lnz >> 4;
    for (let ch = 0; ch < 4; ch += 2) {
      tnz = topNz[mbX] >> (4 + ch);
      lnz = leftNz >> (4 + ch);
      for (let y = 0; y < 2; y++) {
        let l = lnz & 1;
        for (let x = 0; x < 2; x++) {
          const at = 256 + ch * 32 + (y * 2 + x) * 16;
          const nz = r.coefficients(proba, 2, l + (tnz & 1), q.uv[0], q.uv[1], 0, coeffs, at);
          l = nz > 0 ? 1 : 0;
          tnz = (tnz >> 1) | (l << 3);
          hasAc[at >> 4] = nz > 1 ? 1 : 0;
          if (nz > 1 || coeffs[at] !== 0) nonZero = true;
        }
        tnz >>= 2;
        lnz = (lnz >> 1) | (l << 5);
      }
      outT |= (tnz << 4) << ch;
      outL |= (lnz & 0xf0) << ch;
    }
    topNz[mbX] = outT;
    leftNz = outL;
    return !nonZero;
  };

  for (let mbY = 0; mbY < mbH; mbY++) {
    const r = parts[mbY & (numParts - 1)];
    // The row's modes, from the first partition.
    intraL.fill(0);
    for (let mbX = 0; mbX < mbW; mbX++) {
      const mb = blocks[mbX];
      mb.segment = updateMap ? (!br.bit(segmentProba[0]) ? br.bit(segmentProba[1]) : br.bit(segmentProba[2]) + 2) : 0;
      mb.skip = useSkip ? br.bit(skipProba) : 0;
      mb.i4x4 = !br.bit(145);
      const top = mbX * 4;
      if (!mb.i4x4) {
        const ymode = br.bit(156) ? (br.bit(128) ? 1 : 3) : br.bit(163) ? 2 : 0;
        mb.modes[0] = ymode;
        intraT.fill(ymode, top, top + 4);
        intraL.fill(ymode);
      } else {
        for (let y = 0; y < 4; y++) {
          let ymode = intraL[y];
          for (let x = 0; x < 4; x++) {
            const p = (intraT[top + x] * 10 + ymode) * 9;
            ymode = !br.bit(BMODES_PROBA[p])
              ? 0
              : !br.bit(BMODES_PROBA[p + 1])
                ? 1
                : !br.bit(BMODES_PROBA[p + 2])
                  ? 2
                  : !br.bit(BMODES_PROBA[p + 3])
                    ? !br.bit(BMODES_PROBA[p + 4])
                      ? 3
                      : !br.bit(BMODES_PROBA[p + 5])
                        ? 4
                        : 5
                    : !br.bit(BMODES_PROBA[p + 6])
                      ? 6
                      : !br.bit(BMODES_PROBA[p + 7])
                        ? 7
                        : !br.bit(BMODES_PROBA[p + 8])
                          ? 8
                          : 9;
            intraT[top + x] = ymode;
            mb.modes[y * 4 + x] = ymode;
          }
          intraL[y] = ymode;
        }
      }
      mb.uvMode = !br.bit(142) ? 0 : !br.bit(114) ? 2 : br.bit(183) ? 1 : 3;
    }
    if (br.eof) throw new WebpError("the first partition ends early");

    leftNz = 0;
    leftNzDc = 0;
    // yuv's left border (129), and the top border (127) on the first row.
    for (let j = 0; j < 16; j++) yuv[Y_OFF + j * BPS - 1] = 129;
    for (let j = 0; j < 8; j++) {
      yuv[U_OFF + j * BPS - 1] = 129;
      yuv[V_OFF + j * BPS - 1] = 129;
    }
    if (mbY > 0) {
      yuv[Y_OFF - 1 - BPS] = yuv[U_OFF - 1 - BPS] = yuv[V_OFF - 1 - BPS] = 129;
    } else {
      yuv.fill(127, Y_OFF - BPS - 1, Y_OFF - BPS - 1 + 21);
      yuv.fill(127, U_OFF - BPS - 1, U_OFF - BPS - 1 + 9);
      yuv.fill(127, V_OFF - BPS - 1, V_OFF - BPS - 1 + 9);
    }
    if (rowKernel) {
      for (let mbX = 0; mbX < mbW; mbX++) {
        const mb = blocks[mbX];
        mbInfo[4 * mbX] = mb.segment;
        mbInfo[4 * mbX + 1] = mb.skip;
        mbInfo[4 * mbX + 2] = mb.i4x4 ? 1 : 0;
        const m = 18 * mbX;
        rowModes[m] = mb.i4x4 ? 1 : 0;
        rowModes[m + 1] = mb.uvMode;
      }
      const whole = rowKernel.vp8DecodeRow(
        r,
        proba,
        quantTable,
        mbInfo,
        topNz,
        topNzDc,
        rowModes,
        top,
        Y,
        U,
        V,
        yStride,
        uvStride,
        Y_KEEP,
        UV_KEEP,
        mbW,
        mbY,
        mbH,
        filterType,
        strengthTable,
      );
      if (!whole) throw new WebpError("a token partition ends early");
    } else {
      for (let mbX = 0; mbX < mbW; mbX++) {
        const mb = blocks[mbX];
        // Tokens.
        let skip = mb.skip;
        if (!skip) {
          skip = parseResiduals(mbX, mb, r) ? 1 : 0;
        } else {
          leftNz = topNz[mbX] = 0;
          if (!mb.i4x4) leftNzDc = topNzDc[mbX] = 0;
          coeffs.fill(0);
          hasAc.fill(0);
        }
        if (r.eof) throw new WebpError("a token partition ends early");
        if (filterType > 0) {
          const f = strengths[mb.segment][mb.i4x4 ? 1 : 0];
          filterInfo[4 * mbX] = f.limit;
          filterInfo[4 * mbX + 1] = f.ilevel;
          filterInfo[4 * mbX + 2] = f.hevThresh;
          filterInfo[4 * mbX + 3] = f.inner || !skip ? 1 : 0;
        }
        reconstruct(mbX, mbY, mb);
      }
      // (The row kernel filters the row itself.)
      if (filterKernel !== null) {
        filterKernel.vp8FilterRow(Y, U, V, yStride, uvStride, Y_KEEP, UV_KEEP, filterInfo, mbW, mbY, filterType === 1);
      } else if (filterType > 0) {
        filterRow(Y, U, V, yStride, uvStride, Y_KEEP, UV_KEEP, filterInfo, mbW, mbY, filterType);
      }
    }
    emitRows(mbY, mbY === mbH - 1 ? height : Math.min(height, 16 * mbY + 8));
    Y.copyWithin(0, 16 * yStride, (Y_KEEP + 16) * yStride);
    U.copyWithin(0, 8 * uvStride, (UV_KEEP + 8) * uvStride);
    V.copyWithin(0, 8 * uvStride, (UV_KEEP + 8) * uvStride);
    if (mbY % sliceRows === sliceRows - 1) await yieldToOthers();
  }

  // The rows move as 32-bit words: every offset here (the work buffer's rows, the planes' macroblock
  // columns) is a multiple of 4.
  function reconstruct(mbX: number, mbY: number, mb: Macroblock): void {
    if (mbX > 0) {
      for (let j = -1; j < 16; j++) yuv32[(Y_OFF + j * BPS - 4) >> 2] = yuv32[(Y_OFF + j * BPS + 12) >> 2];
      for (let j = -1; j < 8; j++) {
        yuv32[(U_OFF + j * BPS - 4) >> 2] = yuv32[(U_OFF + j * BPS + 4) >> 2];
        yuv32[(V_OFF + j * BPS - 4) >> 2] = yuv32[(V_OFF + j * BPS + 4) >> 2];
      }
    }
    if (mbY > 0) {
      copy32(topY32, mbX * 4, yuv32, (Y_OFF - BPS) >> 2, 4);
      copy32(topU32, mbX * 2, yuv32, (U_OFF - BPS) >> 2, 2);
      copy32(topV32, mbX * 2, yuv32, (V_OFF - BPS) >> 2, 2);
    }
    if (mb.i4x4) {
      const tr = (Y_OFF - BPS + 16) >> 2;
      if (mbY > 0) yuv32[tr] = mbX >= mbW - 1 ? topY[mbX * 16 + 15] * 0x01010101 : topY32[mbX * 4 + 4];
      for (let k = 1; k <= 3; k++) yuv32[tr + k * BPS] = yuv32[tr];
      for (let n = 0; n < 16; n++) {
        const dst = Y_OFF + SCAN[n];
        predict4(mb.modes[n], dst);
        transform(coeffs, n * 16, dst);
      }
    } else {
      predict16(checkMode(mbX, mbY, mb.modes[0]), Y_OFF);
      for (let n = 0; n < 16; n++) transform(coeffs, n * 16, Y_OFF + SCAN[n]);
    }
    const uvMode = checkMode(mbX, mbY, mb.uvMode);
    predict8(uvMode, U_OFF);
    predict8(uvMode, V_OFF);
    for (let n = 0; n < 4; n++) {
      const off = (n & 1) * 4 + (n >> 1) * 4 * BPS;
      transform(coeffs, 256 + n * 16, U_OFF + off);
      transform(coeffs, 320 + n * 16, V_OFF + off);
    }
    if (mbY < mbH - 1) {
      copy32(yuv32, (Y_OFF + 15 * BPS) >> 2, topY32, mbX * 4, 4);
      copy32(yuv32, (U_OFF + 7 * BPS) >> 2, topU32, mbX * 2, 2);
      copy32(yuv32, (V_OFF + 7 * BPS) >> 2, topV32, mbX * 2, 2);
    }
    for (let j = 0; j < 16; j++)
      copy32(yuv32, (Y_OFF + j * BPS) >> 2, Y32, ((Y_KEEP + j) * yStride + mbX * 16) >> 2, 4);
    for (let j = 0; j < 8; j++) {
      copy32(yuv32, (U_OFF + j * BPS) >> 2, U32, ((UV_KEEP + j) * uvStride + mbX * 8) >> 2, 2);
      copy32(yuv32, (V_OFF + j * BPS) >> 2, V32, ((UV_KEEP + j) * uvStride + mbX * 8) >> 2, 2);
    }
  }

  function checkMode(mbX: number, mbY: number, mode: number): number {
    if (mode !== 0) return mode;
    if (mbX === 0) return mbY === 0 ? 6 : 5;
    return mbY === 0 ? 4 : 0;
  }

  // 4x4 inverse DCT added to the prediction at yuv[dst] (TransformOne).
  // A block without AC coefficients adds (DC + 4) >> 3 everywhere, as the full transform would (TransformDC).
  function transform(c: Int16Array, at: number, dst: number): void {
    if (hasAc[at >> 4] === 0) {
      const dc = c[at];
      if (dc === 0) return;
      const v = (dc + 4) >> 3;
      for (let i = 0, row = dst; i < 4; i++, row += BPS) {
        yuvClamped[row] = yuv[row] + v;
        yuvClamped[row + 1] = yuv[row + 1] + v;
        yuvClamped[row + 2] = yuv[row + 2] + v;
        yuvClamped[row + 3] = yuv[row + 3] + v;
      }
      return;
    }
    const tmp = TMP;
    for (let i = 0; i < 4; i++) {
      const a = c[at + i] + c[at + 8 + i];
      const b = c[at + i] - c[at + 8 + i];
      const cc = mul2(c[at + 4 + i]) - mul1(c[at + 12 + i]);
      const d = mul1(c[at + 4 + i]) + mul2(c[at + 12 + i]);
      tmp[4 * i] = a + d;
      tmp[4 * i + 1] = b + cc;
      tmp[4 * i + 2] = b - cc;
      tmp[4 * i + 3] = a - d;
    }
    for (let i = 0; i < 4; i++) {
      const dc = tmp[i] + 4;
      const a = dc + tmp[8 + i];
      const b = dc - tmp[8 + i];
      const cc = mul2(tmp[4 + i]) - mul1(tmp[12 + i]);
      const d = mul1(tmp[4 + i]) + mul2(tmp[12 + i]);
      const row = dst + i * BPS;
      yuvClamped[row] = yuv[row] + ((a + d) >> 3);
      yuvClamped[row + 1] = yuv[row + 1] + ((b + cc) >> 3);
      yuvClamped[row + 2] = yuv[row + 2] + ((b - cc) >> 3);
      yuvClamped[row + 3] = yuv[row + 3] + ((a - d) >> 3);
    }
  }

  function trueMotion(dst: number, size: number): void {
    const tl = yuv[dst - BPS - 1];
    for (let y = 0; y < size; y++) {
      const l = yuv[dst + y * BPS - 1];
      for (let x = 0; x < size; x++) yuvClamped[dst + y * BPS + x] = yuv[dst - BPS + x] + l - tl;
    }
  }

  function fill(dst: number, size: number, v: number): void {
    const word = v * 0x01010101;
    for (let y = 0, at = dst >> 2; y < size; y++, at += BPS >> 2)
      for (let x = 0; x < size >> 2; x++) yuv32[at + x] = word;
  }

  function predict16(mode: number, dst: number): void {
    let dc = 0;
    switch (mode) {
      case 1:
        trueMotion(dst, 16);
        return;
      case 2:
        for (let y = 0; y < 16; y++) yuv.copyWithin(dst + y * BPS, dst - BPS, dst - BPS + 16);
        return;
      case 3:
        for (let y = 0; y < 16; y++) yuv.fill(yuv[dst + y * BPS - 1], dst + y * BPS, dst + y * BPS + 16);
        return;
      case 0:
        dc = 16;
        for (let j = 0; j < 16; j++) dc += yuv[dst - 1 + j * BPS] + yuv[dst + j - BPS];
        fill(dst, 16, dc >> 5);
        return;
      case 4:
        dc = 8;
        for (let j = 0; j < 16; j++) dc += yuv[dst - 1 + j * BPS];
        fill(dst, 16, dc >> 4);
        return;
      case 5:
        dc = 8;
        for (let j = 0; j < 16; j++) dc += yuv[dst + j - BPS];
        fill(dst, 16, dc >> 4);
        return;
      default:
        fill(dst, 16, 0x80);
        return;
    }
  }

  function predict8(mode: number, dst: number): void {
    let dc = 0;
    switch (mode) {
      case 1:
        trueMotion(dst, 8);
        return;
      case 2:
        for (let y = 0; y < 8; y++) yuv.copyWithin(dst + y * BPS, dst - BPS, dst - BPS + 8);
        return;
      case 3:
        for (let y = 0; y < 8; y++) yuv.fill(yuv[dst + y * BPS - 1], dst + y * BPS, dst + y * BPS + 8);
        return;
      case 0:
        dc = 8;
        for (let i = 0; i < 8; i++) dc += yuv[dst + i - BPS] + yuv[dst - 1 + i * BPS];
        fill(dst, 8, dc >> 4);
        return;
      case 4: // no top
        dc = 4;
        for (let i = 0; i < 8; i++) dc += yuv[dst - 1 + i * BPS];
        fill(dst, 8, dc >> 3);
        return;
      case 5: // no left
        dc = 4;
        for (let i = 0; i < 8; i++) dc += yuv[dst + i - BPS];
        fill(dst, 8, dc >> 3);
        return;
      default:
        fill(dst, 8, 0x80);
        return;
    }
  }

  function predict4(mode: number, dst: number): void {
    const X = yuv[dst - BPS - 1]; // the top-left
    const A = yuv[dst - BPS];
    const B = yuv[dst - BPS + 1];
    const C = yuv[dst - BPS + 2];
    const D = yuv[dst - BPS + 3];
    const E = yuv[dst - BPS + 4];
    const F = yuv[dst - BPS + 5];
    const G = yuv[dst - BPS + 6];
    const H = yuv[dst - BPS + 7];
    const I = yuv[dst - 1];
    const J = yuv[dst - 1 + BPS];
    const K = yuv[dst - 1 + 2 * BPS];
    const L = yuv[dst - 1 + 3 * BPS];
    switch (mode) {
      case 0:
        fill(dst, 4, (4 + A + B + C + D + I + J + K + L) >> 3);
        return;
      case 1:
        trueMotion(dst, 4);
        return;
      case 2: {
        const v0 = avg3(X, A, B);
        const v1 = avg3(A, B, C);
        const v2 = avg3(B, C, D);
        const v3 = avg3(C, D, E);
        for (let y = 0; y < 4; y++) {
          const o = dst + y * BPS;
          yuv[o] = v0;
          yuv[o + 1] = v1;
          yuv[o + 2] = v2;
          yuv[o + 3] = v3;
        }
        return;
      }
      case 3:
        yuv.fill(avg3(X, I, J), dst, dst + 4);
        yuv.fill(avg3(I, J, K), dst + BPS, dst + BPS + 4);
        yuv.fill(avg3(J, K, L), dst + 2 * BPS, dst + 2 * BPS + 4);
        yuv.fill(avg3(K, L, L), dst + 3 * BPS, dst + 3 * BPS + 4);
        return;
      case 4: {
        // RD
        yuv[dst + 3 * BPS] = avg3(J, K, L);
        const v1 = avg3(I, J, K);
        yuv[dst + 1 + 3 * BPS] = v1;
        yuv[dst + 2 * BPS] = v1;
        const v2 = avg3(X, I, J);
        yuv[dst + 2 + 3 * BPS] = v2;
        yuv[dst + 1 + 2 * BPS] = v2;
        yuv[dst + BPS] = v2;
        const v3 = avg3(A, X, I);
        yuv[dst + 3 + 3 * BPS] = v3;
        yuv[dst + 2 + 2 * BPS] = v3;
        yuv[dst + 1 + BPS] = v3;
        yuv[dst] = v3;
        const v4 = avg3(B, A, X);
        yuv[dst + 3 + 2 * BPS] = v4;
        yuv[dst + 2 + BPS] = v4;
        yuv[dst + 1] = v4;
        const v5 = avg3(C, B, A);
        yuv[dst + 3 + BPS] = v5;
        yuv[dst + 2] = v5;
        yuv[dst + 3] = avg3(D, C, B);
        return;
      }
      case 5: {
        // VR
        const v0 = avg2(X, A);
        yuv[dst] = v0;
        yuv[dst + 1 + 2 * BPS] = v0;
        const v1 = avg2(A, B);
        yuv[dst + 1] = v1;
        yuv[dst + 2 + 2 * BPS] = v1;
        const v2 = avg2(B, C);
        yuv[dst + 2] = v2;
        yuv[dst + 3 + 2 * BPS] = v2;
        yuv[dst + 3] = avg2(C, D);
        yuv[dst + 3 * BPS] = avg3(K, J, I);
        yuv[dst + 2 * BPS] = avg3(J, I, X);
        const v6 = avg3(I, X, A);
        yuv[dst + BPS] = v6;
        yuv[dst + 1 + 3 * BPS] = v6;
        const v7 = avg3(X, A, B);
        yuv[dst + 1 + BPS] = v7;
        yuv[dst + 2 + 3 * BPS] = v7;
        const v8 = avg3(A, B, C);
        yuv[dst + 2 + BPS] = v8;
        yuv[dst + 3 + 3 * BPS] = v8;
        yuv[dst + 3 + BPS] = avg3(B, C, D);
        return;
      }
      case 6: {
        // LD
        yuv[dst] = avg3(A, B, C);
        const v1 = avg3(B, C, D);
        yuv[dst + 1] = v1;
        yuv[dst + BPS] = v1;
        const v2 = avg3(C, D, E);
        yuv[dst + 2] = v2;
        yuv[dst + 1 + BPS] = v2;
        yuv[dst + 2 * BPS] = v2;
        const v3 = avg3(D, E, F);
        yuv[dst + 3] = v3;
        yuv[dst + 2 + BPS] = v3;
        yuv[dst + 1 + 2 * BPS] = v3;
        yuv[dst + 3 * BPS] = v3;
        const v4 = avg3(E, F, G);
        yuv[dst + 3 + BPS] = v4;
        yuv[dst + 2 + 2 * BPS] = v4;
        yuv[dst + 1 + 3 * BPS] = v4;
        const v5 = avg3(F, G, H);
        yuv[dst + 3 + 2 * BPS] = v5;
        yuv[dst + 2 + 3 * BPS] = v5;
        yuv[dst + 3 + 3 * BPS] = avg3(G, H, H);
        return;
      }
      case 7: {
        // VL
        yuv[dst] = avg2(A, B);
        const v1 = avg2(B, C);
        yuv[dst + 1] = v1;
        yuv[dst + 2 * BPS] = v1;
        const v2 = avg2(C, D);
        yuv[dst + 2] = v2;
        yuv[dst + 1 + 2 * BPS] = v2;
        const v3 = avg2(D, E);
        yuv[dst + 3] = v3;
        yuv[dst + 2 + 2 * BPS] = v3;
        yuv[dst + BPS] = avg3(A, B, C);
        const v5 = avg3(B, C, D);
        yuv[dst + 1 + BPS] = v5;
        yuv[dst + 3 * BPS] = v5;
        const v6 = avg3(C, D, E);
        yuv[dst + 2 + BPS] = v6;
        yuv[dst + 1 + 3 * BPS] = v6;
        const v7 = avg3(D, E, F);
        yuv[dst + 3 + BPS] = v7;
        yuv[dst + 2 + 3 * BPS] = v7;
        yuv[dst + 3 + 2 * BPS] = avg3(E, F, G);
        yuv[dst + 3 + 3 * BPS] = avg3(F, G, H);
        return;
      }
      case 8: {
        // HD
        const v0 = avg2(I, X);
        yuv[dst] = v0;
        yuv[dst + 2 + BPS] = v0;
        const v1 = avg2(J, I);
        yuv[dst + BPS] = v1;
        yuv[dst + 2 + 2 * BPS] = v1;
        const v2 = avg2(K, J);
        yuv[dst + 2 * BPS] = v2;
        yuv[dst + 2 + 3 * BPS] = v2;
        yuv[dst + 3 * BPS] = avg2(L, K);
        yuv[dst + 3] = avg3(A, B, C);
        yuv[dst + 2] = avg3(X, A, B);
        const v6 = avg3(I, X, A);
        yuv[dst + 1] = v6;
        yuv[dst + 3 + BPS] = v6;
        const v7 = avg3(J, I, X);
        yuv[dst + 1 + BPS] = v7;
        yuv[dst + 3 + 2 * BPS] = v7;
        const v8 = avg3(K, J, I);
        yuv[dst + 1 + 2 * BPS] = v8;
        yuv[dst + 3 + 3 * BPS] = v8;
        yuv[dst + 1 + 3 * BPS] = avg3(L, K, J);
        return;
      }
      default: {
        // HU
        yuv[dst] = avg2(I, J);
        const v1 = avg2(J, K);
        yuv[dst + 2] = v1;
        yuv[dst + BPS] = v1;
        const v2 = avg2(K, L);
        yuv[dst + 2 + BPS] = v2;
        yuv[dst + 2 * BPS] = v2;
        yuv[dst + 1] = avg3(I, J, K);
        const v4 = avg3(J, K, L);
        yuv[dst + 3] = v4;
        yuv[dst + 1 + BPS] = v4;
        const v5 = avg3(K, L, L);
        yuv[dst + 3 + BPS] = v5;
        yuv[dst + 1 + 2 * BPS] = v5;
        const v6 = L;
        yuv[dst + 3 + 2 * BPS] = v6;
        yuv[dst + 2 + 2 * BPS] = v6;
        yuv[dst + 3 * BPS] = v6;
        yuv[dst + 1 + 3 * BPS] = v6;
        yuv[dst + 2 + 3 * BPS] = v6;
        yuv[dst + 3 + 3 * BPS] = v6;
      }
    }
  }

  // Output rows [next, end) from the planes to RGB through libwebp's fancy upsampler (EmitFancyRGB), during
  // macroblock row mbY: luma row y is at plane row y - 16 * mbY + Y_KEEP, chroma row t at t - 8 * mbY + UV_KEEP.
  function emitRows(mbY: number, end: number): void {
    const yBase = 16 * mbY - Y_KEEP;
    const uvBase = 8 * mbY - UV_KEEP;
    while (next < end) {
      const rows = emitKernel ? Math.min(EMIT_ROWS, end - next) : 1;
      for (let r = 0; r < rows; r++) {
        const y = next + r;
        let t: number;
        let c: number;
        let bottom: boolean;
        if (y === 0) {
          t = c = 0;
          bottom = false;
        } else if (y & 1) {
          t = (y - 1) >> 1;
          c = y === height - 1 ? t : t + 1;
          bottom = false;
        } else {
          t = (y >> 1) - 1;
          c = y >> 1;
          bottom = true;
        }
        bandLines[3 * r] = y - yBase;
        bandLines[3 * r + 1] = (bottom ? c : t) - uvBase;
        bandLines[3 * r + 2] = (bottom ? t : c) - uvBase;
      }
      if (emitKernel) {
        emitKernel.vp8UpsampleRows(Y, U, V, yStride, uvStride, bandLines, rows, width, band);
      } else {
        const yAt = bandLines[0] * yStride;
        const nAt = bandLines[1] * uvStride;
        const fAt = bandLines[2] * uvStride;
        upsampleLine(
          Y.subarray(yAt, yAt + width),
          U.subarray(nAt, nAt + uvW),
          V.subarray(nAt, nAt + uvW),
          U.subarray(fAt, fAt + uvW),
          V.subarray(fAt, fAt + uvW),
          rgb,
          width,
        );
      }
      // The band is copied out of the kernels' memory: the sink may run kernels of its own.
      for (let r = 0; r < rows; r++) row(band.subarray(r * 3 * width, (r + 1) * 3 * width));
      next += rows;
    }
  }
}

const mul1 = (a: number) => ((a * 20091) >> 16) + a;
const mul2 = (a: number) => (a * 35468) >> 16;

function inverseWht(inp: Int16Array, out: Int16Array): void {
  const tmp = TMP;
  for (let i = 0; i < 4; i++) {
    const a0 = inp[i] + inp[12 + i];
    const a1 = inp[4 + i] + inp[8 + i];
    const a2 = inp[4 + i] - inp[8 + i];
    const a3 = inp[i] - inp[12 + i];
    tmp[i] = a0 + a1;
    tmp[8 + i] = a0 - a1;
    tmp[4 + i] = a3 + a2;
    tmp[12 + i] = a3 - a2;
  }
  for (let i = 0; i < 4; i++) {
    const dc = tmp[i * 4] + 3;
    const a0 = dc + tmp[3 + i * 4];
    const a1 = tmp[1 + i * 4] + tmp[2 + i * 4];
    const a2 = tmp[1 + i * 4] - tmp[2 + i * 4];
    const a3 = dc - tmp[3 + i * 4];
    out[i * 64] = (a0 + a1) >> 3;
    out[i * 64 + 16] = (a3 + a2) >> 3;
    out[i * 64 + 32] = (a0 - a1) >> 3;
    out[i * 64 + 48] = (a3 - a2) >> 3;
  }
}

// The loop filter of a macroblock row, each macroblock in turn (libwebp's DoFilter), in place on the
// planes: the row's luma at plane row yRow of Y, its chroma at row uvRow of U and V; `info` holds 4 bytes
// per macroblock column (limit, 0 for none; interior limit; hev threshold; whether the inner edges are
// filtered); filterType 1 is the simple filter, 2 the complex one. The JavaScript twin of the kernel
// (assembly/image/vp8-filter.ts).
export function filterRow(
  Y: Uint8Array,
  U: Uint8Array,
  V: Uint8Array,
  yStride: number,
  uvStride: number,
  yRow: number,
  uvRow: number,
  info: Uint8Array,
  mbW: number,
  mbY: number,
  filterType: number,
): void {
  for (let mbX = 0; mbX < mbW; mbX++) {
    const limit = info[4 * mbX];
    if (limit === 0) continue;
    const ilevel = info[4 * mbX + 1];
    const hevThresh = info[4 * mbX + 2];
    const inner = info[4 * mbX + 3] === 1;
    const y0 = yRow * yStride + mbX * 16;
    const u0 = uvRow * uvStride + mbX * 8;
    if (filterType === 1) {
      if (mbX > 0) simpleFilter(Y, y0, 1, yStride, limit + 4);
      if (inner) for (let k = 4; k < 16; k += 4) simpleFilter(Y, y0 + k, 1, yStride, limit);
      if (mbY > 0) simpleFilter(Y, y0, yStride, 1, limit + 4);
      if (inner) for (let k = 4; k < 16; k += 4) simpleFilter(Y, y0 + k * yStride, yStride, 1, limit);
      continue;
    }
    if (mbX > 0) {
      filterLoop(Y, y0, 1, yStride, 16, limit + 4, ilevel, hevThresh, true);
      filterLoop(U, u0, 1, uvStride, 8, limit + 4, ilevel, hevThresh, true);
      filterLoop(V, u0, 1, uvStride, 8, limit + 4, ilevel, hevThresh, true);
    }
    if (inner) {
      for (let k = 4; k < 16; k += 4) filterLoop(Y, y0 + k, 1, yStride, 16, limit, ilevel, hevThresh, false);
      filterLoop(U, u0 + 4, 1, uvStride, 8, limit, ilevel, hevThresh, false);
      filterLoop(V, u0 + 4, 1, uvStride, 8, limit, ilevel, hevThresh, false);
    }
    if (mbY > 0) {
      filterLoop(Y, y0, yStride, 1, 16, limit + 4, ilevel, hevThresh, true);
      filterLoop(U, u0, uvStride, 1, 8, limit + 4, ilevel, hevThresh, true);
      filterLoop(V, u0, uvStride, 1, 8, limit + 4, ilevel, hevThresh, true);
    }
    if (inner) {
      for (let k = 4; k < 16; k += 4) filterLoop(Y, y0 + k * yStride, yStride, 1, 16, limit, ilevel, hevThresh, false);
      filterLoop(U, u0 + 4 * uvStride, uvStride, 1, 8, limit, ilevel, hevThresh, false);
      filterLoop(V, u0 + 4 * uvStride, uvStride, 1, 8, limit, ilevel, hevThresh, false);
    }
  }
}

const sclip1 = (v: number) => (v < -128 ? -128 : Math.min(v, 127));
const sclip2 = (v: number) => (v < -16 ? -16 : Math.min(v, 15));

// Filters across an edge: p[at] is the first pixel past it, `step` crosses it, `along` moves along it.
function simpleFilter(p: Uint8Array, at: number, step: number, along: number, thresh: number): void {
  const t2 = 2 * thresh + 1;
  for (let i = 0; i < 16; i++, at += along) {
    const p1 = p[at - 2 * step];
    const p0 = p[at - step];
    const q0 = p[at];
    const q1 = p[at + step];
    if (4 * Math.abs(p0 - q0) + Math.abs(p1 - q1) <= t2) filter2(p, at, step);
  }
}

function filter2(p: Uint8Array, at: number, step: number): void {
  const p1 = p[at - 2 * step];
  const p0 = p[at - step];
  const q0 = p[at];
  const q1 = p[at + step];
  const a = 3 * (q0 - p0) + sclip1(p1 - q1);
  const a1 = sclip2((a + 4) >> 3);
  const a2 = sclip2((a + 3) >> 3);
  p[at - step] = clip8(p0 + a2);
  p[at] = clip8(q0 - a1);
}

function filterLoop(
  p: Uint8Array,
  at: number,
  step: number,
  along: number,
  size: number,
  thresh: number,
  ithresh: number,
  hevThresh: number,
  edge: boolean,
): void {
  const t2 = 2 * thresh + 1;
  for (let i = 0; i < size; i++, at += along) {
    const p1 = p[at - 2 * step];
    const p0 = p[at - step];
    const q0 = p[at];
    const q1 = p[at + step];
    if (4 * Math.abs(p0 - q0) + Math.abs(p1 - q1) > t2) continue;
    const p3 = p[at - 4 * step];
    const p2 = p[at - 3 * step];
    const q2 = p[at + 2 * step];
    const q3 = p[at + 3 * step];
    if (
      Math.abs(p3 - p2) > ithresh ||
      Math.abs(p2 - p1) > ithresh ||
      Math.abs(p1 - p0) > ithresh ||
      Math.abs(q3 - q2) > ithresh ||
      Math.abs(q2 - q1) > ithresh ||
      Math.abs(q1 - q0) > ithresh
    ) {
      continue;
    }
    if (Math.abs(p1 - p0) > hevThresh || Math.abs(q1 - q0) > hevThresh) {
      filter2(p, at, step);
    } else if (edge) {
      const a = sclip1(3 * (q0 - p0) + sclip1(p1 - q1));
      const a1 = (27 * a + 63) >> 7;
      const a2 = (18 * a + 63) >> 7;
      const a3 = (9 * a + 63) >> 7;
      p[at - 3 * step] = clip8(p2 + a3);
      p[at - 2 * step] = clip8(p1 + a2);
      p[at - step] = clip8(p0 + a1);
      p[at] = clip8(q0 - a1);
      p[at + step] = clip8(q1 - a2);
      p[at + 2 * step] = clip8(q2 - a3);
    } else {
      const a = 3 * (q0 - p0);
      const a1 = sclip2((a + 4) >> 3);
      const a2 = sclip2((a + 3) >> 3);
      const a3 = (a1 + 1) >> 1;
      p[at - 2 * step] = clip8(p1 + a3);
      p[at - step] = clip8(p0 + a2);
      p[at] = clip8(q0 - a1);
      p[at + step] = clip8(q1 - a3);
    }
  }
}

// One output line of libwebp's fancy upsampler (UpsampleRgbLinePair): the chroma row nearer the line (n, the
// one above for a pair's top line, below for its bottom line) mixed 3:1 with the farther one (f), and 3:1
// horizontally along the diagonals; the JavaScript twin of the kernel (assembly/image/vp8-upsample.ts).
export function upsampleLine(
  y: Uint8Array,
  nu: Uint8Array,
  nv: Uint8Array,
  fu: Uint8Array,
  fv: Uint8Array,
  out: Uint8Array,
  len: number,
): void {
  const put = (x: number, u: number, v: number) => {
    const yy = mulHi(y[x], 19077);
    out[3 * x] = yuvClip(yy + mulHi(v, 26149) - 14234);
    out[3 * x + 1] = yuvClip(yy - mulHi(u, 6419) - mulHi(v, 13320) + 8708);
    out[3 * x + 2] = yuvClip(yy + mulHi(u, 33050) - 17685);
  };
  const edge = (near: number, far: number) => (3 * near + far + 2) >> 2;
  let nlu = nu[0];
  let nlv = nv[0];
  let flu = fu[0];
  let flv = fv[0];
  put(0, edge(nlu, flu), edge(nlv, flv));
  const lastPair = (len - 1) >> 1;
  for (let x = 1; x <= lastPair; x++) {
    const n_u = nu[x];
    const n_v = nv[x];
    const f_u = fu[x];
    const f_v = fv[x];
    const avgU = nlu + n_u + flu + f_u + 8;
    const avgV = nlv + n_v + flv + f_v + 8;
    const d12u = (avgU + 2 * (n_u + flu)) >> 3;
    const d12v = (avgV + 2 * (n_v + flv)) >> 3;
    const d03u = (avgU + 2 * (nlu + f_u)) >> 3;
    const d03v = (avgV + 2 * (nlv + f_v)) >> 3;
    put(2 * x - 1, (d12u + nlu) >> 1, (d12v + nlv) >> 1);
    put(2 * x, (d03u + n_u) >> 1, (d03v + n_v) >> 1);
    nlu = n_u;
    nlv = n_v;
    flu = f_u;
    flv = f_v;
  }
  if (!(len & 1)) put(len - 1, edge(nlu, flu), edge(nlv, flv));
}
