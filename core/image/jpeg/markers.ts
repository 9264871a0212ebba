// JPEG marker segments: the frame header (SOF), tables (DQT, DHT, DRI), scan headers (SOS) and the APPn
// markers that decide the colour space (JFIF, Adobe) and the EXIF orientation. Every check here is one
// that libjpeg-turbo (and so Pillow) makes fatal; what libjpeg only warns about is accepted.

import { EdgevitError } from "../../errors.ts";
import { readExifOrientation } from "../exif.ts";
import { type Conditioning, newConditioning, readConditioning } from "./arithmetic.ts";
import { corrupt, truncatedJpeg } from "./errors.ts";
import { buildHuffmanTable, type HuffmanTable } from "./huffman.ts";
import { ZIGZAG } from "./zigzag.ts";

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
  // Block rows in one of libjpeg's iMCU rows: v, or a single component's declared factor (libjpeg keeps it
  // for its row structure, which block smoothing follows, though the blocks are coded one by one).
  iMcuBlockRows: number;
}

export interface Frame {
  marker: number; // 0xc0 baseline, 0xc1 extended sequential, 0xc2 progressive; 0xc9, 0xca arithmetic-coded
  progressive: boolean;
  arithmetic: boolean;
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
  conditioning: Conditioning; // DAC: the arithmetic decoder's, set before any frame too
}

export function newTables(): Tables {
  return {
    quant: [null, null, null, null],
    dc: [null, null, null, null],
    ac: [null, null, null, null],
    restartInterval: 0,
    conditioning: newConditioning(),
  };
}

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

// A table segment the file ends inside, after the last scan: libjpeg reads it a byte at a time and stops
// (harmlessly, there) where the bytes end, but what it can check before that point still fails the file.
export function checkCutSegment(b: Uint8Array, marker: number, pos: number): void {
  if (pos + 2 > b.length) return;
  let length = u16(b, pos) - 2;
  let p = pos + 2;
  if (marker === 0xdd && length !== 2) throw corrupt("its restart interval marker has the wrong length");
  if (marker === 0xc4) {
    while (length > 16) {
      if (p + 17 > b.length) return;
      let count = 0;
      for (let i = 1; i <= 16; i++) count += b[p + i];
      length -= 17;
      if (count > 256 || count > length) throw corrupt("a Huffman table lists more codes than it holds");
      if (p + 17 + count > b.length) return;
      const index = b[p] & 0x10 ? b[p] - 0x10 : b[p];
      if (index > 3) throw corrupt("a Huffman table has an index out of range");
      length -= count;
      p += 17 + count;
    }
    if (length !== 0) throw corrupt("a Huffman table is cut short");
  } else if (marker === 0xcc) {
    readConditioning(b, p, p + Math.min(length, (b.length - p) & ~1), newConditioning());
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
      iMcuBlockRows: v,
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
    progressive: marker === 0xc2 || marker === 0xca,
    arithmetic: marker === 0xc9 || marker === 0xca,
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
  // An arithmetic-coded scan may name any of its 16 tables.
  for (const c of components) {
    if (!frame.arithmetic && (c.dcTable > 3 || c.acTable > 3)) {
      throw corrupt("its scan header names a Huffman table above 3");
    }
  }
  return scan;
}

// What the samples are, decided as libjpeg (and so Pillow) decides: a JFIF marker means YCbCr, else an
// Adobe marker's transform flag, else the component ids ('R','G','B' means RGB).
export type JpegColorSpace = "gray" | "ycbcr" | "rgb" | "cmyk" | "ycck";

// libjpeg's guess (jdapimin.c default_decompress_parms).
function colorSpaceOf(frame: Frame, jfif: boolean, adobeTransform: number): JpegColorSpace {
  const n = frame.components.length;
  if (n === 1) return "gray";
  if (n === 4) return adobeTransform < 0 || adobeTransform === 0 ? "cmyk" : "ycck";
  if (jfif) return "ycbcr";
  if (adobeTransform >= 0) return adobeTransform === 0 ? "rgb" : "ycbcr";
  const ids = frame.components.map((c) => c.id);
  return ids[0] === 82 && ids[1] === 71 && ids[2] === 66 ? "rgb" : "ycbcr";
}

function ascii(b: Uint8Array, start: number, n: number): string {
  return String.fromCharCode(...b.subarray(start, start + n));
}

// Everything before the first scan's data: what the JPEG decoders size, orient and set up decoding from.
export interface JpegHeader {
  frame: Frame;
  tables: Tables; // as of the first scan header
  firstScan: number; // offset of the 0xFF before the first SOS marker; -1 if the data ends after the frame
  firstScanComponents: number; // how many components the first scan holds (0 without a scan)
  orientation: number; // EXIF 1..8 from the first Exif block, 1 without one
  colorSpace: JpegColorSpace;
  adobeTransform: number; // the Adobe APP14 transform flag, -1 without that marker
}

const MARKER_SOS = 0xda;
const MARKER_EOI = 0xd9;

// Reads the markers up to the first scan header (SOS) without decoding anything; every refusal is an
// invalid_image, except what `checkProcess` throws for the frame's coding process (its SOF marker) as soon
// as the frame header is read: each decoder accepts its own processes. Data that ends right after the
// frame header is returned with firstScan -1: the size is known there, and a decoder refuses it as
// truncated when it needs the scans.
export function readJpegHeader(b: Uint8Array, checkProcess: (marker: number) => void): JpegHeader {
  // Pillow recognises a JPEG by FF D8 FF.
  if (b.length < 3 || b[0] !== 0xff || b[1] !== 0xd8 || b[2] !== 0xff) {
    throw new EdgevitError("invalid_image", "The file is not a JPEG image: it does not start with a JPEG marker.");
  }
  const tables = newTables();
  let frame: Frame | null = null;
  let exif: Uint8Array | null = null;
  let dpi = false; // a JFIF segment in dots per inch before the Exif block
  let exifWithoutDpi = false;
  let jfif = false;
  let adobeTransform = -1;
  let firstScan = -1;
  let firstScanComponents = 0;
  let pos = 2;
  for (;;) {
    const m = nextMarker(b, pos);
    if (m < 0) {
      if (frame) break;
      throw truncatedJpeg();
    }
    const marker = b[m];
    if (marker === MARKER_SOS) {
      if (!frame) throw corrupt("a scan starts before the frame header");
      firstScan = m - 1;
      firstScanComponents = readScan(b, m + 3, segmentEnd(b, m + 1), frame).components.length;
      break;
    }
    if (marker === 0xd8) throw corrupt("it has a second start-of-image marker");
    if (marker === MARKER_EOI) throw corrupt("it ends before any image data");
    // Pillow's own header parser refuses standalone markers here ("no marker found").
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      throw corrupt("a restart marker appears in its header");
    }
    const end = segmentEnd(b, m + 1);
    const start = m + 3;
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      if (frame) throw corrupt("it has two frame headers");
      frame = readFrame(b, marker, start, end);
      checkProcess(marker);
    } else if (marker === 0xc4) {
      readHuffmanTables(b, start, end, tables);
    } else if (marker === 0xdb) {
      readQuantTables(b, start, end, tables);
    } else if (marker === 0xdd) {
      if (end - start < 2) throw corrupt("its restart interval marker is cut short");
      tables.restartInterval = u16(b, start);
    } else if (marker === 0xcc) {
      tables.conditioning = readConditioning(b, start, end, tables.conditioning);
    } else if (marker === 0xe0) {
      jfif ||= end - start >= 14 && ascii(b, start, 5) === "JFIF\0";
      dpi ||= end - start >= 12 && ascii(b, start, 4) === "JFIF" && b[start + 7] === 1;
    } else if (marker === 0xe1) {
      // Pillow keeps the first Exif block, whatever follows "Exif\0".
      if (exif === null && end - start >= 5 && ascii(b, start, 5) === "Exif\0") {
        exif = b.subarray(start, end);
        exifWithoutDpi = !dpi;
      }
    } else if (marker === 0xee) {
      if (end - start >= 12 && ascii(b, start, 5) === "Adobe") adobeTransform = b[start + 11];
    } else if (!((marker >= 0xe2 && marker <= 0xef) || marker === 0xfe || marker === 0xcc || marker === 0xdc)) {
      throw corrupt(`it has an unknown marker 0xFF${marker.toString(16).toUpperCase()} in its header`);
    }
    pos = end;
  }
  return {
    frame,
    tables,
    firstScan,
    firstScanComponents,
    // Without a resolution from JFIF, Pillow reads the Exif block for one while opening the file, and a
    // block with no TIFF header then reads as empty; else exif_transpose raises on it.
    orientation: exif === null ? 1 : readExifOrientation(exif, "JPEG", exifWithoutDpi),
    colorSpace: colorSpaceOf(frame, jfif, adobeTransform),
    adobeTransform,
  };
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
