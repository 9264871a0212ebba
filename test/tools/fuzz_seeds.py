"""Small JPEG seeds for the fuzz test (test/core/image/fuzz.test.ts), one per coding feature the fixture
photos have only at full size: progressive, grayscale, CMYK (Adobe marker), restart markers, 4:2:0 with
EXIF orientation 6. Cut from the fixture photos with Pillow:

    /usr/bin/python3 test/tools/fuzz_seeds.py
"""

import pathlib

from PIL import Image

ROOT = pathlib.Path(__file__).resolve().parents[1]
SRC = ROOT / "fixtures" / "images"
OUT = ROOT / "fixtures" / "fuzz"


def main() -> None:
    OUT.mkdir(exist_ok=True)
    cat = Image.open(SRC / "cat-baseline-420.jpg").convert("RGB").resize((48, 32))
    cat.save(OUT / "progressive-48x32.jpg", quality=80, progressive=True)
    cat.convert("L").save(OUT / "gray-48x32.jpg", quality=80)
    cat.convert("CMYK").save(OUT / "cmyk-48x32.jpg", quality=80)
    # 4 MCU rows with a restart marker after every MCU row
    Image.open(SRC / "retina-restart-markers.jpg").convert("RGB").resize((64, 64)).save(
        OUT / "restart-64x64.jpg", quality=80, restart_marker_rows=1
    )
    exif = Image.Exif()
    exif[0x0112] = 6
    cat.save(OUT / "exif6-420-48x32.jpg", quality=80, subsampling=2, exif=exif.tobytes())


if __name__ == "__main__":
    main()
