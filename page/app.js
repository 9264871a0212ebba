// The page at /: one POST /v1/see per image, then every picture drawn from that one answer.

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
  predictions: $("predictions"),
  pcaFrames: $("pca-frames"),
  pcaAnimation: $("pca-animation"),
  mode: $("mode"),
  layer: $("layer"),
  head: $("head"),
  attentionCanvas: $("attention-canvas"),
  attentionCaption: $("attention-caption"),
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

async function loadModels() {
  clearError();
  try {
    const response = await fetch("/v1/models", { headers: apiHeaders() });
    const body = await response.json();
    if (!response.ok) {
      throw new Error(unauthorized(response) ?? body.error?.message ?? `the server answered ${response.status}`);
    }
    ui.model.replaceChildren();
    const names = body.models.map((m) => m.name);
    if (!names.includes(body.default)) names.unshift(body.default);
    for (const name of names) {
      const entry = body.models.find((m) => m.name === name);
      // A bundle the catalogue cannot read is listed with its reason and cannot be chosen.
      const label = !entry
        ? `${name} (not in the bucket)`
        : entry.error
          ? `${name} (unusable: ${entry.error.message})`
          : `${name} (${describe(entry.config)})`;
      const option = new Option(label, name);
      option.disabled = !entry || Boolean(entry.error);
      option.selected = name === body.default && !option.disabled;
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

function describe(c) {
  if (!c) return "";
  return `${c.imageSize}px, patch ${c.patchSize}, ${c.layers} layers, ${c.heads} heads`;
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
  const params = new URLSearchParams({ top_k: "5", size: "224" });
  if (ui.model.value) params.set("model", ui.model.value);
  setBusy(true);
  ui.status.textContent = `Running ${ui.model.value || "the default model"} on ${name}…`;
  const started = performance.now();
  try {
    const response = await fetch(`/v1/see?${params}`, {
      method: "POST",
      headers: apiHeaders({ "content-type": type }),
      body: blob,
    });
    const body = await response.json().catch(() => null);
    if (!response.ok) {
      const message = unauthorized(response) ?? body?.error?.message ?? `the server answered ${response.status}`;
      throw new Error(`${name} was refused: ${message}`);
    }
    seen = body;
    picture = await decode(body.preprocessed);
    const ms = Math.round(performance.now() - started);
    ui.status.textContent = `${name} through ${body.model}: one forward pass, answered in ${ms} ms.`;
    render();
  } catch (error) {
    ui.status.textContent = seen ? "Showing the previous image." : "No image yet: choose one above.";
    showError(error.message);
  } finally {
    setBusy(false);
  }
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
  const prefix = c.prefixTokens === 2 ? "class and distillation tokens" : "class token";
  ui.inputCaption.textContent =
    `The ${seen.image.width}×${seen.image.height} upload ` +
    (seen.image.width === c.imageSize && seen.image.height === c.imageSize
      ? "kept at its size"
      : `brought to ${c.imageSize}×${c.imageSize} by the checkpoint's own image processor`) +
    " and normalised, " +
    `then cut into ${c.grid}×${c.grid} = ${patches} patches of ${c.patchSize}×${c.patchSize} pixels. ` +
    `Each patch is flattened and linearly embedded into a ${c.dim}-dimension vector; with the ${prefix} ` +
    `that makes ${c.tokens} tokens.`;
}

function renderPredictions() {
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

function renderPca() {
  ui.pcaFrames.replaceChildren(
    ...seen.pca.frames.map((src, layer) => {
      const figure = document.createElement("figure");
      const img = document.createElement("img");
      img.src = src;
      img.alt = `PCA of hidden state ${layer}`;
      const caption = document.createElement("figcaption");
      caption.textContent = layer === 0 ? "0 · embeddings" : `${layer} · after layer ${layer}`;
      figure.append(img, caption);
      return figure;
    }),
  );
  ui.pcaAnimation.src = seen.pca.animation;
  ui.pcaAnimation.hidden = false;
}

function setupAttention() {
  const c = seen.config;
  const keepLayer = Number(ui.layer.value) || c.layers;
  ui.layer.replaceChildren(
    ...Array.from({ length: c.layers }, (_, i) => new Option(String(i + 1), String(i + 1), false, i + 1 === keepLayer)),
  );
  if (Number(ui.layer.value) !== keepLayer) ui.layer.value = String(c.layers);
  const keepHead = ui.head.value;
  ui.head.replaceChildren(
    new Option(`mean of ${c.heads}`, "mean"),
    ...Array.from({ length: c.heads }, (_, h) => new Option(String(h), String(h))),
  );
  ui.head.value = [...ui.head.options].some((o) => o.value === keepHead) ? keepHead : "mean";
  ui.layer.disabled = false;
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
  ui.attentionCaption.textContent = rollout
    ? `Attention rollout through layers 1–${layer} (Abnar & Zuidema, 2020): each layer's attention averaged over ` +
      "its heads, plus the skip connection, multiplied through the layers: how much each patch reaches the class " +
      "token. Bright patches reach it most."
    : `Layer ${layer}, ${head === "mean" ? `mean of the ${c.heads} heads` : `head ${head}`}: how much the class ` +
      "token attends to each patch (its softmax attention row; bright = more). The class token is what the " +
      "classification head reads after the last layer.";
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
