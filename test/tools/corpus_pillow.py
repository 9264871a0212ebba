"""What Pillow 9.4 makes of every file under the given folders, the way transformers' load_image opens an
upload: Image.open(f), ImageOps.exif_transpose(im), .convert("RGB"). Run with Debian's Python (it has
Pillow 9.4):

    /usr/bin/python3 test/tools/corpus_pillow.py -o .cache/corpus/pillow.json DIR...

Writes {path: {format, mode, width, height, sha256}} for a file Pillow answers (the SHA-256 of the
[height][width][3] bytes after the transpose), {error} for one it refuses (the exception's class and
message). test/tools/corpus.ts compares edgevit's answers with it.
"""

import argparse
import hashlib
import json
import os
import pathlib
import re
import warnings

import PIL
from PIL import Image, ImageOps


def answer(path: pathlib.Path) -> dict:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as im:
                fmt, mode = im.format, im.mode
                rgb = ImageOps.exif_transpose(im).convert("RGB")
    except Exception as e:  # Pillow's refusal, whatever its class
        message = re.sub(r" at 0x[0-9a-f]+", "", str(e)).replace(os.getcwd() + os.sep, "")
        return {"error": f"{type(e).__name__}: {message}"}
    sha = hashlib.sha256(rgb.tobytes()).hexdigest()
    return {"format": fmt, "mode": mode, "width": rgb.width, "height": rgb.height, "sha256": sha}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("dirs", nargs="+", type=pathlib.Path)
    parser.add_argument("-o", "--out", type=pathlib.Path, required=True)
    args = parser.parse_args()
    results = {}
    for d in args.dirs:
        for path in sorted(p for p in d.rglob("*") if p.is_file() and p.suffix not in (".md", ".txt")):
            results[str(path)] = answer(path)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"pillow": PIL.__version__, "files": results}, indent=1) + "\n")
    print(f"{len(results)} files -> {args.out}")


if __name__ == "__main__":
    main()
