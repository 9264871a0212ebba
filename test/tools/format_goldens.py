"""BMP, GIF and WebP goldens: small files written by Pillow (every mode and option it writes) and by hand
(header types, bit depths, masks, run-length escapes and broken files it does not write), and what Pillow
9.4 makes of each with Image.open(f).convert("RGB") -- transformers' load_image. Run with Debian's Python
(Pillow 9.4 with libwebp):

    /usr/bin/python3 test/tools/format_goldens.py

Writes test/goldens/preprocess/<format>/<case>.<ext> and cases.json there: {case: {width, height, mode,
sha256}} for a file Pillow decodes (the SHA-256 of the [height][width][3] bytes), {error} for one it
refuses (the exception Pillow raises, opening or loading).
"""

import hashlib
import io
import json
import pathlib
import re
import struct

import numpy as np
import PIL
from PIL import Image, features

ROOT = pathlib.Path(__file__).resolve().parents[1] / "goldens" / "preprocess"


class Corpus:
    def __init__(self, fmt: str, ext: str):
        self.dir = ROOT / fmt
        self.ext = ext
        self.cases = {}
        self.dir.mkdir(parents=True, exist_ok=True)
        for old in self.dir.glob(f"*.{ext}"):
            old.unlink()

    def add(self, name: str, data: bytes) -> None:
        assert name not in self.cases, name
        (self.dir / f"{name}.{self.ext}").write_bytes(data)
        try:
            im = Image.open(io.BytesIO(data))
            mode = im.mode
            rgb = im.convert("RGB")
        except Exception as e:  # Pillow's refusal, whatever its class
            message = re.sub(r" at 0x[0-9a-f]+", "", str(e))  # no object addresses: the file stays stable
            self.cases[name] = {"error": f"{type(e).__name__}: {message}"}
            return
        sha = hashlib.sha256(rgb.tobytes()).hexdigest()
        self.cases[name] = {"width": rgb.width, "height": rgb.height, "mode": mode, "sha256": sha}

    def write(self) -> None:
        doc = {"pillow": PIL.__version__, "libwebp": features.version("webp"), "cases": self.cases}
        (self.dir / "cases.json").write_text(json.dumps(doc, indent=1) + "\n")


def picture(rng, w: int, h: int, channels: int = 3) -> np.ndarray:
    """A gradient with noise and flat patches: what a photo and a drawing both have."""
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([(xx * 255 // max(1, w - 1)), (yy * 255 // max(1, h - 1)), ((xx + yy) * 97) % 256], -1)
    base = np.concatenate([base] * 2, -1)[..., :channels]
    noise = rng.integers(0, 256, size=(h, w, channels))
    flat = (xx // 5 + yy // 4) % 3 == 0
    return np.where(flat[..., None], base, (base * 3 + noise) // 4).astype(np.uint8)


def pillow_image(rng, w, h, mode):
    rgba = Image.fromarray(picture(rng, w, h, 4), "RGBA")
    if mode == "RGBA":
        return rgba
    rgb = rgba.convert("RGB")
    if mode == "P":
        return rgb.quantize(colors=200)
    return rgb.convert(mode)


# ---------------------------------------------------------------------------------------------- BMP


def bmp_file(
    w,
    h,
    bits,
    rows: bytes,
    *,
    header=40,
    compression=0,
    palette=b"",
    colors=0,
    masks=None,
    top_down=False,
    offset=None,
) -> bytes:
    """A BMP from its parts; rows are the stored pixel bytes (already padded, in file order)."""
    if header == 12:
        info = struct.pack("<IHHHH", 12, w, h, 1, bits)
    else:
        height = (2**32 - h) if top_down else h
        info = struct.pack("<IIIHHIIiiII", header, w, height, 1, bits, compression, len(rows), 2835, 2835, colors, 0)
        if header > 40:
            m = list(masks or (0, 0, 0)) + [0] * (4 - len(masks or (0, 0, 0)))
            info += struct.pack("<IIII", *m)
            info += bytes(header - len(info))
        elif masks is not None:
            info += struct.pack("<III", *masks[:3])
    head = info + palette
    off = 14 + len(head) if offset is None else offset
    return b"BM" + struct.pack("<IHHI", 14 + len(head) + len(rows), 0, 0, off) + head + rows


def pack_rows(indices: np.ndarray, bits: int, top_down=False) -> bytes:
    """[h][w] samples of `bits` each (8, 16, 24, 32 as bytes already in a [h][w][n] array) into padded rows."""
    h = indices.shape[0]
    order = range(h) if top_down else range(h - 1, -1, -1)
    out = bytearray()
    for y in order:
        row = indices[y]
        if bits < 8:
            per = 8 // bits
            flat = list(row) + [0] * (-len(row) % per)
            data = bytes(
                sum(int(flat[i + j]) << (8 - bits * (j + 1)) for j in range(per)) for i in range(0, len(flat), per)
            )
        else:
            data = row.astype(np.uint8).tobytes()
        out += data + bytes(-len(data) % 4)
    return bytes(out)


def bmp_palette(rng, n, padding=4):
    entries = rng.integers(0, 256, size=(n, 3), dtype=np.uint8)
    return b"".join(bytes(e) + (b"\0" if padding == 4 else b"") for e in entries)


def rle8_sample() -> bytes:
    """Runs, a run past the row's end, absolute runs of odd and even length (aligned), a delta, EOL, EOB."""
    return bytes(
        [3, 10, 2, 200, 0, 3, 1, 2, 3]  # run of 3, run of 2, absolute 3 (+pad)
        + [0]  # pad to even
        + [9, 7]  # a run past the 13-pixel row's end: clamped
        + [0, 0]  # EOL
        + [0, 4, 50, 60, 70, 80, 5, 90]  # absolute 4, run 5
        + [0, 2, 9, 9, 2, 1]  # delta: Pillow skips the first two bytes and moves by (2, 1)
        + [4, 33, 0, 0]
        + [13, 44, 0, 0]  # a full row
        + [1, 5, 0, 1]  # one pixel, then end of bitmap
    )


def rle4_sample() -> bytes:
    return bytes(
        [5, 0x12, 0, 3, 0x34, 0x50, 4, 0xAB]  # run 5 alternating, absolute 3 (Pillow keeps 2), run 4
        + [0, 0]
        + [0, 6, 0x12, 0x34, 0x56, 0]  # absolute 6, aligned
        + [20, 0xF0, 0, 0]  # a run past the row's end, EOL
        + [0, 2, 0, 0, 1, 1]  # delta
        + [7, 0x9C, 0, 0]
        + [13, 0x77, 0, 0, 13, 0x88, 0, 0, 13, 0x99, 0, 1]
    )


def bmp_cases() -> None:
    c = Corpus("bmp", "bmp")
    rng = np.random.default_rng(23)
    # Pillow writes 1, L, P (8 bits, palette), RGB (24) and RGBA (32, BI_RGB).
    for mode in ["1", "L", "P", "RGB", "RGBA"]:
        for w, h in [(13, 7), (32, 5)]:
            out = io.BytesIO()
            pillow_image(rng, w, h, mode).save(out, "BMP")
            c.add(f"pillow-{mode.lower()}-{w}x{h}", out.getvalue())
    w, h = 13, 7
    # Palettes at 1, 4, 8 bits, full and short (indices past the end are gray in Pillow), both directions.
    for bits in (1, 4, 8):
        n = 1 << bits
        idx = rng.integers(0, n, size=(h, w))
        for top in (False, True):
            suffix = "-topdown" if top else ""
            c.add(
                f"pal{bits}{suffix}",
                bmp_file(w, h, bits, pack_rows(idx, bits, top), palette=bmp_palette(rng, n), top_down=top),
            )
        if bits > 1:
            k = n // 2 + 1
            c.add(f"pal{bits}-short", bmp_file(w, h, bits, pack_rows(idx, bits), palette=bmp_palette(rng, k), colors=k))
    # OS/2 v1 (12-byte header, 3-byte palette entries) and every Windows header size.
    idx = rng.integers(0, 16, size=(h, w))
    c.add("os2-pal4", bmp_file(w, h, 4, pack_rows(idx, 4), header=12, palette=bmp_palette(rng, 16, 3)))
    pix = picture(rng, w, h)
    bgr = pix[..., ::-1]
    c.add("os2-rgb24", bmp_file(w, h, 24, pack_rows(bgr, 24), header=12))
    for header in (64, 108, 124):
        c.add(f"v{header}-rgb24", bmp_file(w, h, 24, pack_rows(bgr, 24), header=header))
    # Gray ramps: Pillow reads L (256 entries) and 1 (black, white).
    ramp = b"".join(bytes([i, i, i, 0]) for i in range(256))
    c.add("gray-ramp8", bmp_file(w, h, 8, pack_rows(rng.integers(0, 256, size=(h, w)), 8), palette=ramp))
    c.add(
        "gray-ramp1",
        bmp_file(w, h, 1, pack_rows(rng.integers(0, 2, size=(h, w)), 1), palette=b"\0\0\0\0\xff\xff\xff\0"),
    )
    # 16 bits: 5-5-5 plain, 5-6-5 and 5-5-5 bitfields (40-byte header: masks after it; v5: inside it).
    p16 = rng.integers(0, 65536, size=(h, w)).astype("<u2").view(np.uint8).reshape(h, w, 2)
    c.add("rgb16-555", bmp_file(w, h, 16, pack_rows(p16, 16)))
    c.add("rgb16-565-bitfields", bmp_file(w, h, 16, pack_rows(p16, 16), compression=3, masks=(0xF800, 0x7E0, 0x1F)))
    c.add("rgb16-555-bitfields", bmp_file(w, h, 16, pack_rows(p16, 16), compression=3, masks=(0x7C00, 0x3E0, 0x1F)))
    c.add(
        "rgb16-565-v5",
        bmp_file(w, h, 16, pack_rows(p16, 16, True), header=124, compression=3, masks=(0xF800, 0x7E0, 0x1F), top_down=True),
    )
    c.add("rgb24-topdown", bmp_file(w, h, 24, pack_rows(bgr, 24, True), top_down=True))
    c.add("rgb24-bitfields", bmp_file(w, h, 24, pack_rows(bgr, 24), compression=3, masks=(0xFF0000, 0xFF00, 0xFF)))
    p32 = rng.integers(0, 256, size=(h, w, 4)).astype(np.uint8)
    c.add("rgb32", bmp_file(w, h, 32, pack_rows(p32, 32)))
    for name, masks in [
        ("bgrx", (0xFF0000, 0xFF00, 0xFF, 0)),
        ("xbgr", (0xFF000000, 0xFF0000, 0xFF00, 0)),
        ("abgr", (0xFF000000, 0xFF0000, 0xFF00, 0xFF)),
        ("rgba", (0xFF, 0xFF00, 0xFF0000, 0xFF000000)),
        ("bgra", (0xFF0000, 0xFF00, 0xFF, 0xFF000000)),
        ("zero-masks", (0, 0, 0, 0)),
    ]:
        c.add(f"rgb32-{name}", bmp_file(w, h, 32, pack_rows(p32, 32), header=108, compression=3, masks=masks))
    c.add("rgb32-bitfields-v3", bmp_file(w, h, 32, pack_rows(p32, 32), compression=3, masks=(0xFF0000, 0xFF00, 0xFF)))
    # A data offset of 0 (Pillow reads from where the palette ends) and one past extra bytes.
    c.add("offset-zero", bmp_file(w, h, 24, pack_rows(bgr, 24), offset=0))
    padded = bmp_file(w, h, 24, b"\x55" * 10 + pack_rows(bgr, 24), offset=54 + 10)
    c.add("offset-gap", padded)
    # Run-length: escapes of every kind, both directions, RLE4.
    pal = bmp_palette(rng, 256)
    c.add("rle8", bmp_file(w, 4, 8, rle8_sample(), compression=1, palette=pal))
    c.add("rle8-topdown", bmp_file(w, 4, 8, rle8_sample(), compression=1, palette=pal, top_down=True))
    c.add("rle8-gray", bmp_file(w, 4, 8, rle8_sample(), compression=1, palette=ramp))
    c.add("rle4", bmp_file(w, 7, 4, rle4_sample(), compression=2, palette=bmp_palette(rng, 16)))
    c.add("rle4-as-8bit", bmp_file(w, 7, 8, rle4_sample(), compression=2, palette=pal))
    c.add("rle8-no-eob", bmp_file(w, 2, 8, bytes([13, 1, 0, 0, 13, 2]), compression=1, palette=pal))
    # Broken and refused.
    c.add("refuse-rle8-short", bmp_file(w, 6, 8, rle8_sample()[:20], compression=1, palette=pal))
    c.add("refuse-rle8-delta-cut", bmp_file(w, 6, 8, bytes([2, 1, 0, 2, 1, 1, 1]), compression=1, palette=pal))
    c.add("refuse-rle-24bit", bmp_file(w, 6, 24, rle8_sample(), compression=1))
    c.add("refuse-truncated", bmp_file(w, h, 24, pack_rows(bgr, 24))[:-40])
    c.add("truncated-last-padding", bmp_file(w, h, 24, pack_rows(bgr, 24))[:-1])
    c.add("refuse-bits2", bmp_file(w, h, 2, pack_rows(rng.integers(0, 4, size=(h, w)), 2), palette=bmp_palette(rng, 4)))
    c.add("refuse-jpeg", bmp_file(w, h, 24, pack_rows(bgr, 24), compression=4))
    c.add("refuse-masks", bmp_file(w, h, 16, pack_rows(p16, 16), compression=3, masks=(0xF00, 0xF0, 0xF)))
    c.add("refuse-bitfields-8bit", bmp_file(w, h, 8, pack_rows(idx, 8), compression=3, masks=(1, 2, 3), palette=pal))
    c.add("refuse-header-size", bmp_file(w, h, 24, pack_rows(bgr, 24))[:14] + struct.pack("<I", 20) + bytes(40))
    c.add("refuse-zero-width", bmp_file(0, h, 24, b""))
    c.add("refuse-big-palette", bmp_file(w, h, 8, pack_rows(idx, 8), palette=bmp_palette(rng, 300), colors=300))
    c.add("refuse-gray4", bmp_file(w, h, 4, pack_rows(idx, 4), palette=b"".join(bytes([i, i, i, 0]) for i in range(16))))
    c.add("refuse-header-cut", bmp_file(w, h, 24, pack_rows(bgr, 24))[:30])
    c.write()


# ---------------------------------------------------------------------------------------------- GIF


def lzw(indices, min_bits: int, *, clear_every=0, end=True, early=False, defer=False) -> bytes:
    """GIF LZW codes for `indices`, packed LSB first (not yet in sub-blocks). clear_every: a clear code
    after that many codes; early: grow the code size one code early (TIFF's habit, which GIF readers do
    not share); defer: keep going with a full table instead of clearing."""
    clear, stop = 1 << min_bits, (1 << min_bits) + 1
    out, acc, nbits = bytearray(), 0, 0
    size = min_bits + 1

    def emit(code):
        nonlocal acc, nbits
        acc |= code << nbits
        nbits += size
        while nbits >= 8:
            out.append(acc & 255)
            acc >>= 8
            nbits -= 8

    def reset():
        nonlocal table, nxt, size
        table = {(i,): i for i in range(clear)}
        nxt = stop + 1
        size = min_bits + 1

    table, nxt = {}, 0
    reset()
    emit(clear)
    codes = 0
    cur = ()
    for v in list(indices):
        if (*cur, v) in table:
            cur = (*cur, v)
            continue
        emit(table[cur])
        codes += 1
        if nxt < 4096:
            table[(*cur, v)] = nxt
            nxt += 1
            if nxt + (1 if early else 0) > (1 << size) and size < 12:
                size += 1
        elif not defer:
            emit(clear)
            reset()
        if clear_every and codes % clear_every == 0:
            emit(clear)
            reset()
        cur = (v,)
    emit(table[cur])
    if end:
        emit(stop)
    if nbits:
        out.append(acc & 255)
    return bytes(out)


def sub_blocks(data: bytes, size=255, terminator=True) -> bytes:
    out = b"".join(bytes([len(data[i : i + size])]) + data[i : i + size] for i in range(0, len(data), size))
    return out + (b"\0" if terminator else b"")


def gif_file(w, h, frames, *, global_palette=None, background=0, head=b"", version=b"GIF89a", trailer=b";"):
    """frames: dicts with indices ([fh][fw]), x, y, palette (local), transparency, interlace, min_bits,
    data (LZW bytes instead of encoding the indices), raw (sub-blocks as they are)."""
    flags = 0
    gp = b""
    if global_palette is not None:
        bits = max(1, (len(global_palette) // 3 - 1).bit_length())
        gp = global_palette + bytes(3 * (1 << bits) - len(global_palette))
        flags = 0x80 | 0x70 | (bits - 1)
    out = version + struct.pack("<HHBBB", w, h, flags, background, 0) + gp + head
    for f in frames:
        idx = np.asarray(f["indices"])
        fh, fw = idx.shape
        if "transparency" in f:
            out += b"!\xf9\x04" + struct.pack("<BHB", 1, 10, f["transparency"]) + b"\0"
        lflags = 0x40 if f.get("interlace") else 0
        lp = b""
        if f.get("palette") is not None:
            bits = max(1, (len(f["palette"]) // 3 - 1).bit_length())
            lp = f["palette"] + bytes(3 * (1 << bits) - len(f["palette"]))
            lflags |= 0x80 | (bits - 1)
        out += b"," + struct.pack("<HHHHB", f.get("x", 0), f.get("y", 0), f.get("w", fw), f.get("h", fh), lflags) + lp
        rows = idx
        if f.get("interlace"):
            rows = np.concatenate([idx[0::8], idx[4::8], idx[2::4], idx[1::2]])
        min_bits = f.get("min_bits", 8)
        data = f.get("data") or lzw(rows.reshape(-1), min_bits)
        out += bytes([min_bits]) + (f["raw"] if "raw" in f else sub_blocks(data))
    return out + trailer


def gif_palette(rng, n):
    return rng.integers(0, 256, size=(n, 3), dtype=np.uint8).tobytes()


def gif_cases() -> None:
    c = Corpus("gif", "gif")
    rng = np.random.default_rng(89)
    # Pillow's own writer: P (a palette), L (written with a gray ramp, read back as L), RGB (quantized),
    # interlaced (its default from 16 pixels on a side) or not, with transparency, and animations.
    for mode in ["P", "L", "RGB"]:
        for w, h, interlace in [(13, 7, False), (40, 27, True), (40, 27, False)]:
            out = io.BytesIO()
            pillow_image(rng, w, h, mode).save(out, "GIF", interlace=interlace)
            c.add(f"pillow-{mode.lower()}-{w}x{h}{'-interlaced' if interlace else ''}", out.getvalue())
    out = io.BytesIO()
    pillow_image(rng, 40, 27, "P").save(out, "GIF", transparency=3)
    c.add("pillow-transparency", out.getvalue())
    frames = [pillow_image(rng, 30, 20, "RGB").quantize(colors=16 + 40 * i) for i in range(3)]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    c.add("pillow-animated", out.getvalue())
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], transparency=0, disposal=2)
    c.add("pillow-animated-transparent", out.getvalue())

    w, h = 23, 17
    pal = gif_palette(rng, 256)
    idx = rng.integers(0, 256, size=(h, w))
    small = rng.integers(0, 4, size=(h, w))
    smooth = (np.add.outer(np.arange(h), np.arange(w)) // 3) % 7  # long runs: long LZW strings
    c.add("global", gif_file(w, h, [{"indices": idx}], global_palette=pal))
    c.add("local", gif_file(w, h, [{"indices": idx, "palette": pal}]))
    c.add("local-over-global", gif_file(w, h, [{"indices": idx, "palette": pal}], global_palette=gif_palette(rng, 256)))
    c.add("no-palette", gif_file(w, h, [{"indices": idx}]))
    c.add("short-palette", gif_file(w, h, [{"indices": small, "min_bits": 2}], global_palette=gif_palette(rng, 2)))
    ramp = bytes(i for i in range(256) for _ in range(3))
    c.add("ramp-global", gif_file(w, h, [{"indices": idx}], global_palette=ramp))
    c.add("ramp-local-over-global", gif_file(w, h, [{"indices": idx, "palette": ramp}], global_palette=pal))
    for ih in (1, 2, 3, 5, 9, 17):
        c.add(f"interlaced-{ih}", gif_file(w, ih, [{"indices": idx[:ih], "interlace": True}], global_palette=pal))
    # A first frame inside the screen, with and without transparency; one reaching past the screen.
    part = rng.integers(0, 256, size=(9, 11))
    c.add("frame-inside", gif_file(w, h, [{"indices": part, "x": 5, "y": 3}], global_palette=pal))
    c.add(
        "frame-inside-transparent",
        gif_file(w, h, [{"indices": part, "x": 5, "y": 3, "transparency": 7}], global_palette=pal),
    )
    c.add(
        "frame-inside-interlaced",
        gif_file(w, h, [{"indices": part, "x": 2, "y": 6, "interlace": True, "transparency": 1}], global_palette=pal),
    )
    c.add("frame-past-screen", gif_file(10, 8, [{"indices": part, "x": 4, "y": 2}], global_palette=pal))
    c.add("screen-zero", gif_file(0, 0, [{"indices": part}], global_palette=pal))
    c.add("gif87a", gif_file(w, h, [{"indices": idx}], global_palette=pal, version=b"GIF87a"))
    # Extensions before the image: comment, application (NETSCAPE loop), plain text, a stray byte.
    head = b"!\xfe\x05hello\x03abc\x00" + b"!\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00" + b"!\x01\x02ab\x00" + b"\x07"
    c.add("extensions", gif_file(w, h, [{"indices": idx}], global_palette=pal, head=head))
    # LZW: every minimum code size, clear codes mid-stream, a full table kept (deferred clear), long runs.
    for bits in range(1, 9):
        v = rng.integers(0, 1 << bits, size=(h, w)) if bits > 1 else rng.integers(0, 2, size=(h, w))
        c.add(f"lzw-min{bits}", gif_file(w, h, [{"indices": v, "min_bits": bits}], global_palette=pal))
    big = rng.integers(0, 256, size=(64, 96))
    c.add("lzw-table-full", gif_file(96, 64, [{"indices": big}], global_palette=pal))
    c.add(
        "lzw-deferred-clear",
        gif_file(96, 64, [{"indices": big, "data": lzw(big.reshape(-1), 8, defer=True)}], global_palette=pal),
    )
    c.add(
        "lzw-clears",
        gif_file(w, h, [{"indices": idx, "data": lzw(idx.reshape(-1), 8, clear_every=7)}], global_palette=pal),
    )
    c.add("lzw-runs", gif_file(w, h, [{"indices": smooth, "min_bits": 3}], global_palette=pal))
    c.add(
        "lzw-early-change",
        gif_file(w, h, [{"indices": idx, "data": lzw(idx.reshape(-1), 8, early=True)}], global_palette=pal),
    )
    c.add(
        "lzw-no-end-code",
        gif_file(w, h, [{"indices": idx, "data": lzw(idx.reshape(-1), 8, end=False)}], global_palette=pal),
    )
    c.add(
        "lzw-small-blocks",
        gif_file(w, h, [{"indices": idx, "raw": sub_blocks(lzw(idx.reshape(-1), 8), size=7)}], global_palette=pal),
    )
    # Broken: an early end code (Pillow reads on into the next bytes), truncations, bad codes.
    short = lzw(idx.reshape(-1)[: w * h - 40], 8)
    c.add("refuse-early-end", gif_file(w, h, [{"indices": idx, "data": short}], global_palette=pal))
    c.add("early-end-then-data", gif_file(w, h, [{"indices": idx, "raw": sub_blocks(short) + sub_blocks(lzw(idx.reshape(-1), 8))}], global_palette=pal))
    full = gif_file(w, h, [{"indices": idx}], global_palette=pal)
    c.add("refuse-truncated", full[: len(full) - 60])
    c.add("refuse-truncated-header", full[:10])
    c.add("refuse-no-image", full[: 13 + 768] + b";")
    c.add("refuse-code-size", gif_file(w, h, [{"indices": small, "min_bits": 13, "data": b"\x00\x01"}], global_palette=pal))
    c.add("refuse-bad-code", gif_file(w, h, [{"indices": idx, "data": b"\x00\xff\xff\xff\xff"}], global_palette=pal))
    c.add("refuse-empty-frame", gif_file(w, h, [{"indices": idx, "x": 3, "w": 0}], global_palette=pal))
    c.add("zero-width-frame-at-0", gif_file(w, h, [{"indices": idx, "w": 0}], global_palette=pal))
    c.add("refuse-gce-short", gif_file(w, h, [{"indices": idx}], global_palette=pal, head=b"!\xf9\x02\x01\x00\x00"))
    c.add("refuse-signature", b"GIF88a" + full[6:])
    c.write()


# --------------------------------------------------------------------------------------------- WebP


def riff(chunks: bytes) -> bytes:
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WEBP" + chunks


def chunk(fourcc: bytes, payload: bytes) -> bytes:
    return fourcc + struct.pack("<I", len(payload)) + payload + (b"\0" if len(payload) & 1 else b"")


def split_chunks(data: bytes) -> list:
    """The top-level chunks of a RIFF WebP: [(fourcc, payload)]."""
    out, pos = [], 12
    while pos + 8 <= len(data):
        fourcc, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        out.append((fourcc, data[pos + 8 : pos + 8 + size]))
        pos += 8 + size + (size & 1)
    return out


def webp_cases() -> None:
    c = Corpus("webp", "webp")
    rng = np.random.default_rng(1649)

    def save(im, **options) -> bytes:
        out = io.BytesIO()
        im.save(out, "WEBP", **options)
        return out.getvalue()

    # Lossy at several qualities and sizes (odd ones: partial macroblocks, odd chroma), with alpha.
    for w, h in [(1, 1), (17, 9), (33, 31), (64, 48), (101, 67)]:
        for q in (5, 50, 95):
            c.add(f"lossy-q{q}-{w}x{h}", save(pillow_image(rng, w, h, "RGB"), quality=q))
    c.add("lossy-alpha", save(pillow_image(rng, 45, 29, "RGBA"), quality=70))
    c.add("lossy-alpha-uncompressed", save(pillow_image(rng, 45, 29, "RGBA"), quality=70, alpha_quality=100, method=0))
    c.add("lossy-method6", save(pillow_image(rng, 80, 50, "RGB"), quality=80, method=6))
    c.add("lossy-method0", save(pillow_image(rng, 80, 50, "RGB"), quality=80, method=0))
    # Lossless: photo-like, few colours (colour indexing with packed pixels), flat, alpha, sizes.
    for w, h in [(1, 1), (17, 9), (64, 48), (101, 67)]:
        c.add(f"lossless-{w}x{h}", save(pillow_image(rng, w, h, "RGB"), lossless=True))
    c.add("lossless-rgba", save(pillow_image(rng, 45, 29, "RGBA"), lossless=True))
    for colors in (2, 3, 11, 200):
        im = pillow_image(rng, 37, 23, "RGB").quantize(colors=colors).convert("RGB")
        c.add(f"lossless-{colors}-colors", save(im, lossless=True))
    c.add("lossless-flat", save(Image.new("RGB", (30, 20), (200, 30, 99)), lossless=True))
    for method in (0, 6):
        c.add(f"lossless-method{method}", save(pillow_image(rng, 64, 40, "RGB"), lossless=True, method=method, quality=100))
    # A photo: every intra mode, filter strength and partition a real picture brings.
    photo = Image.open(ROOT.parents[1] / "fixtures" / "images" / "astronaut-444.jpg").convert("RGB")
    c.add("photo-lossy-q90", save(photo.crop((100, 60, 357, 301)), quality=90))
    c.add("photo-lossy-q30-sharp-yuv", save(photo.crop((0, 0, 200, 150)), quality=30, use_sharp_yuv=True))
    c.add("photo-lossless", save(photo.crop((200, 200, 330, 311)), lossless=True))
    # Animated: the first frame, on a canvas it may not fill.
    frames = [pillow_image(rng, 40, 30, "RGB") for _ in range(3)]
    out = io.BytesIO()
    frames[0].save(out, "WEBP", save_all=True, append_images=frames[1:], duration=80, quality=60)
    c.add("animated-lossy", out.getvalue())
    out = io.BytesIO()
    frames[0].save(out, "WEBP", save_all=True, append_images=frames[1:], lossless=True)
    c.add("animated-lossless", out.getvalue())
    # A first frame smaller than the canvas, at an offset (hand-built ANMF from a still image's chunk).
    small = split_chunks(save(pillow_image(rng, 12, 10, "RGB"), quality=80))
    vp8 = [p for f, p in small if f == b"VP8 "][0]
    anmf = struct.pack("<I", 3)[:3] + struct.pack("<I", 2)[:3] + struct.pack("<I", 11)[:3] + struct.pack("<I", 9)[:3]
    anmf += struct.pack("<I", 100)[:3] + b"\0" + chunk(b"VP8 ", vp8)
    vp8x = bytes([0x02, 0, 0, 0]) + struct.pack("<I", 29)[:3] + struct.pack("<I", 19)[:3]
    anim = struct.pack("<IH", 0xFF0000FF, 0)
    c.add("animated-offset", riff(chunk(b"VP8X", vp8x) + chunk(b"ANIM", anim) + chunk(b"ANMF", anmf)))
    # Extended stills: VP8X with EXIF/ICC around the image; an ALPH chunk in a simple file (ignored).
    still = save(pillow_image(rng, 20, 14, "RGB"), quality=70, exif=b"Exif\0\0MM\0*\0\0\0\x08\0\0", icc_profile=b"x" * 7)
    c.add("extended-exif-icc", still)
    alpha_file = save(pillow_image(rng, 20, 14, "RGBA"), quality=70)
    chunks = split_chunks(alpha_file)
    alph = [p for f, p in chunks if f == b"ALPH"][0]
    vp8 = [p for f, p in chunks if f == b"VP8 "][0]
    c.add("simple-with-alph", riff(chunk(b"ALPH", alph) + chunk(b"VP8 ", vp8)))
    c.add("trailing-bytes", still + b"\0" * 9)
    # Broken.
    lossy = save(pillow_image(rng, 64, 48, "RGB"), quality=80)
    lossless = save(pillow_image(rng, 64, 48, "RGB"), lossless=True)
    c.add("refuse-truncated-lossy", lossy[: len(lossy) * 2 // 3])
    c.add("refuse-truncated-lossless", lossless[: len(lossless) * 2 // 3])
    body = lossy[12:]
    c.add("refuse-riff-short", riff(body)[:-4])
    cut = bytearray(lossy)
    cut[4:8] = struct.pack("<I", len(lossy) - 8 - 100)  # the RIFF ends inside the image chunk
    c.add("refuse-riff-size", bytes(cut))
    damaged = bytearray(lossless)
    damaged[30:34] = b"\xff\xff\xff\xff"
    c.add("refuse-lossless-damaged", bytes(damaged))
    bad_alpha = bytearray(alpha_file)
    pos = alpha_file.index(b"ALPH") + 8
    bad_alpha[pos] = 0xC1  # reserved bits set
    c.add("refuse-alpha-header", bytes(bad_alpha))
    c.add("refuse-vp8-signature", lossy[:23] + b"\0" + lossy[24:])
    c.add("refuse-unknown-first-chunk", riff(chunk(b"ABCD", b"1234") + body[8:]))
    c.write()


def main() -> None:
    bmp_cases()
    gif_cases()
    webp_cases()


if __name__ == "__main__":
    main()
