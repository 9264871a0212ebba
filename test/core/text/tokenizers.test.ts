// Token ids and masks identical to the references (test/tools/text_goldens.py: transformers' CLIP fast
// pipeline written with Python's regex module, Google's sentencepiece, transformers' SiglipTokenizer
// around it) on a corpus of tricky strings.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { loadClipTokenizer } from "../../../core/text/clip.ts";
import { loadSentencePiece } from "../../../core/text/sentencepiece.ts";
import { loadSiglipTokenizer } from "../../../core/text/siglip.ts";
import { clipFiles } from "../../tools/clip_files.ts";

const golden = (name: string) =>
  JSON.parse(readFileSync(new URL(`../../goldens/text/${name}`, import.meta.url), "utf8"));
const spiece = (name: string) => readFileSync(new URL(`../../fixtures/text/spiece/${name}.model`, import.meta.url));
const sha256 = (s: string) => createHash("sha256").update(s, "utf8").digest("hex");

interface Case {
  text: string;
  input_ids: number[];
  attention_mask: number[];
}

describe("CLIP byte-level BPE", () => {
  const files = clipFiles();
  const reference = golden("clip.json");

  it("builds vocab.json and merges.txt as the reference does: 49,408 ids", () => {
    expect(Object.keys(files.vocab).length).toBe(49408);
    expect(sha256(files.vocabLines)).toBe(reference.vocab_sha256);
    expect(sha256(files.merges)).toBe(reference.merges_sha256);
  });

  it("gives the reference's ids and masks on every corpus string", () => {
    const tokenizer = loadClipTokenizer({ vocab: JSON.stringify(files.vocab), merges: files.merges });
    expect(tokenizer.maxLength).toBe(77);
    const cases: Case[] = reference.cases;
    const { inputIds, attentionMask } = tokenizer.encode(cases.map((c) => c.text));
    cases.forEach((c, i) => {
      expect([...inputIds[i]], JSON.stringify(c.text)).toEqual(c.input_ids);
      expect([...attentionMask[i]], JSON.stringify(c.text)).toEqual(c.attention_mask);
    });
  });
});

describe("SentencePiece unigram", () => {
  const reference = golden("spiece.json");
  for (const name of ["siglip-like", "features"]) {
    it(`${name}.model: sentencepiece's ids on every corpus string`, () => {
      const sp = loadSentencePiece(spiece(name));
      for (const c of reference.models[name] as { text: string; ids: number[] }[]) {
        expect(sp.encode(c.text), JSON.stringify(c.text)).toEqual(c.ids);
      }
    });
  }
});

describe("SigLIP tokenizer", () => {
  it("gives the reference's ids and masks on every corpus string, padded to 64", () => {
    const reference = golden("siglip.json");
    const tokenizer = loadSiglipTokenizer({ spiece: spiece("siglip-like") });
    expect(tokenizer.maxLength).toBe(64);
    const cases: Case[] = reference.cases;
    const { inputIds, attentionMask } = tokenizer.encode(cases.map((c) => c.text));
    cases.forEach((c, i) => {
      expect([...inputIds[i]], JSON.stringify(c.text)).toEqual(c.input_ids);
      expect([...attentionMask[i]], JSON.stringify(c.text)).toEqual(c.attention_mask);
    });
  });
});
