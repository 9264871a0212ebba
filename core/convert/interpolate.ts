// Bicubic resampling of a grid of vectors, as torch.nn.functional.interpolate(mode="bicubic",
// align_corners=False, size=(outH, outW)) computes it, with and without antialias=True: what DINOv2's
// interpolate_pos_encoding does to its position embeddings (models/tools/reference_towers.py names the
// transformers commit). The converter runs it once, in float64, and stores the result as f32.
//
// Without antialias (PyTorch's upsample_bicubic2d): output i samples the input at
//   x = (i + 0.5) * in / out - 0.5
// with Keys' cubic convolution, A = -0.75, on the four inputs floor(x) - 1 .. floor(x) + 2, indices clamped
// to the grid; no widening when the grid shrinks.
// With antialias (PyTorch's _upsample_bicubic2d_aa, the PIL-style filter, A = -0.5): output i is centred
// at c = (i + 0.5) * s, s = in / out, and takes inputs j in [trunc(c - support + 0.5), trunc(c + support +
// 0.5)) clipped to the grid, support = 2 * max(s, 1), weight filter((j - c + 0.5) / max(s, 1)),
// normalised to sum to 1.
// Both are separable: one set of (index, weight) taps per output row and per output column.

interface Taps {
  index: number[];
  weight: number[];
}

// Keys' cubic convolution kernel for |x| <= 1 and 1 < |x| < 2 (PyTorch's cubic_convolution1 and 2).
const cubic1 = (x: number, a: number) => ((a + 2) * x - (a + 3)) * x * x + 1;
const cubic2 = (x: number, a: number) => ((a * x - 5 * a) * x + 8 * a) * x - 4 * a;

function plainTaps(inSize: number, outSize: number): Taps[] {
  const a = -0.75;
  const scale = inSize / outSize;
  return Array.from({ length: outSize }, (_, i) => {
    const x = (i + 0.5) * scale - 0.5;
    const base = Math.floor(x);
    const t = x - base;
    const clamp = (j: number) => Math.min(Math.max(j, 0), inSize - 1);
    return {
      index: [clamp(base - 1), clamp(base), clamp(base + 1), clamp(base + 2)],
      weight: [cubic2(t + 1, a), cubic1(t, a), cubic1(1 - t, a), cubic2(2 - t, a)],
    };
  });
}

function antialiasTaps(inSize: number, outSize: number): Taps[] {
  const a = -0.5;
  const filter = (x: number) => {
    const ax = Math.abs(x);
    return ax < 1 ? cubic1(ax, a) : ax < 2 ? cubic2(ax, a) : 0;
  };
  const scale = inSize / outSize;
  const support = 2 * Math.max(scale, 1);
  const invScale = scale >= 1 ? 1 / scale : 1;
  return Array.from({ length: outSize }, (_, i) => {
    const center = scale * (i + 0.5);
    const first = Math.max(Math.trunc(center - support + 0.5), 0);
    const end = Math.min(Math.trunc(center + support + 0.5), inSize);
    const index: number[] = [];
    const weight: number[] = [];
    for (let j = first; j < end; j++) {
      index.push(j);
      weight.push(filter((j - center + 0.5) * invScale));
    }
    const total = weight.reduce((s, w) => s + w, 0);
    return { index, weight: total !== 0 ? weight.map((w) => w / total) : weight };
  });
}

// src [inH][inW][dim] -> [outH][outW][dim], in float64.
export function interpolateBicubic(
  src: ArrayLike<number>,
  inH: number,
  inW: number,
  dim: number,
  outH: number,
  outW: number,
  antialias: boolean,
): Float64Array {
  const taps = antialias ? antialiasTaps : plainTaps;
  const rows = taps(inH, outH);
  const cols = taps(inW, outW);
  const out = new Float64Array(outH * outW * dim);
  for (let y = 0; y < outH; y++) {
    for (let x = 0; x < outW; x++) {
      const at = (y * outW + x) * dim;
      const r = rows[y],
        c = cols[x];
      for (let i = 0; i < r.index.length; i++) {
        for (let j = 0; j < c.index.length; j++) {
          const w = r.weight[i] * c.weight[j];
          const from = (r.index[i] * inW + c.index[j]) * dim;
          for (let d = 0; d < dim; d++) out[at + d] += w * src[from + d];
        }
      }
    }
  }
  return out;
}
