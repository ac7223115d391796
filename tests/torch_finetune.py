#!/usr/bin/python3
"""Fine-tuning from PyTorch's weights: PyTorch trains fashion_mlp
(784-256-128-10) briefly on Fashion-MNIST and saves its first two layers
(1.weight, 1.bias, 3.weight, 3.bias) as safetensors; `nabla train` starts a
model with a fresh 5-class head from them (--init, --init-skip '5.*'),
freezes those layers (--freeze '1.*,3.*') and trains on classes 0-4.  The
loss falls, the 5-class test accuracy is far above chance, and the frozen
tensors of nabla's result are byte for byte PyTorch's.

The safetensors file is written here with numpy (the layout is a length, a
JSON header and the raw little-endian data), so only torch and numpy are
needed, with Debian's dataset-fashion-mnist; prints "skipped: ..." and exits
0 when one is missing.

Usage: torch_finetune.py BUILD_DIR
"""
import gzip
import json
import os
import struct
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "support"))
from pycheck import DATA, ROOT, NABLA as nabla, check, finish, skip  # noqa: E402


try:
    import numpy as np
    import torch
    import torch.nn as nn
except ImportError as e:
    skip(f"{e.name} is not installed")
if not os.path.exists(DATA + "train-images-idx3-ubyte.gz"):
    skip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")


def idx(name, offset):
    with gzip.open(DATA + name) as f:
        return np.frombuffer(f.read(), np.uint8, offset=offset)


def save_safetensors(path, tensors):
    """name -> float32 array, as nb_st_write lays it out."""
    header, blobs, at = {}, [], 0
    for name, a in tensors.items():
        b = np.ascontiguousarray(a, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [at, at + len(b)]}
        blobs.append(b)
        at += len(b)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def load_safetensors_bytes(path):
    """name -> raw bytes of the tensor."""
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    body = data[8 + n:]
    return {k: body[v["data_offsets"][0]:v["data_offsets"][1]]
            for k, v in header.items() if k != "__metadata__"}


def pytorch_layers():
    """fashion_mlp in PyTorch, one epoch on 10 000 training images."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(),
                        nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10))
    x = torch.tensor(idx("train-images-idx3-ubyte.gz", 16)[:784 * 10000].reshape(-1, 1, 28, 28),
                     dtype=torch.float32) / 255
    y = torch.tensor(idx("train-labels-idx1-ubyte.gz", 8)[:10000], dtype=torch.long)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    for b in range(0, len(y), 100):
        opt.zero_grad()
        nn.functional.cross_entropy(net(x[b:b + 100]), y[b:b + 100]).backward()
        opt.step()
    sd = net.state_dict()
    return {k: sd[k].numpy() for k in ("1.weight", "1.bias", "3.weight", "3.bias")}


def five_classes(tmp, images, labels, n, name):
    """The first n samples of classes 0-4 as npy files; the spec for --data."""
    x = idx(images, 16).reshape(-1, 1, 28, 28)
    y = idx(labels, 8)
    keep = np.nonzero(y < 5)[0][:n]
    xp, yp = os.path.join(tmp, name + "_x.npy"), os.path.join(tmp, name + "_y.npy")
    np.save(xp, x[keep])
    np.save(yp, y[keep].astype(np.int32))
    return f"npy:{xp},{yp}"


def main():
    layers = pytorch_layers()
    with tempfile.TemporaryDirectory() as tmp:
        init = os.path.join(tmp, "torch.safetensors")
        save_safetensors(init, layers)
        model = os.path.join(tmp, "fashion_mlp5.nn")
        with open(os.path.join(ROOT, "models", "fashion_mlp.nn")) as f:
            text = f.read()
        check("\ndense 10\n" in text, "models/fashion_mlp.nn ends in dense 10")
        with open(model, "w") as f:
            f.write(text.replace("\ndense 10\n", "\ndense 5\n"))
        train = five_classes(tmp, "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                             5000, "train")
        test = five_classes(tmp, "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz",
                            2000, "test")
        out, log = os.path.join(tmp, "tuned.safetensors"), os.path.join(tmp, "log.csv")
        r = subprocess.run([nabla, "train", model, "--data", train, "--test", test,
                            "--epochs", "3", "--init", init, "--init-skip", "5.*",
                            "--freeze", "1.*,3.*", "--out", out, "--log", log, "--quiet"],
                           capture_output=True, text=True)
        check(r.returncode == 0, f"nabla train: {r.stderr}")
        if r.returncode != 0:
            return
        rows = [line.split(",") for line in open(log).read().split("\n")[1:] if line]
        losses = [float(row[3]) for row in rows]
        check(len(losses) == 3 and losses[-1] < losses[0], f"loss falls: {losses}")
        acc = [float(w.rstrip("%")) for w in r.stdout.split() if w.endswith("%")]
        check(acc and acc[0] > 60, f"5-class test accuracy (chance 20%): {r.stdout.strip()}")
        tuned = load_safetensors_bytes(out)
        for name, a in layers.items():
            check(tuned[name] == np.ascontiguousarray(a, dtype="<f4").tobytes(),
                  f"frozen {name} is byte for byte PyTorch's")
        check(len(tuned["5.weight"]) == 5 * 128 * 4, "the head has 5 rows")
        print(f"losses {losses}; {r.stdout.splitlines()[0]}")


main()
finish()
