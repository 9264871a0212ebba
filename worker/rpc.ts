// The RPC entrypoint: another Worker binds it as a service (`entrypoint = "Edgevit"`) and calls
// `env.EDGEVIT.classify(bytes)` (or a stream). Each method reads the image under MAX_BODY_BYTES and answers the same
// plain object as the HTTP route; a refusal throws an Error carrying the stable code as `code` and at the
// start of its message (`invalid_image: ...`), so a caller that only logs messages still sees it.

import { WorkerEntrypoint } from "cloudflare:workers";
import { EdgevitError } from "../core/errors.ts";
import { callerStreamFailed, inputBytes, tooLarge } from "./input.ts";
import { Busy, STREAM_CHUNK_BYTES, streamedBodyBytes, type Ticket } from "./memory.ts";
import { boolOption, intOption } from "./options.ts";
import { serve } from "./router.ts";
import { poolOutput } from "../core/answers/pool.ts";
import {
  admit,
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
  checkConnector,
  imageTokensAnswer,
  imageTokensOptions,
  modelOption,
  modelsAnswer,
  prepare,
  type Prepared,
  run,
  runTokens,
  streamedUpload,
  wholeUpload,
} from "./service.ts";
import {
  checkLabels,
  checkTemplate,
  checkTexts,
  embedTextAnswer,
  embedTexts,
  loadedTowers,
  type TextEmbeddings,
  tokenizeAnswer,
  zeroShot,
} from "./text.ts";
import { checkK, checkQuery, search } from "./search.ts";
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
  ImageTokensAnswer,
  ImageTokensOptions,
  LoadedListing,
  ModelsAnswer,
  SearchAnswer,
  SearchOptions,
  EmbedTextAnswer,
  EmbedTextOptions,
  TextOptions,
  TokenizeAnswer,
  ZeroShotAnswer,
  ZeroShotOptions,
} from "./types.ts";

// An error as the caller receives it: workerd's RPC carries the message and own properties such as `code`
// (and `retryAfter`, seconds, for busy).
function rpcError(error: unknown): Error {
  if (error instanceof EdgevitError) {
    const retry = error instanceof Busy ? { retryAfter: error.retryAfter } : {};
    return Object.assign(new Error(`${error.code}: ${error.message}`), { code: error.code, ...retry });
  }
  console.error("unhandled error:", error);
  return Object.assign(new Error("internal_error: an internal error occurred; it has been logged"), {
    code: "internal_error",
  });
}

// Every method's work, its refusals as the caller receives them. The memory it reserves comes back however
// it ends (an answer, a refusal, a caller's stream that fails or is abandoned); `ctx` keeps the call alive
// until then.
async function answer<T>(ctx: ExecutionContext, work: (tickets: Ticket[]) => Promise<T>): Promise<T> {
  const tickets: Ticket[] = [];
  const done = (async () => {
    try {
      return await work(tickets);
    } catch (error) {
      throw rpcError(error);
    } finally {
      for (const ticket of tickets) ticket.release();
    }
  })();
  ctx.waitUntil(done.catch(() => {}));
  return done;
}

// The image with its memory reserved first (bytes a caller sent are here already; a stream is read through
// the decoder's window under MAX_BODY_BYTES), its header checked, the model in hand (service.ts). Module
// functions, not methods: every method of the entrypoint is callable over RPC.
async function prepareInput(
  env: Env,
  image: ImageInput,
  name: string,
  options: { decode?: unknown },
  tickets: Ticket[],
): Promise<Prepared> {
  const decode = decodeOption(options);
  const limit = Number(env.MAX_BODY_BYTES);
  const sent = inputBytes(image);
  if (sent && sent.byteLength > limit) throw tooLarge(limit);
  const ticket = await admit(env, name, sent ? sent.byteLength : streamedBodyBytes(STREAM_CHUNK_BYTES));
  tickets.push(ticket);
  const upload = sent
    ? wholeUpload(ticket, sent)
    : streamedUpload(ticket, image as ReadableStream<Uint8Array>, {
        limit,
        failed: callerStreamFailed,
        readerBytes: STREAM_CHUNK_BYTES,
      });
  return prepare(env, name, upload, decode);
}

export class Edgevit extends WorkerEntrypoint<Env> implements EdgevitApi {
  classify(image: ImageInput, options: ClassifyOptions = {}): Promise<ClassifyAnswer> {
    return answer(this.ctx, async (tickets) => {
      const name = modelOption(this.env, options.model);
      const { topK, logits } = classifyOptions(options);
      const job = await prepareInput(this.env, image, name, options, tickets);
      checkClassifier(job.model.header.config, name);
      return classifyAnswer(await run(this.env, job), topK, logits);
    });
  }

  embed(image: ImageInput, options: EmbedOptions = {}): Promise<EmbedAnswer> {
    return answer(this.ctx, async (tickets) => {
      const name = modelOption(this.env, options.model);
      const { pool, normalize } = embedOptions(options);
      const job = await prepareInput(this.env, image, name, options, tickets);
      const chosen = poolFor(pool, job.model.header.config, name);
      const inference = await run(this.env, job, { answer: { kind: "embed" }, outputs: [poolOutput(chosen)] });
      return embedAnswer(inference, chosen, normalize);
    });
  }

  hiddenStates(image: ImageInput, options: HiddenStatesOptions): Promise<HiddenStatesAnswer> {
    return answer(this.ctx, async (tickets) => {
      const name = modelOption(this.env, options?.model);
      if (options?.layer === undefined)
        throw new EdgevitError("bad_parameter", "layer is required: 0 (embeddings) to the model's layer count");
      const raw = intOption("layer", options.layer, 0, 0);
      const job = await prepareInput(this.env, image, name, options, tickets);
      const layer = hiddenLayer(raw, job.model.header.config, name);
      const answer = { kind: "hidden_states", form: "json" } as const;
      return hiddenStatesAnswer(await run(this.env, job, { capture: layer, answer, outputs: [] }), layer);
    });
  }

  attentions(image: ImageInput, options: AttentionsOptions): Promise<AttentionsAnswer> {
    return answer(this.ctx, async (tickets) => {
      const name = modelOption(this.env, options?.model);
      if (options?.layer === undefined)
        throw new EdgevitError("bad_parameter", "layer is required: 1 to the model's layer count");
      const raw = intOption("layer", options.layer, 1, 1);
      const job = await prepareInput(this.env, image, name, options, tickets);
      const layer = attentionLayer(raw, job.model.header.config, name);
      const answer = { kind: "attentions", form: "arrays" } as const;
      const capture = { attentionLayer: layer };
      return attentionsAnswer(await run(this.env, job, { capture, answer, outputs: [] }), layer);
    });
  }

  zeroShot(image: ImageInput, options: ZeroShotOptions): Promise<ZeroShotAnswer> {
    return answer(this.ctx, async (tickets) => {
      const name = modelOption(this.env, options?.model);
      const labels = checkLabels(options?.labels);
      const template = checkTemplate(options?.template);
      const job = await prepareInput(this.env, image, name, options, tickets);
      return (await zeroShot(this.env, job, labels, template, (t) => tickets.push(t))).answer;
    });
  }

  embedText(texts: string[], options: EmbedTextOptions = {}): Promise<EmbedTextAnswer> {
    return answer(this.ctx, (tickets) => {
      const name = modelOption(this.env, options.model);
      const normalize = boolOption("normalize", options.normalize);
      return embedTextAnswer(this.env, name, checkTexts(texts), normalize, (t) => tickets.push(t));
    });
  }

  tokenize(texts: string[], options: TextOptions = {}): Promise<TokenizeAnswer> {
    return answer(this.ctx, (tickets) =>
      tokenizeAnswer(this.env, modelOption(this.env, options.model), checkTexts(texts), (t) => tickets.push(t)),
    );
  }

  search(query: string, options: SearchOptions = {}): Promise<SearchAnswer> {
    return answer(this.ctx, (tickets) =>
      search(this.env, modelOption(this.env, options.model), checkQuery(query), checkK(options.k), (t) =>
        tickets.push(t),
      ),
    );
  }

  imageTokens(image: ImageInput, options: ImageTokensOptions = {}): Promise<ImageTokensAnswer> {
    return answer(this.ctx, async (tickets) => {
      const name = modelOption(this.env, options.model);
      const { split, nearest } = imageTokensOptions(options);
      const job = await prepareInput(this.env, image, name, options, tickets);
      checkConnector(job.model.header.config, name);
      return imageTokensAnswer(await runTokens(this.env, job, split, nearest));
    });
  }

  models(): Promise<ModelsAnswer> {
    return answer(this.ctx, () => modelsAnswer(this.env));
  }

  // The HTTP routes over the same binding (`env.EDGEVIT.fetch(request)`), answered as the Worker's own fetch.
  fetch(request: Request): Promise<Response> {
    return serve(request, this.env, this.ctx);
  }
}

// The text Worker's entrypoint (wrangler.text.toml), which the main Worker's TEXT binding calls: text passes
// run here, in this isolate, whatever this isolate binds.
export class EdgevitText extends WorkerEntrypoint<Env> {
  embedText(texts: string[], options: TextOptions = {}): Promise<TextEmbeddings> {
    return answer(this.ctx, (tickets) =>
      embedTexts(this.env, modelOption(this.env, options.model), checkTexts(texts), (t) => tickets.push(t), true),
    );
  }

  tokenize(texts: string[], options: TextOptions = {}): Promise<TokenizeAnswer> {
    return answer(this.ctx, (tickets) =>
      tokenizeAnswer(this.env, modelOption(this.env, options.model), checkTexts(texts), (t) => tickets.push(t), true),
    );
  }

  // The text towers this isolate holds, for the main Worker's GET /v1/models.
  loadedTowers(): Promise<LoadedListing[]> {
    return Promise.resolve(loadedTowers());
  }
}
