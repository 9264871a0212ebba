// Converting a vision-language checkpoint with --lm-embeddings: the LLM's input embedding table as the
// "lm_embeddings" section (int8 rows, each within half a step of the checkpoint's float32 row), the
// tokenizer's strings as text, left out by default, refused for a checkpoint without an LLM.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { crc32 } from "node:zlib";
import { afterAll, describe, expect, test } from "vitest";
import { NearestRows } from "../../core/answers/nearest.ts";
import { tokenStrings } from "../../core/bundle/embeddings.ts";
import type { EmbeddingsSection } from "../../core/bundle/format.ts";
import { readBundle } from "../../core/bundle/reader.ts";
import { vocabularyStrings } from "../../core/convert/embeddings.ts";
import { ConvertError, convertDirectory } from "../../models/convert-folder.ts";
import { openCheckpoint } from "../../models/safetensors.ts";
import { makeTower } from "../../models/tools/make-random-tower.ts";

const scratch = mkdtempSync(join(tmpdir(), "edgevit-lm-embeddings-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function checkpoint(preset: string, textEmbeddings: boolean): string {
  const dir = join(scratch, `${preset}-${textEmbeddings}`);
  mkdirSync(dir, { recursive: true });
  const files = makeTower({ preset, tiny: true, seed: 2, dtype: "F32", inputs: 1, textEmbeddings });
  for (const [name, bytes] of Object.entries(files)) writeFileSync(join(dir, name), bytes);
  return dir;
}

async function floatTable(dir: string, name: string): Promise<Float32Array> {
  const ckpt = await openCheckpoint(dir);
  try {
    return await ckpt.read(name);
  } finally {
    await ckpt.close();
  }
}

// The section's tensors, by name, from a whole bundle.
function sectionTensors(bundle: Uint8Array, section: EmbeddingsSection): Map<string, Uint8Array> {
  return new Map(
    section.tensors.map((t) => [t.name, bundle.slice(section.offset + t.offset, section.offset + t.offset + t.bytes)]),
  );
}

describe("--lm-embeddings", () => {
  test.each([
    ["smolvlm-256m-instruct", "model.text_model.embed_tokens.weight", 256],
    ["llava-1.5-projector", "language_model.model.embed_tokens.weight", 32064],
  ])("%s: %s as int8 rows with their scales, the tokens' strings as text", async (preset, tableName, vocab) => {
    const dir = checkpoint(preset, true);
    const bundle = await convertDirectory(dir, { lmEmbeddings: true, convertedAt: "2026-12-01T00:00:00Z" });
    const { header } = readBundle(bundle, crc32);
    expect(header.version).toBe(3);
    const tokenizer = readFileSync(join(dir, "tokenizer.json"));
    expect(header.source.files["tokenizer.json"]).toEqual({
      bytes: tokenizer.length,
      crc32: (crc32(tokenizer) >>> 0).toString(16).padStart(8, "0"),
    });
    const section = header.sections?.find((s) => s.kind === "lm-embeddings") as EmbeddingsSection;
    expect(section).toMatchObject({ name: "lm_embeddings", config: { vocab, dim: 48 } });
    const tensors = sectionTensors(bundle, section);
    const q = new Int8Array(tensors.get("embed_tokens.weight")!.buffer);
    const scale = new Float32Array(tensors.get("embed_tokens.scale")!.buffer);
    const want = await floatTable(dir, tableName);
    // the worst row against its own bound (half a step), rather than an expect per element
    let worstScale = 0;
    let worstStep = 0;
    for (let r = 0; r < vocab; r++) {
      const row = want.subarray(r * 48, (r + 1) * 48);
      let maxAbs = 0;
      for (let d = 0; d < 48; d++) maxAbs = Math.max(maxAbs, Math.abs(row[d]));
      worstScale = Math.max(worstScale, Math.abs(scale[r] - maxAbs / 127) / (maxAbs / 127));
      for (let d = 0; d < 48; d++)
        worstStep = Math.max(worstStep, Math.abs(q[r * 48 + d] * scale[r] - row[d]) / scale[r]);
    }
    expect(worstScale).toBeLessThan(1e-6);
    expect(worstStep).toBeLessThanOrEqual(0.5 + 1e-5);
    const strings = tokenStrings(new Uint32Array(tensors.get("tokens.offsets")!.buffer), tensors.get("tokens.text")!, [
      0,
      8,
      9,
      19,
      vocab - 1,
    ]);
    // byte-level tokens as the text they stand for ("Ġcat0" -> " cat0", "ĠÃ©tÃ©0" -> " été0")
    expect(strings).toEqual([" cat0", " été0", " über0", " über1", "<image>"]);
  });

  test("off by default: the bundle is the image tower and connector alone, as before", async () => {
    const dir = checkpoint("smolvlm-256m-instruct", true);
    const plain = await convertDirectory(dir, { convertedAt: "2026-12-01T00:00:00Z" });
    const { header } = readBundle(plain, crc32);
    expect(header.version).toBe(2);
    expect(header.sections).toBeUndefined();
    expect(header.source.files["tokenizer.json"]).toBeUndefined();
  });

  test("without tokenizer.json: the table alone, ids without strings", async () => {
    const dir = checkpoint("smolvlm-256m-instruct", true);
    rmSync(join(dir, "tokenizer.json"));
    const { header } = readBundle(await convertDirectory(dir, { lmEmbeddings: true }), crc32);
    const section = header.sections![0] as EmbeddingsSection;
    expect(section.config.tokensBytes).toBe(0);
    expect(section.tensors.map((t) => t.name)).toEqual(["embed_tokens.weight", "embed_tokens.scale"]);
  });

  test("refused: a checkpoint without an LLM, or without its table", async () => {
    await expect(
      convertDirectory(checkpoint("siglip-base-patch16-224", false), { lmEmbeddings: true }),
    ).rejects.toThrow(/only a vision-language model .* has an LLM embedding table/);
    await expect(convertDirectory(checkpoint("smolvlm-256m-instruct", false), { lmEmbeddings: true })).rejects.toThrow(
      ConvertError,
    );
  });
});

describe("vocabularyStrings", () => {
  test("SentencePiece pieces with their ▁ as a space; Unigram's [piece, score] list; added tokens as written", () => {
    const unigram = {
      model: {
        type: "Unigram",
        vocab: [
          ["<unk>", 0],
          ["\u2581cat", -1],
          ["s", -2],
        ],
      },
      added_tokens: [{ id: 3, content: "<image>" }],
    };
    expect(vocabularyStrings(unigram, 5, "test")).toEqual(["<unk>", " cat", "s", "<image>", ""]);
    expect(() => vocabularyStrings({ model: { vocab: { a: 9 } } }, 5, "test")).toThrow(/past the LLM's 5 rows/);
  });
});

describe("NearestRows", () => {
  test("the k rows of highest cosine, whatever the pieces the table comes in; a zero row scores 0", () => {
    const dim = 7;
    const rows = Int8Array.from({ length: 40 * dim }, (_, i) => ((i * 37) % 255) - 127);
    rows.fill(0, 5 * dim, 6 * dim);
    const queries = Float32Array.from({ length: 3 * dim }, (_, i) => Math.sin(i * 1.3));
    const whole = new NearestRows(queries, dim, 4);
    whole.add(rows);
    const pieces = new NearestRows(queries, dim, 4);
    for (let r = 0; r < 40; r += 6) pieces.add(rows.subarray(r * dim, Math.min(40, r + 6) * dim));
    expect(pieces.result()).toEqual(whole.result());
    for (let q = 0; q < 3; q++) {
      const query = queries.subarray(q * dim, (q + 1) * dim);
      const cos = (r: number) => {
        const row = Array.from(rows.subarray(r * dim, (r + 1) * dim));
        const n = Math.hypot(...row);
        return n === 0 ? 0 : row.reduce((a, x, d) => a + x * query[d], 0) / (n * Math.hypot(...query));
      };
      const want = Array.from({ length: 40 }, (_, r) => r).sort((a, b) => cos(b) - cos(a) || a - b);
      expect(Array.from(whole.result().ids.subarray(q * 4, q * 4 + 4))).toEqual(want.slice(0, 4));
      whole
        .result()
        .cosines.subarray(q * 4, q * 4 + 4)
        .forEach((c, j) => expect(c).toBeCloseTo(cos(want[j]), 5));
    }
  });
});
