// Sections (format version 3): a text tower after the image payload, each at its own 64-aligned offset with
// its own CRC-32, readable alone by a byte-range read; what the reader refuses about them; version 3 beside
// version 2's connector fields. (The text engine's slots are tested with the others in layout.test.ts.)
import { crc32 } from "node:zlib";
import { describe, expect, test } from "vitest";
import { BundleError, type BundleParts, type ModelConfig } from "../../../core/bundle/format.ts";
import { layout } from "../../../core/bundle/layout.ts";
import { checkSectionBytes, parsePrefix, readBundle } from "../../../core/bundle/reader.ts";
import { type TextConfig, poolIndex, textLayout } from "../../../core/bundle/text.ts";
import { encodeBundle, encodeHead } from "../../../core/bundle/writer.ts";
import { TINY_CONFIG, TINY_PREPROCESSING } from "./tiny.ts";

const image: ModelConfig = { ...TINY_CONFIG, layers: 1, classes: 0, family: "clip" };

const text: TextConfig = {
  vocab: 50,
  positions: 7,
  dim: 8,
  heads: 2,
  hidden: 16,
  layers: 2,
  eps: 1e-5,
  hiddenAct: "quick_gelu",
  causal: true,
  pooling: "argmax",
  eosTokenId: 2,
  projection: 4,
  logitScale: 4.6052,
  logitBias: 0,
  tokenizerBytes: 37,
};

function parts(sections = true): BundleParts {
  return {
    name: "two-towers",
    config: image,
    preprocessing: { ...TINY_PREPROCESSING, resample: 3 },
    labels: [],
    source: {
      layout: "hf-clip",
      checkpoint: "t",
      files: {},
      dtype: "F32",
      converter: "t",
      convertedAt: "2026-01-01T00:00:00Z",
    },
    ...(sections ? { sections: [{ name: "text", kind: "clip-text" as const, config: text }] } : {}),
  };
}

// Small finite values in every f32 tensor, a counter in the others.
function filled(entries: { name: string; bytes: number }[]): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  entries.forEach(({ name, bytes }, n) => {
    const b = new Uint8Array(bytes);
    for (let i = 0; i < b.length; i += 4)
      b.set(new Uint8Array(Float32Array.of((n + i) / 1000).buffer).subarray(0, Math.min(4, b.length - i)), i);
    out.set(name, b);
  });
  return out;
}

const bundle = () => encodeBundle(parts(), filled(layout(image).tensors), crc32, [filled(textLayout(text).tensors)]);

describe("sections", () => {
  test("version 3: the text section after the payload, 64-aligned, readable alone by its byte range", () => {
    const bytes = bundle();
    const { header, payload } = readBundle(bytes, crc32);
    expect(header.version).toBe(3);
    const [s] = header.sections!;
    expect(s.offset % 64).toBe(0);
    expect(s.offset + s.length).toBe(bytes.length);
    expect(payload.length).toBe(header.payload.length);
    // the section's own bytes carry its CRC-32
    checkSectionBytes(s, bytes.subarray(s.offset, s.offset + s.length), crc32);
    // a bundle without sections is what it was: version 2 for a tower
    const alone = readBundle(encodeBundle(parts(false), filled(layout(image).tensors), crc32), crc32);
    expect(alone.header.version).toBe(2);
    expect(alone.header.sections).toBeUndefined();
    expect(alone.payload).toEqual(payload);
  });

  test("refusals: sections in a version 2 header, a misplaced or mis-sized section, bytes past the file", () => {
    const bytes = bundle();
    const result = parsePrefix(bytes);
    if ("need" in result) throw new Error("header");
    const { header, payloadOffset } = result;
    const reencode = (edit: (h: typeof header) => void) => {
      const h = structuredClone(header);
      edit(h);
      const head = encodeHead(h);
      const out = new Uint8Array(head.length + bytes.length - payloadOffset);
      out.set(head);
      out.set(bytes.subarray(payloadOffset), head.length);
      return out;
    };
    const code = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        expect(e).toBeInstanceOf(BundleError);
        return (e as BundleError).message;
      }
      throw new Error("expected a BundleError");
    };
    expect(code(() => parsePrefix(reencode((h) => (h.version = 2))))).toMatch(/version 2 header cannot have sections/);
    expect(code(() => parsePrefix(reencode((h) => (h.sections![0].offset += 64))))).toMatch(
      /follows the bytes before it/,
    );
    expect(code(() => parsePrefix(reencode((h) => (h.sections![0].length += 1))))).toMatch(/its config implies/);
    expect(
      code(() => parsePrefix(reencode((h) => ((h.sections![0].config as TextConfig).pooling = "first" as never)))),
    ).toMatch(/pooling/);
    const longer = new Uint8Array(bytes.length + 1);
    longer.set(bytes);
    expect(code(() => readBundle(longer, crc32))).toMatch(/bytes past/);
  });

  test("pooled positions: the first end-of-text token, the first largest id, the last", () => {
    expect(poolIndex({ ...text, pooling: "argmax" }, [49406, 2, 500, 49407, 49407])).toBe(3);
    expect(poolIndex({ ...text, pooling: "eos", eosTokenId: 2 }, [49406, 2, 500, 49407])).toBe(1);
    expect(poolIndex({ ...text, pooling: "eos", eosTokenId: 49407 }, [300, 49406, 400])).toBe(0);
    expect(poolIndex({ ...text, pooling: "last" }, [5, 1, 1, 1])).toBe(3);
  });

  test("versions together: a connector's fields and a text section make version 3; without it, version 2", () => {
    const vlm: ModelConfig = { ...image, family: undefined, classes: 0, connector: "llava", lmDim: 12 };
    const write = (sections: boolean) =>
      encodeBundle(
        { ...parts(sections), config: vlm },
        filled(layout(vlm).tensors),
        crc32,
        sections ? [filled(textLayout(text).tensors)] : [],
      );
    const both = readBundle(write(true), crc32).header;
    expect(both.version).toBe(3);
    expect(both.config).toMatchObject({ connector: "llava", lmDim: 12 });
    expect(both.tensors.map((t) => t.name)).toContain("multi_modal_projector.linear_2.weight");
    expect(both.sections!.map((s) => s.name)).toEqual(["text"]);
    const alone = readBundle(write(false), crc32).header;
    expect(alone.version).toBe(2);
    expect(alone.tensors).toEqual(both.tensors);
    // Idefics3's tiles came with version 2 too: a classifier's version 1 header cannot have them
    const classifier: ModelConfig = { ...image, family: undefined, classes: 2 };
    const tiles = { ...parts(false).preprocessing, splitting: { longestEdge: 16, maxImageSize: 8 } };
    expect(() =>
      encodeBundle(
        { ...parts(false), config: classifier, preprocessing: tiles, labels: ["a", "b"] },
        filled(layout(classifier).tensors),
        crc32,
      ),
    ).toThrow(/a version 1 header cannot have preprocessing.splitting/);
  });
});
