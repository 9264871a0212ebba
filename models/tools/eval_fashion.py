"""Checks an exported Fashion-MNIST checkpoint with the independent forward pass of reference.py:
float32 accuracy on t10k and agreement with the predictions recorded by train_fashion.py.

    /usr/bin/python3 models/tools/eval_fashion.py [models/default]
"""

import gzip
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference  # noqa: E402

DATA = "/usr/share/datasets/fashion-mnist"


def main():
    directory = sys.argv[1] if len(sys.argv) > 1 else "models/default"
    torch.set_num_threads(1)
    cfg, layout, w = reference.load(os.path.join(directory, "checkpoint"))
    with open(os.path.join(directory, "checkpoint", "preprocessor_config.json")) as f:
        pre = json.load(f)
    with gzip.open(os.path.join(DATA, "t10k-images-idx3-ubyte.gz")) as f:
        images = np.frombuffer(f.read(), dtype=np.uint8, offset=16).reshape(-1, 28, 28)
    with gzip.open(os.path.join(DATA, "t10k-labels-idx1-ubyte.gz")) as f:
        labels = np.frombuffer(f.read(), dtype=np.uint8, offset=8)
    with open(os.path.join(directory, "fashion-vit.reference.json")) as f:
        recorded = json.load(f)["predictions"]

    # the processor's steps, in float32: gray -> RGB, rescale, normalize per channel
    mean = torch.tensor(pre["image_mean"], dtype=torch.float32).reshape(3, 1, 1)
    std = torch.tensor(pre["image_std"], dtype=torch.float32).reshape(3, 1, 1)
    predictions = []
    with torch.no_grad():
        for image in images:
            x = torch.from_numpy(image.astype(np.float32)).expand(3, 28, 28) * np.float32(pre["rescale_factor"])
            logits, _, _ = reference.forward(w, cfg, (x - mean) / std)
            predictions.append(int(logits.argmax()))
    predictions = np.array(predictions)
    accuracy = float((predictions == labels).mean())
    agree = sum(int(a) == b for a, b in zip(recorded, predictions))
    print(f"{layout}: float32 accuracy {accuracy:.4f}; agrees with the recorded predictions on {agree}/10000")
    if agree < 9990:
        sys.exit(1)


if __name__ == "__main__":
    main()
