"""Goldens of the vision-language connectors (test/goldens/vlm/), from the float32 references on real photos:

  preprocess.json           Idefics3ImageProcessor (preprocess_towers.py) on each photo with the full-size
                            SmolVLM-256M preprocessor_config.json: the tile grid and the SHA-256 of every
                            frame's pixel_values (tiles row by row, the global view last)
  <preset>.json             a tiny preset (make-random-tower.ts --tiny, command and file hashes recorded):
                            the photos through its own processor, every frame's pixel_values hash, and the
                            rows its connector makes (reference_towers.py's idefics3 / llava) for every frame
                            of the first --token-photos photos

    /usr/bin/python3 models/tools/vlm_goldens.py --cache .cache/vlm --out test/goldens/vlm \
        --presets smolvlm-256m-instruct llava-1.5-projector --full-processor path/to/preprocessor_config.json \
        --photos test/fixtures/images/coffee-progressive.jpg ...
"""

import argparse
import hashlib
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from preprocess_towers import load_image, preprocess  # noqa: E402
from reference_towers import run, sha256  # noqa: E402


def digest(array):
    return hashlib.sha256(np.ascontiguousarray(array, dtype="<f4").tobytes()).hexdigest()


def frames_of(pre, photo):
    frames, info = preprocess(load_image(photo), pre)
    return frames, {"rows": info.get("rows", 0), "cols": info.get("cols", 0), "frames": len(frames),
                    "shape": list(frames[0].shape), "sha256": [digest(f) for f in frames]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cache", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--presets", nargs="+", required=True)
    ap.add_argument("--full-processor", required=True)
    ap.add_argument("--photos", nargs="+", required=True)
    ap.add_argument("--token-photos", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(1)
    os.makedirs(args.out, exist_ok=True)
    photos = [os.path.relpath(p) for p in args.photos]

    with open(args.full_processor) as f:
        full = json.load(f)
    cases = [{"photo": p, **frames_of(full, p)[1]} for p in photos]
    with open(os.path.join(args.out, "preprocess.json"), "w") as f:
        json.dump({"processor": full, "cases": cases}, f, indent=1)
        f.write("\n")
    print(f"{args.out}/preprocess.json: {len(cases)} photos")

    for preset in args.presets:
        directory = os.path.join(args.cache, preset)
        with open(os.path.join(directory, "preprocessor_config.json")) as f:
            pre = json.load(f)
        with open(os.path.join(directory, "inputs.json")) as f:
            seed = json.load(f)["seed"]
        made = f"npx node models/tools/make-random-tower.ts --preset {preset} --tiny --seed {seed} --inputs 1 -o {directory}"
        out_photos = []
        for i, photo in enumerate(photos):
            frames, info = frames_of(pre, photo)
            item = {"photo": photo, **info}
            if i < args.token_photos:
                with torch.no_grad():
                    golden, _ = run(directory, torch.from_numpy(np.stack(frames)))
                key = "imageTokens" if golden["family"] == "idefics3" else "imageFeatures"
                item["tokens"] = [image[key] for image in golden["images"]]  # [frames][tokens * lmDim]
                item["tokenShape"] = golden["images"][0]["shape"]
                family = golden["family"]
            out_photos.append(item)
        files = {name: sha256(os.path.join(directory, name))
                 for name in ("model.safetensors", "config.json", "preprocessor_config.json")}
        with open(os.path.join(args.out, f"{preset}.json"), "w") as f:
            json.dump({"name": preset, "made": made, "family": family, "sha256": files, "photos": out_photos}, f,
                      separators=(",", ":"))
            f.write("\n")
        print(f"{args.out}/{preset}.json: {family}, {len(photos)} photos")


if __name__ == "__main__":
    main()
