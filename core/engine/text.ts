// A text tower in an engine instance: a bundle's text section (core/bundle/text.ts) streamed into wasm
// memory (length, CRC-32 and finite floats checked as the image payload's are), its tokenizer read back
// out of it, and embed(): texts -> ids -> the wasm forward pass (assembly/text.ts) -> text embeddings.
import { BundleError, type BundleHeader } from "../bundle/format.ts";
import { checkSectionEnd, checkSectionFloats } from "../bundle/reader.ts";
import { poolIndex, type TextConfig, type TextSection, textSectionNamed, textWeightSlots } from "../bundle/text.ts";
import { HIDDEN_ACTS } from "../bundle/format.ts";
import { EdgevitError } from "../errors.ts";
import { type Tokenizer, tokenizerFromBytes } from "../text/index.ts";
import { initError, type EngineExports, writeWeightTable } from "./abi.ts";
import { pump } from "./load.ts";
import { BLOCK_ROWS, growing, type MemoryPlan, runStateBytes, wholePages } from "./memory.ts";

// The config struct textInit() reads (assembly/text.ts, TextConfigStruct): its own size, then these fields.
export const TEXT_CONFIG_FIELDS = [
  "vocab",
  "positions",
  "dim",
  "heads",
  "hidden",
  "layers",
  "eps",
  "hiddenAct",
  "causal",
  "projection",
  "blockRows", // the memory plan's block of tokens (memory.ts, BLOCK_ROWS)
] as const;
const TEXT_CONFIG_BYTES = 4 * (1 + TEXT_CONFIG_FIELDS.length);
const ERR_INPUT = 6;
// A streamed section's bytes between two yields to the event loop (load.ts's pump): a tower's load takes up
// to a second, and what waits for the isolate's lock (workerd's inspector, which samples its memory) gets
// in every MiB.
const YIELD_BYTES = 1024 * 1024;

// The tokenizer's JS heap per byte of its serialised form, measured in Node (V8's heap after loading five):
// CLIP's merge-rank map and word cache 5.9x, SigLIP's SentencePiece pieces 0.5x.
const TOKENIZER_HEAP_FACTOR = { "clip-text": 6, "siglip-text": 1 } as const;

// The JS heap a section's tokenizer takes once read.
export function tokenizerHeapBytes(section: Pick<TextSection, "kind" | "config">): number {
  return TOKENIZER_HEAP_FACTOR[section.kind] * section.config.tokenizerBytes;
}

// What a text tower's instance will hold: the section (weights and tokenizer bytes) and the activations
// for its longest sequence, as textInit() plans them (model.ts's RunState with no image buffers, the ids).
export function textMemoryPlan(c: TextConfig, sectionBytes: number, heapTop: number, rowTile: number): MemoryPlan {
  const state = runStateBytes(
    {
      tokens: c.positions,
      dim: c.dim,
      heads: c.heads,
      hidden: c.hidden,
      layers: c.layers,
      inputFloats: 0,
      patchDim: 0,
      classes: 0,
      projection: c.projection,
      imageTokens: 0,
      lmDim: 0,
      connector: "none",
      scaleFactor: 1,
    },
    rowTile,
  );
  const activationBytes = state + 4 * c.positions + 96; // and the ids
  const totalBytes = wholePages(heapTop + sectionBytes + 96 + activationBytes);
  return { payloadBytes: sectionBytes, activationBytes, totalBytes };
}

export interface TextLoadOptions {
  // Called with the plan before wasm memory grows for the section: may refuse it (throw) or make room.
  reserve?: (plan: MemoryPlan, section: TextSection) => void;
}

export interface TextEmbedding {
  ids: number[]; // the sequence as the tower ran it (CLIP: up to its pooled end-of-text token)
  pooledAt: number;
  pooler: Float32Array; // [dim]: final_layer_norm at the pooled position
  embedding: Float32Array; // [projection]: CLIP's text_embeds, SigLIP's pooler_output (after its head)
}

export class TextModel {
  readonly header: BundleHeader;
  readonly section: TextSection;
  readonly tokenizer: Tokenizer;
  readonly largestJsBuffer: number; // bytes: the largest JS buffer held while loading
  private readonly e: EngineExports;

  constructor(
    e: EngineExports,
    header: BundleHeader,
    section: TextSection,
    tokenizer: Tokenizer,
    largestJsBuffer: number,
  ) {
    this.e = e;
    this.header = header;
    this.section = section;
    this.tokenizer = tokenizer;
    this.largestJsBuffer = largestJsBuffer;
  }

  get config(): TextConfig {
    return this.section.config;
  }

  // The instance's wasm memory, as the runtime has it now.
  get wasmBytes(): number {
    return this.e.memory.buffer.byteLength;
  }

  // The instance's wasm memory and the tokenizer's JS tables.
  get memoryBytes(): number {
    return this.wasmBytes + tokenizerHeapBytes(this.section);
  }

  // The tokenizer's fixed-length rows, as the family's processor pads them.
  tokenize(texts: readonly string[]) {
    return this.tokenizer.encode(texts);
  }

  // One padded row of ids through the tower.
  embedIds(row: ArrayLike<number>): TextEmbedding {
    const c = this.config;
    if (row.length < 1 || row.length > c.positions) {
      throw new EdgevitError("bad_parameter", `a text is 1 to ${c.positions} tokens for this model, got ${row.length}`);
    }
    const at = poolIndex(c, row);
    const n = c.causal ? at + 1 : row.length;
    const ids = new Int32Array(this.e.memory.buffer, this.e.textIdsPtr(), n);
    for (let i = 0; i < n; i++) ids[i] = row[i];
    if (this.e.textForward(n, at) === ERR_INPUT) {
      throw new EdgevitError("bad_parameter", `a token id is outside this model's vocabulary of ${c.vocab}`);
    }
    const buffer = this.e.memory.buffer;
    const pooler = new Float32Array(buffer, this.e.textPoolerPtr(), c.dim).slice();
    const embedding = new Float32Array(buffer, this.e.textEmbedsPtr(), c.projection).slice();
    if (!embedding.every(Number.isFinite)) {
      throw new EdgevitError(
        "model_unavailable",
        `model ${this.header.name}'s text tower computed non-finite embeddings`,
      );
    }
    return { ids: Array.from(ids), pooledAt: at, pooler, embedding };
  }

  // Texts -> their embeddings, one forward pass each.
  embed(texts: readonly string[]): TextEmbedding[] {
    const { inputIds } = this.tokenize(texts);
    return inputIds.map((row) => this.embedIds(row));
  }
}

function writeConfig(view: DataView, c: TextConfig): void {
  const values: Record<(typeof TEXT_CONFIG_FIELDS)[number], number> = {
    vocab: c.vocab,
    positions: c.positions,
    dim: c.dim,
    heads: c.heads,
    hidden: c.hidden,
    layers: c.layers,
    eps: c.eps,
    hiddenAct: HIDDEN_ACTS.indexOf(c.hiddenAct),
    causal: c.causal ? 1 : 0,
    projection: c.projection,
    blockRows: BLOCK_ROWS,
  };
  view.setInt32(0, TEXT_CONFIG_BYTES, true);
  TEXT_CONFIG_FIELDS.forEach((name, i) => {
    if (name === "eps") view.setFloat32(4 * (1 + i), values.eps, true);
    else view.setInt32(4 * (1 + i), values[name], true);
  });
}

// Streams the section's bytes (exactly its length: a ranged read, or cut out of the file) into the fresh
// instance `e`, checks them, reads its tokenizer and initializes the text engine.
export async function loadTextModel(
  e: EngineExports,
  header: BundleHeader,
  name: string,
  source: Uint8Array | ReadableStream<Uint8Array>,
  options: TextLoadOptions = {},
): Promise<TextModel> {
  const section = textSectionNamed(header.sections, name);
  if (!section) throw new BundleError("bad_header", `bundle ${header.name} has no ${name} section`);
  const c = section.config;
  const plan = textMemoryPlan(c, section.length, e.alloc(0), e.gemmRowTile());
  options.reserve?.(plan, section);
  const ptr = growing(plan, () => e.alloc(section.length));
  let received = 0;
  let crc = 0;
  const write = (chunk: Uint8Array) => {
    if (received + chunk.length > section.length) {
      throw new BundleError("size_mismatch", `section ${name} has bytes past its ${section.length} bytes`);
    }
    new Uint8Array(e.memory.buffer, ptr + received, chunk.length).set(chunk);
    crc = e.crc32(crc, ptr + received, chunk.length) >>> 0;
    received += chunk.length;
  };
  // A stream is read in bounded chunks (load.ts's pump), each copied to its place in wasm memory: the
  // section is never whole in JS.
  let largestJsBuffer: number;
  if (source instanceof Uint8Array) {
    write(source);
    largestJsBuffer = source.byteLength;
  } else {
    largestJsBuffer = await pump(
      source,
      (chunk) => {
        write(chunk);
        return false;
      },
      YIELD_BYTES,
    );
  }
  checkSectionEnd(section, received, crc);
  checkSectionFloats(section, (offset, count) => {
    const index = e.nonFinite(ptr + offset, count);
    return index < 0 ? null : { index, value: new Float32Array(e.memory.buffer, ptr + offset + 4 * index, 1)[0] };
  });
  const entry = section.tensors.find((t) => t.name === "tokenizer")!;
  let tokenizer: Tokenizer;
  try {
    tokenizer = tokenizerFromBytes(new Uint8Array(e.memory.buffer, ptr + entry.offset, entry.bytes).slice());
  } catch (error) {
    throw new BundleError("bad_header", `section ${name}'s tokenizer cannot be read: ${(error as Error).message}`);
  }
  if (tokenizer.maxLength > c.positions || tokenizer.vocabSize > c.vocab) {
    throw new BundleError(
      "bad_header",
      `section ${name}'s tokenizer makes ids the tower has no embeddings or positions for`,
    );
  }
  const code = growing(plan, () => initText(e, c, { ptr, bytes: section.length, tensors: section.tensors }));
  if (code !== 0)
    throw new BundleError("bad_header", `engine refused ${header.name}'s ${name} tower: ${initError(code)}`);
  return new TextModel(e, header, section, tokenizer, largestJsBuffer);
}

function initText(
  e: EngineExports,
  c: TextConfig,
  payload: { ptr: number; bytes: number; tensors: readonly { name: string; offset: number }[] },
): number {
  const configPtr = e.alloc(TEXT_CONFIG_BYTES);
  writeConfig(new DataView(e.memory.buffer, configPtr, TEXT_CONFIG_BYTES), c);
  return e.textInit(configPtr, writeWeightTable(e, payload, textWeightSlots(c)));
}
