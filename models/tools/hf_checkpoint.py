"""Reading and writing Hugging Face checkpoint directories without the transformers or safetensors
packages: `model.safetensors` (F32/F16/BF16), `config.json`, `preprocessor_config.json`."""

import json
import os
import struct

import numpy as np
import torch

# safetensors dtype name -> (numpy dtype used to read the raw bytes, bytes per element); I64 for the
# position_ids buffers older CLIP files carry
DTYPES = {"F32": (np.float32, 4), "F16": (np.float16, 2), "BF16": (np.uint16, 2), "I64": (np.int64, 8)}


def read_safetensors(path):
    """Returns {name: float32 torch tensor}, whatever the stored float dtype (I64 tensors stay int64)."""
    with open(path, "rb") as f:
        blob = f.read()
    (header_len,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8 : 8 + header_len])
    data = memoryview(blob)[8 + header_len :]
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        np_dtype, _ = DTYPES[info["dtype"]]
        raw = np.frombuffer(data[begin:end], dtype=np_dtype)
        if info["dtype"] == "I64":
            tensors[name] = torch.from_numpy(raw.astype("<i8").reshape(info["shape"]))
            continue
        if info["dtype"] == "BF16":
            # bf16 is the top half of an f32
            raw = (raw.astype(np.uint32) << 16).view(np.float32)
        tensors[name] = torch.from_numpy(raw.astype(np.float32).reshape(info["shape"]))
    return tensors


def write_safetensors(path, tensors):
    """Writes {name: float32 tensor} as F32 in insertion order; header padded to 8 bytes with spaces."""
    header, chunks, offset = {}, [], 0
    for name, t in tensors.items():
        arr = t.detach().to(torch.float32).contiguous().numpy().astype("<f4")
        header[name] = {"dtype": "F32", "shape": list(arr.shape), "data_offsets": [offset, offset + arr.nbytes]}
        chunks.append(arr.tobytes())
        offset += arr.nbytes
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for c in chunks:
            f.write(c)


def read_checkpoint(directory):
    """Returns (config, preprocessor_config or None, tensors)."""
    with open(os.path.join(directory, "config.json")) as f:
        config = json.load(f)
    pre_path = os.path.join(directory, "preprocessor_config.json")
    pre = None
    if os.path.exists(pre_path):
        with open(pre_path) as f:
            pre = json.load(f)
    return config, pre, read_safetensors(os.path.join(directory, "model.safetensors"))


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")
