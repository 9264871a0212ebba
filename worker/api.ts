// The API's handlers: parameters first, then the body, then the model, then one synchronous stretch
// (decode, preprocess, forward pass) so that requests never hold decoded pixels across an await. The work
// itself is in service.ts, shared with the RPC entrypoint and the queue consumer.

import { EdgevitError } from "../core/errors.ts";
import { boolParam, choiceParam, intParam, json, listParam, npy, readImage, serverTiming, wantsNpy } from "./http.ts";
import {
  POOLS,
  attentionLayer,
  classifyAnswer,
  embedAnswer,
  hiddenStatesAnswer,
  type Capture,
  infer as inferBytes,
  modelOf,
  modelsAnswer,
  type Inference,
  type Timings,
} from "./service.ts";
import { openapi } from "./openapi.ts";
import { DECODE_MODES } from "../core/preprocess/stream.ts";
import { patchPicture } from "../core/pictures/pca.ts";
import { encodePng } from "../core/pictures/png.ts";
import { topPredictions } from "../core/answers/predictions.ts";
import { pcaFrames, SEE_CAPTURE, type Seen, seeAll } from "../core/pictures/see.ts";
import { attentionMap, attentionsJson, headParam, pcaAnimation, pngResponse, seeBody } from "./see.ts";

type Handler = (request: Request, env: Env, url: URL) => Promise<Response>;

// The largest `size` of one picture (/v1/pca, /v1/attention_map), and of the routes that make one picture
// per hidden state (/v1/see, /v1/pca?layer=all): for a ViT-B/16 those hold 13 frames of size x size x 3
// bytes, their PNGs and (see) their base64 at once, 39 MiB of pixels alone at 1024 against 7.5 MiB at 448.
const MAX_SIZE = 1024;
export const MAX_FRAMES_SIZE = 448;

// The upload through the model; `capture`: what to keep (service.ts).
async function infer(request: Request, env: Env, url: URL, capture: Capture = -1): Promise<Inference> {
  const name = modelOf(env, url.searchParams.get("model"));
  // decode=fast (default) lets a JPEG decoder scale in the DCT domain when the image is far larger than the
  // model's input; decode=exact decodes every pixel.
  const decode = choiceParam(url, "decode", DECODE_MODES);
  const timings: Timings = {};
  const started = performance.now();
  const bytes = await readImage(request, Number(env.MAX_BODY_BYTES));
  timings.body = performance.now() - started;
  return inferBytes(env, name, bytes, { capture, decode, timings });
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

// The patch tokens of a layer as an RGB PNG: their top three principal components as red, green, blue;
// layer=all: an animated PNG of every hidden state's picture, one frame per layer.
const pcaPicture: Handler = async (request, env, url) => {
  if (url.searchParams.get("layer") === "all") {
    const size = intParam(url, "size", 224, 16, MAX_FRAMES_SIZE);
    // The pictures are made from the hidden states in place, before anything awaits.
    let frames: Uint8Array[] = [];
    const inference = await infer(request, env, url, (header) => ({
      hiddenStates: true,
      read: (captures) => (frames = pcaFrames(captures, header.config, size)),
    }));
    return pngResponse(await pcaAnimation(frames, size), inferenceHeaders(inference));
  }
  const layer = url.searchParams.has("layer") ? intParam(url, "layer", 0, 0) : "last";
  const size = intParam(url, "size", 224, 16, MAX_SIZE);
  const inference = await infer(request, env, url, layer);
  const { model, result } = inference;
  const { dim, imageSize, patchSize } = model.header.config;
  const rgb = patchPicture(result.captured!, dim, imageSize / patchSize, size); // [size][size][3]
  return new Response(await encodePng(rgb, size, size), {
    headers: { "content-type": "image/png", ...inferenceHeaders(inference) },
  });
};

// A layer N (1..L) for attention, checked against the model once it is known.

// Layer N's attention probabilities, every head: transformers' output_attentions[N - 1].
const attentions: Handler = async (request, env, url) => {
  if (!url.searchParams.has("layer"))
    throw new EdgevitError("bad_parameter", "layer is required: 1 to the model's layer count");
  const raw = intParam(url, "layer", 1, 1);
  const npyOut = wantsNpy(request);
  let layer = 0;
  const inference = await infer(request, env, url, (header, modelName) => {
    layer = attentionLayer(raw, header.config, modelName);
    return { attentionLayer: layer };
  });
  const { name, version, model, result } = inference;
  const { heads } = model.header.config;
  const tokens = model.tokens;
  if (npyOut) return npy(result.attentions!, [heads, tokens, tokens], inferenceHeaders(inference));
  const fields = { model: name, version, layer, heads, tokens };
  return attentionsJson(fields, result.attentions!, heads, tokens, inferenceHeaders(inference));
};

// The class token's attention (one head or their mean) or the attention rollout, over the image.
const attentionMapPicture: Handler = async (request, env, url) => {
  const raw = url.searchParams.has("layer") ? intParam(url, "layer", 1, 1) : "last";
  const mode = choiceParam(url, "mode", ["cls", "rollout"] as const);
  const size = intParam(url, "size", 224, 16, MAX_SIZE);
  let layer = 0;
  let head: number | "mean" = "mean";
  const inference = await infer(request, env, url, (header, name) => {
    layer = attentionLayer(raw, header.config, name);
    head = headParam(url, header.config.heads);
    return { attention: true, pixels: true };
  });
  const png = await attentionMap(inference.result, inference.model.header, { layer, head, mode, size });
  return pngResponse(png, inferenceHeaders(inference));
};

// Everything the page at / draws, from one forward pass.
const see: Handler = async (request, env, url) => {
  const topK = intParam(url, "top_k", 5, 1);
  const size = intParam(url, "size", 224, 16, MAX_FRAMES_SIZE);
  // Every picture is read from the captures in place, before anything awaits.
  let seen: Seen | undefined;
  const inference = await infer(request, env, url, (header) => ({
    ...SEE_CAPTURE,
    read: (captures) => (seen = seeAll(captures, header, size)),
  }));
  const { name, version, model, image, result } = inference;
  const predictions = topPredictions(result.logits, model.header.labels, topK);
  const body = await seeBody(name, version, model.header, image, seen!, predictions, size);
  return json(body, 200, inferenceHeaders(inference));
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
  "/v1/attentions": { POST: attentions },
  "/v1/attention_map": { POST: attentionMapPicture },
  "/v1/see": { POST: see },
};
