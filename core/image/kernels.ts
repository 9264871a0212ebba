// The decoders' wasm kernels (assembly/decode.ts, built into build/decode.wasm): installed once per isolate
// from the compiled module its runtime provides (the Worker imports it, Node reads the file). The decoders
// use them when installed and otherwise run the same arithmetic in JavaScript; both give Pillow's pixels.
//
// The module has its own small memory: each call copies its input rows into it, runs, and copies the result
// out, all in one synchronous step, so concurrent decodes (which interleave only at their yields) share one
// instance. The scratch area grows to the widest row seen: about 6 bytes per output pixel of one row (a
// lossy WebP macroblock row's tokens, coefficients and planes about 100 per pixel of width), within the
// bounds below.

import type { Coefficients } from "../preprocess/resize.ts";
import type { BitReader, HuffmanTable } from "./jpeg/huffman.ts";

// Pointers into memory; see assembly/image/ycc.ts.
type YccRow = (
  y: number,
  cbNear: number,
  cbFar: number,
  crNear: number,
  crFar: number,
  chromaWidth: number,
  out: number,
  width: number,
) => void;

// Rows of YCbCr at full resolution to RGB; see assembly/image/ycc.ts yccRows.
type YccRows = (
  y: number,
  yStride: number,
  cb: number,
  cr: number,
  cStride: number,
  out: number,
  width: number,
  rows: number,
) => void;

// A band of blocks through the 8x8, 4x4 or 2x2 IDCT; see assembly/image/idct.ts, idct-scaled.ts.
type IdctBand = (coefs: number, blocksPerRow: number, rows: number, out: number, stride: number) => void;

// One row of the resize's horizontal pass; see assembly/image/resample.ts.
type HorizontalRow = (
  src: number,
  out: number,
  outWidth: number,
  bounds: number,
  weights: number,
  ksize: number,
) => void;

// One output row of the resize's vertical pass; see assembly/image/resample.ts verticalRow.
type VerticalRow = (
  rows: number,
  rowBytes: number,
  count: number,
  weights: number,
  out: number,
  length: number,
) => void;

// Up to `mcus` MCUs of a sequential scan into the coefficient band; see assembly/image/huffman.ts.
type DecodeMcus = (data: number, length: number, final: number, mcus: number, coefs: number) => number;

// PNG: a zlib stream's next piece, a row's filter undone, Adler-32; see assembly/image/inflate.ts, unfilter.ts.
type Inflate = (
  state: number,
  input: number,
  inLength: number,
  window: number,
  hist: number,
  room: number,
  final: number,
) => number;
type UnfilterRow = (type: number, row: number, prev: number, bpp: number, n: number) => void;
// Up to `blocks` blocks of a progressive AC scan, or `mcus` MCUs of a DC scan, in the band copied into
// scratch; see assembly/image/progressive.ts.
type DecodeAcBlocks = (
  data: number,
  length: number,
  final: number,
  blocks: number,
  coefs: number,
  aux: number,
  kind: number,
  kept: number,
  ss: number,
  se: number,
  al: number,
) => number;
// Lossy WebP's loop filter over a macroblock row; see assembly/image/vp8-filter.ts.
type Vp8FilterRow = (
  y: number,
  yStride: number,
  u: number,
  v: number,
  uvStride: number,
  info: number,
  mbW: number,
  mbY: number,
  simple: number,
) => void;
// Lossy WebP's output lines through the fancy upsampler; see assembly/image/vp8-upsample.ts.
type Vp8UpsampleRows = (lines: number, rows: number, out: number, width: number) => void;
// Lossy WebP's reconstruction of a macroblock row; see assembly/image/vp8-reconstruct.ts.
type Vp8ReconstructRow = (
  coeffs: number,
  hasAc: number,
  modes: number,
  top: number,
  y: number,
  u: number,
  v: number,
  yStride: number,
  uvStride: number,
  mbW: number,
  mbY: number,
  mbH: number,
) => void;
// Lossy WebP's tokens of a macroblock row; see assembly/image/vp8-tokens.ts.
type Vp8ParseRow = (
  chunk: number,
  length: number,
  final: number,
  state: number,
  proba: number,
  quant: number,
  mbs: number,
  mbFrom: number,
  mbTo: number,
  topNz: number,
  topNzDc: number,
  left: number,
  coeffs: number,
  hasAc: number,
) => number;
type DecodeDcMcus = (data: number, length: number, final: number, mcus: number, refine: number, al: number) => number;

interface DecodeExports {
  memory: WebAssembly.Memory;
  inflate: Inflate;
  adler32(p: number, n: number, adler: number): number;
  unfilterRow: UnfilterRow;
  unfilterRowScalar: UnfilterRow;
  decodeMcus: DecodeMcus;
  decodeAcBlocks: DecodeAcBlocks;
  decodeDcMcus: DecodeDcMcus;
  progressiveTables(): number;
  progressiveState(): number;
  progressiveKeep(): number;
  progressiveQuant(): number;
  dequantizeBlocks(src: number, kept: number, blocks: number, dst: number): void;
  huffmanTables(): number;
  huffmanQuant(): number;
  huffmanState(): number;
  reserve(bytes: number): number;
  h2v2YccRow: YccRow;
  h2v2YccRowScalar: YccRow;
  yccRows: YccRows;
  yccRowsScalar: YccRows;
  idct8Band: IdctBand;
  idct8BandScalar: IdctBand;
  idct4Band: IdctBand;
  idct4BandScalar: IdctBand;
  idct2Band: IdctBand;
  idct2BandScalar: IdctBand;
  horizontalRow: HorizontalRow;
  horizontalRowScalar: HorizontalRow;
  verticalRow: VerticalRow;
  verticalRowScalar: VerticalRow;
  vp8FilterRow: Vp8FilterRow;
  vp8FilterRowScalar: Vp8FilterRow;
  vp8UpsampleRows: Vp8UpsampleRows;
  vp8UpsampleRowsScalar: Vp8UpsampleRows;
  vp8ReconstructRow: Vp8ReconstructRow;
  vp8ParseRow: Vp8ParseRow;
}

// A lossy WebP token partition's boolean decoder (./webp/vp8.ts BoolReader): its registers, position in
// data and end, read and written back by vp8DecodeRow.
export interface Vp8Reader {
  readonly data: Uint8Array;
  readonly end: number;
  value: number;
  range: number;
  bits: number;
  pos: number;
  eof: boolean;
}

// One component of an interleaved MCU as the Huffman kernel places its blocks: block (y, x) of MCU column
// mx at element band + ((y * perRow) + mx * h + x) * 64 of the coefficient band; its DC coefficient alone
// when dcOnly (a 1x1 IDCT reads nothing else).
export interface McuComponent {
  h: number;
  v: number;
  band: number;
  perRow: number;
  dcOnly: boolean;
}

// assembly/image/huffman.ts: a table slot's layout, the reader state's words and how a call ended.
const SLOT_BYTES = 9616;
const SLOT_LOOKUP = 8192;
const SLOT_MAX_CODE = 9216;
const SLOT_VAL_OFFSET = 9288;
const SLOT_SYMBOLS = 9360;
const S_POS = 0;
const S_ACC = 1;
const S_BITS = 2;
const S_PAD = 3;
const S_AT_MARKER = 4;
const S_PREDS = 5;
const S_COMPONENTS = 9;
const S_MX = 10;
const S_STATUS = 11;
const S_COMPONENT = 12;
const S_DC_ONLY = 32;
const NEED_MORE = 2;
const TRUNCATED = 3;

// assembly/image/progressive.ts: its reader state's words and the AC scan kinds of decodeAcBlocks.
const P_EOBRUN = 5;
const P_STATUS = 6;
const P_PREDS = 7;
const P_COMPONENTS = 11;
const P_MX = 12;
const P_COMPONENT = 13;
const P_LAYOUT = 33;
export const AC_FIRST_FULL = 0;
export const AC_FIRST_COMPACT = 1;
export const AC_REFINE_FULL = 2;
export const AC_REFINE_COMPACT = 3;
export const AC_REFINE_DROPPED = 4;

// One component of a progressive DC scan's MCU in the band: block (y, x) of MCU column mx at byte
// at + ((y * perRow) + mx * h + x) * blockBytes of memory.
export interface DcComponent {
  h: number;
  v: number;
  at: number;
  perRow: number;
  blockBytes: number;
}

// decodeMcus's answers besides a count (and decodeAcBlocks', decodeDcMcus'): the data ran out (the JPEG is truncated there), or the MCUs need
// more entropy bytes than scratch holds (the caller decodes one in JavaScript).
export const MCUS_TRUNCATED = -2;
export const MCUS_TOO_LARGE = -1;

// Entropy bytes copied per call at first; doubled whenever a call runs past them.
const FIRST_CHUNK_BYTES = 32 << 10;

// Bytes kept free after each row in scratch, so a vector load or store near a row's end stays in memory.
const PAD = 64;

// The most the scratch areas grow to (memory is never given back): 1.5 MiB of coefficients is a 4:2:0
// MCU row about 10,000 pixels wide; 512 KiB of rows, one 8-row band of a 64K-wide component or the
// upsampling rows of a 20,000-pixel-wide image; as much again for the resize's weights. Wider images
// take the JavaScript paths.
export const MAX_COEFFICIENT_BYTES = 3 << 19;
const MAX_ROW_BYTES = 1 << 19;

// Token bytes vp8DecodeRow copies per call, and the most a macroblock's tokens take (assembly/image/
// vp8-tokens.ts MB_BYTES: a call stops before a macroblock with fewer left, unless they run to the end).
const VP8_TOKEN_BYTES = 64 << 10;
const VP8_MB_TOKEN_BYTES = 8000 + 16;

// The plane rows vp8FilterRow copies: a macroblock row and the 4 above it the filter reads.
const VP8_Y_ROWS = 20;
const VP8_UV_ROWS = 12;

export class DecodeKernels {
  readonly exports: DecodeExports;
  private heap: Uint8Array;
  private coefView: Int32Array;
  private int16: Int16Array;
  private uint32: Uint32Array;
  private base = 0;
  // Scratch is three areas: a band of coefficients (kept zero between uses: the IDCT zeroes what it read),
  // the rows of one call, and the resize coefficients last copied in (kept while the same ones are used).
  private coefCapacity = 0;
  private rowCapacity = 0;
  private tableCapacity = 0;
  private coefsClean = true;
  private table: Coefficients | null = null;
  // The Huffman kernel's table slots (by identity: a table is never changed once built), and the entropy
  // bytes in the row area: data[chunkStart..chunkEnd) of `chunkData`, valid until scratch is used again.
  private readonly slots: (HuffmanTable | null)[] = new Array(8).fill(null);
  private chunkData: Uint8Array | null = null;
  private chunkStart = 0;
  private chunkEnd = 0;
  // Entropy bytes copied per call; tests set it small so that calls run past them.
  chunkBytes = FIRST_CHUNK_BYTES;
  // Lossy WebP token bytes copied per vp8ParseRow call (at least a macroblock's most, 8000); tests set it
  // small so that rows take several calls.
  vp8TokenBytes = VP8_TOKEN_BYTES;
  // The progressive kernels' table slots and compact layout (by identity), and the stretch of a store
  // copied into the coefficient area: its arrays, first elements, lengths and byte offsets in memory.
  private readonly progressiveSlots: (HuffmanTable | null)[] = new Array(4).fill(null);
  private progressiveLayout: Int8Array | null = null;
  // dequantize's tables last written (by identity).
  private quant: Int32Array | null = null;
  private natural: Int8Array | null = null;
  private readonly band = {
    coefs: null as Int16Array | null,
    coefFrom: 0,
    coefLength: 0,
    coefAt: 0, // byte offset in memory
    aux: null as Uint8Array | Uint32Array | null,
    auxFrom: 0,
    auxLength: 0,
    auxAt: 0,
  };

  constructor(module: WebAssembly.Module) {
    this.exports = new WebAssembly.Instance(module, {}).exports as unknown as DecodeExports;
    this.heap = new Uint8Array(this.exports.memory.buffer);
    this.coefView = new Int32Array(this.exports.memory.buffer);
    this.int16 = new Int16Array(this.exports.memory.buffer);
    this.uint32 = new Uint32Array(this.exports.memory.buffer);
  }

  // Its wasm memory: it grows with the widest image decoded and is never given back.
  get memoryBytes(): number {
    return this.exports.memory.buffer.byteLength;
  }

  // Grows the areas to at least these sizes; renews the views when memory grew.
  private fit(coefBytes: number, rowBytes: number, tableBytes = 0): void {
    if (coefBytes > this.coefCapacity || rowBytes > this.rowCapacity || tableBytes > this.tableCapacity) {
      // The coefficient area may now cover bytes another area held; the table area has moved.
      if (coefBytes > this.coefCapacity) this.coefsClean = false;
      this.table = null;
      // Each area 16-byte aligned, for the i32 views and the vector loads.
      const align = (n: number) => (n + 15) & ~15;
      const coefCapacity = Math.max(align(coefBytes), this.coefCapacity);
      const rowCapacity = Math.max(align(rowBytes), this.rowCapacity);
      const tableCapacity = Math.max(align(tableBytes), this.tableCapacity);
      const base = this.exports.reserve(coefCapacity + rowCapacity + tableCapacity);
      if (base === 0) throw new RangeError("the decode kernels' memory cannot grow");
      this.base = base;
      this.coefCapacity = coefCapacity;
      this.rowCapacity = rowCapacity;
      this.tableCapacity = tableCapacity;
    }
    if (this.heap.buffer !== this.exports.memory.buffer) {
      this.heap = new Uint8Array(this.exports.memory.buffer);
      this.coefView = new Int32Array(this.exports.memory.buffer);
    }
  }

  // The row area for `bytes`; its offset in memory.
  private scratch(bytes: number): number {
    this.chunkData = null;
    this.fit(0, bytes);
    return this.base + this.coefCapacity;
  }

  // The most area() gives.
  readonly maxScratchBytes = MAX_ROW_BYTES;

  // The row area as `bytes` of scratch for a caller's own layout (./png): its offset in memory and the
  // memory's bytes, valid until the next call into this object.
  area(bytes: number): { at: number; heap: Uint8Array } {
    if (bytes > MAX_ROW_BYTES) throw new RangeError(`${bytes} bytes of scratch is past the kernels' bound`);
    const at = this.scratch(bytes);
    return { at, heap: this.heap };
  }

  // Whether a band of `blocks` blocks and an IDCT output of `outBytes` fit the scratch bounds.
  fitsBand(blocks: number, outBytes: number): boolean {
    return blocks * 256 <= MAX_COEFFICIENT_BYTES && outBytes + PAD <= MAX_ROW_BYTES;
  }

  // Whether h2v2YccRow fits them for this output width.
  fitsRow(width: number): boolean {
    return this.rowBytes(width) <= MAX_ROW_BYTES;
  }

  private rowBytes(width: number): number {
    return width + PAD + 4 * (Math.ceil(width / 2) + 1 + PAD) + 3 * width + PAD;
  }

  // A zeroed band of `blocks` blocks' coefficients (64 i32 each, natural order) to decode into, as an
  // Int32Array over memory and the index of its first element; valid until the next call into this object.
  // The band stays in use (not clean) until idct8Band has read all of it.
  coefficients(blocks: number): { view: Int32Array; at: number } {
    const bytes = blocks * 256;
    this.fit(bytes, 0);
    const at = this.base >> 2;
    if (!this.coefsClean) this.coefView.fill(0, at, at + (this.coefCapacity >> 2));
    this.coefsClean = false;
    this.chunkData = null;
    return { view: this.coefView, at };
  }

  // The coefficient band's current view (memory may have grown since coefficients() gave one).
  coefficientView(): Int32Array {
    this.fit(0, 0);
    return this.coefView;
  }

  // The Huffman and quantization tables of a sequential scan's components (at most four) for decodeMcus.
  sequentialTables(dcs: HuffmanTable[], acs: HuffmanTable[], qs: Int32Array[]): void {
    const e = this.exports;
    const heap = () => this.heap.buffer;
    const put = (slot: number, t: HuffmanTable) => {
      if (this.slots[slot] === t) return;
      // The sequential kernel's AC slots (4 on) take its fast table with the valueless codes in it.
      writeTable(heap(), e.huffmanTables() + slot * SLOT_BYTES, t, slot < 4 ? t.fastAc : kernelFastAc(t));
      this.slots[slot] = t;
    };
    for (let i = 0; i < dcs.length; i++) {
      put(i, dcs[i]);
      put(4 + i, acs[i]);
      new Int32Array(heap(), e.huffmanQuant() + i * 256, 64).set(qs[i]);
    }
  }

  // Decodes up to `mcus` MCUs of a sequential scan from reader r (its state and the DC predictors `preds`
  // are read and written back) into the band of coefficients() at element `at`, starting at MCU column mx;
  // the tables are sequentialTables' last. core/image/jpeg/huffman.ts decodeBlock on each block is the
  // reference. Returns the MCUs decoded (fewer after an MCU that read past the segment's data), or
  // MCUS_TRUNCATED / MCUS_TOO_LARGE with r and preds at the end of the last whole MCU.
  decodeMcus(
    r: BitReader,
    preds: Int32Array,
    components: McuComponent[],
    at: number,
    mx: number,
    mcus: number,
  ): number {
    const e = this.exports;
    const state = e.huffmanState() >> 2;
    let total = 0;
    for (;;) {
      const data = r.data;
      const pos = r.pos;
      // The copied bytes must start at or before the reader and, unless they run to the end, past it.
      if (this.chunkData !== data || pos < this.chunkStart || (pos >= this.chunkEnd && this.chunkEnd < data.length)) {
        const length = Math.min(data.length - pos, this.chunkBytes);
        const dataAt = this.scratch(length + PAD);
        this.heap.set(data.subarray(pos, pos + length), dataAt);
        this.chunkData = data;
        this.chunkStart = pos;
        this.chunkEnd = pos + length;
      }
      const dataAt = this.base + this.coefCapacity;
      const s = this.coefView;
      s[state + S_POS] = r.atMarker ? 0 : pos - this.chunkStart;
      s[state + S_ACC] = r.acc;
      s[state + S_BITS] = r.bits;
      s[state + S_PAD] = r.pad;
      s[state + S_AT_MARKER] = r.atMarker ? 1 : 0;
      s.set(preds.subarray(0, components.length), state + S_PREDS);
      s[state + S_COMPONENTS] = components.length;
      s[state + S_MX] = mx;
      for (let i = 0; i < components.length; i++) {
        const c = components[i];
        const o = state + S_COMPONENT + 4 * i;
        s[o] = c.h;
        s[o + 1] = c.v;
        s[o + 2] = c.band * 4;
        s[o + 3] = c.perRow;
        s[state + S_DC_ONLY + i] = c.dcOnly ? 1 : 0;
      }
      const final = this.chunkEnd === data.length ? 1 : 0;
      const done = e.decodeMcus(dataAt, this.chunkEnd - this.chunkStart, final, mcus, at << 2);
      if (done > 0) {
        r.pos = r.atMarker && s[state + S_AT_MARKER] === 1 ? r.pos : this.chunkStart + s[state + S_POS];
        r.acc = s[state + S_ACC];
        r.bits = s[state + S_BITS];
        r.pad = s[state + S_PAD];
        r.atMarker = s[state + S_AT_MARKER] === 1;
        for (let i = 0; i < components.length; i++) preds[i] = s[state + S_PREDS + i];
        total += done;
        mx += done;
        mcus -= done;
      }
      const status = s[state + S_STATUS];
      if (status === TRUNCATED) return MCUS_TRUNCATED;
      if (status !== NEED_MORE || mcus === 0) return total;
      // Ran past the copied bytes: again from the reader's position with more of them.
      if (done === 0) {
        if (this.chunkBytes + PAD >= MAX_ROW_BYTES) return total > 0 ? total : MCUS_TOO_LARGE;
        this.chunkBytes = Math.min(2 * this.chunkBytes, MAX_ROW_BYTES - PAD);
      }
      this.chunkData = null;
    }
  }

  // The entropy bytes from reader r's position in the row area (copied unless the last copy covers it);
  // their offset in memory. The copy starts at or before the reader and, unless it runs to the end, past it.
  private entropyFrom(r: BitReader): number {
    const data = r.data;
    const pos = r.pos;
    if (this.chunkData !== data || pos < this.chunkStart || (pos >= this.chunkEnd && this.chunkEnd < data.length)) {
      const length = Math.min(data.length - pos, this.chunkBytes);
      const dataAt = this.scratch(length + PAD);
      this.heap.set(data.subarray(pos, pos + length), dataAt);
      this.chunkData = data;
      this.chunkStart = pos;
      this.chunkEnd = pos + length;
    }
    return this.base + this.coefCapacity;
  }

  // Reader r's state into a kernel's state words at element `state`.
  private readerIn(r: BitReader, state: number): void {
    const s = this.coefView;
    s[state + S_POS] = r.atMarker ? 0 : r.pos - this.chunkStart;
    s[state + S_ACC] = r.acc;
    s[state + S_BITS] = r.bits;
    s[state + S_PAD] = r.pad;
    s[state + S_AT_MARKER] = r.atMarker ? 1 : 0;
  }

  // And back, after a call that decoded something.
  private readerOut(r: BitReader, state: number): void {
    const s = this.coefView;
    r.pos = r.atMarker && s[state + S_AT_MARKER] === 1 ? r.pos : this.chunkStart + s[state + S_POS];
    r.acc = s[state + S_ACC];
    r.bits = s[state + S_BITS];
    r.pad = s[state + S_PAD];
    r.atMarker = s[state + S_AT_MARKER] === 1;
  }

  // After a call that ran past the copied bytes without decoding anything: a longer copy next time, or
  // false when scratch cannot hold a longer one.
  private longerChunk(): boolean {
    if (this.chunkBytes + PAD >= MAX_ROW_BYTES) return false;
    this.chunkBytes = Math.min(2 * this.chunkBytes, MAX_ROW_BYTES - PAD);
    return true;
  }

  // Copies a stretch of a progressive AC scan's store into the coefficient area for decodeAcBlocks:
  // coefs[coefFrom..coefFrom + coefLength) and aux[auxFrom..auxFrom + auxLength) (its last-nonzero indices
  // or nonzero bits). False when they do not fit the scratch bounds. They stay there, changed by the
  // kernel, until progressiveBandBack copies them back.
  progressiveBand(
    coefs: Int16Array,
    coefFrom: number,
    coefLength: number,
    aux: Uint8Array | Uint32Array,
    auxFrom: number,
    auxLength: number,
  ): boolean {
    const coefBytes = (2 * coefLength + 15) & ~15;
    const bytes = coefBytes + aux.BYTES_PER_ELEMENT * auxLength;
    if (bytes + PAD > MAX_COEFFICIENT_BYTES) return false;
    // A larger coefficient area moves the row area, and the entropy bytes copied there with it. The kernels
    // read a block's coefficients as whole vectors, past the last one's end.
    if (bytes + PAD > this.coefCapacity) this.chunkData = null;
    this.fit(bytes + PAD, 0);
    this.coefsClean = false;
    const b = this.band;
    b.coefs = coefs;
    b.coefFrom = coefFrom;
    b.coefLength = coefLength;
    b.coefAt = this.base;
    b.aux = aux;
    b.auxFrom = auxFrom;
    b.auxLength = auxLength;
    b.auxAt = this.base + coefBytes;
    this.int16View().set(coefs.subarray(coefFrom, coefFrom + coefLength), b.coefAt >> 1);
    this.auxView(aux).set(aux.subarray(auxFrom, auxFrom + auxLength), b.auxAt / aux.BYTES_PER_ELEMENT);
    return true;
  }

  progressiveBandBack(): void {
    const b = this.band;
    if (!b.coefs || !b.aux) return;
    const at = b.coefAt >> 1;
    b.coefs.set(this.int16View().subarray(at, at + b.coefLength), b.coefFrom);
    const auxAt = b.auxAt / b.aux.BYTES_PER_ELEMENT;
    b.aux.set(this.auxView(b.aux).subarray(auxAt, auxAt + b.auxLength), b.auxFrom);
    b.coefs = null;
    b.aux = null;
  }

  // `bytes` of the coefficient area for a progressive DC scan's coefficients, gathered there by the caller
  // (an Int16Array over memory and the element index of the area; memory may grow at the next call into
  // this object: int16View() gives the current view), or null when they do not fit the scratch bounds.
  progressiveScratch(bytes: number): { view: Int16Array; at: number } | null {
    if (bytes + PAD > MAX_COEFFICIENT_BYTES) return null;
    if (bytes + PAD > this.coefCapacity) this.chunkData = null;
    this.fit(bytes + PAD, 0);
    this.coefsClean = false;
    return { view: this.int16View(), at: this.base >> 1 };
  }

  // Views of all of memory as int16 (and as uint32, for auxView), renewed when it grew.
  int16View(): Int16Array {
    if (this.int16.buffer !== this.exports.memory.buffer) {
      this.int16 = new Int16Array(this.exports.memory.buffer);
      this.uint32 = new Uint32Array(this.exports.memory.buffer);
    }
    return this.int16;
  }

  // A view of all of memory of the aux array's type.
  private auxView(aux: Uint8Array | Uint32Array): Uint8Array | Uint32Array {
    this.int16View();
    this.fit(0, 0);
    return aux instanceof Uint32Array ? this.uint32 : this.heap;
  }

  // The Huffman tables of a progressive scan (its components' DC tables, or the one AC table) and, for an
  // AC scan over a compact store, its layout: zigzag index -> kept slot (-1 if dropped; at most 32 kept).
  progressiveTables(tables: HuffmanTable[], keepZigzag: Int8Array | null): void {
    const e = this.exports;
    this.fit(0, 0);
    for (let i = 0; i < tables.length; i++) {
      if (this.progressiveSlots[i] === tables[i]) continue;
      writeTable(this.heap.buffer, e.progressiveTables() + i * SLOT_BYTES, tables[i]);
      this.progressiveSlots[i] = tables[i];
    }
    if (keepZigzag && this.progressiveLayout !== keepZigzag) {
      this.coefView.set(keepZigzag, e.progressiveKeep() >> 2);
      this.coefView[(e.progressiveState() >> 2) + P_LAYOUT] = 1;
      this.progressiveLayout = keepZigzag;
    }
  }

  // Decodes up to `blocks` blocks of a progressive AC scan of `kind` (AC_FIRST_FULL ...) from reader r (its
  // state and the EOB run eobrun[0] read and written back), from block `from` of the band progressiveBand
  // copied in: its first part the coefficients (`kept` per block), its second the last-nonzero indices
  // (full store) or nonzero bits (compact). core/image/jpeg/huffman.ts decodeAcFirst ... decodeAcRefineDropped
  // on each block are the reference. Returns the blocks decoded (fewer after one that read past the
  // segment's data), or MCUS_TRUNCATED / MCUS_TOO_LARGE with r and eobrun after the last whole block and
  // the band's next block as it was.
  decodeAcBlocks(
    r: BitReader,
    eobrun: Int32Array,
    from: number,
    blocks: number,
    kind: number,
    kept: number,
    ss: number,
    se: number,
    al: number,
  ): number {
    const e = this.exports;
    const state = e.progressiveState() >> 2;
    const band = this.band;
    const auxPerBlock = kind === AC_FIRST_FULL || kind === AC_REFINE_FULL ? 1 : 2;
    let total = 0;
    for (;;) {
      const dataAt = this.entropyFrom(r);
      this.readerIn(r, state);
      const s = this.coefView;
      s[state + P_EOBRUN] = eobrun[0];
      const final = this.chunkEnd === r.data.length ? 1 : 0;
      const at = from + total;
      const done = e.decodeAcBlocks(
        dataAt,
        this.chunkEnd - this.chunkStart,
        final,
        blocks - total,
        band.coefAt + 2 * at * kept,
        band.auxAt + (band.aux as Uint8Array | Uint32Array).BYTES_PER_ELEMENT * at * auxPerBlock,
        kind,
        kept,
        ss,
        se,
        al,
      );
      if (done > 0) {
        this.readerOut(r, state);
        eobrun[0] = s[state + P_EOBRUN];
        total += done;
      }
      const status = s[state + P_STATUS];
      if (status !== NEED_MORE && status !== TRUNCATED) return total;
      // Stopped inside a block: it goes back to what the store holds, to be decoded again.
      const next = from + total;
      if (band.coefs && band.coefLength > 0) {
        const first = band.coefFrom + next * kept;
        this.int16View().set(band.coefs.subarray(first, first + kept), (band.coefAt >> 1) + next * kept);
      }
      if (band.aux) {
        const first = band.auxFrom + next * auxPerBlock;
        const at = band.auxAt / band.aux.BYTES_PER_ELEMENT + next * auxPerBlock;
        this.auxView(band.aux).set(band.aux.subarray(first, first + auxPerBlock), at);
      }
      if (status === TRUNCATED) return MCUS_TRUNCATED;
      if (total === blocks) return total;
      if (done === 0 && !this.longerChunk()) return total > 0 ? total : MCUS_TOO_LARGE;
      this.chunkData = null;
    }
  }

  // Decodes up to `mcus` MCUs of a progressive DC scan (first, or refinement when `refine`) at bit
  // position al from reader r (its state and the predictors `preds` read and written back) into the band
  // progressiveBand copied in, laid out as `components` say, from MCU column mx. decodeDcFirst and
  // decodeDcRefine on each block are the reference. Returns the MCUs decoded (fewer after one that read
  // past the segment's data), or MCUS_TRUNCATED / MCUS_TOO_LARGE with r and preds after the last whole MCU.
  decodeDcMcus(
    r: BitReader,
    preds: Int32Array,
    components: DcComponent[],
    mx: number,
    mcus: number,
    refine: boolean,
    al: number,
  ): number {
    const e = this.exports;
    const state = e.progressiveState() >> 2;
    let total = 0;
    for (;;) {
      const dataAt = this.entropyFrom(r);
      this.readerIn(r, state);
      const s = this.coefView;
      s.set(preds.subarray(0, components.length), state + P_PREDS);
      s[state + P_COMPONENTS] = components.length;
      s[state + P_MX] = mx + total;
      for (let i = 0; i < components.length; i++) {
        const c = components[i];
        const o = state + P_COMPONENT + 5 * i;
        s[o] = c.h;
        s[o + 1] = c.v;
        s[o + 2] = c.at;
        s[o + 3] = c.perRow;
        s[o + 4] = c.blockBytes;
      }
      const final = this.chunkEnd === r.data.length ? 1 : 0;
      const done = e.decodeDcMcus(dataAt, this.chunkEnd - this.chunkStart, final, mcus - total, refine ? 1 : 0, al);
      if (done > 0) {
        this.readerOut(r, state);
        for (let i = 0; i < components.length; i++) preds[i] = s[state + P_PREDS + i];
        total += done;
      }
      const status = s[state + P_STATUS];
      if (status === TRUNCATED) return MCUS_TRUNCATED;
      if (status !== NEED_MORE || total === mcus) return total;
      if (done === 0 && !this.longerChunk()) return total > 0 ? total : MCUS_TOO_LARGE;
      this.chunkData = null;
    }
  }

  // Blocks of a coefficient store (int16, `kept` per block: coefs[from..from + blocks * kept)) dequantized by
  // q into the band of coefficients() at element `at`: kept slot i at natural index natural[i] of its block.
  dequantize(
    coefs: Int16Array,
    from: number,
    blocks: number,
    kept: number,
    natural: Int8Array,
    q: Int32Array,
    at: number,
  ): void {
    const e = this.exports;
    const bytes = 2 * blocks * kept;
    const srcAt = this.scratch(bytes + PAD);
    new Int16Array(this.heap.buffer, srcAt, blocks * kept).set(coefs.subarray(from, from + blocks * kept));
    const s = this.coefView;
    const quant = e.progressiveQuant() >> 2;
    if (this.quant !== q) {
      s.set(q.subarray(0, 64), quant);
      this.quant = q;
    }
    if (this.natural !== natural) {
      s.set(natural, quant + 64);
      this.natural = natural;
    }
    e.dequantizeBlocks(srcAt, kept, blocks, at << 2);
  }

  // Marks the coefficient band clean: every block of it went through idct8Band, which zeroes them.
  released(): void {
    this.coefsClean = true;
  }

  // The blocks of the coefficient band from element `at` (rows of blocksPerRow blocks) through the IDCT of
  // `size` 8, 4 or 2 into plane[planeOff..], rows `stride` apart (./jpeg/idct.ts idct8, idct4, idct2 on
  // each block).
  idctBand(
    size: number,
    at: number,
    blocksPerRow: number,
    rows: number,
    plane: Uint8Array,
    planeOff: number,
    stride: number,
    scalar = false,
  ): void {
    const bytes = rows * size * stride;
    const outAt = this.scratch(bytes + PAD);
    const e = this.exports;
    let run: IdctBand;
    if (size === 8) run = scalar ? e.idct8BandScalar : e.idct8Band;
    else if (size === 4) run = scalar ? e.idct4BandScalar : e.idct4Band;
    else if (size === 2) run = scalar ? e.idct2BandScalar : e.idct2Band;
    else throw new RangeError(`no IDCT kernel of size ${size}`);
    run(at << 2, blocksPerRow, rows, outAt, stride);
    plane.set(this.heap.subarray(outAt, outAt + bytes), planeOff);
  }

  // Whether horizontalRow fits the scratch bounds for these rows and coefficients.
  fitsResample(inWidth: number, outWidth: number, c: Coefficients): boolean {
    return 3 * (inWidth + outWidth) + 2 * PAD <= MAX_ROW_BYTES && 4 * outWidth * (c.ksize + 2) <= MAX_ROW_BYTES;
  }

  // ../preprocess/resize.ts horizontalRow (same arguments; `inWidth` pixels of src from `from`): the
  // horizontal pass of the resize on one RGB row. `scalar` runs the kernel's scalar twin.
  horizontalRow(
    src: Uint8Array,
    from: number,
    inWidth: number,
    out: Uint8Array,
    at: number,
    outWidth: number,
    c: Coefficients,
    scalar = false,
  ): void {
    const tableBytes = 4 * outWidth * (c.ksize + 2);
    const srcAt = this.scratch(3 * (inWidth + outWidth) + 2 * PAD);
    this.fit(0, 0, tableBytes);
    const tableAt = this.base + this.coefCapacity + this.rowCapacity;
    const boundsAt = tableAt + 4 * outWidth * c.ksize;
    if (this.table !== c) {
      new Int32Array(this.heap.buffer, tableAt, outWidth * c.ksize).set(c.weights.subarray(0, outWidth * c.ksize));
      new Int32Array(this.heap.buffer, boundsAt, 2 * outWidth).set(c.bounds.subarray(0, 2 * outWidth));
      this.table = c;
    }
    const heap = this.heap;
    heap.set(src.subarray(from, from + 3 * inWidth), srcAt);
    const outAt = srcAt + 3 * inWidth + PAD;
    const run = scalar ? this.exports.horizontalRowScalar : this.exports.horizontalRow;
    run(srcAt, outAt, outWidth, boundsAt, tableAt, c.ksize);
    out.set(heap.subarray(outAt, outAt + 3 * outWidth), at);
  }

  // Whether verticalRow fits the scratch bounds for `count` rows of `length` bytes.
  fitsVertical(count: number, length: number): boolean {
    return 4 * count + (count + 1) * (length + PAD) <= MAX_ROW_BYTES;
  }

  // ../preprocess/resize.ts verticalRow (same arguments): one output row of the vertical pass from the
  // `count` rows of src at at[0..count), `stride` bytes each, weighted by weights[kBase..], into
  // out[o..o + stride). `scalar` runs the kernel's scalar twin.
  verticalRow(
    src: Uint8Array,
    at: Int32Array,
    count: number,
    weights: Int32Array,
    kBase: number,
    stride: number,
    out: Uint8Array,
    o: number,
    scalar = false,
  ): void {
    const rowBytes = (stride + PAD) & ~15;
    const weightsAt = this.scratch(4 * count + (count + 1) * rowBytes + 16);
    const rowsAt = (weightsAt + 4 * count + 15) & ~15;
    const outAt = rowsAt + count * rowBytes;
    const heap = this.heap;
    new Int32Array(heap.buffer, weightsAt, count).set(weights.subarray(kBase, kBase + count));
    for (let y = 0; y < count; y++) heap.set(src.subarray(at[y], at[y] + stride), rowsAt + y * rowBytes);
    const run = scalar ? this.exports.verticalRowScalar : this.exports.verticalRow;
    run(rowsAt, rowBytes, count, weightsAt, outAt, stride);
    out.set(heap.subarray(outAt, outAt + stride), o);
  }

  // Whether vp8FilterRow fits the scratch bounds for planes of these strides.
  fitsVp8Filter(yStride: number, uvStride: number): boolean {
    return VP8_Y_ROWS * yStride + 2 * VP8_UV_ROWS * uvStride + yStride / 4 + 4 * PAD <= MAX_ROW_BYTES;
  }

  // ./webp/vp8.ts filterMb on every macroblock of a row: the row's 16 luma rows from plane row yRow of Y
  // (yStride bytes each) and its 8 chroma rows from row uvRow of U and V, with the 4 rows above each, are
  // filtered in place; info holds 4 bytes per macroblock column (limit, interior limit, hev threshold,
  // inner edges). `scalar` runs the kernel's scalar twin.
  vp8FilterRow(
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
    simple: boolean,
    scalar = false,
  ): void {
    const yBytes = VP8_Y_ROWS * yStride;
    const uvBytes = VP8_UV_ROWS * uvStride;
    const yAt = this.scratch(yBytes + 2 * uvBytes + 4 * mbW + 4 * PAD);
    const uAt = yAt + yBytes + PAD;
    const vAt = uAt + uvBytes + PAD;
    const infoAt = vAt + uvBytes + PAD;
    const heap = this.heap;
    const yFrom = (yRow - 4) * yStride;
    const uvFrom = (uvRow - 4) * uvStride;
    heap.set(Y.subarray(yFrom, yFrom + yBytes), yAt);
    heap.set(U.subarray(uvFrom, uvFrom + uvBytes), uAt);
    heap.set(V.subarray(uvFrom, uvFrom + uvBytes), vAt);
    heap.set(info.subarray(0, 4 * mbW), infoAt);
    const run = scalar ? this.exports.vp8FilterRowScalar : this.exports.vp8FilterRow;
    run(yAt + 4 * yStride, yStride, uAt + 4 * uvStride, vAt + 4 * uvStride, uvStride, infoAt, mbW, mbY, simple ? 1 : 0);
    Y.set(heap.subarray(yAt, yAt + yBytes), yFrom);
    U.set(heap.subarray(uAt, uAt + uvBytes), uvFrom);
    V.set(heap.subarray(vAt, vAt + uvBytes), uvFrom);
  }

  // Whether vp8DecodeRow fits the scratch bounds for a row of mbW macroblocks.
  fitsVp8DecodeRow(mbW: number, yStride: number, uvStride: number): boolean {
    const rows = mbW * (768 + 24 + 18 + 32 + 4 + 2 + 4) + VP8_Y_ROWS * yStride + 2 * VP8_UV_ROWS * uvStride;
    return rows + VP8_TOKEN_BYTES + 1056 + 96 + 32 + 12 * PAD <= MAX_ROW_BYTES;
  }

  // A macroblock row of ./webp/vp8.ts, from its tokens to its filtered pixels: parseResiduals on each
  // macroblock (reader r from its position, the coefficient probabilities `proba`, quant: 6 per segment;
  // mbs: 4 bytes a column, segment, skip flag, 4x4-predicted, and written back whether it has no non-zero
  // coefficient; topNz and topNzDc the contexts above, updated), reconstruct on each as vp8ReconstructRow,
  // then, unless filterType is 0, the loop filter as vp8FilterRow, with each column's strengths from
  // `strengths` (4 bytes for each segment and 16x16/4x4 prediction: limit, interior limit, hev threshold,
  // inner edges even without coefficients). The 4 plane rows above the row are copied in for the filter
  // and out with it. Returns false when the partition ran out (nothing is written to the planes then).
  vp8DecodeRow(
    r: Vp8Reader,
    proba: Uint8Array,
    quant: Int32Array,
    mbs: Uint8Array,
    topNz: Uint8Array,
    topNzDc: Uint8Array,
    modes: Uint8Array,
    top: Uint8Array,
    Y: Uint8Array,
    U: Uint8Array,
    V: Uint8Array,
    yStride: number,
    uvStride: number,
    yRow: number,
    uvRow: number,
    mbW: number,
    mbY: number,
    mbH: number,
    filterType: number,
    strengths: Uint8Array,
  ): boolean {
    const yBytes = VP8_Y_ROWS * yStride;
    const uvBytes = VP8_UV_ROWS * uvStride;
    const coeffAt = this.scratch(
      mbW * (768 + 24 + 18 + 32 + 4 + 2 + 4) + yBytes + 2 * uvBytes + VP8_TOKEN_BYTES + 1056 + 96 + 32 + 13 * PAD,
    );
    const acAt = coeffAt + 768 * mbW + PAD;
    const modesAt = acAt + 24 * mbW + PAD;
    const topAt = (modesAt + 18 * mbW + PAD + 3) & ~3;
    const yAt = topAt + 32 * mbW + PAD;
    const uAt = yAt + yBytes + PAD;
    const vAt = uAt + uvBytes + PAD;
    const mbsAt = vAt + uvBytes + PAD;
    const nzAt = mbsAt + 4 * mbW + PAD;
    const nzDcAt = nzAt + mbW + PAD;
    const probaAt = nzDcAt + mbW + PAD;
    const quantAt = (probaAt + 1056 + PAD + 3) & ~3;
    const stateAt = quantAt + 96 + PAD;
    const leftAt = stateAt + 24;
    const infoAt = leftAt + 8 + PAD;
    const chunkAt = infoAt + 4 * mbW + PAD;
    const heap = this.heap;
    const yFrom = (yRow - 4) * yStride;
    const uvFrom = (uvRow - 4) * uvStride;
    heap.set(Y.subarray(yFrom, yFrom + 4 * yStride), yAt);
    heap.set(U.subarray(uvFrom, uvFrom + 4 * uvStride), uAt);
    heap.set(V.subarray(uvFrom, uvFrom + 4 * uvStride), vAt);
    heap.set(modes.subarray(0, 18 * mbW), modesAt);
    heap.set(top.subarray(0, 32 * mbW), topAt);
    heap.set(mbs.subarray(0, 4 * mbW), mbsAt);
    heap.set(topNz.subarray(0, mbW), nzAt);
    heap.set(topNzDc.subarray(0, mbW), nzDcAt);
    heap.set(proba.subarray(0, 1056), probaAt);
    const words = new Int32Array(heap.buffer, quantAt, (stateAt + 32 - quantAt) >> 2);
    words.set(quant.subarray(0, 24));
    const state = (stateAt - quantAt) >> 2;
    words[state + 6] = 0; // the row's left contexts
    words[state + 7] = 0;
    const e = this.exports;
    for (let x = 0; x < mbW; ) {
      const length = Math.min(r.end - r.pos, Math.max(this.vp8TokenBytes, VP8_MB_TOKEN_BYTES));
      heap.set(r.data.subarray(r.pos, r.pos + length), chunkAt);
      words[state] = r.value;
      words[state + 1] = r.range;
      words[state + 2] = r.bits;
      words[state + 3] = 0;
      words[state + 4] = r.end - r.pos;
      words[state + 5] = r.eof ? 1 : 0;
      const final = r.pos + length === r.end ? 1 : 0;
      const at = e.vp8ParseRow(
        chunkAt,
        length,
        final,
        stateAt,
        probaAt,
        quantAt,
        mbsAt,
        x,
        mbW,
        nzAt,
        nzDcAt,
        leftAt,
        coeffAt,
        acAt,
      );
      r.value = words[state];
      r.range = words[state + 1];
      r.bits = words[state + 2];
      r.pos += words[state + 3];
      r.eof = words[state + 5] === 1;
      if (at < 0) return false;
      x = at;
    }
    const yRowAt = yAt + 4 * yStride;
    const uRowAt = uAt + 4 * uvStride;
    const vRowAt = vAt + 4 * uvStride;
    e.vp8ReconstructRow(coeffAt, acAt, modesAt, topAt, yRowAt, uRowAt, vRowAt, yStride, uvStride, mbW, mbY, mbH);
    mbs.set(heap.subarray(mbsAt, mbsAt + 4 * mbW));
    if (filterType > 0) {
      for (let x = 0; x < mbW; x++) {
        const f = 4 * (2 * mbs[4 * x] + mbs[4 * x + 2]);
        const at = infoAt + 4 * x;
        heap[at] = strengths[f];
        heap[at + 1] = strengths[f + 1];
        heap[at + 2] = strengths[f + 2];
        heap[at + 3] = strengths[f + 3] || !mbs[4 * x + 3] ? 1 : 0;
      }
      e.vp8FilterRow(yRowAt, yStride, uRowAt, vRowAt, uvStride, infoAt, mbW, mbY, filterType === 1 ? 1 : 0);
    }
    topNz.set(heap.subarray(nzAt, nzAt + mbW));
    topNzDc.set(heap.subarray(nzDcAt, nzDcAt + mbW));
    top.set(heap.subarray(topAt, topAt + 32 * mbW));
    Y.set(heap.subarray(yAt, yAt + yBytes), yFrom);
    U.set(heap.subarray(uAt, uAt + uvBytes), uvFrom);
    V.set(heap.subarray(vAt, vAt + uvBytes), uvFrom);
    return true;
  }

  // Whether vp8UpsampleRows fits the scratch bounds for `rows` lines of this width from planes of these
  // strides (their rows spanning at most rows + 1 luma and rows / 2 + 2 chroma rows).
  fitsVp8Upsample(width: number, rows: number, yStride: number, uvStride: number): boolean {
    const uvRows = (rows >> 1) + 2;
    return (rows + 1) * yStride + 2 * uvRows * uvStride + rows * (20 + 3 * width) + 5 * PAD <= MAX_ROW_BYTES;
  }

  // ./webp/vp8.ts upsampleLine on `rows` lines: line r's luma from plane row lines[3r] of Y, its near and far
  // chroma rows from rows lines[3r + 1] and lines[3r + 2] of U and V, into out[r * 3 * width..]. `scalar`
  // runs the kernel's scalar twin.
  vp8UpsampleRows(
    Y: Uint8Array,
    U: Uint8Array,
    V: Uint8Array,
    yStride: number,
    uvStride: number,
    lines: Int32Array,
    rows: number,
    width: number,
    out: Uint8Array,
    scalar = false,
  ): void {
    // The planes' rows the lines use, as one block each.
    let yFirst = lines[0];
    let yLast = yFirst;
    let uvFirst = lines[1];
    let uvLast = uvFirst;
    for (let r = 0; r < rows; r++) {
      const y = lines[3 * r];
      yFirst = Math.min(yFirst, y);
      yLast = Math.max(yLast, y);
      for (let k = 1; k < 3; k++) {
        const c = lines[3 * r + k];
        uvFirst = Math.min(uvFirst, c);
        uvLast = Math.max(uvLast, c);
      }
    }
    const yBytes = (yLast - yFirst + 1) * yStride;
    const uvBytes = (uvLast - uvFirst + 1) * uvStride;
    const outBytes = 3 * width * rows;
    const linesAt = this.scratch(20 * rows + yBytes + 2 * uvBytes + outBytes + 5 * PAD);
    const yAt = linesAt + 20 * rows + PAD;
    const uAt = yAt + yBytes + PAD;
    const vAt = uAt + uvBytes + PAD;
    const outAt = vAt + uvBytes + PAD;
    const heap = this.heap;
    heap.set(Y.subarray(yFirst * yStride, yFirst * yStride + yBytes), yAt);
    heap.set(U.subarray(uvFirst * uvStride, uvFirst * uvStride + uvBytes), uAt);
    heap.set(V.subarray(uvFirst * uvStride, uvFirst * uvStride + uvBytes), vAt);
    const d = new Int32Array(heap.buffer, linesAt, 5 * rows);
    for (let r = 0; r < rows; r++) {
      const near = (lines[3 * r + 1] - uvFirst) * uvStride;
      const far = (lines[3 * r + 2] - uvFirst) * uvStride;
      d[5 * r] = yAt + (lines[3 * r] - yFirst) * yStride;
      d[5 * r + 1] = uAt + near;
      d[5 * r + 2] = vAt + near;
      d[5 * r + 3] = uAt + far;
      d[5 * r + 4] = vAt + far;
    }
    const run = scalar ? this.exports.vp8UpsampleRowsScalar : this.exports.vp8UpsampleRows;
    run(linesAt, rows, outAt, width);
    out.set(heap.subarray(outAt, outAt + outBytes));
  }

  // Whether yccRows fits the scratch bounds for `rows` rows of these strides.
  fitsYccRows(yStride: number, cStride: number, width: number, rows: number): boolean {
    return rows * (yStride + 2 * cStride + 3 * width) + 4 * PAD <= MAX_ROW_BYTES;
  }

  // ./jpeg/color.ts yccToRgb on `rows` rows: row r from y[yo + r * yStride..], cb[cbo + r * cStride..] and
  // cr[cro + r * cStride..] (chroma at full resolution) into out[o + r * width * 3..]. `scalar` runs the
  // kernel's scalar twin.
  yccRows(
    y: Uint8Array,
    yo: number,
    yStride: number,
    cb: Uint8Array,
    cbo: number,
    cr: Uint8Array,
    cro: number,
    cStride: number,
    out: Uint8Array,
    o: number,
    width: number,
    rows: number,
    scalar = false,
  ): void {
    // Each plane's rows as they lie (the last one only `width` long), then the output.
    const yBytes = (rows - 1) * yStride + width;
    const cBytes = (rows - 1) * cStride + width;
    const yAt = this.scratch(yBytes + 2 * cBytes + 3 * width * rows + 4 * PAD);
    const cbAt = yAt + yBytes + PAD;
    const crAt = cbAt + cBytes + PAD;
    const outAt = crAt + cBytes + PAD;
    const heap = this.heap;
    heap.set(y.subarray(yo, yo + yBytes), yAt);
    heap.set(cb.subarray(cbo, cbo + cBytes), cbAt);
    heap.set(cr.subarray(cro, cro + cBytes), crAt);
    const run = scalar ? this.exports.yccRowsScalar : this.exports.yccRows;
    run(yAt, yStride, cbAt, crAt, cStride, outAt, width, rows);
    out.set(heap.subarray(outAt, outAt + 3 * width * rows), o);
  }

  // The fused 4:2:0 row of ./jpeg/color.ts h2v2YccRow (same arguments): h2v2 fancy upsampling of the two
  // chroma rows and YCbCr -> RGB into out[o..o + 3 * width). `scalar` runs the kernel's scalar twin.
  h2v2YccRow(
    y: Uint8Array,
    yo: number,
    cb: Uint8Array,
    cbNear: number,
    cbFar: number,
    cr: Uint8Array,
    crNear: number,
    crFar: number,
    chromaWidth: number,
    out: Uint8Array,
    o: number,
    width: number,
    scalar = false,
  ): void {
    const cw = chromaWidth + PAD;
    const yAt = this.scratch(width + PAD + 4 * cw + 3 * width + PAD);
    const cbNearAt = yAt + width + PAD;
    const cbFarAt = cbNearAt + cw;
    const crNearAt = cbFarAt + cw;
    const crFarAt = crNearAt + cw;
    const outAt = crFarAt + cw;
    const heap = this.heap;
    heap.set(y.subarray(yo, yo + width), yAt);
    heap.set(cb.subarray(cbNear, cbNear + chromaWidth), cbNearAt);
    heap.set(cb.subarray(cbFar, cbFar + chromaWidth), cbFarAt);
    heap.set(cr.subarray(crNear, crNear + chromaWidth), crNearAt);
    heap.set(cr.subarray(crFar, crFar + chromaWidth), crFarAt);
    const run = scalar ? this.exports.h2v2YccRowScalar : this.exports.h2v2YccRow;
    run(yAt, cbNearAt, cbFarAt, crNearAt, crFarAt, chromaWidth, outAt, width);
    out.set(heap.subarray(outAt, outAt + 3 * width), o);
  }
}

// A Huffman table into a kernel's table slot at byte `at` (the layout of assembly/image/huffman.ts), with
// `fastAc` as its fast table.
function writeTable(heap: ArrayBufferLike, at: number, t: HuffmanTable, fastAc = t.fastAc): void {
  new Int32Array(heap, at, fastAc.length).set(fastAc);
  new Uint16Array(heap, at + SLOT_LOOKUP, t.lookup.length).set(t.lookup);
  new Int32Array(heap, at + SLOT_MAX_CODE, 18).set(t.maxCode);
  new Int32Array(heap, at + SLOT_VAL_OFFSET, 18).set(t.valOffset);
  const symbols = new Uint8Array(heap, at + SLOT_SYMBOLS, 256);
  symbols.fill(0);
  symbols.set(t.symbols.subarray(0, 256));
}

// An AC table's fast table for the Huffman kernel: fastAc, plus the codes of the symbols without a value
// (end of block, and 16 zeros for run 15) that fit in its 11 bits, as run << 4 | code length: an entry
// below 256, where a coefficient's has a nonzero value above bit 8.
function kernelFastAc(t: HuffmanTable): Int32Array {
  const fast = t.fastAc.slice();
  const bits = 11;
  for (let peek = 0; peek < fast.length; peek++) {
    if (fast[peek] !== 0) continue;
    for (let len = 1; len <= bits; len++) {
      const code = peek >> (bits - len);
      if (code > t.maxCode[len]) continue;
      const symbol = t.symbols[(code + t.valOffset[len]) & 0xff];
      if ((symbol & 15) === 0) fast[peek] = (symbol & 0xf0) | len;
      break;
    }
  }
  return fast;
}

let kernelModule: WebAssembly.Module | null = null;
let installed: DecodeKernels | null = null;

// Installs build/decode.wasm's compiled module for every decode in this isolate (null: back to the
// JavaScript paths). It is instantiated at the first decode that asks for it, not at startup: an isolate
// that never decodes (the text Worker shares the entry point) never makes the instance.
export function installDecodeKernels(module: WebAssembly.Module | null): void {
  kernelModule = module;
  installed = null;
}

// The wasm memory of the isolate's kernels, 0 before the first decode made them.
export function decodeKernelBytes(): number {
  return installed ? installed.memoryBytes : 0;
}

// The installed kernels, or null: the decoders then use their JavaScript paths.
export function decodeKernels(): DecodeKernels | null {
  if (!installed && kernelModule) installed = new DecodeKernels(kernelModule);
  return installed;
}
