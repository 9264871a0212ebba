// The serialised tokenizers: the same ids after a round trip, compact, and refused when damaged; the
// loaders' refusals of broken checkpoint files.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  TokenizerError,
  loadClipTokenizer,
  loadSentencePiece,
  loadSiglipTokenizer,
  tokenizerFromBytes,
  tokenizerToBytes,
} from "../../../core/text/index.ts";
import { clipFiles } from "../../tools/clip_files.ts";

const golden = (name: string) =>
  JSON.parse(readFileSync(new URL(`../../goldens/text/${name}`, import.meta.url), "utf8"));
const spiece = (name: string) => readFileSync(new URL(`../../fixtures/text/spiece/${name}.model`, import.meta.url));

describe("serialised tokenizers", () => {
  const files = clipFiles();
  const vocabJson = JSON.stringify(files.vocab);

  it("CLIP: the same ids after a round trip, in a third of vocab.json + merges.txt", () => {
    const config = { model_max_length: 77, pad_token: "<|endoftext|>" };
    const tokenizer = loadClipTokenizer({ vocab: vocabJson, merges: files.merges, config });
    const bytes = tokenizerToBytes(tokenizer);
    expect(bytes.length).toBeLessThan((vocabJson.length + files.merges.length) / 3);
    // A copy at an odd offset: the reader must not rely on the bundle aligning it.
    const shifted = new Uint8Array(bytes.length + 1);
    shifted.set(bytes, 1);
    const back = tokenizerFromBytes(shifted.subarray(1));
    expect(back.family).toBe("clip");
    expect(tokenizerToBytes(back)).toEqual(bytes);
    const texts = golden("clip.json").cases.map((c: { text: string }) => c.text);
    expect(back.encode(texts)).toEqual(tokenizer.encode(texts));
  });

  it("SigLIP: the same ids after a round trip", () => {
    const tokenizer = loadSiglipTokenizer({ spiece: spiece("siglip-like"), config: { do_lower_case: true } });
    const bytes = tokenizerToBytes(tokenizer);
    const back = tokenizerFromBytes(bytes);
    expect(back.family).toBe("siglip");
    expect(tokenizerToBytes(back)).toEqual(bytes);
    const reference = golden("siglip.json");
    const { inputIds } = back.encode(reference.cases.map((c: { text: string }) => c.text));
    reference.cases.forEach((c: { input_ids: number[] }, i: number) => expect([...inputIds[i]]).toEqual(c.input_ids));
  });

  it("refuses a wrong magic, a newer version, a cut file and a table out of range", () => {
    const bytes = tokenizerToBytes(loadSiglipTokenizer({ spiece: spiece("siglip-like") }));
    const damaged = (at: number, value: number) => {
      const copy = bytes.slice();
      copy[at] = value;
      return copy;
    };
    expect(() => tokenizerFromBytes(damaged(0, 0x58))).toThrow(/does not start with "EVTK"/);
    expect(() => tokenizerFromBytes(damaged(4, 2))).toThrow(/version 2/);
    expect(() => tokenizerFromBytes(bytes.subarray(0, bytes.length - 1000))).toThrow(TokenizerError);
    const clip = tokenizerToBytes(loadClipTokenizer({ vocab: vocabJson, merges: files.merges }));
    const view = new DataView(clip.buffer);
    const headerEnd = (12 + view.getUint32(8, true) + 3) & ~3;
    view.setInt32(headerEnd, 60000, true); // the first byte symbol's id, past the vocabulary
    expect(() => tokenizerFromBytes(clip)).toThrow(/below the vocabulary/);
  });
});

describe("checkpoint files that cannot be read", () => {
  const files = clipFiles();

  it("CLIP: a merge whose token is not in vocab.json, vocab.json that is not JSON", () => {
    const merges = `${files.merges}`.replace("\ni n\n", "\ni zz-not-a-token\n");
    expect(() => loadClipTokenizer({ vocab: files.vocab, merges })).toThrow(/merges.txt line 2: "zz-not-a-token"/);
    expect(() => loadClipTokenizer({ vocab: "{", merges: files.merges })).toThrow(/vocab.json is not JSON/);
    const config = { pad_token: "<pad>" };
    expect(() => loadClipTokenizer({ vocab: files.vocab, merges: files.merges, config })).toThrow(/"<pad>"/);
  });

  it("SentencePiece: a cut protobuf, a BPE model", () => {
    const bytes = spiece("siglip-like");
    expect(() => loadSentencePiece(bytes.subarray(0, 1000))).toThrow(TokenizerError);
    // TrainerSpec (field 2) with model_type (field 3) = BPE (2), appended: the last value read wins.
    const bpe = new Uint8Array([...bytes, 0x12, 0x02, 0x18, 0x02]);
    expect(() => loadSentencePiece(bpe)).toThrow(/model type 2 is not unigram/);
  });
});

describe("speed", () => {
  it("CLIP loads its tables from bytes and tokenizes 256 labels well within a request's budget", () => {
    const files = clipFiles();
    const bytes = tokenizerToBytes(loadClipTokenizer({ vocab: files.vocab, merges: files.merges }));
    let t = performance.now();
    const tokenizer = tokenizerFromBytes(bytes);
    const load = performance.now() - t;
    const labels = Array.from({ length: 256 }, (_, i) => `a photo of a ${i % 2 ? "tabby" : "siamese"} cat number ${i}`);
    t = performance.now();
    tokenizer.encode(labels);
    const encode = performance.now() - t;
    // Generous bounds for a shared 2-core machine; typical figures are a few milliseconds each.
    expect(load).toBeLessThan(500);
    expect(encode).toBeLessThan(500);
  });
});
