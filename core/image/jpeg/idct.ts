// Inverse DCTs, integer-exact with libjpeg-turbo's defaults: the "islow" 8x8 (jidctint.c) and the reduced
// 4x4, 2x2 and 1x1 ones that DCT-domain scaling uses (jidctred.c). Fixed point with 13 fractional bits;
// the column pass keeps 2 extra bits (PASS1_BITS). On x86 Pillow runs libjpeg-turbo's SIMD versions of the
// 8x8, 4x4 and 2x2 transforms, which saturate the result to 0..255 where the C code's range_limit table
// wraps values far out of range (only corrupt data gets there), so the clamp here saturates too; the 8x8
// one also wraps and saturates in 16 bits where the AVX2 version does (Pillow's hopper_bad_exif.jpg).
//
// Each takes one block's 64 dequantized coefficients (natural order) and writes size x size samples at
// out[outOff], rows `stride` apart. The hot spot of decoding, with Huffman.

const F_0_211 = 1730;
const F_0_298 = 2446;
const F_0_390 = 3196;
const F_0_509 = 4176;
const F_0_541 = 4433;
const F_0_601 = 4926;
const F_0_720 = 5906;
const F_0_765 = 6270;
const F_0_850 = 6967;
const F_0_899 = 7373;
const F_1_061 = 8697;
const F_1_175 = 9633;
const F_1_272 = 10426;
const F_1_451 = 11893;
const F_1_501 = 12299;
const F_1_847 = 15137;
const F_1_961 = 16069;
const F_2_053 = 16819;
const F_2_172 = 17799;
const F_2_562 = 20995;
const F_3_072 = 25172;
const F_3_624 = 29692;

// (value + 128) clamped to 0..255, for value in [-8192, 8191] at index value + 8192: the 8x8 transform as
// libjpeg-turbo's AVX2 version computes it (16-bit dequantization and workspace, saturating packs).
const SATURATE = new Uint8Array(16384);
for (let i = 0; i < 16384; i++) SATURATE[i] = Math.max(0, Math.min(255, i - 8192 + 128));
// The reduced transforms: (value + 128) clamped to 0..255 for value in [-1024, 1023], the index masked to
// 10 bits first as libjpeg masks its range_limit index.
const MASKED = new Uint8Array(1024);
// libjpeg's C range_limit table (used by the 1x1 transform, which has no SIMD version): wraps outside
// [-384, 383].
const WRAP = new Uint8Array(1024);
for (let i = 0; i < 1024; i++) {
  const v = i < 512 ? i : i - 1024;
  MASKED[i] = Math.max(0, Math.min(255, v + 128));
  WRAP[i] = i < 128 ? i + 128 : i < 512 ? 255 : i < 896 ? 0 : i - 896;
}

const ws = new Int32Array(64); // (8 rows, 8 columns) between the two passes

export function idct8(coefs: Int32Array, out: Uint8Array, outOff: number, stride: number) {
  // Pass 1: columns, into ws scaled by 2^PASS1_BITS. The SIMD version's first step tests the whole block:
  // with rows 1..7 all zero, each column is its first coefficient shifted in 16 bits.
  let ac = 0;
  for (let i = 8; i < 64; i++) ac |= coefs[i];
  if (ac === 0) {
    for (let c = 0; c < 8; c++) {
      const dc = (coefs[c] << 18) >> 16;
      ws[c] = dc;
      ws[c + 8] = dc;
      ws[c + 16] = dc;
      ws[c + 24] = dc;
      ws[c + 32] = dc;
      ws[c + 40] = dc;
      ws[c + 48] = dc;
      ws[c + 56] = dc;
    }
  } else {
    for (let c = 0; c < 8; c++) {
      const d0 = (coefs[c] << 16) >> 16;
      const d1 = (coefs[c + 8] << 16) >> 16;
      const d2 = (coefs[c + 16] << 16) >> 16;
      const d3 = (coefs[c + 24] << 16) >> 16;
      const d4 = (coefs[c + 32] << 16) >> 16;
      const d5 = (coefs[c + 40] << 16) >> 16;
      const d6 = (coefs[c + 48] << 16) >> 16;
      const d7 = (coefs[c + 56] << 16) >> 16;
      if ((d1 | d2 | d3 | d4 | d5 | d6 | d7) === 0) {
        const dc = saturate16(d0 << 2);
        ws[c] = dc;
        ws[c + 8] = dc;
        ws[c + 16] = dc;
        ws[c + 24] = dc;
        ws[c + 32] = dc;
        ws[c + 40] = dc;
        ws[c + 48] = dc;
        ws[c + 56] = dc;
        continue;
      }
      idctColumn(d0, d1, d2, d3, d4, d5, d6, d7, c);
    }
  }
  // Pass 2: rows, descaled by 2^(13 + 2 + 3).
  for (let r = 0; r < 8; r++) {
    const w = r * 8;
    const o = outOff + r * stride;
    const d0 = ws[w];
    const d1 = ws[w + 1];
    const d2 = ws[w + 2];
    const d3 = ws[w + 3];
    const d4 = ws[w + 4];
    const d5 = ws[w + 5];
    const d6 = ws[w + 6];
    const d7 = ws[w + 7];
    if ((d1 | d2 | d3 | d4 | d5 | d6 | d7) === 0) {
      const v = SATURATE[((d0 + 16) >> 5) + 8192];
      out[o] = v;
      out[o + 1] = v;
      out[o + 2] = v;
      out[o + 3] = v;
      out[o + 4] = v;
      out[o + 5] = v;
      out[o + 6] = v;
      out[o + 7] = v;
      continue;
    }
    const z1e = (d2 + d6) * F_0_541;
    const tmp2e = z1e - d6 * F_1_847;
    const tmp3e = z1e + d2 * F_0_765;
    const tmp0e = (((d0 + d4) << 16) >> 16) * 8192;
    const tmp1e = (((d0 - d4) << 16) >> 16) * 8192;
    const tmp10 = tmp0e + tmp3e;
    const tmp13 = tmp0e - tmp3e;
    const tmp11 = tmp1e + tmp2e;
    const tmp12 = tmp1e - tmp2e;
    const s73 = ((d7 + d3) << 16) >> 16;
    const s51 = ((d5 + d1) << 16) >> 16;
    const z5 = (s73 + s51) * F_1_175;
    const z1 = (d7 + d1) * -F_0_899;
    const z2 = (d5 + d3) * -F_2_562;
    const z3 = s73 * -F_1_961 + z5;
    const z4 = s51 * -F_0_390 + z5;
    const tmp0 = d7 * F_0_298 + z1 + z3;
    const tmp1 = d5 * F_2_053 + z2 + z4;
    const tmp2 = d3 * F_3_072 + z2 + z3;
    const tmp3 = d1 * F_1_501 + z1 + z4;
    out[o] = SATURATE[(((tmp10 + tmp3 + 131072) | 0) >> 18) + 8192];
    out[o + 7] = SATURATE[(((tmp10 - tmp3 + 131072) | 0) >> 18) + 8192];
    out[o + 1] = SATURATE[(((tmp11 + tmp2 + 131072) | 0) >> 18) + 8192];
    out[o + 6] = SATURATE[(((tmp11 - tmp2 + 131072) | 0) >> 18) + 8192];
    out[o + 2] = SATURATE[(((tmp12 + tmp1 + 131072) | 0) >> 18) + 8192];
    out[o + 5] = SATURATE[(((tmp12 - tmp1 + 131072) | 0) >> 18) + 8192];
    out[o + 3] = SATURATE[(((tmp13 + tmp0 + 131072) | 0) >> 18) + 8192];
    out[o + 4] = SATURATE[(((tmp13 - tmp0 + 131072) | 0) >> 18) + 8192];
  }
}

const saturate16 = (v: number) => Math.min(32767, Math.max(-32768, v));

// One column of pass 1 into ws, from 16-bit inputs: the sums the SIMD version forms in 16-bit lanes wrap,
// its 32-bit ones wrap, and the result is saturated to 16 bits.
function idctColumn(
  d0: number,
  d1: number,
  d2: number,
  d3: number,
  d4: number,
  d5: number,
  d6: number,
  d7: number,
  c: number,
) {
  const z1e = (d2 + d6) * F_0_541;
  const tmp2e = z1e - d6 * F_1_847;
  const tmp3e = z1e + d2 * F_0_765;
  const tmp0e = (((d0 + d4) << 16) >> 16) * 8192;
  const tmp1e = (((d0 - d4) << 16) >> 16) * 8192;
  const tmp10 = tmp0e + tmp3e;
  const tmp13 = tmp0e - tmp3e;
  const tmp11 = tmp1e + tmp2e;
  const tmp12 = tmp1e - tmp2e;
  const s73 = ((d7 + d3) << 16) >> 16;
  const s51 = ((d5 + d1) << 16) >> 16;
  const z5 = (s73 + s51) * F_1_175;
  const z1 = (d7 + d1) * -F_0_899;
  const z2 = (d5 + d3) * -F_2_562;
  const z3 = s73 * -F_1_961 + z5;
  const z4 = s51 * -F_0_390 + z5;
  const tmp0 = d7 * F_0_298 + z1 + z3;
  const tmp1 = d5 * F_2_053 + z2 + z4;
  const tmp2 = d3 * F_3_072 + z2 + z3;
  const tmp3 = d1 * F_1_501 + z1 + z4;
  ws[c] = saturate16(((tmp10 + tmp3 + 1024) | 0) >> 11);
  ws[c + 56] = saturate16(((tmp10 - tmp3 + 1024) | 0) >> 11);
  ws[c + 8] = saturate16(((tmp11 + tmp2 + 1024) | 0) >> 11);
  ws[c + 48] = saturate16(((tmp11 - tmp2 + 1024) | 0) >> 11);
  ws[c + 16] = saturate16(((tmp12 + tmp1 + 1024) | 0) >> 11);
  ws[c + 40] = saturate16(((tmp12 - tmp1 + 1024) | 0) >> 11);
  ws[c + 24] = saturate16(((tmp13 + tmp0 + 1024) | 0) >> 11);
  ws[c + 32] = saturate16(((tmp13 - tmp0 + 1024) | 0) >> 11);
}

// 4x4 output from the 8x8 coefficients, ignoring row and column 4 (jpeg_idct_4x4).
export function idct4(coefs: Int32Array, out: Uint8Array, outOff: number, stride: number) {
  for (let c = 0; c < 8; c++) {
    if (c === 4) continue;
    const i = c;
    if (
      coefs[i + 8] === 0 &&
      coefs[i + 16] === 0 &&
      coefs[i + 24] === 0 &&
      coefs[i + 40] === 0 &&
      coefs[i + 48] === 0 &&
      coefs[i + 56] === 0
    ) {
      const dc = coefs[i] << 2;
      ws[c] = dc;
      ws[c + 8] = dc;
      ws[c + 16] = dc;
      ws[c + 24] = dc;
      continue;
    }
    let tmp0 = coefs[i] * 16384;
    let tmp2 = coefs[i + 16] * F_1_847 - coefs[i + 48] * F_0_765;
    const tmp10 = tmp0 + tmp2;
    const tmp12 = tmp0 - tmp2;
    const z1 = coefs[i + 56];
    const z2 = coefs[i + 40];
    const z3 = coefs[i + 24];
    const z4 = coefs[i + 8];
    tmp0 = -z1 * F_0_211 + z2 * F_1_451 - z3 * F_2_172 + z4 * F_1_061;
    tmp2 = -z1 * F_0_509 - z2 * F_0_601 + z3 * F_0_899 + z4 * F_2_562;
    ws[c] = (tmp10 + tmp2 + 2048) >> 12;
    ws[c + 24] = (tmp10 - tmp2 + 2048) >> 12;
    ws[c + 8] = (tmp12 + tmp0 + 2048) >> 12;
    ws[c + 16] = (tmp12 - tmp0 + 2048) >> 12;
  }
  for (let r = 0; r < 4; r++) {
    const w = r * 8;
    const o = outOff + r * stride;
    if (
      ws[w + 1] === 0 &&
      ws[w + 2] === 0 &&
      ws[w + 3] === 0 &&
      ws[w + 5] === 0 &&
      ws[w + 6] === 0 &&
      ws[w + 7] === 0
    ) {
      const v = MASKED[((ws[w] + 16) >> 5) & 1023];
      out[o] = v;
      out[o + 1] = v;
      out[o + 2] = v;
      out[o + 3] = v;
      continue;
    }
    let tmp0 = ws[w] * 16384;
    let tmp2 = ws[w + 2] * F_1_847 - ws[w + 6] * F_0_765;
    const tmp10 = tmp0 + tmp2;
    const tmp12 = tmp0 - tmp2;
    const z1 = ws[w + 7];
    const z2 = ws[w + 5];
    const z3 = ws[w + 3];
    const z4 = ws[w + 1];
    tmp0 = -z1 * F_0_211 + z2 * F_1_451 - z3 * F_2_172 + z4 * F_1_061;
    tmp2 = -z1 * F_0_509 - z2 * F_0_601 + z3 * F_0_899 + z4 * F_2_562;
    out[o] = MASKED[((tmp10 + tmp2 + 262144) >> 19) & 1023];
    out[o + 3] = MASKED[((tmp10 - tmp2 + 262144) >> 19) & 1023];
    out[o + 1] = MASKED[((tmp12 + tmp0 + 262144) >> 19) & 1023];
    out[o + 2] = MASKED[((tmp12 - tmp0 + 262144) >> 19) & 1023];
  }
}

// 2x2 output, reading rows and columns 0, 1, 3, 5, 7 (jpeg_idct_2x2).
export function idct2(coefs: Int32Array, out: Uint8Array, outOff: number, stride: number) {
  for (let c = 0; c < 8; c++) {
    if (c === 2 || c === 4 || c === 6) continue;
    const i = c;
    if (coefs[i + 8] === 0 && coefs[i + 24] === 0 && coefs[i + 40] === 0 && coefs[i + 56] === 0) {
      const dc = coefs[i] << 2;
      ws[c] = dc;
      ws[c + 8] = dc;
      continue;
    }
    const tmp10 = coefs[i] * 32768;
    const tmp0 = -coefs[i + 56] * F_0_720 + coefs[i + 40] * F_0_850 - coefs[i + 24] * F_1_272 + coefs[i + 8] * F_3_624;
    ws[c] = (tmp10 + tmp0 + 4096) >> 13;
    ws[c + 8] = (tmp10 - tmp0 + 4096) >> 13;
  }
  for (let r = 0; r < 2; r++) {
    const w = r * 8;
    const o = outOff + r * stride;
    if (ws[w + 1] === 0 && ws[w + 3] === 0 && ws[w + 5] === 0 && ws[w + 7] === 0) {
      const v = MASKED[((ws[w] + 16) >> 5) & 1023];
      out[o] = v;
      out[o + 1] = v;
      continue;
    }
    const tmp10 = ws[w] * 32768;
    const tmp0 = -ws[w + 7] * F_0_720 + ws[w + 5] * F_0_850 - ws[w + 3] * F_1_272 + ws[w + 1] * F_3_624;
    out[o] = MASKED[((tmp10 + tmp0 + 524288) >> 20) & 1023];
    out[o + 1] = MASKED[((tmp10 - tmp0 + 524288) >> 20) & 1023];
  }
}

// The block's mean: DC / 8 (jpeg_idct_1x1).
export function idct1(coefs: Int32Array, out: Uint8Array, outOff: number) {
  out[outOff] = WRAP[((coefs[0] + 4) >> 3) & 1023];
}
