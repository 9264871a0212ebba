"""Small files that put the orientation where Pillow 9.4's getexif looks for it (PNG eXIf and text chunks
before and after the image data, ImageMagick's hex profile, XMP, a JPEG Exif block without a TIFF header
with and without a JFIF resolution, WebP's EXIF chunk) and the text chunks Pillow refuses. Run with
Debian's Python (it has Pillow 9.4), then record what Pillow makes of them:

    /usr/bin/python3 test/tools/metadata_cases.py
    /usr/bin/python3 test/tools/corpus_pillow.py -o test/goldens/preprocess/metadata/cases.json test/fixtures/metadata
"""

import io
import pathlib
import struct
import zlib

import numpy as np
from PIL import Image

OUT = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "metadata"


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def exif_block(orientation=None) -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "edgevit"  # Make
    if orientation is not None:
        exif[0x0112] = orientation
    return exif.tobytes()  # "Exif\0\0" + TIFF


def picture() -> Image.Image:
    rng = np.random.default_rng(23)
    yy, xx = np.mgrid[0:13, 0:19]
    rgb = np.stack([xx * 13, yy * 19, (xx * yy) % 256], -1) + rng.integers(0, 9, (13, 19, 3))
    return Image.fromarray(rgb.astype(np.uint8), "RGB")


def png(before: bytes = b"", after: bytes = b"") -> bytes:
    buf = io.BytesIO()
    picture().save(buf, "PNG")
    data = buf.getvalue()
    idat = data.index(b"IDAT") - 4
    iend = data.index(b"IEND") - 4
    return data[:idat] + before + data[idat:iend] + after + data[iend:]


def xmp(orientation: int, element: bool = False) -> str:
    tag = f"<tiff:Orientation>{orientation}</tiff:Orientation>" if element else f'tiff:Orientation="{orientation}"'
    return f'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:Description {tag if not element else ""}>{tag if element else ""}</rdf:Description></x:xmpmeta>'


def raw_profile(block: bytes) -> bytes:
    hexed = block.hex()
    lines = "\n".join(hexed[i : i + 72] for i in range(0, len(hexed), 72))
    return f"\nexif\n{len(block):8d}\n{lines}\n".encode()


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob("*.*"):
        if old.suffix != ".md":
            old.unlink()
    files = {
        # eXIf without the tag: the XMP packet's orientation applies.
        "png-exif-no-tag-xmp-6.png": png(
            chunk(b"eXIf", exif_block()[6:]) + chunk(b"iTXt", b"XML:com.adobe.xmp\0\0\0\0\0" + xmp(6).encode())
        ),
        # An eXIf before the image data wins over one after it (getexif does not load the image then).
        "png-exif-3-before-6-after.png": png(chunk(b"eXIf", exif_block(3)[6:]), chunk(b"eXIf", exif_block(6)[6:])),
        # Without EXIF before the image data, getexif loads it: the eXIf after it has the tag (1), XMP is not read.
        "png-xmp-8-before-exif-1-after.png": png(
            chunk(b"tEXt", b"XML:com.adobe.xmp\0" + xmp(8).encode()), chunk(b"eXIf", exif_block(1)[6:])
        ),
        "png-ztxt-raw-profile-5.png": png(
            chunk(b"zTXt", b"Raw profile type exif\0\0" + zlib.compress(raw_profile(exif_block(5))))
        ),
        "png-itxt-compressed-xmp-7.png": png(
            chunk(b"iTXt", b"XML:com.adobe.xmp\0\1\0\0\0" + zlib.compress(xmp(7, element=True).encode()))
        ),
        "png-text-exif-2-after.png": png(after=chunk(b"tEXt", b"exif\0" + exif_block(2))),
        "png-refused-ztxt-exif.png": png(chunk(b"zTXt", b"exif\0\0" + zlib.compress(exif_block(6)))),
        "png-refused-ztxt-method-1.png": png(chunk(b"zTXt", b"Comment\0\1" + zlib.compress(b"hello"))),
        "png-refused-raw-profile-not-hex.png": png(chunk(b"tEXt", b"Raw profile type exif\0\nexif\n 4\nzz00\n")),
        "png-ztxt-damaged-ignored.png": png(chunk(b"zTXt", b"Comment\0\0" + b"\x78\x9c\xff\xff\xff")),
    }
    # JPEG: an Exif block without a TIFF header; with a JFIF resolution in dots per inch first, Pillow's
    # plugin has not read it while opening and exif_transpose raises on it.
    buf = io.BytesIO()
    picture().save(buf, "JPEG", quality=90)
    jpeg = buf.getvalue()
    bad = b"Exif\0\0" + b"\xff\xff\xff\xff\0\0\0\x08" + bytes(12)
    app1 = b"\xff\xe1" + struct.pack(">H", len(bad) + 2) + bad
    jfif = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\0\1\1" + b"\1\0\x48\0\x48\0\0"
    files["jpeg-exif-no-tiff-header.jpg"] = jpeg[:2] + app1 + jpeg[2:]
    files["jpeg-refused-exif-no-tiff-header-after-dpi.jpg"] = jpeg[:2] + jfif + app1 + jpeg[2:]
    for orientation in (3, 6):
        buf = io.BytesIO()
        picture().save(buf, "WEBP", lossless=True, exif=exif_block(orientation))
        files[f"webp-exif-{orientation}.webp"] = buf.getvalue()
    for name, data in files.items():
        (OUT / name).write_bytes(data)
    print(f"{len(files)} files in {OUT}")


if __name__ == "__main__":
    main()
