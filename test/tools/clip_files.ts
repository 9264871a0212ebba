// CLIP's vocab.json and merges.txt built from OpenAI's merges (test/fixtures/text/clip/), as transformers'
// CLIPTokenizer builds its vocabulary: every byte's printable symbol, the same with "</w>", one token per
// merge, then <|startoftext|> and <|endoftext|>. Written apart from core/text/ so the tests do not take
// the vocabulary from the code under test; test/tools/text_goldens.py builds the same files in Python.
import { readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";

export const CLIP_FIXTURE = new URL("../fixtures/text/clip/bpe_simple_vocab_16e6.head.txt.gz", import.meta.url);

export function clipFiles(): { vocab: Record<string, number>; vocabLines: string; merges: string } {
  const lines = gunzipSync(readFileSync(CLIP_FIXTURE)).toString("utf8").split("\n");
  const merges = lines.slice(1, 49152 - 256 - 2 + 1).map((line) => line.split(" "));
  const printable: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) printable.push(b);
  for (let b = 0xa1; b <= 0xac; b++) printable.push(b);
  for (let b = 0xae; b <= 0xff; b++) printable.push(b);
  const codes = [...printable];
  let n = 0;
  for (let b = 0; b < 256; b++) if (!printable.includes(b)) codes.push(256 + n++);
  const symbols = codes.map((c) => String.fromCodePoint(c));
  const tokens = [...symbols, ...symbols.map((s) => `${s}</w>`), ...merges.map((m) => m.join(""))];
  tokens.push("<|startoftext|>", "<|endoftext|>");
  const vocab: Record<string, number> = {};
  tokens.forEach((t, i) => {
    vocab[t] = i;
  });
  return {
    vocab,
    vocabLines: tokens.map((t, i) => `${t}\t${i}`).join("\n"),
    merges: `#version: 0.2\n${merges.map((m) => m.join(" ")).join("\n")}\n`,
  };
}
