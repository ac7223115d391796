#!/usr/bin/python3
"""Write the ONNX test corpus (tests/corpus/onnx/): small valid models of
every op nabla imports, made with onnx.helper, and hostile files made from
them (truncated, nested too deep, huge dimensions, an unknown op, a cycle,
a missing initializer, a wrong raw_data size, a double tensor, an
unsupported attribute value).  The sequence models (an embedding, RNN, LSTM,
GRU and attention) are tiny models trained and exported by nabla itself
(build/nabla, or $NABLA) and by PyTorch's torch.onnx.export, with hostile
variants of them.  Run with Debian's /usr/bin/python3 (python3-onnx, numpy,
python3-torch) from the source tree after `make build`; the outputs are
committed, and the fuzz_replay_onnx test feeds them to fuzz/fuzz_onnx.c."""
import os
import subprocess
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "onnx")
os.makedirs(here, exist_ok=True)
rng = np.random.default_rng(0)


def write(name, model):
    data = model if isinstance(model, bytes) else model.SerializeToString()
    with open(os.path.join(here, name), "wb") as f:
        f.write(data)


def init(name, *shape):
    return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name)


def ints(name, values):
    return numpy_helper.from_array(np.array(values, dtype=np.int64), name)


def model(nodes, inits, in_shape, out_shape, opset=17):
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, ["batch"] + in_shape)], [helper.make_tensor_value_info(
            "y", TensorProto.FLOAT, ["batch"] + out_shape)], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    helper.set_model_props(m, {"data.input": "bytes/255"})
    return m


N = helper.make_node
mlp = model([N("Gemm", ["x", "fc.weight", "fc.bias"], ["h"], "fc", transB=1),
             N("Relu", ["h"], ["r"], "relu"),
             N("MatMul", ["r", "out.w"], ["m"], "out"),
             N("Add", ["m", "out.b"], ["s"], "out_add"),
             N("Softmax", ["s"], ["y"], "softmax", axis=-1)],
            [init("fc.weight", 5, 4), init("fc.bias", 5), init("out.w", 5, 3), init("out.b", 3)],
            [4], [3])
write("valid_mlp.onnx", mlp)

cnn = model([N("Conv", ["x", "conv.weight", "conv.bias"], ["c"], "conv", kernel_shape=[3, 3],
               pads=[1, 1, 1, 1], strides=[1, 1], dilations=[1, 1], group=1),
             N("BatchNormalization", ["c", "bn.weight", "bn.bias", "bn.running_mean",
                                      "bn.running_var"], ["b"], "bn", epsilon=1e-5),
             N("Relu", ["b"], ["r"], "relu"),
             N("MaxPool", ["r"], ["p"], "pool", kernel_shape=[2, 2], strides=[2, 2]),
             N("AveragePool", ["p"], ["a"], "avg", kernel_shape=[3, 3], strides=[2, 2],
               pads=[1, 1, 1, 1], ceil_mode=1),
             N("Add", ["a", "a"], ["a2"], "twice"),
             N("GlobalAveragePool", ["a2"], ["g"], "gap"),
             N("Flatten", ["g"], ["f"], "flat", axis=1),
             N("Gemm", ["f", "fc.weight", "fc.bias"], ["y"], "fc", transB=1)],
            [init("conv.weight", 2, 1, 3, 3), init("conv.bias", 2), init("bn.weight", 2),
             init("bn.bias", 2), init("bn.running_mean", 2),
             numpy_helper.from_array(np.array([1.0, 2.0], np.float32), "bn.running_var"),
             init("fc.weight", 3, 2), init("fc.bias", 3)], [1, 8, 8], [3], opset=13)
write("valid_cnn.onnx", cnn)

half = helper.make_tensor("half", TensorProto.FLOAT, [], [0.5])
shapes = model([N("Constant", [], ["shape"], "shape_c", value=helper.make_tensor(
                    "s", TensorProto.INT64, [3], [0, 2, 3])),
                N("Reshape", ["x", "shape"], ["r"], "reshape"),
                N("LayerNormalization", ["r", "ln.weight", "ln.bias"], ["l"], "ln", axis=-1),
                N("Div", ["l", "sqrt2"], ["d"], "gelu_div"),
                N("Erf", ["d"], ["e"], "gelu_erf"),
                N("Add", ["e", "one"], ["p"], "gelu_add"),
                N("Mul", ["l", "p"], ["q"], "gelu_mul"),
                N("Constant", [], ["half"], "half_c", value=half),
                N("Mul", ["q", "half"], ["g"], "gelu"),
                N("Sigmoid", ["g"], ["sg"], "silu_sig"),
                N("Mul", ["g", "sg"], ["si"], "silu"),
                N("Concat", ["si", "g"], ["c"], "concat", axis=-1),
                N("Tanh", ["c"], ["t"], "tanh"),
                N("Identity", ["t"], ["i"], "identity"),
                N("LeakyRelu", ["i"], ["k"], "leaky", alpha=0.2),
                N("Elu", ["k"], ["el"], "elu", alpha=0.5),
                N("Softplus", ["el"], ["sp"], "softplus"),
                N("HardSwish", ["sp"], ["hs"], "hardswish"),
                N("Abs", ["hs"], ["ab"], "abs"),
                N("Sub", ["ab", "hs"], ["sb"], "sub"),
                N("Flatten", ["sb"], ["f"], "flatten", axis=1),
                N("LogSoftmax", ["f"], ["y"], "log_softmax")],
               [init("ln.weight", 3), init("ln.bias", 3),
                numpy_helper.from_array(np.array(1.4142135, np.float32), "sqrt2"),
                numpy_helper.from_array(np.array(1.0, np.float32), "one")], [6], [12], opset=14)
write("valid_shapes.onnx", shapes)

# the MLP with its tensors in a file beside it, as PyTorch 2 exports (tests/test_cli.sh)
external = os.path.join(here, "..", "onnx_external")
os.makedirs(external, exist_ok=True)
ext = onnx.ModelProto()
ext.CopyFrom(mlp)
onnx.save_model(ext, os.path.join(external, "mlp.onnx"), save_as_external_data=True,
                all_tensors_to_one_file=True, location="mlp.onnx.data", size_threshold=0)

data = mlp.SerializeToString()
write("bad_truncated.onnx", data[:len(data) // 2])
write("bad_empty.onnx", b"")


def variant(name, base, change):
    m = onnx.ModelProto()
    m.CopyFrom(base)
    change(m)
    write(name, m)


def huge(m):
    m.graph.initializer[0].dims[0] = 1 << 40


def huge_input(m):
    m.graph.input[0].type.tensor_type.shape.dim[1].dim_value = 1 << 31


def unknown(m):
    m.graph.node[1].op_type = "Swish"


def cycle(m):
    m.graph.node[0].input[0] = "r"


def missing(m):
    del m.graph.initializer[3]


def short(m):
    m.graph.initializer[0].raw_data = m.graph.initializer[0].raw_data[:-4]


def double(m):
    m.graph.initializer[1].CopyFrom(numpy_helper.from_array(np.zeros(5), "fc.bias"))


def trans_a(m):
    m.graph.node[0].attribute.append(helper.make_attribute("transA", 1))


def strides(m):
    m.graph.node[0].attribute[4].ints[:] = [2, 1]


def opset(m):
    m.opset_import[0].version = 9


def nested(levels):
    """A graph in a node's attribute in a graph ..., levels messages deep."""
    data = b""
    for k in range(levels):
        tag = 0x3a if k == levels - 1 else (0x32, 0x2a, 0x0a)[k % 3]
        n, length = b"", len(data)
        while True:
            n += bytes([(length & 0x7f) | (0x80 if length > 0x7f else 0)])
            length >>= 7
            if not length:
                break
        data = bytes([tag]) + n + data
    return data


write("bad_deep_nesting.onnx", nested(100))
variant("bad_huge_dim.onnx", mlp, huge)
variant("bad_huge_input.onnx", mlp, huge_input)
variant("bad_unknown_op.onnx", mlp, unknown)
variant("bad_cycle.onnx", mlp, cycle)
variant("bad_missing_initializer.onnx", mlp, missing)
variant("bad_raw_data_size.onnx", mlp, short)
variant("bad_double.onnx", mlp, double)
variant("bad_trans_a.onnx", mlp, trans_a)
variant("bad_conv_strides.onnx", cnn, strides)
variant("bad_opset.onnx", mlp, opset)


# ---- sequence models: small enough for the fuzzer's 4096-byte inputs
NABLA = os.environ.get("NABLA", os.path.join(here, "..", "..", "..", "build", "nabla"))
WORDS = "abc\nbca\ncab\naab\nbba\nacc\n"
SEQUENCE = {  # name: (input line, layers between the embedding and the head, data)
    "attention": ("input 4 tokens=4", ["pos = pos_embedding", "a = attention 1 causal=true"], ""),
    "rnn": ("input 4 tokens=4", ["r = rnn 2"], ""),
    "lstm": ("input 4 tokens=4", ["r = lstm 2"], ""),
    "gru_last": ("input 3 tokens=4", ["r = gru 2 last=true"], ",context=3"),
}


def nabla_export(tmp, name):
    """Train the tiny model one epoch on six words and export it."""
    first, layers, data = SEQUENCE[name]
    text = "\n".join([first, "tok = embedding 3"] + layers + ["head = dense 4",
                                                               "loss cross_entropy", ""])
    model, weights = os.path.join(tmp, name + ".nn"), os.path.join(tmp, name + ".safetensors")
    with open(model, "w") as f:
        f.write(text)
    words = os.path.join(tmp, "words.txt")
    with open(words, "w") as f:
        f.write(WORDS)
    onnx_path = os.path.join(tmp, name + ".onnx")
    run = dict(check=True, capture_output=True)
    subprocess.run([NABLA, "train", model, "--data", f"lines:{words}{data}", "--epochs", "1",
                    "--out", weights], **run)
    subprocess.run([NABLA, "export", model, "--weights", weights, "--onnx", onnx_path], **run)
    return onnx.load(onnx_path)


def torch_export(tmp, kind, last=False):
    """PyTorch's export of nn.Embedding, a batch_first nn.RNN/LSTM/GRU and
    nn.Linear at every position (or the last, out[:, -1]): its zero initial
    states are made from the batch size."""
    import torch
    from torch import nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(4, 3)
            self.rnn = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[kind](3, 2, batch_first=True)
            self.fc = nn.Linear(2, 4)

        def forward(self, ids):
            out = self.rnn(self.emb(ids))[0]
            return self.fc(out[:, -1] if last else out)

    torch.manual_seed(0)
    path = os.path.join(tmp, "torch.onnx")
    torch.onnx.export(Net().eval(), torch.zeros(2, 4, dtype=torch.long), path, opset_version=14,
                      input_names=["ids"], output_names=["logits"],
                      dynamic_axes={"ids": {0: "batch"}, "logits": {0: "batch"}})
    return onnx.load(path)


def first(m, op):
    return next(n for n in m.graph.node if n.op_type == op)


def set_attr(op, name, value):
    def change(m):
        node = first(m, op)
        kept = [a for a in node.attribute if a.name != name]
        del node.attribute[:]
        node.attribute.extend(kept + [helper.make_attribute(name, value)])
    return change


def nameless_input(m):
    m.graph.input[0].ClearField("name")


def shapeless_zeros(m):
    del first(m, "ConstantOfShape").input[:]


def int32_input(m):
    m.graph.input[0].type.tensor_type.elem_type = TensorProto.INT32


def nonzero_state(m):
    node = first(m, "LSTM")
    h0 = numpy_helper.from_array(np.ones((1, 1, 2), np.float32), "h0")
    m.graph.initializer.append(h0)
    while len(node.input) < 6:
        node.input.append("")
    node.input[5] = "h0"


with tempfile.TemporaryDirectory() as tmp:
    seq = {name: nabla_export(tmp, name) for name in SEQUENCE}
    for name, m in seq.items():
        write(f"valid_{name}.onnx", m)
    for kind in ("rnn", "lstm", "gru"):
        write(f"valid_torch_{kind}.onnx", torch_export(tmp, kind))
    write("valid_torch_gru_last.onnx", torch_export(tmp, "gru", last=True))
    variant("bad_zeros_without_shape.onnx", torch_export(tmp, "lstm"),
            shapeless_zeros)  # found by fuzz_onnx
variant("bad_lstm_reverse.onnx", seq["lstm"], set_attr("LSTM", "direction", "reverse"))
variant("bad_gru_linear_before_reset.onnx", seq["gru_last"],
        set_attr("GRU", "linear_before_reset", 0))
variant("bad_rnn_activation.onnx", seq["rnn"], set_attr("RNN", "activations", ["Relu"]))
variant("bad_lstm_initial_state.onnx", seq["lstm"], nonzero_state)
variant("bad_int32_ids.onnx", seq["rnn"], int32_input)
variant("bad_nameless_ids.onnx", seq["rnn"], nameless_input)  # found by fuzz_onnx
variant("bad_attention_softmax_axis.onnx", seq["attention"], set_attr("Softmax", "axis", 1))
