#!/usr/bin/python3
"""Trains the small SentencePiece unigram models in test/fixtures/text/spiece/ with Google's own trainer
(Debian's python3-sentencepiece).

SigLIP's real spiece.model is not published under an open licence where this project can fetch it, so
the tests use models trained here, on the project's own documentation, in SigLIP's layout: unigram,
the default nmt_nfkc normalizer (a precompiled charsmap, as SigLIP's has), <pad> 0, </s> 1, <unk> 2 and
no <s>, as T5-style vocabularies number them.

- siglip-like.model: that layout and nothing else.
- features.model: the same plus a user-defined symbol and byte fallback, which SigLIP's does not use but
  any spiece.model may, so that the parser and the encoder are checked on them too.

Training is not bit-reproducible across sentencepiece versions; the committed models are the fixtures
and test/tools/text_goldens.py computes the reference ids from them.
Run: /usr/bin/python3 test/tools/train_spiece.py
"""
import glob
import io
import os

import sentencepiece as spm

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "test", "fixtures", "text", "spiece")


def sentences():
    files = [os.path.join(ROOT, "README.md"), os.path.join(ROOT, "BENCHMARKS.md")]
    files += sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))
    lines = []
    for path in files:
        with open(path, encoding="utf-8") as f:
            lines += [line.strip() for line in f if line.strip()]
    return lines


def train(name, vocab_size=1200, **extra):
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences()),
        model_writer=model,
        model_type="unigram",
        vocab_size=vocab_size,
        hard_vocab_limit=False,
        character_coverage=1.0,
        pad_id=0,
        eos_id=1,
        unk_id=2,
        bos_id=-1,
        num_threads=1,
        minloglevel=2,
        **extra,
    )
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(model.getvalue())
    print(name, len(model.getvalue()), "bytes")


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    train("siglip-like.model")
    train("features.model", user_defined_symbols=["<img>"], byte_fallback=True, vocab_size=900)
