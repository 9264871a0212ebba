// "What the model sees", from one forward pass: the image as the model received it, the PCA picture of
// every hidden state, where the model looks per layer and head (the class token's attention; SigLIP, which
// has none, looks through its attention-pooling head) and attention rollout. The Worker's /v1/see,
// /v1/attention_map and /v1/pca?layer=all and the CLI's `see` all build on these.
import { prefixTokens, towerOf, type BundleHeader, type ModelConfig, type Preprocessing } from "../bundle/format.ts";
import type { RunOptions, RunResult } from "../engine/model.ts";
import { EdgevitError } from "../errors.ts";
import { heatMap, resizeNearest } from "./heatmap.ts";
import { valueTable } from "../preprocess/preprocess.ts";
import { gridPicture, tokenColors } from "./pca.ts";

// How long each layer shows in the animation of the PCA pictures.
export const FRAME_MS = 600;

export interface Geometry {
  grid: number; // patches per side
  patches: number;
  tokens: number; // prefix tokens (class, distillation, registers) then patches
  prefix: number;
  registers: number; // DINOv2's register tokens: the last of the prefix tokens
}

export function geometry(c: ModelConfig): Geometry {
  const grid = c.imageSize / c.patchSize;
  const patches = grid * grid;
  const prefix = prefixTokens(c); // class, distillation and register tokens
  return { grid, patches, tokens: patches + prefix, prefix, registers: towerOf(c).registerTokens };
}

// Who looks at the patches: the class token, whose last state the classifier (or the embedding) reads,
// or SigLIP's attention-pooling head, whose one query reads every token after the last layer.
export type Looker = "class token" | "pooling head";

export function lookerOf(c: ModelConfig): Looker {
  return towerOf(c).classToken ? "class token" : "pooling head";
}

// Whether anything looks: a VLM's tower without either (Idefics3's, whose every patch goes to the
// connector) has no attention over the patches as a whole to draw.
export function hasLooker(c: ModelConfig): boolean {
  const t = towerOf(c);
  return t.classToken || t.pooling === "map";
}

// Refuses the attention pictures of a model without a looker, before anything is run.
export function checkLooker(c: ModelConfig, name: string): void {
  if (hasLooker(c)) return;
  throw new EdgevitError(
    "bad_parameter",
    `model ${name} has neither a class token nor an attention-pooling head (its tower hands every patch to ` +
      "its connector): nothing in it attends over the patches as a whole, so it has no attention map; its " +
      "hidden states' PCA pictures and its image tokens are there to see",
  );
}

// The attention layers the pictures show: 1..L for the class token, the pooling head alone (after layer L)
// for SigLIP.
export function attentionLayers(c: ModelConfig): number {
  return towerOf(c).classToken ? c.layers : 1;
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

// The PCA picture of every hidden state, made as the pass makes each one (RunOptions.hiddenState): the
// patches' colours over the grid ([size][size][3] per layer 0..L) and the register tokens' colours on the
// same components ([registers][3] per layer; empty without registers).
export interface PcaFrames {
  frames: Uint8Array[];
  registers: Uint8Array[];
  hiddenState: (layer: number, state: Float32Array) => void;
}

export function pcaFrames(c: ModelConfig, size: number): PcaFrames {
  const { grid, prefix, registers } = geometry(c);
  const out: PcaFrames = {
    frames: [],
    registers: [],
    hiddenState: (layer, state) => {
      const colors = tokenColors(state, c.dim, grid, prefix - registers);
      out.frames[layer] = gridPicture(colors.patches, grid, size);
      out.registers[layer] = colors.extra.subarray(0, registers * 3);
    },
  };
  return out;
}

// The mean over the heads of `rows` ([heads][tokens]), summed in head order in float32 then scaled, as the
// engine averages the class token's rows.
function headMean(rows: Float32Array, heads: number, tokens: number): Float32Array {
  const mean = rows.slice(0, tokens);
  for (let h = 1; h < heads; h++) for (let j = 0; j < tokens; j++) mean[j] += rows[h * tokens + j];
  const scale = Math.fround(1 / heads);
  for (let j = 0; j < tokens; j++) mean[j] *= scale;
  return mean;
}

// Where the model looks ([tokens], every token) in attention layer 1..attentionLayers(c), for one head or
// the mean: the class token's attention row, or (SigLIP) its pooling head's attention.
function lookingRow(result: RunResult, c: ModelConfig, layer: number, head: number | "mean"): Float32Array {
  const { tokens } = geometry(c);
  if (!towerOf(c).classToken) {
    if (!result.headAttention) throw new Error("the run did not keep the pooling head's attention");
    return head === "mean"
      ? headMean(result.headAttention, c.heads, tokens)
      : result.headAttention.subarray(head * tokens, (head + 1) * tokens);
  }
  if (!result.clsAttention || !result.clsMean) throw new Error("the run did not keep its attention");
  const l = layer - 1;
  return head === "mean"
    ? result.clsMean.subarray(l * tokens, (l + 1) * tokens)
    : result.clsAttention.subarray((l * c.heads + head) * tokens, (l * c.heads + head + 1) * tokens);
}

// The class token's (SigLIP: its pooling head's) attention over the patches ([patches]) in attention
// layer 1..attentionLayers(c), for one head or the mean.
export function clsAttention(result: RunResult, c: ModelConfig, layer: number, head: number | "mean"): Float32Array {
  return lookingRow(result, c, layer, head).slice(geometry(c).prefix);
}

// The same for the register tokens ([registers]; empty without them).
export function registerAttention(result: RunResult, c: ModelConfig, layer: number, head: number | "mean") {
  const { prefix, registers } = geometry(c);
  return lookingRow(result, c, layer, head).slice(prefix - registers, prefix);
}

// The rollout ([tokens]) through layers 1..upTo: the class token's row; SigLIP: through every layer, ending
// in the pooling head's attention (upTo is its one attention layer).
function rolloutTokens(result: RunResult, c: ModelConfig, upTo: number): Float32Array {
  const { tokens } = geometry(c);
  if (!towerOf(c).classToken) {
    if (!result.headRollout) throw new Error("the run did not keep its rollout");
    return result.headRollout;
  }
  if (!result.rollout) throw new Error("the run did not keep its rollout");
  return result.rollout.subarray((upTo - 1) * tokens, upTo * tokens);
}

// The rollout over the patches ([patches]).
export function rolloutAttention(result: RunResult, c: ModelConfig, upTo: number): Float32Array {
  return rolloutTokens(result, c, upTo).slice(geometry(c).prefix);
}

// A per-patch map as a heat map over the preprocessed image, [size][size][3].
export function attentionPicture(values: ArrayLike<number>, image: Uint8Array, c: ModelConfig, size: number) {
  const base = resizeNearest(image, c.imageSize, c.imageSize, size);
  return heatMap(values, geometry(c).grid, base, size);
}

// Everything the page draws, as pictures and numbers (no reference into the run). The attention lists have
// attentionLayers(c) entries: layers 1..L, or SigLIP's pooling head alone.
export interface Seen {
  image: Uint8Array; // [imageSize][imageSize][3], the preprocessed image
  frames: Uint8Array[]; // [layers + 1] of [size][size][3], the PCA picture of each hidden state
  registerColors: Uint8Array[]; // [layers + 1] of [registers][3]: the register tokens on the same components
  cls: Float32Array[][]; // [attention layers][heads] of [patches]: where the model looks
  mean: Float32Array[]; // [attention layers] of [patches], the same averaged over heads
  rollout: Float32Array[]; // [attention layers] of [patches], rollout through layers 1..N
  registers: { mean: Float32Array[]; rollout: Float32Array[] }; // the same for the register tokens
}

// The capture /v1/see and `edgevit see` ask for, and what they keep from it: the PCA pictures as the pass
// runs, then the attention and the image from the run (views read in place, RunOptions.read).
export function seeCapture(header: BundleHeader, size: number) {
  const c = header.config;
  checkLooker(c, header.name);
  const pca = pcaFrames(c, size);
  const capture: Omit<RunOptions, "read"> = { hiddenState: pca.hiddenState, attention: true, pixels: true };
  const keep = (result: RunResult): Seen => {
    const layers = Array.from({ length: attentionLayers(c) }, (_, l) => l + 1);
    const { prefix, registers } = geometry(c);
    return {
      image: preprocessedImage(result, c, header.preprocessing),
      frames: pca.frames,
      registerColors: pca.registers,
      cls: layers.map((l) => Array.from({ length: c.heads }, (_, h) => clsAttention(result, c, l, h))),
      mean: layers.map((l) => clsAttention(result, c, l, "mean")),
      rollout: layers.map((l) => rolloutAttention(result, c, l)),
      registers: {
        mean: layers.map((l) => registerAttention(result, c, l, "mean")),
        rollout: layers.map((l) => rolloutTokens(result, c, l).slice(prefix - registers, prefix)),
      },
    };
  };
  return { capture, keep };
}
