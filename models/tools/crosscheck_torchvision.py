"""Checks reference.py against torchvision's VisionTransformer (nn.MultiheadAttention, nn.LayerNorm,
nn.GELU, a real Conv2d patch embedding) loaded with the same weights.

    /usr/bin/python3 models/tools/crosscheck_torchvision.py <checkpoint dir> <inputs.f32> [--count N]

Works for every layout reference.py reads; for distilled checkpoints the distillation token is
inserted after the class token and the two heads are averaged, as in HF DeiT. Prints the largest
absolute difference of the logits and of the final LayerNorm output, and exits nonzero when they
exceed float32 rounding (1e-4 on logits).
"""

import argparse
import functools
import os
import sys

import numpy as np
import torch
from torch import nn
from torchvision.models.vision_transformer import VisionTransformer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference  # noqa: E402


def torchvision_model(cfg, w):
    dim = cfg["hidden_size"]
    classes = w["classifier.weight"].shape[0]
    m = VisionTransformer(image_size=cfg["image_size"], patch_size=cfg["patch_size"],
                          num_layers=cfg["num_hidden_layers"], num_heads=cfg["num_attention_heads"],
                          hidden_dim=dim, mlp_dim=cfg["intermediate_size"], num_classes=classes,
                          norm_layer=functools.partial(nn.LayerNorm, eps=cfg["layer_norm_eps"]))
    # torchvision sizes pos_embedding for one class token; a distilled model has one more token
    m.encoder.pos_embedding = nn.Parameter(w["embeddings.position_embeddings"].clone())
    sd = {
        "class_token": w["embeddings.cls_token"],
        "conv_proj.weight": w["embeddings.patch_embeddings.projection.weight"],
        "conv_proj.bias": w["embeddings.patch_embeddings.projection.bias"],
        "encoder.pos_embedding": w["embeddings.position_embeddings"],
        "encoder.ln.weight": w["layernorm.weight"],
        "encoder.ln.bias": w["layernorm.bias"],
        "heads.head.weight": w["classifier.weight"],
        "heads.head.bias": w["classifier.bias"],
    }
    for i in range(cfg["num_hidden_layers"]):
        hf, tv = f"encoder.layer.{i}.", f"encoder.layers.encoder_layer_{i}."
        for part in ("weight", "bias"):
            sd[f"{tv}ln_1.{part}"] = w[f"{hf}layernorm_before.{part}"]
            sd[f"{tv}ln_2.{part}"] = w[f"{hf}layernorm_after.{part}"]
            sd[f"{tv}self_attention.in_proj_{part}"] = torch.cat(
                [w[f"{hf}attention.attention.{q}.{part}"] for q in ("query", "key", "value")])
            sd[f"{tv}self_attention.out_proj.{part}"] = w[f"{hf}attention.output.dense.{part}"]
            sd[f"{tv}mlp.0.{part}"] = w[f"{hf}intermediate.dense.{part}"]
            sd[f"{tv}mlp.3.{part}"] = w[f"{hf}output.dense.{part}"]
    m.load_state_dict(sd, strict=True)
    return m.eval()


def torchvision_forward(m, w, pixels):
    """pixels: (batch, channels, size, size) -> logits (batch, classes), output (batch, tokens, dim)."""
    x = m._process_input(pixels)  # (batch, patches, dim) through the Conv2d
    lead = [m.class_token.expand(x.shape[0], -1, -1)]
    distilled = "embeddings.distillation_token" in w
    if distilled:
        lead.append(w["embeddings.distillation_token"].expand(x.shape[0], -1, -1))
    out = m.encoder(torch.cat(lead + [x], dim=1))  # adds pos_embedding, layers, final LayerNorm
    logits = m.heads(out[:, 0])
    if distilled:
        head = w["distillation_classifier.weight"], w["distillation_classifier.bias"]
        logits = (logits + out[:, 1] @ head[0].T + head[1]) / 2
    return logits, out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("checkpoint")
    ap.add_argument("inputs")
    ap.add_argument("--count", type=int, default=4)
    args = ap.parse_args()

    torch.set_num_threads(1)
    cfg, layout, w = reference.load(args.checkpoint)
    c, s = cfg["num_channels"], cfg["image_size"]
    pixels = torch.from_numpy(np.fromfile(args.inputs, dtype="<f4").reshape(-1, c, s, s))[: args.count]
    m = torchvision_model(cfg, w)
    with torch.no_grad():
        tv_logits, tv_out = torchvision_forward(m, w, pixels)
        worst_logits = worst_out = 0.0
        for i, x in enumerate(pixels):
            logits, out, _, _ = reference.forward(w, cfg, x)
            worst_logits = max(worst_logits, (logits - tv_logits[i]).abs().max().item())
            worst_out = max(worst_out, (out - tv_out[i]).abs().max().item())
            assert logits.argmax() == tv_logits[i].argmax(), f"input {i}: top-1 differs"
    scale = tv_logits.abs().max().item()
    print(f"{args.checkpoint} ({layout}, {len(pixels)} inputs): max |logits diff| {worst_logits:.3g} "
          f"(logits up to {scale:.3g}), max |final LayerNorm output diff| {worst_out:.3g}")
    if worst_logits > 1e-4 * max(1.0, scale):
        sys.exit(1)


if __name__ == "__main__":
    main()
