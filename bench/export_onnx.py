"""Exports a Hugging Face ViT checkpoint directory to ONNX for onnxruntime-web, float32 and dynamic int8.

    /usr/bin/python3 bench/export_onnx.py HF_DIR OUT_DIR

Writes into OUT_DIR:
  model.f32.onnx        torch.onnx.export of the module below, shaped as transformers' ViTForImageClassification
                        (patch Conv, Linear layers, LayerNorm, erf GELU), as optimum exports it: input
                        `pixel_values` [1, channels, size, size], output `logits` [1, classes]
  model.int8.onnx       the same graph rewritten as onnxruntime's `quantize_dynamic` writes it (quantize_dynamic.py)
  reference-logits.f32  float32 [images][classes]: the project's reference forward (models/tools/reference.py)
                        on HF_DIR/inputs.f32, which the module must reproduce before it is exported
"""

import math
import os
import sys

import numpy as np
import onnx
import torch
from torch import nn

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "models", "tools"))
sys.path.insert(0, here)
import reference  # noqa: E402
from quantize_dynamic import quantize_dynamic  # noqa: E402

OPSET = 17  # LayerNormalization is a single op from 17 on, as optimum exports ViTs
MATCH_TOLERANCE = 1e-4  # module vs reference forward: float32, only the summation order differs


class SelfAttention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.query, self.key, self.value = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.dense = nn.Linear(dim, dim)

    def forward(self, x):  # x: [1, tokens, dim]
        b, t, d = x.shape

        def split(y):  # [1, tokens, dim] -> [1, heads, tokens, headDim]
            return y.view(b, t, self.heads, self.head_dim).transpose(1, 2)

        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.head_dim)  # [1, heads, tokens, tokens]
        context = scores.softmax(dim=-1) @ v  # [1, heads, tokens, headDim]
        return self.dense(context.transpose(1, 2).reshape(b, t, d))


class Layer(nn.Module):
    def __init__(self, dim, heads, hidden, eps):
        super().__init__()
        self.layernorm_before = nn.LayerNorm(dim, eps=eps)
        self.attention = SelfAttention(dim, heads)
        self.layernorm_after = nn.LayerNorm(dim, eps=eps)
        self.intermediate = nn.Linear(dim, hidden)
        self.output = nn.Linear(hidden, dim)

    def forward(self, h):
        h = h + self.attention(self.layernorm_before(h))
        return h + self.output(nn.functional.gelu(self.intermediate(self.layernorm_after(h))))


class ViT(nn.Module):
    """HF ViTForImageClassification (and DeiTForImageClassificationWithTeacher when distilled)."""

    def __init__(self, channels, size, patch, dim, heads, hidden, layers, classes, eps, distilled):
        super().__init__()
        extra = 2 if distilled else 1
        self.projection = nn.Conv2d(channels, dim, patch, stride=patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.distillation_token = nn.Parameter(torch.zeros(1, 1, dim)) if distilled else None
        self.position_embeddings = nn.Parameter(torch.zeros(1, (size // patch) ** 2 + extra, dim))
        self.layers = nn.ModuleList(Layer(dim, heads, hidden, eps) for _ in range(layers))
        self.layernorm = nn.LayerNorm(dim, eps=eps)
        self.classifier = nn.Linear(dim, classes)
        self.distillation_classifier = nn.Linear(dim, classes) if distilled else None

    def forward(self, pixel_values):  # [1, channels, size, size]
        patches = self.projection(pixel_values).flatten(2).transpose(1, 2)  # [1, patches, dim]
        tokens = [self.cls_token] + ([self.distillation_token] if self.distillation_token is not None else [])
        h = torch.cat(tokens + [patches], dim=1) + self.position_embeddings  # [1, tokens, dim]
        for layer in self.layers:
            h = layer(h)
        h = self.layernorm(h)
        logits = self.classifier(h[:, 0])  # [1, classes]
        if self.distillation_classifier is not None:
            logits = (logits + self.distillation_classifier(h[:, 1])) / 2
        return logits


def load(hf_dir):
    """The module with the checkpoint's weights, read through the reference's loader (any layout)."""
    cfg, _, w = reference.load(hf_dir)  # w: canonical unprefixed HF ViT names
    distilled = "embeddings.distillation_token" in w
    model = ViT(
        cfg["num_channels"], cfg["image_size"], cfg["patch_size"], cfg["hidden_size"], cfg["num_attention_heads"],
        cfg["intermediate_size"], cfg["num_hidden_layers"], w["classifier.weight"].shape[0], cfg["layer_norm_eps"],
        distilled,
    )
    names = {  # module name -> canonical name
        "projection.weight": "embeddings.patch_embeddings.projection.weight",
        "projection.bias": "embeddings.patch_embeddings.projection.bias",
        "cls_token": "embeddings.cls_token",
        "position_embeddings": "embeddings.position_embeddings",
    }
    if distilled:
        names["distillation_token"] = "embeddings.distillation_token"
    for p in ("weight", "bias"):
        for module in ["layernorm", "classifier"] + (["distillation_classifier"] if distilled else []):
            names[f"{module}.{p}"] = f"{module}.{p}"
        for i in range(len(model.layers)):
            for ours, theirs in [
                ("layernorm_before", "layernorm_before"), ("layernorm_after", "layernorm_after"),
                ("attention.query", "attention.attention.query"), ("attention.key", "attention.attention.key"),
                ("attention.value", "attention.attention.value"), ("attention.dense", "attention.output.dense"),
                ("intermediate", "intermediate.dense"), ("output", "output.dense"),
            ]:
                names[f"layers.{i}.{ours}.{p}"] = f"encoder.layer.{i}.{theirs}.{p}"
    state = {ours: w[theirs].reshape(model.state_dict()[ours].shape) for ours, theirs in names.items()}
    model.load_state_dict(state, strict=True)
    return model.eval(), cfg, w


def main(hf_dir, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    model, cfg, w = load(hf_dir)
    channels, size = cfg["num_channels"], cfg["image_size"]
    pixels = np.fromfile(os.path.join(hf_dir, "inputs.f32"), dtype="<f4").reshape(-1, 1, channels, size, size)
    with torch.no_grad():
        logits = np.stack([reference.forward(w, cfg, torch.from_numpy(p[0]))[0].numpy() for p in pixels])
        ours = np.stack([model(torch.from_numpy(p)).numpy()[0] for p in pixels])
    diff = float(np.abs(ours - logits).max())
    if diff > MATCH_TOLERANCE * max(1.0, float(np.abs(logits).max())):
        raise SystemExit(f"the export module differs from reference.py's forward: max |diff| {diff:.3g}")
    logits.astype("<f4").tofile(os.path.join(out_dir, "reference-logits.f32"))

    f32 = os.path.join(out_dir, "model.f32.onnx")
    with torch.no_grad():
        torch.onnx.export(
            model, torch.from_numpy(pixels[0]), f32, opset_version=OPSET,
            input_names=["pixel_values"], output_names=["logits"], do_constant_folding=True,
        )
    quantized = quantize_dynamic(onnx.load(f32))
    onnx.checker.check_model(quantized)
    onnx.save(quantized, os.path.join(out_dir, "model.int8.onnx"))
    print(f"exported {hf_dir} -> {out_dir}: {len(pixels)} inputs, logits [{logits.shape[1]}], "
          f"module vs reference max |diff| {diff:.2g}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
