// The answers behind /v1/attentions, /v1/attention_map, /v1/pca?layer=all and /v1/see: what the model
// sees, built from one forward pass by core/pictures/see.ts and put into HTTP form here.
import type { RunResult } from "../core/engine/model.ts";
import { EdgevitError } from "../core/errors.ts";
import { encodeApng, encodeFrames, encodePng } from "../core/pictures/png.ts";
import type { Prediction } from "../core/answers/predictions.ts";
import {
  attentionLayers,
  attentionPicture,
  clsAttention,
  FRAME_MS,
  geometry,
  lookerOf,
  preprocessedImage,
  rolloutAttention,
  type Seen,
} from "../core/pictures/see.ts";
import { towerOf, type BundleHeader } from "../core/bundle/format.ts";
import { poolEmbedding, poolsOf } from "../core/answers/pool.ts";
import { intParam } from "./http.ts";

export function pngResponse(png: Uint8Array, headers: Record<string, string> = {}): Response {
  return new Response(png, { headers: { "content-type": "image/png", ...headers } });
}

// The animation of every hidden state's PCA picture ([size][size][3] each), one frame per layer 0..L.
export function pcaAnimation(frames: Uint8Array[], size: number): Promise<Uint8Array> {
  return encodeApng(frames, size, size, { delayMs: FRAME_MS });
}

// The `head` parameter: an integer 0..heads-1 or "mean" (the default).
export function headParam(url: URL, heads: number): number | "mean" {
  const raw = url.searchParams.get("head");
  if (raw === null || raw === "mean") return "mean";
  return intParam(url, "head", 0, 0, heads - 1);
}

export interface MapRequest {
  layer: number; // 1..L (SigLIP: 1, its pooling head)
  head: number | "mean";
  mode: "cls" | "rollout";
  size: number;
}

export async function attentionMap(result: RunResult, header: BundleHeader, q: MapRequest): Promise<Uint8Array> {
  const c = header.config;
  if (q.mode === "rollout" && q.head !== "mean")
    throw new EdgevitError("bad_parameter", "mode=rollout composes the mean over heads: leave head out or pass mean");
  const values = q.mode === "rollout" ? rolloutAttention(result, c, q.layer) : clsAttention(result, c, q.layer, q.head);
  const image = preprocessedImage(result, c, header.preprocessing);
  return encodePng(attentionPicture(values, image, c, q.size), q.size, q.size);
}

// `{...fields, "attentions": [heads][tokens][tokens]}` (as transformers' output_attentions[layer - 1][0])
// streamed one head at a time: for a ViT-B/16 the answer is ~10 MB of text, which built at once (nested
// arrays, then one string, then its bytes) would take ~25 MB of heap beside the model.
export function attentionsJson(
  fields: object,
  attentions: Float32Array,
  heads: number,
  tokens: number,
  headers: Record<string, string> = {},
): Response {
  const encoder = new TextEncoder();
  let head = 0;
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(encoder.encode(`${JSON.stringify(fields).slice(0, -1)},"attentions":[`));
    },
    pull(controller) {
      const rows: string[] = [];
      for (let i = 0; i < tokens; i++) {
        const at = (head * tokens + i) * tokens;
        rows.push(JSON.stringify(Array.from(attentions.subarray(at, at + tokens))));
      }
      controller.enqueue(encoder.encode(`${head > 0 ? "," : ""}[${rows.join(",")}]`));
      if (++head === heads) {
        controller.enqueue(encoder.encode("]}"));
        controller.close();
      }
    },
  });
  return new Response(body, { headers: { "content-type": "application/json; charset=utf-8", ...headers } });
}

function base64(bytes: Uint8Array): string {
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(text);
}

const pngUrl = (png: Uint8Array) => `data:image/png;base64,${base64(png)}`;

// Four significant digits: plenty for a picture, a third of the JSON.
const round = (values: ArrayLike<number>) => Array.from(values, (v) => Number(v.toPrecision(4)));

// The embedding a tower answers /v1/embed with by default, summarised for the page: which pool, its length
// and norm, its first values.
function embeddingSummary(result: RunResult, header: BundleHeader) {
  const pool = poolsOf(header.config)[0];
  const embedding = poolEmbedding(result, header.config, pool);
  let sum = 0;
  for (const v of embedding) sum += v * v;
  return {
    pool,
    dim: embedding.length,
    norm: Number(Math.sqrt(sum).toPrecision(6)),
    first: round(embedding.subarray(0, 8)),
  };
}

// Everything the page draws, from one forward pass.
export async function seeBody(
  name: string,
  version: string,
  header: BundleHeader,
  image: { width: number; height: number },
  seen: Seen,
  result: RunResult,
  predictions: Prediction[],
  size: number,
) {
  const c = header.config;
  const g = geometry(c);
  const tower = towerOf(c);
  // Each frame deflated once, for its PNG and for the animation.
  const pca = await encodeFrames(seen.frames, size, size, { delayMs: FRAME_MS });
  return {
    model: name,
    version,
    family: tower.family,
    config: {
      imageSize: c.imageSize,
      patchSize: c.patchSize,
      grid: g.grid,
      tokens: g.tokens,
      prefixTokens: g.prefix,
      classToken: tower.classToken,
      distilled: c.distilled,
      registers: g.registers,
      dim: c.dim,
      heads: c.heads,
      layers: c.layers,
      hiddenAct: tower.hiddenAct,
      preLayernorm: tower.preLayernorm,
      layerScale: tower.layerScale,
      pooling: tower.pooling,
      projection: tower.projection,
      classes: c.classes,
    },
    image,
    predictions,
    // a tower has no classifier: its image embedding stands in for the predictions
    ...(c.classes > 0 ? {} : { embedding: embeddingSummary(result, header) }),
    preprocessed: pngUrl(await encodePng(seen.image, c.imageSize, c.imageSize)),
    pca: {
      size,
      frames: pca.pngs.map(pngUrl),
      animation: pngUrl(pca.apng),
      frameMs: FRAME_MS,
      // DINOv2's register tokens on each hidden state's components: [layers + 1][registers] of [r, g, b]
      registers: seen.registerColors.map((colors) =>
        Array.from({ length: colors.length / 3 }, (_, i) => Array.from(colors.subarray(i * 3, i * 3 + 3))),
      ),
    },
    attention: {
      from: lookerOf(c), // the class token, or SigLIP's pooling head
      layers: attentionLayers(c), // entries below: layers 1..L, or the pooling head alone
      cls: seen.cls.map((heads) => heads.map(round)),
      mean: seen.mean.map(round),
      rollout: seen.rollout.map(round),
      registers: { mean: seen.registers.mean.map(round), rollout: seen.registers.rollout.map(round) },
    },
  };
}
