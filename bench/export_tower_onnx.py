"""Exports a hub-layout image tower (CLIP, SigLIP, DINOv2, SmolVLM's vision tower and connector:
models/tools/make-random-tower.ts) to ONNX for
onnxruntime-web, float32 and dynamic int8, from the float32 reference forward passes of
models/tools/reference_towers.py.

    /usr/bin/python3 bench/export_tower_onnx.py HF_DIR OUT_DIR

Writes into OUT_DIR:
  model.f32.onnx             torch.onnx.export of reference_towers' vision forward pass on one image: input
                             `pixel_values` [1, 3, size, size], output the embedding /v1/embed answers by
                             default, [1, length]: CLIP `image_embeds` (post_layernorm class token through
                             visual_projection), SigLIP's pooler (the attention pooling head), DINOv2's pooler
                             (the class token after the final layernorm); Idefics3 (SmolVLM) the image tokens
                             of one tile, flattened (/v1/image_tokens)
  model.int8.onnx            the same graph rewritten as onnxruntime's `quantize_dynamic` writes it
                             (quantize_dynamic.py)
  reference-embeddings.f32   float32 [images][length]: reference_towers' forward pass on HF_DIR/inputs.f32

The exported module is reference_towers' own functions with one substitution: layer_norm as
torch.nn.functional.layer_norm, the single LayerNormalization op transformers' nn.LayerNorm exports to (as
export_onnx.py's ViT does); its outputs must match the reference's before it is exported.
"""

import json
import os
import sys

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from torch import nn

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "models", "tools"))
sys.path.insert(0, here)
import reference_towers as rt  # noqa: E402
from export_onnx import MATCH_TOLERANCE, OPSET  # noqa: E402
from hf_checkpoint import read_checkpoint  # noqa: E402
from quantize_dynamic import quantize_dynamic  # noqa: E402


def tower_config(cfg, w):
    """(family, vision config with the config class's defaults, the weights the vision forward reads)."""
    family = rt.detect_family(cfg, w)
    if family in ("clip", "clip-vision"):
        c = rt.with_defaults(rt.CLIP_VISION_DEFAULTS, cfg["vision_config"] if family == "clip" else cfg)
        keep = lambda n: n.startswith("vision_model.") or n == "visual_projection.weight"  # noqa: E731
        return "clip", c, keep
    if family == "siglip":
        return "siglip", rt.with_defaults(rt.SIGLIP_VISION_DEFAULTS, cfg.get("vision_config")), \
            lambda n: n.startswith("vision_model.")
    if family == "dinov2":
        c = rt.with_defaults(rt.DINOV2_DEFAULTS, cfg)
        if c["use_swiglu_ffn"]:
            raise SystemExit("use_swiglu_ffn (DINOv2 giant) is not in the reference")
        return "dinov2", c, lambda n: n != "embeddings.mask_token"
    if family == "idefics3":
        c = dict(rt.with_defaults(rt.IDEFICS3_VISION_DEFAULTS, cfg.get("vision_config")),
                 scale_factor=cfg.get("scale_factor", 2))
        return "idefics3", c, lambda n: n.startswith(("model.vision_model.", "model.connector."))
    raise SystemExit(f"{family} is not an image tower this benchmark exports")


def embedding(family, c, w, x):
    """The default /v1/embed output of one image x [3, size, size] through reference_towers' functions."""
    if family == "clip":
        _, pooled, _, _ = rt.clip_vision(w, "vision_model.", c, x)
        return pooled @ w["visual_projection.weight"].T
    if family == "siglip":
        return rt.siglip_vision(w, "vision_model.", c, x)[1]
    if family == "idefics3":
        return rt.idefics3(w, c, c["scale_factor"], x)[1].flatten()
    last, _, _ = rt.dinov2(w, c, x, "size")
    return last[0]


def fused_layer_norm(x, w, name, eps):
    weight = w[name + ".weight"]
    return F.layer_norm(x, (int(weight.shape[0]),), weight, w[name + ".bias"], eps)


class Tower(nn.Module):
    """The vision weights as parameters (so that they export as initializers), the forward pass as above."""

    def __init__(self, family, c, w, size):
        super().__init__()
        self.family, self.c = family, c
        if family == "dinov2":
            # The position table interpolated to this input's grid by the reference's own function, once:
            # a constant for a fixed input size, which the reference then uses as it is (its grid is native).
            w = dict(w)
            table = w["embeddings.position_embeddings"].reshape(-1, w["embeddings.cls_token"].numel())
            grid = size // c["patch_size"]
            w["embeddings.position_embeddings"] = rt.dinov2_position_embeddings(
                table, grid, grid, "size", c["num_register_tokens"] > 0)[None]
        self.names = sorted(w)
        self.weights = nn.ParameterList(nn.Parameter(w[n], requires_grad=False) for n in self.names)

    def forward(self, pixel_values):  # [1, 3, size, size] -> [1, length]
        w = dict(zip(self.names, self.weights))
        return embedding(self.family, self.c, w, pixel_values[0])[None]


def main(hf_dir, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    torch.set_num_threads(1)
    cfg, _, tensors = read_checkpoint(hf_dir)
    family, c, keep = tower_config(cfg, tensors)
    w = {n: t for n, t in tensors.items() if keep(n) and t.is_floating_point()}
    with open(os.path.join(hf_dir, "inputs.json")) as f:
        shape = json.load(f)["shape"]
    pixels = torch.from_numpy(np.fromfile(os.path.join(hf_dir, "inputs.f32"), dtype="<f4").reshape(-1, 1, *shape).copy())

    # Idefics3's bucketed position ids depend only on the tile's size: computed once (torch.bucketize has no
    # ONNX op), a constant in the exported graph
    plain_ids, ids = rt.idefics3_position_ids, {}
    rt.idefics3_position_ids = lambda *size: ids.setdefault(size, plain_ids(*size))
    model = Tower(family, c, w, shape[-1]).eval()
    with torch.no_grad():
        reference = torch.stack([embedding(family, c, w, p[0]) for p in pixels]).numpy()
        plain_layer_norm = rt.layer_norm
        rt.layer_norm = fused_layer_norm
        try:
            ours = torch.cat([model(p) for p in pixels]).numpy()
            diff = float(np.abs(ours - reference).max())
            if diff > MATCH_TOLERANCE * max(1.0, float(np.abs(reference).max())):
                raise SystemExit(f"the export module differs from reference_towers.py's forward: max |diff| {diff:.3g}")
            f32 = os.path.join(out_dir, "model.f32.onnx")
            torch.onnx.export(
                model, pixels[0], f32, opset_version=OPSET, input_names=["pixel_values"],
                output_names=["embedding"], do_constant_folding=True,
            )
        finally:
            rt.layer_norm = plain_layer_norm
    reference.astype("<f4").tofile(os.path.join(out_dir, "reference-embeddings.f32"))
    quantized = quantize_dynamic(onnx.load(f32))
    onnx.checker.check_model(quantized)
    onnx.save(quantized, os.path.join(out_dir, "model.int8.onnx"))
    print(f"exported {hf_dir} ({family}) -> {out_dir}: {len(pixels)} inputs, embedding [{reference.shape[1]}], "
          f"module vs reference max |diff| {diff:.2g}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
