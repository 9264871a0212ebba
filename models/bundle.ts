// The .evit bundle (models/FORMAT.md): the one module that writes and reads bundle headers and computes
// the payload layout. Portable (Node and workerd): no Node imports; callers pass their CRC-32.
import { PACK_K, PACK_ROWS, packedSizes } from "./pack.ts";
import { MiB, sizeText } from "../core/sizes.ts";

export const MAGIC = "EVIT";
export const FORMAT_VERSION = 1;
export const PREFIX_BYTES = 16;
export const ALIGN = 64;

// The largest numbers a bundle may declare, derived from what one Worker isolate can hold: 128 MiB for
// the JS heap and every wasm memory together (docs/MEMORY.md). Each is checked, in O(1), before anything
// is laid out or allocated, by the reader (parsePrefix, validateHeader), the writer and the converter, so
// a hostile header costs as little as a good one. The sizes they imply together (payload, activations)
// are bounded again by `payloadBytes` and, when loading, by the memory budget (core/engine.ts).
export const LIMITS = {
  // The JSON header: 21,843 ImageNet-21k labels of ~30 characters and a 64-layer tensor table take 0.74 MiB.
  headerBytes: 2 * MiB,
  // The weights are used in place in wasm memory, inside the isolate's 128 MiB with the JS heap and the
  // activations beside them: ViT-B/16 int8 is 84 MiB. 120 MiB leaves 8 MiB for everything else, so no
  // larger payload can ever load; the deployed bound is the tighter MODEL_MEMORY_BUDGET_MB.
  payloadBytes: 120 * MiB,
  // ViT-H has 32 layers; a layer of dim 192 (DeiT-Ti) is ~0.43 MiB, so the payload limit alone would allow
  // ~280. At 64 the tensor table (20 entries a layer) stays under 1,300 entries.
  layers: 64,
  // ViT-G is 1664 wide. 4096 keeps every buffer the engine plans below 2^31 bytes (its offsets are i32).
  dim: 4096,
  // headDim = dim / heads is at least 1; published ViTs use 3..16 heads.
  heads: 64,
  // 4 x dim at the widest dim: [tokens][hidden] f32 stays below 2^31 bytes.
  hidden: 16384,
  // ImageNet-21k has 21,843; the classifier is dim x classes bytes (128 MiB at dim 4096: the payload
  // limit binds first).
  classes: 32768,
  // The engine's input is f32 [channels][imageSize][imageSize]: 12 MiB at 1024 px and 3 channels.
  imageSize: 1024,
  patchSize: 64,
  // The decoder makes RGB; one more allows an alpha or depth plane if a converter produces one.
  channels: 4,
  // (imageSize / patchSize)^2: attention scores are f32 [tokens][tokens], 64 MiB at 4096 patches.
  patches: 4096,
  // Label strings as shown in responses; ImageNet's longest is 121 characters.
  labelChars: 256,
} as const;

// A header is a few kilobytes for most models and under a megabyte with 21k labels.
export const MAX_HEADER_BYTES = LIMITS.headerBytes;

export type BundleErrorCode =
  | "bad_magic"
  | "unsupported_version"
  | "bad_header"
  | "size_mismatch"
  | "truncated"
  | "checksum_mismatch"
  | "over_limit"
  | "non_finite";

export class BundleError extends Error {
  readonly code: BundleErrorCode;
  constructor(code: BundleErrorCode, message: string) {
    super(message);
    this.name = "BundleError";
    this.code = code;
  }
}

export interface ModelConfig {
  imageSize: number; // input is [channels][imageSize][imageSize]
  patchSize: number; // patches = (imageSize / patchSize)^2
  channels: number;
  dim: number; // residual stream width
  heads: number; // headDim = dim / heads
  hidden: number; // MLP width
  layers: number;
  classes: number;
  eps: number; // LayerNorm epsilon
  distilled: boolean; // DeiT: distillation token and a second head
}

export type ResizeSize = { height: number; width: number } | { shortestEdge: number };

export interface Preprocessing {
  doResize: boolean;
  size: ResizeSize;
  resample: number; // PIL: 0 nearest, 1 lanczos, 2 bilinear, 3 bicubic, 4 box, 5 hamming
  doCenterCrop: boolean;
  cropSize: { height: number; width: number } | null;
  doRescale: boolean;
  rescaleFactor: number;
  doNormalize: boolean;
  imageMean: number[];
  imageStd: number[];
}

export interface SourceFile {
  bytes: number;
  crc32: string;
}

export interface BundleSource {
  layout: string;
  checkpoint: string;
  files: Record<string, SourceFile>;
  dtype: string;
  converter: string;
  convertedAt: string;
}

export interface TensorEntry {
  name: string;
  offset: number; // payload offset, a multiple of ALIGN
  bytes: number;
}

export interface BundleHeader {
  format: "edgevit";
  version: number;
  name: string;
  config: ModelConfig;
  preprocessing: Preprocessing;
  labels: string[];
  quantization: typeof QUANTIZATION;
  source: BundleSource;
  payload: { length: number; crc32: string };
  tensors: TensorEntry[];
}

// What the converter knows before it has written a byte of payload.
export interface BundleParts {
  name: string;
  config: ModelConfig;
  preprocessing: Preprocessing;
  labels: string[];
  source: BundleSource;
}

export const QUANTIZATION = {
  scheme: "w7a8",
  weights: "per-channel symmetric 7-bit, stored q+64",
  activations: "per-token asymmetric int8",
  pack: { rows: PACK_ROWS, k: PACK_K },
} as const;

// Same signature as node:zlib's crc32(data, value): IEEE CRC-32, continued from `value`.
export type Crc32 = (data: Uint8Array, value?: number) => number;

export const align64 = (n: number): number => Math.ceil(n / ALIGN) * ALIGN;

export const hex32 = (crc: number): string => (crc >>> 0).toString(16).padStart(8, "0");

export function tokens(config: ModelConfig): number {
  // as the patch conv counts them (bundles have imageSize % patchSize == 0; the engine also runs others)
  const side = Math.floor(config.imageSize / config.patchSize);
  return side * side + 1 + (config.distilled ? 1 : 0);
}

// What a writer must supply for one payload tensor.
export type TensorKind =
  | { kind: "f32"; shape: number[] }
  | { kind: "linear"; part: "weight" | "scale" | "wsum" | "bias"; n: number; k: number };

export interface LayoutEntry extends TensorEntry {
  source: TensorKind;
}

export interface Layout {
  tensors: LayoutEntry[];
  length: number; // payload bytes: end of the last tensor
}

// Tensor names, the one spelling shared by the payload layout and the engine's weight slots.
const LINEAR_PARTS = ["weight", "scale", "wsum", "bias"] as const;
const PATCH = "embeddings.patch_embeddings.projection";
const CLS = "embeddings.cls_token";
const DISTILLATION_TOKEN = "embeddings.distillation_token";
const POSITION = "embeddings.position_embeddings";
const FINAL_NORM = "layernorm";
const CLASSIFIER = "classifier";
const DISTILLATION_CLASSIFIER = "distillation_classifier";
const layerNames = (l: number) => {
  const p = `encoder.layer.${l}`;
  return {
    normBefore: `${p}.layernorm_before`,
    qkv: `${p}.attention.qkv`,
    attentionOutput: `${p}.attention.output.dense`,
    normAfter: `${p}.layernorm_after`,
    intermediate: `${p}.intermediate.dense`,
    output: `${p}.output.dense`,
  };
};

// The payload tensors in FORMAT.md order with their offsets: the only place that order is written.
export function layout(config: ModelConfig): Layout {
  const { channels, patchSize, dim, hidden, layers, classes, distilled } = config;
  const out: LayoutEntry[] = [];
  let offset = 0;
  const push = (name: string, bytes: number, source: TensorKind) => {
    offset = align64(offset);
    out.push({ name, offset, bytes, source });
    offset += bytes;
  };
  const f32 = (name: string, shape: number[]) =>
    push(name, 4 * shape.reduce((a, b) => a * b, 1), { kind: "f32", shape });
  const linear = (name: string, k: number, n: number) => {
    const sizes = packedSizes(n, k);
    for (const part of LINEAR_PARTS) push(`${name}.${part}`, sizes[part], { kind: "linear", part, n, k });
  };

  linear(PATCH, channels * patchSize * patchSize, dim);
  f32(CLS, [dim]);
  if (distilled) f32(DISTILLATION_TOKEN, [dim]);
  f32(POSITION, [tokens(config), dim]);
  for (let l = 0; l < layers; l++) {
    const n = layerNames(l);
    f32(`${n.normBefore}.weight`, [dim]);
    f32(`${n.normBefore}.bias`, [dim]);
    linear(n.qkv, dim, 3 * dim);
    linear(n.attentionOutput, dim, dim);
    f32(`${n.normAfter}.weight`, [dim]);
    f32(`${n.normAfter}.bias`, [dim]);
    linear(n.intermediate, dim, hidden);
    linear(n.output, hidden, dim);
  }
  f32(`${FINAL_NORM}.weight`, [dim]);
  f32(`${FINAL_NORM}.bias`, [dim]);
  linear(CLASSIFIER, dim, classes);
  if (distilled) linear(DISTILLATION_CLASSIFIER, dim, classes);
  return { tensors: out, length: offset };
}

// The engine's weight slots (assembly/model.ts, bindWeights; docs/ARCHITECTURE.md, "Weight table"): the
// tensor name in each slot, null where a model without distillation has none. A fixed ABI order, not the
// payload's: the host looks every name up in the header's tensor table, so the payload order may change
// here alone.
export function weightSlots(config: ModelConfig): (string | null)[] {
  const linear = (name: string) => LINEAR_PARTS.map((part) => `${name}.${part}`);
  const ifDistilled = (names: string[]) => names.map((n) => (config.distilled ? n : null));
  const slots: (string | null)[] = [
    ...linear(PATCH), // 0..3
    CLS, // 4
    ...ifDistilled([DISTILLATION_TOKEN]), // 5
    POSITION, // 6
    `${FINAL_NORM}.weight`, // 7
    `${FINAL_NORM}.bias`, // 8
    ...linear(CLASSIFIER), // 9..12
    ...ifDistilled(linear(DISTILLATION_CLASSIFIER)), // 13..16
  ];
  for (let l = 0; l < config.layers; l++) {
    const n = layerNames(l);
    slots.push(
      `${n.normBefore}.weight`, // 17 + 20 l
      `${n.normBefore}.bias`,
      ...linear(n.qkv), // + 2..5
      ...linear(n.attentionOutput), // + 6..9
      `${n.normAfter}.weight`, // + 10
      `${n.normAfter}.bias`,
      ...linear(n.intermediate), // + 12..15
      ...linear(n.output), // + 16..19
    );
  }
  return slots;
}

// ---- writing ----

function headerFor(parts: BundleParts, plan: Layout, crc32: number): BundleHeader {
  return {
    format: "edgevit",
    version: FORMAT_VERSION,
    name: parts.name,
    config: parts.config,
    preprocessing: parts.preprocessing,
    labels: parts.labels,
    quantization: QUANTIZATION,
    source: parts.source,
    payload: { length: plan.length, crc32: hex32(crc32) },
    tensors: plan.tensors.map(({ name, offset, bytes }) => ({ name, offset, bytes })),
  };
}

// Prefix, JSON header and space padding: the first `payloadOffset` bytes of the file.
export function encodeHead(header: BundleHeader): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const payloadOffset = align64(PREFIX_BYTES + json.length);
  const head = new Uint8Array(payloadOffset).fill(0x20);
  head.set(new TextEncoder().encode(MAGIC), 0);
  const view = new DataView(head.buffer);
  view.setUint32(4, FORMAT_VERSION, true);
  view.setUint32(8, json.length, true);
  view.setUint32(12, payloadOffset, true);
  head.set(json, PREFIX_BYTES);
  return head;
}

function bytesOf(data: ArrayBufferView): Uint8Array {
  // Typed arrays are written in platform order; Node and workerd run little-endian only.
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

// Streams a bundle front to back without holding its payload. The header goes first but carries the
// payload CRC, so `head()` gives a placeholder of the final length and `finish()` the real bytes to write
// over it at file offset 0 (the CRC is fixed-width hex, so the header length does not change).
export class BundleWriter {
  readonly plan: Layout;
  readonly payloadOffset: number;
  private readonly parts: BundleParts;
  private readonly crc32: Crc32;
  private next = 0;
  private written = 0;
  private crc = 0;

  constructor(parts: BundleParts, crc32: Crc32) {
    checkConfig(parts.config);
    this.parts = parts;
    this.crc32 = crc32;
    this.plan = layout(parts.config);
    checkPayloadLimit(this.plan.length, `the payload that ${describe(parts.config)} implies`);
    // write only what a reader accepts
    validateHeader(headerFor(parts, this.plan, 0));
    this.payloadOffset = this.head().length;
  }

  head(): Uint8Array {
    return encodeHead(headerFor(this.parts, this.plan, 0));
  }

  // The next tensor in layout order; returns the chunks to append (alignment padding, then the data).
  add(name: string, data: ArrayBufferView): Uint8Array[] {
    const entry = this.plan.tensors[this.next];
    if (!entry) throw new BundleError("size_mismatch", `tensor ${name} after the last tensor of the layout`);
    if (entry.name !== name) throw new BundleError("bad_header", `tensor ${name} written where ${entry.name} belongs`);
    const bytes = bytesOf(data);
    if (bytes.length !== entry.bytes) {
      throw new BundleError("size_mismatch", `tensor ${name} is ${bytes.length} bytes, the layout says ${entry.bytes}`);
    }
    const chunks: Uint8Array[] = [];
    if (entry.offset > this.written) chunks.push(new Uint8Array(entry.offset - this.written));
    chunks.push(bytes);
    for (const c of chunks) this.crc = this.crc32(c, this.crc);
    this.written = entry.offset + entry.bytes;
    this.next++;
    return chunks;
  }

  get done(): boolean {
    return this.next === this.plan.tensors.length;
  }

  finish(): { head: Uint8Array; header: BundleHeader } {
    if (!this.done) {
      throw new BundleError("truncated", `bundle finished before tensor ${this.plan.tensors[this.next].name}`);
    }
    const header = headerFor(this.parts, this.plan, this.crc);
    const head = encodeHead(header);
    if (head.length !== this.payloadOffset) throw new Error("bundle header changed length while writing");
    return { head, header };
  }
}

// A whole bundle in memory (small models, tests). `tensors` maps every layout name to its data.
export function encodeBundle(
  parts: BundleParts,
  tensors: Map<string, ArrayBufferView> | Record<string, ArrayBufferView>,
  crc32: Crc32,
): Uint8Array {
  const get = (name: string) => (tensors instanceof Map ? tensors.get(name) : tensors[name]);
  const writer = new BundleWriter(parts, crc32);
  const out = new Uint8Array(writer.payloadOffset + writer.plan.length);
  let at = writer.payloadOffset;
  for (const entry of writer.plan.tensors) {
    const data = get(entry.name);
    if (!data) throw new BundleError("bad_header", `no data for tensor ${entry.name}`);
    for (const chunk of writer.add(entry.name, data)) {
      out.set(chunk, at);
      at += chunk.length;
    }
  }
  out.set(writer.finish().head, 0);
  return out;
}

// ---- reading ----

export type PrefixResult = { header: BundleHeader; payloadOffset: number } | { need: number };

// Incremental: given the first bytes of a stream, either the validated header or how many bytes in
// total it needs before it can tell.
export function parsePrefix(bytes: Uint8Array): PrefixResult {
  if (bytes.length < PREFIX_BYTES) return { need: PREFIX_BYTES };
  const magic = String.fromCharCode(bytes[0], bytes[1], bytes[2], bytes[3]);
  if (magic !== MAGIC) {
    throw new BundleError(
      "bad_magic",
      `not an edgevit bundle: the file starts with ${JSON.stringify(magic)}, not "EVIT"`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint32(4, true);
  if (version !== FORMAT_VERSION) {
    throw new BundleError(
      "unsupported_version",
      `bundle format version ${version}; this build reads version ${FORMAT_VERSION} (convert the model again)`,
    );
  }
  const headerBytes = view.getUint32(8, true);
  const payloadOffset = view.getUint32(12, true);
  if (headerBytes === 0 || headerBytes > MAX_HEADER_BYTES) {
    throw new BundleError("bad_header", `header length ${headerBytes} is outside 1..${MAX_HEADER_BYTES}`);
  }
  if (payloadOffset !== align64(PREFIX_BYTES + headerBytes)) {
    throw new BundleError(
      "bad_header",
      `payload offset ${payloadOffset} should be ${align64(PREFIX_BYTES + headerBytes)} for a ${headerBytes}-byte header`,
    );
  }
  if (bytes.length < payloadOffset) return { need: payloadOffset };
  let json: unknown;
  try {
    json = JSON.parse(
      new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(PREFIX_BYTES, PREFIX_BYTES + headerBytes)),
    );
  } catch (e) {
    throw new BundleError("bad_header", `header is not UTF-8 JSON: ${(e as Error).message}`);
  }
  for (let i = PREFIX_BYTES + headerBytes; i < payloadOffset; i++) {
    if (bytes[i] !== 0x20) throw new BundleError("bad_header", `byte ${i} between header and payload is not a space`);
  }
  return { header: validateHeader(json), payloadOffset };
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const isPositiveInt = (v: unknown): v is number => Number.isInteger(v) && (v as number) > 0;
const isFinitePositive = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v) && v > 0;

function bad(message: string): never {
  throw new BundleError("bad_header", message);
}

// Sizes that the engine can plan for; shared by the writer and the reader.
function checkConfig(config: unknown): asserts config is ModelConfig {
  if (!isObject(config)) bad("header.config is not an object");
  for (const key of ["imageSize", "patchSize", "channels", "dim", "heads", "hidden", "layers", "classes"]) {
    if (!isPositiveInt(config[key]))
      bad(`config.${key} must be a positive integer, got ${JSON.stringify(config[key])}`);
  }
  const c = config as unknown as ModelConfig;
  if (!isFinitePositive(c.eps)) bad(`config.eps must be a positive number, got ${JSON.stringify(c.eps)}`);
  if (typeof c.distilled !== "boolean") bad("config.distilled must be true or false");
  if (c.dim % c.heads !== 0) bad(`config.dim ${c.dim} is not divisible by heads ${c.heads}`);
  if (c.imageSize % c.patchSize !== 0)
    bad(`config.imageSize ${c.imageSize} is not divisible by patchSize ${c.patchSize}`);
  const over = overLimit(c);
  if (over) throw new BundleError("over_limit", `config.${over.field} ${over.message}`);
}

export interface OverLimit {
  field: keyof ModelConfig | "patches";
  value: number;
  limit: number;
  message: string; // "is 1000000, over the limit of 64 ..."; the caller names the field
}

// The first of a config's sizes over LIMITS, in O(1). The sizes must already be positive integers.
export function overLimit(c: ModelConfig): OverLimit | null {
  const over = (field: OverLimit["field"], value: number, limit: number, what = ""): OverLimit => ({
    field,
    value,
    limit,
    message: `is ${value}${what}, over the limit of ${limit} for a model a Worker can hold`,
  });
  for (const field of ["imageSize", "patchSize", "channels", "dim", "heads", "hidden", "layers", "classes"] as const) {
    if (c[field] > LIMITS[field]) return over(field, c[field], LIMITS[field]);
  }
  const patches = (c.imageSize / c.patchSize) ** 2;
  if (patches > LIMITS.patches) return over("patches", patches, LIMITS.patches, " ((imageSize / patchSize)^2)");
  return null;
}

// A payload of `bytes` against LIMITS.payloadBytes; `what` says where the number comes from.
export function checkPayloadLimit(bytes: number, what: string): void {
  if (bytes > LIMITS.payloadBytes) {
    throw new BundleError(
      "over_limit",
      `${what} is ${bytes} bytes (${sizeText(bytes)}), ` +
        `over the limit of ${sizeText(LIMITS.payloadBytes)} of weights a Worker can hold`,
    );
  }
}

// Entries of layout(config), in O(1): the patch embedding Linear (4), class token, distillation token,
// position embeddings, 20 per layer (2 + 2 norm vectors, 4 Linears of 4), final norm (2), the heads (4 each).
export function tensorCount(c: ModelConfig): number {
  return 4 + 1 + (c.distilled ? 1 : 0) + 1 + 20 * c.layers + 2 + 4 + (c.distilled ? 4 : 0);
}

// Resize and crop sizes bound the per-request image buffers (resize output, crop), so they are capped
// like the model's own input: at most 4 x LIMITS.imageSize.
const MAX_RESIZE = 4 * LIMITS.imageSize;

function checkEdge(v: unknown, what: string): void {
  if (!isPositiveInt(v) || v > MAX_RESIZE)
    bad(`${what} must be an integer from 1 to ${MAX_RESIZE}, got ${JSON.stringify(v)}`);
}

function checkHeightWidth(v: unknown, what: string): void {
  if (!isObject(v) || !isPositiveInt(v.height) || !isPositiveInt(v.width)) {
    bad(`${what} must be {"height", "width"} positive integers, got ${JSON.stringify(v)}`);
  }
  checkEdge(v.height, `${what}.height`);
  checkEdge(v.width, `${what}.width`);
}

function checkPreprocessing(p: unknown, channels: number): asserts p is Preprocessing {
  if (!isObject(p)) bad("header.preprocessing is not an object");
  for (const key of ["doResize", "doCenterCrop", "doRescale", "doNormalize"]) {
    if (typeof p[key] !== "boolean") bad(`preprocessing.${key} must be true or false`);
  }
  if (isObject(p.size) && "shortestEdge" in p.size) {
    checkEdge(p.size.shortestEdge, "preprocessing.size.shortestEdge");
  } else {
    checkHeightWidth(p.size, "preprocessing.size");
  }
  if (!Number.isInteger(p.resample) || (p.resample as number) < 0 || (p.resample as number) > 5) {
    bad(`preprocessing.resample must be a PIL filter 0..5, got ${JSON.stringify(p.resample)}`);
  }
  // required when cropping, and well formed whenever present
  if (p.doCenterCrop || p.cropSize !== null) checkHeightWidth(p.cropSize, "preprocessing.cropSize");
  if (!isFinitePositive(p.rescaleFactor)) bad("preprocessing.rescaleFactor must be a positive number");
  for (const key of ["imageMean", "imageStd"]) {
    const v = p[key];
    if (!Array.isArray(v) || v.length !== channels || !v.every((x) => typeof x === "number" && Number.isFinite(x))) {
      bad(`preprocessing.${key} must be ${channels} numbers, got ${JSON.stringify(v)}`);
    }
  }
  if (!(p.imageStd as number[]).every((x) => x !== 0)) bad("preprocessing.imageStd has a zero");
}

// Checks a parsed header against the format and against the layout its own config implies.
export function validateHeader(json: unknown): BundleHeader {
  if (!isObject(json)) bad("header is not a JSON object");
  if (json.format !== "edgevit") bad(`header.format is ${JSON.stringify(json.format)}, not "edgevit"`);
  if (json.version !== FORMAT_VERSION) {
    throw new BundleError(
      "unsupported_version",
      `header says version ${JSON.stringify(json.version)}, this build reads ${FORMAT_VERSION}`,
    );
  }
  if (typeof json.name !== "string" || json.name === "") bad("header.name must be a non-empty string");
  checkConfig(json.config);
  const config = json.config;
  checkPreprocessing(json.preprocessing, config.channels);
  const labels = json.labels;
  if (!Array.isArray(labels) || !labels.every((l) => typeof l === "string"))
    bad("header.labels must be an array of strings");
  if (labels.length !== config.classes) bad(`header has ${labels.length} labels for ${config.classes} classes`);
  const long = labels.findIndex((l) => l.length > LIMITS.labelChars);
  if (long >= 0)
    bad(`header.labels[${long}] is ${labels[long].length} characters, over the limit of ${LIMITS.labelChars}`);
  const q = json.quantization;
  if (!isObject(q) || q.scheme !== QUANTIZATION.scheme) {
    bad(`quantization scheme ${JSON.stringify(isObject(q) ? q.scheme : q)} is not "${QUANTIZATION.scheme}"`);
  }
  if (!isObject(q.pack) || q.pack.rows !== PACK_ROWS || q.pack.k !== PACK_K) {
    bad(`weight packing ${JSON.stringify(q.pack)} is not {"rows": ${PACK_ROWS}, "k": ${PACK_K}}`);
  }
  if (!isObject(json.source)) bad("header.source is not an object");
  const payload = json.payload;
  if (
    !isObject(payload) ||
    !Number.isInteger(payload.length) ||
    typeof payload.crc32 !== "string" ||
    !/^[0-9a-f]{8}$/.test(payload.crc32)
  ) {
    bad(`header.payload must be {"length": integer, "crc32": 8 hex digits}, got ${JSON.stringify(payload)}`);
  }
  checkPayloadLimit(payload.length as number, "header.payload.length");
  const table = json.tensors;
  if (!Array.isArray(table)) bad("header.tensors is not an array");
  if (table.length !== tensorCount(config)) {
    bad(`header lists ${table.length} tensors; the config implies ${tensorCount(config)}`);
  }
  // Bounded from here on: the config is within LIMITS, so its layout has at most a few thousand entries.
  const plan = layout(config);
  if (payload.length !== plan.length) {
    throw new BundleError(
      "size_mismatch",
      `header.payload.length is ${payload.length} bytes but the config (${describe(config)}) implies ${plan.length}`,
    );
  }
  plan.tensors.forEach((want, i) => {
    const got = table[i];
    if (!isObject(got) || got.name !== want.name || got.offset !== want.offset || got.bytes !== want.bytes) {
      bad(
        `tensor #${i} is ${JSON.stringify(got)}; the layout says ${JSON.stringify({ name: want.name, offset: want.offset, bytes: want.bytes })}`,
      );
    }
  });
  return json as unknown as BundleHeader;
}

export function describe(c: ModelConfig): string {
  return (
    `${c.imageSize}px/${c.patchSize} ${c.channels}ch, dim ${c.dim}, heads ${c.heads}, hidden ${c.hidden}, ` +
    `layers ${c.layers}, classes ${c.classes}${c.distilled ? ", distilled" : ""}`
  );
}

// ---- the checks at the end of a bundle, shared by readBundle and the streaming loader (core/engine.ts) ----

export function headerTruncated(received: number): BundleError {
  return new BundleError("truncated", `bundle ended after ${received} bytes, inside its prefix or header`);
}

export function pastPayload(header: BundleHeader): BundleError {
  return new BundleError(
    "size_mismatch",
    `bundle has bytes past the ${header.payload.length}-byte payload its header declares`,
  );
}

// `received` payload bytes with IEEE CRC-32 `crc`: exactly the declared length, and the declared CRC.
export function checkPayload(header: BundleHeader, received: number, crc: number): void {
  const { length, crc32 } = header.payload;
  if (received < length)
    throw new BundleError("truncated", `bundle payload ended after ${received} of ${length} bytes`);
  if (received > length) throw pastPayload(header);
  const got = hex32(crc);
  if (got !== crc32) {
    throw new BundleError(
      "checksum_mismatch",
      `bundle payload CRC-32 is ${got}, the header says ${crc32}: the file is corrupt`,
    );
  }
}

// The tensors that hold f32 values: embeddings, norms, and each Linear's scale and bias (its weight is
// bytes and its wsum integers). These must be finite for the forward pass to be.
export function floatTensors(config: ModelConfig): LayoutEntry[] {
  return layout(config).tensors.filter(
    ({ source }) => source.kind === "f32" || source.part === "scale" || source.part === "bias",
  );
}

export function nonFinite(entry: TensorEntry, index: number, value: number): BundleError {
  return new BundleError(
    "non_finite",
    `tensor ${entry.name} has a non-finite value (${value}) at element ${index}: the weights are corrupt or overflowed`,
  );
}

// Every float tensor of `payload` is finite (NaN and +-Inf refused), checked in place.
export function checkFinite(header: BundleHeader, payload: Uint8Array): void {
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  for (const entry of floatTensors(header.config)) {
    for (let i = 0; i < entry.bytes / 4; i++) {
      const value = view.getFloat32(entry.offset + 4 * i, true);
      if (!Number.isFinite(value)) throw nonFinite(entry, i, value);
    }
  }
}

// A whole bundle in memory -> its header and a view of its payload, with the checks a streaming loader
// makes at the end (length, CRC-32, finite floats). For tools and tests; the engine host streams instead.
export function readBundle(bytes: Uint8Array, crc32: Crc32): { header: BundleHeader; payload: Uint8Array } {
  const result = parsePrefix(bytes);
  if ("need" in result) throw headerTruncated(bytes.length);
  const { header, payloadOffset } = result;
  const payload = bytes.subarray(payloadOffset);
  // the CRC only of a payload of the right length
  checkPayload(header, payload.length, payload.length === header.payload.length ? crc32(payload) : 0);
  checkFinite(header, payload);
  return { header, payload };
}
