"""Reference preprocessing for the towers' image processors, with Pillow and NumPy as transformers' (slow,
PIL-based) processors compute it, from a checkpoint's preprocessor_config.json:

  CLIPImageProcessor (and the legacy CLIPFeatureExtractor file), BitImageProcessor (DINOv2):
      resize the shortest edge (long side int(size * long / short)), center crop, rescale, normalize.
  SiglipImageProcessor: resize to a fixed height x width with the file's resample (v1 bicubic, SigLIP 2
      fixed-resolution bilinear), rescale, normalize.
  Idefics3ImageProcessor (SmolVLM): resize the longest edge to size.longest_edge (other side truncated,
      then made even; bounded by 4096), resize both sides up to multiples of max_image_size.longest_edge,
      cut into tiles of that size row by row, append the whole image resized to one tile (the global view,
      last), rescale, normalize.

Every resize is PIL's Image.resize((w, h), resample, reducing_gap=None) on the uint8 image; rescale is
float64 * rescale_factor then float32; normalize is (x - mean) / std in float32 (transformers'
image_transforms). The fast (torchvision) processors resize differently and are not what this follows.
Written from huggingface/transformers: clip/image_processing_clip.py, siglip/image_processing_siglip.py,
bit/image_processing_bit.py, image_transforms.py (resize, center_crop, get_resize_output_image_size) and
smolvlm/image_processing_smolvlm.py 00964605f206d1f8b86e63d0e9afade4762c58c0 (the Idefics3 processor with
MAX_IMAGE_SIZE 4096; idefics3/image_processing_idefics3.py 000c8eae bounds by 1820 instead and refuses
SmolVLM's longest_edge 2048).

    /usr/bin/python3 models/tools/preprocess_towers.py PREPROCESSOR_CONFIG IMAGE... -o pixels.f32 [--meta m.json]

writes every image's pixel_values (Idefics3: every tile, the global view last) as little-endian f32
[n][3][h][w], and with --meta their shapes and, for Idefics3, rows and cols of the tile grid.
"""

import argparse
import json
import math

import numpy as np
from PIL import Image, ImageOps

OPENAI_CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
OPENAI_CLIP_STD = [0.26862954, 0.26130258, 0.27577711]
IMAGENET_STANDARD_MEAN = [0.5, 0.5, 0.5]
IMAGENET_STANDARD_STD = [0.5, 0.5, 0.5]
IDEFICS3_MAX_IMAGE_SIZE = 4096

# each processor class's constructor defaults, for fields a preprocessor_config.json leaves out
DEFAULTS = {
    "CLIPImageProcessor": dict(do_resize=True, size={"shortest_edge": 224}, resample=3, do_center_crop=True,
                               crop_size={"height": 224, "width": 224}, do_rescale=True, rescale_factor=1 / 255,
                               do_normalize=True, image_mean=OPENAI_CLIP_MEAN, image_std=OPENAI_CLIP_STD),
    "SiglipImageProcessor": dict(do_resize=True, size={"height": 224, "width": 224}, resample=3, do_rescale=True,
                                 rescale_factor=1 / 255, do_normalize=True, image_mean=IMAGENET_STANDARD_MEAN,
                                 image_std=IMAGENET_STANDARD_STD),
    "Idefics3ImageProcessor": dict(do_resize=True, size={"longest_edge": 4 * 364}, resample=1,
                                   do_image_splitting=True, max_image_size={"longest_edge": 364}, do_rescale=True,
                                   rescale_factor=1 / 255, do_normalize=True, image_mean=IMAGENET_STANDARD_MEAN,
                                   image_std=IMAGENET_STANDARD_STD),
}
DEFAULTS["BitImageProcessor"] = DEFAULTS["CLIPImageProcessor"]
DEFAULTS["SmolVLMImageProcessor"] = DEFAULTS["Idefics3ImageProcessor"]


def processor_type(pre):
    kind = pre.get("image_processor_type") or pre.get("feature_extractor_type", "")
    kind = kind.replace("FeatureExtractor", "ImageProcessor").replace("ImageProcessorFast", "ImageProcessor")
    if kind not in DEFAULTS:
        raise ValueError(f"image processor {kind!r} is not one this reference knows")
    return kind


def settings(pre):
    """The processor's effective settings: defaults, then the file, with sizes as get_size_dict makes them."""
    kind = processor_type(pre)
    s = dict(DEFAULTS[kind])
    s.update({k: v for k, v in pre.items() if v is not None})
    square = kind in ("SiglipImageProcessor",)  # get_size_dict's default_to_square for `size`
    if isinstance(s["size"], int):
        s["size"] = {"height": s["size"], "width": s["size"]} if square else {"shortest_edge": s["size"]}
    if isinstance(s.get("crop_size"), int):
        s["crop_size"] = {"height": s["crop_size"], "width": s["crop_size"]}
    s["kind"] = kind
    return s


def load_image(path):
    """transformers' load_image: EXIF orientation applied, then RGB."""
    with Image.open(path) as im:
        return np.array(ImageOps.exif_transpose(im).convert("RGB"))


def pil_resize(rgb, height, width, resample):
    return np.array(Image.fromarray(rgb, "RGB").resize((width, height), resample=resample, reducing_gap=None))


def shortest_edge_size(height, width, shortest):
    """image_transforms.get_resize_output_image_size with default_to_square=False."""
    short, long = (width, height) if width <= height else (height, width)
    if short == shortest:
        return height, width
    new_short, new_long = shortest, int(shortest * long / short)
    return (new_long, new_short) if width <= height else (new_short, new_long)


def center_crop(rgb, crop_height, crop_width):
    """image_transforms.center_crop on HWC (zero padding where the crop is larger)."""
    h, w = rgb.shape[:2]
    top, left = (h - crop_height) // 2, (w - crop_width) // 2
    if top >= 0 and left >= 0 and top + crop_height <= h and left + crop_width <= w:
        return rgb[top:top + crop_height, left:left + crop_width]
    new_h, new_w = max(crop_height, h), max(crop_width, w)
    padded = np.zeros((new_h, new_w, rgb.shape[2]), rgb.dtype)
    top_pad, left_pad = math.ceil((new_h - h) / 2), math.ceil((new_w - w) / 2)
    padded[top_pad:top_pad + h, left_pad:left_pad + w] = rgb
    top, left = top + top_pad, left + left_pad
    return padded[max(0, top):min(new_h, top + crop_height), max(0, left):min(new_w, left + crop_width)]


def rescale_normalize(rgb, s):
    """uint8 HWC -> float32 CHW pixel_values."""
    x = rgb
    if s["do_rescale"]:
        x = (x.astype(np.float64) * s["rescale_factor"]).astype(np.float32)
    if s["do_normalize"]:
        x = x.astype(np.float32)
        x = (x - np.array(s["image_mean"], dtype=np.float32)) / np.array(s["image_std"], dtype=np.float32)
    return np.ascontiguousarray(x.astype(np.float32).transpose(2, 0, 1))


# ---- Idefics3 sizes ----------------------------------------------------------------------------------


def idefics3_resize_size(height, width, longest_edge):
    """_resize_output_size_rescale_to_max_len, then _resize_output_size_scale_below_upper_bound(4096)."""
    aspect = width / height
    if width >= height:
        width = longest_edge
        height = int(width / aspect)
        if height % 2 != 0:
            height += 1
    else:
        height = longest_edge
        width = int(height * aspect)
        if width % 2 != 0:
            width += 1
    height, width = max(height, 1), max(width, 1)
    aspect = width / height
    if width >= height and width > IDEFICS3_MAX_IMAGE_SIZE:
        width = IDEFICS3_MAX_IMAGE_SIZE
        height = int(width / aspect)
    elif height > width and height > IDEFICS3_MAX_IMAGE_SIZE:
        height = IDEFICS3_MAX_IMAGE_SIZE
        width = int(height * aspect)
    return max(height, 1), max(width, 1)


def idefics3_encoder_size(height, width, tile):
    """resize_for_vision_encoder: both sides up to multiples of the tile, from the long side's aspect."""
    aspect = width / height
    if width >= height:
        width = math.ceil(width / tile) * tile
        height = int(width / aspect)
        height = math.ceil(height / tile) * tile
    else:
        height = math.ceil(height / tile) * tile
        width = int(height * aspect)
        width = math.ceil(width / tile) * tile
    return height, width


def idefics3_frames(rgb, s):
    """Returns (uint8 HWC frames: tiles row by row then the global view, rows, cols)."""
    resample = s["resample"]
    if s["do_resize"]:
        rgb = pil_resize(rgb, *idefics3_resize_size(*rgb.shape[:2], s["size"]["longest_edge"]), resample)
    if not s["do_image_splitting"]:
        return [rgb], 0, 0
    tile = s["max_image_size"]["longest_edge"]
    rgb = pil_resize(rgb, *idefics3_encoder_size(*rgb.shape[:2], tile), resample)
    height, width = rgb.shape[:2]
    if height <= tile and width <= tile:
        return [rgb], 0, 0
    rows, cols = math.ceil(height / tile), math.ceil(width / tile)
    tile_h, tile_w = math.ceil(height / rows), math.ceil(width / cols)
    frames = [rgb[r * tile_h:min((r + 1) * tile_h, height), c * tile_w:min((c + 1) * tile_w, width)]
              for r in range(rows) for c in range(cols)]
    frames.append(pil_resize(rgb, tile, tile, resample) if (height, width) != (tile, tile) else rgb)
    return frames, rows, cols


# ---- the processors ----------------------------------------------------------------------------------


def preprocess(rgb, pre):
    """rgb: uint8 HWC (after load_image). Returns (list of float32 CHW pixel_values, info dict)."""
    s = settings(pre)
    if s["kind"] in ("Idefics3ImageProcessor", "SmolVLMImageProcessor"):
        frames, rows, cols = idefics3_frames(rgb, s)
        return [rescale_normalize(f, s) for f in frames], {"rows": rows, "cols": cols, "tiles": len(frames)}
    if s["do_resize"]:
        size = s["size"]
        if "shortest_edge" in size:
            h, w = shortest_edge_size(*rgb.shape[:2], size["shortest_edge"])
        else:
            h, w = size["height"], size["width"]
        rgb = pil_resize(rgb, h, w, s["resample"])
    if s.get("do_center_crop"):
        rgb = center_crop(rgb, s["crop_size"]["height"], s["crop_size"]["width"])
    return [rescale_normalize(rgb, s)], {}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("preprocessor_config")
    ap.add_argument("images", nargs="+")
    ap.add_argument("-o", "--out", required=True)
    ap.add_argument("--meta")
    args = ap.parse_args()
    with open(args.preprocessor_config) as f:
        pre = json.load(f)
    values, meta = [], []
    for path in args.images:
        frames, info = preprocess(load_image(path), pre)
        values.extend(frames)
        meta.append({"image": path, "shape": list(frames[0].shape), "frames": len(frames), **info})
    np.concatenate([v.ravel() for v in values]).astype("<f4").tofile(args.out)
    if args.meta:
        with open(args.meta, "w") as f:
            json.dump({"processor": settings(pre)["kind"], "images": meta}, f, indent=2)
            f.write("\n")
    print(f"{args.out}: {len(values)} pixel_values arrays from {len(args.images)} images")


if __name__ == "__main__":
    main()
