#!/usr/bin/python3
"""Reference token ids for core/text/, written from the tokenizers' own sources and not from core/text/.

CLIP: the pipeline of transformers' CLIPTokenizerFast, which AutoTokenizer returns for openai/clip-*
(transformers' convert_slow_tokenizer.py CLIPConverter, the tokenizer.json the hub ships): normalizer
NFC, Replace(\\s+ -> " "), Lowercase (Rust's char::to_lowercase, one character at a time); the special
tokens found in the normalized text; pre-tokenizer Split(the CLIP regex, Removed, invert) then ByteLevel
(no prefix space, no regex); BPE with end_of_word_suffix "</w>", merged as the Rust crate's
word.rs merge_all does (a heap of (rank, position)); RobertaProcessing adds <|startoftext|> and
<|endoftext|>; truncation to 77 keeps the end token; padding to 77 with the pad token. The `regex`
module's \\s is Unicode White_Space, as Oniguruma's (the Rust crate's regex engine) is.
vocab.json and merges.txt are built from OpenAI's bpe_simple_vocab_16e6.txt.gz as transformers'
CLIPTokenizer and the hub's files are (bytes_to_unicode, then 48,894 merges).

SentencePiece: Google's own sentencepiece (Debian's python3-sentencepiece), plain encode.

SigLIP: transformers' SiglipTokenizer (models/siglip/tokenization_siglip.py) around sentencepiece with
add_dummy_prefix switched off in the model's normalizer spec: "▁" + text with "▁" replaced by " ",
per-character lowercasing outside special tokens (PreTrainedTokenizer.tokenize with do_lower_case), a
split on the special tokens that strips whitespace beside them (lstrip/rstrip AddedTokens), then for
each piece canonicalize_text (string.punctuation removed, \\s+ -> " ", strip) and sentencepiece on
"<unk>" + text with the "<unk>" pieces dropped; </s> appended unless already last, truncation to 64
keeping it, padding to 64 with </s>.

Writes test/goldens/text/{clip,spiece,siglip}.json.
Run: /usr/bin/python3 test/tools/text_goldens.py
"""
import gzip
import hashlib
import heapq
import json
import os
import re
import string
import unicodedata

import regex
import sentencepiece as spm
from sentencepiece import sentencepiece_model_pb2 as model_pb2

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FIXTURES = os.path.join(ROOT, "test", "fixtures", "text")
OUT = os.path.join(ROOT, "test", "goldens", "text")

LONG = "a very long caption about a red bicycle leaning on a wall " * 12

CORPUS = [
    "",
    " ",
    "   \t\n  ",
    "x",
    "a photo of a cat",
    "A Photo Of A CAT",
    "Hello, world!",
    "it's a dog's life; we're sure they'll've done it, I'd say",
    "I'M HERE AND YOU'RE THERE",
    "don't rock'n'roll",
    "\u2018curly\u2019 quotes and \u201cdouble\u201d ones",
    "3.14159 and 2,000,000 and 1st 2nd 3rd",
    "2023-12-31T23:59:59Z",
    "caf\u00e9 na\u00efve r\u00e9sum\u00e9 fa\u00e7ade",
    "cafe\u0301 with a combining accent",
    "\u01c4 \u01c5 \u01c6 \u01f1",
    "\u039f\u0394\u039f\u03a3 \u03a3\u03af\u03c3\u03c5\u03c6\u03bf\u03c2 \u039f\u0394\u039f\u03a3.",
    "\u0130stanbul and DIYARBAKIR",
    "Stra\u00dfe STRASSE \u1e9e",
    "emoji \U0001f600\U0001f389\U0001f44d\U0001f3fd family \U0001f468\u200d\U0001f469\u200d\U0001f467 flag \U0001f1eb\U0001f1f7",
    "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8",
    "\u4e2d\u6587\u5b57\u7b26\u6d4b\u8bd5 \u4e00\u53ea\u732b",
    "\ud55c\uad6d\uc5b4 \ud14d\uc2a4\ud2b8",
    "\u041f\u0440\u0438\u0432\u0435\u0442, \u043c\u0438\u0440!",
    "\u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645",
    "\uff26\uff35\uff2c\uff2c\u3000\uff37\uff29\uff24\uff34\uff28\u3000\uff11\uff12\uff13",
    "\ufb01ne \ufb02ow \u2460 x\u00b2 \u2153",
    "tabs\tand\nnewlines\r\nand\u00a0nbsp\u2003em\u3000ideographic",
    "multiple     spaces    here",
    "   leading and trailing   ",
    "punctuation!!! ??? ... --- *** (brackets) [square] {curly}",
    "<html>&amp;</html> a&b",
    "email@example.com https://example.com/path?q=1&r=2#frag",
    "snake_case, kebab-case and CamelCase",
    "zero\u200bwidth joiner\u200dhere",
    "\u0085next line and \x1cfile separator\x1f",
    "\ufeffbyte order mark",
    "\u2581already underlined \u2581 word",
    "<|startoftext|>hello<|endoftext|> world",
    "a photo of a </s> dog <unk> here",
    "</S> and <UNK> uppercased",
    "a photo of a {}.",
    "<img> a picture",
    "supercalifragilisticexpialidocious " * 3,
    "1234567890" * 9,
    LONG,
    "\U0001f600" * 40,
]


# ---- CLIP ----


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("\u00a1"), ord("\u00ac") + 1))
    bs += list(range(ord("\u00ae"), ord("\u00ff") + 1))
    cs = bs[:]
    n = 0
    for b in range(2**8):
        if b not in bs:
            bs.append(b)
            cs.append(2**8 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def clip_files():
    with gzip.open(os.path.join(FIXTURES, "clip", "bpe_simple_vocab_16e6.head.txt.gz")) as f:
        lines = f.read().decode("utf-8").split("\n")
    merges = [tuple(m.split()) for m in lines[1 : 49152 - 256 - 2 + 1]]
    vocab = list(bytes_to_unicode().values())
    vocab = vocab + [v + "</w>" for v in vocab]
    vocab += ["".join(m) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    encoder = {v: i for i, v in enumerate(vocab)}
    merges_txt = "#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n"
    return encoder, merges, merges_txt


CLIP_SPLIT = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""")
CLIP_SPECIAL = regex.compile(r"(<\|startoftext\|>|<\|endoftext\|>)")


def bpe_heap(symbols, merge_map):
    """tokenizers' word.rs merge_all: pop the lowest (rank, position), skip stale entries."""
    ids = list(symbols)
    nxt = list(range(1, len(ids))) + [-1]
    prv = list(range(-1, len(ids) - 1))
    alive = [True] * len(ids)
    heap = []
    for i in range(len(ids) - 1):
        m = merge_map.get((ids[i], ids[i + 1]))
        if m:
            heapq.heappush(heap, (m[0], i, m[1]))
    while heap:
        rank, pos, new_id = heapq.heappop(heap)
        if not alive[pos] or nxt[pos] == -1:
            continue
        right = nxt[pos]
        m = merge_map.get((ids[pos], ids[right]))
        if m is None or m[1] != new_id:
            continue
        ids[pos] = new_id
        alive[right] = False
        nxt[pos] = nxt[right]
        if nxt[pos] != -1:
            prv[nxt[pos]] = pos
        if prv[pos] != -1:
            m = merge_map.get((ids[prv[pos]], ids[pos]))
            if m:
                heapq.heappush(heap, (m[0], prv[pos], m[1]))
        if nxt[pos] != -1:
            m = merge_map.get((ids[pos], ids[nxt[pos]]))
            if m:
                heapq.heappush(heap, (m[0], pos, m[1]))
    return [ids[i] for i in range(len(ids)) if alive[i]]


def clip_reference(encoder, merges):
    byte_encoder = bytes_to_unicode()
    merge_map = {}
    for rank, (a, b) in enumerate(merges):
        merge_map[(encoder[a], encoder[b])] = (rank, encoder[a + b])

    def encode(text):
        t = unicodedata.normalize("NFC", text)
        t = regex.sub(r"\s+", " ", t)
        t = "".join(c.lower() for c in t)
        ids = []
        for part in CLIP_SPECIAL.split(t):
            if part in ("<|startoftext|>", "<|endoftext|>"):
                ids.append(encoder[part])
                continue
            for word in CLIP_SPLIT.findall(part):
                chars = [byte_encoder[b] for b in word.encode("utf-8")]
                chars[-1] += "</w>"
                ids += bpe_heap([encoder[c] for c in chars], merge_map)
        ids = [encoder["<|startoftext|>"]] + ids[: 77 - 2] + [encoder["<|endoftext|>"]]
        pad = encoder["<|endoftext|>"]
        return ids + [pad] * (77 - len(ids)), [1] * len(ids) + [0] * (77 - len(ids))

    return encode


# ---- SentencePiece and SigLIP ----

PYTHON_WS = "".join(chr(c) for c in range(0x110000) if chr(c).isspace())


def siglip_reference(model_path, max_length=64):
    with open(model_path, "rb") as f:
        proto = model_pb2.ModelProto.FromString(f.read())
    override = model_pb2.NormalizerSpec()
    override.add_dummy_prefix = False
    proto.normalizer_spec.MergeFrom(override)
    sp = spm.SentencePieceProcessor()
    sp.LoadFromSerializedProto(proto.SerializeToString())
    eos, unk, pad = "</s>", "<unk>", "</s>"
    specials = [eos, unk]
    unk_length = len(sp.encode(unk, out_type=str))
    split_pattern = re.compile("(" + "|".join(re.escape(s) for s in specials) + ")")
    lower_pattern = re.compile(r"(" + r"|".join(re.escape(s) for s in specials) + r")|(.+?)")

    def canonicalize(text):
        text = text.translate(str.maketrans("", "", string.punctuation))
        text = re.sub(r"\s+", " ", text)
        return text.strip()

    def sp_tokenize(text):
        text = canonicalize(text)
        tokens = sp.encode(unk + text, out_type=str)
        return tokens[unk_length:] if len(tokens) >= unk_length else tokens

    def tokenize(text):
        text = "\u2581" + text.replace("\u2581", " ")
        text = lower_pattern.sub(lambda m: m.groups()[0] or m.groups()[1].lower(), text)
        chunks = [c for c in split_pattern.split(text)]
        for i, chunk in enumerate(chunks):
            if chunk in specials:
                if i + 1 < len(chunks) and chunks[i + 1]:
                    chunks[i + 1] = chunks[i + 1].lstrip()
                if i > 0 and chunks[i - 1]:
                    chunks[i - 1] = chunks[i - 1].rstrip()
        tokens = []
        for chunk in chunks:
            if not chunk:
                continue
            tokens += [chunk] if chunk in specials else sp_tokenize(chunk)
        if len(tokens) > 1 and tokens[0] == "\u2581" and tokens[1] in specials:
            tokens = tokens[1:]
        return tokens

    def encode(text):
        ids = [sp.piece_to_id(t) for t in tokenize(text)]
        ids = ids[: max_length - 1]
        eos_id = sp.piece_to_id(eos)
        if not ids or ids[-1] != eos_id:
            ids.append(eos_id)
        pad_id = sp.piece_to_id(pad)
        return ids + [pad_id] * (max_length - len(ids)), [1] * len(ids) + [0] * (max_length - len(ids))

    return encode


def sha256(text):
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def main():
    os.makedirs(OUT, exist_ok=True)

    encoder, merges, merges_txt = clip_files()
    assert len(encoder) == 49408, len(encoder)
    vocab_lines = "\n".join(f"{token}\t{i}" for token, i in sorted(encoder.items(), key=lambda e: e[1]))
    clip = clip_reference(encoder, merges)
    cases = []
    for text in CORPUS:
        ids, mask = clip(text)
        cases.append({"text": text, "input_ids": ids, "attention_mask": mask})
    write("clip.json", {
        "vocab_size": len(encoder),
        "vocab_sha256": sha256(vocab_lines),  # "token\tid" lines in id order
        "merges_sha256": sha256(merges_txt),
        "max_length": 77,
        "cases": cases,
    })

    models = {}
    for name in ("siglip-like", "features"):
        sp = spm.SentencePieceProcessor(model_file=os.path.join(FIXTURES, "spiece", f"{name}.model"))
        models[name] = [{"text": t, "ids": sp.encode(t)} for t in CORPUS]
    write("spiece.json", {"sentencepiece": spm.__version__, "models": models})

    siglip = siglip_reference(os.path.join(FIXTURES, "spiece", "siglip-like.model"))
    cases = []
    for text in CORPUS:
        ids, mask = siglip(text)
        cases.append({"text": text, "input_ids": ids, "attention_mask": mask})
    write("siglip.json", {"model": "siglip-like.model", "max_length": 64, "cases": cases})


def write(name, value):
    with open(os.path.join(OUT, name), "w", encoding="utf-8") as f:
        json.dump(value, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")
    print("wrote", name)


if __name__ == "__main__":
    main()
