// The RPC entrypoint: another Worker binds it as a service (`entrypoint = "Edgevit"`) and calls
// `env.EDGEVIT.classify(bytes)`. Each method reads the image under MAX_BODY_BYTES and answers the same
// plain object as the HTTP route; a refusal throws an Error carrying the stable code as `code` and at the
// start of its message (`invalid_image: ...`), so a caller that only logs messages still sees it.

import { WorkerEntrypoint } from "cloudflare:workers";
import { EdgevitError } from "../core/errors.ts";
import { serve } from "./index.ts";
import { readInput } from "./input.ts";
import { intOption } from "./options.ts";
import type { BundleHeader } from "../core/bundle/format.ts";
import {
  attentionLayer,
  attentionsAnswer,
  classifyAnswer,
  classifyOptions,
  decodeOption,
  embedAnswer,
  embedOptions,
  hiddenStatesAnswer,
  infer,
  modelOption,
  modelsAnswer,
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

export class Edgevit extends WorkerEntrypoint<Env> implements EdgevitApi {
  private async run<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      throw rpcError(error);
    }
  }

  private read(image: ImageInput): Promise<Uint8Array> {
    return readInput(image, Number(this.env.MAX_BODY_BYTES));
  }

  classify(image: ImageInput, options: ClassifyOptions = {}): Promise<ClassifyAnswer> {
    return this.run(async () => {
      const name = modelOption(this.env, options.model);
      const { topK, logits } = classifyOptions(options);
      return classifyAnswer(
        await infer(this.env, name, await this.read(image), { decode: decodeOption(options) }),
        topK,
        logits,
      );
    });
  }

  embed(image: ImageInput, options: EmbedOptions = {}): Promise<EmbedAnswer> {
    return this.run(async () => {
      const name = modelOption(this.env, options.model);
      const { pool, normalize } = embedOptions(options);
      return embedAnswer(
        await infer(this.env, name, await this.read(image), { decode: decodeOption(options) }),
        pool,
        normalize,
      );
    });
  }

  hiddenStates(image: ImageInput, options: HiddenStatesOptions): Promise<HiddenStatesAnswer> {
    return this.run(async () => {
      const name = modelOption(this.env, options?.model);
      if (options?.layer === undefined)
        throw new EdgevitError("bad_parameter", "layer is required: 0 (embeddings) to the model's layer count");
      const layer = intOption("layer", options.layer, 0, 0);
      return hiddenStatesAnswer(
        await infer(this.env, name, await this.read(image), { capture: layer, decode: decodeOption(options) }),
        layer,
      );
    });
  }

  attentions(image: ImageInput, options: AttentionsOptions): Promise<AttentionsAnswer> {
    return this.run(async () => {
      const name = modelOption(this.env, options?.model);
      if (options?.layer === undefined)
        throw new EdgevitError("bad_parameter", "layer is required: 1 to the model's layer count");
      const raw = intOption("layer", options.layer, 1, 1);
      let layer = 0;
      const capture = (header: BundleHeader, modelName: string) => {
        layer = attentionLayer(raw, header.config, modelName);
        return { attentionLayer: layer };
      };
      const bytes = await this.read(image);
      return attentionsAnswer(await infer(this.env, name, bytes, { capture, decode: decodeOption(options) }), layer);
    });
  }

  models(): Promise<ModelsAnswer> {
    return this.run(() => modelsAnswer(this.env));
  }

  // The HTTP routes over the same binding (`env.EDGEVIT.fetch(request)`), answered as the Worker's own fetch.
  fetch(request: Request): Promise<Response> {
    return serve(request, this.env);
  }
}
