// The API's handlers: parameters first, then the body, then the model, then one synchronous stretch
// (decode, preprocess, forward pass) so that requests never hold decoded pixels across an await.

import { EdgevitError } from "../core/errors.ts";
import { choiceParam, intParam, json, listParam, npy, readImage, wantsNpy } from "./http.ts";
import { inspectImage, runImage, type ImageLimits, type Inference as CoreInference } from "../core/pipeline.ts";
import { listBundles } from "./catalog.ts";
import { modelName } from "../core/names.ts";
import { budgetBytes, engineBuild, engineDot, getModel, loadedModels } from "./models.ts";
import { patchPicture } from "../core/pca.ts";
import { encodePng } from "../core/png.ts";
import { poolEmbedding } from "../core/pool.ts";
import { topPredictions } from "../core/predictions.ts";
import type { Model } from "../core/engine.ts";

type Handler = (request: Request, env: Env, url: URL) => Promise<Response>;

interface Inference extends CoreInference {
  name: string;
  model: Model;
}

function limitsOf(env: Env): ImageLimits {
  return { maxPixels: Number(env.MAX_IMAGE_PIXELS) };
}

// The upload through the model; `capture` is the layer whose output to keep (-1 none, "last" the last layer).
async function infer(request: Request, env: Env, url: URL, capture: number | "last" = -1): Promise<Inference> {
  const name = modelName(url.searchParams.get("model") ?? env.DEFAULT_MODEL);
  const bytes = await readImage(request, Number(env.MAX_BODY_BYTES));
  // Refuse a bad or oversized image from its header before a model is loaded for it.
  inspectImage(bytes, limitsOf(env));
  const model = await getModel(env, name);
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

// The patch tokens of a layer as an RGB PNG: their top three principal components as red, green, blue.
const pcaPicture: Handler = async (request, env, url) => {
  const layer = url.searchParams.has("layer") ? intParam(url, "layer", 0, 0) : "last";
  const size = intParam(url, "size", 224, 16, 1024);
  const { model, result } = await infer(request, env, url, layer);
  const { dim, imageSize, patchSize } = model.header.config;
  const rgb = patchPicture(result.captured!, dim, imageSize / patchSize, size); // [size][size][3]
  return new Response(await encodePng(rgb, size, size), { headers: { "content-type": "image/png" } });
};

const models: Handler = async (_request, env) => {
  const bundles = await listBundles(env.MODELS);
  const loaded = loadedModels();
  return json({
    default: env.DEFAULT_MODEL,
    engine: await engineBuild(),
    dot: await engineDot(),
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
};
