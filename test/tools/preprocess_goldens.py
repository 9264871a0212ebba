#!/usr/bin/python3
"""Goldens for worker/image: Hugging Face image-processor preprocessing done with PIL and numpy.

Reproduces what transformers' ViTImageProcessor / DeiTImageProcessor (and the shortest-edge processors)
do to an RGB image: PIL Image.resize((w, h), resample, reducing_gap=None), image_transforms.center_crop
(zero padding when the crop is larger), rescale (astype(float64) * scale, then float32) and normalize
(mean and std cast to float32, (x - mean) / std in float32), channels first.

Inputs: .cache/image-decoded/ from test/tools/dump_decoded.ts (jpeg-js's pixels, so that resize and
normalization are compared on identical input), and the photos themselves for the end-to-end check
against PIL's own decoder (Image.open + ImageOps.exif_transpose + convert("RGB")).

Writes test/goldens/preprocess/: cases.json, one gzipped uint8 HWC image per case (after resize and
crop, before rescale), PIL's decode of small fixtures, and generates the EXIF orientation and chroma
subsampling fixtures in test/fixtures/images/ (orient-N.jpg, cat-422-*.jpg, cat-420-*.jpg).
Run: npx node test/tools/dump_decoded.ts && /usr/bin/python3 test/tools/preprocess_goldens.py
"""
import gzip
import hashlib
import json
import math
import os

import numpy as np
from PIL import Image, ImageOps

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FIXTURES = os.path.join(ROOT, "test", "fixtures", "images")
DECODED = os.path.join(ROOT, ".cache", "image-decoded")
OUT = os.path.join(ROOT, "test", "goldens", "preprocess")

HALF = [0.5, 0.5, 0.5]
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


def pp(size, resample, crop=None, mean=HALF, std=HALF, rescale=True, normalize=True):
    return {
        "doResize": size is not None, "size": size or {"height": 0, "width": 0}, "resample": resample,
        "doCenterCrop": crop is not None, "cropSize": crop,
        "doRescale": rescale, "rescaleFactor": 1 / 255,
        "doNormalize": normalize, "imageMean": mean, "imageStd": std,
    }


CONFIGS = {
    # google/vit-base-patch16-224
    "vit": pp({"height": 224, "width": 224}, 2),
    # facebook/deit-*: DeiTImageProcessor turns "size": 256 into a 256x256 square, then crops 224
    "deit": pp({"height": 256, "width": 256}, 3, {"height": 224, "width": 224}, IMAGENET_MEAN, IMAGENET_STD),
    # the shortest-edge form (size {"shortest_edge": 256}) with the same crop
    "short256": pp({"shortestEdge": 256}, 3, {"height": 224, "width": 224}, IMAGENET_MEAN, IMAGENET_STD),
    "lanczos": pp({"height": 96, "width": 128}, 1),
    "box": pp({"height": 60, "width": 80}, 4, None, IMAGENET_MEAN, IMAGENET_STD),
    "hamming": pp({"height": 50, "width": 70}, 5),
    "nearest": pp({"height": 45, "width": 61}, 0),
    # crop larger than the resized image: center_crop's zero padding on both sides
    "pad": pp({"height": 40, "width": 50}, 2, {"height": 48, "width": 63}, IMAGENET_MEAN, IMAGENET_STD),
    # no normalization: pixel_values is the rescaled image
    "rescale-only": pp({"height": 32, "width": 32}, 3, None, normalize=False),
}

PHOTOS = [
    "astronaut-444.jpg", "camera-grayscale.jpg", "cat-baseline-420.jpg", "cat-tiny-37x23.jpg",
    "coffee-progressive.jpg", "hubble-cmyk.jpg", "retina-restart-markers.jpg", "rocket-exif-orient6.jpg",
]
SMALL_CASES = ["cat-baseline-420.jpg", "rocket-exif-orient6.jpg", "cat-tiny-37x23.jpg"]
CASES = (
    [(p, "vit") for p in PHOTOS]
    # on a square photo the shortest-edge and the square resize agree: "deit" covers those
    + [(p, "short256") for p in ["cat-baseline-420.jpg", "cat-tiny-37x23.jpg", "coffee-progressive.jpg",
                                 "rocket-exif-orient6.jpg"]]
    + [(p, "deit") for p in ["astronaut-444.jpg", "coffee-progressive.jpg"]]
    + [(p, c) for c in ["lanczos", "box", "hamming", "nearest", "pad", "rescale-only"] for p in SMALL_CASES]
)


def resize_size(cfg, height, width):
    """transformers: size {height, width} as is; shortest_edge via get_resize_output_image_size."""
    size = cfg["size"]
    if "shortestEdge" not in size:
        return size["height"], size["width"]
    s = size["shortestEdge"]
    short, long = (width, height) if width <= height else (height, width)
    new_short, new_long = s, int(s * long / short)
    return (new_long, new_short) if width <= height else (new_short, new_long)


def center_crop(image_chw, crop_height, crop_width):
    """transformers.image_transforms.center_crop on a channels-first array."""
    orig_height, orig_width = image_chw.shape[-2:]
    top = (orig_height - crop_height) // 2
    bottom = top + crop_height
    left = (orig_width - crop_width) // 2
    right = left + crop_width
    if top >= 0 and bottom <= orig_height and left >= 0 and right <= orig_width:
        return image_chw[..., top:bottom, left:right]
    new_height = max(crop_height, orig_height)
    new_width = max(crop_width, orig_width)
    new_image = np.zeros_like(image_chw, shape=image_chw.shape[:-2] + (new_height, new_width))
    top_pad = math.ceil((new_height - orig_height) / 2)
    left_pad = math.ceil((new_width - orig_width) / 2)
    new_image[..., top_pad:top_pad + orig_height, left_pad:left_pad + orig_width] = image_chw
    top += top_pad
    bottom += top_pad
    left += left_pad
    right += left_pad
    return new_image[..., max(0, top):min(new_height, bottom), max(0, left):min(new_width, right)]


def rescale_normalize(x, cfg):
    """transformers' rescale then normalize, channels last."""
    if cfg["doRescale"]:
        x = (x.astype(np.float64) * cfg["rescaleFactor"]).astype(np.float32)
    if cfg["doNormalize"]:
        if not np.issubdtype(x.dtype, np.floating):
            x = x.astype(np.float32)
        mean = np.array(cfg["imageMean"], dtype=x.dtype)
        std = np.array(cfg["imageStd"], dtype=x.dtype)
        x = (x - mean) / std
    return x.astype(np.float32)


def pipeline(rgb_hwc, cfg):
    """Returns (uint8 HWC after resize and crop, float32 CHW pixel_values)."""
    img = rgb_hwc
    if cfg["doResize"]:
        h, w = resize_size(cfg, *img.shape[:2])
        img = np.array(Image.fromarray(img, "RGB").resize((w, h), resample=cfg["resample"], reducing_gap=None))
    if cfg["doCenterCrop"]:
        chw = center_crop(img.transpose(2, 0, 1), cfg["cropSize"]["height"], cfg["cropSize"]["width"])
        img = np.ascontiguousarray(chw.transpose(1, 2, 0))
    values = rescale_normalize(img, cfg)
    return img, np.ascontiguousarray(values.transpose(2, 0, 1))


def value_table(cfg):
    """The pipeline's value for every uint8 in every channel: [3][256] float32."""
    ramp = np.repeat(np.arange(256, dtype=np.uint8)[None, :, None], 3, axis=2)
    return rescale_normalize(ramp, cfg)[0].T.astype(np.float32)


def write_gz(name, data):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(gzip.compress(data, compresslevel=9, mtime=0))


def pil_decode(name):
    with Image.open(os.path.join(FIXTURES, name)) as im:
        return np.array(ImageOps.exif_transpose(im).convert("RGB"))


def orientation_fixtures():
    """Eight JPEGs of one asymmetric picture differing only in their EXIF orientation tag."""
    base = np.zeros((16, 32, 3), np.uint8)
    base[:8, :16] = (220, 30, 30)
    base[:8, 16:] = (30, 200, 40)
    base[8:, :16] = (40, 60, 210)
    base[8:, 16:] = (240, 240, 240)
    base[2:6, 2:6] = (0, 0, 0)  # marks the top-left corner inside the red quadrant
    goldens = {}
    for orientation in range(1, 9):
        name = f"orient-{orientation}.jpg"
        exif = Image.Exif()
        exif[0x0112] = orientation
        Image.fromarray(base, "RGB").save(os.path.join(FIXTURES, name), "JPEG", quality=95, subsampling=0,
                                          exif=exif.tobytes())
        rgb = pil_decode(name)
        write_gz(f"{name}.pil.u8.gz", rgb.tobytes())
        goldens[name] = {"orientation": orientation, "width": rgb.shape[1], "height": rgb.shape[0]}
    return goldens


def decoder_fixtures():
    """Small JPEGs with odd sizes in 4:2:2 and 4:2:0, and PIL's full decode of them and of the tiny cat:
    pixel by pixel references for chroma upsampling at the image edges."""
    cat = pil_decode("cat-baseline-420.jpg")
    for name, size, subsampling in [("cat-422-101x67.jpg", (101, 67), 1), ("cat-420-99x65.jpg", (99, 65), 2)]:
        small = Image.fromarray(cat, "RGB").resize(size, Image.BICUBIC)
        small.save(os.path.join(FIXTURES, name), "JPEG", quality=90, subsampling=subsampling)
    goldens = {}
    for name in ["cat-tiny-37x23.jpg", "cat-422-101x67.jpg", "cat-420-99x65.jpg"]:
        rgb = pil_decode(name)
        write_gz(f"{name}.pil.u8.gz", rgb.tobytes())
        goldens[name] = {"width": rgb.shape[1], "height": rgb.shape[0]}
    return goldens


def main():
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(DECODED, "index.json")) as f:
        decoded_index = json.load(f)
    decoded = {}
    for name in PHOTOS:
        size = decoded_index[name]
        raw = np.fromfile(os.path.join(DECODED, name + ".rgb"), np.uint8)
        decoded[name] = raw.reshape(size["height"], size["width"], 3)

    cases = []
    for photo, config in CASES:
        cfg = CONFIGS[config]
        u8, values = pipeline(decoded[photo], cfg)
        file = f"{photo}.{config}.u8.gz"
        write_gz(file, u8.tobytes())
        cases.append({
            "photo": photo, "config": config, "file": file,
            "input": {"height": decoded[photo].shape[0], "width": decoded[photo].shape[1],
                      "sha256": hashlib.sha256(decoded[photo].tobytes()).hexdigest()},
            "output": {"height": u8.shape[0], "width": u8.shape[1]},
            "sha256": hashlib.sha256(values.astype("<f4").tobytes()).hexdigest(),
        })
        print(f"{photo:28s} {config:12s} -> {u8.shape[1]}x{u8.shape[0]}")

    # End to end: PIL's decoder instead of jpeg-js, same "vit" preprocessing.
    end_to_end = []
    for photo in PHOTOS:
        rgb = pil_decode(photo)
        u8, _ = pipeline(rgb, CONFIGS["vit"])
        file = f"{photo}.pil-vit.u8.gz"
        write_gz(file, u8.tobytes())
        diff = np.abs(rgb.astype(np.int16) - decoded[photo].astype(np.int16)) if rgb.shape == decoded[photo].shape else None
        end_to_end.append({
            "photo": photo, "config": "vit", "file": file,
            "decoded": {"height": rgb.shape[0], "width": rgb.shape[1]},
            "decodedMean": [float(m) for m in rgb.reshape(-1, 3).mean(axis=0)],
            "decodedGray": bool((rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all()),
        })
        if diff is not None:
            print(f"{photo:28s} PIL vs jpeg-js decode: mean |d| {diff.mean():.3f}, max {diff.max()}")

    goldens = {
        "generator": "test/tools/preprocess_goldens.py",
        "pillow": Image.__version__,
        "numpy": np.__version__,
        "configs": CONFIGS,
        "tables": {name: value_table(cfg).astype(float).tolist() for name, cfg in CONFIGS.items()},
        "cases": cases,
        "endToEnd": end_to_end,
        "orientation": orientation_fixtures(),
        "decoded": decoder_fixtures(),
    }
    with open(os.path.join(OUT, "cases.json"), "w") as f:
        f.write(json.dumps(goldens, separators=(",", ":")).replace('},{"', '},\n{"'))
        f.write("\n")


if __name__ == "__main__":
    main()
