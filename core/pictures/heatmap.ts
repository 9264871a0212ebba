// Heat maps: one value per patch, min-max scaled, coloured with a dark-to-bright ramp and blended over
// the image the model received, one square per patch (the patch grid the model sees).

// The ramp's stops: matplotlib's "inferno" at 0, 1/4, 1/2, 3/4 and 1 (dark purple to pale yellow; ordered
// in lightness, so it reads the same in grey), linearly interpolated between them.
const STOPS: readonly (readonly [number, number, number])[] = [
  [0, 0, 4],
  [87, 16, 110],
  [188, 55, 84],
  [249, 142, 9],
  [252, 255, 164],
];

// The colour of t in [0, 1] (clamped; NaN is 0).
export function rampColor(t: number): [number, number, number] {
  const x = Number.isNaN(t) ? 0 : Math.min(1, Math.max(0, t)) * (STOPS.length - 1);
  const i = Math.min(Math.floor(x), STOPS.length - 2);
  const f = x - i;
  const [a, b] = [STOPS[i], STOPS[i + 1]];
  return [0, 1, 2].map((c) => Math.round(a[c] + (b[c] - a[c]) * f)) as [number, number, number];
}

// `values` scaled to [0, 1] by their minimum and maximum; all zeros when they are all equal.
export function minMax(values: ArrayLike<number>): Float64Array {
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < values.length; i++) {
    lo = Math.min(lo, values[i]);
    hi = Math.max(hi, values[i]);
  }
  const out = new Float64Array(values.length);
  if (hi > lo) for (let i = 0; i < values.length; i++) out[i] = (values[i] - lo) / (hi - lo);
  return out;
}

// `rgb` ([height][width][3]) scaled to [size][size][3] by nearest neighbour (pixel centres).
export function resizeNearest(rgb: Uint8Array, width: number, height: number, size: number): Uint8Array {
  const out = new Uint8Array(size * size * 3);
  for (let y = 0; y < size; y++) {
    const sy = Math.min(height - 1, Math.floor(((y + 0.5) * height) / size));
    for (let x = 0; x < size; x++) {
      const sx = Math.min(width - 1, Math.floor(((x + 0.5) * width) / size));
      const [o, i] = [(y * size + x) * 3, (sy * width + sx) * 3];
      out[o] = rgb[i];
      out[o + 1] = rgb[i + 1];
      out[o + 2] = rgb[i + 2];
    }
  }
  return out;
}

// The heat map of `values` ([grid][grid], row-major patches) over `base` ([size][size][3]):
// round((1 - alpha) * base + alpha * ramp(minMax(value))) per channel, each patch a square.
export function heatMap(values: ArrayLike<number>, grid: number, base: Uint8Array, size: number, alpha = 0.6) {
  if (values.length !== grid * grid) throw new RangeError(`expected ${grid * grid} patch values, got ${values.length}`);
  if (base.length !== size * size * 3) throw new RangeError(`expected a ${size}x${size} RGB base image`);
  const colors = Array.from(minMax(values), rampColor);
  const out = new Uint8Array(size * size * 3);
  for (let y = 0; y < size; y++) {
    const row = Math.floor((y * grid) / size);
    for (let x = 0; x < size; x++) {
      const color = colors[row * grid + Math.floor((x * grid) / size)];
      const o = (y * size + x) * 3;
      for (let c = 0; c < 3; c++) out[o + c] = Math.round((1 - alpha) * base[o + c] + alpha * color[c]);
    }
  }
  return out;
}
