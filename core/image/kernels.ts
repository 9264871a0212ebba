// The decoders' wasm kernels (assembly/decode.ts, built into build/decode.wasm): installed once per isolate
// from the compiled module its runtime provides (the Worker imports it, Node reads the file). The decoders
// use them when installed and otherwise run the same arithmetic in JavaScript; both give Pillow's pixels.
//
// The module has its own small memory: each call copies its input rows into it, runs, and copies the result
// out, all in one synchronous step, so concurrent decodes (which interleave only at their yields) share one
// instance. The scratch area grows to the widest row seen: about 6 bytes per output pixel of one row.

import type { Coefficients } from "../preprocess/resize.ts";

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

interface DecodeExports {
  memory: WebAssembly.Memory;
  reserve(bytes: number): number;
  h2v2YccRow: YccRow;
  h2v2YccRowScalar: YccRow;
  idct8Band: IdctBand;
  idct8BandScalar: IdctBand;
  idct4Band: IdctBand;
  idct4BandScalar: IdctBand;
  idct2Band: IdctBand;
  idct2BandScalar: IdctBand;
  horizontalRow: HorizontalRow;
  horizontalRowScalar: HorizontalRow;
}

// Bytes kept free after each row in scratch, so a vector load or store near a row's end stays in memory.
const PAD = 64;

// The most the scratch areas grow to (memory is never given back): 1.5 MiB of coefficients is a 4:2:0
// MCU row about 10,000 pixels wide; 512 KiB of rows, one 8-row band of a 64K-wide component or the
// upsampling rows of a 20,000-pixel-wide image; as much again for the resize's weights. Wider images
// take the JavaScript paths.
export const MAX_COEFFICIENT_BYTES = 3 << 19;
export const MAX_ROW_BYTES = 1 << 19;

export class DecodeKernels {
  readonly exports: DecodeExports;
  private heap: Uint8Array;
  private coefView: Int32Array;
  private base = 0;
  // Scratch is three areas: a band of coefficients (kept zero between uses: the IDCT zeroes what it read),
  // the rows of one call, and the resize coefficients last copied in (kept while the same ones are used).
  private coefCapacity = 0;
  private rowCapacity = 0;
  private tableCapacity = 0;
  private coefsClean = true;
  private table: Coefficients | null = null;

  constructor(module: WebAssembly.Module) {
    this.exports = new WebAssembly.Instance(module, {}).exports as unknown as DecodeExports;
    this.heap = new Uint8Array(this.exports.memory.buffer);
    this.coefView = new Int32Array(this.exports.memory.buffer);
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
    this.fit(0, bytes);
    return this.base + this.coefCapacity;
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
    return { view: this.coefView, at };
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

let installed: DecodeKernels | null = null;

// Installs the kernels for every decode in this isolate from build/decode.wasm's compiled module (null:
// back to the JavaScript paths).
export function installDecodeKernels(module: WebAssembly.Module | null): DecodeKernels | null {
  installed = module ? new DecodeKernels(module) : null;
  return installed;
}

// The installed kernels, or null: the decoders then use their JavaScript paths.
export function decodeKernels(): DecodeKernels | null {
  return installed;
}
