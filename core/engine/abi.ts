// The wasm engine's ABI as the host sees it (docs/ARCHITECTURE.md, "Engine ABI"): the exports it calls,
// the config struct and the weight table it writes before init(), and what init()'s codes mean.
import {
  CONNECTORS,
  FINAL_NORMS,
  HIDDEN_ACTS,
  POOLINGS,
  SELECT_STRATEGIES,
  towerOf,
  type ModelConfig,
  type TensorEntry,
} from "../bundle/format.ts";
import { weightSlots } from "../bundle/layout.ts";
import { BLOCK_ROWS } from "./memory.ts";

// The exports of assembly/index.ts this host uses.
export interface EngineExports {
  memory: WebAssembly.Memory;
  alloc(bytes: number): number;
  crc32(crc: number, ptr: number, len: number): number;
  nonFinite(ptr: number, count: number): number; // index of the first NaN/Inf f32, or -1
  gemmRowTile(): number;
  init(config: number, weights: number): number;
  inputPtr(): number;
  forward(capture: number, flags: number, attentionLayer: number): void;
  forwardBegin(capture: number, flags: number, attentionLayer: number): void; // embeddings
  forwardLayer(layer: number): void; // encoder layer 0..L-1
  forwardEnd(): void; // final norm, pooling, projection, classifier, a VLM's connector
  logitsPtr(): number;
  outputPtr(): number;
  poolerPtr(): number;
  projectedPtr(): number;
  headAttentionPtr(): number;
  imageTokensPtr(): number;
  capturedPtr(): number;
  tokens(): number;
  enableCapture(flags: number): void;
  residualPtr(): number;
  clsAttentionPtr(): number;
  clsMeanPtr(): number;
  rolloutPtr(): number;
  headRolloutPtr(): number;
  attentionsPtr(): number;
  probeDot(): number;
  dotPath(): number;
  setDotPath(path: number): number;
  // the text towers (assembly/text.ts, core/engine/text.ts)
  textInit(config: number, weights: number): number;
  textForward(tokens: number, pooledAt: number): number;
  textIdsPtr(): number;
  textPoolerPtr(): number;
  textEmbedsPtr(): number;
  textPositions(): number;
}

const EXPORT_NAMES: readonly (keyof EngineExports)[] = [
  "memory",
  "alloc",
  "crc32",
  "nonFinite",
  "gemmRowTile",
  "init",
  "inputPtr",
  "forward",
  "forwardBegin",
  "forwardLayer",
  "forwardEnd",
  "logitsPtr",
  "outputPtr",
  "poolerPtr",
  "projectedPtr",
  "headAttentionPtr",
  "imageTokensPtr",
  "capturedPtr",
  "tokens",
  "enableCapture",
  "residualPtr",
  "clsAttentionPtr",
  "clsMeanPtr",
  "rolloutPtr",
  "headRolloutPtr",
  "attentionsPtr",
  "probeDot",
  "dotPath",
  "setDotPath",
  "textInit",
  "textForward",
  "textIdsPtr",
  "textPoolerPtr",
  "textEmbedsPtr",
  "textPositions",
];

// An instance's exports, once each one this host calls is there.
export function engineExports(instance: WebAssembly.Instance): EngineExports {
  const e = instance.exports as unknown as EngineExports;
  for (const name of EXPORT_NAMES) {
    if (!(name in e)) throw new Error(`engine module does not export ${name}`);
  }
  return e;
}

// The int8 dot step the GEMM takes (assembly/kernels/dot.ts): "fused" (one relaxed_dot_i8x16_i7x16_add_s,
// where the runtime lowers it to vpdpbusd / vpdpbssd / sdot), "split" (relaxed dot to i16, then widen) or
// "i16" (the baseline build's sign-extending loads and dot_i16x8_s). All give the same outputs. Indexed
// as dotPath() and setDotPath() number them.
export type DotPath = "i16" | "split" | "fused";
export const DOT_PATHS: readonly DotPath[] = ["i16", "split", "fused"];

export interface DotInfo {
  path: DotPath;
  // lane 0 of relaxed_dot_i8x16_i7x16_add_s(127s, 0xFFs, 0) in this runtime: 65534 (pmaddubsw), 129540
  // (vpdpbusd), -508 (vpdpbssd, sdot); 0 in the baseline build
  probe: number;
}

// forward()'s and enableCapture()'s flags (assembly/model.ts's CAPTURE_* bits), declared beside the plan
// of their buffers.
export { CAPTURE_ATTENTION, CAPTURE_HIDDEN, CAPTURE_LAYER } from "./memory.ts";

// The config struct init() reads (assembly/model.ts, ConfigStruct): after `bytes`, the struct's own size,
// one 4-byte little-endian field per ModelConfig field (the tower fields with their defaults; `family`
// only names the model), by name, in this order; a list is an enum, written as the value's index. A new
// field is one line here and one at the same place in ConfigStruct; the struct's size tells an engine
// built without it. After them, PLAN_FIELDS: what the memory plan decides rather than the bundle.
type FieldType = "i32" | "bool" | "f32" | readonly string[];
export const CONFIG_STRUCT = {
  channels: "i32",
  imageSize: "i32",
  patchSize: "i32",
  dim: "i32",
  heads: "i32",
  hidden: "i32",
  layers: "i32",
  classes: "i32",
  distilled: "bool", // i32 0 or 1
  eps: "f32",
  hiddenAct: HIDDEN_ACTS, // 0 gelu, 1 quick_gelu, 2 gelu_pytorch_tanh
  preLayernorm: "bool",
  classToken: "bool",
  registerTokens: "i32",
  layerScale: "bool",
  finalNorm: FINAL_NORMS, // 0 tokens, 1 pooled
  pooling: POOLINGS, // 0 cls, 1 map, 2 none
  projection: "i32",
  connector: CONNECTORS, // 0 none, 1 idefics3, 2 llava
  scaleFactor: "i32",
  lmDim: "i32",
  projectorHiddenAct: HIDDEN_ACTS,
  visionFeatureSelectStrategy: SELECT_STRATEGIES, // 0 default, 1 full
} as const satisfies Record<Exclude<keyof ModelConfig, "family">, FieldType>;
const CONFIG_FIELDS = Object.entries(CONFIG_STRUCT) as [keyof ModelConfig, FieldType][];
// blockRows: tokens per block (core/engine/memory.ts, BLOCK_ROWS)
export const PLAN_FIELDS = ["blockRows"] as const;
const CONFIG_BYTES = 4 * (1 + CONFIG_FIELDS.length + PLAN_FIELDS.length);

function writeConfig(view: DataView, config: ModelConfig): void {
  const full: ModelConfig = { ...config, ...towerOf(config) };
  view.setInt32(0, CONFIG_BYTES, true);
  CONFIG_FIELDS.forEach(([name, type], i) => {
    const at = 4 * (1 + i);
    const value = full[name];
    if (type === "f32") view.setFloat32(at, value as number, true);
    else if (type === "bool") view.setInt32(at, value ? 1 : 0, true);
    else if (type === "i32") view.setInt32(at, value as number, true);
    else view.setInt32(at, type.indexOf(value as string), true);
  });
  view.setInt32(4 * (1 + CONFIG_FIELDS.length), BLOCK_ROWS, true);
}

// The weight table (assembly/model.ts, WeightBinder): payload pointer, payload bytes, slot count, then
// one payload offset per weight slot (core/bundle/layout.ts), ABSENT where the model has no tensor.
const TABLE_HEADER_WORDS = 3;
const ABSENT = 0xffffffff;

// Writes the config struct and the weight table (each tensor's offset looked up by name in the header's
// tensor table, in the engine's slot order) into engine memory and calls init. Returns init's code.
export function initEngine(
  e: Pick<EngineExports, "memory" | "alloc" | "init">,
  config: ModelConfig,
  payload: { ptr: number; bytes: number; tensors: readonly TensorEntry[] },
): number {
  const configPtr = e.alloc(CONFIG_BYTES);
  writeConfig(new DataView(e.memory.buffer, configPtr, CONFIG_BYTES), config);

  return e.init(configPtr, writeWeightTable(e, payload, weightSlots(config)));
}

/** Writes the weight table for `slots` (a tensor name per slot, null where none) into engine memory; returns its pointer. */
export function writeWeightTable(
  e: Pick<EngineExports, "memory" | "alloc">,
  payload: { ptr: number; bytes: number; tensors: readonly { name: string; offset: number }[] },
  slots: readonly (string | null)[],
): number {
  const offsets = new Map(payload.tensors.map((t) => [t.name, t.offset]));
  const tablePtr = e.alloc(4 * (TABLE_HEADER_WORDS + slots.length));
  const table = new Uint32Array(e.memory.buffer, tablePtr, TABLE_HEADER_WORDS + slots.length);
  table.set([payload.ptr, payload.bytes, slots.length]);
  slots.forEach((name, i) => {
    table[TABLE_HEADER_WORDS + i] = name === null ? ABSENT : (offsets.get(name) ?? ABSENT);
  });
  return tablePtr;
}

// What init() returned, as a sentence (assembly/model.ts's ERR_ codes).
const INIT_ERRORS: Record<number, string> = {
  1:
    "the engine cannot run this configuration (a size is not positive, dim is not a multiple of heads, " +
    "or the patch is larger than the image)",
  2: "the payload is not 64-byte aligned in engine memory",
  3: "the engine instance already holds a model",
  4: "the host and the engine disagree on the config struct or the weight table size (mismatched builds)",
  5: "a tensor of the header's table is missing, misaligned or ends past the payload",
};

export function initError(code: number): string {
  return INIT_ERRORS[code] ?? `init returned the unknown code ${code}`;
}
