// The API's handlers, each in the same order: its parameters, then prepare() (the body read, the image's
// header checked, the model in hand), then the parameters that depend on the model checked against its
// header, then run() (decode, preprocess, forward pass), then the answer. The work itself is in
// service.ts, shared with the RPC entrypoint and the queue consumer.

import { EdgevitError } from "../core/errors.ts";
import { NEAREST_MAX } from "./nearest.ts";
import { boolOption } from "./options.ts";
import {
  boolParam,
  choiceParam,
  type Held,
  imageStream,
  intParam,
  json,
  listParam,
  npy,
  npyStream,
  serverTiming,
  uploadHeaders,
  wantsNpy,
} from "./http.ts";
import { ClientDisconnected, clientDisconnected, readBounded } from "./input.ts";
import type { FormFields } from "./multipart.ts";
import { FORM_READER_BYTES, STREAM_CHUNK_BYTES, streamedBodyBytes } from "./memory.ts";
import {
  POOLS,
  admit,
  attentionLayer,
  checkClassifier,
  classifyAnswer,
  embedAnswer,
  hiddenLayer,
  hiddenStatesAnswer,
  checkConnector,
  imageTokensAnswer,
  imageTokensJson,
  modelOf,
  modelsAnswer,
  type Inference,
  poolFor,
  prepare,
  type Prepared,
  run,
  runTokens,
  streamedUpload,
  streamTokens,
  tokenLayout,
  wholeUpload,
} from "./service.ts";
import { openapi } from "./openapi.ts";
import { readRecord, startImport } from "./imports.ts";
import { keyOf, modelName } from "../core/names.ts";
import {
  MAX_FORM_FIELDS_BYTES,
  MAX_TEXT_BODY_BYTES,
  checkLabels,
  checkTemplate,
  checkTexts,
  embedTextAnswer,
  tokenizeAnswer,
  zeroShot,
} from "./text.ts";
import { checkK, checkQuery, indexedVersion, indexOf, search } from "./search.ts";
import { DECODE_MODES } from "../core/preprocess/stream.ts";
import { patchPicture } from "../core/pictures/pca.ts";
import { encodePng } from "../core/pictures/png.ts";
import { topPredictions } from "../core/answers/predictions.ts";
import { poolOutput } from "../core/answers/pool.ts";
import { attentionLayers, checkLooker, pcaFrames, seeCapture } from "../core/pictures/see.ts";
import { attentionMap, attentionsJson, headParam, pcaAnimation, pngResponse, seeBody } from "./see.ts";

// `held` collects the request's memory reservations; the router releases them (http.ts's Held).
type Handler = (request: Request, env: Env, url: URL, held: Held) => Promise<Response>;

// The largest `size` of one picture (/v1/pca, /v1/attention_map), and of the routes that make one picture
// per hidden state (/v1/see, /v1/pca?layer=all): for a ViT-B/16 those hold 13 frames of size x size x 3
// bytes, their PNGs and (see) their base64 at once, 39 MiB of pixels alone at 1024 against 7.5 MiB at 448.
const MAX_SIZE = 1024;
export const MAX_FRAMES_SIZE = 448;

// The upload of a request, prepared: the model it names (or the default), its memory reserved in the
// isolate's ledger (memory.ts: waiting its turn, or busy), the body streamed under MAX_BODY_BYTES into the
// image's decoder as far as its header, the model in hand. `fields` receives a form's text fields before
// the image, reserved with the body (the pieces read, joined, and decoded).
async function prepareUpload(request: Request, env: Env, url: URL, held: Held, fields?: FormFields): Promise<Prepared> {
  const name = modelOf(env, url.searchParams.get("model"));
  // decode=fast (default) lets a JPEG decoder scale in the DCT domain when the image is far larger than the
  // model's input; decode=exact decodes every pixel.
  const decode = choiceParam(url, "decode", DECODE_MODES);
  const limit = Number(env.MAX_BODY_BYTES);
  const { form, length } = uploadHeaders(request, limit);
  const readerBytes = form ? FORM_READER_BYTES : STREAM_CHUNK_BYTES;
  const fieldBytes = form && fields ? 3 * fields.maxBytes : 0;
  const ticket = await admit(env, name, streamedBodyBytes(readerBytes) + fieldBytes);
  held.add(ticket);
  const started = performance.now();
  const stream = await imageStream(request, limit, form, fields);
  const upload = stream
    ? streamedUpload(ticket, stream, {
        limit,
        length: form ? undefined : (length ?? undefined),
        // A form's reader has already turned a failed read into the client going away.
        failed: form ? undefined : clientDisconnected,
        readerBytes,
        started,
      })
    : wholeUpload(ticket, new Uint8Array(0));
  return prepare(env, name, upload, decode);
}

// Headers every inference answer carries: which model and version produced it, and the phase timings.
function inferenceHeaders(inference: Pick<Inference, "name" | "version" | "timings">): Record<string, string> {
  return {
    "x-edgevit-model": inference.name,
    "x-edgevit-model-version": inference.version,
    "server-timing": serverTiming({ ...inference.timings }),
  };
}

const classify: Handler = async (request, env, url, held) => {
  const topK = intParam(url, "top_k", 5, 1);
  const include = listParam(url, "include", ["logits"] as const);
  const job = await prepareUpload(request, env, url, held);
  checkClassifier(job.model.header.config, job.name);
  const inference = await run(env, job);
  return json(classifyAnswer(inference, topK, include.has("logits")), 200, inferenceHeaders(inference));
};

const embed: Handler = async (request, env, url, held) => {
  // absent: the model's family's embedding (CLIP image_embeds, SigLIP pooler, ViT and DINOv2 cls)
  const pool = url.searchParams.has("pool") ? choiceParam(url, "pool", POOLS) : undefined;
  const normalize = boolParam(url, "normalize");
  const job = await prepareUpload(request, env, url, held);
  const chosen = poolFor(pool, job.model.header.config, job.name);
  const inference = await run(env, job, { answer: { kind: "embed" }, outputs: [poolOutput(chosen)] });
  return json(embedAnswer(inference, chosen, normalize), 200, inferenceHeaders(inference));
};

// Where the patches start, for .npy answers (JSON answers carry the same fields).
function tokenHeaders(inference: Inference): Record<string, string> {
  const { class_token, prefix_tokens } = tokenLayout(inference.model.header.config);
  return { "x-edgevit-class-token": String(class_token), "x-edgevit-prefix-tokens": String(prefix_tokens) };
}

const hiddenStates: Handler = async (request, env, url, held) => {
  if (!url.searchParams.has("layer"))
    throw new EdgevitError("bad_parameter", "layer is required: 0 (embeddings) to the model's layer count");
  const raw = intParam(url, "layer", 0, 0);
  const npyOut = wantsNpy(request);
  const job = await prepareUpload(request, env, url, held);
  const layer = hiddenLayer(raw, job.model.header.config, job.name);
  const inference = await run(env, job, {
    capture: layer,
    answer: { kind: "hidden_states", form: npyOut ? "npy" : "json" },
    outputs: [],
  });
  if (npyOut) {
    const states = inference.result.captured!; // [tokens][dim]
    const { dim } = inference.model.header.config;
    return npy(states, [states.length / dim, dim], { ...inferenceHeaders(inference), ...tokenHeaders(inference) });
  }
  return json(hiddenStatesAnswer(inference, layer), 200, inferenceHeaders(inference));
};

// The patch tokens of a layer as an RGB PNG: their top three principal components as red, green, blue;
// layer=all: an animated PNG of every hidden state's picture, one frame per layer.
const pcaPicture: Handler = async (request, env, url, held) => {
  if (url.searchParams.get("layer") === "all") {
    const size = intParam(url, "size", 224, 16, MAX_FRAMES_SIZE);
    const job = await prepareUpload(request, env, url, held);
    // Each hidden state's picture is made as the pass makes it, in place.
    const pca = pcaFrames(job.model.header.config, size);
    const inference = await run(env, job, {
      capture: { hiddenState: pca.hiddenState },
      answer: { kind: "frames", size, base64: false },
      outputs: [],
    });
    return pngResponse(await pcaAnimation(pca.frames, size), inferenceHeaders(inference));
  }
  const raw = url.searchParams.has("layer") ? intParam(url, "layer", 0, 0) : "last";
  const size = intParam(url, "size", 224, 16, MAX_SIZE);
  const job = await prepareUpload(request, env, url, held);
  const capture = hiddenLayer(raw, job.model.header.config, job.name);
  const inference = await run(env, job, { capture, answer: { kind: "picture", size }, outputs: [] });
  const { model, result } = inference;
  const { dim, imageSize, patchSize } = model.header.config;
  const rgb = patchPicture(result.captured!, dim, imageSize / patchSize, size); // [size][size][3]
  return new Response(await encodePng(rgb, size, size), {
    headers: { "content-type": "image/png", ...inferenceHeaders(inference) },
  });
};

// Layer N's attention probabilities, every head: transformers' output_attentions[N - 1].
const attentions: Handler = async (request, env, url, held) => {
  if (!url.searchParams.has("layer"))
    throw new EdgevitError("bad_parameter", "layer is required: 1 to the model's layer count");
  const raw = intParam(url, "layer", 1, 1);
  const npyOut = wantsNpy(request);
  const job = await prepareUpload(request, env, url, held);
  const layer = attentionLayer(raw, job.model.header.config, job.name);
  const answer = { kind: "attentions", form: npyOut ? "npy" : "json" } as const;
  const inference = await run(env, job, { capture: { attentionLayer: layer }, answer, outputs: [] });
  const { name, version, model, result } = inference;
  const { heads } = model.header.config;
  const tokens = model.tokens;
  if (npyOut) {
    return npy(result.attentions!, [heads, tokens, tokens], {
      ...inferenceHeaders(inference),
      ...tokenHeaders(inference),
    });
  }
  const fields = { model: name, version, layer, heads, tokens, ...tokenLayout(model.header.config) };
  // Streamed one head at a time: the reservation lasts until the body is sent.
  const streamed = attentionsJson(fields, result.attentions!, heads, tokens, inferenceHeaders(inference));
  return new Response(held.untilSent(streamed.body!), streamed);
};

// The class token's attention (one head or their mean) or the attention rollout, over the image. SigLIP,
// without a class token, answers with its pooling head's attention (after the last layer: layer is
// "last" or L) and the rollout through every layer ending in it.
const attentionMapPicture: Handler = async (request, env, url, held) => {
  const raw = url.searchParams.has("layer") ? intParam(url, "layer", 1, 1) : "last";
  const mode = choiceParam(url, "mode", ["cls", "rollout"] as const);
  const size = intParam(url, "size", 224, 16, MAX_SIZE);
  const job = await prepareUpload(request, env, url, held);
  const { config } = job.model.header;
  checkLooker(config, job.name);
  const checked = attentionLayer(raw, config, job.name);
  const layer = attentionLayers(config) === config.layers ? checked : mapLayer(checked, config.layers, job.name);
  const head = headParam(url, config.heads);
  const capture = { attention: true, pixels: true };
  const inference = await run(env, job, { capture, answer: { kind: "picture", size } });
  const png = await attentionMap(inference.result, inference.model.header, { layer, head, mode, size });
  return pngResponse(png, inferenceHeaders(inference));
};

// SigLIP's one attention map is its pooling head's, which reads the last layer: layer L (or "last").
function mapLayer(layer: number, layers: number, name: string): number {
  if (layer !== layers) {
    throw new EdgevitError(
      "bad_parameter",
      `model ${name} has no class token: where it looks is its pooling head's attention after layer ${layers}; ` +
        `leave layer out or pass ${layers}`,
    );
  }
  return 1;
}

// Everything the page at / draws, from one forward pass.
const see: Handler = async (request, env, url, held) => {
  const topK = intParam(url, "top_k", 5, 1);
  const size = intParam(url, "size", 224, 16, MAX_FRAMES_SIZE);
  const job = await prepareUpload(request, env, url, held);
  const { header } = job.model;
  // Every picture is made from the captures in place, before anything awaits: the PCA pictures as the
  // pass makes each hidden state, the rest from the run.
  const { capture, keep } = seeCapture(header, size);
  const inference = await run(env, job, { capture, keep, answer: { kind: "frames", size, base64: true } });
  const { name, version, image, result, kept } = inference;
  const predictions = topPredictions(result.logits, header.labels, topK);
  const body = await seeBody(name, version, header, image, kept, result, predictions, size);
  return json(body, 200, inferenceHeaders(inference));
};

// Zero-shot classification: labels as query parameters (labels=cat&labels=dog) or, in a multipart form
// before the image (the form is read no further than the image), a `labels` field holding a JSON array;
// `template` likewise.
const zeroShotRoute: Handler = async (request, env, url, held) => {
  const multipart = (request.headers.get("content-type") ?? "").toLowerCase().startsWith("multipart/form-data");
  const fields = { values: new Map<string, string>(), maxBytes: MAX_FORM_FIELDS_BYTES };
  // checked before the body is read when they come in the query
  if (!multipart) {
    checkLabels(url.searchParams.getAll("labels"));
    checkTemplate(url.searchParams.get("template"));
  }
  const job = await prepareUpload(request, env, url, held, fields);
  const form = fields.values;
  const labels = checkLabels(
    form.has("labels") ? jsonField(form.get("labels")!, "labels") : url.searchParams.getAll("labels"),
  );
  const template = checkTemplate(form.get("template") ?? url.searchParams.get("template"));
  const { answer, source, timings } = await zeroShot(env, job, labels, template, (t) => held.add(t));
  return json(answer, 200, {
    "x-edgevit-model": answer.model,
    "x-edgevit-model-version": answer.version,
    "x-edgevit-labels": source,
    "server-timing": serverTiming(timings),
  });
};

function jsonField(text: string, name: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new EdgevitError("bad_parameter", `the form's ${name} field must be a JSON array of strings`);
  }
}

// {"texts": [...], "normalize"?: boolean} read under MAX_TEXT_BODY_BYTES.
async function textsBody(request: Request): Promise<{ texts: string[]; normalize: unknown }> {
  const type = (request.headers.get("content-type") ?? "").split(";")[0].trim().toLowerCase();
  if (type !== "application/json") {
    throw new EdgevitError(
      "unsupported_media_type",
      'send the texts as application/json: {"texts": ["a photo of a cat"]}',
    );
  }
  const bytes = request.body
    ? await readBounded(request.body, MAX_TEXT_BODY_BYTES, (received, cause) => new ClientDisconnected(received, cause))
    : new Uint8Array(0);
  let body: unknown;
  try {
    body = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    throw new EdgevitError("bad_parameter", 'the body is not JSON: send {"texts": ["a photo of a cat"]}');
  }
  const { texts, normalize } = (body ?? {}) as { texts?: unknown; normalize?: unknown };
  return { texts: checkTexts(texts), normalize };
}

const embedText: Handler = async (request, env, url, held) => {
  const name = modelOf(env, url.searchParams.get("model"));
  const { texts, normalize } = await textsBody(request);
  const norm = url.searchParams.has("normalize") ? boolParam(url, "normalize") : boolOption("normalize", normalize);
  const answer = await embedTextAnswer(env, name, texts, norm, (t) => held.add(t));
  return json(answer, 200, { "x-edgevit-model": name, "x-edgevit-model-version": answer.version });
};

const tokenize: Handler = async (request, env, url, held) => {
  const name = modelOf(env, url.searchParams.get("model"));
  const { texts } = await textsBody(request);
  const answer = await tokenizeAnswer(env, name, texts, (t) => held.add(t));
  return json(answer, 200, { "x-edgevit-model": name, "x-edgevit-model-version": answer.version });
};

// The rows a vision-language model's LLM receives in place of its <image> tokens, [tiles][tokens][lm_dim]:
// Idefics3's tiles row by row and the global view last (split=false: the global view alone), LLaVA's one.
// nearest=k adds each image token's k nearest rows of the LLM's embedding table (a JSON answer only).
const imageTokens: Handler = async (request, env, url, held) => {
  const split = boolParam(url, "split", true);
  const nearest = url.searchParams.has("nearest") ? intParam(url, "nearest", 0, 1, NEAREST_MAX) : undefined;
  const npyOut = wantsNpy(request);
  if (npyOut && nearest !== undefined) {
    throw new EdgevitError("bad_parameter", "nearest is answered in JSON only: ask without Accept: application/x-npy");
  }
  const job = await prepareUpload(request, env, url, held);
  checkConnector(job.model.header.config, job.name);
  if (nearest !== undefined) {
    const inference = await runTokens(env, job, split, nearest);
    return json(imageTokensAnswer(inference), 200, inferenceHeaders(inference));
  }
  // Streamed: each frame runs as the client reads, so the answer holds one frame's rows, not every frame's;
  // the reservation lasts until the body is sent.
  const stream = await streamTokens(env, job, split, npyOut ? "npy" : "json");
  const { grid, tokens, lmDim } = stream;
  if (npyOut) {
    let frame = 0;
    const next = () => (frame < grid.frames ? stream.run(frame++) : undefined);
    const answer = npyStream([grid.frames, tokens, lmDim], next, {
      ...inferenceHeaders(stream),
      "x-edgevit-tile-grid": `${grid.rows}x${grid.cols}`,
    });
    return new Response(held.untilSent(answer.body!), answer);
  }
  const headers = { "content-type": "application/json; charset=utf-8", ...inferenceHeaders(stream) };
  return new Response(held.untilSent(imageTokensJson(stream)), { headers });
};

// POST /v1/search {"query", "k"?, "model"?}: the bucket's images nearest to the text (worker/search.ts).
const searchRoute: Handler = async (request, env, url, held) => {
  const type = (request.headers.get("content-type") ?? "").split(";")[0].trim().toLowerCase();
  if (type !== "application/json") {
    throw new EdgevitError("unsupported_media_type", 'send the query as application/json: {"query": "a red bicycle"}');
  }
  const bytes = request.body
    ? await readBounded(request.body, SEARCH_BODY_BYTES, (received, cause) => new ClientDisconnected(received, cause))
    : new Uint8Array(0);
  let body: { query?: unknown; k?: unknown; model?: unknown };
  try {
    body = (JSON.parse(new TextDecoder().decode(bytes)) ?? {}) as typeof body;
  } catch {
    throw new EdgevitError("bad_parameter", 'the body is not JSON: send {"query": "a red bicycle", "k": 10}');
  }
  const query = checkQuery(body.query);
  const k = checkK(body.k);
  if (body.model !== undefined && typeof body.model !== "string") {
    throw new EdgevitError("bad_parameter", "model must be a string");
  }
  const name = modelOf(env, (body.model as string | undefined) ?? url.searchParams.get("model"));
  const answer = await search(env, name, query, k, (t) => held.add(t));
  const headers: Record<string, string> = { "x-edgevit-model": name };
  if (answer.version) headers["x-edgevit-model-version"] = answer.version;
  return json(answer, 200, headers);
};
// A search body: the query (at most 1,024 characters, JSON-escaped) and its options.
const SEARCH_BODY_BYTES = 16 * 1024;

// GET /v1/search/image?model=M&key=K: an image of the input bucket, read-only, for the page's results; only
// keys in the model's index, so the route never lists or serves what search would not.
const searchImage: Handler = async (_request, env, url) => {
  const name = modelOf(env, url.searchParams.get("model"));
  const key = url.searchParams.get("key");
  if (!key) throw new EdgevitError("bad_parameter", "key is required: the image's key in the input bucket");
  const version = await indexedVersion(env, name);
  if (!version || !(await indexOf(env, name, version).has(key))) {
    throw new EdgevitError("not_found", `no image ${JSON.stringify(key)} in the search index of model ${name}`);
  }
  const object = await env.IMAGES.get(key);
  if (!object) throw new EdgevitError("not_found", `the image ${JSON.stringify(key)} is no longer in the bucket`);
  const declared = object.httpMetadata?.contentType ?? "";
  return new Response(object.body, {
    headers: {
      // an image type only: whatever else was uploaded is served as bytes, never rendered as a page
      "content-type": declared.startsWith("image/") ? declared : "application/octet-stream",
      "content-length": String(object.size),
      "x-content-type-options": "nosniff",
      "content-security-policy": "default-src 'none'",
      etag: object.httpEtag,
      "cache-control": "private, max-age=60",
    },
  });
};

const models: Handler = async (_request, env) => json(await modelsAnswer(env));

// POST /v1/models {"repo", "revision"?, "name"?}: checked against the hub, then queued; 202 with the record.
const importModel: Handler = async (request, env, url) => {
  const record = await startImport(request, env);
  return json(record, 202, { location: new URL(`/v1/models/${record.name}`, url).pathname });
};

// GET /v1/models/{name}: the bundle in the bucket and the latest import of that name.
const model: Handler = async (_request, env, url) => {
  const name = modelName(decodeURIComponent(url.pathname.slice(MODEL_PREFIX.length)));
  const [object, record] = await Promise.all([env.MODELS.head(keyOf(name)), readRecord(env.MODELS, name)]);
  if (!object && !record) throw new EdgevitError("model_not_found", `no model ${name} and no import of it`);
  const bundle = object && {
    key: object.key,
    bytes: object.size,
    etag: object.etag,
    uploaded: object.uploaded.toISOString(),
  };
  return json({ name, ...(bundle && { bundle }), ...(record && { import: record }) });
};

export const MODEL_PREFIX = "/v1/models/";
export const modelRoutes: Record<string, Handler> = { GET: model };

const healthz: Handler = async () => json({ status: "ok" });

const openapiDocument: Handler = async () => json(openapi);

// path -> method -> handler
export const routes: Record<string, Record<string, Handler>> = {
  "/healthz": { GET: healthz },
  "/openapi.json": { GET: openapiDocument },
  "/v1/models": { GET: models, POST: importModel },
  "/v1/classify": { POST: classify },
  "/v1/embed": { POST: embed },
  "/v1/hidden_states": { POST: hiddenStates },
  "/v1/pca": { POST: pcaPicture },
  "/v1/attentions": { POST: attentions },
  "/v1/attention_map": { POST: attentionMapPicture },
  "/v1/see": { POST: see },
  "/v1/zero_shot": { POST: zeroShotRoute },
  "/v1/embed_text": { POST: embedText },
  "/v1/tokenize": { POST: tokenize },
  "/v1/search": { POST: searchRoute },
  "/v1/search/image": { GET: searchImage },
  "/v1/image_tokens": { POST: imageTokens },
};

// What the text Worker (SERVES = "text", wrangler.text.toml) answers: the text routes over HTTP too, and
// GET /v1/models, whose `loaded` lists its text towers with their measured wasm memory (imports are the
// main Worker's).
export const textRoutes: Record<string, Record<string, Handler>> = {
  "/healthz": routes["/healthz"],
  "/v1/embed_text": routes["/v1/embed_text"],
  "/v1/models": { GET: models },
  "/v1/tokenize": routes["/v1/tokenize"],
};
export const TEXT_ROUTES = new Set(Object.keys(textRoutes));
