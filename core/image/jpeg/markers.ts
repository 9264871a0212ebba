// JPEG marker segments: the frame header (SOF), tables (DQT, DHT, DRI), scan headers (SOS) and the APPn
// markers that decide the colour space (JFIF, Adobe) and the EXIF orientation. Every check here is one
// that libjpeg-turbo (and so Pillow) makes fatal; what libjpeg only warns about is accepted.

import { EdgevitError } from "../../errors.ts";
import { buildHuffmanTable, type HuffmanTable } from "./huffman.ts";

export function corrupt(what: string): EdgevitError {
  return new EdgevitError("invalid_image", `The JPEG is corrupt: ${what}.`);
}

export function truncatedJpeg(): EdgevitError {
  return new EdgevitError("invalid_image", "The JPEG is truncated: the file ends before its image data does.");
}

export interface Component {
  id: number;
  h: number; // horizontal sampling factor, 1..4
  v: number; // vertical sampling factor, 1..4
  quantIndex: number; // the DQT slot named by the frame header
  quant: Int32Array | null; // (64) natural order, latched at the component's first scan as libjpeg does
  blocksPerLine: number; // blocks covering the component's own width: ceil(ceil(width * h / maxH) / 8)
  blocksPerColumn: number;
  paddedBlocksPerLine: number; // in whole MCUs: mcusPerLine * h
  paddedBlocksPerColumn: number;
}

export interface Frame {
  marker: number; // 0xc0 baseline, 0xc1 extended sequential, 0xc2 progressive
  progressive: boolean;
  width: number;
  height: number;
  components: Component[];
  maxH: number;
  maxV: number;
  mcusPerLine: number;
  mcusPerColumn: number;
}

export interface ScanComponent {
  index: number; // into frame.components
  dcTable: number;
  acTable: number;
}

export interface Scan {
  components: ScanComponent[];
  ss: number; // spectral selection start, zigzag index
  se: number;
  ah: number; // successive approximation: previous and current point transform
  al: number;
}

// Tables that markers between scans may redefine.
export interface Tables {
  quant: (Int32Array | null)[]; // 4 slots, natural order
  dc: (HuffmanTable | null)[]; // 4 slots
  ac: (HuffmanTable | null)[];
  restartInterval: number;
}

export function newTables(): Tables {
  return {
    quant: [null, null, null, null],
    dc: [null, null, null, null],
    ac: [null, null, null, null],
    restartInterval: 0,
  };
}

// ZIGZAG[k] = natural (row-major) index of the k-th coefficient in zigzag order. 16 extra entries pointing
// at 63 absorb run lengths that overshoot the block in corrupt data, as libjpeg's table does.
export const ZIGZAG = new Int32Array([
  0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28,
  35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47,
  55, 62, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63,
]);

export function u16(b: Uint8Array, p: number): number {
  return (b[p] << 8) | b[p + 1];
}

// The payload [start, end) of the segment whose length field is at `pos`.
export function segmentEnd(b: Uint8Array, pos: number): number {
  if (pos + 2 > b.length) throw truncatedJpeg();
  const length = u16(b, pos);
  if (length < 2) throw corrupt("a marker segment has a length below 2");
  const end = pos + length;
  if (end > b.length) throw truncatedJpeg();
  return end;
}

// Position of the next marker's code byte at or after `pos`, skipping stray bytes and 0xFF fill as libjpeg's
// next_marker does; -1 at the end of the data.
export function nextMarker(b: Uint8Array, pos: number): number {
  const n = b.length;
  for (;;) {
    while (pos < n && b[pos] !== 0xff) pos++;
    while (pos < n && b[pos] === 0xff) pos++;
    if (pos >= n) return -1;
    if (b[pos] !== 0) return pos;
    pos++;
  }
}

export function readQuantTables(b: Uint8Array, start: number, end: number, tables: Tables): void {
  let p = start;
  while (p < end) {
    const pq = b[p] >> 4;
    const tq = b[p] & 15;
    p++;
    if (tq > 3) throw corrupt("a quantization table has an index above 3");
    if (pq > 1) throw corrupt("a quantization table has an unknown precision");
    const size = pq === 0 ? 64 : 128;
    if (p + size > end) throw corrupt("a quantization table is cut short");
    const table = new Int32Array(64);
    for (let k = 0; k < 64; k++) table[ZIGZAG[k]] = pq === 0 ? b[p + k] : u16(b, p + 2 * k);
    tables.quant[tq] = table;
    p += size;
  }
}

export function readHuffmanTables(b: Uint8Array, start: number, end: number, tables: Tables): void {
  let p = start;
  while (p < end) {
    if (p + 17 > end) throw corrupt("a Huffman table is cut short");
    const tc = b[p] >> 4;
    const th = b[p] & 15;
    if (tc > 1 || th > 3) throw corrupt("a Huffman table has an index out of range");
    const counts = b.subarray(p + 1, p + 17);
    let total = 0;
    for (let i = 0; i < 16; i++) total += counts[i];
    p += 17;
    if (total > 256 || p + total > end) throw corrupt("a Huffman table lists more codes than it holds");
    const table = buildHuffmanTable(counts, b.subarray(p, p + total));
    if (!table) throw corrupt("a Huffman table has more codes than its lengths allow");
    (tc === 0 ? tables.dc : tables.ac)[th] = table;
    p += total;
  }
}

const MAX_DIMENSION = 65500; // libjpeg's JPEG_MAX_DIMENSION

export function readFrame(b: Uint8Array, marker: number, start: number, end: number): Frame {
  if (end - start < 6) throw corrupt("its frame header is cut short");
  const precision = b[start];
  const height = u16(b, start + 1);
  const width = u16(b, start + 3);
  const count = b[start + 5];
  if (precision !== 8) {
    throw new EdgevitError("invalid_image", `The JPEG has ${precision}-bit samples; only 8-bit JPEGs are supported.`);
  }
  if (width === 0 || height === 0 || count === 0) throw corrupt("its frame header declares an empty image");
  if (end - start !== 6 + 3 * count) throw corrupt("its frame header has the wrong length");
  if (count !== 1 && count !== 3 && count !== 4) {
    throw new EdgevitError(
      "invalid_image",
      `The JPEG has ${count} colour components; only 1 (grayscale), 3 (colour) and 4 (CMYK) are supported.`,
    );
  }
  if (width > MAX_DIMENSION || height > MAX_DIMENSION) {
    throw corrupt(`its frame header declares ${width}x${height} pixels, over the JPEG maximum of 65500`);
  }
  const components: Component[] = [];
  for (let i = 0; i < count; i++) {
    const p = start + 6 + 3 * i;
    const h = b[p + 1] >> 4;
    const v = b[p + 1] & 15;
    if (h < 1 || h > 4 || v < 1 || v > 4) throw corrupt("a component has a sampling factor outside 1..4");
    if (b[p + 2] > 3) throw corrupt("a component names a quantization table above 3");
    components.push({
      id: b[p],
      h,
      v,
      quantIndex: b[p + 2],
      quant: null,
      blocksPerLine: 0,
      blocksPerColumn: 0,
      paddedBlocksPerLine: 0,
      paddedBlocksPerColumn: 0,
    });
  }
  // A single-component image is coded as non-interleaved 8x8 blocks whatever its declared factors.
  if (count === 1) {
    components[0].h = 1;
    components[0].v = 1;
  }
  let maxH = 1;
  let maxV = 1;
  for (const c of components) {
    maxH = Math.max(maxH, c.h);
    maxV = Math.max(maxV, c.v);
  }
  const mcusPerLine = Math.ceil(width / (8 * maxH));
  const mcusPerColumn = Math.ceil(height / (8 * maxV));
  for (const c of components) {
    // libjpeg upsamples only by whole factors ("Fractional sampling not implemented").
    if (maxH % c.h !== 0 || maxV % c.v !== 0) throw corrupt("its sampling factors are not whole multiples");
    c.blocksPerLine = Math.ceil(Math.ceil((width * c.h) / maxH) / 8);
    c.blocksPerColumn = Math.ceil(Math.ceil((height * c.v) / maxV) / 8);
    c.paddedBlocksPerLine = mcusPerLine * c.h;
    c.paddedBlocksPerColumn = mcusPerColumn * c.v;
  }
  return {
    marker,
    progressive: marker === 0xc2,
    width,
    height,
    components,
    maxH,
    maxV,
    mcusPerLine,
    mcusPerColumn,
  };
}

export function readScan(b: Uint8Array, start: number, end: number, frame: Frame): Scan {
  const n = end > start ? b[start] : 0;
  if (n === 0) throw corrupt("its scan header lists no components");
  if (n > 4 || end - start !== 4 + 2 * n) throw corrupt("its scan header has the wrong length");
  const components: ScanComponent[] = [];
  for (let i = 0; i < n; i++) {
    const id = b[start + 1 + 2 * i];
    const index = frame.components.findIndex((c) => c.id === id);
    if (index < 0) throw corrupt("its scan header names a component the frame does not have");
    if (components.some((c) => c.index === index)) throw corrupt("its scan header lists a component twice");
    const t = b[start + 2 + 2 * i];
    components.push({ index, dcTable: t >> 4, acTable: t & 15 });
  }
  const p = start + 1 + 2 * n;
  const scan: Scan = { components, ss: b[p], se: b[p + 1], ah: b[p + 2] >> 4, al: b[p + 2] & 15 };
  if (n > 1) {
    let blocks = 0;
    for (const c of components) blocks += frame.components[c.index].h * frame.components[c.index].v;
    if (blocks > 10) throw corrupt("its scan has more than 10 blocks per MCU");
  }
  if (frame.progressive) {
    const { ss, se, ah, al } = scan;
    const bad = ss === 0 ? se !== 0 : ss > se || se > 63 || n !== 1;
    if (bad || (ah !== 0 && al !== ah - 1) || al > 13) {
      throw corrupt("a progressive scan has an invalid spectral band or bit position");
    }
  }
  for (const c of components) {
    if (c.dcTable > 3 || c.acTable > 3) throw corrupt("its scan header names a Huffman table above 3");
  }
  return scan;
}

// APP1 "Exif\0\0" payload -> the IFD0 Orientation tag, 1 when absent or outside 1..8 (exif_transpose ignores
// those).
export function readExifOrientation(tiff: Uint8Array): number {
  if (tiff.length < 8) return 1;
  const little = tiff[0] === 0x49 && tiff[1] === 0x49;
  if (!little && !(tiff[0] === 0x4d && tiff[1] === 0x4d)) return 1;
  const r16 = (o: number) => (little ? tiff[o] | (tiff[o + 1] << 8) : (tiff[o] << 8) | tiff[o + 1]);
  const r32 = (o: number) => (little ? r16(o) + r16(o + 2) * 65536 : r16(o) * 65536 + r16(o + 2));
  const ifd = r32(4);
  if (ifd + 2 > tiff.length) return 1;
  const count = r16(ifd);
  for (let i = 0; i < count; i++) {
    const entry = ifd + 2 + 12 * i;
    if (entry + 12 > tiff.length) return 1;
    if (r16(entry) !== 0x0112) continue;
    const type = r16(entry + 2);
    const value = type === 3 ? r16(entry + 8) : type === 4 ? r32(entry + 8) : 0;
    return value >= 1 && value <= 8 ? value : 1;
  }
  return 1;
}

// The tables of the JPEG standard's Annex K. libjpeg-turbo installs them in any of slots 0 and 1 still empty
// when decoding starts (Motion-JPEG frames omit them), so a file without DHT markers decodes.
const STD_DC_COUNTS = [
  [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0],
  [0, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0],
];
const STD_DC_SYMBOLS = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
const STD_AC_COUNTS = [
  [0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7d],
  [0, 2, 1, 2, 4, 4, 3, 4, 7, 5, 4, 4, 0, 1, 2, 0x77],
];
// The AC symbols (run << 4 | size) in code order: the first few differ between the two tables, then both
// list the remaining run/size pairs in ascending order.
const STD_AC_SYMBOLS = [
  "01 02 03 00 04 11 05 12 21 31 41 06 13 51 61 07 22 71 14 32 81 91 a1 08 23 42 b1 c1 15 52 d1 f0 24 33 62 72 82 09 0a",
  "00 01 02 03 11 04 05 21 31 06 12 41 51 07 61 71 13 22 32 81 08 14 42 91 a1 b1 c1 09 23 33 52 f0 15 62 72 d1 0a 16 24 34 e1 25 f1",
];

function stdAcSymbols(t: number): number[] {
  const head = STD_AC_SYMBOLS[t].split(" ").map((x) => Number.parseInt(x, 16));
  const seen = new Set(head);
  const rest: number[] = [];
  for (let run = 0; run < 16; run++) {
    for (let size = 1; size <= 10; size++) {
      const s = (run << 4) | size;
      if (!seen.has(s)) rest.push(s);
    }
  }
  return head.concat(rest);
}

export function installStandardTables(tables: Tables): void {
  for (let t = 0; t < 2; t++) {
    tables.dc[t] ??= buildHuffmanTable(new Uint8Array(STD_DC_COUNTS[t]), new Uint8Array(STD_DC_SYMBOLS));
    tables.ac[t] ??= buildHuffmanTable(new Uint8Array(STD_AC_COUNTS[t]), new Uint8Array(stdAcSymbols(t)));
  }
}
