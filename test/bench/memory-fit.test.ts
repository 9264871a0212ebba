// A model's room beside a large upload, as the end-to-end benchmark reports it, against the isolate's
// memory ledger itself: the upload fits exactly when the ledger admits its reservation beside the model.
import { readFileSync } from "node:fs";
import { describe, expect, test } from "vitest";
import { parsePrefix } from "../../core/bundle/reader.ts";
import { DEFAULT_LIMITS } from "../../core/limits.ts";
import { inspectImage } from "../../core/pipeline.ts";
import { MiB } from "../../core/sizes.ts";
import { MemoryLedger } from "../../worker/memory.ts";
import { settingsOf, uploadFit } from "../../bench/memory-fit.ts";

const root = new URL("../..", import.meta.url).pathname;
const prefix = parsePrefix(new Uint8Array(readFileSync(`${root}models/default/fashion-vit.evit`)));
if (!("header" in prefix)) throw new Error("the default bundle's header is incomplete");
const model = prefix.header;
const jpeg = new Uint8Array(readFileSync(`${root}test/fixtures/images/cat-baseline-420.jpg`));
const upload = { bodyBytes: jpeg.byteLength, decoder: await inspectImage(new Blob([jpeg]).stream(), DEFAULT_LIMITS) };

// Whether the ledger, with a model of `wasmBytes` loaded, admits `bytes` at once.
async function ledgerAdmits(settings: ReturnType<typeof settingsOf>, wasmBytes: number, bytes: number) {
  const ledger = new MemoryLedger(settings);
  ledger.modelLoaded("m", { memoryBytes: wasmBytes });
  const tooLarge = new Error("too large");
  try {
    (await ledger.admit(bytes, undefined, () => tooLarge as never)).release();
    return true;
  } catch (error) {
    // only the ledger's own refusal means "does not fit"; anything else is a failure
    if (error !== tooLarge) throw error;
    return false;
  }
}

describe("uploadFit", () => {
  const settings = settingsOf({ ISOLATE_MEMORY_MB: 120, MODEL_MEMORY_BUDGET_MB: 97 });

  test("reads the settings as the Worker does", () => {
    expect(settings.capacityBytes).toBe(120 * MiB);
    expect(settings.modelBudgetBytes).toBe(97 * MiB);
  });

  test("fits exactly when the ledger admits the reservation beside the loaded model", async () => {
    const probe = uploadFit(model, 0, upload, settings);
    // 451x300 for a 28x28 input: 1/4 (113x75) is the smallest DCT scale at least twice the target, 1/8 is not
    expect(probe.scale).toBe(4);
    expect(probe.reservationBytes).toBeGreaterThan(jpeg.byteLength);
    for (const spare of [0, -1]) {
      const wasmBytes = settings.capacityBytes - settings.fixedBytes - probe.reservationBytes - spare;
      const tight = { ...settings, modelBudgetBytes: wasmBytes };
      const fit = uploadFit(model, wasmBytes, upload, tight);
      expect(fit.roomBytes).toBe(probe.reservationBytes + spare);
      expect(fit.fitsBudget).toBe(true);
      expect(fit.fits).toBe(spare === 0);
      expect(await ledgerAdmits(tight, wasmBytes, fit.reservationBytes)).toBe(fit.fits);
    }
  });

  test("a model over the budget does not load, whatever room it leaves", () => {
    const fit = uploadFit(model, settings.modelBudgetBytes + 1, upload, settings);
    expect(fit.fitsBudget).toBe(false);
    expect(fit.reservationBytes).toBeLessThan(fit.roomBytes);
    expect(fit.fits).toBe(false);
  });
});
