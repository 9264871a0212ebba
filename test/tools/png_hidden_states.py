"""hidden_states[0] (the embeddings) of PNG uploads as transformers computes them: load_image
(ImageOps.exif_transpose, convert("RGB")), ViTImageProcessor (PIL resize, rescale in float64 then float32,
normalize in float32), then models/tools/reference.py's PyTorch forward pass on a random tiny checkpoint.

    npx node models/tools/make-random-vit.ts --preset tiny --layout hf-vit --dtype F32 --seed 1 --inputs 1 \\
        --out .cache/models/tiny-png
    /usr/bin/python3 test/tools/png_hidden_states.py .cache/models/tiny-png

Writes test/goldens/preprocess/png/hidden-states.json: per PNG, the SHA-256 of pixel_values (float32,
little-endian, [3][32][32]) and the reference's hidden_states[0] ([tokens][dim]).
"""

import hashlib
import json
import pathlib
import subprocess
import sys
import tempfile

import numpy as np
from PIL import Image, ImageOps

ROOT = pathlib.Path(__file__).resolve().parents[2]
PNGS = ["rgb-8-large.png", "rgba-16-adam7.png", "palette-4.png", "gray-16.png", "rgb-8-exif6.png"]
MADE = (
    "npx node models/tools/make-random-vit.ts --preset tiny --layout hf-vit --dtype F32 --seed 1 --inputs 1 "
    "--out .cache/models/tiny-png"
)


def pixel_values(path, pp):
    image = ImageOps.exif_transpose(Image.open(path)).convert("RGB")
    image = image.resize((pp["size"]["width"], pp["size"]["height"]), resample=pp["resample"])
    x = (np.asarray(image).astype(np.float64) * pp["rescale_factor"]).astype(np.float32)
    mean = np.asarray(pp["image_mean"], dtype=np.float32)
    std = np.asarray(pp["image_std"], dtype=np.float32)
    x = ((x - mean) / std).astype(np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1))


def main() -> None:
    checkpoint = pathlib.Path(sys.argv[1])
    pp = json.loads((checkpoint / "preprocessor_config.json").read_text())
    values = [pixel_values(ROOT / "test" / "goldens" / "preprocess" / "png" / name, pp) for name in PNGS]
    with tempfile.TemporaryDirectory() as tmp:
        inputs = pathlib.Path(tmp) / "inputs.f32"
        np.stack(values).astype("<f4").tofile(inputs)
        out = pathlib.Path(tmp) / "reference.json"
        reference_py = ROOT / "models" / "tools" / "reference.py"
        subprocess.run([sys.executable, reference_py, checkpoint, inputs, "-o", out, "--hidden-states"], check=True)
        reference = json.loads(out.read_text())
    golden = {
        "made": MADE,
        "sha256": reference["sha256"],
        "config": reference["config"],
        "tokens": reference["tokens"],
        "cases": [
            {
                "png": name,
                "pixelValues": hashlib.sha256(v.astype("<f4").tobytes()).hexdigest(),
                "hiddenStates0": o["hiddenStates"][0],
            }
            for name, v, o in zip(PNGS, values, reference["outputs"])
        ],
    }
    path = ROOT / "test" / "goldens" / "preprocess" / "png" / "hidden-states.json"
    path.write_text(json.dumps(golden, separators=(",", ":")) + "\n")
    print(f"{path}: {len(PNGS)} PNGs")


if __name__ == "__main__":
    main()
