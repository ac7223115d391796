#!/usr/bin/python3
"""Write the ONNX test corpus (tests/corpus/onnx/): small valid models of
every op nabla imports, made with onnx.helper, and hostile files made from
them (truncated, nested too deep, huge dimensions, an unknown op, a cycle,
a missing initializer, a wrong raw_data size, a double tensor, an
unsupported attribute value).  Run with Debian's /usr/bin/python3 (python3-onnx,
numpy); the outputs are committed, and the fuzz_replay_onnx test feeds them
to fuzz/fuzz_onnx.c."""
import os

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
