#!/usr/bin/python3
"""Weights move both ways between nabla and PyTorch.

1. nabla trains models/fashion_mlp.nn for one epoch and saves safetensors;
   Python's `safetensors` reader loads the file into the equivalent
   nn.Sequential with load_state_dict(strict=True), and PyTorch's class
   probabilities on 1000 test images equal those of `nabla predict`.
2. PyTorch saves a freshly initialised nn.Sequential with safetensors;
   `nabla predict` loads it and again gives PyTorch's probabilities.

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

DATA = "/usr/share/datasets/fashion-mnist/"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIMIT = 1000


def skip(why):
    print(f"skipped: {why}")
    print("0 passed, 0 failed, 1 skipped")
    sys.exit(0)


try:
    import numpy as np
    import torch
    import torch.nn as nn
    from safetensors.torch import load_file, save_file
except ImportError as e:
    skip(f"{e.name} is not installed (make interop installs what it needs)")
if not os.path.exists(DATA + "t10k-images-idx3-ubyte.gz"):
    skip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")

nabla = os.path.join(sys.argv[1] if len(sys.argv) > 1 else "build", "nabla")
model = os.path.join(ROOT, "models", "fashion_mlp.nn")
images_path = DATA + "t10k-images-idx3-ubyte.gz"
passed = failed = 0


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print(f"FAILED: {what}", file=sys.stderr)


def test_images():
    with gzip.open(images_path) as f:
        f.read(16)
        x = np.frombuffer(f.read(LIMIT * 784), dtype=np.uint8).reshape(LIMIT, 1, 28, 28)
    return torch.tensor(x, dtype=torch.float32) / 255


def sequential():
    """The PyTorch twin of models/fashion_mlp.nn (same layer indices)."""
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(),
                         nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10))


def nabla_probabilities(weights):
    out = subprocess.run([nabla, "predict", model, "--weights", weights,
                          "--input", f"idx:{images_path}", "--limit", str(LIMIT)],
                         check=True, capture_output=True, text=True).stdout.splitlines()
    rows = [line.split(",") for line in out[1:]]
    first_p = out[0].split(",").index(next(h for h in out[0].split(",") if h.startswith("p")))
    return np.array([[float(v) for v in r[first_p:]] for r in rows])


def torch_probabilities(net, x):
    with torch.no_grad():
        return torch.softmax(net(x), dim=1).numpy()


x = test_images()
with tempfile.TemporaryDirectory() as tmp:
    # nabla -> PyTorch
    w = os.path.join(tmp, "nabla.safetensors")
    subprocess.run([nabla, "train", model, "--data", "fashion-mnist", "--epochs", "1",
                    "--out", w, "--quiet"], check=True, capture_output=True)
    state = load_file(w)
    check(sorted(state) == ["1.bias", "1.weight", "3.bias", "3.weight", "5.bias", "5.weight"],
          f"tensor names {sorted(state)}")
    net = sequential()
    net.load_state_dict(state, strict=True)
    p_torch, p_nabla = torch_probabilities(net, x), nabla_probabilities(w)
    diff = np.abs(p_torch - p_nabla).max()
    check(diff < 1e-5, f"nabla -> PyTorch: probabilities differ by {diff}")
    check((p_torch.argmax(1) == p_nabla.argmax(1)).all(), "nabla -> PyTorch: predicted classes")
    print(f"nabla -> PyTorch: {LIMIT} predictions, largest probability difference {diff:.2e}")

    # PyTorch -> nabla
    torch.manual_seed(1)
    net = sequential()
    w = os.path.join(tmp, "torch.safetensors")
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, w,
              metadata={"data.input": "bytes/255"})
    p_torch, p_nabla = torch_probabilities(net, x), nabla_probabilities(w)
    diff = np.abs(p_torch - p_nabla).max()
    check(diff < 1e-5, f"PyTorch -> nabla: probabilities differ by {diff}")
    check((p_torch.argmax(1) == p_nabla.argmax(1)).all(), "PyTorch -> nabla: predicted classes")
    print(f"PyTorch -> nabla: {LIMIT} predictions, largest probability difference {diff:.2e}")

print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
