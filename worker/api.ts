// The API's handlers: parameters first, then the body, then the model, then one synchronous stretch
// (decode, preprocess, forward pass) so that requests never hold decoded pixels across an await.

import { EdgevitError } from "../core/errors.ts";
import { choiceParam, intParam, json, listParam, npy, readImage, wantsNpy } from "./http.ts";
import { inspectImage, runImage, type ImageLimits, type Inference as CoreInference } from "../core/pipeline.ts";
import { listBundles } from "./catalog.ts";
import { modelName } from "../core/names.ts";
import { budgetBytes, engineBuild, getModel, loadedModels } from "./models.ts";
import { patchPicture } from "../core/pca.ts";
import { encodePng } from "../core/png.ts";
import { poolEmbedding } from "../core/pool.ts";
import { topPredictions } from "../core/predictions.ts";
import type { Model, RunOptions } from "../core/engine.ts";
import type { BundleHeader, ModelConfig } from "../models/bundle.ts";
import { pcaFrames, SEE_CAPTURE, type Seen, seeAll } from "../core/see.ts";
import { attentionMap, attentionsJson, headParam, pcaAnimation, pngResponse, seeBody } from "./see.ts";

type Handler = (request: Request, env: Env, url: URL) => Promise<Response>;

interface Inference extends CoreInference {
  name: string;
  model: Model;
}

function limitsOf(env: Env): ImageLimits {
  return { maxPixels: Number(env.MAX_IMAGE_PIXELS) };
}

// What to keep from the forward pass: a layer's output (-1 none, "last" the last layer), or capture options
// made from the model's header once it is known (they may refuse a parameter with bad_parameter).
type Capture = number | "last" | ((header: BundleHeader, name: string) => RunOptions);

// The upload through the model.
async function infer(request: Request, env: Env, url: URL, capture: Capture = -1): Promise<Inference> {
  const name = modelName(url.searchParams.get("model") ?? env.DEFAULT_MODEL);
  const bytes = await readImage(request, Number(env.MAX_BODY_BYTES));
  // Refuse a bad or oversized image from its header before a model is loaded for it.
  inspectImage(bytes, limitsOf(env));
  const model = await getModel(env, name);
  if (typeof capture === "function") {
    const options = capture(model.header, name);
    return { name, model, ...runImage(model, bytes, limitsOf(env), options) };
  }
  const { layers } = model.header.config;
  const layer = capture === "last" ? layers : capture;
  if (layer > layers) throw new EdgevitError("bad_parameter", `layer must be from 0 to ${layers} for model ${name}`);
  return { name, model, ...runImage(model, bytes, limitsOf(env), layer) };
}

const classify: Handler = async (request, env, url) => {
  const topK = intParam(url, "top_k", 5, 1);
  const include = listParam(url, "include", ["logits"] as const);
  const { name, model, image, result } = await infer(request, env, url);

  const logits = Array.from(result.logits);
  const predictions = topPredictions(result.logits, model.header.labels, topK);
  return json({ model: name, predictions, ...(include.has("logits") ? { logits } : {}), image });
};

const embed: Handler = async (request, env, url) => {
  const pool = choiceParam(url, "pool", ["cls", "mean"] as const);
  const { name, model, result } = await infer(request, env, url);
  const { dim, imageSize, patchSize } = model.header.config;
  const embedding = poolEmbedding(result.output, dim, (imageSize / patchSize) ** 2, pool);
  return json({ model: name, dim, pool, embedding: Array.from(embedding) });
};

const hiddenStates: Handler = async (request, env, url) => {
  if (!url.searchParams.has("layer"))
    throw new EdgevitError("bad_parameter", "layer is required: 0 (embeddings) to the model's layer count");
  const layer = intParam(url, "layer", 0, 0);
  const npyOut = wantsNpy(request);
  const { name, model, result } = await infer(request, env, url, layer);
  const { dim } = model.header.config;
  const states = result.captured!; // [tokens][dim]
  const tokens = states.length / dim;
  if (npyOut) return npy(states, [tokens, dim]);
  const rows: number[][] = [];
  for (let t = 0; t < tokens; t++) rows.push(Array.from(states.subarray(t * dim, (t + 1) * dim)));
  return json({ model: name, layer, tokens, dim, hidden_states: rows });
};

// The patch tokens of a layer as an RGB PNG: their top three principal components as red, green, blue;
// layer=all: an animated PNG of every hidden state's picture, one frame per layer.
const pcaPicture: Handler = async (request, env, url) => {
  if (url.searchParams.get("layer") === "all") {
    const size = intParam(url, "size", 224, 16, 1024);
    // The pictures are made from the hidden states in place, before anything awaits.
    let frames: Uint8Array[] = [];
    await infer(request, env, url, (header) => ({
      hiddenStates: true,
      read: (captures) => (frames = pcaFrames(captures, header.config, size)),
    }));
    return pngResponse(await pcaAnimation(frames, size));
  }
  const layer = url.searchParams.has("layer") ? intParam(url, "layer", 0, 0) : "last";
  const size = intParam(url, "size", 224, 16, 1024);
  const { model, result } = await infer(request, env, url, layer);
  const { dim, imageSize, patchSize } = model.header.config;
  const rgb = patchPicture(result.captured!, dim, imageSize / patchSize, size); // [size][size][3]
  return new Response(await encodePng(rgb, size, size), { headers: { "content-type": "image/png" } });
};

// A layer N (1..L) for attention, checked against the model once it is known.
function attentionLayer(raw: number | "last", config: ModelConfig, name: string): number {
  if (raw === "last") return config.layers;
  if (raw > config.layers)
    throw new EdgevitError("bad_parameter", `layer must be from 1 to ${config.layers} for model ${name}`);
  return raw;
}

// Layer N's attention probabilities, every head: transformers' output_attentions[N - 1].
const attentions: Handler = async (request, env, url) => {
  if (!url.searchParams.has("layer"))
    throw new EdgevitError("bad_parameter", "layer is required: 1 to the model's layer count");
  const raw = intParam(url, "layer", 1, 1);
  const npyOut = wantsNpy(request);
  let layer = 0;
  const { name, model, result } = await infer(request, env, url, (header, modelName) => {
    layer = attentionLayer(raw, header.config, modelName);
    return { attentionLayer: layer };
  });
  const { heads } = model.header.config;
  const tokens = model.tokens;
  if (npyOut) return npy(result.attentions!, [heads, tokens, tokens]);
  return attentionsJson({ model: name, layer, heads, tokens }, result.attentions!, heads, tokens);
};

// The class token's attention (one head or their mean) or the attention rollout, over the image.
const attentionMapPicture: Handler = async (request, env, url) => {
  const raw = url.searchParams.has("layer") ? intParam(url, "layer", 1, 1) : "last";
  const mode = choiceParam(url, "mode", ["cls", "rollout"] as const);
  const size = intParam(url, "size", 224, 16, 1024);
  let layer = 0;
  let head: number | "mean" = "mean";
  const { model, result } = await infer(request, env, url, (header, name) => {
    layer = attentionLayer(raw, header.config, name);
    head = headParam(url, header.config.heads);
    return { attention: true, pixels: true };
  });
  return pngResponse(await attentionMap(result, model.header, { layer, head, mode, size }));
};

// Everything the page at / draws, from one forward pass.
const see: Handler = async (request, env, url) => {
  const topK = intParam(url, "top_k", 5, 1);
  const size = intParam(url, "size", 224, 16, 1024);
  // Every picture is read from the captures in place, before anything awaits.
  let seen: Seen | undefined;
  const { name, model, image, result } = await infer(request, env, url, (header) => ({
    ...SEE_CAPTURE,
    read: (captures) => (seen = seeAll(captures, header, size)),
  }));
  const predictions = topPredictions(result.logits, model.header.labels, topK);
  return json(await seeBody(name, model.header, image, seen!, predictions, size));
};

const models: Handler = async (_request, env) => {
  const bundles = await listBundles(env.MODELS);
  const loaded = loadedModels();
  return json({
    default: env.DEFAULT_MODEL,
    engine: await engineBuild(),
    models: bundles.map((b) => ({ ...b, loaded: loaded.models.some((m) => m.name === b.name) })),
    loaded: loaded.models,
    memory: { usedBytes: loaded.usedBytes, budgetBytes: budgetBytes(env) },
  });
};

const healthz: Handler = async () => json({ status: "ok" });

// path -> method -> handler
export const routes: Record<string, Record<string, Handler>> = {
  "/healthz": { GET: healthz },
  "/v1/models": { GET: models },
  "/v1/classify": { POST: classify },
  "/v1/embed": { POST: embed },
  "/v1/hidden_states": { POST: hiddenStates },
  "/v1/pca": { POST: pcaPicture },
  "/v1/attentions": { POST: attentions },
  "/v1/attention_map": { POST: attentionMapPicture },
  "/v1/see": { POST: see },
};
