// Principal components of a layer's patch tokens, and the RGB picture they make: each patch coloured by
// its projections on the top three components ("what the model sees" at that layer).

export interface Pca {
  components: Float64Array[]; // [k][dim], unit length (all zeros past the data's rank)
  variance: Float64Array; // [k], explained variance (eigenvalue of the covariance, divisor rows - 1)
  projections: Float64Array; // [rows][k], centered rows projected on the components
}

// Power iteration stops when the vector moves less than this, or after MAX_ITERATIONS: the cap bounds the
// CPU time when two eigenvalues are nearly equal (their order is then arbitrary anyway).
const TOLERANCE = 1e-10;
const MAX_ITERATIONS = 300;

// The top eigenpairs of the symmetric matrix `m` ([n][n], row-major): power iteration from a fixed start,
// deflation after each pair, and re-orthogonalization against the pairs found so rounding cannot
// bring them back. Eigenvalues below `floor` count as zero (the matrix's rank is lower than k).
function topEigen(
  m: Float64Array,
  n: number,
  k: number,
  floor: number,
): { vectors: Float64Array[]; values: Float64Array } {
  const vectors: Float64Array[] = [];
  const values = new Float64Array(k);
  for (let c = 0; c < k; c++) {
    // A fixed, irregular start vector: deterministic and not orthogonal to any axis-aligned eigenvector.
    let v = Float64Array.from({ length: n }, (_, i) => 1 + ((i * 7919) % 101) / 101);
    let next = new Float64Array(n);
    let value = 0;
    for (let it = 0; it < MAX_ITERATIONS; it++) {
      orthogonalize(v, vectors);
      const norm = normalize(v);
      if (norm === 0) break;
      for (let i = 0; i < n; i++) {
        let s = 0;
        for (let j = 0; j < n; j++) s += m[i * n + j] * v[j];
        next[i] = s;
      }
      value = dot(v, next); // Rayleigh quotient
      orthogonalize(next, vectors);
      if (normalize(next) === 0) break;
      let moved = 0;
      for (let i = 0; i < n; i++) moved = Math.max(moved, Math.abs(next[i] - v[i]));
      [v, next] = [next, v];
      if (moved < TOLERANCE) break;
    }
    if (!(value > floor)) {
      vectors.push(new Float64Array(n));
      continue;
    }
    values[c] = value;
    vectors.push(v);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) m[i * n + j] -= value * v[i] * v[j];
  }
  return { vectors, values };
}

function dot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

function normalize(v: Float64Array): number {
  const norm = Math.sqrt(dot(v, v));
  if (norm > 0) for (let i = 0; i < v.length; i++) v[i] /= norm;
  return norm;
}

function orthogonalize(v: Float64Array, basis: Float64Array[]): void {
  for (const b of basis) {
    const d = dot(v, b);
    for (let i = 0; i < v.length; i++) v[i] -= d * b[i];
  }
}

// What pca() holds at once for `rows` x `dim` (bytes): the centered rows, the covariance or Gram matrix,
// the components and projections, all float64.
export function pcaWorkBytes(rows: number, dim: number, k = 3): number {
  return 8 * (rows * dim + Math.min(rows, dim) ** 2 + k * (dim + rows) + 2 * Math.max(rows, dim));
}

// The top `k` principal components of `x` ([rows][dim]). Works on the covariance [dim][dim] or the Gram
// matrix [rows][rows], whichever is smaller (they share their nonzero eigenvalues). Each component's
// sign makes its largest-magnitude projection positive (the first such row on a tie).
export function pca(x: ArrayLike<number>, rows: number, dim: number, k = 3): Pca {
  // Centered rows in float64: [rows][dim].
  const centered = new Float64Array(rows * dim);
  for (let d = 0; d < dim; d++) {
    let mean = 0;
    for (let r = 0; r < rows; r++) mean += x[r * dim + d];
    mean /= rows;
    for (let r = 0; r < rows; r++) centered[r * dim + d] = x[r * dim + d] - mean;
  }
  let scale = 0;
  for (let i = 0; i < centered.length; i++) scale += centered[i] * centered[i];
  const floor = scale * 1e-12;

  const components: Float64Array[] = [];
  const projections = new Float64Array(rows * k);
  const variance = new Float64Array(k);
  const divisor = Math.max(rows - 1, 1);
  if (dim <= rows) {
    const covariance = new Float64Array(dim * dim); // [dim][dim], X^T X
    for (let r = 0; r < rows; r++) {
      for (let i = 0; i < dim; i++) {
        const a = centered[r * dim + i];
        for (let j = 0; j < dim; j++) covariance[i * dim + j] += a * centered[r * dim + j];
      }
    }
    const { vectors, values } = topEigen(covariance, dim, k, floor);
    for (let c = 0; c < k; c++) {
      components.push(vectors[c]);
      variance[c] = values[c] / divisor;
      for (let r = 0; r < rows; r++)
        projections[r * k + c] = dot(centered.subarray(r * dim, (r + 1) * dim), vectors[c]);
    }
  } else {
    const gram = new Float64Array(rows * rows); // [rows][rows], X X^T
    for (let a = 0; a < rows; a++) {
      for (let b = a; b < rows; b++) {
        // indexed in place: a subarray per pair would make ~19k short-lived objects per ViT-B/16 layer
        let sum = 0;
        for (let d = 0; d < dim; d++) sum += centered[a * dim + d] * centered[b * dim + d];
        gram[a * rows + b] = gram[b * rows + a] = sum;
      }
    }
    const { vectors, values } = topEigen(gram, rows, k, floor);
    for (let c = 0; c < k; c++) {
      // Gram eigenvector u with eigenvalue l: the component is X^T u / sqrt(l), the projections sqrt(l) u.
      const root = Math.sqrt(values[c]);
      const component = new Float64Array(dim);
      if (root > 0) {
        for (let r = 0; r < rows; r++) {
          for (let d = 0; d < dim; d++) component[d] += (centered[r * dim + d] * vectors[c][r]) / root;
        }
      }
      components.push(component);
      variance[c] = values[c] / divisor;
      for (let r = 0; r < rows; r++) projections[r * k + c] = root * vectors[c][r];
    }
  }

  for (let c = 0; c < k; c++) {
    let largest = 0;
    for (let r = 0; r < rows; r++) {
      if (Math.abs(projections[r * k + c]) > Math.abs(projections[largest * k + c])) largest = r;
    }
    if (projections[largest * k + c] < 0) {
      for (let r = 0; r < rows; r++) projections[r * k + c] = -projections[r * k + c];
      for (let d = 0; d < dim; d++) components[c][d] = -components[c][d];
    }
  }
  return { components, variance, projections };
}

// Each component min-max scaled to 0..255 over the rows: [rows][3] bytes, one RGB colour per row. A
// component that is the same for every row (e.g. past the data's rank) is 0.
export function pcaColors(x: ArrayLike<number>, rows: number, dim: number): Uint8Array {
  return scaledColors(pca(x, rows, dim, 3).projections, rows).colors;
}

// `projections` ([rows][3]) min-max scaled per component to 0..255, with each component's range.
function scaledColors(projections: Float64Array, rows: number) {
  const colors = new Uint8Array(rows * 3);
  const ranges: [number, number][] = [];
  for (let c = 0; c < 3; c++) {
    let lo = Infinity;
    let hi = -Infinity;
    for (let r = 0; r < rows; r++) {
      lo = Math.min(lo, projections[r * 3 + c]);
      hi = Math.max(hi, projections[r * 3 + c]);
    }
    ranges.push([lo, hi]);
    const range = hi - lo;
    for (let r = 0; r < rows; r++)
      colors[r * 3 + c] = range > 0 ? Math.round(((projections[r * 3 + c] - lo) / range) * 255) : 0;
  }
  return { colors, ranges };
}

// Each token's colour from `states` ([tokens][dim], prefix tokens then patches in row-major grid order):
// the patches' as pcaColors makes them; the prefix tokens from `extraFrom` on (DINOv2's registers)
// projected on the patches' components and scaled by the patches' ranges (clamped), so they read on the
// same colours.
export function tokenColors(states: Float32Array, dim: number, grid: number, extraFrom: number) {
  const patches = grid * grid;
  const prefix = states.length / dim - patches;
  const x = states.subarray(prefix * dim);
  const { components, projections } = pca(x, patches, dim, 3);
  const { colors, ranges } = scaledColors(projections, patches);
  const extraRows = prefix - extraFrom;
  const extra = new Uint8Array(extraRows * 3);
  if (extraRows === 0) return { patches: colors, extra };
  const mean = new Float64Array(dim);
  for (let r = 0; r < patches; r++) for (let d = 0; d < dim; d++) mean[d] += x[r * dim + d];
  for (let d = 0; d < dim; d++) mean[d] /= patches;
  for (let e = 0; e < extraRows; e++) {
    for (let c = 0; c < 3; c++) {
      let p = 0;
      for (let d = 0; d < dim; d++) p += (states[(extraFrom + e) * dim + d] - mean[d]) * components[c][d];
      const [lo, hi] = ranges[c];
      extra[e * 3 + c] = hi > lo ? Math.round(Math.min(1, Math.max(0, (p - lo) / (hi - lo))) * 255) : 0;
    }
  }
  return { patches: colors, extra };
}

// A colour per patch ([patches][3], row-major grid) as an RGB picture [size][size][3], upscaled by nearest
// neighbour.
export function gridPicture(colors: Uint8Array, grid: number, size: number): Uint8Array {
  const rgb = new Uint8Array(size * size * 3);
  for (let y = 0; y < size; y++) {
    const row = Math.floor((y * grid) / size);
    for (let x = 0; x < size; x++) {
      const patch = row * grid + Math.floor((x * grid) / size);
      // three stores, not a subarray per pixel (50k short-lived objects per 224x224 picture)
      const o = (y * size + x) * 3;
      rgb[o] = colors[patch * 3];
      rgb[o + 1] = colors[patch * 3 + 1];
      rgb[o + 2] = colors[patch * 3 + 2];
    }
  }
  return rgb;
}

// The patch tokens of `states` ([tokens][dim], prefix tokens then patches in row-major grid order) as an
// RGB picture [size][size][3]: the grid of patch colours upscaled by nearest neighbour.
export function patchPicture(states: Float32Array, dim: number, grid: number, size: number): Uint8Array {
  const patches = grid * grid;
  const prefix = states.length / dim - patches;
  return gridPicture(pcaColors(states.subarray(prefix * dim), patches, dim), grid, size);
}
