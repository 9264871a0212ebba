"""Progressive JPEGs that stop early, and what Pillow 9.4 makes of them, for
test/core/image/jpeg/smoothing.test.ts (libjpeg-turbo smooths the blocks of such files: jdcoefct.c
decompress_smooth_data). Written to a folder (not committed): the test runs this once into .cache/smoothing.

Pillow writes progressive JPEGs of photo-like pictures (4:2:0, 4:2:2, 4:4:4, grayscale, odd sizes, one and
two blocks wide, low and high quality, CMYK); cjpeg other sampling factors (a grayscale one declared 2x2
among them) and 16-bit quantization tables; jpegtran restart intervals and other scan scripts (spectral
selection alone, refinement of the DC only, each component's DC apart); one file has a zero where the
estimates divide. A photo and four arithmetic-coded files of test/fixtures join them. Each is cut after k
of its scans (the headers, the tables and the first k scans kept, then EOI) for every k short of the
whole, and inside each scan (libjpeg then runs out of data in that scan), and two have a restart marker or
EOI written into one scan's data (the rest of that scan is lost; after EOI, the scans after it too). For
every file and DCT scale 1, 2, 4, 8 the golden is Pillow's Image.open(f) [+ draft("RGB", size) picking
that scale] .convert("RGB").tobytes(), written raw, or Pillow's error where it raises.

    /usr/bin/python3 test/tools/smoothing_cases.py .cache/smoothing
"""

import json
import os
import random
import subprocess
import sys
import tempfile

import numpy as np
import jpeg_goldens
from jpeg_goldens import pillow
from PIL import Image


def picture(w, h, seed, mode="RGB"):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    chans = []
    for c in range(3):
        f = rng.uniform(0.02, 0.2, 4)
        v = (
            128
            + 60 * np.sin(x * f[0] + y * f[1] + c)
            + 40 * np.cos(x * f[2] - y * f[3] * 0.7)
            + np.where((x // 7 + y // 5 + c) % 4 == 0, 30, -10)
            + rng.normal(0, 12, (h, w))
        )
        chans.append(np.clip(v, 0, 255).astype(np.uint8))
    im = Image.fromarray(np.stack(chans, axis=2), "RGB")
    return im.convert("L") if mode == "L" else im


def pillow_jpeg(im, **kw):
    return jpeg_goldens.pil_jpeg(im, progressive=True, **kw)


def cjpeg(im, *args):
    """A progressive cjpeg file at cjpeg's default quality (75) unless `args` give another."""
    return jpeg_goldens.cjpeg(im, "-progressive", "-quality", "75", *args)


def zero_quant(data, zigzag):
    """The file with its first quantization table's value at `zigzag` set to 0 (libjpeg then skips smoothing)."""
    d = bytearray(data)
    i = d.index(b"\xff\xdb")
    assert d[i + 4] >> 4 == 0, "an 8-bit table"
    d[i + 5 + zigzag] = 0
    return bytes(d)


def jpegtran(data, *args):
    with tempfile.TemporaryDirectory() as d:
        src = os.path.join(d, "in.jpg")
        open(src, "wb").write(data)
        extra = []
        for i, a in enumerate(args):
            if a.startswith("scans:"):
                path = os.path.join(d, f"scans{i}.txt")
                open(path, "w").write(a[6:])
                extra += ["-scans", path]
            else:
                extra.append(a)
        return subprocess.run(["jpegtran", *extra, src], check=True, capture_output=True).stdout


def segments(d):
    """(start of the SOS marker, end of its entropy-coded data) for every scan."""
    scans = []
    i = 2
    while i < len(d) - 1:
        assert d[i] == 0xFF, i
        m = d[i + 1]
        if m == 0xD9:
            break
        length = d[i + 2] << 8 | d[i + 3]
        end = i + 2 + length
        if m == 0xDA:
            j = end
            while not (d[j] == 0xFF and d[j + 1] != 0 and not 0xD0 <= d[j + 1] <= 0xD7):
                j += 1
            scans.append((i, end, j))
            end = j
        i = end
    return scans


def cut(d, k, inside=None):
    """The file up to the end of its k-th scan (or `inside` of the way into it), then EOI."""
    start, data, end = segments(d)[k - 1]
    stop = end if inside is None else data + int((end - data) * inside)
    return d[:stop] + b"\xff\xd9"


def marker_inside(d, rng):
    """The whole file with a restart marker or EOI written into one scan's data: the scans after it go on."""
    start, data, end = segments(d)[rng.randrange(len(segments(d)))]
    p = rng.randrange(data, max(data + 1, end - 2))
    x = bytearray(d)
    x[p : p + 2] = bytes([0xFF, rng.choice([0xD0, 0xD2, 0xD5, 0xD7, 0xD9])])
    return bytes(x)


BASES = {
    "420-97x61": lambda: pillow_jpeg(picture(97, 61, 1), quality=75),
    "420-q30-64x48": lambda: pillow_jpeg(picture(64, 48, 2), quality=30),
    "422-53x35": lambda: pillow_jpeg(picture(53, 35, 3), quality=85, subsampling=1),
    "444-q95-40x33": lambda: pillow_jpeg(picture(40, 33, 4), quality=95, subsampling=0),
    "gray-45x37": lambda: pillow_jpeg(picture(45, 37, 5, "L"), quality=80),
    "gray-16x40": lambda: pillow_jpeg(picture(16, 40, 6, "L"), quality=70),
    "gray-8x30": lambda: pillow_jpeg(picture(8, 30, 7, "L"), quality=70),
    "420-24x70": lambda: pillow_jpeg(picture(24, 70, 8), quality=60),
    "420-restart-70x52": lambda: jpegtran(
        pillow_jpeg(picture(70, 52, 9), quality=75), "-progressive", "-restart", "2B"
    ),
    "gray-restart-50x41": lambda: jpegtran(
        pillow_jpeg(picture(50, 41, 10, "L")), "-progressive", "-restart", "1"
    ),
    # Spectral selection only (coefficients arrive exact), one band at a time, chroma last.
    "420-spectral-57x43": lambda: jpegtran(
        pillow_jpeg(picture(57, 43, 11), quality=75),
        "-progressive",
        "scans:0,1,2: 0-0, 0, 0;\n0: 1-2, 0, 0;\n0: 3-9, 0, 0;\n0: 10-63, 0, 0;\n1: 1-63, 0, 0;\n2: 1-63, 0, 0;\n",
    ),
    # The DC refined before any AC arrives, chroma separately.
    "444-dc-refine-33x29": lambda: jpegtran(
        pillow_jpeg(picture(33, 29, 12), quality=80, subsampling=0),
        "-progressive",
        "scans:0: 0-0, 0, 2;\n1,2: 0-0, 0, 1;\n0: 0-0, 2, 1;\n0: 0-0, 1, 0;\n1: 0-0, 1, 0;\n0: 1-63, 0, 0;\n"
        "2: 0-0, 1, 0;\n1: 1-63, 0, 0;\n2: 1-63, 0, 0;\n",
    ),
    # Sampling Pillow does not write: 4:4:0, 4:1:1, and luma sampled 2x2 beside 1x2 chroma.
    "440-cjpeg-45x50": lambda: cjpeg(picture(45, 50, 13), "-sample", "1x2"),
    "411-cjpeg-75x28": lambda: cjpeg(picture(75, 28, 14), "-sample", "4x1"),
    "mixed-cjpeg-41x45": lambda: cjpeg(picture(41, 45, 15), "-sample", "2x2,1x2,1x1"),
    "gray-2x2-cjpeg-37x45": lambda: cjpeg(picture(37, 45, 21, "L"), "-sample", "2x2"),
    # 16-bit quantization tables (quality 2 without -baseline): large estimates.
    "q2-cjpeg-48x40": lambda: cjpeg(picture(48, 40, 16), "-quality", "2"),
    "cmyk-30x26": lambda: pillow_jpeg(picture(30, 26, 17).convert("CMYK"), quality=80),
    # A zero in the luma table where the estimates divide: no smoothing.
    "zero-quant-40x32": lambda: zero_quant(pillow_jpeg(picture(40, 32, 18), quality=75), 6),
    # Each component's DC in its own scan: cut after the first, the others have no scan (no smoothing).
    "420-dc-apart-44x36": lambda: jpegtran(
        pillow_jpeg(picture(44, 36, 19), quality=75),
        "-progressive",
        "scans:0: 0-0, 0, 1;\n1: 0-0, 0, 1;\n2: 0-0, 0, 1;\n0: 1-63, 0, 0;\n1: 1-63, 0, 0;\n2: 1-63, 0, 0;\n"
        "0: 0-0, 1, 0;\n1: 0-0, 1, 0;\n2: 0-0, 1, 0;\n",
    ),
    "420-320x240": lambda: pillow_jpeg(picture(320, 240, 20), quality=85),
}
# A photo, and arithmetic-coded progressive files (jdarith.c keeps the same progression bookkeeping).
FIXTURES = os.path.join(os.path.dirname(__file__), "..", "fixtures")
for name in [
    "images/coffee-progressive.jpg",
    "jpeg/arithmetic-progressive-420-64x48.jpg",
    "jpeg/arithmetic-progressive-gray-45x30.jpg",
    "jpeg/arithmetic-progressive-restart-420-50x40.jpg",
    "jpeg/arithmetic-progressive-conditioning-40x30.jpg",
]:
    BASES[os.path.basename(name)[:-4]] = lambda name=name: open(os.path.join(FIXTURES, name), "rb").read()


def main(out):
    os.makedirs(out, exist_ok=True)
    rng = random.Random(4)
    files = {}
    for name, make in BASES.items():
        d = make()
        n = len(segments(d))
        for k in range(1, n):
            files[f"{name}-scans{k}.jpg"] = cut(d, k)
        for k in range(1, n + 1):
            files[f"{name}-inside{k}.jpg"] = cut(d, k, inside=rng.uniform(0.1, 0.9))
        for i in range(2):
            files[f"{name}-marker{i}.jpg"] = marker_inside(d, rng)
    cases = {}
    for name, d in files.items():
        path = os.path.join(out, name)
        open(path, "wb").write(d)
        entry = {"scales": {}}
        try:
            Image.open(path).convert("RGB")
        except Exception as e:
            cases[name] = {"error": str(e)}
            continue
        with Image.open(path) as im:
            entry["width"], entry["height"] = im.size
        for scale in (1, 2, 4, 8):
            rgb = pillow(path, scale)  # as test/tools/jpeg_goldens.py decodes its goldens
            expected = (-(-entry["width"] // scale), -(-entry["height"] // scale))
            if rgb.size != expected:
                raise SystemExit(f"{name}: Pillow gave {rgb.size} for scale {scale}, not {expected}")
            open(f"{path}.{scale}.rgb", "wb").write(rgb.tobytes())
            entry["scales"][str(scale)] = list(rgb.size)
        cases[name] = entry
    json.dump({"pillow": Image.__version__, "files": cases}, open(os.path.join(out, "cases.json"), "w"), indent=1)
    open(os.path.join(out, "done"), "w").write("")


if __name__ == "__main__":
    main(sys.argv[1])
