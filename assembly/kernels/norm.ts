// LayerNorm over the last dimension, as torch.nn.LayerNorm: y = (x - mean) / sqrt(var + eps) * w + b,
// with the biased variance computed in a second pass over (x - mean) for accuracy.

/** out[M][D] = LayerNorm(x[M][D]) with weight w [D] and bias b [D]; out may equal x. */
export function layerNorm(x: usize, M: i32, D: i32, w: usize, b: usize, eps: f32, out: usize): void {
  const D4 = D & ~3;
  for (let m = 0; m < M; m++) {
    const row = x + ((<usize>m * D) << 2);
    const dst = out + ((<usize>m * D) << 2);
    let sum4 = f32x4.splat(0);
    for (let k = 0; k < D4; k += 4) sum4 = f32x4.add(sum4, v128.load(row + (<usize>k << 2)));
    let sum = (f32x4.extract_lane(sum4, 0) + f32x4.extract_lane(sum4, 1)) + (f32x4.extract_lane(sum4, 2) + f32x4.extract_lane(sum4, 3));
    for (let k = D4; k < D; k++) sum += load<f32>(row + (<usize>k << 2));
    const mean = sum / <f32>D;
    const mean4 = f32x4.splat(mean);
    let sq4 = f32x4.splat(0);
    for (let k = 0; k < D4; k += 4) {
      const d = f32x4.sub(v128.load(row + (<usize>k << 2)), mean4);
      sq4 = f32x4.add(sq4, f32x4.mul(d, d));
    }
    let sq = (f32x4.extract_lane(sq4, 0) + f32x4.extract_lane(sq4, 1)) + (f32x4.extract_lane(sq4, 2) + f32x4.extract_lane(sq4, 3));
    for (let k = D4; k < D; k++) {
      const d = load<f32>(row + (<usize>k << 2)) - mean;
      sq += d * d;
    }
    const inv: f32 = 1 / Mathf.sqrt(sq / <f32>D + eps);
    const inv4 = f32x4.splat(inv);
    for (let k = 0; k < D4; k += 4) {
      const o = <usize>k << 2;
      const y = f32x4.mul(f32x4.sub(v128.load(row + o), mean4), inv4);
      v128.store(dst + o, f32x4.add(f32x4.mul(y, v128.load(w + o)), v128.load(b + o)));
    }
    for (let k = D4; k < D; k++) {
      const o = <usize>k << 2;
      store<f32>(dst + o, (load<f32>(row + o) - mean) * inv * load<f32>(w + o) + load<f32>(b + o));
    }
  }
}

/** Scalar twin of layerNorm. */
export function layerNormScalar(x: usize, M: i32, D: i32, w: usize, b: usize, eps: f32, out: usize): void {
  for (let m = 0; m < M; m++) {
    const row = x + ((<usize>m * D) << 2);
    const dst = out + ((<usize>m * D) << 2);
    let sum: f32 = 0;
    for (let k = 0; k < D; k++) sum += load<f32>(row + (<usize>k << 2));
    const mean = sum / <f32>D;
    let sq: f32 = 0;
    for (let k = 0; k < D; k++) {
      const d = load<f32>(row + (<usize>k << 2)) - mean;
      sq += d * d;
    }
    const inv: f32 = 1 / Mathf.sqrt(sq / <f32>D + eps);
    for (let k = 0; k < D; k++) {
      const o = <usize>k << 2;
      store<f32>(dst + o, (load<f32>(row + o) - mean) * inv * load<f32>(w + o) + load<f32>(b + o));
    }
  }
}
