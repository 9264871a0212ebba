// The RPC entrypoint: another Worker binds it as a service (`entrypoint = "Edgevit"`) and calls
// `env.EDGEVIT.classify(bytes)`. Each method reads the image under MAX_BODY_BYTES and answers the same
// plain object as the HTTP route; a refusal throws an Error carrying the stable code as `code` and at the
// start of its message (`invalid_image: ...`), so a caller that only logs messages still sees it.

import { WorkerEntrypoint } from "cloudflare:workers";
import { EdgevitError } from "../core/errors.ts";
import { readInput } from "./input.ts";
import { intOption } from "./options.ts";
import { serve } from "./router.ts";
import {
  attentionLayer,
  attentionsAnswer,
  classifyAnswer,
  classifyOptions,
  decodeOption,
  checkClassifier,
  embedAnswer,
  embedOptions,
  poolFor,
  hiddenLayer,
  hiddenStatesAnswer,
  modelOption,
  modelsAnswer,
  prepare,
  type Prepared,
  run,
} from "./service.ts";
import type {
  AttentionsAnswer,
  AttentionsOptions,
  ClassifyAnswer,
  ClassifyOptions,
  EdgevitApi,
  EmbedAnswer,
  EmbedOptions,
  HiddenStatesAnswer,
  HiddenStatesOptions,
  ImageInput,
  ModelsAnswer,
} from "./types.ts";

// An error as the caller receives it: workerd's RPC carries the message and own properties such as `code`.
function rpcError(error: unknown): Error {
  if (error instanceof EdgevitError) {
    return Object.assign(new Error(`${error.code}: ${error.message}`), { code: error.code });
  }
  console.error("unhandled error:", error);
  return Object.assign(new Error("internal_error: an internal error occurred; it has been logged"), {
    code: "internal_error",
  });
}

// Every method's work, its refusals as the caller receives them.
async function answer<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    throw rpcError(error);
  }
}

// The image read under MAX_BODY_BYTES, its header checked, the model in hand (service.ts). Module
// functions, not methods: every method of the entrypoint is callable over RPC.
async function prepareInput(
  env: Env,
  image: ImageInput,
  name: string,
  options: { decode?: unknown },
): Promise<Prepared> {
  const bytes = await readInput(image, Number(env.MAX_BODY_BYTES));
  return prepare(env, name, { bytes }, decodeOption(options));
}

export class Edgevit extends WorkerEntrypoint<Env> implements EdgevitApi {
  classify(image: ImageInput, options: ClassifyOptions = {}): Promise<ClassifyAnswer> {
    return answer(async () => {
      const name = modelOption(this.env, options.model);
      const { topK, logits } = classifyOptions(options);
      const job = await prepareInput(this.env, image, name, options);
      checkClassifier(job.model.header.config, name);
      return classifyAnswer(await run(this.env, job), topK, logits);
    });
  }

  embed(image: ImageInput, options: EmbedOptions = {}): Promise<EmbedAnswer> {
    return answer(async () => {
      const name = modelOption(this.env, options.model);
      const { pool, normalize } = embedOptions(options);
      const job = await prepareInput(this.env, image, name, options);
      const chosen = poolFor(pool, job.model.header.config, name);
      return embedAnswer(await run(this.env, job), chosen, normalize);
    });
  }

  hiddenStates(image: ImageInput, options: HiddenStatesOptions): Promise<HiddenStatesAnswer> {
    return answer(async () => {
      const name = modelOption(this.env, options?.model);
      if (options?.layer === undefined)
        throw new EdgevitError("bad_parameter", "layer is required: 0 (embeddings) to the model's layer count");
      const raw = intOption("layer", options.layer, 0, 0);
      const job = await prepareInput(this.env, image, name, options);
      const layer = hiddenLayer(raw, job.model.header.config, name);
      return hiddenStatesAnswer(await run(this.env, job, { capture: layer }), layer);
    });
  }

  attentions(image: ImageInput, options: AttentionsOptions): Promise<AttentionsAnswer> {
    return answer(async () => {
      const name = modelOption(this.env, options?.model);
      if (options?.layer === undefined)
        throw new EdgevitError("bad_parameter", "layer is required: 1 to the model's layer count");
      const raw = intOption("layer", options.layer, 1, 1);
      const job = await prepareInput(this.env, image, name, options);
      const layer = attentionLayer(raw, job.model.header.config, name);
      return attentionsAnswer(await run(this.env, job, { capture: { attentionLayer: layer } }), layer);
    });
  }

  models(): Promise<ModelsAnswer> {
    return answer(() => modelsAnswer(this.env));
  }

  // The HTTP routes over the same binding (`env.EDGEVIT.fetch(request)`), answered as the Worker's own fetch.
  fetch(request: Request): Promise<Response> {
    return serve(request, this.env);
  }
}
