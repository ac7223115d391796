#!/usr/bin/python3
"""Reference values for nabla's activation ops, computed with PyTorch in float64.

Run from the repository root with Debian's Python (torch 1.13):
    /usr/bin/python3 tests/reference/activations.py
It writes tests/reference/activations.ref (format in tests/support/refdata.h).

Each case holds the input x, a fixed upstream weight w, the forward output
y = f(x) and the input gradient dx of loss = sum(y * w).  Inputs, weights and
parameters are exactly representable in float32, so nabla's float build sees
the same numbers.  Parameters are written as scalar attributes of the case.
"""
import os

import numpy as np
import torch
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "activations.ref")


def f32(v):
    """The float32 value nearest to v, as a Python float."""
    return float(np.float32(v))


# Elementwise input, shape [3, 2, 5]: exact zero (a kink for relu, abs, elu),
# small and moderate values, the softplus thresholds (20 and 20.5 for beta 1 /
# threshold 20; 5 and 7.25 for beta 2 / threshold 10) and large values.
ELEMENTWISE_X = [
    0.0, -0.5, 0.5, -1.0, 1.0, -2.0, 2.5, -3.25, 3.0, -0.0078125,
    0.0078125, -5.0, 5.0, -10.0, 10.0, -15.0, 15.0, 20.0, 20.5, -20.0,
    -30.0, 30.0, -100.0, 100.0, 0.75, -0.25, 1.5, -7.5, 7.25, 0.125,
]
ELEMENTWISE_SHAPE = (3, 2, 5)

# Hardswish's kinks, shape [2, 8]: exactly -3 and 3, either side of them, the
# flat and linear parts and 0.  PyTorch's CPU backward takes the slope at 3
# from its vectorised loop (1) for all but a tensor's last few elements, where
# a scalar loop gives 3/2; 16 values keep every element in the vectorised
# loop, and main() checks the slopes at the kinks.
HARDSWISH_X = [
    -3.0, 3.0, -3.0078125, -2.9921875, 2.9921875, 3.0078125, -6.0, 6.0,
    -1.5, 1.5, 0.0, -0.0078125, 0.5, -0.5, 4.5, -4.5,
]
HARDSWISH_SHAPE = (2, 8)

# Softmax input, shape [4, 6]: ordinary logits, a row spanning +-100, a row of
# large negative logits (exp would underflow without the max shift), and a
# uniform row.
SOFTMAX_X = [
    0.0, 1.0, 2.0, 3.0, -1.0, 0.5,
    100.0, -100.0, 30.0, -30.0, 0.0, 1.0,
    -100.0, -100.5, -99.0, -101.0, -130.0, -100.0,
    0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
]
SOFTMAX_SHAPE = (4, 6)


def upstream(n):
    """Fixed non-zero upstream weights in [-1.375, 1.375], multiples of 1/8."""
    return [((k * 7) % 11 - 5.5) / 4 for k in range(n)]


def cases():
    s001 = f32(0.01)
    return [
        # name, function, params, (x values, shape)
        ("relu", F.relu, {}, ELEMENTWISE_X, ELEMENTWISE_SHAPE),
        ("leaky_relu", lambda x: F.leaky_relu(x, s001), {"slope": s001},
         ELEMENTWISE_X, ELEMENTWISE_SHAPE),
        ("leaky_relu_neg", lambda x: F.leaky_relu(x, -0.375), {"slope": -0.375},
         ELEMENTWISE_X, ELEMENTWISE_SHAPE),
        ("abs", torch.abs, {}, ELEMENTWISE_X, ELEMENTWISE_SHAPE),
        ("sigmoid", torch.sigmoid, {}, ELEMENTWISE_X, ELEMENTWISE_SHAPE),
        ("tanh", torch.tanh, {}, ELEMENTWISE_X, ELEMENTWISE_SHAPE),
        ("gelu", F.gelu, {}, ELEMENTWISE_X, ELEMENTWISE_SHAPE),
        ("gelu_tanh", lambda x: F.gelu(x, approximate="tanh"), {},
         ELEMENTWISE_X, ELEMENTWISE_SHAPE),
        ("silu", F.silu, {}, ELEMENTWISE_X, ELEMENTWISE_SHAPE),
        ("elu", lambda x: F.elu(x, 1.0), {"alpha": 1.0}, ELEMENTWISE_X, ELEMENTWISE_SHAPE),
        ("elu_alpha", lambda x: F.elu(x, 0.625), {"alpha": 0.625},
         ELEMENTWISE_X, ELEMENTWISE_SHAPE),
        ("softplus", lambda x: F.softplus(x, 1.0, 20.0), {"beta": 1.0, "threshold": 20.0},
         ELEMENTWISE_X, ELEMENTWISE_SHAPE),
        ("softplus_beta", lambda x: F.softplus(x, 2.0, 10.0),
         {"beta": 2.0, "threshold": 10.0}, ELEMENTWISE_X, ELEMENTWISE_SHAPE),
        ("softmax", lambda x: F.softmax(x, dim=-1), {}, SOFTMAX_X, SOFTMAX_SHAPE),
        ("log_softmax", lambda x: F.log_softmax(x, dim=-1), {}, SOFTMAX_X, SOFTMAX_SHAPE),
        ("hardswish", F.hardswish, {}, ELEMENTWISE_X, ELEMENTWISE_SHAPE),
        ("hardswish_kinks", F.hardswish, {}, HARDSWISH_X, HARDSWISH_SHAPE),
    ]


def check_hardswish_kinks(xs, w, dx):
    """The slopes at -3 and 3 are the ones nabla follows: -1/2 and 1."""
    for k, v in enumerate(xs):
        if abs(v) == 3.0:
            want = (-0.5 if v < 0 else 1.0) * w[k]
            assert dx[k] == want, f"hardswish slope at {v}: {dx[k] / w[k]}, expected {want / w[k]}"


def fmt_tensor(name, t):
    dims = " ".join(str(d) for d in t.shape)
    vals = " ".join(repr(float(v)) for v in t.reshape(-1).tolist())
    return f"{name} {t.dim()} {dims} : {vals}"


def main():
    lines = ["# Written by tests/reference/activations.py (PyTorch %s, float64)."
             % torch.__version__,
             "# Per case: x, upstream w, y = f(x), dx = d sum(y*w) / dx; parameters as "
             "scalars."]
    for name, fn, params, xs, shape in cases():
        for v in xs + list(params.values()):
            assert f32(v) == v, f"{name}: {v} is not exact in float32"
        x = torch.tensor(xs, dtype=torch.float64).reshape(shape).requires_grad_(True)
        w = torch.tensor(upstream(len(xs)), dtype=torch.float64).reshape(shape)
        y = fn(x)
        (y * w).sum().backward()
        if name.startswith("hardswish"):
            check_hardswish_kinks(xs, w.reshape(-1).tolist(), x.grad.reshape(-1).tolist())
        lines.append(f"case {name}")
        for key, value in params.items():
            lines.append(f"{key} = {value!r}")
        lines.append(fmt_tensor("x", x.detach()))
        lines.append(fmt_tensor("w", w))
        lines.append(fmt_tensor("y", y.detach()))
        lines.append(fmt_tensor("dx", x.grad))
    with open(OUT, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
