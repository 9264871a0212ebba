"""Goldens of the image towers (test/goldens/towers/), from the float32 references on real photos:

  <preset>/reference.json   reference_towers.py's outputs for the preset's tiny checkpoint (made by
                            make-random-tower.ts --tiny, whose command and file hashes it records) on the
                            photos as preprocess_towers.py preprocesses them (the SHA-256 of each photo's
                            pixel_values, so a test can check its own preprocessing bit for bit); hidden
                            states for the first two photos only, to stay small
  <preset>/attentions.json  every layer's attention probabilities for the first two photos (towers of at
                            most 32 tokens)
  preprocess.json           SHA-256 of pixel_values for every photo through each full-size preset's
                            image processor (CLIP 224 legacy and dict files, SigLIP 224/256/384 bicubic,
                            SigLIP 2 bilinear, BiT 256/224)
  interpolation.json        DINOv2's position-embedding interpolation (reference_towers.py's, i.e.
                            transformers' F.interpolate) on the tiny DINOv2 tables and on a 37x37 table
                            made from a formula, resized to 16x16 with and without antialias

    /usr/bin/python3 models/tools/tower_goldens.py --cache .cache/towers --out test/goldens/towers \\
        --presets clip-vit-base-patch32 ... --photos test/fixtures/images/astronaut-444.jpg ...

models/tools/make-tower-goldens.sh runs it after making the checkpoints.
"""

import argparse
import hashlib
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hf_checkpoint import read_checkpoint  # noqa: E402
from preprocess_towers import load_image, preprocess  # noqa: E402
from reference_towers import dinov2_position_embeddings, run, sha256, sig7  # noqa: E402

HIDDEN_IMAGES = 2
# attentions.json only where it stays small (CLIP patch16's tiny twin has 65 tokens: 0.7 MB)
MAX_ATTENTION_TOKENS = 32


def pixels_of(pre, photos):
    arrays = []
    for path in photos:
        frames, _ = preprocess(load_image(path), pre)
        arrays.append(frames[0].astype("<f4"))
    return arrays


def digest(array):
    return hashlib.sha256(np.ascontiguousarray(array, dtype="<f4").tobytes()).hexdigest()


def table_formula(rows, dim):
    """A position table both sides compute the same: f32(0.02 * sin(0.37 i + 0.11 d) + 0.01 * cos(0.013 i d))."""
    i = np.arange(rows, dtype=np.float64)[:, None]
    d = np.arange(dim, dtype=np.float64)[None, :]
    return (0.02 * np.sin(0.37 * i + 0.11 * d) + 0.01 * np.cos(0.013 * i * d)).astype(np.float32)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cache", required=True, help="the tiny checkpoints, one directory per preset")
    ap.add_argument("--out", required=True)
    ap.add_argument("--presets", nargs="+", required=True)
    ap.add_argument("--full-processors", nargs="*", default=[],
                    help="PRESET=path/to/preprocessor_config.json of full-size presets")
    ap.add_argument("--photos", nargs="+", required=True)
    ap.add_argument("--seed", default="1")
    args = ap.parse_args()
    torch.set_num_threads(1)
    os.makedirs(args.out, exist_ok=True)
    photos = [os.path.relpath(p) for p in args.photos]

    for preset in args.presets:
        directory = os.path.join(args.cache, preset)
        with open(os.path.join(directory, "preprocessor_config.json")) as f:
            pre = json.load(f)
        arrays = pixels_of(pre, photos)
        pixels = torch.from_numpy(np.stack(arrays))
        with torch.no_grad():
            golden, attentions = run(directory, pixels, None, True, True)
        for item in golden["images"][HIDDEN_IMAGES:]:
            item.pop("hiddenStates", None)
            item.pop("lastHiddenState", None)
        made = (f"npx node models/tools/make-random-tower.ts --preset {preset} --tiny --seed {args.seed} "
                f"--inputs 1 -o {directory}")
        files = {name: sha256(os.path.join(directory, name))
                 for name in ("model.safetensors", "config.json", "preprocessor_config.json")}
        out = {"name": preset, "made": made, "sha256": files, "photos": photos,
               "pixels": [{"shape": list(a.shape), "sha256": digest(a)} for a in arrays], **golden}
        os.makedirs(os.path.join(args.out, preset), exist_ok=True)
        with open(os.path.join(args.out, preset, "reference.json"), "w") as f:
            json.dump(out, f, separators=(",", ":"))
            f.write("\n")
        if golden["images"][0]["tokens"] <= MAX_ATTENTION_TOKENS:
            with open(os.path.join(args.out, preset, "attentions.json"), "w") as f:
                json.dump({"name": preset, "count": len(attentions), "attentions": attentions}, f,
                          separators=(",", ":"))
                f.write("\n")
        print(f"{args.out}/{preset}: {golden['family']}, {len(photos)} photos")

    cases = []
    for spec in args.full_processors:
        preset, path = spec.split("=", 1)
        with open(path) as f:
            pre = json.load(f)
        for photo, array in zip(photos, pixels_of(pre, photos)):
            cases.append({"preset": preset, "photo": photo, "shape": list(array.shape), "sha256": digest(array)})
    with open(os.path.join(args.out, "preprocess.json"), "w") as f:
        json.dump({"photos": photos, "cases": cases}, f, indent=1)
        f.write("\n")
    print(f"{args.out}/preprocess.json: {len(cases)} cases")

    interpolation = []
    for preset in [p for p in args.presets if p.startswith("dinov2")]:
        cfg, _, w = read_checkpoint(os.path.join(args.cache, preset))
        table = w["embeddings.position_embeddings"].reshape(-1, cfg["hidden_size"])
        native = int(round((table.shape[0] - 1) ** 0.5))
        registers = cfg.get("num_register_tokens", 0) > 0
        for grid in (4, 5):
            got = dinov2_position_embeddings(table, grid, grid, "size", registers)
            interpolation.append({"preset": preset, "native": native, "grid": grid, "antialias": registers,
                                  "dim": table.shape[1], "values": sig7(got)})
    table = torch.from_numpy(np.concatenate([np.zeros((1, 4), np.float32), table_formula(37 * 37, 4)]))
    for antialias in (False, True):
        got = dinov2_position_embeddings(table, 16, 16, "size", antialias)
        interpolation.append({"formula": True, "native": 37, "grid": 16, "antialias": antialias, "dim": 4,
                              "values": sig7(got)})
    with open(os.path.join(args.out, "interpolation.json"), "w") as f:
        json.dump({"cases": interpolation}, f, separators=(",", ":"))
        f.write("\n")
    print(f"{args.out}/interpolation.json: {len(interpolation)} cases")


if __name__ == "__main__":
    main()
