// The OpenAPI 3.1 description of the HTTP API, served at /openapi.json. test/worker/openapi.test.ts
// checks that every route the router serves is described, and validates real answers against these schemas
// for the statuses it provokes (each route's success and a refusal, 401 and 405 on every route): a field or
// status no test reaches can still drift.
// Schemas use a small subset of JSON Schema: type (a name, or a list of names), properties, required,
// additionalProperties, items, enum, $ref.

import { ERROR_CODES } from "../core/errors.ts";
import { POOLS } from "../core/answers/pool.ts";
import { FAMILIES, HIDDEN_ACTS, POOLINGS } from "../core/bundle/format.ts";
import { MAX_TENSORS } from "../core/bundle/layout.ts";
import { MAX_REMOTE_HEADER_BYTES } from "../core/convert/hub-source.ts";
import { sizeText } from "../core/sizes.ts";

type Schema = Record<string, unknown>;

const ref = (name: string): Schema => ({ $ref: `#/components/schemas/${name}` });
const int = { type: "integer" };
const num = { type: "number" };
const str = { type: "string" };
const bool = { type: "boolean" };
const obj = (properties: Record<string, Schema>, required: string[] = Object.keys(properties)): Schema => ({
  type: "object",
  properties,
  required,
  additionalProperties: false,
});

// 503 is also `busy` (no memory for the upload now), which alone carries Retry-After (seconds).
const errorResponses = (...statuses: number[]) =>
  Object.fromEntries(
    statuses.map((s) => [
      String(s),
      {
        description:
          s === 503
            ? "model_unavailable; or busy: the server has no room for this image now, retry after the Retry-After header's seconds"
            : "a refusal with a stable code",
        content: { "application/json": { schema: ref("Error") } },
      },
    ]),
  );

const modelQuery = {
  name: "model",
  in: "query",
  description: "model name (the bundle `<name>.evit` in R2); default DEFAULT_MODEL",
  schema: str,
};

const decodeQuery = {
  name: "decode",
  in: "query",
  description:
    "fast (default): a JPEG far larger than the model's input may be decoded at 1/2, 1/4 or 1/8 in the DCT domain; exact: every pixel",
  schema: { type: "string", enum: ["fast", "exact"] },
};

const imageBody = {
  required: true,
  description:
    "a JPEG or PNG (the format is read from the bytes), raw or as the `image` field of a multipart form, at most MAX_BODY_BYTES",
  content: {
    "image/jpeg": { schema: { type: "string", contentMediaType: "image/jpeg" } },
    "image/png": { schema: { type: "string", contentMediaType: "image/png" } },
    "application/octet-stream": { schema: { type: "string" } },
    "multipart/form-data": { schema: { type: "object", properties: { image: { type: "string" } } } },
  },
};

const versionHeaders = {
  "x-edgevit-model": { description: "the model that answered", schema: str },
  "x-edgevit-model-version": { description: "its bundle's payload CRC-32", schema: str },
  "server-timing": { description: "body, model (and decode, preprocess, forward where measurable)", schema: str },
};

const jsonAnswer = (schema: string, description: string) => ({
  "200": { description, headers: versionHeaders, content: { "application/json": { schema: ref(schema) } } },
});

const inference = (summary: string, parameters: Schema[], answer: Record<string, unknown>) => ({
  post: {
    summary,
    parameters: [modelQuery, decodeQuery, ...parameters],
    requestBody: imageBody,
    responses: { ...answer, ...errorResponses(400, 401, 404, 405, 413, 415, 503) },
  },
});

// The text routes: a JSON body of texts.
const textRoute = (summary: string, parameters: Schema[], answer: string) => ({
  post: {
    summary,
    parameters: [modelQuery, ...parameters],
    requestBody: {
      required: true,
      description: "1 to 256 texts of at most 1,024 characters",
      content: {
        "application/json": {
          schema: obj({ texts: { type: "array", items: str }, normalize: { type: "boolean" } }, ["texts"]),
        },
      },
    },
    responses: {
      "200": {
        description: answer,
        headers: {
          "x-edgevit-model": versionHeaders["x-edgevit-model"],
          "x-edgevit-model-version": versionHeaders["x-edgevit-model-version"],
        },
        content: { "application/json": { schema: ref(answer) } },
      },
      ...errorResponses(400, 401, 404, 405, 413, 415, 503),
    },
  },
});

const modelVersion = { model: str, version: str };

// Where the patches start: after the class token (SigLIP has none), DeiT's distillation token, DINOv2's registers.
const tokenLayout = { class_token: { type: "boolean" }, prefix_tokens: int };

export const openapi = {
  openapi: "3.1.0",
  info: {
    title: "edgevit",
    version: "v1", // the routes' version (/v1/...), not the package's
    description: "int8 Vision Transformers in a Cloudflare Worker: classify, embed and inspect images.",
  },
  paths: {
    "/healthz": {
      get: {
        summary: "liveness",
        security: [], // open even with API_TOKEN set, for uptime checks
        responses: {
          "200": { description: "ok", content: { "application/json": { schema: ref("Health") } } },
          ...errorResponses(405),
        },
      },
    },
    "/openapi.json": {
      get: {
        summary: "this document",
        security: [], // outside /v1/: open even with API_TOKEN set
        responses: {
          "200": { description: "OpenAPI 3.1", content: { "application/json": { schema: ref("OpenApi") } } },
          ...errorResponses(405),
        },
      },
    },
    "/v1/models": {
      get: {
        summary:
          "the bundles in R2, the models loaded in this isolate and their versions, and the text Worker's text towers",
        responses: {
          "200": { description: "catalogue", content: { "application/json": { schema: ref("Models") } } },
          ...errorResponses(401, 405, 503),
        },
      },
      post: {
        summary:
          "import a checkpoint from the Hugging Face hub (HF_ENDPOINT, HF_TOKEN) into the bucket as <name>.evit: checked against the hub now, converted by a queued job",
        description:
          "The checks read the JSON files (at most 2 MiB each) and the safetensors headers by range (at most " +
          `${sizeText(MAX_REMOTE_HEADER_BYTES)} together: 256 bytes for each of twice the ${MAX_TENSORS} tensors a ` +
          "bundle can have), each reserved in the isolate's memory ledger before it is read: a larger header is " +
          "422 unsupported_checkpoint from its length field alone, no room for a read is 503 busy. A hub silent " +
          "for HF_HUB_DOWNLOAD_TIMEOUT seconds is 502 hub_unavailable here, and fails the queued import.",
        requestBody: {
          required: true,
          content: {
            "application/json": {
              schema: obj(
                {
                  repo: { ...str, description: "a hub repository id, org/name" },
                  revision: { ...str, description: "a branch, tag or commit (default main)" },
                  name: { ...str, description: "the model's name (default: the repository's name)" },
                },
                ["repo"],
              ),
            },
          },
        },
        responses: {
          "202": {
            description: "queued; GET the Location for its progress and outcome",
            headers: { location: { description: "/v1/models/{name}", schema: str } },
            content: { "application/json": { schema: ref("Import") } },
          },
          ...errorResponses(400, 401, 403, 404, 405, 413, 422, 502, 503),
        },
      },
    },
    "/v1/models/{name}": {
      get: {
        summary: "a bundle in the bucket and the latest import of that name: its progress, or its outcome",
        parameters: [{ name: "name", in: "path", required: true, schema: str }],
        responses: {
          "200": {
            description: "the bundle and the import, each when there is one",
            content: {
              "application/json": {
                schema: obj(
                  {
                    name: str,
                    bundle: obj({ key: str, bytes: int, etag: str, uploaded: str }),
                    import: ref("Import"),
                  },
                  ["name"],
                ),
              },
            },
          },
          ...errorResponses(400, 401, 404, 405),
        },
      },
    },
    "/v1/classify": inference(
      "top-k labels (a model with a classifier; an image tower without one is a 400)",
      [
        { name: "top_k", in: "query", schema: { type: "integer", minimum: 1, default: 5 } },
        { name: "include", in: "query", description: "`logits` adds every class's logit", schema: str },
      ],
      jsonAnswer("Classify", "predictions"),
    ),
    "/v1/embed": inference(
      "an image embedding: by default the one each family's users take (ViT and DINOv2 the class token after " +
        "the final LayerNorm, CLIP image_embeds, SigLIP its pooling head's output)",
      [
        {
          name: "pool",
          in: "query",
          description:
            "cls, mean (patch tokens), cls_mean (DINOv2: both concatenated), image_embeds (CLIP), pooler " +
            "(pooler_output); each model answers the ones /v1/models lists as its `pools`, the first its default",
          schema: { type: "string", enum: [...POOLS] },
        },
        { name: "normalize", in: "query", description: "unit L2 length", schema: { type: "boolean", default: false } },
      ],
      jsonAnswer("Embed", "the embedding"),
    ),
    "/v1/zero_shot": inference(
      "zero-shot classification with a two-tower model (CLIP, SigLIP): each label put into the template, scored " +
        "against the image as transformers' zero-shot pipeline scores (CLIP: softmax over the labels of " +
        "exp(logit_scale) x cosine; SigLIP: sigmoid of exp(logit_scale) x cosine + logit_bias, each on its own); a " +
        "label set is embedded once per model version and template (x-edgevit-labels: computed, isolate or r2)",
      [
        {
          name: "labels",
          in: "query",
          description:
            "1 to 256 distinct labels, repeated (labels=cat&labels=dog); in a multipart form, a `labels` field holding a JSON array, before the `image` field (the form is read no further than the image; its text fields 256 KiB at most)",
          schema: { type: "array", items: str },
        },
        {
          name: "template",
          in: "query",
          description:
            'where each label goes, at "{}" (once, no other brace); in a form, a `template` field before the image',
          schema: { type: "string", default: "This is a photo of {}." },
        },
      ],
      {
        "200": {
          description: "the labels' scores, highest first",
          headers: {
            ...versionHeaders,
            "x-edgevit-labels": {
              description: "where the label set's text embeddings came from: computed, isolate or r2",
              schema: str,
            },
          },
          content: { "application/json": { schema: ref("ZeroShot") } },
        },
      },
    ),
    "/v1/embed_text": textRoute(
      "text embeddings from a two-tower model's text tower (CLIP text_embeds, SigLIP's pooled output), one per text",
      [{ name: "normalize", in: "query", description: "unit L2 length", schema: { type: "boolean", default: false } }],
      "EmbedText",
    ),
    "/v1/tokenize": textRoute(
      "the text tower's token ids and attention mask per text, padded as its processor pads (CLIP 77, SigLIP 64)",
      [],
      "Tokenize",
    ),
    "/v1/search": {
      post: {
        summary:
          "the input bucket's images nearest to a text, by the cosine of the model's image and text embeddings " +
          "(Vectorize when bound, else an index in RESULTS); the queue consumer indexes each image it embeds",
        parameters: [modelQuery],
        requestBody: {
          required: true,
          content: {
            "application/json": {
              schema: obj(
                {
                  query: { ...str, description: "1 to 1,024 characters" },
                  k: { ...int, minimum: 1, maximum: 20, default: 10 },
                  model: { ...str, description: "as the model query parameter" },
                },
                ["query"],
              ),
            },
          },
        },
        responses: {
          "200": {
            description:
              "nearest first (by cosine), each with the model's logit of the pair and, for SigLIP, its sigmoid; " +
              "an empty index answers no results and a message saying why",
            headers: { "x-edgevit-model": versionHeaders["x-edgevit-model"] },
            content: { "application/json": { schema: ref("Search") } },
          },
          ...errorResponses(400, 401, 404, 405, 413, 415, 503),
        },
      },
    },
    "/v1/search/image": {
      get: {
        summary: "an image of the input bucket that the model's search index holds, as uploaded (read-only)",
        parameters: [modelQuery, { name: "key", in: "query", required: true, schema: str }],
        responses: {
          "200": {
            description: "the image's bytes, its uploaded type when that is an image type",
            content: { "image/*": { schema: { type: "string", contentMediaType: "image/*" } } },
          },
          ...errorResponses(400, 401, 404, 405),
        },
      },
    },
    "/v1/hidden_states": inference(
      "one layer's tokens; `Accept: application/x-npy` for a NumPy array",
      [{ name: "layer", in: "query", required: true, schema: { type: "integer", minimum: 0 } }],
      {
        "200": {
          description: "[tokens][dim]",
          headers: versionHeaders,
          content: {
            "application/json": { schema: ref("HiddenStates") },
            "application/x-npy": { schema: { type: "string", contentMediaType: "application/x-npy" } },
          },
        },
      },
    ),
    "/v1/pca": inference(
      "the top three principal components of a layer's patch tokens as an RGB picture",
      [
        {
          name: "layer",
          in: "query",
          description: "0..L (default L), or `all`: an animated PNG, one frame per hidden state",
          schema: str,
        },
        {
          name: "size",
          in: "query",
          description: "16 to 1024 for one layer; at most 448 with layer=all (one frame per hidden state)",
          schema: { type: "integer", minimum: 16, maximum: 1024, default: 224 },
        },
      ],
      {
        "200": {
          description: "PNG (APNG for layer=all)",
          headers: versionHeaders,
          content: { "image/png": { schema: { type: "string", contentMediaType: "image/png" } } },
        },
      },
    ),
    "/v1/attentions": inference(
      "one layer's softmax attention probabilities, every head (output_attentions[layer - 1]); `Accept: application/x-npy` for a NumPy array",
      [{ name: "layer", in: "query", required: true, schema: { type: "integer", minimum: 1 } }],
      {
        "200": {
          description: "[heads][tokens][tokens]",
          headers: versionHeaders,
          content: {
            "application/json": { schema: ref("Attentions") },
            "application/x-npy": { schema: { type: "string", contentMediaType: "application/x-npy" } },
          },
        },
      },
    ),
    "/v1/attention_map": inference(
      "the class token's attention over the patches (a head or their mean), or attention rollout, over the image; " +
        "SigLIP (no class token): its pooling head's attention after the last layer, and the rollout ending in it; " +
        "a VLM's tower with neither (Idefics3's) is refused (400)",
      [
        { name: "layer", in: "query", description: "1..L, default L", schema: { type: "integer", minimum: 1 } },
        { name: "head", in: "query", description: "0..heads-1 or `mean` (default)", schema: str },
        { name: "mode", in: "query", schema: { type: "string", enum: ["cls", "rollout"], default: "cls" } },
        { name: "size", in: "query", schema: { type: "integer", minimum: 16, maximum: 1024, default: 224 } },
      ],
      {
        "200": {
          description: "PNG",
          headers: versionHeaders,
          content: { "image/png": { schema: { type: "string", contentMediaType: "image/png" } } },
        },
      },
    ),
    "/v1/see": inference(
      "everything the page at / draws, from one forward pass; a VLM's tower with neither a class token nor a " +
        "pooling head (Idefics3's) is refused (400)",
      [
        { name: "top_k", in: "query", schema: { type: "integer", minimum: 1, default: 5 } },
        {
          name: "size",
          in: "query",
          description: "every picture's side; at most 448, as the answer holds one picture per hidden state",
          schema: { type: "integer", minimum: 16, maximum: 448, default: 224 },
        },
      ],
      jsonAnswer("See", "predictions, the preprocessed image, PCA pictures and attention"),
    ),
    "/v1/image_tokens": inference(
      "a vision-language model's image tokens: the rows its LLM receives in place of its <image> tokens, per " +
        "frame (Idefics3 / SmolVLM: the tiles row by row, then the global view; LLaVA: the image); " +
        "`Accept: application/x-npy` for a NumPy array [tiles, tokens, lm_dim] (the grid in x-edgevit-tile-grid, " +
        "rows x cols); a model without a connector is refused (400)",
      [
        {
          name: "split",
          in: "query",
          description: "false: the global view alone (the last frame of the split image)",
          schema: { type: "boolean", default: true },
        },
        {
          name: "nearest",
          in: "query",
          description:
            "k: each image token's k nearest rows of the LLM's input embedding table by cosine, with their " +
            "token strings (JSON only; the bundle must carry the table: `edgevit convert --lm-embeddings`, else 400)",
          schema: { type: "integer", minimum: 1, maximum: 20 },
        },
      ],
      {
        "200": {
          description: "[tiles][tokens][lm_dim]",
          headers: versionHeaders,
          content: {
            "application/json": { schema: ref("ImageTokens") },
            "application/x-npy": { schema: { type: "string", contentMediaType: "application/x-npy" } },
          },
        },
      },
    ),
  },
  // With the API_TOKEN secret set, every /v1/ route needs `Authorization: Bearer <token>` (else 401); without
  // it the API is open: either requirement satisfies the document.
  security: [{}, { bearer: [] }],
  components: {
    securitySchemes: {
      bearer: { type: "http", scheme: "bearer", description: "the deployment's API_TOKEN secret, when it has one" },
    },
    schemas: {
      Attentions: obj({
        ...modelVersion,
        layer: int,
        heads: int,
        tokens: int,
        ...tokenLayout,
        attentions: { type: "array", items: { type: "array", items: { type: "array", items: num } } },
      }),
      See: obj(
        {
          ...modelVersion,
          family: { type: "string", enum: [...FAMILIES] },
          config: obj({
            imageSize: int,
            patchSize: int,
            grid: int,
            tokens: int,
            prefixTokens: int,
            classToken: bool,
            distilled: bool,
            registers: int,
            dim: int,
            heads: int,
            layers: int,
            hiddenAct: { type: "string", enum: [...HIDDEN_ACTS] },
            preLayernorm: bool,
            layerScale: bool,
            pooling: { type: "string", enum: [...POOLINGS] },
            projection: int,
            classes: int,
          }),
          image: ref("Image"),
          predictions: { type: "array", items: ref("Prediction") },
          // a tower (no classifier): its default embedding, summarised
          embedding: obj({
            pool: { type: "string", enum: [...POOLS] },
            dim: int,
            norm: num,
            first: { type: "array", items: num },
          }),
          preprocessed: str,
          pca: obj({
            size: int,
            frames: { type: "array", items: str },
            animation: str,
            frameMs: int,
            registers: { type: "array", items: { type: "array", items: { type: "array", items: int } } },
          }),
          attention: obj({
            from: { type: "string", enum: ["class token", "pooling head"] },
            layers: int,
            cls: { type: "array", items: { type: "array", items: { type: "array", items: num } } },
            mean: { type: "array", items: { type: "array", items: num } },
            rollout: { type: "array", items: { type: "array", items: num } },
            registers: obj({
              mean: { type: "array", items: { type: "array", items: num } },
              rollout: { type: "array", items: { type: "array", items: num } },
            }),
          }),
        },
        ["model", "version", "family", "config", "image", "predictions", "preprocessed", "pca", "attention"],
      ),
      ImageTokens: obj(
        {
          ...modelVersion,
          connector: { type: "string", enum: ["idefics3", "llava"] },
          tiles: int,
          tokens: int,
          lm_dim: int,
          grid: obj({ rows: int, cols: int }),
          image_tokens: { type: "array", items: { type: "array", items: { type: "array", items: num } } },
          nearest: {
            type: "array",
            description: "with nearest=k: [tiles][tokens][k], the highest cosine first",
            items: {
              type: "array",
              items: {
                type: "array",
                items: obj({ id: int, token: { type: ["string", "null"] }, cosine: num }),
              },
            },
          },
          image: ref("Image"),
        },
        ["model", "version", "connector", "tiles", "tokens", "lm_dim", "grid", "image_tokens", "image"],
      ),
      Health: obj({ status: { type: "string", enum: ["ok"] } }),
      OpenApi: { type: "object", required: ["openapi", "info", "paths", "components"] },
      Error: obj({ error: obj({ code: { type: "string", enum: [...ERROR_CODES, "internal_error"] }, message: str }) }),
      Prediction: obj({ label: str, index: int, score: num }),
      // The upload as the model received it: full-size dimensions after the EXIF orientation, and the scale
      // the decoder ran at (decode=fast may scale a JPEG by 1/2, 1/4 or 1/8 in the DCT domain).
      Image: obj({
        format: { type: "string", enum: ["jpeg", "png"] },
        width: int,
        height: int,
        decode: obj({
          mode: { type: "string", enum: ["fast", "exact"] },
          scale: { type: "integer", enum: [1, 2, 4, 8] },
        }),
      }),
      Classify: obj(
        {
          ...modelVersion,
          predictions: { type: "array", items: ref("Prediction") },
          logits: { type: "array", items: num },
          image: ref("Image"),
        },
        ["model", "version", "predictions", "image"],
      ),
      Embed: obj({
        ...modelVersion,
        family: { type: "string", enum: [...FAMILIES] },
        dim: int,
        pool: { type: "string", enum: [...POOLS] },
        normalized: { type: "boolean" },
        embedding: { type: "array", items: num },
        image: ref("Image"),
      }),
      ZeroShot: obj({
        ...modelVersion,
        scores: { type: "array", items: obj({ label: str, score: num }) },
        image: ref("Image"),
      }),
      EmbedText: obj({
        ...modelVersion,
        dim: int,
        normalized: { type: "boolean" },
        embeddings: { type: "array", items: { type: "array", items: num } },
      }),
      Search: obj(
        {
          model: str,
          version: str,
          results: {
            type: "array",
            items: obj(
              {
                key: { ...str, description: "the image's key in the input bucket" },
                score: { ...num, description: "the cosine of the image's and the text's embeddings (the ranking)" },
                logit: { ...num, description: "exp(logit_scale) x score, + logit_bias for SigLIP" },
                probability: {
                  ...num,
                  description:
                    "SigLIP only: sigmoid(logit), the pair's probability as zero-shot scores a label " +
                    "(CLIP's softmax needs a set of texts)",
                },
              },
              ["key", "score", "logit"],
            ),
          },
          message: str,
        },
        ["model", "results"],
      ),
      Tokenize: obj({
        ...modelVersion,
        input_ids: { type: "array", items: { type: "array", items: int } },
        attention_mask: { type: "array", items: { type: "array", items: int } },
      }),
      HiddenStates: obj({
        ...modelVersion,
        layer: int,
        tokens: int,
        dim: int,
        ...tokenLayout,
        hidden_states: { type: "array", items: { type: "array", items: num } },
      }),
      Failure: obj({ etag: str, code: str, message: str }),
      // worker/imports.ts's ImportRecord, kept in the bucket as <name>.import.json
      Import: obj(
        {
          id: str,
          name: str,
          repo: str,
          revision: str,
          commit: str,
          state: { type: "string", enum: ["queued", "running", "done", "failed"] },
          requested: str,
          updated: str,
          summary: str,
          progress: obj({
            tensorsRead: int,
            bytesDownloaded: int,
            weightsBytes: int,
            bundleBytes: int,
            bundleWritten: int,
            partsUploaded: int,
          }),
          uploadId: str,
          bundle: obj({ key: str, bytes: int, version: str, etag: str }),
          error: obj({ code: { type: "string", enum: [...ERROR_CODES, "internal_error"] }, message: str }),
        },
        ["id", "name", "repo", "revision", "commit", "state", "requested", "updated", "summary", "progress"],
      ),
      Models: obj({
        default: str,
        engine: { type: "string", enum: ["simd", "relaxed-simd"] },
        dot: obj({ path: { type: "string", enum: ["i16", "split", "fused"] }, probe: int }),
        refreshSeconds: num,
        models: {
          type: "array",
          items: obj(
            {
              name: str,
              bytes: int,
              uploaded: str,
              etag: str,
              version: str,
              config: { type: "object" },
              summary: str,
              family: { type: "string", enum: [...FAMILIES] },
              answers: { type: "array", items: str },
              pools: { type: "array", items: { type: "string", enum: [...POOLS] } },
              lmVocab: int,
              error: obj({ code: str, message: str }),
              loaded: { type: "boolean" },
            },
            ["name", "bytes", "uploaded", "loaded"],
          ),
        },
        loaded: { type: "array", items: ref("Loaded") },
        memory: obj({
          usedBytes: int,
          budgetBytes: int,
          // The isolate's memory ledger: ISOLATE_MEMORY_MB, what it counts now, the requests in flight and waiting.
          isolate: obj({
            capacityBytes: int,
            fixedBytes: int,
            cacheBytes: int,
            modelBytes: int,
            reservedBytes: int,
            poolBytes: int,
            usedBytes: int,
            peakBytes: int,
            inFlight: int,
            queued: int,
            loading: { type: "array", items: str },
            pool: obj({
              allocated: int,
              reused: int,
              dropped: int,
              acquiredBytes: int,
              allocatedBytes: int,
              droppedBytes: int,
            }),
            kernelBytes: int,
          }),
        }),
        text: {
          ...obj({ loaded: { type: ["array", "null"], items: ref("Loaded") }, reason: str }, ["loaded"]),
          description:
            "the text Worker's loaded text towers with their measured wasm memory, asked over the TEXT binding; " +
            "`loaded` is null and `reason` says why when there is no TEXT binding (text towers then load in this " +
            "isolate and are in the top-level `loaded`), when this is the text Worker, or when the binding failed " +
            "or did not answer in time (this listing answers regardless)",
        },
      }),
      Loaded: obj(
        {
          name: str,
          tower: { type: "string", enum: ["text"] },
          version: str,
          etag: str,
          memoryBytes: int,
          wasmBytes: int,
          largestLoadBufferBytes: int,
          checkedAt: str,
          refreshError: ref("Failure"),
        },
        ["name", "version", "etag", "memoryBytes", "wasmBytes", "largestLoadBufferBytes", "checkedAt"],
      ),
    },
  },
};
