// The page at /: one POST /v1/see per image, then every picture drawn from that one answer; for a
// vision-language model also POST /v1/image_tokens (the tiles, the image tokens and their nearest words).

const $ = (id) => document.getElementById(id);
const ui = {
  model: $("model"),
  token: $("token"),
  file: $("file"),
  drop: $("drop"),
  samples: $("samples"),
  status: $("status"),
  error: $("error"),
  inputCanvas: $("input-canvas"),
  inputCaption: $("input-caption"),
  familyCaption: $("family-caption"),
  predictionsTitle: $("predictions-title"),
  predictions: $("predictions"),
  predictionsCaption: $("predictions-caption"),
  embedding: $("embedding"),
  pcaFrames: $("pca-frames"),
  pcaAnimation: $("pca-animation"),
  mode: $("mode"),
  layer: $("layer"),
  head: $("head"),
  attentionTitle: $("attention-title"),
  attentionCanvas: $("attention-canvas"),
  attentionCaption: $("attention-caption"),
  registers: $("registers"),
  hubForm: $("hub-form"),
  hubRepo: $("hub-repo"),
  hubRevision: $("hub-revision"),
  hubName: $("hub-name"),
  hubAdd: $("hub-add"),
  hubProgress: $("hub-progress"),
  hubStatus: $("hub-status"),
  hubError: $("hub-error"),
  searchForm: $("search-form"),
  searchQuery: $("search-query"),
  searchGo: $("search-go"),
  searchStatus: $("search-status"),
  searchError: $("search-error"),
  searchResults: $("search-results"),
  vlmSection: $("vlm-section"),
  vlmIntro: $("vlm-intro"),
  tilesCanvas: $("tiles-canvas"),
  tilesCaption: $("tiles-caption"),
  shuffleCanvas: $("shuffle-canvas"),
  shuffleCaption: $("shuffle-caption"),
  tokenFrames: $("token-frames"),
  tokensCaption: $("tokens-caption"),
  nearestBlock: $("nearest-block"),
  nearest: $("nearest"),
  nearestCaption: $("nearest-caption"),
};

// The heat-map ramp of core/pictures/heatmap.ts (matplotlib's "inferno" at 0, 1/4, 1/2, 3/4, 1), so the page and
// /v1/attention_map colour alike.
const STOPS = [
  [0, 0, 4],
  [87, 16, 110],
  [188, 55, 84],
  [249, 142, 9],
  [252, 255, 164],
];
const ALPHA = 0.6;

function ramp(t) {
  const x = Math.min(1, Math.max(0, Number.isNaN(t) ? 0 : t)) * (STOPS.length - 1);
  const i = Math.min(Math.floor(x), STOPS.length - 2);
  const f = x - i;
  return [0, 1, 2].map((c) => Math.round(STOPS[i][c] + (STOPS[i + 1][c] - STOPS[i][c]) * f));
}

function minMax(values) {
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  return values.map((v) => (hi > lo ? (v - lo) / (hi - lo) : 0));
}

let seen = null; // the last /v1/see answer
let picture = null; // its preprocessed image, decoded
let lastUpload = null; // { blob, name } to run again when the model changes
let busy = false;
let catalogue = new Map(); // /v1/models' entries by name
let defaultModel = "";

function showError(message) {
  ui.error.textContent = message;
  ui.error.hidden = false;
}

function clearError() {
  ui.error.hidden = true;
  ui.error.textContent = "";
}

function setBusy(on) {
  busy = on;
  ui.file.disabled = on;
  ui.model.disabled = on;
  for (const b of ui.samples.querySelectorAll("button")) b.disabled = on;
  document.body.classList.toggle("busy", on);
}

// A deployment with the API_TOKEN secret answers /v1/ only with `Authorization: Bearer <token>`. The token
// typed here is kept in sessionStorage (this tab only, gone when it closes) and sent with every API call.
const TOKEN_KEY = "edgevit-token";
ui.token.value = sessionStorage.getItem(TOKEN_KEY) ?? "";

function apiHeaders(headers = {}) {
  const token = ui.token.value.trim();
  return token ? { ...headers, authorization: `Bearer ${token}` } : headers;
}

// The refusal of a 401 says what to do on this page.
function unauthorized(response) {
  return response.status === 401 ? "this API needs an access token: enter it in the Access token field above" : null;
}

// The models in the picker; `choose` is selected when it can be, else the server's default.
async function loadModels(choose) {
  clearError();
  try {
    const response = await fetch("/v1/models", { headers: apiHeaders() });
    const body = await response.json();
    if (!response.ok) {
      throw new Error(unauthorized(response) ?? body.error?.message ?? `the server answered ${response.status}`);
    }
    ui.model.replaceChildren();
    catalogue = new Map(body.models.map((m) => [m.name, m]));
    defaultModel = body.default;
    const names = body.models.map((m) => m.name);
    if (!names.includes(body.default)) names.unshift(body.default);
    for (const name of names) {
      const entry = body.models.find((m) => m.name === name);
      // A bundle the catalogue cannot read is listed with its reason and cannot be chosen.
      const label = !entry
        ? `${name} (not in the bucket)`
        : entry.error
          ? `${name} (unusable: ${entry.error.message})`
          : `${name}: ${familyName(entry)}, ${describe(entry.config)}`;
      const option = new Option(label, name);
      option.disabled = !entry || Boolean(entry.error);
      option.selected = name === (choose ?? body.default) && !option.disabled;
      ui.model.append(option);
    }
    if (![...ui.model.options].some((o) => !o.disabled)) {
      showError("The bucket has no usable model: upload one with `npx edgevit upload` (README, Your own model).");
    }
  } catch (error) {
    ui.model.replaceChildren(new Option("default model", ""));
    showError(`Could not list the models: ${error.message}. The server's default model will be used.`);
  }
}

// The families /v1/models names, as the page names them.
const FAMILY_NAMES = {
  vit: "ViT classifier",
  clip: "CLIP image tower",
  siglip: "SigLIP image tower",
  dinov2: "DINOv2",
};

// A vision-language model's tower is named by the model it comes from.
function familyName(entry) {
  const connector = entry.config?.connector;
  if (connector === "idefics3") return "SmolVLM / Idefics3 vision encoder and connector";
  if (connector === "llava") return "LLaVA vision tower and projector";
  return FAMILY_NAMES[entry.family] ?? entry.family ?? "vit";
}

function describe(c) {
  if (!c) return "";
  return `${c.imageSize}px, patch ${c.patchSize}, ${c.layers} layers, ${c.heads} heads`;
}

// What differs from the classifier ViT of "An Image is Worth 16x16 Words", in the article's terms: the
// patches, position embeddings and transformer layers are the same; the extra tokens, the norms and what is
// read at the end are not.
function familyCaption(family, c) {
  switch (family) {
    case "clip":
      return (
        "CLIP's vision encoder: the same patches, position embeddings and class token (CLS) as the classifier ViT, " +
        "but a LayerNorm on the embeddings before the first layer (pre-norm) and quick_gelu in the MLP. It has no " +
        "classification head: the class token after the last layer, normalised and projected" +
        (c.projection ? ` to ${c.projection} dimensions` : "") +
        ", is the image embedding CLIP compares with text embeddings."
      );
    case "siglip":
      return (
        "SigLIP's vision encoder (the one VLMs such as Idefics2 use): no class token, every token is a patch. " +
        "After the last layer an attention-pooling head, one learned query, attends over all the patches; its " +
        "output is the image embedding. Where SigLIP looks is that head's attention."
      );
    case "dinov2":
      return (
        "DINOv2, trained without labels: a class token as in the classifier ViT" +
        (c.registers > 0
          ? `, plus ${c.registers} register tokens: extra tokens with no patch of their own that the model uses as ` +
            "scratch space, listed beside the grid"
          : "") +
        ", and a learned scale (LayerScale) on each residual branch. Its embedding is the class token after the " +
        "last layer."
      );
    default:
      return null;
  }
}

// The tokens before the patches, in words.
function prefixWords(c) {
  const parts = [];
  if (c.classToken) parts.push("the class token");
  if (c.distilled) parts.push("the distillation token");
  if (c.registers > 0) parts.push(`${c.registers} register tokens`);
  return parts.join(" and ");
}

// Refuses what the model cannot read before sending it; the server refuses the rest with its own message.
function refusal(file) {
  if (file.size === 0) return `${file.name} is empty.`;
  const typeOk = ["image/jpeg", "image/png", "image/pjpeg", "image/webp", "image/gif", "image/bmp"].includes(file.type);
  const nameOk = /\.(jpe?g|png|webp|gif|bmp)$/i.test(file.name);
  if (!typeOk && !nameOk) {
    return `${file.name} is not a JPEG, PNG, WebP, GIF or BMP image (${file.type || "unknown type"}).`;
  }
  return null;
}

async function run(blob, name) {
  if (busy) return;
  clearError();
  lastUpload = { blob, name };
  const type = blob.type || (/\.png$/i.test(name) ? "image/png" : "image/jpeg");
  const model = ui.model.value || defaultModel;
  const entry = catalogue.get(model);
  setBusy(true);
  ui.status.textContent = `Running ${model || "the default model"} on ${name}…`;
  const started = performance.now();
  try {
    // a tower with neither a class token nor a pooling head (Idefics3's) has nothing for /v1/see to draw
    // where it looks: its layers come from /v1/pca?layer=all
    const sees = !entry?.answers || entry.answers.includes("/v1/see");
    if (sees) await runSee(blob, name, type);
    else await runLayers(blob, name, type, entry);
    const vlm = entry?.answers?.includes("/v1/image_tokens");
    if (vlm) await runImageTokens(blob, name, type, entry);
    ui.vlmSection.hidden = !vlm;
    const ms = Math.round(performance.now() - started);
    const model = sees ? seen.model : entry.name;
    ui.status.textContent = vlm
      ? `${name} through ${model}: its layers and its image tokens, answered in ${ms} ms.`
      : `${name} through ${model}: one forward pass, answered in ${ms} ms.`;
  } catch (error) {
    ui.status.textContent = seen ? "Showing the previous image." : "No image yet: choose one above.";
    showError(error.message);
  } finally {
    setBusy(false);
  }
}

// A POST of the upload to an API route; the answer, or the server's sentence as an error.
async function post(route, params, blob, name, type) {
  const response = await fetch(`${route}?${params}`, {
    method: "POST",
    headers: apiHeaders({ "content-type": type }),
    body: blob,
  });
  if (!response.ok) {
    const body = await response.json().catch(() => null);
    const message = unauthorized(response) ?? body?.error?.message ?? `the server answered ${response.status}`;
    throw new Error(`${name} was refused: ${message}`);
  }
  return response;
}

function modelParams(extra) {
  const params = new URLSearchParams(extra);
  if (ui.model.value) params.set("model", ui.model.value);
  return params;
}

async function runSee(blob, name, type) {
  const response = await post("/v1/see", modelParams({ top_k: "5", size: "224" }), blob, name, type);
  const body = await response.json();
  seen = body;
  picture = await decode(body.preprocessed);
  render();
}

// Idefics3's tower: the upload at the tile's size with its patch grid, every hidden state's PCA picture as
// one animation (/v1/pca?layer=all); no embedding and no attention map, which the captions say.
async function runLayers(blob, name, type, entry) {
  const c = entry.config;
  const response = await post("/v1/pca", modelParams({ layer: "all", size: "224" }), blob, name, type);
  const animation = URL.createObjectURL(await response.blob());
  seen = null;
  picture = await createImageBitmap(blob);
  const grid = c.imageSize / c.patchSize;
  drawGrid(drawImage(ui.inputCanvas), ui.inputCanvas, grid);
  ui.inputCaption.textContent =
    `The upload brought to one ${c.imageSize}×${c.imageSize} tile (as the global view below) and normalised, ` +
    `then cut into ${grid}×${grid} = ${grid * grid} patches of ${c.patchSize}×${c.patchSize} pixels, each ` +
    `linearly embedded into a ${c.dim}-dimension vector; the ${grid * grid} patches are the tokens.`;
  ui.familyCaption.textContent =
    "SmolVLM's vision encoder is SigLIP's without its pooling head: no class token, and nothing after the last " +
    "layer reads the patches as a whole. Its last hidden state goes, every patch of it, to the connector (step 5).";
  ui.familyCaption.hidden = false;
  ui.predictionsTitle.textContent = "2. No image embedding of its own";
  ui.predictions.hidden = true;
  ui.embedding.hidden = true;
  ui.predictionsCaption.textContent =
    "A VLM's encoder is not read as one vector: the language model receives its patches, turned into image " +
    "tokens (step 5).";
  ui.pcaFrames.replaceChildren(
    Object.assign(document.createElement("p"), {
      className: "empty",
      textContent: `Hidden states 0 to ${c.layers}, one frame each, in the animation.`,
    }),
  );
  ui.pcaAnimation.src = animation;
  ui.pcaAnimation.hidden = false;
  ui.attentionTitle.textContent = "4. No single place it looks";
  ui.attentionCanvas.getContext("2d").clearRect(0, 0, ui.attentionCanvas.width, ui.attentionCanvas.height);
  for (const control of [ui.layer, ui.head]) control.disabled = true;
  ui.attentionCaption.textContent =
    "With neither a class token nor a pooling head, no token gathers the image for a heat map; every patch's " +
    "attention is in POST /v1/attentions.";
  ui.registers.hidden = true;
}

// ---- 5. a vision-language model's image tokens (POST /v1/image_tokens) ----

// The tiles and every frame's tokens; with the LLM's embedding table in the bundle, the global view's tokens'
// nearest words (split=false, so the comparisons stay those of one frame).
async function runImageTokens(blob, name, type, entry) {
  const tokens = await (await post("/v1/image_tokens", modelParams({}), blob, name, type)).json();
  const nearest = entry.lmVocab
    ? await (await post("/v1/image_tokens", modelParams({ split: "false", nearest: "3" }), blob, name, type)).json()
    : null;
  const bitmap = await createImageBitmap(blob);
  renderVlm(entry.config, tokens, nearest, bitmap);
}

// The first three principal components of `rows` (each an array of `dim` numbers), each scaled to 0..255
// over the rows: a colour per row, as the PCA pictures colour patches. Power iteration on the centred rows,
// each component deflated from the next.
function pcaColours(rows, dim) {
  const n = rows.length;
  const mean = new Float64Array(dim);
  for (const row of rows) for (let d = 0; d < dim; d++) mean[d] += row[d] / n;
  const x = rows.map((row) => Float64Array.from(row, (v, d) => v - mean[d]));
  const components = [];
  for (let c = 0; c < 3; c++) {
    let v = Float64Array.from({ length: dim }, (_, d) => Math.sin(d * 12.9898 + c * 78.233));
    for (let iteration = 0; iteration < 40; iteration++) {
      const next = new Float64Array(dim);
      for (const row of x) {
        let dot = 0;
        for (let d = 0; d < dim; d++) dot += row[d] * v[d];
        for (let d = 0; d < dim; d++) next[d] += dot * row[d];
      }
      for (const u of components) {
        let dot = 0;
        for (let d = 0; d < dim; d++) dot += next[d] * u[d];
        for (let d = 0; d < dim; d++) next[d] -= dot * u[d];
      }
      const norm = Math.hypot(...next) || 1;
      v = next.map((value) => value / norm);
    }
    components.push(v);
  }
  const scores = x.map((row) => components.map((u) => row.reduce((a, value, d) => a + value * u[d], 0)));
  const scaled = [0, 1, 2].map((c) => minMax(scores.map((s) => s[c])));
  return scores.map((_, i) => scaled.map((column) => Math.round(column[i] * 255)));
}

// Tokens laid out as the patches they come from: a side of sqrt(tokens), after LLaVA's class token when it
// keeps it ("full").
function tokenSide(count) {
  const side = Math.floor(Math.sqrt(count));
  return { side, first: count - side * side };
}

function tokenCanvas(colours, at, count, label, className) {
  const { side, first } = tokenSide(count);
  const figure = document.createElement("figure");
  if (className) figure.className = className;
  const canvas = document.createElement("canvas");
  canvas.width = side;
  canvas.height = side;
  const ctx = canvas.getContext("2d");
  const image = ctx.createImageData(side, side);
  for (let t = 0; t < side * side; t++) {
    const [r, g, b] = colours[at + first + t];
    image.data.set([r, g, b, 255], 4 * t);
  }
  ctx.putImageData(image, 0, 0);
  canvas.setAttribute("aria-label", `${label}: ${count} image tokens coloured by their principal components`);
  const caption = document.createElement("figcaption");
  caption.textContent = label;
  figure.append(canvas, caption);
  return figure;
}

function renderVlm(c, answer, near, bitmap) {
  const { tiles, tokens, lm_dim: lmDim, grid, connector } = answer;
  const side = c.imageSize / c.patchSize;
  const s = c.scaleFactor ?? 1;
  const idefics3 = connector === "idefics3";
  ui.vlmIntro.textContent =
    "The last section of the article: a vision-language model feeds its vision encoder's patch embeddings, " +
    "projected, to its language model (LLM) in place of its <image> tokens. The path: the image → " +
    (idefics3 ? "tiles → " : "") +
    "patches → the encoder's layers (steps 1 and 3) → " +
    (idefics3 ? "pixel shuffle → " : "") +
    `tokens in the LLM's width (${lmDim}).`;

  // the tiles over the upload, the global view beside them
  const canvas = ui.tilesCanvas;
  const width = canvas.width;
  const height = Math.max(1, Math.round((width * bitmap.height) / bitmap.width));
  canvas.height = height;
  const ctx = canvas.getContext("2d");
  ctx.drawImage(bitmap, 0, 0, width, height);
  if (grid.rows > 0) {
    ctx.strokeStyle = "rgba(255, 255, 255, 0.9)";
    ctx.lineWidth = 2;
    ctx.beginPath();
    for (let i = 1; i < grid.cols; i++) {
      const x = Math.round((i * width) / grid.cols);
      ctx.moveTo(x, 0);
      ctx.lineTo(x, height);
    }
    for (let i = 1; i < grid.rows; i++) {
      const y = Math.round((i * height) / grid.rows);
      ctx.moveTo(0, y);
      ctx.lineTo(width, y);
    }
    ctx.stroke();
  }
  canvas.dataset.rows = String(grid.rows);
  canvas.dataset.cols = String(grid.cols);
  ui.tilesCaption.textContent = !idefics3
    ? `LLaVA's processor brings the whole image to one ${c.imageSize}×${c.imageSize} input: one frame.`
    : grid.rows > 0
      ? `SmolVLM's processor resizes the longest edge, then cuts the image into ${grid.rows}×${grid.cols} tiles of ` +
        `${c.imageSize}×${c.imageSize} pixels, row by row, and adds the whole image shrunk to one tile (the ` +
        `global view, last): ${tiles} frames, each its own pass through the encoder.`
      : `An image no larger than one tile is not split: the global view alone, one ${c.imageSize}×${c.imageSize} frame.`;

  // the pixel shuffle: blocks of s x s patches of one frame become one token
  const shuffle = ui.shuffleCanvas;
  const sctx = shuffle.getContext("2d");
  sctx.imageSmoothingEnabled = false;
  sctx.drawImage(bitmap, 0, 0, shuffle.width, shuffle.height);
  const cell = shuffle.width / side;
  const block = s * cell;
  for (let by = 0; by < side / s; by++) {
    for (let bx = 0; bx < side / s; bx++) {
      sctx.fillStyle = (bx + by) % 2 === 0 ? "rgba(255, 255, 255, 0.28)" : "rgba(0, 0, 0, 0.28)";
      sctx.fillRect(bx * block, by * block, block, block);
    }
  }
  drawGrid(sctx, shuffle, side);
  if (s > 1) {
    sctx.strokeStyle = "rgba(255, 200, 0, 0.95)";
    sctx.lineWidth = 2;
    sctx.strokeRect(1, 1, block - 2, block - 2);
  }
  shuffle.dataset.scaleFactor = String(s);
  const shuffled = c.dim * s * s;
  ui.shuffleCaption.textContent = idefics3
    ? `Pixel shuffle by ${s}, over the global view's ${side}×${side} patches: each ${s}×${s} block of ` +
      "neighbouring patches (outlined: the first) is concatenated " +
      `into one vector, ${s * s} × ${c.dim} = ${shuffled} numbers, so each frame's ${side * side} patches become ` +
      `${tokens} tokens; modality_projection then maps each to the LLM's ${lmDim}. Fewer, wider tokens: the ` +
      `LLM reads a frame in 1/${s * s} as many tokens as it has patches.`
    : `Each of the ${side * side} patch tokens of layer ${c.layers}'s hidden state, one by one: linear_1, ` +
      `${c.projectorHiddenAct ?? "gelu"}, linear_2 map it from ${c.dim} to the LLM's ${lmDim}.`;

  // every frame's tokens, coloured by their first three principal components over all frames
  const rows = answer.image_tokens.flat();
  const colours = pcaColours(rows, lmDim);
  const frames = [];
  for (let f = 0; f < tiles; f++) {
    const global = idefics3 && f === tiles - 1 && grid.rows > 0;
    const label =
      !idefics3 || tiles === 1
        ? "the image"
        : global
          ? "global view"
          : `tile ${Math.floor(f / grid.cols) + 1},${(f % grid.cols) + 1}`;
    const figure = tokenCanvas(colours, f * tokens, tokens, label, global ? "global" : "");
    if (idefics3 && grid.rows > 0 && !global) {
      // the tiles where they are in the image; the global view beside them
      figure.style.gridRow = String(Math.floor(f / grid.cols) + 1);
      figure.style.gridColumn = String((f % grid.cols) + 1);
    }
    frames.push(figure);
  }
  ui.tokenFrames.style.setProperty("--cols", String(Math.max(1, grid.cols)));
  ui.tokenFrames.style.setProperty("--rows", String(Math.max(1, grid.rows)));
  ui.tokenFrames.replaceChildren(...frames);
  ui.tokensCaption.textContent =
    `${tiles} × ${tokens} = ${tiles * tokens} image tokens of ${lmDim} numbers each: what the LLM receives, in ` +
    "its own embeddings' width, where the <image> tokens of its prompt stand. Each square is a token, placed " +
    "over the patches it comes from and coloured by its top three principal components (red, green, blue, over " +
    "all the tokens): tokens the LLM receives alike get alike colours.";

  // the global view's tokens' nearest words in the LLM's vocabulary
  ui.nearestBlock.hidden = !near;
  if (!near) return;
  const words = near.nearest[0];
  const { side: nside, first } = tokenSide(near.tokens);
  const at = (tiles - 1) * tokens;
  ui.nearest.style.setProperty("--side", String(nside));
  ui.nearest.replaceChildren(
    ...words.slice(first).map((list, t) => {
      const span = document.createElement("span");
      const [r, g, b] = colours[at + first + t] ?? [238, 238, 238];
      span.style.background = `rgba(${r}, ${g}, ${b}, 0.45)`;
      span.textContent = JSON.stringify(list[0]?.token ?? `#${list[0]?.id}`).slice(1, -1);
      span.title = list.map((w) => `${w.token ?? `#${w.id}`} (id ${w.id}): cosine ${w.cosine.toFixed(3)}`).join("\n");
      return span;
    }),
  );
  const best = words.flat().reduce((a, w) => Math.max(a, w.cosine), -1);
  ui.nearestCaption.textContent =
    `For each of the global view's ${near.tokens} tokens, the row of the LLM's input embedding table (its ` +
    `vocabulary, ${catalogue.get(near.model)?.lmVocab ?? ""} words) with the highest cosine; hover for the top ` +
    `3. Image tokens are not words: the highest cosine here is ${best.toFixed(3)}, and the LLM reads them as ` +
    "vectors, not as these words.";
}

function decode(url) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error("the preprocessed image could not be shown"));
    img.src = url;
  });
}

function render() {
  renderInput();
  renderPredictions();
  renderPca();
  setupAttention();
  renderAttention();
}

// The preprocessed image, enlarged without smoothing, with the patch grid over it.
function drawImage(canvas) {
  const ctx = canvas.getContext("2d");
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(picture, 0, 0, canvas.width, canvas.height);
  return ctx;
}

function drawGrid(ctx, canvas, grid) {
  ctx.strokeStyle = "rgba(255, 255, 255, 0.55)";
  ctx.lineWidth = 1;
  ctx.beginPath();
  for (let i = 1; i < grid; i++) {
    const at = Math.round((i * canvas.width) / grid) + 0.5;
    ctx.moveTo(at, 0);
    ctx.lineTo(at, canvas.height);
    ctx.moveTo(0, at);
    ctx.lineTo(canvas.width, at);
  }
  ctx.stroke();
}

function renderInput() {
  const c = seen.config;
  const ctx = drawImage(ui.inputCanvas);
  drawGrid(ctx, ui.inputCanvas, c.grid);
  const patches = c.grid * c.grid;
  const prefix = prefixWords(c);
  ui.inputCaption.textContent =
    `The ${seen.image.width}×${seen.image.height} upload ` +
    (seen.image.width === c.imageSize && seen.image.height === c.imageSize
      ? "kept at its size"
      : `brought to ${c.imageSize}×${c.imageSize} by the checkpoint's own image processor`) +
    " and normalised, " +
    `then cut into ${c.grid}×${c.grid} = ${patches} patches of ${c.patchSize}×${c.patchSize} pixels. ` +
    `Each patch is flattened and linearly embedded into a ${c.dim}-dimension vector; ` +
    (prefix ? `with ${prefix} that makes ${c.tokens} tokens.` : `the ${c.tokens} patches are the tokens.`);
  const caption = familyCaption(seen.family, c);
  ui.familyCaption.textContent = caption ?? "";
  ui.familyCaption.hidden = caption === null;
}

function renderPredictions() {
  const tower = Boolean(seen.embedding);
  ui.predictions.hidden = tower;
  ui.embedding.hidden = !tower;
  ui.predictionsTitle.textContent = tower ? "2. Its image embedding" : "2. What it predicts";
  if (tower) {
    const e = seen.embedding;
    const entry = (term, value) => {
      const dt = document.createElement("dt");
      dt.textContent = term;
      const dd = document.createElement("dd");
      dd.textContent = value;
      return [dt, dd];
    };
    ui.embedding.replaceChildren(
      ...entry("read from", POOL_WORDS[e.pool] ?? e.pool),
      ...entry("length", `${e.dim} dimensions`),
      ...entry("L2 norm", String(e.norm)),
      ...entry("first values", `${e.first.map((v) => v.toFixed(3)).join(", ")}, …`),
    );
    ui.predictionsCaption.textContent =
      "An image tower has no classification head: what it gives is this vector, which search indexes and " +
      "VLMs take in place of labels (POST /v1/embed returns all of it).";
    return;
  }
  ui.predictionsCaption.textContent =
    "The classification head reads the class token (CLS) after the last layer and scores every label; the bars " +
    "are softmax probabilities.";
  ui.predictions.replaceChildren(
    ...seen.predictions.map((p) => {
      const li = document.createElement("li");
      const label = document.createElement("span");
      label.className = "label";
      label.textContent = p.label;
      const bar = document.createElement("span");
      bar.className = "bar";
      bar.style.setProperty("--score", String(p.score));
      const score = document.createElement("span");
      score.className = "score";
      score.textContent = `${(p.score * 100).toFixed(1)}%`;
      li.append(label, bar, score);
      return li;
    }),
  );
}

// The embedding each family's /v1/embed returns by default, in words.
const POOL_WORDS = {
  image_embeds: "the class token after post_layernorm, through visual_projection (image_embeds)",
  pooler: "the attention-pooling head's output (pooler_output)",
  cls: "the class token after the final LayerNorm",
};

// Swatches of the register tokens' colours on a hidden state's components (DINOv2), beside its picture.
function registerSwatches(colors) {
  const list = document.createElement("ul");
  list.className = "swatches";
  list.setAttribute("aria-label", "register tokens on the same components");
  colors.forEach(([r, g, b], i) => {
    const item = document.createElement("li");
    item.style.background = `rgb(${r}, ${g}, ${b})`;
    item.title = `register ${i}`;
    list.append(item);
  });
  return list;
}

function renderPca() {
  const registers = seen.pca.registers ?? [];
  ui.pcaFrames.replaceChildren(
    ...seen.pca.frames.map((src, layer) => {
      const figure = document.createElement("figure");
      const img = document.createElement("img");
      img.src = src;
      img.alt = `PCA of hidden state ${layer}`;
      const caption = document.createElement("figcaption");
      caption.textContent = layer === 0 ? "0 · embeddings" : `${layer} · after layer ${layer}`;
      figure.append(img);
      if (registers[layer]?.length) figure.append(registerSwatches(registers[layer]));
      figure.append(caption);
      return figure;
    }),
  );
  ui.pcaAnimation.src = seen.pca.animation;
  ui.pcaAnimation.hidden = false;
}

// SigLIP has no class token: the page shows its pooling head's attention, one "layer" after the last.
const byHead = () => seen.attention.from === "pooling head";

function setupAttention() {
  const c = seen.config;
  const layers = seen.attention.layers;
  ui.attentionTitle.textContent = byHead() ? "4. Where the pooling head looks" : "4. Where the class token looks";
  const keepLayer = Math.min(Number(ui.layer.value) || layers, layers);
  ui.layer.replaceChildren(
    ...Array.from({ length: layers }, (_, i) =>
      byHead()
        ? new Option(`pooling head (after ${c.layers})`, "1", false, true)
        : new Option(String(i + 1), String(i + 1), false, i + 1 === keepLayer),
    ),
  );
  if (Number(ui.layer.value) !== keepLayer) ui.layer.value = String(layers);
  const keepHead = ui.head.value;
  ui.head.replaceChildren(
    new Option(`mean of ${c.heads}`, "mean"),
    ...Array.from({ length: c.heads }, (_, h) => new Option(String(h), String(h))),
  );
  ui.head.value = [...ui.head.options].some((o) => o.value === keepHead) ? keepHead : "mean";
  ui.layer.disabled = layers === 1;
  ui.head.disabled = ui.mode.value === "rollout";
}

function renderAttention() {
  if (!seen) return;
  const c = seen.config;
  const layer = Number(ui.layer.value);
  const head = ui.head.value;
  const rollout = ui.mode.value === "rollout";
  ui.head.disabled = rollout;
  const values = rollout
    ? seen.attention.rollout[layer - 1]
    : head === "mean"
      ? seen.attention.mean[layer - 1]
      : seen.attention.cls[layer - 1][Number(head)];
  const canvas = ui.attentionCanvas;
  const ctx = drawImage(canvas);
  const scaled = minMax(values);
  const cell = canvas.width / c.grid;
  for (let p = 0; p < scaled.length; p++) {
    const [r, g, b] = ramp(scaled[p]);
    ctx.fillStyle = `rgba(${r}, ${g}, ${b}, ${ALPHA})`;
    const x = Math.round((p % c.grid) * cell);
    const y = Math.round(Math.floor(p / c.grid) * cell);
    ctx.fillRect(x, y, Math.round(((p % c.grid) + 1) * cell) - x, Math.round((Math.floor(p / c.grid) + 1) * cell) - y);
  }
  drawGrid(ctx, canvas, c.grid);
  canvas.dataset.layer = String(layer);
  canvas.dataset.mode = ui.mode.value;
  const heads = head === "mean" ? `mean of the ${c.heads} heads` : `head ${head}`;
  const reader = c.classes > 0 ? "the classification head" : "the image embedding";
  ui.attentionCaption.textContent = byHead()
    ? rollout
      ? `Attention rollout through layers 1–${c.layers}, ending in the pooling head (Abnar & Zuidema, 2020): each ` +
        "layer's attention averaged over its heads, plus the skip connection, multiplied through the layers, then " +
        "the pooling head's attention: how much each patch reaches the image embedding. Bright patches reach it most."
      : `The pooling head, ${heads}: how much its one learned query attends to each patch after the last layer ` +
        "(bright = more). SigLIP has no class token; this attention is what makes its image embedding."
    : rollout
      ? `Attention rollout through layers 1–${layer} (Abnar & Zuidema, 2020): each layer's attention averaged over ` +
        "its heads, plus the skip connection, multiplied through the layers: how much each patch reaches the class " +
        "token. Bright patches reach it most."
      : `Layer ${layer}, ${heads}: how much the class token attends to each patch (its softmax attention row; ` +
        `bright = more). The class token is what ${reader} reads after the last layer.`;
  renderRegisters(layer, rollout, head);
}

// DINOv2's register tokens beside the grid: how much the class token attends to (or, by rollout, is reached
// from) each, in the heat map's terms: a share of the whole row, which the patches share the rest of.
function renderRegisters(layer, rollout, head) {
  const r = seen.attention.registers;
  const values = r && (rollout ? r.rollout[layer - 1] : r.mean[layer - 1]);
  ui.registers.hidden = !values?.length;
  if (!values?.length) return;
  const items = values.map((v, i) => {
    const li = document.createElement("li");
    li.textContent = `register ${i}: ${(v * 100).toFixed(1)}%`;
    return li;
  });
  const title = document.createElement("li");
  title.className = "title";
  title.textContent =
    rollout || head === "mean"
      ? `Register tokens (no patch of their own), ${rollout ? "by rollout" : "mean of the heads"}:`
      : "Register tokens (no patch of their own), mean of the heads:";
  ui.registers.replaceChildren(title, ...items);
}

ui.file.addEventListener("change", () => {
  const file = ui.file.files?.[0];
  if (!file) return;
  const problem = refusal(file);
  if (problem) showError(problem);
  else run(file, file.name);
  ui.file.value = "";
});

for (const event of ["dragenter", "dragover"]) {
  ui.drop.addEventListener(event, (e) => {
    e.preventDefault();
    ui.drop.classList.add("over");
  });
}
for (const event of ["dragleave", "drop"]) ui.drop.addEventListener(event, () => ui.drop.classList.remove("over"));
ui.drop.addEventListener("drop", (e) => {
  e.preventDefault();
  const file = e.dataTransfer?.files?.[0];
  if (!file) return;
  const problem = refusal(file);
  if (problem) showError(problem);
  else run(file, file.name);
});

ui.samples.addEventListener("click", async (e) => {
  const button = e.target.closest("button[data-sample]");
  if (!button) return;
  try {
    const response = await fetch(button.dataset.sample);
    if (!response.ok) throw new Error(`the sample answered ${response.status}`);
    await run(await response.blob(), button.dataset.sample.split("/").pop());
  } catch (error) {
    showError(`Could not load the sample: ${error.message}`);
  }
});

// "Add a model from the hub": POST /v1/models queues an import, then GET /v1/models/{name} shows its progress
// until it is done (the model joins the picker, chosen) or failed (the server's sentence).
const POLL_MS = 1000;

function hubMessage(text, isError) {
  ui.hubStatus.hidden = isError;
  ui.hubError.hidden = !isError;
  (isError ? ui.hubError : ui.hubStatus).textContent = text;
  if (isError) ui.hubStatus.textContent = "";
}

function megabytes(bytes) {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

// An import record (worker/imports.ts) in words, and its progress as a fraction: weights read, then the bundle
// written (its parts are written as the weights are read, the last with the final header).
function importProgress(record) {
  const p = record.progress;
  if (record.state === "queued") return { text: `${record.repo} is queued for import…`, fraction: null };
  const read = p.weightsBytes ? p.bytesDownloaded / p.weightsBytes : 0;
  const text =
    `Importing ${record.repo} (${record.summary}): ${megabytes(p.bytesDownloaded)} of ` +
    `${megabytes(p.weightsBytes)} of weights read, ${megabytes(p.bundleWritten)} of the ` +
    `${megabytes(p.bundleBytes)} bundle written…`;
  return { text, fraction: Math.min(1, read) };
}

async function addFromHub(event) {
  event.preventDefault();
  const request = { repo: ui.hubRepo.value.trim() };
  if (ui.hubRevision.value.trim()) request.revision = ui.hubRevision.value.trim();
  if (ui.hubName.value.trim()) request.name = ui.hubName.value.trim();
  ui.hubAdd.disabled = true;
  ui.hubProgress.hidden = false;
  ui.hubProgress.removeAttribute("value"); // indeterminate until the import reports
  hubMessage(`Checking ${request.repo} on the hub…`, false);
  try {
    const response = await fetch("/v1/models", {
      method: "POST",
      headers: apiHeaders({ "content-type": "application/json" }),
      body: JSON.stringify(request),
    });
    const body = await response.json().catch(() => null);
    if (!response.ok) {
      throw new Error(unauthorized(response) ?? body?.error?.message ?? `the server answered ${response.status}`);
    }
    const record = await follow(body.name);
    if (record.state === "failed") throw new Error(`The import of ${record.repo} failed: ${record.error.message}`);
    ui.hubProgress.value = 1;
    await loadModels(record.name);
    hubMessage(
      `${record.name} is ready (${record.summary}, ${megabytes(record.bundle.bytes)}): chosen in the model picker.`,
      false,
    );
    if (lastUpload) run(lastUpload.blob, lastUpload.name);
  } catch (error) {
    ui.hubProgress.hidden = true;
    hubMessage(error.message, true);
  } finally {
    ui.hubAdd.disabled = false;
  }
}

// Polls the import of `name` until it is done or failed; returns its last record.
async function follow(name) {
  for (;;) {
    const response = await fetch(`/v1/models/${encodeURIComponent(name)}`, { headers: apiHeaders() });
    const body = await response.json().catch(() => null);
    if (!response.ok) {
      throw new Error(unauthorized(response) ?? body?.error?.message ?? `the server answered ${response.status}`);
    }
    const record = body.import;
    if (!record) throw new Error(`the server has no import of ${name}`);
    if (record.state === "done" || record.state === "failed") return record;
    const { text, fraction } = importProgress(record);
    hubMessage(text, false);
    if (fraction === null) ui.hubProgress.removeAttribute("value");
    else ui.hubProgress.value = fraction;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

ui.hubForm.addEventListener("submit", addFromHub);

// ---- text search over the bucket's images (POST /v1/search) ----

let thumbnails = []; // object URLs of the shown results, revoked when the next search replaces them

function searchMessage(text, isError) {
  ui.searchStatus.hidden = isError || !text;
  ui.searchError.hidden = !isError;
  (isError ? ui.searchError : ui.searchStatus).textContent = text;
}

// An image of the results, fetched with the page's headers (an <img src> could not send the token).
async function thumbnail(model, key, img) {
  const query = new URLSearchParams({ key, ...(model && { model }) });
  const response = await fetch(`/v1/search/image?${query}`, { headers: apiHeaders() });
  if (!response.ok) {
    img.alt = `${key} (not available: ${response.status})`;
    return;
  }
  const url = URL.createObjectURL(await response.blob());
  thumbnails.push(url);
  img.src = url;
}

async function search(event) {
  event.preventDefault();
  const query = ui.searchQuery.value.trim();
  if (!query) return;
  const model = ui.model.value;
  ui.searchGo.disabled = true;
  searchMessage("Searching…", false);
  try {
    const response = await fetch("/v1/search", {
      method: "POST",
      headers: apiHeaders({ "content-type": "application/json" }),
      body: JSON.stringify({ query, k: 20, ...(model && { model }) }),
    });
    const body = await response.json();
    if (!response.ok) {
      throw new Error(unauthorized(response) ?? body.error?.message ?? `the server answered ${response.status}`);
    }
    for (const url of thumbnails) URL.revokeObjectURL(url);
    thumbnails = [];
    ui.searchResults.replaceChildren();
    for (const { key, score, probability } of body.results) {
      const item = document.createElement("li");
      const figure = document.createElement("figure");
      const img = document.createElement("img");
      img.alt = key;
      const caption = document.createElement("figcaption");
      // SigLIP's sigmoid gives each pair its own probability; CLIP's softmax needs a set of texts, so cosine alone
      const p = probability === undefined ? "" : ` · p ${probability.toFixed(3)}`;
      caption.textContent = `${key}: cos ${score.toFixed(3)}${p}`;
      figure.append(img, caption);
      item.append(figure);
      ui.searchResults.append(item);
      thumbnail(body.model, key, img);
    }
    const meaning = body.results.some((r) => r.probability !== undefined)
      ? " cos is the cosine of the image's and the text's embeddings; p is SigLIP's probability that the words describe the image (the sigmoid of its logit)."
      : " cos is the cosine of the image's and the text's embeddings.";
    searchMessage(
      body.results.length > 0
        ? `${body.results.length} images nearest to "${query}" with ${body.model}, nearest first.${meaning}`
        : `No images: ${body.message}.`,
      false,
    );
  } catch (error) {
    searchMessage(`Search failed: ${error.message}`, true);
  } finally {
    ui.searchGo.disabled = false;
  }
}

ui.searchForm.addEventListener("submit", search);

ui.token.addEventListener("change", () => {
  const token = ui.token.value.trim();
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
  loadModels();
});

ui.model.addEventListener("change", () => {
  if (lastUpload) run(lastUpload.blob, lastUpload.name);
});
for (const control of [ui.mode, ui.layer, ui.head]) control.addEventListener("change", renderAttention);

loadModels();
