#!/usr/bin/python3
"""Weights move both ways between nabla and PyTorch, for the MLP, the CNN and
the residual network of models/, and a transformer block over image rows
(tests/models/rows_transformer.nn: nn.MultiheadAttention's parameters).

For each model:
1. nabla trains it briefly and saves safetensors; Python's `safetensors` reader
   loads the file into the equivalent PyTorch module with
   load_state_dict(strict=True) (batch-norm statistics included), and PyTorch's
   class probabilities on test images equal those of `nabla predict`.
2. PyTorch saves a freshly initialised module with safetensors; `nabla predict`
   loads it and again gives PyTorch's probabilities.

Needs torch, numpy, the `safetensors` package and Debian's dataset-fashion-mnist;
prints "skipped: ..." and exits 0 when one is missing.  `make interop` sets up
a virtual environment with the package and runs this script.

Usage: torch_interop.py BUILD_DIR
"""
import gzip
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "support"))
from pycheck import DATA, ROOT, NABLA as nabla, check, finish, skip  # noqa: E402

LIMIT = 500


try:
    import numpy as np
    import torch
    import torch.nn as nn
    from safetensors.torch import load_file, save_file
except ImportError as e:
    skip(f"{e.name} is not installed (make interop installs what it needs)")
if not os.path.exists(DATA + "t10k-images-idx3-ubyte.gz"):
    skip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")

images_path = DATA + "t10k-images-idx3-ubyte.gz"


def test_images():
    with gzip.open(images_path) as f:
        f.read(16)
        x = np.frombuffer(f.read(LIMIT * 784), dtype=np.uint8).reshape(LIMIT, 1, 28, 28)
    return torch.tensor(x, dtype=torch.float32) / 255


# ---- the PyTorch twins of the model files (same parameter names) ----

def mlp():
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(),
                         nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10))


def cnn():
    return nn.Sequential(nn.Conv2d(1, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32),
                         nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(32, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64),
                         nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Dropout(0.3), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Dropout(0.3),
                         nn.Linear(128, 10))


def conv3(cin, cout, stride=1):
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)


class Shortcut(nn.Module):
    """A residual join whose projection is named like torchvision's."""

    def __init__(self, cin=None, cout=None, stride=1):
        super().__init__()
        self.downsample = None if cin is None else nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, main, x):
        return main + (x if self.downsample is None else self.downsample(x))


class ResNet(nn.Module):
    """models/fashion_resnet.nn, node for node."""

    def __init__(self):
        super().__init__()
        self.stem, self.stem_bn = conv3(1, 32), nn.BatchNorm2d(32)
        self.b1c1, self.b1n1, self.b1c2, self.b1n2 = conv3(32, 32), nn.BatchNorm2d(32), conv3(32, 32), nn.BatchNorm2d(32)
        self.b1 = Shortcut()
        self.b2c1, self.b2n1, self.b2c2, self.b2n2 = conv3(32, 64, 2), nn.BatchNorm2d(64), conv3(64, 64), nn.BatchNorm2d(64)
        self.b2 = Shortcut(32, 64, 2)
        self.b3c1, self.b3n1, self.b3c2, self.b3n2 = conv3(64, 128, 2), nn.BatchNorm2d(128), conv3(128, 128), nn.BatchNorm2d(128)
        self.b3 = Shortcut(64, 128, 2)
        self.fc = nn.Linear(128, 10)

    def forward(self, x):
        r = torch.relu
        s0 = nn.functional.max_pool2d(r(self.stem_bn(self.stem(x))), 2)
        r1 = r(self.b1(self.b1n2(self.b1c2(r(self.b1n1(self.b1c1(s0))))), s0))
        r2 = r(self.b2(self.b2n2(self.b2c2(r(self.b2n1(self.b2c1(r1))))), r1))
        r3 = r(self.b3(self.b3n2(self.b3c2(r(self.b3n1(self.b3c1(r2))))), r2))
        return self.fc(r3.mean(dim=(2, 3)))


class RowsTransformer(nn.Module):
    """tests/models/rows_transformer.nn: a pre-LN transformer block over the
    image's rows, its modules named by their line's nn.Sequential index."""

    def __init__(self):
        super().__init__()
        parts = {"0": nn.LayerNorm(28), "1": nn.MultiheadAttention(28, 4, batch_first=True),
                 "3": nn.LayerNorm(28), "4": nn.Linear(28, 56), "6": nn.Linear(56, 28),
                 "9": nn.Linear(28 * 28, 10)}
        for name, module in parts.items():
            self.add_module(name, module)

    def forward(self, x):
        m = dict(self.named_children())
        x = x.reshape(-1, 28, 28)
        a = m["0"](x)
        h = x + m["1"](a, a, a, need_weights=False)[0]
        h = h + m["6"](nn.functional.gelu(m["4"](m["3"](h))))
        return m["9"](h.flatten(1))


MODELS = [("fashion_mlp.nn", mlp), ("fashion_cnn.nn", cnn), ("fashion_resnet.nn", ResNet),
          ("tests/models/rows_transformer.nn", RowsTransformer)]


def nabla_probabilities(model, weights):
    out = subprocess.run([nabla, "predict", model, "--weights", weights,
                          "--input", f"idx:{images_path}", "--limit", str(LIMIT)],
                         check=True, capture_output=True, text=True).stdout.splitlines()
    header = out[0].split(",")
    first_p = next(i for i, h in enumerate(header) if h.startswith("p"))
    return np.array([[float(v) for v in line.split(",")[first_p:]] for line in out[1:]])


def torch_probabilities(net, x):
    net.eval()
    with torch.no_grad():
        return torch.softmax(net(x), dim=1).numpy()


def compare(what, p_torch, p_nabla):
    diff = np.abs(p_torch - p_nabla).max()
    check(diff < 1e-5, f"{what}: probabilities differ by {diff}")
    check((p_torch.argmax(1) == p_nabla.argmax(1)).all(), f"{what}: predicted classes")
    print(f"{what}: {LIMIT} predictions, largest probability difference {diff:.2e}")


x = test_images()
with tempfile.TemporaryDirectory() as tmp:
    for name, twin in MODELS:
        model = os.path.join(ROOT, name if "/" in name else os.path.join("models", name))
        # nabla -> PyTorch: a short real training run, so batch-norm statistics move
        w = os.path.join(tmp, "nabla.safetensors")
        subprocess.run([nabla, "train", model, "--data", f"idx:{images_path},"
                        f"{DATA}t10k-labels-idx1-ubyte.gz", "--epochs", "1", "--out", w,
                        "--quiet"], check=True, capture_output=True)
        net = twin()
        state = load_file(w)
        check(sorted(state) == sorted(net.state_dict()),
              f"{name}: tensor names {sorted(set(state) ^ set(net.state_dict()))} differ")
        net.load_state_dict(state, strict=True)
        compare(f"{name} nabla -> PyTorch", torch_probabilities(net, x),
                nabla_probabilities(model, w))

        # PyTorch -> nabla, with batch-norm statistics that are not the defaults
        torch.manual_seed(1)
        net = twin()
        net.train()
        with torch.no_grad():
            net(x[:64])
        w = os.path.join(tmp, "torch.safetensors")
        save_file({k: v.contiguous() for k, v in net.state_dict().items()}, w,
                  metadata={"data.input": "bytes/255"})
        compare(f"{name} PyTorch -> nabla", torch_probabilities(net, x),
                nabla_probabilities(model, w))

finish()
