"""The uploads a new user tries first, at phone sizes, written with Pillow into a directory (default
.cache/photos): JPEGs as phones and the web make them, and PNGs of every colour type. Made at test time
(test/worker/photos.test.ts, through test/tools/photos.ts), never committed.

    /usr/bin/python3 test/tools/phone_photos.py [out-dir]
"""

import pathlib
import sys

import numpy as np
from PIL import Image

ROOT = pathlib.Path(__file__).resolve().parents[2]
SRC = ROOT / "test" / "fixtures" / "images"


def photo(size, seed):
    """A fixture photo scaled to `size` with sensor-like noise, so the files weigh what photos weigh."""
    base = Image.open(SRC / "coffee-progressive.jpg").convert("RGB").resize(size, Image.BILINEAR)
    rng = np.random.default_rng(seed)
    noisy = np.asarray(base, dtype=np.int16) + rng.integers(-6, 7, size=(size[1], size[0], 3), dtype=np.int16)
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


def main() -> None:
    out = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / ".cache" / "photos"
    out.mkdir(parents=True, exist_ok=True)
    # A phone held upright: stored 4032x3024 landscape, EXIF orientation 6 turns it to 3024x4032.
    exif = Image.Exif()
    exif[0x0112] = 6
    photo((4032, 3024), 1).save(out / "phone-12mp-orient6.jpg", quality=90, subsampling=2, exif=exif.tobytes())
    photo((4000, 3000), 2).save(out / "baseline-12mp.jpg", quality=90, subsampling=2)
    photo((3264, 2448), 3).save(out / "progressive-8mp.jpg", quality=90, progressive=True)
    photo((3000, 2000), 4).save(out / "scan-444-6mp.jpg", quality=95, subsampling=0)
    photo((1920, 1080), 5).save(out / "web-1080p.jpg", quality=80, subsampling=2, optimize=True)
    photo((2592, 1944), 6).convert("L").save(out / "gray-5mp.jpg", quality=90)
    png = photo((2000, 1500), 7)
    png.save(out / "rgb.png")
    rgba = png.convert("RGBA")
    rgba.putalpha(Image.linear_gradient("L").resize(png.size))
    rgba.save(out / "rgba.png")
    png.quantize(256).save(out / "palette.png")
    png.convert("L").save(out / "gray.png")
    png.convert("LA").save(out / "gray-alpha.png")
    (out / "done").write_text("ok\n")


if __name__ == "__main__":
    main()
