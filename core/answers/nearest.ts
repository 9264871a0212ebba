// Which rows of an LLM's input embedding table each image token is nearest to, by cosine: the words the
// LLM's own vocabulary has closest to what the connector hands it. The table comes as int8 rows (the
// "lm_embeddings" section, core/bundle/embeddings.ts) a piece at a time, so only a piece is ever held; a
// row's scale cancels in its cosine, so only its int8 values are read.

export interface Nearest {
  ids: Int32Array; // [queries][k], the highest cosine first
  cosines: Float32Array; // [queries][k]
}

// Bounds of `?nearest=k`: a handful of words per token is what a reader looks at.
export const NEAREST_MAX = 20;

export class NearestRows {
  readonly k: number;
  readonly dim: number;
  private readonly queries: Float32Array; // [count][dim], each of length 1 (a zero query stays zero)
  private readonly count: number;
  private readonly best: Nearest;
  private seen = 0; // rows compared so far: the next piece's first row id

  // `queries` [count][dim]: the image tokens.
  constructor(queries: Float32Array, dim: number, k: number) {
    this.dim = dim;
    this.k = k;
    this.count = queries.length / dim;
    this.queries = new Float32Array(queries.length);
    for (let q = 0; q < this.count; q++) {
      let norm = 0;
      for (let d = 0; d < dim; d++) norm += queries[q * dim + d] ** 2;
      const inv = norm > 0 ? 1 / Math.sqrt(norm) : 0;
      for (let d = 0; d < dim; d++) this.queries[q * dim + d] = queries[q * dim + d] * inv;
    }
    this.best = {
      ids: new Int32Array(this.count * k).fill(-1),
      cosines: new Float32Array(this.count * k).fill(-Infinity),
    };
  }

  // The memory an instance holds for `count` queries, in bytes.
  static memoryBytes(count: number, dim: number, k: number): number {
    return count * dim * 4 + count * k * 8;
  }

  // The next rows of the table, in order: [rows][dim] int8. The hot spot: every query against every row.
  add(rows: Int8Array): void {
    const { dim, k, count, queries } = this;
    const { ids, cosines } = this.best;
    const n = rows.length / dim;
    for (let r = 0; r < n; r++) {
      const at = r * dim;
      let norm = 0;
      for (let d = 0; d < dim; d++) norm += rows[at + d] * rows[at + d];
      const id = this.seen + r;
      const inv = norm > 0 ? 1 / Math.sqrt(norm) : 0; // a zero row's cosine is 0
      for (let q = 0; q < count; q++) {
        const qa = q * dim;
        let dot = 0;
        for (let d = 0; d < dim; d++) dot += rows[at + d] * queries[qa + d];
        const cosine = dot * inv;
        const top = q * k;
        if (cosine <= cosines[top + k - 1]) continue;
        // insert, keeping the first row of equal cosines ahead (the lower id)
        let i = k - 1;
        while (i > 0 && cosine > cosines[top + i - 1]) {
          cosines[top + i] = cosines[top + i - 1];
          ids[top + i] = ids[top + i - 1];
          i--;
        }
        cosines[top + i] = cosine;
        ids[top + i] = id;
      }
    }
    this.seen += n;
  }

  get rows(): number {
    return this.seen;
  }

  result(): Nearest {
    return this.best;
  }
}
