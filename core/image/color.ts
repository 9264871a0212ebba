// libjpeg-turbo's (and so PIL's) last decoding steps, redone on jpeg-js's YCbCr output: "fancy"
// (triangle) chroma upsampling and the fixed-point YCbCr -> RGB conversion. jpeg-js replicates chroma
// samples and truncates its RGB; both shift colours against PIL.

// libjpeg's YCbCr -> RGB (jdcolor.c): 16-bit fixed point, rounded.
const SCALEBITS = 16;
const ONE_HALF = 1 << (SCALEBITS - 1);
const fix = (x: number) => Math.trunc(x * (1 << SCALEBITS) + 0.5);
const CR_R = new Int32Array(256);
const CB_B = new Int32Array(256);
const CR_G = new Int32Array(256);
const CB_G = new Int32Array(256);
for (let i = 0; i < 256; i++) {
  const x = i - 128;
  CR_R[i] = (fix(1.402) * x + ONE_HALF) >> SCALEBITS;
  CB_B[i] = (fix(1.772) * x + ONE_HALF) >> SCALEBITS;
  CR_G[i] = -fix(0.71414) * x;
  CB_G[i] = -fix(0.34414) * x + ONE_HALF;
}

const clamp8 = (v: number) => (v < 0 ? 0 : Math.min(v, 255));

// data: [pixels][Y, Cb, Cr] -> [pixels][R, G, B] in place.
export function ycbcrToRgb(data: Uint8Array): void {
  for (let i = 0; i < data.length; i += 3) {
    const y = data[i],
      cb = data[i + 1],
      cr = data[i + 2];
    data[i] = clamp8(y + CR_R[cr]);
    data[i + 1] = clamp8(y + ((CB_G[cb] + CR_G[cr]) >> SCALEBITS));
    data[i + 2] = clamp8(y + CB_B[cb]);
  }
}

// Replaces the replicated chroma of data ([height][width][Y, Cb, Cr], chroma subsampled by hs x vs,
// each 1 or 2) with libjpeg-turbo's fancy upsampling (jdsample.c h2v1, h1v2, h2v2): each output sample
// is 3/4 of the nearer and 1/4 of the farther input sample per direction, with libjpeg's alternating
// rounding biases; image edges repeat the edge sample.
export function fancyUpsampleChroma(data: Uint8Array, width: number, height: number, hs: number, vs: number): void {
  const cw = Math.ceil(width / hs);
  const ch = Math.ceil(height / vs);
  // libjpeg replicates instead when a subsampled row has two samples or fewer.
  if ((hs === 1 && vs === 1) || (hs === 2 && cw <= 2)) return;
  const plane = new Uint8Array(cw * ch);
  for (let c = 1; c <= 2; c++) {
    // The replicated samples: every hs-th column of every vs-th row is an original.
    for (let j = 0; j < ch; j++) {
      for (let i = 0; i < cw; i++) plane[j * cw + i] = data[(j * vs * width + i * hs) * 3 + c];
    }
    for (let y = 0; y < height; y++) {
      const j = vs === 2 ? y >> 1 : y;
      // The vertical neighbour: above for the upper row of a pair, below for the lower one.
      const jn = vs === 2 ? Math.min(Math.max(y & 1 ? j + 1 : j - 1, 0), ch - 1) : j;
      const row = j * cw;
      const rowN = jn * cw;
      for (let x = 0; x < width; x++) {
        const i = hs === 2 ? x >> 1 : x;
        let v: number;
        if (hs === 1) {
          v = (3 * plane[row + i] + plane[rowN + i] + (y & 1 ? 2 : 1)) >> 2; // h1v2
        } else {
          const right = x & 1;
          const iN = Math.min(Math.max(right ? i + 1 : i - 1, 0), cw - 1);
          if (vs === 1) {
            v = (3 * plane[row + i] + plane[row + iN] + (right ? 2 : 1)) >> 2; // h2v1
          } else {
            const sum = 3 * plane[row + i] + plane[rowN + i];
            const sumN = 3 * plane[row + iN] + plane[rowN + iN];
            v = (3 * sum + sumN + (right ? 7 : 8)) >> 4; // h2v2
          }
        }
        data[(y * width + x) * 3 + c] = v;
      }
    }
  }
}
