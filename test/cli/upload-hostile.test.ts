// `edgevit upload` refuses hostile and non-finite bundles the Worker would refuse, from the header first.
import { afterAll, expect, test } from "vitest";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { checkBundle } from "../../cli/upload.ts";
import { SMALL_CONFIG, randomBundle, selfConsistentHead, withHeader } from "../worker/bundles.ts";

const dir = mkdtempSync(join(tmpdir(), "edgevit-upload-hostile-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, bytes: Uint8Array): string {
  const path = join(dir, name);
  writeFileSync(path, bytes);
  return path;
}

const good = randomBundle("upload-hostile", 9);

test.each([
  [
    "layers 1e6",
    withHeader(good, (h) => (h.config.layers = 1_000_000)),
    /config\.layers is 1000000, over the limit of 64/,
  ],
  [
    "classes 1e7",
    withHeader(good, (h) => (h.config.classes = 1e7)),
    /config\.classes is 10000000, over the limit of 32768/,
  ],
  [
    "a self-consistent 1.6 GB header",
    selfConsistentHead({
      ...SMALL_CONFIG,
      imageSize: 224,
      patchSize: 16,
      dim: 4096,
      heads: 32,
      hidden: 16384,
      layers: 8,
    }),
    /header\.payload\.length is \d+ bytes \(1\d{3}\.\d MiB\), over the limit of 120\.0 MiB/,
  ],
  [
    "a header that declares more payload than the file has",
    withHeader(good, (h) => (h.preprocessing.imageMean = [0.4, 0.5, 0.5]), new Uint8Array(1000)),
    /bundle payload ended after 1000 of \d+ bytes/,
  ],
  [
    "NaN weights",
    randomBundle(
      "upload-nan",
      9,
      SMALL_CONFIG,
      (t) => ((t.get("encoder.layer.0.layernorm_before.bias") as Float32Array)[1] = NaN),
    ),
    /tensor encoder\.layer\.0\.layernorm_before\.bias has a non-finite value \(NaN\) at element 1/,
  ],
  [
    "Inf weights",
    randomBundle("upload-inf", 9, SMALL_CONFIG, (t) => ((t.get("classifier.bias") as Float32Array)[0] = Infinity)),
    /tensor classifier\.bias has a non-finite value \(Infinity\) at element 0/,
  ],
  ["an empty file", new Uint8Array(0), /bundle ended after 0 bytes/],
])("refuses %s", (_, bytes, message) => {
  expect(() => checkBundle(file("hostile.evit", bytes))).toThrow(message);
});
