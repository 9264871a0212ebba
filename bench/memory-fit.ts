// Whether a model fits the Worker's isolate with a large upload beside it, by the isolate memory ledger's
// own figures (worker/memory.ts): the model's wasm memory against MODEL_MEMORY_BUDGET_MB, and the isolate's
// idle heap, that wasm memory and the reservation of one upload running on it against ISOLATE_MEMORY_MB.
import type { BundleHeader } from "../core/bundle/format.ts";
import type { ImageDecoder } from "../core/image/source.ts";
import { chooseScale, DEFAULT_DECODE_MODE } from "../core/preprocess/stream.ts";
import { type LedgerSettings, ledgerSettings, reservationBytes, STREAM_CHUNK_BYTES } from "../worker/memory.ts";

export interface UploadFit {
  wasmBytes: number; // the model's wasm memory once loaded: what the ledger counts for it
  budgetBytes: number; // MODEL_MEMORY_BUDGET_MB
  capacityBytes: number; // ISOLATE_MEMORY_MB
  fixedBytes: number; // the idle isolate's JS heap
  bodyBytes: number; // the upload's size (it streams: the decoder's window counts, not the file)
  scale: number; // the DCT scale the default decode mode picks for this model's input
  reservationBytes: number; // the request's reservation when it runs: body, decoder, preprocessor, outputs, answer
  roomBytes: number; // what requests have beside the loaded model: capacity - fixed heap - wasm memory
  fitsBudget: boolean; // the load is not refused
  fits: boolean; // it loads, and the upload runs beside it within the isolate
}

// The ledger's settings from wrangler.toml's [vars], as the Worker reads them.
export function settingsOf(vars: Record<string, unknown>): LedgerSettings {
  return ledgerSettings(vars as Parameters<typeof ledgerSettings>[0]);
}

// `decoder`: the upload's decoder opened on a stream of it (core/pipeline.ts's inspectImage), as the Worker
// opens a request body; `bodyBytes` its size as uploaded.
export function uploadFit(
  model: BundleHeader,
  wasmBytes: number,
  upload: { bodyBytes: number; decoder: ImageDecoder },
  settings: LedgerSettings,
): UploadFit {
  const { header } = upload.decoder;
  const scale = chooseScale(header, model.preprocessing, DEFAULT_DECODE_MODE);
  const reservation = reservationBytes({
    body: STREAM_CHUNK_BYTES, // the reader beside the decoder, whose figure counts its window
    image: { header, scale, decoderBytes: upload.decoder.memoryBytes(scale) },
    model,
    answer: { kind: model.config.classes > 0 ? "classify" : "embed" },
  });
  const roomBytes = settings.capacityBytes - settings.fixedBytes - wasmBytes;
  const fitsBudget = wasmBytes <= settings.modelBudgetBytes;
  return {
    wasmBytes,
    budgetBytes: settings.modelBudgetBytes,
    capacityBytes: settings.capacityBytes,
    fixedBytes: settings.fixedBytes,
    bodyBytes: upload.bodyBytes,
    scale,
    reservationBytes: reservation,
    roomBytes,
    fitsBudget,
    fits: fitsBudget && reservation <= roomBytes,
  };
}
