// A loaded model: its header, its input buffer, and run(), which calls the wasm forward pass and hands
// the outputs over (copies, or views read in place).
import { imageTokens, towerOf, type BundleHeader } from "../bundle/format.ts";
import { EdgevitError } from "../errors.ts";
import { sizeText } from "../sizes.ts";
import { CAPTURE_ATTENTION, CAPTURE_HIDDEN, CAPTURE_LAYER, type EngineExports } from "./abi.ts";
import { captureBufferBytes, wholePages } from "./memory.ts";

// The outputs a run can copy out of wasm memory (RunResult's fields of the same names).
export const RUN_OUTPUTS = ["logits", "output", "pooler", "projected", "headAttention", "imageTokens"] as const;
export type RunOutput = (typeof RUN_OUTPUTS)[number];

// Hugging Face's numbering: hidden state N = output of layer N (0 = embeddings), attention of layer N =
// `output_attentions[N - 1]`.
export interface RunOptions {
  capture?: number; // layer whose output to keep: 0 = embeddings, L = last layer
  // Called with every hidden state 0..L as the pass makes it: a view of the residual stream [tokens][dim]
  // in wasm memory, valid during the call (the next layer overwrites it), so that nothing keeps them all
  // (/v1/see draws each one's PCA picture here).
  hiddenState?: (layer: number, state: Float32Array) => void;
  // keep per layer the class token's attention rows, their head mean and the attention rollout (SigLIP:
  // the rollout through every layer ending in its pooling head's attention)
  attention?: boolean;
  attentionLayer?: number; // 1..L: keep that layer's attention probabilities, every head
  pixels?: boolean; // return a copy of the preprocessed input
  // The outputs to copy (default: every one the model has). Those left out come back empty (logits, output,
  // pooler) or absent: a classification need not copy last_hidden_state (591 KiB for a ViT-B/16) only for it
  // to be garbage once the answer is made.
  outputs?: readonly RunOutput[];
  // Reads the captures (clsAttention, clsMean, rollout, headRollout, attentions) in place instead of
  // copying them: called synchronously with views into wasm memory that are valid only during the call
  // (the next run overwrites them); run() then returns no captures. `pixels` comes as a copy: the pass
  // overwrites the input.
  read?: (captures: RunResult) => void;
}

export interface RunResult {
  logits: Float32Array; // [classes] (empty for a tower without a classifier)
  output: Float32Array; // [tokens][dim]: last_hidden_state
  pooler: Float32Array; // [dim]: pooler_output (the class token after the final norm; SigLIP: its pooling head's output)
  projected?: Float32Array; // [projection]: CLIP's image_embeds, where the model has a projection
  headAttention?: Float32Array; // [heads][tokens]: the pooling head's attention over the tokens (SigLIP)
  imageTokens?: Float32Array; // [imageTokens][lmDim]: a VLM connector's output, the rows the LLM receives

  captured?: Float32Array; // [tokens][dim]: hidden_states[capture]
  // With `attention`, for a model with a class token:
  clsAttention?: Float32Array; // [layers][heads][tokens]: row 0 of each head's softmax probabilities
  clsMean?: Float32Array; // [layers][tokens]: the same averaged over the heads
  rollout?: Float32Array; // [layers][tokens]: row 0 of the attention rollout through layers 1..N
  // and for a model pooled by attention (SigLIP):
  headRollout?: Float32Array; // [tokens]: the pooling head's mean attention through every layer's rollout
  attentions?: Float32Array; // [heads][tokens][tokens]: layer attentionLayer's probabilities
  pixels?: Float32Array; // [channels][imageSize][imageSize]: pixel_values
}

// The CAPTURE_* bits of the buffers `options` asks for.
function captureKinds(options: RunOptions): number {
  return (
    (options.attention ? CAPTURE_ATTENTION : 0) |
    (options.attentionLayer ? CAPTURE_LAYER : 0) |
    ((options.capture ?? -1) >= 0 ? CAPTURE_HIDDEN : 0)
  );
}

export class Model {
  readonly header: BundleHeader;
  readonly largestJsBuffer: number; // bytes: the largest JS buffer held while loading
  private readonly e: EngineExports;
  private captureKinds = 0; // the CAPTURE_* buffers allocated so far

  constructor(exports: EngineExports, header: BundleHeader, largestJsBuffer: number) {
    this.e = exports;
    this.header = header;
    this.largestJsBuffer = largestJsBuffer;
  }

  // The instance's wasm memory, as the runtime has it now: all this model holds once loaded.
  get wasmBytes(): number {
    return this.e.memory.buffer.byteLength;
  }

  get memoryBytes(): number {
    return this.wasmBytes;
  }

  get tokens(): number {
    return this.e.tokens();
  }

  // At most how much the capture buffers `options` asks for and this instance has not allocated yet grow
  // its memory, in whole pages (0 once it has them): a host can budget them before run() grows memory.
  captureGrowth(options: RunOptions): number {
    const missing = captureKinds(options) & ~this.captureKinds;
    return wholePages(captureBufferBytes(this.header.config, missing));
  }

  // f32 [channels][imageSize][imageSize]: write the preprocessed image here before run().
  input(): Float32Array {
    const c = this.header.config;
    return new Float32Array(this.e.memory.buffer, this.e.inputPtr(), c.channels * c.imageSize * c.imageSize);
  }

  // The capture buffers of `kinds` (CAPTURE_* bits), allocated once: a failed grow traps (the builds have
  // no abort import), reported as the memory that could not be had.
  private enableCapture(kinds: number): void {
    try {
      this.e.enableCapture(kinds);
      this.captureKinds |= kinds;
    } catch (error) {
      if (!(error instanceof WebAssembly.RuntimeError)) throw error;
      const bytes = captureBufferBytes(this.header.config, kinds & ~this.captureKinds);
      throw new EdgevitError(
        "model_unavailable",
        `model ${this.header.name} cannot keep what this request asks for: the runtime would not grow its ` +
          `memory by ${sizeText(bytes)}`,
        { cause: error },
      );
    }
  }

  run(options: RunOptions = {}): RunResult {
    const c = this.header.config;
    const capture = options.capture ?? -1;
    if (!Number.isInteger(capture) || capture < -1 || capture > c.layers) {
      throw new RangeError(`capture must be -1 or a layer 0..${c.layers}, got ${capture}`);
    }
    const attentionLayer = options.attentionLayer ?? 0;
    if (!Number.isInteger(attentionLayer) || attentionLayer < 0 || attentionLayer > c.layers) {
      throw new RangeError(`attentionLayer must be a layer 1..${c.layers}, got ${attentionLayer}`);
    }
    const flags = options.attention ? CAPTURE_ATTENTION : 0;
    if (captureKinds(options) !== 0) this.enableCapture(captureKinds(options));
    // the input shares the engine's memory with the layers' operands: copied before the pass overwrites it
    const pixels = options.pixels ? this.input().slice() : undefined;
    const t = this.e.tokens();
    const size = t * c.dim;
    const hiddenState = options.hiddenState;
    if (hiddenState) {
      // stepped, so the residual stream can be read after the embeddings and after each layer
      const state = () => new Float32Array(this.e.memory.buffer, this.e.residualPtr(), size);
      this.e.forwardBegin(capture, flags, attentionLayer);
      hiddenState(0, state());
      for (let l = 0; l < c.layers; l++) {
        this.e.forwardLayer(l);
        hiddenState(l + 1, state());
      }
      this.e.forwardEnd();
    } else {
      this.e.forward(capture, flags, attentionLayer);
    }
    const buffer = this.e.memory.buffer;
    // Finite weights can still overflow on some input; such numbers are not an answer.
    const tower = towerOf(c);
    const outputs: [string, number, number][] = [
      ["scores", this.e.logitsPtr(), c.classes],
      ["hidden states", this.e.outputPtr(), size],
      ["pooled output", this.e.poolerPtr(), c.dim],
      ["projected embedding", this.e.projectedPtr(), tower.projection],
    ];
    if (capture >= 0) outputs.push([`layer ${capture} hidden states`, this.e.capturedPtr(), size]);
    const imageRows = imageTokens(c) * tower.lmDim;
    if (imageRows > 0) outputs.push(["image tokens", this.e.imageTokensPtr(), imageRows]);
    for (const [what, ptr, count] of outputs) {
      if (this.e.nonFinite(ptr, count) >= 0) {
        throw new EdgevitError(
          "model_unavailable",
          `model ${this.header.name} computed non-finite ${what} for this image: its weights overflow`,
        );
      }
    }
    const wanted = new Set<RunOutput>(options.outputs ?? RUN_OUTPUTS);
    const copy = (ptr: number, length: number) => new Float32Array(buffer, ptr, length).slice();
    const output = (name: RunOutput, ptr: () => number, length: number) =>
      wanted.has(name) ? copy(ptr(), length) : new Float32Array(0);
    const result: RunResult = {
      logits: output("logits", () => this.e.logitsPtr(), c.classes),
      output: output("output", () => this.e.outputPtr(), size),
      pooler: output("pooler", () => this.e.poolerPtr(), c.dim),
    };
    if (tower.projection > 0 && wanted.has("projected")) {
      result.projected = copy(this.e.projectedPtr(), tower.projection);
    }
    if (tower.pooling === "map" && wanted.has("headAttention")) {
      result.headAttention = copy(this.e.headAttentionPtr(), c.heads * t);
    }
    if (imageRows > 0 && wanted.has("imageTokens")) result.imageTokens = copy(this.e.imageTokensPtr(), imageRows);
    if (capture >= 0) result.captured = copy(this.e.capturedPtr(), size);
    const take = options.read ? (ptr: number, length: number) => new Float32Array(buffer, ptr, length) : copy;
    const captures: RunResult = options.read ? { ...result } : result;
    if (options.attention && tower.classToken) {
      captures.clsAttention = take(this.e.clsAttentionPtr(), c.layers * c.heads * t);
      captures.clsMean = take(this.e.clsMeanPtr(), c.layers * t);
      captures.rollout = take(this.e.rolloutPtr(), c.layers * t);
    }
    if (options.attention && tower.pooling === "map") captures.headRollout = take(this.e.headRolloutPtr(), t);
    if (attentionLayer !== 0) captures.attentions = take(this.e.attentionsPtr(), c.heads * t * t);
    if (pixels) captures.pixels = pixels;
    options.read?.(captures);
    return result;
  }
}
