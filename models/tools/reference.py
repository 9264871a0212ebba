"""Float32 reference forward pass of a ViT checkpoint, written from the Hugging Face ViT semantics
(no transformers): patch GEMM, class (+ distillation) token, position embeddings, pre-norm
encoder layers, final LayerNorm, classifier on token 0 (distilled: mean of the two heads).

    /usr/bin/python3 models/tools/reference.py <checkpoint dir> <inputs.f32> -o golden.json
        [--count N] [--hidden-states] [--attentions] [--name tiny] [--command "how the checkpoint was made"]

Reads the three checkpoint layouts (HF ViT, HF DeiT distilled, timm with or without dist_token)
in F32, F16 or BF16. Writes per input: logits, the final LayerNorm output of token 0 (`cls`) and
the mean of the final LayerNorm output over patch tokens (`meanPatch`); with --hidden-states also
the whole residual stream after the embeddings and after every layer, and the final LayerNorm
output for every token. With --attentions, also `attentions.json` beside the output: every layer's
softmax probabilities per head (transformers' `output_attentions`) for the first two inputs.
"""

import argparse
import hashlib
import json
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hf_checkpoint import read_checkpoint  # noqa: E402


def detect_layout(tensors):
    if "vit.embeddings.cls_token" in tensors:
        return "hf-vit"
    if "deit.embeddings.distillation_token" in tensors:
        return "hf-deit-distilled"
    if "blocks.0.attn.qkv.weight" in tensors:
        return "timm-distilled" if "dist_token" in tensors else "timm"
    raise ValueError("unknown checkpoint layout: no vit.*, deit.* or timm blocks.* tensors")


def canonical(tensors, layout):
    """Maps a checkpoint's tensors to unprefixed HF ViT names (timm's fused qkv is split by rows)."""
    if layout in ("hf-vit", "hf-deit-distilled"):
        prefix = "vit." if layout == "hf-vit" else "deit."
        out = {}
        for name, t in tensors.items():
            if name.startswith(prefix):
                out[name[len(prefix):]] = t
            elif name.startswith("cls_classifier."):
                out[name[len("cls_"):]] = t
            else:
                out[name] = t
        return out
    out = {
        "embeddings.cls_token": tensors["cls_token"],
        "embeddings.position_embeddings": tensors["pos_embed"],
    }
    if "dist_token" in tensors:
        out["embeddings.distillation_token"] = tensors["dist_token"]
    renames = {"patch_embed.proj": "embeddings.patch_embeddings.projection", "norm": "layernorm",
               "head": "classifier", "head_dist": "distillation_classifier"}
    block_renames = {"norm1": "layernorm_before", "attn.proj": "attention.output.dense",
                     "norm2": "layernorm_after", "mlp.fc1": "intermediate.dense", "mlp.fc2": "output.dense"}
    for name, t in tensors.items():
        base, _, part = name.rpartition(".")
        if base in renames:
            out[f"{renames[base]}.{part}"] = t
        elif name.startswith("blocks."):
            _, layer, rest = base.split(".", 2)
            pre = f"encoder.layer.{layer}."
            if rest == "attn.qkv":
                for q, chunk in zip(("query", "key", "value"), t.chunk(3, dim=0)):
                    out[f"{pre}attention.attention.{q}.{part}"] = chunk
            else:
                out[f"{pre}{block_renames[rest]}.{part}"] = t
    return out


def layer_norm(x, w, b, eps):
    # biased variance over the last axis, as torch.nn.LayerNorm
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * w + b


def linear(x, w, name):
    return x @ w[name + ".weight"].T + w[name + ".bias"]


def gelu(x):
    return 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))


def forward(w, cfg, pixels, keep_hidden=False, keep_attentions=False):
    """pixels: (channels, size, size) float32. Returns logits, final LayerNorm output, hidden states and
    attention probabilities (each (heads, tokens, tokens))."""
    c, size = cfg["num_channels"], cfg["image_size"]
    p, dim, heads, eps = cfg["patch_size"], cfg["hidden_size"], cfg["num_attention_heads"], cfg["layer_norm_eps"]
    head_dim = dim // heads
    g = size // p
    distilled = "embeddings.distillation_token" in w

    # patch embedding: each patch flattened (channels, py, px), patches in row-major order
    patches = pixels.reshape(c, g, p, g, p).permute(1, 3, 0, 2, 4).reshape(g * g, c * p * p)  # (patches, c*p*p)
    proj = w["embeddings.patch_embeddings.projection.weight"].reshape(dim, c * p * p)
    x = patches @ proj.T + w["embeddings.patch_embeddings.projection.bias"]  # (patches, dim)

    # prepend class (then distillation) token, add position embeddings
    lead = [w["embeddings.cls_token"].reshape(1, dim)]
    if distilled:
        lead.append(w["embeddings.distillation_token"].reshape(1, dim))
    x = torch.cat(lead + [x]) + w["embeddings.position_embeddings"].reshape(-1, dim)  # (tokens, dim)
    tokens = x.shape[0]
    hidden = [x.clone()] if keep_hidden else []
    attentions = []

    for layer in range(cfg["num_hidden_layers"]):
        pre = f"encoder.layer.{layer}."
        # self-attention on the normed stream, added to the residual
        h = layer_norm(x, w[pre + "layernorm_before.weight"], w[pre + "layernorm_before.bias"], eps)
        q, k, v = (linear(h, w, pre + "attention.attention." + n).reshape(tokens, heads, head_dim).transpose(0, 1)
                   for n in ("query", "key", "value"))  # (heads, tokens, headDim)
        scores = q @ k.transpose(1, 2) / math.sqrt(head_dim)  # (heads, tokens, tokens)
        probs = torch.softmax(scores, dim=-1)  # (heads, tokens, tokens)
        if keep_attentions:
            attentions.append(probs.clone())
        att = probs @ v  # (heads, tokens, headDim)
        x = x + linear(att.transpose(0, 1).reshape(tokens, dim), w, pre + "attention.output.dense")
        # MLP on the normed stream, added to the residual
        h = layer_norm(x, w[pre + "layernorm_after.weight"], w[pre + "layernorm_after.bias"], eps)
        x = x + linear(gelu(linear(h, w, pre + "intermediate.dense")), w, pre + "output.dense")
        if keep_hidden:
            hidden.append(x.clone())

    out = layer_norm(x, w["layernorm.weight"], w["layernorm.bias"], eps)  # (tokens, dim)
    logits = linear(out[0], w, "classifier")
    if distilled:
        logits = (logits + linear(out[1], w, "distillation_classifier")) / 2
    return logits, out, hidden, attentions


# Inputs whose attention probabilities --attentions keeps: enough to check, small enough to commit.
ATTENTION_INPUTS = 2


def load(directory):
    cfg, _, tensors = read_checkpoint(directory)
    layout = detect_layout(tensors)
    return cfg, layout, canonical(tensors, layout)


def sig7(values):
    return [float(f"{v:.7g}") for v in np.asarray(values, dtype=np.float64).ravel()]


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("checkpoint")
    ap.add_argument("inputs", help="f32 [count][channels][size][size], little-endian")
    ap.add_argument("-o", "--out", required=True)
    ap.add_argument("--count", type=int, default=0, help="use the first N inputs (0: all)")
    ap.add_argument("--hidden-states", action="store_true")
    ap.add_argument("--attentions", action="store_true", help="also write attentions.json beside --out")
    ap.add_argument("--name", default="")
    ap.add_argument("--command", default="", help="the command that made the checkpoint and inputs")
    args = ap.parse_args()

    torch.set_num_threads(1)
    cfg, layout, w = load(args.checkpoint)
    c, s = cfg["num_channels"], cfg["image_size"]
    pixels = torch.from_numpy(np.fromfile(args.inputs, dtype="<f4").reshape(-1, c, s, s))
    if args.count:
        pixels = pixels[: args.count]
    distilled = "embeddings.distillation_token" in w
    first_patch = 2 if distilled else 1

    outputs = []
    attentions = []
    with torch.no_grad():
        for i, x in enumerate(pixels):
            keep = args.attentions and i < ATTENTION_INPUTS
            logits, out, hidden, probs = forward(w, cfg, x, args.hidden_states, keep)
            if keep:
                attentions.append([sig7(p) for p in probs])
            item = {"logits": sig7(logits), "top1": int(logits.argmax()), "cls": sig7(out[0]),
                    "meanPatch": sig7(out[first_patch:].mean(0))}
            if args.hidden_states:
                item["lastHiddenState"] = sig7(out)
                item["hiddenStates"] = [sig7(h) for h in hidden]
            outputs.append(item)

    names = ("model.safetensors", "config.json", "preprocessor_config.json")
    files = {name: sha256(os.path.join(args.checkpoint, name)) for name in names}
    files["inputs.f32"] = sha256(args.inputs)
    golden = {
        "name": args.name or os.path.basename(os.path.normpath(args.checkpoint)),
        "made": args.command,
        "layout": layout,
        "config": {"imageSize": s, "patchSize": cfg["patch_size"], "channels": c, "dim": cfg["hidden_size"],
                   "heads": cfg["num_attention_heads"], "hidden": cfg["intermediate_size"],
                   "layers": cfg["num_hidden_layers"], "classes": int(logits.numel()),
                   "eps": cfg["layer_norm_eps"], "distilled": distilled},
        "tokens": int(out.shape[0]),
        "sha256": files,
        "count": len(outputs),
        "outputs": outputs,
    }
    with open(args.out, "w") as f:
        json.dump(golden, f, separators=(",", ":"))
        f.write("\n")
    print(f"{args.out}: {layout}, {len(outputs)} inputs, top1 {[o['top1'] for o in outputs]}")
    if args.attentions:
        path = os.path.join(os.path.dirname(args.out), "attentions.json")
        with open(path, "w") as f:
            json.dump({"name": golden["name"], "made": args.command, "tokens": golden["tokens"],
                       "heads": cfg["num_attention_heads"], "layers": cfg["num_hidden_layers"],
                       "count": len(attentions), "attentions": attentions}, f, separators=(",", ":"))
            f.write("\n")
        print(f"{path}: attention probabilities of {len(attentions)} inputs")


if __name__ == "__main__":
    main()
