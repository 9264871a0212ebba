"""A corpus of damaged and large arithmetic-coded JPEGs for test/tools/corpus.ts, written to a folder (it is
not committed): the arithmetic fixtures of test/fixtures/jpeg and libjpeg-turbo's testimgari.jpg cut short,
with flipped bytes, with markers written into their scan data and with other DAC conditioning, and photos
of up to 1200x900 coded with cjpeg -arithmetic, moved by APP15 padding across the 64 KB reads Pillow feeds
libjpeg-turbo. Seeded: the same files on every run.

    /usr/bin/python3 test/tools/arithmetic_corpus.py .cache/corpus/arithmetic
    /usr/bin/python3 test/tools/corpus_pillow.py -o .cache/corpus/arithmetic.json .cache/corpus/arithmetic
    npx node test/tools/corpus.ts .cache/corpus/arithmetic.json
"""

import os
import random
import subprocess
import sys
import tempfile

from PIL import Image

ROOT = os.path.join(os.path.dirname(__file__), "..", "fixtures")
BASES = [
    "jpeg/arithmetic-420-20x12.jpg",
    "jpeg/arithmetic-444-33x17.jpg",
    "jpeg/arithmetic-422-restart-50x40.jpg",
    "jpeg/arithmetic-multiscan-420-40x24.jpg",
    "jpeg/arithmetic-progressive-420-64x48.jpg",
    "jpeg/arithmetic-progressive-restart-420-50x40.jpg",
    "jpeg/arithmetic-progressive-gray-45x30.jpg",
    "jpeg/arithmetic-conditioning-40x30.jpg",
    "conformance/libjpeg-turbo-testimgari.jpg",
]


def damaged(name, d, rng, out):
    sos = d.find(b"\xff\xda")
    for i, cut in enumerate(sorted(rng.sample(range(sos, len(d)), 6)) + [len(d) - 2, len(d) - 1]):
        out[f"{name}-cut{i}.jpg"] = d[:cut]
    for i in range(10):
        x = bytearray(d)
        for _ in range(rng.choice([1, 1, 2, 5])):
            x[rng.randrange(sos + 10, len(d) - 2)] = rng.randrange(256)
        out[f"{name}-flip{i}.jpg"] = bytes(x)
    for i in range(4):
        x = bytearray(d)
        p = rng.randrange(sos + 14, len(d) - 2)
        x[p : p + 2] = bytes([0xFF, rng.choice([0xD0, 0xD1, 0xD3, 0xD7, 0xD9, 0xC4, 0xFE, 0x01])])
        out[f"{name}-marker{i}.jpg"] = bytes(x)
    dacs = [i for i in range(sos) if d[i : i + 2] == b"\xff\xcc"]
    for i in range(4):
        x = bytearray(d)
        for p in dacs:
            length = x[p + 2] << 8 | x[p + 3]
            for q in range(p + 4, p + 2 + length, 2):
                if x[q] < 16:
                    low = rng.randrange(0, 8)
                    x[q + 1] = low | rng.randrange(low, 16) << 4
                else:
                    x[q + 1] = rng.randrange(1, 64)
        out[f"{name}-dac{i}.jpg"] = bytes(x)


def padded(d, n):
    out = d[:2]
    while n > 0:
        k = min(n, 60000)
        out += b"\xff\xef" + (k + 2).to_bytes(2, "big") + bytes(k)
        n -= k
    return out + d[2:]


def large(rng, out):
    cat = Image.open(os.path.join(ROOT, "images", "cat.png")).convert("RGB")
    fractal = Image.effect_mandelbrot((1200, 900), (-2, -1.2, 1, 1.2), 100)
    gradient = Image.radial_gradient("L").resize((1200, 900))
    swirl = Image.merge("RGB", (fractal, gradient, fractal.rotate(30)))
    with tempfile.TemporaryDirectory() as tmp:
        for im, name in [(swirl, "swirl"), (cat, "cat")]:
            src = os.path.join(tmp, "in.ppm")
            im.save(src)
            for quality in (75, 90):
                for args in ([], ["-progressive"], ["-restart", "1"], ["-progressive", "-restart", "2"]):
                    cmd = ["cjpeg", "-arithmetic", "-quality", str(quality), *args, src]
                    d = subprocess.run(cmd, check=True, capture_output=True).stdout
                    stem = f"{name}-q{quality}{''.join(args)}"
                    out[f"{stem}.jpg"] = d
                    for _ in range(3):
                        n = rng.randrange(0, 200000)
                        out[f"{stem}-pad{n}.jpg"] = padded(d, n)


def main():
    folder = sys.argv[1]
    os.makedirs(folder, exist_ok=True)
    rng = random.Random(23)
    out = {}
    for base in BASES:
        with open(os.path.join(ROOT, base), "rb") as f:
            damaged(os.path.basename(base)[:-4], f.read(), rng, out)
    large(rng, out)
    for name, data in out.items():
        with open(os.path.join(folder, name), "wb") as f:
            f.write(data)
    print(f"{len(out)} files -> {folder}")


if __name__ == "__main__":
    main()
