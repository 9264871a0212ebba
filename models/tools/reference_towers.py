"""Float32 reference forward passes of the image towers and connectors beyond the ViT classifier, in plain
PyTorch (no transformers), read from hub-layout checkpoints (F32, F16, BF16; see make-random-tower.ts):

  CLIP      vision: class embedding, position embedding, pre_layrnorm, encoder, post_layernorm on the class
            token (pooler), visual_projection -> image_embeds. text: causal (+ padding) mask,
            final_layer_norm, pooled at the end-of-text token, text_projection -> text_embeds.
  SigLIP    vision: no class token, post_layernorm on every token, multihead attention pooling head (pooler).
            text: bidirectional, final_layer_norm, last token, head. Scores sigmoid(exp(s) cos + b).
  DINOv2    (+ registers): position embeddings interpolated bicubically to the input grid, registers after
            the position embeddings, LayerScale on both branches, pooler = class token after layernorm.
  Idefics3  (SmolVLM): SigLIP-style vision tower (bucketed position ids), post_layernorm, pixel shuffle by
            scale_factor, modality_projection -> the rows the LLM receives for its image tokens.
  LLaVA     CLIP vision tower, hidden state vision_feature_layer, 'default' drops the class token,
            linear_1, GELU, linear_2.

Written from transformers' modeling code (huggingface/transformers, files and commits as stored in the
source index used to write this; the index names one commit per file version):
  clip/modeling_clip.py                 000f1ffdbf1ce6190cc8863af9a2fff817590937
  siglip/modeling_siglip.py             00b206564aa29563b46bfce0511de4a4f1eefc8c
  dinov2/modeling_dinov2.py             015e68769f9823df27f5f7372dc155277e6ff7e6 (interpolation by size)
                                        158e70c2857061643c9de3b66cc5af6d84eed73e (legacy: by scale factor)
  dinov2_with_registers/modeling_dinov2_with_registers.py  015e68769f9823df27f5f7372dc155277e6ff7e6
  idefics3/modeling_idefics3.py         000c8eae5ab53d70bc0ee1cbe3600f78b380ed4a
  llava/modeling_llava.py               (get_image_features, LlavaMultiModalProjector; no fixed commit)

Two places where transformers versions differ, chosen by option:
- DINOv2's position-embedding interpolation. Default ("size", 015e6876): F.interpolate(size=(h/p, w/p),
  bicubic, align_corners=False) in float32, so the sampling scale is 37/16 exactly; DINOv2 with registers
  adds antialias=True. --dinov2-interpolation legacy (158e70c2, earlier releases): scale_factor=((h/p + 0.1)
  / 37, (w/p + 0.1) / 37), which PyTorch turns into a sampling scale of 37/16.1. Both skip the
  interpolation when the grid is the native one and square.
- CLIP text pooling. Default ("config", the long-standing rule): eos_token_id == 2 (openai's configs) pools
  at argmax(input_ids), otherwise at the first eos_token_id. --clip-eos max-id (000f1ffd, current main):
  argmax(input_ids) when every row's largest id is 49407, otherwise the first eos_token_id. The two agree
  on every sequence CLIP's tokenizer makes (its end-of-text token 49407 is the largest id).

    /usr/bin/python3 models/tools/reference_towers.py CHECKPOINT [--pixels inputs.f32] [--input-ids ids.json]
        -o golden.json [--count N] [--hidden-states] [--attentions] [--name NAME] [--command "how made"]

Writes per image: the family's outputs (below) and, with --hidden-states, the residual stream after the
embeddings (CLIP: after pre_layrnorm, as transformers' hidden_states[0]) and after every layer plus
lastHiddenState; with --attentions, attentions.json beside the output: every layer's softmax probabilities
per head for the first two images (and SigLIP's pooling-head attention over the patches).
"""

import argparse
import hashlib
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hf_checkpoint import read_checkpoint  # noqa: E402

# ---- configs: the hub's files leave defaults out, so each class's defaults are applied here -------------

CLIP_VISION_DEFAULTS = dict(hidden_size=768, intermediate_size=3072, projection_dim=512, num_hidden_layers=12,
                            num_attention_heads=12, num_channels=3, image_size=224, patch_size=32,
                            hidden_act="quick_gelu", layer_norm_eps=1e-5)
CLIP_TEXT_DEFAULTS = dict(vocab_size=49408, hidden_size=512, intermediate_size=2048, projection_dim=512,
                          num_hidden_layers=12, num_attention_heads=8, max_position_embeddings=77,
                          hidden_act="quick_gelu", layer_norm_eps=1e-5, pad_token_id=1, bos_token_id=49406,
                          eos_token_id=49407)
SIGLIP_VISION_DEFAULTS = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                              num_attention_heads=12, num_channels=3, image_size=224, patch_size=16,
                              hidden_act="gelu_pytorch_tanh", layer_norm_eps=1e-6)
SIGLIP_TEXT_DEFAULTS = dict(vocab_size=32000, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                            num_attention_heads=12, max_position_embeddings=64, hidden_act="gelu_pytorch_tanh",
                            layer_norm_eps=1e-6)
DINOV2_DEFAULTS = dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, mlp_ratio=4,
                       hidden_act="gelu", layer_norm_eps=1e-6, image_size=224, patch_size=14, num_channels=3,
                       qkv_bias=True, layerscale_value=1.0, use_swiglu_ffn=False, num_register_tokens=0)
IDEFICS3_VISION_DEFAULTS = dict(hidden_size=1152, intermediate_size=3072, num_hidden_layers=12,
                                num_attention_heads=16, num_channels=3, image_size=224, patch_size=32,
                                hidden_act="gelu_pytorch_tanh", layer_norm_eps=1e-6)
# LlavaConfig without a vision_config: CLIP ViT-L/14 at 336
LLAVA_VISION_DEFAULTS = dict(CLIP_VISION_DEFAULTS, intermediate_size=4096, hidden_size=1024, patch_size=14,
                             image_size=336, num_hidden_layers=24, num_attention_heads=16, projection_dim=768)


def with_defaults(defaults, cfg):
    out = dict(defaults)
    out.update({k: v for k, v in (cfg or {}).items() if v is not None})
    return out


def detect_family(cfg, tensors):
    model_type = cfg.get("model_type")
    if model_type == "clip":
        return "clip"
    if model_type == "clip_vision_model":
        return "clip-vision"
    if model_type == "siglip":
        return "siglip"
    if model_type in ("dinov2", "dinov2_with_registers"):
        return "dinov2"
    if model_type in ("idefics3", "smolvlm"):
        return "idefics3"
    if model_type == "llava":
        return "llava"
    raise ValueError(f"model_type {model_type!r} is not a tower this reference knows")


# ---- building blocks ---------------------------------------------------------------------------------


def layer_norm(x, w, name, eps):
    # biased variance over the last axis, as torch.nn.LayerNorm
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * w[name + ".weight"] + w[name + ".bias"]


def linear(x, w, name):
    y = x @ w[name + ".weight"].T
    bias = w.get(name + ".bias")
    return y if bias is None else y + bias


def gelu(x):  # "gelu": the exact erf form
    return 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))


def gelu_tanh(x):  # "gelu_pytorch_tanh"
    return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


def quick_gelu(x):  # "quick_gelu"
    return x * torch.sigmoid(1.702 * x)


ACTIVATIONS = {"gelu": gelu, "gelu_pytorch_tanh": gelu_tanh, "quick_gelu": quick_gelu}


def attention(h, w, pre, heads, mask=None):
    """self_attn.{q,k,v,out}_proj on h (tokens, dim); mask additive (tokens, tokens) or None.
    Returns (output (tokens, dim), probabilities (heads, tokens, tokens))."""
    tokens, dim = h.shape
    head_dim = dim // heads
    q, k, v = (linear(h, w, pre + n).reshape(tokens, heads, head_dim).transpose(0, 1)
               for n in ("q_proj", "k_proj", "v_proj"))  # (heads, tokens, headDim)
    scores = q @ k.transpose(1, 2) * head_dim ** -0.5  # (heads, tokens, tokens)
    if mask is not None:
        scores = scores + mask
    probs = torch.softmax(scores, dim=-1)
    out = (probs @ v).transpose(0, 1).reshape(tokens, dim)
    return linear(out, w, pre + "out_proj"), probs


def encoder(x, w, prefix, c, mask=None, keep_hidden=False, keep_attentions=False):
    """CLIP / SigLIP / Idefics3 encoder layers: x += attn(layer_norm1(x)); x += mlp(layer_norm2(x)).
    Returns (x, hidden states [input, after each layer], attention probabilities per layer)."""
    act = ACTIVATIONS[c["hidden_act"]]
    eps = c["layer_norm_eps"]
    hidden = [x.clone()] if keep_hidden else []
    attentions = []
    for layer in range(c["num_hidden_layers"]):
        pre = f"{prefix}encoder.layers.{layer}."
        a, probs = attention(layer_norm(x, w, pre + "layer_norm1", eps), w, pre + "self_attn.",
                             c["num_attention_heads"], mask)
        x = x + a
        h = layer_norm(x, w, pre + "layer_norm2", eps)
        x = x + linear(act(linear(h, w, pre + "mlp.fc1")), w, pre + "mlp.fc2")
        if keep_hidden:
            hidden.append(x.clone())
        if keep_attentions:
            attentions.append(probs)
    return x, hidden, attentions


def patchify(pixels, weight, bias=None):
    """A conv with stride = kernel = patch as a GEMM over (channels, py, px)-flattened patches, row-major
    patch order. pixels (channels, height, width) -> (patches, dim)."""
    dim, c, p, _ = weight.shape
    gh, gw = pixels.shape[1] // p, pixels.shape[2] // p
    patches = pixels[:, :gh * p, :gw * p].reshape(c, gh, p, gw, p).permute(1, 3, 0, 2, 4).reshape(gh * gw, c * p * p)
    x = patches @ weight.reshape(dim, c * p * p).T
    return x if bias is None else x + bias


# ---- CLIP --------------------------------------------------------------------------------------------


def clip_vision(w, prefix, c, pixels, keep_hidden=False, keep_attentions=False):
    """Returns last_hidden_state (tokens, dim), pooler (dim), hidden states, attentions."""
    e = prefix + "embeddings."
    x = patchify(pixels, w[e + "patch_embedding.weight"])  # no bias
    x = torch.cat([w[e + "class_embedding"].reshape(1, -1), x])
    x = x + w[e + "position_embedding.weight"][: x.shape[0]]
    x = layer_norm(x, w, prefix + "pre_layrnorm", c["layer_norm_eps"])
    x, hidden, attentions = encoder(x, w, prefix, c, None, keep_hidden, keep_attentions)
    pooled = layer_norm(x[0], w, prefix + "post_layernorm", c["layer_norm_eps"])
    return x, pooled, hidden, attentions


def clip_text_pool_index(ids, eos_token_id, rule):
    """Where CLIPTextTransformer pools one sequence (see the module docstring for the two rules)."""
    ids = torch.as_tensor(ids)
    if rule == "config":
        legacy = eos_token_id == 2
    else:  # "max-id"
        legacy = int(ids.max()) == 49407
    if legacy:
        return int(ids.to(torch.int).argmax())  # the first largest id
    return int((ids.to(torch.int) == eos_token_id).int().argmax())


def clip_text(w, c, ids, attention_mask, rule, keep_hidden=False):
    """Returns last_hidden_state after final_layer_norm, pooler, pooled position, hidden states."""
    ids_t = torch.as_tensor(ids, dtype=torch.long)
    tokens = ids_t.shape[0]
    x = w["text_model.embeddings.token_embedding.weight"][ids_t] + \
        w["text_model.embeddings.position_embedding.weight"][:tokens]
    # causal mask, plus padding where the attention mask is 0 (transformers uses finfo.min, not -inf)
    neg = torch.finfo(torch.float32).min
    mask = torch.full((tokens, tokens), neg).triu(1)
    if attention_mask is not None:
        mask = mask.masked_fill(torch.as_tensor(attention_mask)[None, :] == 0, neg)
    x, hidden, _ = encoder(x, w, "text_model.", c, mask, keep_hidden)
    x = layer_norm(x, w, "text_model.final_layer_norm", c["layer_norm_eps"])
    at = clip_text_pool_index(ids, c["eos_token_id"], rule)
    return x, x[at], at, hidden


# ---- SigLIP ------------------------------------------------------------------------------------------


def siglip_embeddings(w, prefix, pixels):
    e = prefix + "embeddings."
    x = patchify(pixels, w[e + "patch_embedding.weight"], w[e + "patch_embedding.bias"])
    return x + w[e + "position_embedding.weight"][: x.shape[0]]


def siglip_head(w, prefix, c, x):
    """SiglipMultiheadAttentionPoolingHead: torch.nn.MultiheadAttention(probe, x, x) with the packed
    in_proj (rows: query, key, value), then x + mlp(layernorm(x)). Returns (pooled (dim), probabilities
    (heads, patches))."""
    h = prefix + "head."
    dim = x.shape[1]
    heads = c["num_attention_heads"]
    head_dim = dim // heads
    wq, wk, wv = w[h + "attention.in_proj_weight"].chunk(3)
    bq, bk, bv = w[h + "attention.in_proj_bias"].chunk(3)
    probe = w[h + "probe"].reshape(1, dim)
    q = (probe @ wq.T + bq).reshape(1, heads, head_dim).transpose(0, 1)  # (heads, 1, headDim)
    k = (x @ wk.T + bk).reshape(-1, heads, head_dim).transpose(0, 1)  # (heads, patches, headDim)
    v = (x @ wv.T + bv).reshape(-1, heads, head_dim).transpose(0, 1)
    probs = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(head_dim), dim=-1)  # (heads, 1, patches)
    a = linear((probs @ v).transpose(0, 1).reshape(1, dim), w, h + "attention.out_proj")
    act = ACTIVATIONS[c["hidden_act"]]
    a = a + linear(act(linear(layer_norm(a, w, h + "layernorm", c["layer_norm_eps"]), w, h + "mlp.fc1")), w,
                   h + "mlp.fc2")
    return a[0], probs[:, 0]


def siglip_vision(w, prefix, c, pixels, keep_hidden=False, keep_attentions=False):
    x = siglip_embeddings(w, prefix, pixels)
    x, hidden, attentions = encoder(x, w, prefix, c, None, keep_hidden, keep_attentions)
    x = layer_norm(x, w, prefix + "post_layernorm", c["layer_norm_eps"])
    pooled, head_probs = siglip_head(w, prefix, c, x)
    return x, pooled, head_probs, hidden, attentions


def siglip_text(w, c, ids, attention_mask, keep_hidden=False):
    ids_t = torch.as_tensor(ids, dtype=torch.long)
    tokens = ids_t.shape[0]
    x = w["text_model.embeddings.token_embedding.weight"][ids_t] + \
        w["text_model.embeddings.position_embedding.weight"][:tokens]
    mask = None
    if attention_mask is not None:  # SigLIP's processor passes none; honoured when given
        mask = torch.zeros(tokens, tokens).masked_fill(torch.as_tensor(attention_mask)[None, :] == 0,
                                                       torch.finfo(torch.float32).min)
    x, hidden, _ = encoder(x, w, "text_model.", c, mask, keep_hidden)
    x = layer_norm(x, w, "text_model.final_layer_norm", c["layer_norm_eps"])
    # "sticky" end of sequence: the last position is pooled, padding or not
    return x, linear(x[-1], w, "text_model.head"), hidden


# ---- DINOv2 ------------------------------------------------------------------------------------------


def dinov2_position_embeddings(table, grid_h, grid_w, mode, antialias):
    """Dinov2Embeddings.interpolate_pos_encoding: table (1 + native^2, dim) -> (1 + grid_h * grid_w, dim)."""
    num_positions = table.shape[0] - 1
    if grid_h * grid_w == num_positions and grid_h == grid_w:
        return table
    native = int(num_positions ** 0.5)
    dim = table.shape[1]
    patch = table[1:].reshape(1, native, native, dim).permute(0, 3, 1, 2).to(torch.float32)
    if mode == "size":
        kwargs = dict(antialias=True) if antialias else {}
        patch = F.interpolate(patch, size=(grid_h, grid_w), mode="bicubic", align_corners=False, **kwargs)
    else:  # legacy: the +0.1 offset of facebookresearch/dino issue 8, through scale_factor
        h, w = grid_h + 0.1, grid_w + 0.1
        patch = F.interpolate(patch, scale_factor=(float(h / math.sqrt(num_positions)),
                                                   float(w / math.sqrt(num_positions))),
                              mode="bicubic", align_corners=False)
        if (int(h), int(w)) != tuple(patch.shape[-2:]):
            raise ValueError("Width or height does not match with the interpolated position embeddings")
    patch = patch.permute(0, 2, 3, 1).reshape(-1, dim)
    return torch.cat([table[:1], patch])


def dinov2(w, c, pixels, mode, keep_hidden=False, keep_attentions=False):
    """Returns last_hidden_state after layernorm (1 + registers + patches, dim), hidden states, attentions."""
    p = c["patch_size"]
    eps = c["layer_norm_eps"]
    heads = c["num_attention_heads"]
    act = ACTIVATIONS[c["hidden_act"]]
    registers = c["num_register_tokens"]
    x = patchify(pixels, w["embeddings.patch_embeddings.projection.weight"],
                 w["embeddings.patch_embeddings.projection.bias"])
    x = torch.cat([w["embeddings.cls_token"].reshape(1, -1), x])
    table = w["embeddings.position_embeddings"].reshape(-1, x.shape[1])
    # registers: interpolated with antialias (modeling_dinov2_with_registers), plain DINOv2 without
    x = x + dinov2_position_embeddings(table, pixels.shape[1] // p, pixels.shape[2] // p, mode, registers > 0)
    if registers:
        x = torch.cat([x[:1], w["embeddings.register_tokens"].reshape(registers, -1), x[1:]])
    tokens, dim = x.shape
    head_dim = dim // heads
    hidden = [x.clone()] if keep_hidden else []
    attentions = []
    for layer in range(c["num_hidden_layers"]):
        pre = f"encoder.layer.{layer}."
        h = layer_norm(x, w, pre + "norm1", eps)
        q, k, v = (linear(h, w, pre + "attention.attention." + n).reshape(tokens, heads, head_dim).transpose(0, 1)
                   for n in ("query", "key", "value"))
        probs = torch.softmax(q @ k.transpose(1, 2) * head_dim ** -0.5, dim=-1)
        a = linear((probs @ v).transpose(0, 1).reshape(tokens, dim), w, pre + "attention.output.dense")
        x = x + a * w[pre + "layer_scale1.lambda1"]
        h = layer_norm(x, w, pre + "norm2", eps)
        x = x + linear(act(linear(h, w, pre + "mlp.fc1")), w, pre + "mlp.fc2") * w[pre + "layer_scale2.lambda1"]
        if keep_hidden:
            hidden.append(x.clone())
        if keep_attentions:
            attentions.append(probs)
    return layer_norm(x, w, "layernorm", eps), hidden, attentions


# ---- Idefics3 / SmolVLM ------------------------------------------------------------------------------


def idefics3_position_ids(grid_h, grid_w, per_side):
    """Idefics3VisionEmbeddings' bucketed position ids for a tile whose patches are all valid."""
    boundaries = torch.arange(1 / per_side, 1.0, 1 / per_side)
    nb_h, nb_w = torch.tensor(grid_h), torch.tensor(grid_w)
    coords_h = torch.arange(0, 1 - 1e-6, 1 / nb_h)
    coords_w = torch.arange(0, 1 - 1e-6, 1 / nb_w)
    bucket_h = torch.bucketize(coords_h, boundaries, right=True)
    bucket_w = torch.bucketize(coords_w, boundaries, right=True)
    return (bucket_h[:, None] * per_side + bucket_w).flatten()


def pixel_shuffle(x, scale_factor):
    """Idefics3Connector.pixel_shuffle on one tile: (seq, dim) -> (seq / s^2, dim * s^2)."""
    seq, dim = x.shape
    height = width = int(seq ** 0.5)
    x = x.view(1, height, width, dim)
    x = x.view(1, height, int(width / scale_factor), dim * scale_factor)
    x = x.permute(0, 2, 1, 3)
    x = x.reshape(1, int(width / scale_factor), int(height / scale_factor), dim * (scale_factor ** 2))
    x = x.permute(0, 2, 1, 3)
    return x.reshape(int(seq / (scale_factor ** 2)), dim * (scale_factor ** 2))


def idefics3(w, c, scale_factor, pixels, keep_hidden=False, keep_attentions=False):
    """One tile -> (vision last_hidden_state after post_layernorm, image tokens (tokens, lmDim), ...)."""
    prefix = "model.vision_model."
    p = c["patch_size"]
    e = prefix + "embeddings."
    x = patchify(pixels, w[e + "patch_embedding.weight"], w[e + "patch_embedding.bias"])
    ids = idefics3_position_ids(pixels.shape[1] // p, pixels.shape[2] // p, c["image_size"] // p)
    x = x + w[e + "position_embedding.weight"][ids]
    x, hidden, attentions = encoder(x, w, prefix, c, None, keep_hidden, keep_attentions)
    x = layer_norm(x, w, prefix + "post_layernorm", c["layer_norm_eps"])
    tokens = linear(pixel_shuffle(x, scale_factor), w, "model.connector.modality_projection.proj")
    return x, tokens, hidden, attentions


# ---- LLaVA -------------------------------------------------------------------------------------------


def llava(w, c_vision, cfg, pixels, keep_hidden=False, keep_attentions=False):
    """get_image_features + multi_modal_projector for one image -> (features (patches, lmDim), ...)."""
    _, _, hidden, attentions = clip_vision(w, "vision_tower.vision_model.", c_vision, pixels, True, keep_attentions)
    layer = cfg.get("vision_feature_layer", -2)
    strategy = cfg.get("vision_feature_select_strategy", "default")
    layers = [layer] if isinstance(layer, int) else list(layer)
    selected = [hidden[i][1:] if strategy == "default" else hidden[i] for i in layers]
    features = torch.cat(selected, dim=-1)
    act = ACTIVATIONS[cfg.get("projector_hidden_act", "gelu")]
    out = linear(act(linear(features, w, "multi_modal_projector.linear_1")), w, "multi_modal_projector.linear_2")
    return out, (hidden if keep_hidden else []), attentions


# ---- driver ------------------------------------------------------------------------------------------

ATTENTION_INPUTS = 2


def sig7(values):
    return [float(f"{v:.7g}") for v in np.asarray(values, dtype=np.float64).ravel()]


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def cosine_matrix(a, b):
    a = a / a.norm(dim=-1, keepdim=True)
    b = b / b.norm(dim=-1, keepdim=True)
    return a @ b.T


def run(directory, pixels=None, input_ids=None, hidden_states=False, keep_attentions=False,
        dinov2_interpolation="size", clip_eos="config"):
    """Computes a golden dict (and the attentions dict or None) for a checkpoint directory."""
    cfg, _, w = read_checkpoint(directory)
    family = detect_family(cfg, w)
    golden = {"family": family, "modelType": cfg.get("model_type")}
    images, texts, attentions = [], [], []
    image_embeds = text_embeds = None

    def attn_item(i, layers, head=None):
        if keep_attentions and i < ATTENTION_INPUTS:
            item = {"layers": [sig7(p) for p in layers]}
            if head is not None:
                item["head"] = sig7(head)
            attentions.append(item)

    def hidden_item(item, hidden, last):
        if hidden_states:
            item["hiddenStates"] = [sig7(h) for h in hidden]
            item["lastHiddenState"] = sig7(last)

    if family in ("clip", "clip-vision"):
        cv = with_defaults(CLIP_VISION_DEFAULTS, cfg["vision_config"] if family == "clip" else cfg)
        golden["vision"] = cv
        embeds = []
        for i, x in enumerate(pixels if pixels is not None else []):
            last, pooled, hidden, probs = clip_vision(w, "vision_model.", cv, x, hidden_states,
                                                      keep_attentions and i < ATTENTION_INPUTS)
            embed = pooled @ w["visual_projection.weight"].T
            embeds.append(embed)
            item = {"pooler": sig7(pooled), "imageEmbeds": sig7(embed), "tokens": last.shape[0]}
            hidden_item(item, hidden, last)
            images.append(item)
            attn_item(i, probs)
        image_embeds = torch.stack(embeds) if embeds else None
        if family == "clip" and input_ids is not None:
            ct = with_defaults(CLIP_TEXT_DEFAULTS, cfg["text_config"])
            golden["text"] = ct
            golden["clipEosRule"] = clip_eos
            masks = input_ids.get("attention_mask") or [None] * len(input_ids["input_ids"])
            embeds = []
            for ids, mask in zip(input_ids["input_ids"], masks):
                last, pooled, at, hidden = clip_text(w, ct, ids, mask, clip_eos, hidden_states)
                embed = pooled @ w["text_projection.weight"].T
                embeds.append(embed)
                item = {"pooledAt": at, "pooler": sig7(pooled), "textEmbeds": sig7(embed)}
                hidden_item(item, hidden, last)
                texts.append(item)
            text_embeds = torch.stack(embeds)
        if family == "clip":
            golden["logitScale"] = float(w["logit_scale"])
            if image_embeds is not None and text_embeds is not None:
                logits = cosine_matrix(image_embeds, text_embeds) * w["logit_scale"].exp()
                golden["logitsPerImage"] = [sig7(r) for r in logits]
                golden["probs"] = [sig7(r) for r in torch.softmax(logits, dim=-1)]  # over labels
    elif family == "siglip":
        cv = with_defaults(SIGLIP_VISION_DEFAULTS, cfg.get("vision_config"))
        golden["vision"] = cv
        embeds = []
        for i, x in enumerate(pixels if pixels is not None else []):
            last, pooled, head, hidden, probs = siglip_vision(w, "vision_model.", cv, x, hidden_states,
                                                              keep_attentions and i < ATTENTION_INPUTS)
            embeds.append(pooled)
            item = {"pooler": sig7(pooled), "tokens": last.shape[0], "headAttentionMean": sig7(head.mean(0))}
            hidden_item(item, hidden, last)
            images.append(item)
            attn_item(i, probs, head)
        image_embeds = torch.stack(embeds) if embeds else None
        if input_ids is not None:
            ct = with_defaults(SIGLIP_TEXT_DEFAULTS, cfg.get("text_config"))
            golden["text"] = ct
            masks = input_ids.get("attention_mask") or [None] * len(input_ids["input_ids"])
            embeds = []
            for ids, mask in zip(input_ids["input_ids"], masks):
                last, pooled, hidden = siglip_text(w, ct, ids, mask, hidden_states)
                embeds.append(pooled)
                item = {"pooler": sig7(pooled)}
                hidden_item(item, hidden, last)
                texts.append(item)
            text_embeds = torch.stack(embeds)
        golden["logitScale"] = float(w["logit_scale"].reshape(()))
        golden["logitBias"] = float(w["logit_bias"].reshape(()))
        if image_embeds is not None and text_embeds is not None:
            logits = cosine_matrix(image_embeds, text_embeds) * w["logit_scale"].exp() + w["logit_bias"]
            golden["logitsPerImage"] = [sig7(r) for r in logits]
            golden["probs"] = [sig7(r) for r in torch.sigmoid(logits)]  # independent per label
    elif family == "dinov2":
        c = with_defaults(DINOV2_DEFAULTS, cfg)
        if c["use_swiglu_ffn"]:
            raise ValueError("use_swiglu_ffn (DINOv2 giant) is not in this reference")
        golden["vision"] = c
        golden["interpolation"] = dinov2_interpolation
        first_patch = 1 + c["num_register_tokens"]
        for i, x in enumerate(pixels):
            last, hidden, probs = dinov2(w, c, x, dinov2_interpolation, hidden_states,
                                         keep_attentions and i < ATTENTION_INPUTS)
            item = {"pooler": sig7(last[0]), "meanPatch": sig7(last[first_patch:].mean(0)), "tokens": last.shape[0]}
            hidden_item(item, hidden, last)
            images.append(item)
            attn_item(i, probs)
    elif family == "idefics3":
        c = with_defaults(IDEFICS3_VISION_DEFAULTS, cfg.get("vision_config"))
        scale = cfg.get("scale_factor", 2)
        golden["vision"] = c
        golden["scaleFactor"] = scale
        table = w.get("model.text_model.embed_tokens.weight")
        for i, x in enumerate(pixels):
            last, tokens, hidden, probs = idefics3(w, c, scale, x, hidden_states,
                                                   keep_attentions and i < ATTENTION_INPUTS)
            item = {"imageTokens": sig7(tokens), "shape": list(tokens.shape)}
            if table is not None:  # each image token's nearest vocabulary rows by cosine
                item["nearestTokens"] = cosine_matrix(tokens, table).topk(5, dim=-1).indices.tolist()
            hidden_item(item, hidden, last)
            images.append(item)
            attn_item(i, probs)
    elif family == "llava":
        c = with_defaults(LLAVA_VISION_DEFAULTS, cfg.get("vision_config"))
        golden["vision"] = c
        golden["visionFeatureLayer"] = cfg.get("vision_feature_layer", -2)
        golden["visionFeatureSelectStrategy"] = cfg.get("vision_feature_select_strategy", "default")
        for i, x in enumerate(pixels):
            features, hidden, probs = llava(w, c, cfg, x, hidden_states, keep_attentions and i < ATTENTION_INPUTS)
            item = {"imageFeatures": sig7(features), "shape": list(features.shape)}
            if hidden_states:
                item["hiddenStates"] = [sig7(h) for h in hidden]
            images.append(item)
            attn_item(i, probs)
    golden["images"] = images
    if texts:
        golden["texts"] = texts
    return golden, (attentions if keep_attentions else None)


def read_pixels(path, cfg_dir):
    with open(os.path.join(cfg_dir, "inputs.json")) as f:
        shape = json.load(f)["shape"]
    return torch.from_numpy(np.fromfile(path, dtype="<f4").reshape(-1, *shape).copy())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--pixels", help="f32 [count][channels][size][size] (shape from CHECKPOINT/inputs.json "
                                     "unless --shape)")
    ap.add_argument("--shape", help="channels,height,width of --pixels")
    ap.add_argument("--input-ids", help='JSON {"input_ids": [[...]], "attention_mask"?: [[...]]}')
    ap.add_argument("-o", "--out", required=True)
    ap.add_argument("--count", type=int, default=0, help="use the first N images and texts (0: all)")
    ap.add_argument("--hidden-states", action="store_true")
    ap.add_argument("--attentions", action="store_true", help="also write attentions.json beside --out")
    ap.add_argument("--dinov2-interpolation", choices=["size", "legacy"], default="size")
    ap.add_argument("--clip-eos", choices=["config", "max-id"], default="config")
    ap.add_argument("--name", default="")
    ap.add_argument("--command", default="", help="the command that made the checkpoint and inputs")
    args = ap.parse_args()

    torch.set_num_threads(1)
    pixels = None
    if args.pixels:
        if args.shape:
            shape = [int(s) for s in args.shape.split(",")]
            pixels = torch.from_numpy(np.fromfile(args.pixels, dtype="<f4").reshape(-1, *shape).copy())
        else:
            pixels = read_pixels(args.pixels, args.checkpoint)
    input_ids = None
    if args.input_ids:
        with open(args.input_ids) as f:
            input_ids = json.load(f)
    if args.count:
        pixels = pixels[: args.count] if pixels is not None else None
        if input_ids is not None:
            input_ids = {k: v[: args.count] for k, v in input_ids.items()}
    with torch.no_grad():
        golden, attentions = run(args.checkpoint, pixels, input_ids, args.hidden_states, args.attentions,
                                 args.dinov2_interpolation, args.clip_eos)
    files = {name: sha256(os.path.join(args.checkpoint, name))
             for name in ("model.safetensors", "config.json", "preprocessor_config.json")
             if os.path.exists(os.path.join(args.checkpoint, name))}
    for label, path in (("pixels", args.pixels), ("inputIds", args.input_ids)):
        if path:
            files[label] = sha256(path)
    golden = {"name": args.name or os.path.basename(os.path.normpath(args.checkpoint)), "made": args.command,
              "sha256": files, **golden}
    with open(args.out, "w") as f:
        json.dump(golden, f, separators=(",", ":"))
        f.write("\n")
    print(f"{args.out}: {golden['family']}, {len(golden['images'])} images, {len(golden.get('texts', []))} texts")
    if attentions is not None:
        path = os.path.join(os.path.dirname(os.path.abspath(args.out)), "attentions.json")
        with open(path, "w") as f:
            json.dump({"name": golden["name"], "made": args.command, "count": len(attentions),
                       "attentions": attentions}, f, separators=(",", ":"))
            f.write("\n")
        print(f"{path}: attention probabilities of {len(attentions)} images")


if __name__ == "__main__":
    main()
