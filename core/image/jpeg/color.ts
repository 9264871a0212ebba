// Chroma upsampling and colour conversion as libjpeg-turbo does them by default (jdsample.c, jdcolor.c),
// then the CMYK to RGB step of Pillow's convert("RGB") (Convert.c cmyk2rgb, after the "CMYK;I" unpacker).
//
// Upsampling, per component whose IDCT output is smaller than the image (jdsample.c): 2x horizontal,
// 2x vertical and 2x2 use the "fancy" triangle filter (3/4 of the nearer sample, 1/4 of the further one,
// with libjpeg's alternating rounding biases); every other whole ratio, and any ratio when fancy upsampling is
// off (scaled DCT size 1) or the component is at most 2 samples wide, replicates samples.

export type UpsampleMethod = "full" | "h2v1" | "h1v2" | "h2v2" | "replicate";

// The method for a component expanded hExpand x vExpand (whole factors) to the image, whose samples after
// the IDCT are `width` wide; `fancy` is false at scaled DCT size 1, where libjpeg has no context rows.
export function upsampleMethod(hExpand: number, vExpand: number, width: number, fancy: boolean): UpsampleMethod {
  if (hExpand === 1 && vExpand === 1) return "full";
  if (hExpand === 2 && vExpand === 1 && fancy && width > 2) return "h2v1";
  if (hExpand === 1 && vExpand === 2 && fancy) return "h1v2";
  if (hExpand === 2 && vExpand === 2 && fancy && width > 2) return "h2v2";
  return "replicate";
}

// Y, Cb, Cr to R, G, B with libjpeg's 16-bit fixed-point tables (build_ycc_rgb_table).
const CR_R = new Int32Array(256);
const CB_B = new Int32Array(256);
const CR_G = new Int32Array(256);
const CB_G = new Int32Array(256);
for (let i = 0; i < 256; i++) {
  const x = i - 128;
  CR_R[i] = (Math.floor(1.402 * 65536 + 0.5) * x + 32768) >> 16;
  CB_B[i] = (Math.floor(1.772 * 65536 + 0.5) * x + 32768) >> 16;
  CR_G[i] = -Math.floor(0.71414 * 65536 + 0.5) * x;
  CB_G[i] = -Math.floor(0.34414 * 65536 + 0.5) * x + 32768;
}

// 0..255 clamp for sums in [-512, 767].
const CLAMP = new Uint8Array(1280);
for (let i = 0; i < 1280; i++) CLAMP[i] = Math.max(0, Math.min(255, i - 512));

// Fills `out` with one upsampled component row. `near` is the offset in `plane` of the component row the
// output row falls in; `far` (vertical filters only) the row above it for even output rows, below it for odd
// ones (`odd`), clamped to the component's rows by the caller.
export function upsampleRow(
  method: UpsampleMethod,
  hExpand: number,
  compWidth: number,
  plane: Uint8Array,
  near: number,
  far: number,
  odd: boolean,
  out: Uint8Array,
  outWidth: number,
): void {
  if (method === "replicate") {
    for (let x = 0, i = 0; i < outWidth; x++) {
      const v = plane[near + x];
      for (let e = 0; e < hExpand && i < outWidth; e++) out[i++] = v;
    }
    return;
  }
  const w = compWidth;
  if (method === "h2v1") {
    const s = near;
    out[0] = plane[s];
    out[1] = (plane[s] * 3 + plane[s + 1] + 2) >> 2;
    for (let x = 1; x < w - 1; x++) {
      const v = plane[s + x] * 3;
      out[2 * x] = (v + plane[s + x - 1] + 1) >> 2;
      out[2 * x + 1] = (v + plane[s + x + 1] + 2) >> 2;
    }
    const last = plane[s + w - 1];
    out[2 * w - 2] = (last * 3 + plane[s + w - 2] + 1) >> 2;
    out[2 * w - 1] = last;
    return;
  }
  if (method === "h1v2") {
    const bias = odd ? 2 : 1;
    for (let x = 0; x < w; x++) out[x] = (plane[near + x] * 3 + plane[far + x] + bias) >> 2;
    return;
  }
  // h2v2: vertical sums first (unrounded), then the horizontal triangle with biases 8 and 7.
  let last = plane[near] * 3 + plane[far];
  let thisSum = last;
  let next = plane[near + 1] * 3 + plane[far + 1];
  out[0] = (thisSum * 4 + 8) >> 4;
  out[1] = (thisSum * 3 + next + 7) >> 4;
  last = thisSum;
  thisSum = next;
  for (let x = 1; x < w - 1; x++) {
    next = plane[near + x + 1] * 3 + plane[far + x + 1];
    out[2 * x] = (thisSum * 3 + last + 8) >> 4;
    out[2 * x + 1] = (thisSum * 3 + next + 7) >> 4;
    last = thisSum;
    thisSum = next;
  }
  out[2 * w - 2] = (thisSum * 3 + last + 8) >> 4;
  out[2 * w - 1] = (thisSum * 4 + 7) >> 4;
}

// One output row of RGB from the component rows (each at its own offset). The hot spot after the IDCT.
export function yccToRgb(
  y: Uint8Array,
  yo: number,
  cb: Uint8Array,
  cbo: number,
  cr: Uint8Array,
  cro: number,
  out: Uint8Array,
  o: number,
  width: number,
): void {
  for (let x = 0; x < width; x++) {
    const l = y[yo + x] + 512;
    const b = cb[cbo + x];
    const r = cr[cro + x];
    out[o++] = CLAMP[l + CR_R[r]];
    out[o++] = CLAMP[l + ((CB_G[b] + CR_G[r]) >> 16)];
    out[o++] = CLAMP[l + CB_B[b]];
  }
}

export function rgbToRgb(
  r: Uint8Array,
  ro: number,
  g: Uint8Array,
  go: number,
  b: Uint8Array,
  bo: number,
  out: Uint8Array,
  o: number,
  width: number,
): void {
  for (let x = 0; x < width; x++) {
    out[o++] = r[ro + x];
    out[o++] = g[go + x];
    out[o++] = b[bo + x];
  }
}

export function grayToRgb(g: Uint8Array, go: number, out: Uint8Array, o: number, width: number): void {
  for (let x = 0; x < width; x++) {
    const v = g[go + x];
    out[o++] = v;
    out[o++] = v;
    out[o++] = v;
  }
}

// Pillow's MULDIV255: a * b / 255, rounded.
function mulDiv255(a: number, b: number): number {
  const t = a * b + 128;
  return ((t >> 8) + t) >> 8;
}

// CMYK or YCCK as stored -> RGB. libjpeg turns YCCK into CMYK (C = 255 - R of the YCC conversion, K as is);
// Pillow reads every CMYK JPEG as Adobe-inverted ("CMYK;I": each channel 255 - x), then cmyk2rgb computes
// R = (255 - K) - (255 - K) * C / 255 on those inverted values.
export function cmykToRgb(
  planes: Uint8Array[],
  offsets: number[],
  ycck: boolean,
  out: Uint8Array,
  o: number,
  width: number,
): void {
  const [p0, p1, p2, p3] = planes;
  const [o0, o1, o2, o3] = offsets;
  for (let x = 0; x < width; x++) {
    let c: number;
    let m: number;
    let yy: number;
    if (ycck) {
      const l = p0[o0 + x] + 512;
      const b = p1[o1 + x];
      const r = p2[o2 + x];
      // libjpeg's C = 255 - R; inverted by Pillow back to R.
      c = CLAMP[l + CR_R[r]];
      m = CLAMP[l + ((CB_G[b] + CR_G[r]) >> 16)];
      yy = CLAMP[l + CB_B[b]];
    } else {
      c = 255 - p0[o0 + x];
      m = 255 - p1[o1 + x];
      yy = 255 - p2[o2 + x];
    }
    const nk = p3[o3 + x]; // 255 - (255 - K)
    out[o++] = nk - mulDiv255(c, nk);
    out[o++] = nk - mulDiv255(m, nk);
    out[o++] = nk - mulDiv255(yy, nk);
  }
}

// The common phone case in one pass: 4:2:0 chroma upsampled with h2v2 fancy filtering and converted with
// the luma row, without the intermediate upsampled rows (same arithmetic as upsampleRow + yccToRgb). The
// neighbour sums past either end repeat the edge column, which is what libjpeg's edge cases compute.
export function h2v2YccRow(
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
): void {
  let cbThis = cb[cbNear] * 3 + cb[cbFar];
  let crThis = cr[crNear] * 3 + cr[crFar];
  let cbLast = cbThis;
  let crLast = crThis;
  const lastColumn = chromaWidth - 1;
  // The hot loop: every column but the last, two output pixels each.
  for (let x = 0; x < lastColumn; x++) {
    const cbNext = cb[cbNear + x + 1] * 3 + cb[cbFar + x + 1];
    const crNext = cr[crNear + x + 1] * 3 + cr[crFar + x + 1];
    const py = yo + 2 * x;
    let b = (cbThis * 3 + cbLast + 8) >> 4;
    let r = (crThis * 3 + crLast + 8) >> 4;
    let l = y[py] + 512;
    out[o] = CLAMP[l + CR_R[r]];
    out[o + 1] = CLAMP[l + ((CB_G[b] + CR_G[r]) >> 16)];
    out[o + 2] = CLAMP[l + CB_B[b]];
    b = (cbThis * 3 + cbNext + 7) >> 4;
    r = (crThis * 3 + crNext + 7) >> 4;
    l = y[py + 1] + 512;
    out[o + 3] = CLAMP[l + CR_R[r]];
    out[o + 4] = CLAMP[l + ((CB_G[b] + CR_G[r]) >> 16)];
    out[o + 5] = CLAMP[l + CB_B[b]];
    o += 6;
    cbLast = cbThis;
    crLast = crThis;
    cbThis = cbNext;
    crThis = crNext;
  }
  // The last column: its right neighbour repeats it, and an odd width ends after its first pixel.
  const px = 2 * lastColumn;
  let b = (cbThis * 3 + cbLast + 8) >> 4;
  let r = (crThis * 3 + crLast + 8) >> 4;
  let l = y[yo + px] + 512;
  out[o] = CLAMP[l + CR_R[r]];
  out[o + 1] = CLAMP[l + ((CB_G[b] + CR_G[r]) >> 16)];
  out[o + 2] = CLAMP[l + CB_B[b]];
  if (px + 1 >= width) return;
  b = (cbThis * 4 + 7) >> 4;
  r = (crThis * 4 + 7) >> 4;
  l = y[yo + px + 1] + 512;
  out[o + 3] = CLAMP[l + CR_R[r]];
  out[o + 4] = CLAMP[l + ((CB_G[b] + CR_G[r]) >> 16)];
  out[o + 5] = CLAMP[l + CB_B[b]];
}
