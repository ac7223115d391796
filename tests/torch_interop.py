#!/usr/bin/python3
"""Weights move both ways between nabla and PyTorch, for the MLP, the CNN and
the residual network of models/, a transformer block over image rows
(tests/models/rows_transformer.nn: nn.MultiheadAttention's parameters), and two
small token models (embedding -> positional embedding -> GRU's last state ->
dense, and embedding -> LSTM -> dense per position) trained on token data made here.

For each model:
1. nabla trains it briefly and saves safetensors; Python's `safetensors` reader
   loads the file into the equivalent PyTorch module with
   load_state_dict(strict=True) (batch-norm statistics included), and PyTorch's
   class probabilities on test images equal those of `nabla predict`.
2. PyTorch saves a freshly initialised module with safetensors; `nabla predict`
   loads it and again gives PyTorch's probabilities.

Needs torch, numpy, the `safetensors` package and, for the image models,
Debian's dataset-fashion-mnist; prints "skipped: ..." and exits 0 when torch,
numpy or safetensors is missing.  `make interop` sets up
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


def compare(what, p_torch, p_nabla, count=LIMIT):
    check(p_torch.shape == p_nabla.shape, f"{what}: shapes {p_torch.shape} and {p_nabla.shape}")
    if p_torch.shape != p_nabla.shape:
        return
    diff = np.abs(p_torch - p_nabla).max()
    check(diff < 1e-5, f"{what}: probabilities differ by {diff}")
    check((p_torch.argmax(1) == p_nabla.argmax(1)).all(), f"{what}: predicted classes")
    print(f"{what}: {count} predictions, largest probability difference {diff:.2e}")


# ---- token models: their model files and PyTorch twins ----

SEQ_T, SEQ_V, SEQ_N = 6, 5, 120

GRU_LAST = """input 6 tokens=5
embedding 8
pos_embedding
gru 12 last=true
dense 5
loss cross_entropy
"""

LSTM_SEQ = """input 6 tokens=5
emb = embedding 8
rec = lstm 10
out = dense 5
loss cross_entropy ignore_index=-1
"""


class Tokens(nn.Module):
    """A token model whose parameter names are the model file's layer names."""

    def __init__(self, names, recurrent, pos):
        super().__init__()
        self.names, self.pos = names, pos
        self.add_module(names[0], nn.Embedding(SEQ_V, 8))
        if pos:
            self.add_module(names[1], nn.Embedding(SEQ_T, 8))  # a [T, D] table, added
        self.add_module(names[2], recurrent)
        self.add_module(names[3], nn.Linear(recurrent.hidden_size, SEQ_V))

    def forward(self, ids):
        m = self._modules
        h = m[self.names[0]](ids)
        if self.pos:
            h = h + m[self.names[1]].weight
        out = m[self.names[2]](h)[0]
        return m[self.names[3]](out[:, -1] if self.pos else out)


TOKEN_MODELS = [
    ("gru_last", GRU_LAST, lambda: Tokens(("0", "1", "2", "3"), nn.GRU(8, 12, batch_first=True), True)),
    ("lstm_seq", LSTM_SEQ, lambda: Tokens(("emb", None, "rec", "out"), nn.LSTM(8, 10, batch_first=True), False)),
]


def token_data(tmp):
    """Token sequences, each one's first token as its label, and labels per
    position (the sum of a token and the one before, mod V; -1 first) as .npy."""
    rng = np.random.default_rng(5)
    ids = rng.integers(0, SEQ_V, size=(SEQ_N, SEQ_T))
    per_pos = (ids + np.roll(ids, 1, axis=1)) % SEQ_V
    per_pos[:, 0] = -1
    paths = [os.path.join(tmp, n) for n in ("ids.npy", "first.npy", "per_pos.npy")]
    for path, a in zip(paths, (ids, ids[:, 0], per_pos)):
        np.save(path, a.astype(np.int32))
    return torch.tensor(ids), paths


def torch_token_probabilities(net, ids):
    net.eval()
    with torch.no_grad():
        return torch.softmax(net(ids), dim=-1).reshape(len(ids), -1).numpy()


def nabla_token_probabilities(model, weights, ids_path):
    out = subprocess.run([nabla, "predict", model, "--weights", weights, "--input",
                          f"npy:{ids_path}"], check=True, capture_output=True,
                         text=True).stdout.splitlines()
    first_p = next(i for i, h in enumerate(out[0].split(",")) if h.startswith("p"))
    return np.array([[float(v) for v in line.split(",")[first_p:]] for line in out[1:]])


def token_models(tmp):
    ids, (ids_path, first_path, per_pos_path) = token_data(tmp)
    for name, text, twin in TOKEN_MODELS:
        model = os.path.join(tmp, name + ".nn")
        with open(model, "w") as f:
            f.write(text)
        labels = per_pos_path if name == "lstm_seq" else first_path
        w = os.path.join(tmp, name + ".safetensors")
        subprocess.run([nabla, "train", model, "--data", f"npy:{ids_path},{labels}",
                        "--epochs", "3", "--batch", "16", "--out", w, "--quiet"],
                       check=True, capture_output=True)
        net = twin()
        state = load_file(w)
        check(sorted(state) == sorted(net.state_dict()),
              f"{name}: tensor names {sorted(set(state) ^ set(net.state_dict()))} differ")
        net.load_state_dict(state, strict=True)
        compare(f"{name} nabla -> PyTorch", torch_token_probabilities(net, ids),
                nabla_token_probabilities(model, w, ids_path), len(ids))
        torch.manual_seed(2)
        net = twin()
        w = os.path.join(tmp, name + "_torch.safetensors")
        save_file({k: v.contiguous() for k, v in net.state_dict().items()}, w,
                  metadata={"data.input": "raw"})
        compare(f"{name} PyTorch -> nabla", torch_token_probabilities(net, ids),
                nabla_token_probabilities(model, w, ids_path), len(ids))


with tempfile.TemporaryDirectory() as tmp:
    token_models(tmp)
if not os.path.exists(images_path):
    print("image models skipped: Fashion-MNIST is not installed "
          "(apt-get install dataset-fashion-mnist)")
    finish()

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
