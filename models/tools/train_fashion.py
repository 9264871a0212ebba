"""Trains the default model: a small ViT on Fashion-MNIST, exported in the Hugging Face ViT layout.

    /usr/bin/python3 models/tools/train_fashion.py [--out models/default] [--epochs N]
        [--init <checkpoint dir to continue from>]

Deterministic on CPU: fixed seed, fixed thread count, a seeded generator for shuffling and
augmentation. models/default/README.md has the two commands that made the committed model.
The input pipeline is exactly what the exported preprocessor_config.json tells an HF image processor
to do with a 28x28 grayscale image: convert to RGB (3 identical channels), resize to 28x28 (a no-op),
rescale by 1/255, normalize with mean = std = 0.5. Augmentation acts on the uint8 image before that.
"""

import argparse
import gzip
import json
import math
import os
import sys
import time

# Waiting OpenMP threads must sleep rather than spin: the cores are shared with other jobs.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hf_checkpoint import read_safetensors, write_json, write_safetensors  # noqa: E402

DATA = "/usr/share/datasets/fashion-mnist"
LABELS = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]

# Model size: 7x7 patches keep the sequence at 16 patches + 1 class token, so an epoch takes one to
# two minutes on 2 shared cores; depth buys more accuracy than width at that length.
CONFIG = dict(image_size=28, patch_size=7, num_channels=3, hidden_size=64, num_attention_heads=2,
              intermediate_size=256, num_hidden_layers=6, layer_norm_eps=1e-12)
MEAN = STD = 0.5


def read_idx(name):
    with gzip.open(os.path.join(DATA, name), "rb") as f:
        blob = f.read()
    dims = blob[3]
    shape = [int.from_bytes(blob[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(blob, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def to_pixel_values(images_u8):
    """uint8 [n][28][28] -> float32 [n][3][28][28] as the HF processor computes it."""
    x = images_u8.to(torch.float32) * (1 / 255)
    x = (x - MEAN) / STD
    return x.unsqueeze(1).expand(-1, 3, -1, -1)


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.query = nn.Linear(dim, dim)
        self.key = nn.Linear(dim, dim)
        self.value = nn.Linear(dim, dim)
        self.dense = nn.Linear(dim, dim)  # attention.output.dense

    def forward(self, x):  # x: (batch, tokens, dim)
        b, t, d = x.shape
        hd = d // self.heads
        q, k, v = (p(x).view(b, t, self.heads, hd).transpose(1, 2) for p in (self.query, self.key, self.value))
        att = (q @ k.transpose(-1, -2)) / math.sqrt(hd)  # (batch, heads, tokens, tokens)
        y = att.softmax(-1) @ v  # (batch, heads, tokens, headDim)
        return self.dense(y.transpose(1, 2).reshape(b, t, d))


class Layer(nn.Module):
    def __init__(self, c):
        super().__init__()
        d, eps = c["hidden_size"], c["layer_norm_eps"]
        self.layernorm_before = nn.LayerNorm(d, eps=eps)
        self.attention = Attention(d, c["num_attention_heads"])
        self.layernorm_after = nn.LayerNorm(d, eps=eps)
        self.intermediate = nn.Linear(d, c["intermediate_size"])
        self.output = nn.Linear(c["intermediate_size"], d)

    def forward(self, x):
        x = x + self.attention(self.layernorm_before(x))
        return x + self.output(F.gelu(self.intermediate(self.layernorm_after(x))))


class ViT(nn.Module):
    def __init__(self, c, classes):
        super().__init__()
        d, p = c["hidden_size"], c["patch_size"]
        patches = (c["image_size"] // p) ** 2
        self.projection = nn.Conv2d(c["num_channels"], d, p, stride=p)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        self.position_embeddings = nn.Parameter(torch.randn(1, patches + 1, d) * 0.02)
        self.layers = nn.ModuleList(Layer(c) for _ in range(c["num_hidden_layers"]))
        self.layernorm = nn.LayerNorm(d, eps=c["layer_norm_eps"])
        self.classifier = nn.Linear(d, classes)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def forward(self, x):  # x: (batch, channels, size, size)
        x = self.projection(x).flatten(2).transpose(1, 2)  # (batch, patches, dim)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], 1) + self.position_embeddings
        for layer in self.layers:
            x = layer(x)
        return self.classifier(self.layernorm(x)[:, 0])

    def hf_state_dict(self):
        """Tensor names as in HF ViTForImageClassification."""
        out = {
            "vit.embeddings.cls_token": self.cls_token,
            "vit.embeddings.position_embeddings": self.position_embeddings,
            "vit.embeddings.patch_embeddings.projection.weight": self.projection.weight,
            "vit.embeddings.patch_embeddings.projection.bias": self.projection.bias,
        }
        for i, l in enumerate(self.layers):
            pre = f"vit.encoder.layer.{i}."
            mods = {
                "layernorm_before": l.layernorm_before,
                "attention.attention.query": l.attention.query,
                "attention.attention.key": l.attention.key,
                "attention.attention.value": l.attention.value,
                "attention.output.dense": l.attention.dense,
                "layernorm_after": l.layernorm_after,
                "intermediate.dense": l.intermediate,
                "output.dense": l.output,
            }
            for name, m in mods.items():
                out[pre + name + ".weight"] = m.weight
                out[pre + name + ".bias"] = m.bias
        out["vit.layernorm.weight"] = self.layernorm.weight
        out["vit.layernorm.bias"] = self.layernorm.bias
        out["classifier.weight"] = self.classifier.weight
        out["classifier.bias"] = self.classifier.bias
        return out


def augment(images, gen, shift):
    """uint8 (batch, 28, 28) -> uint8: random shift by up to `shift` pixels (zero fill), horizontal
    flip, and +-8 levels of pixel noise so the model tolerates JPEG round trips."""
    b = images.shape[0]
    padded = F.pad(images, (shift,) * 4)
    dx = torch.randint(0, 2 * shift + 1, (b,), generator=gen)
    dy = torch.randint(0, 2 * shift + 1, (b,), generator=gen)
    rows = (dy[:, None] + torch.arange(28)[None, :])[:, :, None].expand(b, 28, 28)
    cols = (dx[:, None] + torch.arange(28)[None, :])[:, None, :].expand(b, 28, 28)
    out = padded[torch.arange(b)[:, None, None], rows, cols]
    flip = torch.rand(b, generator=gen) < 0.5
    out[flip] = out[flip].flip(-1)
    noise = torch.randint(-8, 9, out.shape, generator=gen)
    return (out.to(torch.int16) + noise).clamp(0, 255).to(torch.uint8)


@torch.no_grad()
def predict(model, images, batch=1000):
    model.eval()
    preds = [model(to_pixel_values(images[i : i + batch])).argmax(-1) for i in range(0, len(images), batch)]
    return torch.cat(preds)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="models/default")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1.5e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--patch", type=int, default=CONFIG["patch_size"])
    ap.add_argument("--dim", type=int, default=CONFIG["hidden_size"])
    ap.add_argument("--heads", type=int, default=CONFIG["num_attention_heads"])
    ap.add_argument("--layers", type=int, default=CONFIG["num_hidden_layers"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--shift", type=int, default=2, help="largest random shift in pixels")
    ap.add_argument("--warmup-epochs", type=int, default=1)
    ap.add_argument("--init", help="start from this exported checkpoint directory")
    ap.add_argument("--limit-steps", type=int, default=0, help="stop after this many steps (timing runs)")
    args = ap.parse_args()

    CONFIG.update(patch_size=args.patch, hidden_size=args.dim, num_attention_heads=args.heads,
                  intermediate_size=4 * args.dim, num_hidden_layers=args.layers)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    torch.use_deterministic_algorithms(True)
    gen = torch.Generator().manual_seed(args.seed)

    train_x = torch.from_numpy(read_idx("train-images-idx3-ubyte.gz").copy())
    train_y = torch.from_numpy(read_idx("train-labels-idx1-ubyte.gz").astype(np.int64))
    test_x = torch.from_numpy(read_idx("t10k-images-idx3-ubyte.gz").copy())
    test_y = torch.from_numpy(read_idx("t10k-labels-idx1-ubyte.gz").astype(np.int64))

    model = ViT(CONFIG, len(LABELS))
    if args.init:
        saved = read_safetensors(os.path.join(args.init, "model.safetensors"))
        with torch.no_grad():
            for name, p in model.hf_state_dict().items():
                p.copy_(saved[name].reshape(p.shape))
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and "embeddings" not in n and "token" not in n]
    no_decay = [p for n, p in model.named_parameters() if not any(p is q for q in decay)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr)
    steps_per_epoch = len(train_x) // args.batch
    total = steps_per_epoch * args.epochs
    warmup = steps_per_epoch * args.warmup_epochs  # linear warmup, then cosine to zero

    def lr_at(step):
        if step < warmup:
            return args.lr * (step + 1) / warmup
        return args.lr * 0.5 * (1 + math.cos(math.pi * (step - warmup) / (total - warmup)))

    start = time.time()
    step = 0
    for epoch in range(args.epochs):
        model.train()
        order = torch.randperm(len(train_x), generator=gen)
        loss_sum = 0.0
        for i in range(steps_per_epoch):
            idx = order[i * args.batch : (i + 1) * args.batch]
            x = to_pixel_values(augment(train_x[idx], gen, args.shift))
            for g in opt.param_groups:
                g["lr"] = lr_at(step)
            loss = F.cross_entropy(model(x), train_y[idx], label_smoothing=0.1)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            loss_sum += loss.item()
            step += 1
            if args.limit_steps and step >= args.limit_steps:
                print(f"{step} steps in {time.time() - start:.1f}s", flush=True)
                return
        acc = (predict(model, test_x) == test_y).float().mean().item()
        print(f"epoch {epoch + 1}/{args.epochs} loss {loss_sum / steps_per_epoch:.4f} "
              f"test {acc:.4f} elapsed {time.time() - start:.0f}s", flush=True)

    seconds = time.time() - start
    preds = predict(model, test_x)
    acc = (preds == test_y).float().mean().item()
    export(model, args, preds, acc, seconds)
    print(f"float32 test accuracy {acc:.4f}, trained in {seconds:.0f}s")


def export(model, args, preds, acc, seconds):
    ckpt = os.path.join(args.out, "checkpoint")
    os.makedirs(ckpt, exist_ok=True)
    write_safetensors(os.path.join(ckpt, "model.safetensors"), model.hf_state_dict())
    write_json(os.path.join(ckpt, "config.json"), {
        "architectures": ["ViTForImageClassification"],
        "model_type": "vit",
        **CONFIG,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.0,
        "attention_probs_dropout_prob": 0.0,
        "initializer_range": 0.02,
        "qkv_bias": True,
        "encoder_stride": CONFIG["patch_size"],
        "id2label": {str(i): name for i, name in enumerate(LABELS)},
        "label2id": {name: i for i, name in enumerate(LABELS)},
        "torch_dtype": "float32",
    })
    write_json(os.path.join(ckpt, "preprocessor_config.json"), {
        "image_processor_type": "ViTImageProcessor",
        "do_resize": True,
        "size": {"height": CONFIG["image_size"], "width": CONFIG["image_size"]},
        "resample": 2,
        "do_rescale": True,
        "rescale_factor": 1 / 255,
        "do_normalize": True,
        "image_mean": [MEAN] * 3,
        "image_std": [STD] * 3,
    })
    trained_with = {
        "command": "/usr/bin/python3 models/tools/train_fashion.py " + " ".join(sys.argv[1:]),
        "epochs": args.epochs, "batch": args.batch, "lr": args.lr, "seed": args.seed,
        "optimizer": f"AdamW, weight decay 0.05, {args.warmup_epochs} epoch warmup then cosine, label smoothing 0.1",
        "augmentation": f"shift up to {args.shift} px, horizontal flip, +-8 levels uniform pixel noise",
        "threads": args.threads, "seconds": round(seconds), "torch": torch.__version__,
    }
    if args.init:
        # a continued run records the run it started from (its reference.json sits beside the checkpoint)
        previous = os.path.join(os.path.dirname(os.path.normpath(args.init)), "fashion-vit.reference.json")
        with open(previous) as f:
            trained_with["continues"] = json.load(f)["trainedWith"]
    write_json(os.path.join(args.out, "fashion-vit.reference.json"), {
        "dataset": "fashion-mnist t10k",
        "float32Accuracy": round(acc, 4),
        "predictions": "".join(str(int(p)) for p in preds),
        "trainedWith": trained_with,
    })


if __name__ == "__main__":
    main()
