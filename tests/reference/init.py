#!/usr/bin/python3
"""Reference values for nabla's initialisers, from torch.nn.init.

Run from the repository root with Debian's Python (torch 1.13):
    /usr/bin/python3 tests/reference/init.py
It writes tests/reference/init.ref (format in tests/support/refdata.h).

Random streams differ between libraries, so the references are the
distributions' parameters, not samples:
  gain_*  torch.nn.init.calculate_gain(nonlinearity, param)
  fans_*  torch.nn.init._calculate_fan_in_and_fan_out for a shape
  dist_*  one initialiser on one shape: the nb_init fields (kind = nb_init_kind's
          value, a, b, gain, mode), the shape dims, and the distribution it must
          draw from: family (0 normal, 1 uniform, 2 constant), mean, std, and for
          uniforms lo and hi.
The mean/std/bounds come from the formulas in docs/definitions.md; before
writing them, this script draws the same initialiser with torch.nn.init on the
same shape and asserts that PyTorch's samples fit them (std within 1%, samples
inside the bounds and reaching them), so the formulas are PyTorch's.
"""
import math
import os

import numpy as np
import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "init.ref")

# nb_init_kind, nb_fan_mode and nb_nonlinearity values in include/nabla.h
(DEFAULT, ZEROS, CONSTANT, UNIFORM, NORMAL, XAVIER_UNIFORM, XAVIER_NORMAL, LECUN_UNIFORM,
 LECUN_NORMAL, KAIMING_UNIFORM, KAIMING_NORMAL, TORCH_LINEAR) = range(12)
FAN_IN, FAN_OUT = 0, 1
NL = {"linear": 0, "sigmoid": 1, "tanh": 2, "relu": 3, "leaky_relu": 4, "selu": 5}
NORMAL_FAMILY, UNIFORM_FAMILY, CONSTANT_FAMILY = 0, 1, 2

SQUARE = (512, 512)
CONV = (256, 128, 3, 3)  # fan_in 1152, fan_out 2304: distinguishes the fan modes


def f32(v):
    return float(np.float32(v))


def gains():
    """(case name, nonlinearity, param for nb_init_gain (-1: default), torch param)."""
    return [
        ("linear", "linear", -1, None), ("sigmoid", "sigmoid", -1, None),
        ("tanh", "tanh", -1, None), ("relu", "relu", -1, None),
        ("leaky_relu_default", "leaky_relu", -1, None),
        ("leaky_relu_0.2", "leaky_relu", 0.2, 0.2), ("leaky_relu_0", "leaky_relu", 0.0, 0.0),
        ("leaky_relu_sqrt5", "leaky_relu", math.sqrt(5), math.sqrt(5)),
        ("selu", "selu", -1, None),
    ]


def fans(shape):
    t = torch.empty(shape)
    return torch.nn.init._calculate_fan_in_and_fan_out(t)


def dist_cases():
    """(name, shape, nb_init fields, family, mean, std, bounds, torch initialiser)."""
    I = torch.nn.init
    cases = []

    def add(name, shape, kind, fam, mean, std, bounds, torch_init, a=0.0, b=0.0, gain=0.0,
            mode=FAN_IN):
        cases.append((name, shape, dict(kind=kind, a=a, b=b, gain=gain, mode=mode), fam, mean,
                      std, bounds, torch_init))

    def uniform(name, shape, kind, bound, torch_init, **kw):
        add(name, shape, kind, UNIFORM_FAMILY, 0.0, bound / math.sqrt(3), (-bound, bound),
            torch_init, **kw)

    def normal(name, shape, kind, std, torch_init, **kw):
        add(name, shape, kind, NORMAL_FAMILY, 0.0, std, None, torch_init, **kw)

    s = SQUARE
    add("zeros", s, ZEROS, CONSTANT_FAMILY, 0.0, 0.0, None, I.zeros_)
    c = f32(-0.75)
    add("constant", s, CONSTANT, CONSTANT_FAMILY, c, 0.0, None,
        lambda t, c=c: I.constant_(t, c), a=c)
    lo, hi = f32(-0.5), f32(1.5)
    add("uniform", s, UNIFORM, UNIFORM_FAMILY, (lo + hi) / 2, (hi - lo) / math.sqrt(12),
        (lo, hi), lambda t, lo=lo, hi=hi: I.uniform_(t, lo, hi), a=lo, b=hi)
    m, sd = f32(3.0), f32(0.25)
    add("normal", s, NORMAL, NORMAL_FAMILY, m, sd, None,
        lambda t, m=m, sd=sd: I.normal_(t, m, sd), a=m, b=sd)

    tanh = I.calculate_gain("tanh")
    relu = I.calculate_gain("relu")
    leaky = I.calculate_gain("leaky_relu", 0.2)
    for shape, tag in ((SQUARE, "square"), (CONV, "conv")):
        fi, fo = fans(shape)
        # Xavier: default gain 1, and tanh's gain
        b = math.sqrt(6 / (fi + fo))
        uniform("xavier_uniform_" + tag, shape, XAVIER_UNIFORM, b, I.xavier_uniform_)
        uniform("xavier_uniform_tanh_" + tag, shape, XAVIER_UNIFORM, tanh * b,
                lambda t: I.xavier_uniform_(t, gain=tanh), gain=tanh)
        sd = math.sqrt(2 / (fi + fo))
        normal("xavier_normal_" + tag, shape, XAVIER_NORMAL, sd, I.xavier_normal_)
        normal("xavier_normal_tanh_" + tag, shape, XAVIER_NORMAL, tanh * sd,
               lambda t: I.xavier_normal_(t, gain=tanh), gain=tanh)
        # LeCun = Kaiming with the linear gain, fan_in
        uniform("lecun_uniform_" + tag, shape, LECUN_UNIFORM, math.sqrt(3 / fi),
                lambda t: I.kaiming_uniform_(t, nonlinearity="linear"))
        normal("lecun_normal_" + tag, shape, LECUN_NORMAL, 1 / math.sqrt(fi),
               lambda t: I.kaiming_normal_(t, nonlinearity="linear"))
        # Kaiming: default (relu gain, fan_in), fan_out, other gains
        for mode, mname, fan in ((FAN_IN, "fan_in", fi), (FAN_OUT, "fan_out", fo)):
            uniform("kaiming_uniform_%s_%s" % (mname, tag), shape, KAIMING_UNIFORM,
                    math.sqrt(3) * relu / math.sqrt(fan),
                    lambda t, mn=mname: I.kaiming_uniform_(t, mode=mn), mode=mode)
            normal("kaiming_normal_%s_%s" % (mname, tag), shape, KAIMING_NORMAL,
                   relu / math.sqrt(fan), lambda t, mn=mname: I.kaiming_normal_(t, mode=mn),
                   mode=mode)
            uniform("kaiming_uniform_leaky_%s_%s" % (mname, tag), shape, KAIMING_UNIFORM,
                    math.sqrt(3) * leaky / math.sqrt(fan),
                    lambda t, mn=mname: I.kaiming_uniform_(t, a=0.2, mode=mn), mode=mode,
                    gain=leaky)
            normal("kaiming_normal_tanh_%s_%s" % (mname, tag), shape, KAIMING_NORMAL,
                   tanh / math.sqrt(fan),
                   lambda t, mn=mname: I.kaiming_normal_(t, mode=mn, nonlinearity="tanh"),
                   mode=mode, gain=tanh)
        # PyTorch's Linear / Conv2d default
        if tag == "square":
            layer = torch.nn.Linear(shape[1], shape[0])
        else:
            layer = torch.nn.Conv2d(shape[1], shape[0], shape[2])
        uniform("torch_linear_" + tag, shape, TORCH_LINEAR, 1 / math.sqrt(fi),
                lambda t, w=layer.weight: t.copy_(w.detach()))
    return cases


def check_torch(name, shape, fam, mean, std, bounds, torch_init):
    """PyTorch's own samples must fit the distribution we write."""
    t = torch.empty(shape, dtype=torch.float64)
    with torch.no_grad():
        torch_init(t)
    v = t.flatten().numpy()
    if fam == CONSTANT_FAMILY:
        assert np.all(v == mean), name
        return
    assert abs(v.mean() - mean) < 0.01 * std + 1e-12, (name, v.mean(), mean)
    assert abs(v.std() / std - 1) < 0.01, (name, v.std(), std)
    if bounds:
        lo, hi = bounds
        tol = 1e-6 * (hi - lo)  # float32 layer weights round at the edge
        assert v.min() >= lo - tol and v.max() <= hi + tol, name
        assert v.min() < lo + 0.001 * (hi - lo) and v.max() > hi - 0.001 * (hi - lo), name


def fmt(v):
    return repr(float(v))


def main():
    torch.manual_seed(0)
    lines = ["# Written by tests/reference/init.py (PyTorch %s, float64).\n" % torch.__version__,
             "# gain_*: calculate_gain; fans_*: fan_in/fan_out of a shape; dist_*: an\n",
             "# initialiser's nb_init fields, shape and distribution (family 0 normal,\n",
             "# 1 uniform, 2 constant; mean, std, lo, hi).\n"]
    for name, nl, param, tparam in gains():
        g = torch.nn.init.calculate_gain(nl, tparam)
        lines += ["case gain_%s\n" % name, "nl = %d\n" % NL[nl], "param = %s\n" % fmt(param),
                  "gain = %s\n" % fmt(g)]
    for shape in (SQUARE, CONV, (16, 8, 3), (7, 4, 2, 3, 2), (10, 3)):
        fi, fo = fans(shape)
        lines += ["case fans_%s\n" % "x".join(str(d) for d in shape),
                  "dims 1 %d : %s\n" % (len(shape), " ".join(str(d) for d in shape)),
                  "fan_in = %d\n" % fi, "fan_out = %d\n" % fo]
    for name, shape, fields, fam, mean, std, bounds, torch_init in dist_cases():
        check_torch(name, shape, fam, mean, std, bounds, torch_init)
        lines.append("case dist_%s\n" % name)
        lines.append("dims 1 %d : %s\n" % (len(shape), " ".join(str(d) for d in shape)))
        for k, v in fields.items():
            lines.append("%s = %s\n" % (k, fmt(v)))
        lines += ["family = %d\n" % fam, "mean = %s\n" % fmt(mean), "std = %s\n" % fmt(std)]
        if bounds:
            lines += ["lo = %s\n" % fmt(bounds[0]), "hi = %s\n" % fmt(bounds[1])]
    with open(OUT, "w") as f:
        f.writelines(lines)


if __name__ == "__main__":
    main()
