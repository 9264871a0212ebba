"""Writes the Fashion-MNIST files that do not need Debian's dataset at test time:

- test/fixtures/fashion-mnist/: the first 500 t10k images and labels as gzipped idx files, the
  dataset's own format and compression, so one reader serves both;
- models/default/samples/: one 28x28 grayscale JPEG (PIL, quality 95) per listed class, the first
  t10k image of that class that the float32 model classifies correctly (read from
  models/default/fashion-vit.reference.json), named by class.

    /usr/bin/python3 models/tools/make_fashion_fixtures.py
"""

import gzip
import json
import os

from PIL import Image

DATA = "/usr/share/datasets/fashion-mnist"
FIXTURES = "test/fixtures/fashion-mnist"
SAMPLES = "models/default/samples"
REFERENCE = "models/default/fashion-vit.reference.json"
SUBSET = 500
SAMPLE_CLASSES = {9: "ankle-boot", 1: "trouser", 2: "pullover", 3: "dress", 7: "sneaker", 8: "bag"}


def read_gz(name):
    with gzip.open(os.path.join(DATA, name), "rb") as f:
        return f.read()


def write_gz(path, data):
    # mtime 0 and no file name in the gzip header: the same bytes on every run
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as f:
        f.write(data)


def subset_idx(blob, count, item_bytes):
    """An idx file's header with the first dimension set to `count`, then the first items."""
    dims = blob[3]
    header = bytearray(blob[: 4 + 4 * dims])
    header[4:8] = count.to_bytes(4, "big")
    return bytes(header) + blob[4 + 4 * dims : 4 + 4 * dims + count * item_bytes]


def main():
    images = read_gz("t10k-images-idx3-ubyte.gz")
    labels = read_gz("t10k-labels-idx1-ubyte.gz")
    os.makedirs(FIXTURES, exist_ok=True)
    write_gz(os.path.join(FIXTURES, f"t10k-images-first{SUBSET}-idx3-ubyte.gz"), subset_idx(images, SUBSET, 28 * 28))
    write_gz(os.path.join(FIXTURES, f"t10k-labels-first{SUBSET}-idx1-ubyte.gz"), subset_idx(labels, SUBSET, 1))

    with open(REFERENCE) as f:
        predictions = json.load(f)["predictions"]
    os.makedirs(SAMPLES, exist_ok=True)
    for cls, name in SAMPLE_CLASSES.items():
        index = next(i for i in range(10000) if labels[8 + i] == cls and int(predictions[i]) == cls)
        pixels = images[16 + index * 784 : 16 + (index + 1) * 784]
        Image.frombytes("L", (28, 28), pixels).save(os.path.join(SAMPLES, f"{name}.jpg"), quality=95)
        print(f"{name}.jpg: t10k image {index}")


if __name__ == "__main__":
    main()
