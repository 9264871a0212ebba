"""The uploads of the load test (bench/load.ts), written with Pillow into a directory: the largest photos
the default limits let in (MAX_BODY_BYTES 16 MiB, MAX_IMAGE_PIXELS 24 MiP), as baseline and progressive
JPEG (quality 95, 4:2:0, as phone cameras save them) and as PNG. The JPEGs carry sensor-like noise
(test/tools/phone_photos.py), so they weigh what photos weigh; the PNG is a smooth upscale (with the
noise a 24 MP PNG is 40 MB, over the body limit).

    /usr/bin/python3 bench/load_images.py <out-dir>
"""

import pathlib
import sys

from PIL import Image

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "test" / "tools"))
from phone_photos import SRC, photo  # noqa: E402

MAX_BODY_BYTES = 16 * 1024 * 1024


def main() -> None:
    out = pathlib.Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    photo((4000, 3000), 11).save(out / "baseline-12mp.jpg", quality=95, subsampling=2)
    photo((6000, 4000), 12).save(out / "baseline-24mp.jpg", quality=95, subsampling=2)
    photo((4000, 3000), 13).save(out / "progressive-12mp.jpg", quality=95, subsampling=2, progressive=True)
    smooth = Image.open(SRC / "coffee-progressive.jpg").convert("RGB").resize((6000, 4000), Image.BICUBIC)
    smooth.save(out / "rgb-24mp.png")
    for f in sorted(out.glob("*.*")):
        if f.stat().st_size > MAX_BODY_BYTES:
            raise SystemExit(f"{f.name} is {f.stat().st_size} bytes, over MAX_BODY_BYTES ({MAX_BODY_BYTES})")
    (out / "done").write_text("ok\n")


if __name__ == "__main__":
    main()
