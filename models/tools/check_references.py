"""Self-checks of reference_towers.py and preprocess_towers.py where they can be checked without
transformers: each building block against PyTorch's or Pillow's own implementation of the same thing, or
against a result computed by hand; then every tiny preset end to end (make-random-tower.ts -> reference ->
finite outputs; F16 and BF16 files read as the F32 one within their rounding).

    /usr/bin/python3 models/tools/check_references.py            # all checks (~1 min)
    /usr/bin/python3 models/tools/check_references.py --quick    # without the end-to-end runs

Exits non-zero on the first failed check.
"""

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "test", "tools"))
import preprocess_towers as pp  # noqa: E402
import reference_towers as rt  # noqa: E402

NODE = os.path.join(ROOT, "node_modules", "node", "bin", "node")
TINY_PRESETS = ["clip-vit-base-patch32", "clip-vit-base-patch16", "clip-vision-with-projection",
                "siglip-base-patch16-224", "siglip-base-patch16-256", "siglip-base-patch16-384",
                "siglip2-base-patch16-224", "dinov2-small", "dinov2-base", "dinov2-with-registers-small",
                "dinov2-with-registers-base", "smolvlm-256m-instruct", "llava-1.5-projector"]


def check(name, ok, detail=""):
    print(f"{'ok  ' if ok else 'FAIL'} {name}{': ' + detail if detail else ''}")
    if not ok:
        sys.exit(1)


def close(name, a, b, tol):
    err = float((torch.as_tensor(a, dtype=torch.float64) - torch.as_tensor(b, dtype=torch.float64)).abs().max())
    check(name, err <= tol, f"max |diff| {err:.3g} (tolerance {tol:g})")


def random_linear(w, name, outs, ins, g):
    w[name + ".weight"] = torch.randn(outs, ins, generator=g) / math.sqrt(ins)
    w[name + ".bias"] = torch.randn(outs, generator=g) * 0.1


# ---- building blocks ---------------------------------------------------------------------------------


def check_attention():
    """CLIP/SigLIP self-attention (separate q, k, v projections, scale headDim^-0.5) against
    torch.nn.MultiheadAttention on the same weights, with and without CLIP's causal mask."""
    g = torch.Generator().manual_seed(0)
    tokens, dim, heads = 11, 48, 3
    w = {}
    for n in ("q_proj", "k_proj", "v_proj", "out_proj"):
        random_linear(w, "a." + n, dim, dim, g)
    mha = torch.nn.MultiheadAttention(dim, heads, batch_first=True)
    with torch.no_grad():
        mha.in_proj_weight.copy_(torch.cat([w["a.q_proj.weight"], w["a.k_proj.weight"], w["a.v_proj.weight"]]))
        mha.in_proj_bias.copy_(torch.cat([w["a.q_proj.bias"], w["a.k_proj.bias"], w["a.v_proj.bias"]]))
        mha.out_proj.weight.copy_(w["a.out_proj.weight"])
        mha.out_proj.bias.copy_(w["a.out_proj.bias"])
        x = torch.randn(tokens, dim, generator=g)
        ours, probs = rt.attention(x, w, "a.", heads)
        theirs, their_probs = mha(x[None], x[None], x[None], average_attn_weights=False)
        close("attention = nn.MultiheadAttention", ours, theirs[0], 1e-5)
        close("attention probabilities = nn.MultiheadAttention's", probs, their_probs[0], 1e-6)
        causal = torch.full((tokens, tokens), torch.finfo(torch.float32).min).triu(1)
        ours, _ = rt.attention(x, w, "a.", heads, causal)
        theirs, _ = mha(x[None], x[None], x[None], attn_mask=torch.ones(tokens, tokens, dtype=torch.bool).triu(1))
        close("causal attention = nn.MultiheadAttention with a causal mask", ours, theirs[0], 1e-5)


def check_siglip_head():
    """The pooling head written out by hand against transformers' composition of
    nn.MultiheadAttention(probe, x, x), LayerNorm and MLP with a residual."""
    g = torch.Generator().manual_seed(1)
    dim, heads, hidden, patches = 32, 2, 64, 16
    c = dict(num_attention_heads=heads, hidden_act="gelu_pytorch_tanh", layer_norm_eps=1e-6)
    w = {"v.head.probe": torch.randn(1, 1, dim, generator=g),
         "v.head.attention.in_proj_weight": torch.randn(3 * dim, dim, generator=g) / math.sqrt(dim),
         "v.head.attention.in_proj_bias": torch.randn(3 * dim, generator=g) * 0.1,
         "v.head.layernorm.weight": 1 + 0.1 * torch.randn(dim, generator=g),
         "v.head.layernorm.bias": 0.1 * torch.randn(dim, generator=g)}
    random_linear(w, "v.head.attention.out_proj", dim, dim, g)
    random_linear(w, "v.head.mlp.fc1", hidden, dim, g)
    random_linear(w, "v.head.mlp.fc2", dim, hidden, g)
    mha = torch.nn.MultiheadAttention(dim, heads, batch_first=True)
    ln = torch.nn.LayerNorm(dim, eps=1e-6)
    with torch.no_grad():
        mha.in_proj_weight.copy_(w["v.head.attention.in_proj_weight"])
        mha.in_proj_bias.copy_(w["v.head.attention.in_proj_bias"])
        mha.out_proj.weight.copy_(w["v.head.attention.out_proj.weight"])
        mha.out_proj.bias.copy_(w["v.head.attention.out_proj.bias"])
        ln.weight.copy_(w["v.head.layernorm.weight"])
        ln.bias.copy_(w["v.head.layernorm.bias"])
        x = torch.randn(1, patches, dim, generator=g)
        a, weights = mha(w["v.head.probe"], x, x, average_attn_weights=False)
        h = ln(a)
        h = F.linear(F.gelu(F.linear(h, w["v.head.mlp.fc1.weight"], w["v.head.mlp.fc1.bias"]), approximate="tanh"),
                     w["v.head.mlp.fc2.weight"], w["v.head.mlp.fc2.bias"])
        theirs = (a + h)[0, 0]
        ours, probs = rt.siglip_head(w, "v.", c, x[0])
        close("SigLIP pooling head = nn.MultiheadAttention + LayerNorm + MLP", ours, theirs, 1e-5)
        close("SigLIP head attention = nn.MultiheadAttention's weights", probs, weights[0, :, 0], 1e-6)


def check_blocks():
    g = torch.Generator().manual_seed(2)
    pixels = torch.randn(3, 40, 40, generator=g)
    weight = torch.randn(24, 3, 8, 8, generator=g)
    bias = torch.randn(24, generator=g)
    conv = F.conv2d(pixels[None], weight, bias, stride=8)[0].flatten(1).T  # (patches, dim) row-major
    close("patch embedding GEMM = F.conv2d (stride = kernel)", rt.patchify(pixels, weight, bias), conv, 1e-4)
    conv14 = F.conv2d(pixels[None], weight[:, :, :7, :7], None, stride=7)[0].flatten(1).T
    close("patch embedding drops the remainder as the conv does (40 px, patch 7)",
          rt.patchify(pixels, weight[:, :, :7, :7]), conv14, 1e-4)
    x = torch.randn(5, 33, generator=g) * 3 + 1
    w = {"n.weight": torch.randn(33, generator=g), "n.bias": torch.randn(33, generator=g)}
    close("layer_norm = F.layer_norm", rt.layer_norm(x, w, "n", 1e-5), F.layer_norm(x, (33,), w["n.weight"],
                                                                                    w["n.bias"], 1e-5), 1e-5)
    close("gelu = F.gelu", rt.gelu(x), F.gelu(x), 1e-6)
    close("gelu_pytorch_tanh = F.gelu(approximate='tanh')", rt.gelu_tanh(x), F.gelu(x, approximate="tanh"), 1e-6)
    close("quick_gelu = x * sigmoid(1.702 x)", rt.quick_gelu(torch.tensor([1.0, -2.0])),
          torch.tensor([1 / (1 + math.exp(-1.702)), -2 / (1 + math.exp(3.404))]), 1e-6)


def check_pixel_shuffle():
    """Idefics3Connector.pixel_shuffle on a 4x4 grid of 1-wide tokens numbered 0..15, scale 2: token (r, c)
    gathers its 2x2 block row by row (worked out by hand from the views and permutes)."""
    x = torch.arange(16, dtype=torch.float32).reshape(16, 1)
    expected = [[0, 1, 4, 5], [2, 3, 6, 7], [8, 9, 12, 13], [10, 11, 14, 15]]
    check("pixel shuffle, 4x4 grid, scale 2", rt.pixel_shuffle(x, 2).tolist() == expected,
          str(rt.pixel_shuffle(x, 2).int().tolist()))
    # 2-wide tokens: the feature order is (block row, block column, channel)
    x = torch.arange(32, dtype=torch.float32).reshape(16, 2)
    check("pixel shuffle keeps each token's channels together",
          rt.pixel_shuffle(x, 2)[1].int().tolist() == [4, 5, 6, 7, 12, 13, 14, 15])
    # SmolVLM: 1024 patches of 768 -> 64 tokens of 12288, each an unbroken 4x4 block
    x = torch.arange(1024, dtype=torch.float32).reshape(1024, 1).repeat(1, 768)
    y = rt.pixel_shuffle(x, 4)
    block = y[9, ::768].int().tolist()  # token 9 = block row 1, block column 1
    want = [(4 + m) * 32 + 4 + k for m in range(4) for k in range(4)]
    check("pixel shuffle at SmolVLM's size: (1024, 768) -> (64, 12288), token 9 = patches of block (1, 1)",
          tuple(y.shape) == (64, 12288) and block == want)


def check_idefics3_positions():
    for per_side in (8, 32):
        ids = rt.idefics3_position_ids(per_side, per_side, per_side)
        check(f"Idefics3 bucketed position ids of a full {per_side}x{per_side} tile are 0..{per_side ** 2 - 1}",
              ids.tolist() == list(range(per_side ** 2)))


def bicubic_reference(src, out_h, out_w, a=-0.75):
    """Independent bicubic resize (align_corners=False, clamped borders) in float64 NumPy: src (C, H, W)."""
    def weights(in_size, out_size):
        scale = in_size / out_size
        m = np.zeros((out_size, in_size))
        for i in range(out_size):
            x = (i + 0.5) * scale - 0.5
            x0 = math.floor(x)
            t = x - x0
            for k, d in zip(range(-1, 3), (1 + t, t, 1 - t, 2 - t)):
                d = abs(d)
                wk = ((a + 2) * d - (a + 3)) * d * d + 1 if d <= 1 else ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
                m[i, min(max(x0 + k, 0), in_size - 1)] += wk
        return m
    wh, ww = weights(src.shape[1], out_h), weights(src.shape[2], out_w)
    return np.einsum("oh,chw,pw->cop", wh, src.astype(np.float64), ww)


def check_dinov2_interpolation():
    g = torch.Generator().manual_seed(3)
    table = torch.randn(1 + 37 * 37, 6, generator=g)
    for mode in ("size", "legacy"):
        for antialias in (False, True):
            if mode == "legacy" and antialias:
                continue
            out = rt.dinov2_position_embeddings(table, 37, 37, mode, antialias)
            check(f"DINOv2 interpolation ({mode}{', antialias' if antialias else ''}) at the native 37x37 grid is "
                  "the identity", torch.equal(out, table))
    # the interpolation itself at the native size (no early return) is the identity too
    grid = table[1:].reshape(1, 37, 37, 6).permute(0, 3, 1, 2)
    close("bicubic to the same size is the identity", F.interpolate(grid, size=(37, 37), mode="bicubic",
                                                                    align_corners=False), grid, 1e-6)
    # 37x37 -> 16x16 (224 px, patch 14) and a non-square 16x20: PyTorch's bicubic against an independent one
    src = table[1:].reshape(37, 37, 6).permute(2, 0, 1).numpy()
    for h, w in ((16, 16), (16, 20)):
        ours = rt.dinov2_position_embeddings(table, h, w, "size", False)[1:].reshape(h, w, 6).permute(2, 0, 1)
        close(f"DINOv2 37x37 -> {h}x{w} bicubic = an independent bicubic (a = -0.75)", ours,
              bicubic_reference(src, h, w), 1e-5)
        # with registers: antialiased bicubic, which PyTorch computes as Pillow does (a = -0.5, widened support)
        ours = rt.dinov2_position_embeddings(table, h, w, "size", True)[1:].reshape(h, w, 6)
        pil = np.stack([np.array(Image.fromarray(src[c].astype(np.float32), "F").resize((w, h), Image.BICUBIC))
                        for c in range(6)], -1)
        close(f"DINOv2 with registers 37x37 -> {h}x{w} antialiased bicubic = Pillow's float bicubic", ours, pil,
              1e-5)
    legacy = rt.dinov2_position_embeddings(table, 16, 16, "legacy", False)[1:].reshape(16, 16, 6).permute(2, 0, 1)
    size = rt.dinov2_position_embeddings(table, 16, 16, "size", False)[1:].reshape(16, 16, 6).permute(2, 0, 1)
    # the legacy path samples at a scale of 37/16.1: independent bicubic with that scale
    scale_ref = bicubic_reference_scaled(src, 16, 37 / 16.1)
    close("DINOv2 legacy interpolation = bicubic sampled at the scale 37/16.1", legacy, scale_ref, 1e-5)
    diff = float((legacy - size).abs().max())
    check("the two interpolation versions differ (so the choice matters)", diff > 1e-3, f"max |diff| {diff:.3g}")


def bicubic_reference_scaled(src, out, scale, a=-0.75):
    """As bicubic_reference, square, with a given input/output sampling scale."""
    m = np.zeros((out, src.shape[1]))
    for i in range(out):
        x = (i + 0.5) * scale - 0.5
        x0 = math.floor(x)
        t = x - x0
        for k, d in zip(range(-1, 3), (1 + t, t, 1 - t, 2 - t)):
            d = abs(d)
            wk = ((a + 2) * d - (a + 3)) * d * d + 1 if d <= 1 else ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
            m[i, min(max(x0 + k, 0), src.shape[1] - 1)] += wk
    return np.einsum("oh,chw,pw->cop", m, src.astype(np.float64), m)


def check_clip_pooling():
    ids = [49406, 320, 1125, 539, 49407, 49407, 49407]
    for eos, rule in ((2, "config"), (2, "max-id"), (49407, "config"), (49407, "max-id")):
        at = rt.clip_text_pool_index(ids, eos, rule)
        check(f"CLIP pooling at the first end-of-text (eos_token_id {eos}, rule {rule})", at == 4, str(at))
    # ids without 49407: the rules part ways (the max-id rule then looks for eos_token_id 2: absent -> 0)
    ids = [5, 9, 7, 3]
    check("CLIP legacy rule on ids without 49407: argmax", rt.clip_text_pool_index(ids, 2, "config") == 1)
    check("CLIP max-id rule on ids without 49407: first eos_token_id (none: 0)",
          rt.clip_text_pool_index(ids, 2, "max-id") == 0)


# ---- preprocessing -----------------------------------------------------------------------------------


def check_preprocessing():
    s = pp.settings({"crop_size": 224, "size": 224, "feature_extractor_type": "CLIPFeatureExtractor", "resample": 3})
    check("legacy CLIP file: size 224 is the shortest edge, crop_size 224 a square",
          s["size"] == {"shortest_edge": 224} and s["crop_size"] == {"height": 224, "width": 224}
          and s["do_rescale"] and s["rescale_factor"] == 1 / 255)
    check("SigLIP int size is a square", pp.settings({"image_processor_type": "SiglipImageProcessor",
                                                      "size": 384})["size"] == {"height": 384, "width": 384})
    check("shortest edge 224 of 640x480 (w x h) -> 298x224, int() truncation",
          pp.shortest_edge_size(480, 640, 224) == (224, 298))
    check("shortest edge 256 of 333x500 -> 256x384", pp.shortest_edge_size(500, 333, 256) == (384, 256))
    # Idefics3 sizes, worked out by hand from the processor's code
    check("Idefics3 1000x750 -> 2048x1536", pp.idefics3_resize_size(750, 1000, 2048) == (1536, 2048))
    check("Idefics3 300x200 -> 2048x1366 (1365 made even)", pp.idefics3_resize_size(200, 300, 2048) == (1366, 2048))
    check("Idefics3 tall 200x300 -> 1366x2048", pp.idefics3_resize_size(300, 200, 2048) == (2048, 1366))
    check("Idefics3 2048x1366 -> tiles of 512: 2048x1536", pp.idefics3_encoder_size(1366, 2048, 512) == (1536, 2048))
    rng = np.random.default_rng(4)
    rgb = rng.integers(0, 256, (750, 1000, 3), dtype=np.uint8)
    pre = {"image_processor_type": "Idefics3ImageProcessor", "size": {"longest_edge": 2048},
           "max_image_size": {"longest_edge": 512}, "resample": 1, "image_mean": [0.5] * 3, "image_std": [0.5] * 3}
    frames, info = pp.preprocess(rgb, pre)
    check("Idefics3 1000x750: 3 rows x 4 cols of 512-px tiles + the global view = 13 frames",
          info == {"rows": 3, "cols": 4, "tiles": 13} and all(f.shape == (3, 512, 512) for f in frames))
    resized = pp.pil_resize(pp.pil_resize(rgb, 1536, 2048, 1), 1536, 2048, 1)
    u8, _, _ = pp.idefics3_frames(rgb, pp.settings(pre))
    stitched = np.concatenate([np.concatenate(u8[r * 4:(r + 1) * 4], axis=1) for r in range(3)], axis=0)
    check("Idefics3 tiles, row by row, stitch back into the resized image", np.array_equal(stitched, resized))
    check("Idefics3 global view = the resized image resized to 512x512, last",
          np.array_equal(u8[-1], pp.pil_resize(resized, 512, 512, 1)))
    check("Idefics3 pixel values = (q / 255 - 0.5) / 0.5 in float32",
          np.array_equal(frames[0], ((u8[0].astype(np.float64) / 255).astype(np.float32) - np.float32(0.5))
                         .__truediv__(np.float32(0.5)).transpose(2, 0, 1)))
    # CLIP/BiT against this repository's ViT/DeiT preprocessing reference (test/tools/preprocess_goldens.py),
    # whose resize and crop the engine matches bit for bit
    import preprocess_goldens as vit_pp
    rgb = rng.integers(0, 256, (333, 500, 3), dtype=np.uint8)
    bit = {"image_processor_type": "BitImageProcessor", "size": {"shortest_edge": 256},
           "crop_size": {"height": 224, "width": 224}, "resample": 3,
           "image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225]}
    ours = pp.preprocess(rgb, bit)[0][0]
    _, theirs = vit_pp.pipeline(rgb, vit_pp.CONFIGS["short256"])
    check("BitImageProcessor (DINOv2) = the repository's shortest-edge 256 / crop 224 reference",
          np.array_equal(ours, theirs))
    sig = pp.preprocess(rgb, {"image_processor_type": "SiglipImageProcessor", "size": {"height": 224, "width": 224},
                              "resample": 2, "image_mean": [0.5] * 3, "image_std": [0.5] * 3})[0][0]
    _, theirs = vit_pp.pipeline(rgb, vit_pp.CONFIGS["vit"])
    check("SiglipImageProcessor bilinear 224 = the repository's ViT (224 bilinear, 0.5) reference",
          np.array_equal(sig, theirs))


# ---- end to end --------------------------------------------------------------------------------------


def finite(values):
    return all(math.isfinite(v) for v in values)


def flatten_numbers(obj):
    if isinstance(obj, list):
        for v in obj:
            yield from flatten_numbers(v)
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from flatten_numbers(v)
    elif isinstance(obj, float):
        yield obj


def make(preset, out, dtype="F32"):
    subprocess.run([NODE, os.path.join(HERE, "make-random-tower.ts"), "--preset", preset, "--tiny", "--seed", "7",
                    "--inputs", "3", "--dtype", dtype, "-o", out], check=True, stdout=subprocess.DEVNULL)


def run_reference(directory, hidden=True, attentions=True):
    pixels = rt.read_pixels(os.path.join(directory, "inputs.f32"), directory)
    ids_path = os.path.join(directory, "input_ids.json")
    ids = json.load(open(ids_path)) if os.path.exists(ids_path) else None
    with torch.no_grad():
        return rt.run(directory, pixels, ids, hidden, attentions)


def main_vector(golden):
    image = golden["images"][0]
    for key in ("imageEmbeds", "pooler", "imageTokens", "imageFeatures"):
        if key in image:
            return np.array(image[key])


def check_end_to_end():
    with tempfile.TemporaryDirectory() as tmp:
        for preset in TINY_PRESETS:
            directory = os.path.join(tmp, preset)
            make(preset, directory)
            golden, attentions = run_reference(directory)
            numbers = list(flatten_numbers(golden["images"])) + list(flatten_numbers(golden.get("texts", [])))
            expect_texts = os.path.exists(os.path.join(directory, "input_ids.json"))
            check(f"{preset} (tiny): {golden['family']}, {len(golden['images'])} images, "
                  f"{len(golden.get('texts', []))} texts, {len(attentions)} attention sets, all finite",
                  finite(numbers) and len(golden["images"]) == 3 and (len(golden.get("texts", [])) == 3) == expect_texts
                  and len(attentions) == 2)
        for dtype, tol in (("F16", 0.9999), ("BF16", 0.999)):
            directory = os.path.join(tmp, f"dinov2-{dtype}")
            make("dinov2-with-registers-small", directory, dtype)
            low = main_vector(run_reference(directory, False, False)[0])
            ref = main_vector(run_reference(os.path.join(tmp, "dinov2-with-registers-small"), False, False)[0])
            cos = float(low @ ref / np.linalg.norm(low) / np.linalg.norm(ref))
            check(f"a {dtype} checkpoint reads as the F32 one within its rounding (pooler cosine {cos:.6f})",
                  cos >= tol)
        g = run_reference(os.path.join(tmp, "clip-vit-base-patch32"), False, False)[0]
        check("CLIP zero-shot probabilities sum to 1 per image", all(abs(sum(p) - 1) < 1e-5 for p in g["probs"]))
        check("CLIP text pooled at each sequence's end-of-text token",
              all(ids[t["pooledAt"]] == 49407 and 49407 not in ids[: t["pooledAt"]]
                  for ids, t in zip(json.load(open(os.path.join(tmp, "clip-vit-base-patch32", "input_ids.json")))
                                    ["input_ids"], g["texts"])))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="skip the end-to-end runs of the tiny presets")
    args = ap.parse_args()
    torch.set_num_threads(1)
    with torch.no_grad():
        check_attention()
        check_siglip_head()
        check_blocks()
        check_pixel_shuffle()
        check_idefics3_positions()
        check_dinov2_interpolation()
        check_clip_pooling()
    check_preprocessing()
    if not args.quick:
        check_end_to_end()
    print("all checks passed")


if __name__ == "__main__":
    main()
