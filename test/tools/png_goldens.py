"""PNG goldens: files of every colour type, bit depth, filter and interlace, written by a small encoder of
our own (Pillow cannot write Adam7, 2/4-bit gray or 16-bit RGB), and what Pillow 9.4 makes of each with
Image.open(f).convert("RGB") -- transformers' load_image. Run with Debian's Python (it has Pillow):

    /usr/bin/python3 test/tools/png_goldens.py

Writes test/goldens/preprocess/png/<case>.png and cases.json there ({case: {width, height, mode, sha256,
rgb}}: the SHA-256 of the [height][width][3] bytes, and for small cases those bytes in base64).
"""

import base64
import hashlib
import io
import json
import pathlib
import struct
import zlib

import numpy as np
import PIL
from PIL import Image, ImageOps

OUT = pathlib.Path(__file__).resolve().parents[1] / "goldens" / "preprocess" / "png"
CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def pack_row(samples: np.ndarray, depth: int) -> bytes:
    """One row of samples (already flattened over channels) at `depth` bits, big-endian."""
    if depth == 16:
        return samples.astype(">u2").tobytes()
    if depth == 8:
        return samples.astype(np.uint8).tobytes()
    per = 8 // depth
    padded = np.zeros(-(-len(samples) // per) * per, dtype=np.int64)
    padded[: len(samples)] = samples
    out = bytearray()
    for i in range(0, len(padded), per):
        byte = 0
        for j in range(per):
            byte |= int(padded[i + j]) << (8 - depth * (j + 1))
        out.append(byte)
    return bytes(out)


def paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else b if pb <= pc else c


def filter_row(kind: int, row: bytes, prev: bytes, bpp: int) -> bytes:
    out = bytearray(len(row))
    for i, x in enumerate(row):
        a = row[i - bpp] if i >= bpp else 0
        b = prev[i]
        c = prev[i - bpp] if i >= bpp else 0
        predictor = [0, a, b, (a + b) >> 1, paeth(a, b, c)][kind]
        out[i] = (x - predictor) & 255
    return bytes(out)


def scanlines(pixels: np.ndarray, depth: int, ctype: int, interlace: bool) -> bytes:
    """pixels: [height][width][channels] samples. Filters cycle 0..4 by row so every filter is used."""
    h, w, ch = pixels.shape
    bpp = max(1, depth * CHANNELS[ctype] // 8)
    passes = ADAM7 if interlace else [(0, 0, 1, 1)]
    raw = bytearray()
    n = 0
    for x0, y0, dx, dy in passes:
        sub = pixels[y0::dy, x0::dx]
        if sub.shape[0] == 0 or sub.shape[1] == 0:
            continue
        prev = None
        for r in sub:
            row = pack_row(r.reshape(-1), depth)
            prev = prev or bytes(len(row))
            kind = n % 5
            raw.append(kind)
            raw += filter_row(kind, row, prev, bpp)
            prev = row
            n += 1
    return bytes(raw)


def encode(pixels, depth, ctype, interlace=False, extra=b"", idat_size=0) -> bytes:
    h, w, _ = pixels.shape
    ihdr = struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, int(interlace))
    data = zlib.compress(scanlines(pixels, depth, ctype, interlace), 9)
    pieces = [data[i : i + idat_size] for i in range(0, len(data), idat_size)] if idat_size else [data]
    body = b"".join(chunk(b"IDAT", p) for p in pieces)
    text = chunk(b"tEXt", b"Comment\x00written by png_goldens.py")
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + extra + text + body + chunk(b"IEND", b"")


def samples(rng, h, w, ch, depth):
    """A gradient with noise, so neighbouring rows differ and every filter has work; 16-bit gray keeps
    half its values under 256, where Pillow's I -> RGB conversion does not clip."""
    top = (1 << depth) - 1
    yy, xx = np.mgrid[0:h, 0:w]
    base = (xx * 7 + yy * 3)[..., None] * (top / (7 * w + 3 * h))
    noise = rng.integers(0, top + 1, size=(h, w, ch))
    out = np.where(rng.random((h, w, ch)) < 0.5, base, noise).astype(np.int64) % (top + 1)
    if depth == 16 and ch <= 2:
        out[: h // 2, :, 0] %= 256
    return out


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob("*.png"):
        old.unlink()
    rng = np.random.default_rng(8)
    h, w = 21, 37  # odd, so the Adam7 passes and sub-byte rows have ragged ends
    cases = {}

    def add(name, data):
        (OUT / f"{name}.png").write_bytes(data)
        im = Image.open(io.BytesIO(data))
        mode = im.mode
        rgb = im.convert("RGB")
        pixels = rgb.tobytes()
        sha = hashlib.sha256(pixels).hexdigest()
        cases[name] = {"width": rgb.width, "height": rgb.height, "mode": mode, "sha256": sha}
        if "exif" in im.info or im.getexif():
            turned = ImageOps.exif_transpose(im).convert("RGB")
            cases[name]["orientation"] = im.getexif().get(0x0112, 1)
            cases[name]["transposed"] = hashlib.sha256(turned.tobytes()).hexdigest()
        if rgb.width * rgb.height <= 1024:  # small enough to keep the pixels, for a readable diff
            cases[name]["rgb"] = base64.b64encode(pixels).decode()

    depths = {0: [1, 2, 4, 8, 16], 2: [8, 16], 3: [1, 2, 4, 8], 4: [8, 16], 6: [8, 16]}
    names = {0: "gray", 2: "rgb", 3: "palette", 4: "gray-alpha", 6: "rgba"}
    for ctype, ds in depths.items():
        for depth in ds:
            for interlace in (False, True):
                extra = b""
                if ctype == 3:
                    entries = 1 << depth
                    palette = rng.integers(0, 256, size=(entries, 3), dtype=np.uint8)
                    extra = chunk(b"PLTE", palette.tobytes())
                pixels = samples(rng, h, w, CHANNELS[ctype], depth)
                name = f"{names[ctype]}-{depth}{'-adam7' if interlace else ''}"
                add(name, encode(pixels, depth, ctype, interlace, extra, idat_size=97 if interlace else 0))
    # Transparency that convert("RGB") drops, and a palette shorter than the indices (Pillow pads with gray).
    pal = rng.integers(0, 256, size=(5, 3), dtype=np.uint8).tobytes()
    idx = samples(rng, h, w, 1, 8) % 9
    add("palette-short-trns", encode(idx, 8, 3, False, chunk(b"PLTE", pal) + chunk(b"tRNS", bytes([0, 128, 255]))))
    add("gray-8-trns", encode(samples(rng, h, w, 1, 8), 8, 0, False, chunk(b"tRNS", b"\x00\x07")))
    add("rgb-16-trns", encode(samples(rng, h, w, 3, 16), 16, 2, True, chunk(b"tRNS", b"\x00\x01" * 3)))
    # EXIF orientation in an eXIf chunk, before the image data (6) and after it (8, which Pillow reads at load)
    for orientation, after in ((6, False), (8, True)):
        exif = Image.Exif()
        exif[0x0112] = orientation
        raw = exif.tobytes()
        raw = raw[6:] if raw.startswith(b"Exif\x00\x00") else raw
        data = encode(samples(rng, h, w, 3, 8), 8, 2)
        at = data.index(b"IEND") - 4 if after else data.index(b"IDAT") - 4
        add(f"rgb-8-exif{orientation}", data[:at] + chunk(b"eXIf", raw) + data[at:])
    # Larger than one inflated chunk, many IDATs: the incremental path across chunk boundaries.
    yy, xx = np.mgrid[0:300, 0:211]
    big = np.stack([xx, yy, (xx + yy) // 2], axis=-1) % 256 + rng.integers(0, 3, size=(300, 211, 3))
    add("rgb-8-large", encode(big, 8, 2, False, b"", idat_size=1000))
    (OUT / "cases.json").write_text(json.dumps({"pillow": PIL.__version__, "cases": cases}, indent=1) + "\n")
    print(f"{len(cases)} cases in {OUT}")


if __name__ == "__main__":
    main()
