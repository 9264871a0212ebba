// Checks a parsed header against the format, LIMITS and the layout its own config implies: what the reader
// accepts, and all the writer writes.
import {
  BundleError,
  CONNECTORS,
  FINAL_NORMS,
  FORMAT_VERSIONS,
  versionList,
  HIDDEN_ACTS,
  FAMILIES,
  LIMITS,
  POOLINGS,
  QUANTIZATION,
  SELECT_STRATEGIES,
  checkPayloadLimit,
  describe,
  overLimit,
  type BundleHeader,
  type ModelConfig,
  type Preprocessing,
  TOWER_FIELDS,
  towerOf,
  versionFor,
} from "./format.ts";
import { layout, tensorCount } from "./layout.ts";
import { checkSection } from "./sections.ts";
import { PACK_K, PACK_ROWS } from "./pack.ts";

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const isPositiveInt = (v: unknown): v is number => Number.isInteger(v) && (v as number) > 0;
const isFinitePositive = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v) && v > 0;

function bad(message: string): never {
  throw new BundleError("bad_header", message);
}

// Sizes that the engine can plan for; shared by the writer and the reader.
export function checkConfig(config: unknown): asserts config is ModelConfig {
  if (!isObject(config)) bad("header.config is not an object");
  for (const key of ["imageSize", "patchSize", "channels", "dim", "heads", "hidden", "layers"]) {
    if (!isPositiveInt(config[key]))
      bad(`config.${key} must be a positive integer, got ${JSON.stringify(config[key])}`);
  }
  // an image tower has no classifier
  if (!Number.isInteger(config.classes) || (config.classes as number) < 0)
    bad(`config.classes must be an integer from 0, got ${JSON.stringify(config.classes)}`);
  const c = config as unknown as ModelConfig;
  if (!isFinitePositive(c.eps)) bad(`config.eps must be a positive number, got ${JSON.stringify(c.eps)}`);
  if (typeof c.distilled !== "boolean") bad("config.distilled must be true or false");
  checkTower(c);
  if (c.dim % c.heads !== 0) bad(`config.dim ${c.dim} is not divisible by heads ${c.heads}`);
  if (c.imageSize % c.patchSize !== 0)
    bad(`config.imageSize ${c.imageSize} is not divisible by patchSize ${c.patchSize}`);
  const over = overLimit(c);
  if (over) throw new BundleError("over_limit", `config.${over.field} ${over.message}`);
}

const oneOf = (value: unknown, allowed: readonly unknown[], what: string) => {
  if (value !== undefined && !allowed.includes(value))
    bad(
      `config.${what} must be one of ${allowed.map((a) => JSON.stringify(a)).join(", ")}, got ${JSON.stringify(value)}`,
    );
};

// The tower fields (FORMAT.md, "Tower fields"): each absent or well typed, and a combination the forward
// pass has a meaning for.
function checkTower(c: ModelConfig): void {
  oneOf(c.family, FAMILIES, "family");
  oneOf(c.hiddenAct, HIDDEN_ACTS, "hiddenAct");
  oneOf(c.finalNorm, FINAL_NORMS, "finalNorm");
  oneOf(c.pooling, POOLINGS, "pooling");
  oneOf(c.connector, CONNECTORS, "connector");
  oneOf(c.projectorHiddenAct, HIDDEN_ACTS, "projectorHiddenAct");
  oneOf(c.visionFeatureSelectStrategy, SELECT_STRATEGIES, "visionFeatureSelectStrategy");
  for (const key of ["preLayernorm", "classToken", "layerScale"] as const) {
    if (c[key] !== undefined && typeof c[key] !== "boolean") bad(`config.${key} must be true or false`);
  }
  for (const key of ["registerTokens", "projection", "lmDim"] as const) {
    const v = c[key];
    if (v !== undefined && !(Number.isInteger(v) && v >= 0))
      bad(`config.${key} must be an integer from 0, got ${JSON.stringify(v)}`);
  }
  if (c.scaleFactor !== undefined && !isPositiveInt(c.scaleFactor))
    bad(`config.scaleFactor must be a positive integer, got ${JSON.stringify(c.scaleFactor)}`);
  const t = towerOf(c);
  if (!t.classToken && (c.distilled || t.pooling === "cls" || t.finalNorm === "pooled" || c.classes > 0)) {
    bad("config.classToken is false, but a distillation token, class-token pooling or a classifier needs one");
  }
  if (t.finalNorm === "pooled" && t.pooling !== "cls") bad('config.finalNorm "pooled" needs pooling "cls"');
  if (c.distilled && t.registerTokens > 0) bad("config has both a distillation token and register tokens");
  checkConnector(c);
}

// A connector projects to the LLM's width; Idefics3's pixel shuffle regroups the patch grid in blocks of
// scaleFactor x scaleFactor, so the grid divides by it and no token precedes the patches.
function checkConnector(c: ModelConfig): void {
  const t = towerOf(c);
  if (t.connector === "none") {
    if (t.lmDim > 0) bad('config.lmDim is set but config.connector is "none"');
    return;
  }
  if (t.lmDim === 0) bad(`config.connector "${t.connector}" needs config.lmDim, the LLM's width`);
  if (t.connector === "idefics3") {
    const grid = c.imageSize / c.patchSize;
    if (grid % t.scaleFactor !== 0)
      bad(`config.scaleFactor ${t.scaleFactor} does not divide the ${grid}x${grid} patch grid`);
    if (t.classToken || c.distilled || t.registerTokens > 0)
      bad(
        'config.connector "idefics3" shuffles the patch grid: the tower can have no class, distillation or register tokens',
      );
  }
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
  if (p.splitting !== undefined) checkSplitting(p.splitting, p.size);
}

// Idefics3's splitting: the tile is `size`, square, and the longest edge at most 4 x LIMITS.imageSize.
function checkSplitting(s: unknown, size: unknown): void {
  if (!isObject(s)) bad(`preprocessing.splitting must be {"longestEdge", "maxImageSize"}, got ${JSON.stringify(s)}`);
  checkEdge(s.longestEdge, "preprocessing.splitting.longestEdge");
  checkEdge(s.maxImageSize, "preprocessing.splitting.maxImageSize");
  const tile = size as { height?: number; width?: number };
  if (tile.height !== s.maxImageSize || tile.width !== s.maxImageSize)
    bad(`preprocessing.size must be the ${s.maxImageSize}x${s.maxImageSize} tile of preprocessing.splitting`);
}

// Sections come with version 3 and only with it; at most a few, with distinct names. Where they lie in
// the file is checked by parsePrefix, which knows the payload offset.
const MAX_SECTIONS = 4;

function checkSections(version: number, sections: unknown): void {
  if (sections === undefined) {
    if (version === 3) bad("a version 3 header must have sections");
    return;
  }
  if (version !== 3) bad(`a version ${version} header cannot have sections: they came with version 3`);
  if (!Array.isArray(sections) || sections.length === 0 || sections.length > MAX_SECTIONS)
    bad(`header.sections must be an array of 1 to ${MAX_SECTIONS} sections`);
  const names = new Set<string>();
  sections.forEach((s, i) => {
    const section = checkSection(s, i);
    if (names.has(section.name)) bad(`header.sections has two sections named ${JSON.stringify(section.name)}`);
    names.add(section.name);
  });
}

// A parsed header -> the BundleHeader it is, or a BundleError saying which field is wrong and why.
export function validateHeader(json: unknown): BundleHeader {
  if (!isObject(json)) bad("header is not a JSON object");
  if (json.format !== "edgevit") bad(`header.format is ${JSON.stringify(json.format)}, not "edgevit"`);
  if (!FORMAT_VERSIONS.includes(json.version as number)) {
    throw new BundleError(
      "unsupported_version",
      `header says version ${JSON.stringify(json.version)}, this build reads ${versionList()}`,
    );
  }
  if (typeof json.name !== "string" || json.name === "") bad("header.name must be a non-empty string");
  checkConfig(json.config);
  const config = json.config;
  if (json.version === 1 && versionFor(config) !== 1) {
    const fields = TOWER_FIELDS.filter((key) => config[key] !== undefined);
    bad(
      `a version 1 header cannot have ${fields.length ? `the tower fields ${fields.join(", ")}` : "0 classes"}: ` +
        "they came with version 2",
    );
  }
  checkPreprocessing(json.preprocessing, config.channels);
  if (json.version === 1 && json.preprocessing.splitting !== undefined)
    bad("a version 1 header cannot have preprocessing.splitting: it came with version 2");
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
  checkSections(json.version as number, json.sections);
  return json as unknown as BundleHeader;
}
