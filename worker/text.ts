// The text towers' operations without a transport: texts to embeddings and ids, and zero-shot labels. Where
// a text pass runs: in this isolate when it serves text (SERVES = "text", the text Worker of
// wrangler.text.toml) or has no TEXT binding (a small deployment, `npm run dev` without it); otherwise over
// the TEXT service binding, in the text Worker's isolate, since both towers of CLIP B/32 or SigLIP B/16 do
// not fit one isolate's 128 MB. A label set's embeddings are computed once per model version (the text
// section's CRC-32) and template: kept in this isolate (a bounded LRU) and in R2 beside the bundle, so a
// fixed label set costs one text pass ever and zero-shot then needs only the image tower.
import { poolEmbedding, poolOutput, poolsOf } from "../core/answers/pool.ts";
import { DEFAULT_TEMPLATE, fillTemplate, normalized, type Scoring, zeroShotScores } from "../core/answers/zeroshot.ts";
import { LIMITS } from "../core/bundle/format.ts";
import type { Section } from "../core/bundle/format.ts";
import { type TextSection, textSectionNamed } from "../core/bundle/text.ts";
import { EdgevitError } from "../core/errors.ts";
import { keyOf } from "../core/names.ts";
import { MiB } from "../core/sizes.ts";
import { Busy, ledgerOf, reservationBytes, type Ticket } from "./memory.ts";
import { cacheKey, getTextModel, isLoaded } from "./models.ts";
import { type Prepared, run } from "./service.ts";
import { remote, type TextEmbeddings } from "./text-service.ts";

export { loadedTowers, TEXT_LISTING_TIMEOUT_MS, type TextEmbeddings, textTowers } from "./text-service.ts";
import { type EmbedTextAnswer, errorCode, type TokenizeAnswer, type ZeroShotAnswer } from "./types.ts";

// Bounds of one request (documented in openapi.ts): labels of a zero-shot request, texts of an
// embed_text or tokenize request, characters of one text (a CLIP text is 77 tokens, a SigLIP one 64:
// longer texts are truncated, and 1,024 characters is far past either).
export const MAX_LABELS = 256;
export const MAX_TEXTS = 256;
export const MAX_TEXT_CHARS = 1024;
// A JSON body of MAX_TEXTS texts of MAX_TEXT_CHARS characters, escaped.
export const MAX_TEXT_BODY_BYTES = 2 * MiB;
// A zero-shot form's text fields before its image: MAX_LABELS labels of LIMITS.labelChars characters as a
// JSON array, and the template, in UTF-8.
export const MAX_FORM_FIELDS_BYTES = 256 * 1024;

// Label embeddings kept in this isolate: 256 labels of SigLIP's 768 floats are 768 KiB.
const LABEL_CACHE_BYTES = 4 * MiB;
// Texts per call to the text Worker: its isolate has ~2 MiB beside SigLIP B/16's text tower (README,
// "Zero-shot and text search"), and each text's answer is reserved there.
const REMOTE_BATCH = 32;

// Takes a request's memory reservation, to release when the request ends (rpc.ts's tickets, http.ts's Held).
export type Keep = (ticket: Ticket) => void;

// Where a label set's embeddings came from, for the x-edgevit-labels header.
export type LabelSource = "computed" | "isolate" | "r2";

// A refusal of the text Worker as this Worker's own (rpc.ts sends the code as `code` and before the
// message); anything else is the binding's failure, a 503 the caller may retry.
function fromRemote(error: unknown): EdgevitError {
  const code = errorCode(error);
  const message = error instanceof Error ? error.message.replace(/^[a-z_]+: /, "") : String(error);
  if (code === "busy") return new Busy(Number((error as { retryAfter?: unknown }).retryAfter) || 1);
  if (code) return new EdgevitError(code, message);
  console.error("the text Worker failed:", error);
  return new EdgevitError("model_unavailable", "the text tower cannot answer right now; the cause has been logged", {
    cause: error,
  });
}

// Texts as a request gives them: 1 to MAX_TEXTS strings of at most MAX_TEXT_CHARS characters.
export function checkTexts(texts: unknown): string[] {
  if (!Array.isArray(texts) || texts.length === 0 || !texts.every((t) => typeof t === "string")) {
    throw new EdgevitError("bad_parameter", 'texts must be a non-empty array of strings, e.g. {"texts": ["a cat"]}');
  }
  if (texts.length > MAX_TEXTS) {
    throw new EdgevitError("bad_parameter", `texts has ${texts.length} texts, more than the limit of ${MAX_TEXTS}`);
  }
  const long = texts.findIndex((t) => t.length > MAX_TEXT_CHARS);
  if (long >= 0) {
    throw new EdgevitError(
      "bad_parameter",
      `texts[${long}] is ${texts[long].length} characters, more than the limit of ${MAX_TEXT_CHARS}`,
    );
  }
  return texts;
}

// Labels as a request gives them: 1 to MAX_LABELS distinct non-empty strings.
export function checkLabels(labels: unknown): string[] {
  if (!Array.isArray(labels) || !labels.every((l) => typeof l === "string")) {
    throw new EdgevitError("bad_parameter", "labels must be strings: labels=cat&labels=dog, or a JSON array");
  }
  if (labels.length === 0) {
    throw new EdgevitError(
      "bad_parameter",
      "labels are required: labels=cat&labels=dog, or a JSON array in a form field before the image",
    );
  }
  if (labels.length > MAX_LABELS) {
    throw new EdgevitError("bad_parameter", `${labels.length} labels are more than the limit of ${MAX_LABELS}`);
  }
  const seen = new Set<string>();
  for (const label of labels) {
    if (label.trim() === "") throw new EdgevitError("bad_parameter", "a label is empty");
    if (label.length > LIMITS.labelChars) {
      throw new EdgevitError(
        "bad_parameter",
        `the label ${JSON.stringify(`${label.slice(0, 40)}...`)} is ${label.length} characters, more than the limit of ${LIMITS.labelChars}`,
      );
    }
    if (seen.has(label)) throw new EdgevitError("bad_parameter", `the label ${JSON.stringify(label)} is given twice`);
    seen.add(label);
  }
  return labels;
}

// The template each label is put into: `{}` once, no other brace (Python's str.format with one argument).
export function checkTemplate(template: unknown): string {
  if (template === undefined || template === null) return DEFAULT_TEMPLATE;
  if (typeof template !== "string") throw new EdgevitError("bad_parameter", "template must be a string");
  const braces = template.replace("{}", "");
  if (!template.includes("{}") || /[{}]/.test(braces)) {
    throw new EdgevitError(
      "bad_parameter",
      `template must hold {} exactly once, where each label goes (e.g. "a photo of a {}"), and no other brace; got ${JSON.stringify(template)}`,
    );
  }
  if (template.length > MAX_TEXT_CHARS) {
    throw new EdgevitError("bad_parameter", `template is longer than ${MAX_TEXT_CHARS} characters`);
  }
  return template;
}

// The text section of a loaded image model's bundle, or a sentence saying it has none.
export function textSectionOf(name: string, sections: Section[] | undefined): TextSection {
  const section = textSectionNamed(sections, "text");
  if (!section) {
    throw new EdgevitError(
      "bad_parameter",
      `model ${name} has no text tower: convert a CLIPModel or SiglipModel checkpoint with its tokenizer files ` +
        "(vocab.json and merges.txt, or spiece.model) to answer text",
    );
  }
  return section;
}

// Texts through `name`'s text tower in this isolate, under a memory reservation of the texts and their
// answers (the tower's load, when it is not loaded, under the model budget as any load).
async function embedHere(env: Env, name: string, texts: string[], keep: Keep) {
  const ticket = await admitText(env, name, texts, keep, TYPED_BYTES);
  const entry = await getTextModel(env, name);
  ticket.hold(entry.model);
  const embeddings = entry.model.embed(texts).map((t) => t.embedding);
  return { version: entry.version, embeddings, scoring: scoringOf(entry.model.section) };
}

// What one text's answer holds: its embedding as floats (over RPC) or as JSON numbers (~48 bytes each, the
// text and the arrays it is built from), for the widest towers' 1,024 numbers, and its ids.
const TYPED_BYTES = 1024 * 4 + 4096;
const JSON_BYTES = 1024 * 48 + 4096;

async function admitText(env: Env, name: string, texts: string[], keep: Keep, perText: number): Promise<Ticket> {
  const chars = texts.reduce((n, t) => n + t.length, 0);
  const body = 4 * chars + texts.length * perText;
  const loaded = isLoaded(name, "text");
  const ticket = await ledgerOf(env).admit(reservationBytes({ body }), loaded ? undefined : cacheKey(name, "text"));
  keep(ticket);
  return ticket;
}

export function scoringOf(section: Pick<TextSection, "kind" | "config">): Scoring {
  return { kind: section.kind, logitScale: section.config.logitScale, logitBias: section.config.logitBias };
}

// Texts -> their embeddings, here or over TEXT.
export async function embedTexts(
  env: Env,
  name: string,
  texts: string[],
  keep: Keep,
  here = false,
): Promise<TextEmbeddings> {
  const service = remote(env, here);
  if (!service) return embedHere(env, name, texts, keep);
  const embeddings: Float32Array[] = [];
  let version = "";
  let scoring: Scoring | undefined;
  for (let i = 0; i < texts.length; i += REMOTE_BATCH) {
    const batch = await service
      .embedText(texts.slice(i, i + REMOTE_BATCH), { model: name })
      .catch((error: unknown) => Promise.reject(fromRemote(error)));
    if (version && batch.version !== version) {
      throw new EdgevitError("model_unavailable", `model ${name} changed while its texts were embedded; try again`);
    }
    version = batch.version;
    scoring = batch.scoring;
    embeddings.push(...batch.embeddings);
  }
  return { version, embeddings, scoring: scoring! };
}

export async function embedTextAnswer(
  env: Env,
  name: string,
  texts: string[],
  normalize: boolean,
  keep: Keep,
): Promise<EmbedTextAnswer> {
  const { version, embeddings } = await embedTexts(env, name, texts, keep);
  const out = embeddings.map((e) => Array.from(normalize ? normalized(e) : e));
  return { model: name, version, dim: out[0].length, normalized: normalize, embeddings: out };
}

export async function tokenizeAnswer(
  env: Env,
  name: string,
  texts: string[],
  keep: Keep,
  here = false,
): Promise<TokenizeAnswer> {
  const service = remote(env, here);
  if (service)
    return service.tokenize(texts, { model: name }).catch((error: unknown) => Promise.reject(fromRemote(error)));
  const ticket = await admitText(env, name, texts, keep, JSON_BYTES);
  const entry = await getTextModel(env, name);
  ticket.hold(entry.model);
  const { inputIds, attentionMask } = entry.model.tokenize(texts);
  return {
    model: name,
    version: entry.version,
    input_ids: inputIds.map((r) => Array.from(r)),
    attention_mask: attentionMask.map((r) => Array.from(r)),
  };
}

// ---- label embeddings: computed once per model version and template ----

// Kept in the isolate's memory ledger as the cache "labels": a set enters it from the reservation of the
// request that read or computed it.
const labelCache = new Map<string, Float32Array[]>(); // least recently used first
let labelCacheBytes = 0;

function remember(env: Env, key: string, embeddings: Float32Array[]): void {
  const bytes = (e: Float32Array[]) => e.reduce((n, x) => n + x.byteLength, 0);
  labelCache.set(key, embeddings);
  labelCacheBytes += bytes(embeddings);
  for (const [old, value] of labelCache) {
    if (labelCacheBytes <= LABEL_CACHE_BYTES) break;
    labelCache.delete(old);
    labelCacheBytes -= bytes(value);
  }
  ledgerOf(env).setCache("labels", labelCacheBytes);
}

async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

// The R2 object of a label set (MODELS bucket, beside the bundle, so that it goes with the model and every
// isolate finds it; keyed by the text section's CRC-32, so a new upload never reads another version's):
// f32 [labels][dim] little-endian.
export function labelsKey(name: string, version: string, hash: string): string {
  return `${keyOf(name)}.labels/${version}/${hash}.f32`;
}

// A label set's embeddings, from this isolate's cache, R2, or a text pass. `ticket` is the request's
// reservation: it grows by what a set read or computed holds (the R2 object's bytes and the arrays, or the
// embeddings and the object written) until the cache keeps it.
export async function labelEmbeddings(
  env: Env,
  name: string,
  section: TextSection,
  labels: string[],
  template: string,
  ticket: Ticket,
  keep: Keep,
): Promise<{ embeddings: Float32Array[]; source: LabelSource }> {
  const hash = await sha256Hex(JSON.stringify([template, labels]));
  const key = labelsKey(name, section.crc32, hash);
  const kept = labelCache.get(key);
  if (kept) {
    labelCache.delete(key);
    labelCache.set(key, kept);
    return { embeddings: kept, source: "isolate" };
  }
  const dim = section.config.projection;
  await ticket.resize(ticket.bytes + 2 * labels.length * dim * 4);
  const stored = await env.MODELS.get(key).catch(() => null);
  if (stored) {
    const bytes = new Uint8Array(await stored.arrayBuffer());
    if (bytes.length === labels.length * dim * 4) {
      const all = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
      const embeddings = labels.map((_, i) => all.slice(i * dim, (i + 1) * dim));
      remember(env, key, embeddings);
      return { embeddings, source: "r2" };
    }
  }
  const { version, embeddings } = await embedTexts(
    env,
    name,
    labels.map((l) => fillTemplate(template, l)),
    keep,
  );
  if (version !== section.crc32 || embeddings.some((e) => e.length !== dim)) {
    throw new EdgevitError("model_unavailable", `model ${name} changed while its labels were embedded; try again`);
  }
  const all = new Float32Array(labels.length * dim);
  embeddings.forEach((e, i) => all.set(e, i * dim));
  await env.MODELS.put(key, all).catch((error: unknown) => console.error(`storing ${key}:`, error));
  remember(env, key, embeddings);
  return { embeddings, source: "computed" };
}

// Zero-shot classification of a prepared upload: its labels' embeddings (cached), the image tower's run,
// then the scores, highest first.
export async function zeroShot(
  env: Env,
  job: Prepared,
  labels: string[],
  template: string,
  keep: Keep,
): Promise<{ answer: ZeroShotAnswer; source: LabelSource; timings: Record<string, number | undefined> }> {
  const section = textSectionOf(job.name, job.model.header.sections);
  const started = performance.now();
  const { embeddings, source } = await labelEmbeddings(env, job.name, section, labels, template, job.ticket, keep);
  const textMs = performance.now() - started;
  const config = job.model.header.config;
  const pool = poolsOf(config)[0];
  const inference = await run(env, job, { answer: { kind: "embed" }, outputs: [poolOutput(pool)] });
  const image = poolEmbedding(inference.result, config, pool);
  const scores = zeroShotScores(section.kind, section.config, image, embeddings)
    .map((score, i) => ({ label: labels[i], score }))
    .sort((a, b) => b.score - a.score);
  return {
    answer: { model: job.name, version: inference.version, scores, image: inference.image },
    source,
    timings: { ...inference.timings, text: textMs },
  };
}
