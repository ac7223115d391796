#!/usr/bin/python3
"""PyTorch models exported with torch.onnx.export, imported by `nabla import`.

For each PyTorch twin of models/ in tests/torch_interop.py (the MLP, the CNN
and the residual network): a seeded module whose batch-norm statistics have
moved (one training-mode forward) is exported in eval mode with
torch.onnx.export's TorchScript exporter, at opsets from 13 to 17, as PyTorch
folds batch norm into the convolutions (TrainingMode.EVAL) and with
TrainingMode.PRESERVE (BatchNormalization nodes kept).  A fourth model has the
activations and the layer norm PyTorch exports as several ops (GELU in both
forms, Hardswish, SiLU, softplus, ELU, leaky ReLU).  `nabla import --out --weights --data-input bytes/255` writes a
model file and weights, and `nabla predict` on 500 Fashion-MNIST test images
gives PyTorch's classes, with probabilities within 1e-5 (printed to 6
decimals).  Then nn.Embedding + nn.RNN / nn.LSTM / nn.GRU (batch_first) +
nn.Linear, exported with int64 token ids: every position's probabilities on
200 random sequences within 1e-5.

Under PyTorch 2 with onnxscript (`make onnx-import-check`), the same image
models, the activations and the LSTM and GRU are also exported by
torch.onnx.export's default exporter (torch.export, its default opset,
tensors in an external data file beside the model) and checked the same way.

Needs torch, numpy and Debian's dataset-fashion-mnist; prints "skipped: ..."
and exits 0 when one is missing.

Usage: onnx_import_check.py BUILD_DIR
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
except ImportError as e:
    skip(f"{e.name} is not installed (apt-get install python3-torch)")
images_path = DATA + "t10k-images-idx3-ubyte.gz"
if not os.path.exists(images_path):
    skip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
if not os.path.exists(nabla):
    skip(f"{nabla} is not built")
if "without ONNX support" in subprocess.run([nabla, "import", "/nonexistent/none.onnx"],
                                            capture_output=True, text=True).stderr:
    skip("nabla was built without ONNX support")


def twins():
    """The twins of tests/torch_interop.py (its module code, without its run)."""
    path = os.path.join(ROOT, "tests", "torch_interop.py")
    with open(path) as f:
        src = f.read()
    start, end = src.index("# ---- the PyTorch twins"), src.index("def nabla_probabilities")
    scope = {"torch": torch, "nn": nn}
    exec(compile(src[start:end], path, "exec"), scope)
    return scope["MODELS"]


def activations():
    """Not a twin: the activations and norms PyTorch exports as several ops."""
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 64), nn.GELU(approximate="tanh"),
                         nn.Hardswish(), nn.LayerNorm(64), nn.SiLU(), nn.GELU(),
                         nn.Softplus(), nn.ELU(), nn.LeakyReLU(0.2), nn.Linear(64, 10))


TORCH2 = int(torch.__version__.split(".")[0]) >= 2
try:
    import onnxscript  # noqa: F401 (torch.export's ONNX exporter needs it)
    DYNAMO = TORCH2
except ImportError:
    DYNAMO = False


def export(net, x, path, opset, mode, names):
    """torch.onnx.export of net on the example x: the TorchScript exporter at
    opset with training mode mode, or (opset "default") PyTorch 2's default
    exporter at its own opset, with its external data file."""
    inputs, outputs = names
    if opset == "default":
        torch.onnx.export(net, (x,), path, dynamo=True, input_names=[inputs],
                          output_names=[outputs],
                          dynamic_shapes=({0: torch.export.Dim("batch")},))
        return
    legacy = {"dynamo": False} if TORCH2 else {}
    torch.onnx.export(net, x, path, opset_version=opset, training=mode, input_names=[inputs],
                      output_names=[outputs],
                      dynamic_axes={inputs: {0: "batch"}, outputs: {0: "batch"}}, **legacy)


def test_images():
    with gzip.open(images_path) as f:
        f.read(16)
        x = np.frombuffer(f.read(LIMIT * 784), dtype=np.uint8).reshape(LIMIT, 1, 28, 28)
    return torch.tensor(x, dtype=torch.float32) / 255


def nabla_probabilities(model, weights):
    out = subprocess.run([nabla, "predict", model, "--weights", weights,
                          "--input", f"idx:{images_path}", "--limit", str(LIMIT)],
                         check=True, capture_output=True, text=True).stdout.splitlines()
    header = out[0].split(",")
    first_p = next(i for i, h in enumerate(header) if h.startswith("p"))
    rows = [line.split(",") for line in out[1:]]
    classes = np.array([int(r[header.index("class")]) for r in rows])
    return classes, np.array([[float(v) for v in r[first_p:]] for r in rows])


def check_twin(tmp, name, twin, x, opset, mode):
    what = f"{name} opset {opset} {mode.name}" if opset != "default" else f"{name} torch.export"
    torch.manual_seed(opset if opset != "default" else 18)
    net = twin()
    net.train()
    with torch.no_grad():
        net(x[:64])  # batch-norm statistics that are not the defaults
    net.eval()
    with torch.no_grad():
        want = torch.softmax(net(x), dim=1).numpy()
    onnx_path = os.path.join(tmp, "twin.onnx")
    export(net, x[:2], onnx_path, opset, mode, ("image", "logits"))
    if opset == "default":
        what += " (external data)" if os.path.exists(onnx_path + ".data") else ""
    model, weights = os.path.join(tmp, "twin.nn"), os.path.join(tmp, "twin.safetensors")
    r = subprocess.run([nabla, "import", onnx_path, "--out", model, "--weights", weights,
                        "--data-input", "bytes/255"], capture_output=True, text=True)
    check(r.returncode == 0, f"{what}: nabla import: {r.stderr}")
    if r.returncode:
        return
    classes, got = nabla_probabilities(model, weights)
    diff = np.abs(got - want).max()
    # an untrained net's top two classes can be closer than float32 rounding
    top2 = np.sort(want, axis=1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 1e-6
    print(f"{what}: {LIMIT} predictions, largest probability difference {diff:.2e}, "
          f"{(~clear).sum()} near-ties")
    check(diff <= 1e-5, f"{what}: probabilities differ by {diff}")
    check((classes == want.argmax(1))[clear].all(), f"{what}: predicted classes differ")


class Recurrent(nn.Module):
    """Embedding, one recurrent layer (batch_first) and a linear at every
    position, or at the last one only (out[:, -1]): what nabla imports as
    embedding, rnn/lstm/gru [last=true] and dense."""

    def __init__(self, kind, last):
        super().__init__()
        self.last = last
        self.emb = nn.Embedding(27, 16)
        self.rnn = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[kind](16, 24, batch_first=True)
        self.fc = nn.Linear(24, 27)

    def forward(self, ids):
        out = self.rnn(self.emb(ids))[0]
        return self.fc(out[:, -1] if self.last else out)


def check_recurrent(tmp, kind, opset, last=False):
    """torch.onnx.export of Recurrent(kind, last) (int64 ids, zero initial
    states made from the batch size) imported, and nabla predict's
    probabilities at every position (or the last) of 200 random sequences
    against PyTorch's."""
    what = f"{kind}{' out[:, -1]' if last else ''} " + (
        f"opset {opset}" if opset != "default" else "torch.export")
    torch.manual_seed(opset if opset != "default" else 18)
    net = Recurrent(kind, last).eval()
    ids = torch.randint(0, 27, (200, 12))
    with torch.no_grad():
        want = torch.softmax(net(ids), dim=-1).reshape(200, -1).numpy()
    onnx_path, csv = os.path.join(tmp, "rec.onnx"), os.path.join(tmp, "ids.csv")
    export(net, ids[:2], onnx_path, opset, torch.onnx.TrainingMode.EVAL, ("ids", "logits"))
    np.savetxt(csv, ids.numpy(), fmt="%d", delimiter=",")
    model, weights = os.path.join(tmp, "rec.nn"), os.path.join(tmp, "rec.safetensors")
    r = subprocess.run([nabla, "import", onnx_path, "--out", model, "--weights", weights],
                       capture_output=True, text=True)
    check(r.returncode == 0, f"{what}: nabla import: {r.stderr}")
    if r.returncode:
        return
    out = subprocess.run([nabla, "predict", model, "--weights", weights, "--input",
                          f"csv:{csv},label=none"], check=True, capture_output=True,
                         text=True).stdout.splitlines()
    first_p = next(i for i, h in enumerate(out[0].split(",")) if h.startswith("p"))
    got = np.array([[float(v) for v in line.split(",")[first_p:]] for line in out[1:]])
    diff = np.abs(got - want).max() if got.shape == want.shape else np.inf
    print(f"{what}: 200 x {1 if last else 12} positions, largest probability difference "
          f"{diff:.2e}")
    check(diff <= 1e-5, f"{what}: probabilities differ by {diff}")


def main():
    x = test_images()
    fold, keep = torch.onnx.TrainingMode.EVAL, torch.onnx.TrainingMode.PRESERVE
    runs = {"fashion_mlp.nn": [(13, fold)], "fashion_cnn.nn": [(14, fold), (17, keep)],
            "fashion_resnet.nn": [(13, keep), (17, fold)], "activations": [(17, fold)]}
    with tempfile.TemporaryDirectory() as tmp:
        for name, twin in twins() + [("activations", activations)]:
            # the other twins (attention, token models) use ops nabla cannot
            # export or import yet: docs/onnx.md
            for opset, mode in runs.get(name, []) + ([("default", fold)] if DYNAMO and
                                                     name in runs else []):
                check_twin(tmp, name, twin, x, opset, mode)
        for kind, opset in (("rnn", 14), ("lstm", 17), ("gru", 13)):
            check_recurrent(tmp, kind, opset)
        for kind, opset in (("lstm", 14), ("gru", 17)):
            check_recurrent(tmp, kind, opset, last=True)
        if DYNAMO:  # nn.RNN's is unrolled step by step: not imported
            check_recurrent(tmp, "lstm", "default")
            check_recurrent(tmp, "gru", "default")
            check_recurrent(tmp, "gru", "default", last=True)
    finish()


main()
