// The arithmetic entropy decoder (ITU T.81 Annex D, F.2.4 and G.2.3; SOF9 sequential and SOF10
// progressive JPEGs), reading bytes as libjpeg-turbo's jdarith.c does, so damaged files decode or fail as
// they do in Pillow. Blocks come out as the Huffman readers leave them (./huffman.ts): a sequential block
// as raw coefficients in natural order, progressive bands into a plane's coefficient store.
//
// libjpeg-turbo cannot suspend inside an arithmetic-coded scan: when its input buffer runs dry there the
// decode fails. Pillow feeds it the file in 64 KB reads, so a scan decodes only if every byte it reads lies
// below the end of the read during which its scan header arrived (the file's end, for a file of one read).

import { EdgevitError } from "../../errors.ts";
import { corrupt, truncatedJpeg } from "./errors.ts";
import { ZIGZAG } from "./zigzag.ts";

// What the decoder reads of a scan header (./markers.ts's Scan, which imports this file's DAC reader).
interface Scan {
  components: { dcTable: number; acTable: number }[];
  ss: number;
  se: number;
  ah: number;
}

// Pillow's ImageFile.MAXBLOCK: the bytes it reads per call to the decoder.
export const PILLOW_READ_BYTES = 65536;

// The file offset an arithmetic-coded scan must not read at or past, given the offset just past its scan
// header: the end of the read that brought that header in (or the file's end).
export function pillowReadEnd(afterScanHeader: number, fileLength: number): number {
  return Math.min(Math.ceil(afterScanHeader / PILLOW_READ_BYTES) * PILLOW_READ_BYTES, fileLength);
}

// The conditioning a DAC marker sets per table (T.81 F.1.4.4): DC bounds L and U, AC threshold Kx.
// SOI resets them to L = 0, U = 1, Kx = 5; there are 16 tables of each kind.
export interface Conditioning {
  dcL: Uint8Array; // (16)
  dcU: Uint8Array; // (16)
  acK: Uint8Array; // (16)
}

export function newConditioning(): Conditioning {
  return { dcL: new Uint8Array(16), dcU: new Uint8Array(16).fill(1), acK: new Uint8Array(16).fill(5) };
}

// A DAC segment [start, end), checked as libjpeg's get_dac checks it. The tables are copied before they
// change: a decode's tables start as the header's.
export function readConditioning(b: Uint8Array, start: number, end: number, current: Conditioning): Conditioning {
  if ((end - start) % 2 !== 0) throw corrupt("its arithmetic conditioning marker has an odd length");
  const next = { dcL: current.dcL.slice(), dcU: current.dcU.slice(), acK: current.acK.slice() };
  for (let p = start; p < end; p += 2) {
    const index = b[p];
    const value = b[p + 1];
    if (index >= 32) throw corrupt("its arithmetic conditioning marker names a table above 15");
    if (index >= 16) {
      next.acK[index - 16] = value;
    } else {
      next.dcL[index] = value & 15;
      next.dcU[index] = value >> 4;
      if (next.dcL[index] > next.dcU[index]) throw corrupt("its arithmetic conditioning has a DC bound L above U");
    }
  }
  return next;
}

// T.81 Table D.2, four numbers per state: Qe, the next state after an LPS, after an MPS, and whether an
// LPS swaps the MPS sense. The last state (113) is the fixed one-half estimate libjpeg uses for sign bits
// and refinements (T.851).
// biome-ignore format: one state per row
const STATES = [
  0x5a1d, 1, 1, 1,
  0x2586, 14, 2, 0,
  0x1114, 16, 3, 0,
  0x080b, 18, 4, 0,
  0x03d8, 20, 5, 0,
  0x01da, 23, 6, 0,
  0x00e5, 25, 7, 0,
  0x006f, 28, 8, 0,
  0x0036, 30, 9, 0,
  0x001a, 33, 10, 0,
  0x000d, 35, 11, 0,
  0x0006, 9, 12, 0,
  0x0003, 10, 13, 0,
  0x0001, 12, 13, 0,
  0x5a7f, 15, 15, 1,
  0x3f25, 36, 16, 0,
  0x2cf2, 38, 17, 0,
  0x207c, 39, 18, 0,
  0x17b9, 40, 19, 0,
  0x1182, 42, 20, 0,
  0x0cef, 43, 21, 0,
  0x09a1, 45, 22, 0,
  0x072f, 46, 23, 0,
  0x055c, 48, 24, 0,
  0x0406, 49, 25, 0,
  0x0303, 51, 26, 0,
  0x0240, 52, 27, 0,
  0x01b1, 54, 28, 0,
  0x0144, 56, 29, 0,
  0x00f5, 57, 30, 0,
  0x00b7, 59, 31, 0,
  0x008a, 60, 32, 0,
  0x0068, 62, 33, 0,
  0x004e, 63, 34, 0,
  0x003b, 32, 35, 0,
  0x002c, 33, 9, 0,
  0x5ae1, 37, 37, 1,
  0x484c, 64, 38, 0,
  0x3a0d, 65, 39, 0,
  0x2ef1, 67, 40, 0,
  0x261f, 68, 41, 0,
  0x1f33, 69, 42, 0,
  0x19a8, 70, 43, 0,
  0x1518, 72, 44, 0,
  0x1177, 73, 45, 0,
  0x0e74, 74, 46, 0,
  0x0bfb, 75, 47, 0,
  0x09f8, 77, 48, 0,
  0x0861, 78, 49, 0,
  0x0706, 79, 50, 0,
  0x05cd, 48, 51, 0,
  0x04de, 50, 52, 0,
  0x040f, 50, 53, 0,
  0x0363, 51, 54, 0,
  0x02d4, 52, 55, 0,
  0x025c, 53, 56, 0,
  0x01f8, 54, 57, 0,
  0x01a4, 55, 58, 0,
  0x0160, 56, 59, 0,
  0x0125, 57, 60, 0,
  0x00f6, 58, 61, 0,
  0x00cb, 59, 62, 0,
  0x00ab, 61, 63, 0,
  0x008f, 61, 32, 0,
  0x5b12, 65, 65, 1,
  0x4d04, 80, 66, 0,
  0x412c, 81, 67, 0,
  0x37d8, 82, 68, 0,
  0x2fe8, 83, 69, 0,
  0x293c, 84, 70, 0,
  0x2379, 86, 71, 0,
  0x1edf, 87, 72, 0,
  0x1aa9, 87, 73, 0,
  0x174e, 72, 74, 0,
  0x1424, 72, 75, 0,
  0x119c, 74, 76, 0,
  0x0f6b, 74, 77, 0,
  0x0d51, 75, 78, 0,
  0x0bb6, 77, 79, 0,
  0x0a40, 77, 48, 0,
  0x5832, 80, 81, 1,
  0x4d1c, 88, 82, 0,
  0x438e, 89, 83, 0,
  0x3bdd, 90, 84, 0,
  0x34ee, 91, 85, 0,
  0x2eae, 92, 86, 0,
  0x299a, 93, 87, 0,
  0x2516, 86, 71, 0,
  0x5570, 88, 89, 1,
  0x4ca9, 95, 90, 0,
  0x44d9, 96, 91, 0,
  0x3e22, 97, 92, 0,
  0x3824, 99, 93, 0,
  0x32b4, 99, 94, 0,
  0x2e17, 93, 86, 0,
  0x56a8, 95, 96, 1,
  0x4f46, 101, 97, 0,
  0x47e5, 102, 98, 0,
  0x41cf, 103, 99, 0,
  0x3c3d, 104, 100, 0,
  0x375e, 99, 93, 0,
  0x5231, 105, 102, 0,
  0x4c0f, 106, 103, 0,
  0x4639, 107, 104, 0,
  0x415e, 103, 99, 0,
  0x5627, 105, 106, 1,
  0x50e7, 108, 107, 0,
  0x4b85, 109, 103, 0,
  0x5597, 110, 109, 0,
  0x504f, 111, 107, 0,
  0x5a10, 110, 111, 1,
  0x5522, 112, 109, 0,
  0x59eb, 112, 111, 1,
  0x5a1d, 113, 113, 0,
];

// The same packed for the decoder: Qe << 16 | next-after-MPS << 8 | swap << 7 | next-after-LPS.
const PACKED = Uint32Array.from({ length: STATES.length / 4 }, (_, i) => {
  const [qe, lps, mps, swap] = STATES.slice(4 * i, 4 * i + 4);
  return (qe << 16) | (mps << 8) | (swap << 7) | lps;
});

const FIXED_STATE = 113;
const DC_BINS = 64; // per table: S0 etc. for the five contexts (0..19), X1.. (20..), M2.. (34..)
const AC_BINS = 256; // per table: 3 per zigzag index (0..188), X2.. below Kx (189..), above (217..)
const TABLES = 16;

// The statistics areas a decode keeps (libjpeg's dc_stats and ac_stats) and the per-component state, for
// the memory plan.
export const ARITHMETIC_STATS_BYTES = TABLES * (DC_BINS + AC_BINS) + 1 + 2 * 4 * 4;

// What a decode's scans reuse, one after the other.
export class ArithmeticState {
  readonly dcStats = new Uint8Array(TABLES * DC_BINS);
  readonly acStats = new Uint8Array(TABLES * AC_BINS);
  readonly fixed = new Uint8Array(1); // the fixed one-half estimate's bin
  readonly lastDc = new Int32Array(4); // per scan component
  readonly dcContext = new Int32Array(4);
}

// One scan's decoder: the interval registers, the statistics areas, the DC predictions and contexts, and
// the reader over bytes [pos, end) of `data`.
export class ArithmeticDecoder {
  private readonly data: Uint8Array;
  pos: number;
  private readonly end: number; // the first byte the scan may not read
  private readonly endsFile: boolean; // end is the file's end, not that of one of Pillow's reads
  private readonly endOffset: number; // end as a file offset, for the refusal
  private readonly conditioning: Conditioning;
  private readonly progressive: boolean;
  private readonly scan: Scan;
  private c = 0; // the code register: the offset into the interval, with the unread bits below it
  private a = 0; // the interval's size, renormalized to at least 0x8000
  private ct = -16; // bits left in c's buffer; -16 until the first two bytes are in
  markerAt = -1; // the code byte of a marker the data ran into (libjpeg's unread_marker); zeros follow it
  failed = false; // corrupt data met: nothing more is decoded until the next restart
  private nextRestart = 0;
  private readonly dcStats: Uint8Array;
  private readonly acStats: Uint8Array;
  private readonly fixed: Uint8Array;
  private readonly lastDc: Int32Array;
  private readonly dcContext: Int32Array;

  constructor(
    data: Uint8Array,
    pos: number,
    end: number,
    endsFile: boolean,
    endOffset: number,
    conditioning: Conditioning,
    progressive: boolean,
    scan: Scan,
    state: ArithmeticState,
  ) {
    this.data = data;
    this.pos = pos;
    this.end = end;
    this.endsFile = endsFile;
    this.endOffset = endOffset;
    this.conditioning = conditioning;
    this.progressive = progressive;
    this.scan = scan;
    this.dcStats = state.dcStats;
    this.acStats = state.acStats;
    this.fixed = state.fixed;
    this.fixed[0] = FIXED_STATE;
    this.lastDc = state.lastDc;
    this.dcContext = state.dcContext;
    this.reset();
  }

  // Where the markers after the scan are read from: the marker the data ran into, else the next byte.
  get after(): number {
    return this.markerAt >= 0 ? this.markerAt - 1 : this.pos;
  }

  // Clears the statistics the scan uses, its DC predictions and the registers (scan start and restarts).
  private reset(): void {
    const { scan } = this;
    const dc = !this.progressive || (scan.ss === 0 && scan.ah === 0);
    const ac = !this.progressive || scan.ss > 0;
    for (let i = 0; i < scan.components.length; i++) {
      const sc = scan.components[i];
      if (dc) this.dcStats.fill(0, sc.dcTable * DC_BINS, (sc.dcTable + 1) * DC_BINS);
      if (ac) this.acStats.fill(0, sc.acTable * AC_BINS, (sc.acTable + 1) * AC_BINS);
      this.lastDc[i] = 0;
      this.dcContext[i] = 0;
    }
    this.c = 0;
    this.a = 0;
    this.ct = -16;
    this.failed = false;
  }

  private byte(): number {
    if (this.pos >= this.end) {
      if (this.endsFile) throw truncatedJpeg();
      throw new EdgevitError(
        "invalid_image",
        `The JPEG is arithmetic-coded and a scan's data runs past byte ${this.endOffset}, where Pillow's 64 KB read ends; libjpeg-turbo cannot wait for more data inside such a scan, so Pillow refuses the file.`,
      );
    }
    return this.data[this.pos++];
  }

  // libjpeg's next_marker: skips to the next FF xx that is not a stuffed zero; returns xx.
  private nextMarker(): number {
    for (;;) {
      let x = this.byte();
      while (x !== 0xff) x = this.byte();
      do x = this.byte();
      while (x === 0xff);
      if (x !== 0) {
        this.markerAt = this.pos - 1;
        return x;
      }
    }
  }

  // Before the MCU after every restart interval: the expected RSTn is consumed (libjpeg's
  // read_restart_marker, resolving any other marker as jpeg_resync_to_restart does), then the statistics
  // and registers start over.
  restart(): void {
    const want = this.nextRestart;
    this.nextRestart = (want + 1) & 7;
    let marker = this.markerAt >= 0 ? this.data[this.markerAt] : this.nextMarker();
    for (;;) {
      let action: number; // 1: take it, 2: skip to the next marker, 3: leave it for after the scan
      if (marker === 0xd0 + want) action = 1;
      else if (marker < 0xc0) action = 2;
      else if (marker < 0xd0 || marker > 0xd7) action = 3;
      else {
        const got = marker - 0xd0;
        if (got === ((want + 1) & 7) || got === ((want + 2) & 7)) action = 3;
        else if (got === ((want - 1) & 7) || got === ((want - 2) & 7)) action = 2;
        else action = 1;
      }
      if (action === 1) this.markerAt = -1;
      if (action !== 2) break;
      marker = this.nextMarker();
    }
    this.reset();
  }

  // One binary decision with the adaptive estimate in bins[bin] (T.81 D.2.4 to D.2.6).
  private decide(bins: Uint8Array, bin: number): number {
    let a = this.a;
    let c = this.c;
    let ct = this.ct;
    // Renormalization and byte-in. A marker stops the input: zeros are fed from there on.
    while (a < 0x8000) {
      if (--ct < 0) {
        let x = 0;
        if (this.markerAt < 0) {
          x = this.byte();
          if (x === 0xff) {
            do x = this.byte();
            while (x === 0xff);
            if (x === 0) x = 0xff;
            else {
              this.markerAt = this.pos - 1;
              x = 0;
            }
          }
        }
        // c < a << ct <= 2^23 throughout, so 32 bits hold it.
        c = (c << 8) | x;
        ct += 8;
        if (ct < 0 && ++ct === 0) a = 0x8000; // the first two bytes are in
      }
      a <<= 1;
    }
    const state = bins[bin];
    const packed = PACKED[state & 0x7f];
    const qe = packed >>> 16;
    let bit = state >> 7;
    a -= qe;
    const split = a << ct;
    if (c >= split) {
      // The LPS sub-interval, unless the MPS one is now the smaller (conditional exchange).
      c -= split;
      if (a < qe) bins[bin] = (state & 0x80) ^ ((packed >> 8) & 0xff);
      else {
        bins[bin] = (state & 0x80) ^ (packed & 0xff);
        bit ^= 1;
      }
      a = qe;
    } else if (a < 0x8000) {
      if (a < qe) {
        bins[bin] = (state & 0x80) ^ (packed & 0xff);
        bit ^= 1;
      } else bins[bin] = (state & 0x80) ^ ((packed >> 8) & 0xff);
    }
    this.a = a;
    this.c = c;
    this.ct = ct;
    return bit;
  }

  // The next DC difference of scan component i (F.1.4.4.1, Figures F.19 to F.24), updating its context;
  // 0 with `failed` set on a magnitude overflow.
  private dcDiff(i: number, table: number): number {
    const bins = this.dcStats;
    const base = table * DC_BINS;
    let st = base + this.dcContext[i];
    if (this.decide(bins, st) === 0) {
      this.dcContext[i] = 0;
      return 0;
    }
    const sign = this.decide(bins, st + 1);
    st += 2 + sign;
    let m = this.decide(bins, st);
    if (m !== 0) {
      st = base + 20;
      while (this.decide(bins, st)) {
        m <<= 1;
        if (m === 0x8000) {
          this.failed = true;
          return 0;
        }
        st++;
      }
    }
    const { dcL, dcU } = this.conditioning;
    if (m < (1 << dcL[table]) >> 1) this.dcContext[i] = 0;
    else if (m > (1 << dcU[table]) >> 1) this.dcContext[i] = 12 + sign * 4;
    else this.dcContext[i] = 4 + sign * 4;
    let v = m;
    st += 14;
    for (m >>= 1; m !== 0; m >>= 1) if (this.decide(bins, st)) v |= m;
    v += 1;
    return sign ? -v : v;
  }

  // The value of a nonzero AC coefficient at zigzag index k whose bins start at st (Figures F.21 to F.24);
  // 0 with `failed` set on a magnitude overflow.
  private acValue(table: number, k: number, st: number): number {
    const bins = this.acStats;
    const sign = this.decide(this.fixed, 0);
    st += 2;
    let m = this.decide(bins, st);
    if (m !== 0 && this.decide(bins, st)) {
      m <<= 1;
      st = table * AC_BINS + (k <= this.conditioning.acK[table] ? 189 : 217);
      while (this.decide(bins, st)) {
        m <<= 1;
        if (m === 0x8000) {
          this.failed = true;
          return 0;
        }
        st++;
      }
    }
    let v = m;
    st += 14;
    for (m >>= 1; m !== 0; m >>= 1) if (this.decide(bins, st)) v |= m;
    v += 1;
    return sign ? -v : v;
  }

  // The zigzag index of the next nonzero coefficient in [k, last], or -1 at an end of block; -2 with
  // `failed` set when the run overshoots (Figure F.20).
  private nextNonzero(table: number, k: number, last: number): number {
    const bins = this.acStats;
    let st = table * AC_BINS + 3 * (k - 1);
    if (this.decide(bins, st)) return -1;
    while (this.decide(bins, st + 1) === 0) {
      st += 3;
      if (++k > last) {
        this.failed = true;
        return -2;
      }
    }
    return k;
  }

  // A sequential block of scan component i into blk (64, natural order, zeroed by the caller): raw
  // coefficients, wrapped to 16 bits as libjpeg's JCOEF.
  sequentialBlock(i: number, blk: Int32Array): void {
    if (this.failed) return;
    const sc = this.scan.components[i];
    const diff = this.dcDiff(i, sc.dcTable);
    if (this.failed) return;
    this.lastDc[i] = (this.lastDc[i] + diff) & 0xffff;
    blk[0] = (this.lastDc[i] << 16) >> 16;
    for (let k = 1; k <= 63; k++) {
      k = this.nextNonzero(sc.acTable, k, 63);
      if (k < 0) return;
      const v = this.acValue(sc.acTable, k, sc.acTable * AC_BINS + 3 * (k - 1));
      if (this.failed) return;
      blk[ZIGZAG[k]] = (v << 16) >> 16;
    }
  }

  // A DC first scan's value for scan component i, shifted by al, into coefs[off] (G.1.2.1).
  dcFirst(i: number, coefs: Int16Array, off: number, al: number): void {
    if (this.failed) return;
    const diff = this.dcDiff(i, this.scan.components[i].dcTable);
    if (this.failed) return;
    this.lastDc[i] = (this.lastDc[i] + diff) & 0xffff;
    coefs[off] = this.lastDc[i] << al;
  }

  // A DC refinement bit (G.1.2.1): the next bit of the two's-complement value.
  dcRefine(coefs: Int16Array, off: number, al: number): void {
    if (this.failed) return;
    if (this.decide(this.fixed, 0)) coefs[off] |= 1 << al;
  }

  // An AC first scan's band [ss, se] of one block into a plane's store (G.1.2.2): kept coefficients at
  // coefs[o + keep[k]], the others as bits of nz[2 * nb .. 2 * nb + 1] (by zigzag index) saying they are
  // nonzero, as ./huffman.ts's compact readers keep them.
  acFirst(coefs: Int16Array, o: number, keep: Int8Array, nz: Uint32Array | null, nb: number, al: number): void {
    if (this.failed) return;
    const { ss, se } = this.scan;
    const table = this.scan.components[0].acTable;
    for (let k = ss; k <= se; k++) {
      k = this.nextNonzero(table, k, se);
      if (k < 0) return;
      const v = this.acValue(table, k, table * AC_BINS + 3 * (k - 1));
      if (this.failed) return;
      const slot = keep[k];
      if (slot >= 0) coefs[o + slot] = v << al;
      else setNonzero(nz as Uint32Array, nb, k, ((v << al) << 16) >> 16 !== 0);
    }
  }

  // An AC refinement scan's band of one block (G.1.2.3), into the same store.
  acRefine(coefs: Int16Array, o: number, keep: Int8Array, nz: Uint32Array | null, nb: number, al: number): void {
    if (this.failed) return;
    const { ss, se } = this.scan;
    const table = this.scan.components[0].acTable;
    const bins = this.acStats;
    const p1 = 1 << al;
    const m1 = -1 << al;
    const nonzero = (k: number) => (keep[k] >= 0 ? coefs[o + keep[k]] !== 0 : isNonzero(nz as Uint32Array, nb, k));
    // The end of block as of the previous scans.
    let eob = se;
    while (eob > 0 && !nonzero(eob)) eob--;
    for (let k = ss; k <= se; k++) {
      let st = table * AC_BINS + 3 * (k - 1);
      if (k > eob && this.decide(bins, st)) return;
      for (;;) {
        const slot = keep[k];
        if (nonzero(k)) {
          if (this.decide(bins, st + 2) && slot >= 0) coefs[o + slot] += coefs[o + slot] < 0 ? m1 : p1;
          break;
        }
        if (this.decide(bins, st + 1)) {
          const negative = this.decide(this.fixed, 0);
          if (slot >= 0) coefs[o + slot] = negative ? m1 : p1;
          else setNonzero(nz as Uint32Array, nb, k, true);
          break;
        }
        st += 3;
        if (++k > se) {
          this.failed = true;
          return;
        }
      }
    }
  }
}

function isNonzero(nz: Uint32Array, nb: number, k: number): boolean {
  return k < 32 ? (nz[2 * nb] & (1 << k)) !== 0 : (nz[2 * nb + 1] & (1 << (k - 32))) !== 0;
}

function setNonzero(nz: Uint32Array, nb: number, k: number, on: boolean): void {
  const w = 2 * nb + (k < 32 ? 0 : 1);
  const bit = 1 << (k & 31);
  nz[w] = on ? nz[w] | bit : nz[w] & ~bit;
}
