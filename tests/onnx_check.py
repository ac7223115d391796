#!/usr/bin/python3
"""ONNX export of the models of models/, checked by ONNX's own tools.

For fashion_mlp, fashion_cnn, fashion_resnet and tests/models/onnx_every_op.nn
(every op the export maps, some with their non-default settings): nabla trains the model
briefly (one epoch on 1000 Fashion-MNIST test images, so that the batch-norm
statistics are not their initial values), `nabla export` writes the ONNX file,
and onnx.checker.check_model accepts it.  When onnxruntime is importable, its
class probabilities on test images, at batch 1 and at batch 64, are those of
`nabla predict` (printed to 6 decimals) within 1e-5, with the same classes.

The sequence models (words_mlp, words_gru, words_transformer and
tests/models/onnx_sequence_ops.nn: an RNN, an LSTM, attention without the
mask, a GRU's last state) train for one epoch on 2000 words of Debian's word
list and are checked the same way on 200 windows of random token ids (int64
in the ONNX model), at batch 1 and 64: every position's probabilities.

Needs onnx (Debian's python3-onnx, or PyPI's in a venv), numpy and Debian's
dataset-fashion-mnist (and wamerican for the sequence models); prints
"skipped: ..." and exits 0 when one is missing.

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
WORDS = "/usr/share/dict/words"
# model, positions, and whether it predicts one next character from a window
# (lines:FILE,context=T) or one at every position (lines:FILE)
SEQUENCE_MODELS = (("models/words_mlp.nn", 3, True), ("models/words_gru.nn", 23, False),
                   ("models/words_transformer.nn", 23, False),
                   ("tests/models/onnx_sequence_ops.nn", 8, True))


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


def nabla_probabilities(model, weights, source):
    """nabla predict's probabilities: a row per sample (every position's, for a
    model with a class per position)."""
    out = subprocess.run([nabla, "predict", model, "--weights", weights,
                          "--input", source, "--limit", str(LIMIT)],
                         check=True, capture_output=True, text=True).stdout.splitlines()
    header = out[0].split(",")
    first_p = next(i for i, h in enumerate(header) if h.startswith("p"))
    return np.array([[float(v) for v in line.split(",")[first_p:]] for line in out[1:]])


def runtime_probabilities(path, x, batch):
    sess = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return np.concatenate([sess.run(None, {name: x[i:i + batch]})[0]
                           for i in range(0, len(x), batch)]).reshape(len(x), -1)


def compare(name, out, want, x, classes):
    """ONNX Runtime on x at batch 1 and 64 against nabla's probabilities (rows
    of samples; of positions times classes for a class per position)."""
    for batch in (1, 64):
        got = runtime_probabilities(out, x, batch)
        diff = np.abs(got - want).max() if got.shape == want.shape else np.inf
        print(f"{name}: batch {batch}: max |p_onnxruntime - p_nabla| = {diff:.2e}")
        check(diff <= 1e-5, f"{name}: batch {batch}: probabilities differ by {diff}")
        check(diff <= 1e-5 and (got.reshape(len(x), -1, classes).argmax(2) ==
                                want.reshape(len(x), -1, classes).argmax(2)).all(),
              f"{name}: batch {batch}: classes differ")


def export_checked(model, tmp, data):
    """Train model briefly on data, export it and run onnx.checker: the ONNX
    file, its weights and the model, or None."""
    name = os.path.basename(model)
    weights = os.path.join(tmp, name + ".safetensors")
    out = os.path.join(tmp, name + ".onnx")
    subprocess.run([nabla, "train", model, "--data", data, "--epochs", "1",
                    "--quiet", "--out", weights], check=True, capture_output=True)
    r = subprocess.run([nabla, "export", model, "--weights", weights, "--onnx", out],
                       capture_output=True, text=True)
    check(r.returncode == 0, f"{name}: nabla export: {r.stderr}")
    if r.returncode:
        return None
    m = onnx.load(out)
    try:
        onnx.checker.check_model(m, full_check=True)
        check(True, "")
    except Exception as e:  # the checker's own exception types vary by version
        check(False, f"{name}: onnx.checker: {e}")
    return out, weights, m


def check_model(model, tmp, images, labels, x):
    done = export_checked(model, tmp, f"idx:{images},{labels}")
    if not done:
        return
    out, weights, m = done
    name = os.path.basename(model)
    props = {p.key: p.value for p in m.metadata_props}
    check(props.get("data.input") == "bytes/255", f"{name}: metadata_props {props}")
    if onnxruntime is None:
        return
    want = nabla_probabilities(model, weights, f"idx:{images}")
    compare(name, out, want, x.reshape((-1,) + tuple(
        d.dim_value for d in m.graph.input[0].type.tensor_type.shape.dim[1:])), want.shape[1])


def check_sequence_model(model, positions, windows, tmp, words):
    """A token model: int64 ids in, the vocabulary in metadata_props, and
    ONNX Runtime's probabilities on random windows against nabla predict's."""
    data = f"lines:{words}" + (f",context={positions}" if windows else "")
    done = export_checked(model, tmp, data)
    if not done:
        return
    out, weights, m = done
    name = os.path.basename(model)
    check(m.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.INT64,
          f"{name}: the input is not int64")
    props = {p.key: p.value for p in m.metadata_props}
    check(props.get("data.classes", "").startswith('["\\n","a"'),
          f"{name}: metadata_props {props}")
    if onnxruntime is None:
        return
    ids = np.random.default_rng(1).integers(0, 27, size=(200, positions), dtype=np.int64)
    csv = os.path.join(tmp, f"ids{positions}.csv")
    np.savetxt(csv, ids, fmt="%d", delimiter=",")
    want = nabla_probabilities(model, weights, f"csv:{csv},label=none")
    compare(name, out, want, ids, 27)


def main():
    with tempfile.TemporaryDirectory() as tmp:
        images, labels = write_subset(tmp)
        _, body = read_idx("t10k-images-idx3-ubyte.gz", LIMIT, 16, 784)
        x = np.frombuffer(body, dtype=np.uint8).astype(np.float32) / 255
        for model in ("models/fashion_mlp.nn", "models/fashion_cnn.nn",
                      "models/fashion_resnet.nn", "tests/models/onnx_every_op.nn"):
            check_model(os.path.join(ROOT, model), tmp, images, labels, x)
        if os.path.exists(WORDS):
            words = os.path.join(tmp, "words.txt")
            with open(WORDS) as f, open(words, "w") as o:
                o.writelines([w for w in f if w.strip().isalpha() and w.strip().islower()
                              and w.strip().isascii()][:2000])
            for model, positions, windows in SEQUENCE_MODELS:
                check_sequence_model(os.path.join(ROOT, model), positions, windows, tmp, words)
        else:
            print(f"{WORDS} is not installed (apt-get install wamerican): "
                  "the sequence models were not checked")
    if onnxruntime is None:
        print("onnxruntime is not installed: the outputs were not compared")
    finish()


main()
