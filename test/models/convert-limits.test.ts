// The converter refuses, before reading or planning tensors, a config.json over what a Worker can hold,
// naming config.json's own key and the limit; and a checkpoint tensor holding NaN or Inf, naming it.
import { afterAll, expect, test } from "vitest";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConvertError, convertDirectory, convertToFile } from "../../models/convert-folder.ts";
import { TINY, VIT_PREPROCESSOR, hfConfig, hfTensors, makeWeights, writeCheckpoint } from "./checkpoints.ts";

const root = mkdtempSync(join(tmpdir(), "edgevit-convert-limits-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const fresh = () => join(root, `ckpt${n++}`);
const w = makeWeights(TINY);

async function refusal(dir: string): Promise<string> {
  try {
    await convertDirectory(dir);
  } catch (e) {
    expect(e).toBeInstanceOf(ConvertError);
    return (e as Error).message;
  }
  throw new Error("conversion did not refuse");
}

test.each([
  [{ num_hidden_layers: 10_000_000 }, "config.json: num_hidden_layers is 10000000, over the limit of 64"],
  [{ num_hidden_layers: 100_000 }, "config.json: num_hidden_layers is 100000, over the limit of 64"],
  [{ hidden_size: 65536, num_attention_heads: 2 }, "config.json: hidden_size is 65536, over the limit of 4096"],
  [{ intermediate_size: 1e9 }, "config.json: intermediate_size is 1000000000, over the limit of 16384"],
  [{ image_size: 100_000, patch_size: 4 }, "config.json: image_size is 100000, over the limit of 1024"],
  [{ num_channels: 64 }, "config.json: num_channels is 64, over the limit of 4"],
])("config.json %j is refused before any tensor is read", async (extra, message) => {
  const dir = writeCheckpoint(fresh(), hfTensors(TINY, w, "vit"), hfConfig(TINY, extra), VIT_PREPROCESSOR);
  expect(await refusal(dir)).toContain(message);
});

test("sizes within the limits whose payload is not: the payload and its limit", async () => {
  const config = hfConfig(TINY, {
    hidden_size: 4096,
    num_attention_heads: 32,
    intermediate_size: 16384,
    num_hidden_layers: 8,
  });
  const message = await refusal(writeCheckpoint(fresh(), hfTensors(TINY, w, "vit"), config, VIT_PREPROCESSOR));
  expect(message).toMatch(
    /^config\.json: the int8 payload of 8px\/4 3ch, dim 4096.* is \d+ bytes \(\d+\.\d MiB\), over the limit of 120/,
  );
});

test.each([
  ["NaN", "vit.encoder.layer.1.layernorm_before.weight", NaN],
  ["Infinity", "vit.encoder.layer.0.attention.attention.key.weight", Infinity],
  ["-Infinity", "classifier.bias", -Infinity],
])("%s in %s: refused naming the tensor, and no file is left", async (_, name, value) => {
  const tensors = hfTensors(TINY, w, "vit");
  const poisoned = new Map(tensors);
  const t = tensors.get(name)!;
  const data = t.data.slice();
  data[2] = value;
  poisoned.set(name, { shape: t.shape, data });
  const dir = writeCheckpoint(fresh(), poisoned, hfConfig(TINY), VIT_PREPROCESSOR);
  const message = `model.safetensors: tensor ${name} has a non-finite value (${value}) at element 2`;
  expect(await refusal(dir)).toBe(message);
  const out = join(root, `poisoned-${n}.evit`);
  await expect(convertToFile(dir, out)).rejects.toThrow(message);
  expect(existsSync(out) || existsSync(`${out}.partial`)).toBe(false);
});
