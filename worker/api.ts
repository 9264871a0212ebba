// The API's handlers: parameters first, then the body, then the model, then one synchronous stretch
// (decode, preprocess, forward pass) so that requests never hold decoded pixels across an await. The work
// itself is in service.ts, shared with the RPC entrypoint and the queue consumer.

import { EdgevitError } from "../core/errors.ts";
import { boolParam, choiceParam, intParam, json, listParam, npy, readImage, serverTiming, wantsNpy } from "./http.ts";
import {
  POOLS,
  classifyAnswer,
  embedAnswer,
  hiddenStatesAnswer,
  infer as inferBytes,
  modelOf,
  modelsAnswer,
  type Inference,
  type Timings,
} from "./service.ts";
import { openapi } from "./openapi.ts";
import { patchPicture } from "../core/pca.ts";
import { encodePng } from "../core/png.ts";

type Handler = (request: Request, env: Env, url: URL) => Promise<Response>;

// The upload through the model; `capture` is the layer whose output to keep (-1 none, "last" the last layer).
async function infer(request: Request, env: Env, url: URL, capture: number | "last" = -1): Promise<Inference> {
  const name = modelOf(env, url.searchParams.get("model"));
  const timings: Timings = {};
  const started = performance.now();
  const bytes = await readImage(request, Number(env.MAX_BODY_BYTES));
  timings.body = performance.now() - started;
  return inferBytes(env, name, bytes, capture, timings);
}

// Headers every inference answer carries: which model and version produced it, and the phase timings.
function inferenceHeaders(inference: Inference): Record<string, string> {
  return {
    "x-edgevit-model": inference.name,
    "x-edgevit-model-version": inference.version,
    "server-timing": serverTiming({ ...inference.timings }),
  };
}

const classify: Handler = async (request, env, url) => {
  const topK = intParam(url, "top_k", 5, 1);
  const include = listParam(url, "include", ["logits"] as const);
  const inference = await infer(request, env, url);
  return json(classifyAnswer(inference, topK, include.has("logits")), 200, inferenceHeaders(inference));
};

const embed: Handler = async (request, env, url) => {
  const pool = choiceParam(url, "pool", POOLS);
  const normalize = boolParam(url, "normalize");
  const inference = await infer(request, env, url);
  return json(embedAnswer(inference, pool, normalize), 200, inferenceHeaders(inference));
};

const hiddenStates: Handler = async (request, env, url) => {
  if (!url.searchParams.has("layer"))
    throw new EdgevitError("bad_parameter", "layer is required: 0 (embeddings) to the model's layer count");
  const layer = intParam(url, "layer", 0, 0);
  const npyOut = wantsNpy(request);
  const inference = await infer(request, env, url, layer);
  if (npyOut) {
    const states = inference.result.captured!; // [tokens][dim]
    const { dim } = inference.model.header.config;
    return npy(states, [states.length / dim, dim], inferenceHeaders(inference));
  }
  return json(hiddenStatesAnswer(inference, layer), 200, inferenceHeaders(inference));
};

// The patch tokens of a layer as an RGB PNG: their top three principal components as red, green, blue.
const pcaPicture: Handler = async (request, env, url) => {
  const layer = url.searchParams.has("layer") ? intParam(url, "layer", 0, 0) : "last";
  const size = intParam(url, "size", 224, 16, 1024);
  const inference = await infer(request, env, url, layer);
  const { model, result } = inference;
  const { dim, imageSize, patchSize } = model.header.config;
  const rgb = patchPicture(result.captured!, dim, imageSize / patchSize, size); // [size][size][3]
  return new Response(await encodePng(rgb, size, size), {
    headers: { "content-type": "image/png", ...inferenceHeaders(inference) },
  });
};

const models: Handler = async (_request, env) => json(await modelsAnswer(env));

const healthz: Handler = async () => json({ status: "ok" });

const openapiDocument: Handler = async () => json(openapi);

// path -> method -> handler
export const routes: Record<string, Record<string, Handler>> = {
  "/healthz": { GET: healthz },
  "/openapi.json": { GET: openapiDocument },
  "/v1/models": { GET: models },
  "/v1/classify": { POST: classify },
  "/v1/embed": { POST: embed },
  "/v1/hidden_states": { POST: hiddenStates },
  "/v1/pca": { POST: pcaPicture },
};
