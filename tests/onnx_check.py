#!/usr/bin/python3
"""ONNX export of the three models of models/, checked by ONNX's own tools.

For fashion_mlp, fashion_cnn, fashion_resnet and tests/models/onnx_every_op.nn
(every op the export maps, some with their non-default settings): nabla trains the model
briefly (one epoch on 1000 Fashion-MNIST test images, so that the batch-norm
statistics are not their initial values), `nabla export` writes the ONNX file,
and onnx.checker.check_model accepts it.  When onnxruntime is importable, its
class probabilities on test images, at batch 1 and at batch 64, are those of
`nabla predict` (printed to 6 decimals) within 1e-5, with the same classes.

Needs onnx (Debian's python3-onnx, or PyPI's in a venv), numpy and Debian's
dataset-fashion-mnist; prints "skipped: ..." and exits 0 when one is missing.

Usage: onnx_check.py BUILD_DIR
"""
import gzip
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "support"))
from pycheck import DATA, ROOT, NABLA as nabla, check, finish, skip  # noqa: E402

TRAIN = 1000
LIMIT = 500


try:
    import numpy as np
    import onnx
except ImportError as e:
    skip(f"{e.name} is not installed (apt-get install python3-onnx)")
try:
    import onnxruntime
except ImportError:
    onnxruntime = None
if not os.path.exists(DATA + "t10k-images-idx3-ubyte.gz"):
    skip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")


def read_idx(name, count, header, size):
    with gzip.open(DATA + name) as f:
        head = f.read(header)
        return head, f.read(count * size)


def write_subset(tmp):
    """The first TRAIN images and labels as (uncompressed) IDX files."""
    paths = []
    for name, header, size in (("t10k-images-idx3-ubyte.gz", 16, 784),
                               ("t10k-labels-idx1-ubyte.gz", 8, 1)):
        head, body = read_idx(name, TRAIN, header, size)
        head = head[:4] + TRAIN.to_bytes(4, "big") + head[8:]
        paths.append(os.path.join(tmp, name[:-3]))
        with open(paths[-1], "wb") as f:
            f.write(head + body)
    return paths


def nabla_probabilities(model, weights, images):
    out = subprocess.run([nabla, "predict", model, "--weights", weights,
                          "--input", f"idx:{images}", "--limit", str(LIMIT)],
                         check=True, capture_output=True, text=True).stdout.splitlines()
    header = out[0].split(",")
    first_p = next(i for i, h in enumerate(header) if h.startswith("p"))
    return np.array([[float(v) for v in line.split(",")[first_p:]] for line in out[1:]])


def runtime_probabilities(path, x, batch):
    sess = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return np.concatenate([sess.run(None, {name: x[i:i + batch]})[0]
                           for i in range(0, len(x), batch)])


def check_model(model, tmp, images, labels, x):
    name = os.path.basename(model)
    weights = os.path.join(tmp, name + ".safetensors")
    out = os.path.join(tmp, name + ".onnx")
    subprocess.run([nabla, "train", model, "--data", f"idx:{images},{labels}", "--epochs", "1",
                    "--quiet", "--out", weights], check=True, capture_output=True)
    r = subprocess.run([nabla, "export", model, "--weights", weights, "--onnx", out],
                       capture_output=True, text=True)
    check(r.returncode == 0, f"{name}: nabla export: {r.stderr}")
    if r.returncode:
        return
    m = onnx.load(out)
    try:
        onnx.checker.check_model(m, full_check=True)
        check(True, "")
    except Exception as e:  # the checker's own exception types vary by version
        check(False, f"{name}: onnx.checker: {e}")
    props = {p.key: p.value for p in m.metadata_props}
    check(props.get("data.input") == "bytes/255", f"{name}: metadata_props {props}")
    if onnxruntime is None:
        return
    want = nabla_probabilities(model, weights, images)
    for batch in (1, 64):
        got = runtime_probabilities(out, x.reshape((-1,) + tuple(
            d.dim_value for d in m.graph.input[0].type.tensor_type.shape.dim[1:])), batch)
        diff = np.abs(got - want).max()
        print(f"{name}: batch {batch}: max |p_onnxruntime - p_nabla| = {diff:.2e}")
        check(diff <= 1e-5, f"{name}: batch {batch}: probabilities differ by {diff}")
        check((got.argmax(1) == want.argmax(1)).all(), f"{name}: batch {batch}: classes differ")


def main():
    with tempfile.TemporaryDirectory() as tmp:
        images, labels = write_subset(tmp)
        _, body = read_idx("t10k-images-idx3-ubyte.gz", LIMIT, 16, 784)
        x = np.frombuffer(body, dtype=np.uint8).astype(np.float32) / 255
        for model in ("models/fashion_mlp.nn", "models/fashion_cnn.nn",
                      "models/fashion_resnet.nn", "tests/models/onnx_every_op.nn"):
            check_model(os.path.join(ROOT, model), tmp, images, labels, x)
    if onnxruntime is None:
        print("onnxruntime is not installed: the outputs were not compared")
    finish()


main()
