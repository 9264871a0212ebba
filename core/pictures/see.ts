// "What the model sees", from one forward pass: the image as the model received it, the PCA picture of
// every hidden state, the class token's attention per layer and head, and attention rollout. The
// Worker's /v1/see, /v1/attention_map and /v1/pca?layer=all and the CLI's `see` all build on these.
import { prefixTokens, type BundleHeader, type ModelConfig, type Preprocessing } from "../bundle/format.ts";
import type { RunOptions, RunResult } from "../engine/model.ts";
import { heatMap, resizeNearest } from "./heatmap.ts";
import { valueTable } from "../preprocess/preprocess.ts";
import { patchPicture } from "./pca.ts";
import { rolloutRow } from "./rollout.ts";

// What the pictures below need from the engine: everything in one pass, nothing for all layers that is
// [heads][tokens][tokens] (the class-token rows and the head means are enough).
export const SEE_CAPTURE: RunOptions = { hiddenStates: true, attention: true, pixels: true };

// How long each layer shows in the animation of the PCA pictures.
export const FRAME_MS = 600;

export interface Geometry {
  grid: number; // patches per side
  patches: number;
  tokens: number; // prefix tokens (class, distillation, registers) then patches
  prefix: number;
}

export function geometry(c: ModelConfig): Geometry {
  const grid = c.imageSize / c.patchSize;
  const patches = grid * grid;
  const prefix = prefixTokens(c); // class, distillation and register tokens
  return { grid, patches, tokens: patches + prefix, prefix };
}

// pixel_values ([3][height][width] floats) back to the 8-bit RGB the preprocessor read ([height][width][3]):
// each float is the preprocessor's value for exactly one byte (its table is increasing), found by bisection.
export function pixelsToRgb(pixels: Float32Array, pp: Preprocessing, width: number, height: number): Uint8Array {
  const lut = valueTable(pp); // [3][256]
  const plane = width * height;
  const rgb = new Uint8Array(plane * 3);
  for (let c = 0; c < 3; c++) {
    const table = lut.subarray(c * 256, (c + 1) * 256);
    const increasing = table[255] >= table[0];
    for (let i = 0; i < plane; i++) {
      const v = pixels[c * plane + i];
      let lo = 0;
      let hi = 255;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (increasing ? table[mid] < v : table[mid] > v) lo = mid + 1;
        else hi = mid;
      }
      if (lo > 0 && Math.abs(table[lo - 1] - v) < Math.abs(table[lo] - v)) lo--;
      rgb[i * 3 + c] = lo;
    }
  }
  return rgb;
}

// The preprocessed image as 8-bit RGB [imageSize][imageSize][3].
export function preprocessedImage(result: RunResult, c: ModelConfig, pp: Preprocessing): Uint8Array {
  if (!result.pixels) throw new Error("the run did not keep its pixels");
  return pixelsToRgb(result.pixels, pp, c.imageSize, c.imageSize);
}

// The PCA picture ([size][size][3]) of hidden state `layer` (0..layers).
export function pcaFrame(result: RunResult, c: ModelConfig, layer: number, size: number): Uint8Array {
  if (!result.hiddenStates) throw new Error("the run did not keep its hidden states");
  const { tokens, grid } = geometry(c);
  const state = result.hiddenStates.subarray(layer * tokens * c.dim, (layer + 1) * tokens * c.dim);
  return patchPicture(state, c.dim, grid, size);
}

export function pcaFrames(result: RunResult, c: ModelConfig, size: number): Uint8Array[] {
  return Array.from({ length: c.layers + 1 }, (_, layer) => pcaFrame(result, c, layer, size));
}

// The class token's attention over the patches ([patches]) in layer 1..layers, for one head or the mean.
export function clsAttention(result: RunResult, c: ModelConfig, layer: number, head: number | "mean"): Float32Array {
  if (!result.clsAttention || !result.meanAttention) throw new Error("the run did not keep its attention");
  const { tokens, prefix } = geometry(c);
  const l = layer - 1;
  const row =
    head === "mean"
      ? result.meanAttention.subarray(l * tokens * tokens, l * tokens * tokens + tokens)
      : result.clsAttention.subarray((l * c.heads + head) * tokens, (l * c.heads + head + 1) * tokens);
  return row.slice(prefix);
}

// The class token's row of the attention rollout through layers 1..upTo, over the patches ([patches]).
export function rolloutAttention(result: RunResult, c: ModelConfig, upTo: number): Float32Array {
  if (!result.meanAttention) throw new Error("the run did not keep its attention");
  const { tokens, prefix } = geometry(c);
  return Float32Array.from(rolloutRow(result.meanAttention, tokens, upTo, 0).subarray(prefix));
}

// A per-patch map as a heat map over the preprocessed image, [size][size][3].
export function attentionPicture(values: ArrayLike<number>, image: Uint8Array, c: ModelConfig, size: number) {
  const base = resizeNearest(image, c.imageSize, c.imageSize, size);
  return heatMap(values, geometry(c).grid, base, size);
}

// Everything the page draws, as pictures and numbers (no reference into the run).
export interface Seen {
  image: Uint8Array; // [imageSize][imageSize][3], the preprocessed image
  frames: Uint8Array[]; // [layers + 1] of [size][size][3], the PCA picture of each hidden state
  cls: Float32Array[][]; // [layers][heads] of [patches], the class token's attention
  mean: Float32Array[]; // [layers] of [patches], the same averaged over heads
  rollout: Float32Array[]; // [layers] of [patches], rollout through layers 1..N
}

// Works on a run made with SEE_CAPTURE, copies or views (RunOptions.read): reads it all synchronously.
export function seeAll(result: RunResult, header: BundleHeader, size: number): Seen {
  const c = header.config;
  const layers = Array.from({ length: c.layers }, (_, l) => l + 1);
  return {
    image: preprocessedImage(result, c, header.preprocessing),
    frames: pcaFrames(result, c, size),
    cls: layers.map((l) => Array.from({ length: c.heads }, (_, h) => clsAttention(result, c, l, h))),
    mean: layers.map((l) => clsAttention(result, c, l, "mean")),
    rollout: layers.map((l) => rolloutAttention(result, c, l)),
  };
}
