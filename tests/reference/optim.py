#!/usr/bin/python3
"""Reference trajectories for nabla's optimisers and learning-rate schedules.

Run from the repository root with Debian's Python (torch 1.13):
    /usr/bin/python3 tests/reference/optim.py
It writes tests/reference/optim.ref (format in tests/support/refdata.h).

Optimiser cases ("opt_*"): PyTorch's optimiser classes run in float64 on a
fixed initial parameter vector x0 and a fixed per-step gradient list grads
[STEPS, N] (gradients do not depend on the parameters, so a float32 rounding
difference cannot change the gradients the C test feeds in).  The case holds
the configuration as scalar attributes named like nb_optim_config's fields
(kind = nb_optim_kind's value), the learning rate of every step lrs [STEPS]
(varied in the *_lrs cases, as a scheduler would), and params [STEPS, N]: the
parameters after each step.  Momentum as an exponential average has no
PyTorch class (docs/definitions.md); it is computed by hand here.

Schedule cases ("sched_*"): the learning rate at counters 0..E-1 from
PyTorch's scheduler classes (the linear decay by hand), with the
schedule's fields as attributes (kind = nb_schedule_kind's value).

Clipping cases ("clip_*"): torch.nn.utils.clip_grad_norm_ on the gradient
list as two tensors: max_norm, the returned norm, the gradients before and
after.

Default cases ("defaults_*"): PyTorch's default hyperparameters, read from
the classes' signatures, for comparison with nb_optim_defaults and
nb_schedule_defaults.

All inputs and hyperparameters are exactly representable in float32.
"""
import inspect
import math
import os
import warnings

import numpy as np
import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "optim.ref")
STEPS = 10
SCHED_COUNTERS = 25

# nb_optim_kind / nb_schedule_kind values in include/nabla.h
SGD, MOMENTUM_EMA, ADAGRAD, RMSPROP, ADAM, ADAMW = range(6)
CONSTANT, STEP, EXPONENTIAL, COSINE, WARMUP, LINEAR_DECAY = range(6)


def f32(v):
    """The float32 value nearest to v, as a Python float."""
    return float(np.float32(v))


# Initial parameters: mixed signs and scales, and an exact zero (weight decay
# then contributes nothing to that element at first).
X0 = [0.5, -1.25, 2.0, -0.375, 0.0, 3.5, 0.0625, -2.75]
N = len(X0)


def gradient_list():
    """Per-step gradients [STEPS, N], float32-representable.  Element scales
    differ by 1000x (adaptive methods normalise them away); the step scale
    shrinks and grows again, so Adam's second moment decreases at times (that
    is when amsgrad's maximum matters); element 6 is always zero and element 3
    is zero on some steps; signs change between steps (momentum matters)."""
    rs = np.random.RandomState(1234)
    elem_scale = np.array([1.0, 0.01, 10.0, 1.0, 0.1, 1.0, 0.0, 3.0])
    step_scale = np.array([2.0, 1.5, 1.0, 0.5, 0.25, 1.0, 0.1, 0.3, 0.05, 0.5])
    g = rs.standard_normal((STEPS, N)) * elem_scale[None, :] * step_scale[:, None]
    g[[1, 4, 5], 3] = 0.0
    return [[f32(v) for v in row] for row in g]


GRADS = gradient_list()


def varying_lrs(base):
    """A schedule-like sequence: warm up for 3 steps, then decay."""
    return [f32(base * min(1.0, (t + 1) / 3) * 0.8 ** t) for t in range(STEPS)]


def torch_optimizer(kind, cfg, params):
    """PyTorch's optimiser for an nb_optim_config-style dict."""
    o = torch.optim
    if kind == SGD:
        return o.SGD(params, lr=cfg["lr"], momentum=cfg["momentum"],
                     dampening=cfg["dampening"], weight_decay=cfg["weight_decay"],
                     nesterov=bool(cfg["nesterov"]))
    if kind == ADAGRAD:
        return o.Adagrad(params, lr=cfg["lr"], lr_decay=cfg["lr_decay"],
                         weight_decay=cfg["weight_decay"],
                         initial_accumulator_value=cfg["initial_accumulator"],
                         eps=cfg["eps"])
    if kind == RMSPROP:
        return o.RMSprop(params, lr=cfg["lr"], alpha=cfg["alpha"], eps=cfg["eps"],
                         weight_decay=cfg["weight_decay"], momentum=cfg["momentum"],
                         centered=bool(cfg["centered"]))
    if kind in (ADAM, ADAMW):
        cls = o.Adam if kind == ADAM else o.AdamW
        return cls(params, lr=cfg["lr"], betas=(cfg["beta1"], cfg["beta2"]), eps=cfg["eps"],
                   weight_decay=cfg["weight_decay"], amsgrad=bool(cfg["amsgrad"]))
    raise ValueError(kind)


def run_torch(kind, cfg, lrs):
    p = torch.tensor(X0, dtype=torch.float64, requires_grad=True)
    opt = torch_optimizer(kind, cfg, [p])
    out = []
    for t in range(STEPS):
        opt.param_groups[0]["lr"] = lrs[t]
        p.grad = torch.tensor(GRADS[t], dtype=torch.float64)
        opt.step()
        out.append(p.detach().tolist())
    return out


def run_ema(cfg, lrs):
    """Momentum as an exponential average: v = beta v + (1 - beta)(g + wd p), p -= lr v, v0 = 0."""
    beta, wd = cfg["beta"], cfg["weight_decay"]
    p = list(X0)
    v = [0.0] * N
    out = []
    for t in range(STEPS):
        for k in range(N):
            d = GRADS[t][k] + wd * p[k]
            v[k] = beta * v[k] + (1 - beta) * d
            p[k] -= lrs[t] * v[k]
        out.append(list(p))
    return out


# Every field of nb_optim_config, with a neutral value; cases override some.
BASE_CFG = dict(lr=0.0, weight_decay=0.0, momentum=0.0, dampening=0.0, nesterov=0,
                beta=0.0, beta1=0.0, beta2=0.0, eps=0.0, amsgrad=0, alpha=0.0,
                centered=0, lr_decay=0.0, initial_accumulator=0.0)


def optim_cases():
    adam = dict(lr=0.05, beta1=0.9, beta2=0.999, eps=1e-8)
    rms = dict(lr=0.01, alpha=0.99, eps=1e-8)
    ada = dict(lr=0.1, eps=1e-10)
    return [
        # name, kind, config overrides, varying lr?
        ("sgd", SGD, dict(lr=0.1), False),
        ("sgd_wd", SGD, dict(lr=0.1, weight_decay=0.1), False),
        ("sgd_momentum", SGD, dict(lr=0.1, momentum=0.9), False),
        ("sgd_momentum_wd", SGD, dict(lr=0.1, momentum=0.9, weight_decay=0.05), False),
        ("sgd_dampening", SGD, dict(lr=0.1, momentum=0.9, dampening=0.5), False),
        ("sgd_dampening_wd", SGD, dict(lr=0.1, momentum=0.5, dampening=0.25,
                                       weight_decay=0.1), False),
        ("sgd_nesterov", SGD, dict(lr=0.1, momentum=0.9, nesterov=1), False),
        ("sgd_nesterov_wd", SGD, dict(lr=0.1, momentum=0.8, nesterov=1, weight_decay=0.1),
         False),
        ("sgd_momentum_lrs", SGD, dict(lr=0.1, momentum=0.9), True),
        ("ema", MOMENTUM_EMA, dict(lr=0.1, beta=0.9), False),
        ("ema_beta05", MOMENTUM_EMA, dict(lr=0.1, beta=0.5), False),
        ("ema_wd", MOMENTUM_EMA, dict(lr=0.1, beta=0.9, weight_decay=0.1), False),
        ("ema_lrs", MOMENTUM_EMA, dict(lr=0.1, beta=0.9), True),
        ("adagrad", ADAGRAD, dict(ada), False),
        ("adagrad_lr_decay", ADAGRAD, dict(ada, lr_decay=0.1), False),
        ("adagrad_init_acc", ADAGRAD, dict(ada, initial_accumulator=0.5), False),
        ("adagrad_all", ADAGRAD, dict(ada, lr_decay=0.05, initial_accumulator=0.1,
                                      weight_decay=0.1, eps=1e-3), False),
        ("adagrad_lrs", ADAGRAD, dict(ada, lr_decay=0.1), True),
        ("rmsprop", RMSPROP, dict(rms), False),
        ("rmsprop_eps", RMSPROP, dict(rms, eps=1e-3, alpha=0.9), False),
        ("rmsprop_wd", RMSPROP, dict(rms, weight_decay=0.1), False),
        ("rmsprop_centered", RMSPROP, dict(rms, centered=1), False),
        ("rmsprop_momentum", RMSPROP, dict(rms, momentum=0.9), False),
        ("rmsprop_centered_momentum", RMSPROP, dict(rms, centered=1, momentum=0.5,
                                                    alpha=0.9), False),
        ("rmsprop_lrs", RMSPROP, dict(rms, centered=1, momentum=0.9), True),
        ("adam", ADAM, dict(adam), False),
        ("adam_amsgrad", ADAM, dict(adam, amsgrad=1), False),
        # beta2 0.9: the raw second moment falls when the gradients shrink, so
        # amsgrad's maximum changes the trajectory clearly
        ("adam_amsgrad_b2", ADAM, dict(adam, amsgrad=1, beta2=0.9), False),
        ("adam_b2", ADAM, dict(adam, beta2=0.9), False),
        ("adam_wd", ADAM, dict(adam, weight_decay=0.1), False),
        ("adam_amsgrad_wd", ADAM, dict(adam, amsgrad=1, weight_decay=0.1), False),
        ("adam_betas", ADAM, dict(adam, beta1=0.5, beta2=0.75, eps=1e-3), False),
        ("adam_beta1_zero", ADAM, dict(adam, beta1=0.0), False),
        ("adam_lrs", ADAM, dict(adam), True),
        ("adamw", ADAMW, dict(adam, weight_decay=0.01), False),
        ("adamw_wd", ADAMW, dict(adam, weight_decay=0.5), False),
        ("adamw_amsgrad", ADAMW, dict(adam, weight_decay=0.1, amsgrad=1), False),
        ("adamw_amsgrad_b2", ADAMW, dict(adam, weight_decay=0.1, amsgrad=1, beta2=0.9), False),
        ("adamw_lrs", ADAMW, dict(adam, weight_decay=0.5), True),
    ]


def optim_reference():
    out = []
    for name, kind, over, vary in optim_cases():
        cfg = dict(BASE_CFG)
        cfg.update({k: f32(v) if isinstance(v, float) else v for k, v in over.items()})
        lrs = varying_lrs(cfg["lr"]) if vary else [cfg["lr"]] * STEPS
        traj = run_ema(cfg, lrs) if kind == MOMENTUM_EMA else run_torch(kind, cfg, lrs)
        out.append((name, kind, cfg, lrs, traj))
    return out


def scheduler_lrs(make, base, counters):
    """lr at counters 0..counters-1 of a PyTorch scheduler on base lr."""
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=base)
    sched = make(opt)
    lrs = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scheduler.step() without optimizer.step()
        for _ in range(counters):
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
    return lrs


def linear_decay(base, tau, lr_tau, counters):
    """The linear decay: (1 - k/tau) eta0 + (k/tau) eta_tau for k <= tau, then eta_tau."""
    return [(1 - k / tau) * base + (k / tau) * lr_tau if k <= tau else lr_tau
            for k in range(counters)]


def schedule_reference():
    S = torch.optim.lr_scheduler
    base = 0.1
    third = 1.0 / 3.0
    cases = [
        # name, kind, fields, lrs
        ("constant", CONSTANT, {}, [base] * SCHED_COUNTERS),
        ("step", STEP, dict(step_size=3, gamma=0.5),
         scheduler_lrs(lambda o: S.StepLR(o, step_size=3, gamma=0.5), base, SCHED_COUNTERS)),
        ("step_default_gamma", STEP, dict(step_size=4, gamma=0.1),
         scheduler_lrs(lambda o: S.StepLR(o, step_size=4), base, SCHED_COUNTERS)),
        ("exponential", EXPONENTIAL, dict(gamma=0.8),
         scheduler_lrs(lambda o: S.ExponentialLR(o, gamma=0.8), base, SCHED_COUNTERS)),
        # 25 counters with T_max 10: the cosine climbs back after T_max.
        ("cosine", COSINE, dict(t_max=10, eta_min=0.001),
         scheduler_lrs(lambda o: S.CosineAnnealingLR(o, T_max=10, eta_min=0.001), base,
                       SCHED_COUNTERS)),
        ("cosine_zero_min", COSINE, dict(t_max=7, eta_min=0.0),
         scheduler_lrs(lambda o: S.CosineAnnealingLR(o, T_max=7), base, SCHED_COUNTERS)),
        ("warmup_default", WARMUP, dict(start_factor=third, end_factor=1.0, total_iters=5),
         scheduler_lrs(lambda o: S.LinearLR(o), base, SCHED_COUNTERS)),
        ("warmup", WARMUP, dict(start_factor=0.125, end_factor=1.0, total_iters=4),
         scheduler_lrs(lambda o: S.LinearLR(o, start_factor=0.125, total_iters=4), base,
                       SCHED_COUNTERS)),
        ("warmup_down", WARMUP, dict(start_factor=1.0, end_factor=0.25, total_iters=6),
         scheduler_lrs(lambda o: S.LinearLR(o, start_factor=1.0, end_factor=0.25,
                                            total_iters=6), base, SCHED_COUNTERS)),
        ("linear_decay", LINEAR_DECAY, dict(tau=8, lr_tau=0.001),
         linear_decay(base, 8, 0.001, SCHED_COUNTERS)),
        ("linear_decay_up", LINEAR_DECAY, dict(tau=5, lr_tau=0.25),
         linear_decay(base, 5, 0.25, SCHED_COUNTERS)),
    ]
    return base, cases


def defaults_reference():
    """PyTorch's defaults from the signatures (SGD's lr is required: absent)."""
    def sig(cls):
        return {k: v.default for k, v in inspect.signature(cls.__init__).parameters.items()
                if v.default is not inspect.Parameter.empty}
    out = []
    o = torch.optim
    s = sig(o.SGD)
    out.append(("sgd", SGD, dict(momentum=s["momentum"], dampening=s["dampening"],
                                 weight_decay=s["weight_decay"], nesterov=int(s["nesterov"]))))
    s = sig(o.Adagrad)
    out.append(("adagrad", ADAGRAD, dict(lr=s["lr"], lr_decay=s["lr_decay"],
                                         weight_decay=s["weight_decay"],
                                         initial_accumulator=s["initial_accumulator_value"],
                                         eps=s["eps"])))
    s = sig(o.RMSprop)
    out.append(("rmsprop", RMSPROP, dict(lr=s["lr"], alpha=s["alpha"], eps=s["eps"],
                                         weight_decay=s["weight_decay"],
                                         momentum=s["momentum"], centered=int(s["centered"]))))
    for name, kind, cls in (("adam", ADAM, o.Adam), ("adamw", ADAMW, o.AdamW)):
        s = sig(cls)
        out.append((name, kind, dict(lr=s["lr"], beta1=s["betas"][0], beta2=s["betas"][1],
                                     eps=s["eps"], weight_decay=s["weight_decay"],
                                     amsgrad=int(s["amsgrad"]))))
    S = torch.optim.lr_scheduler
    sched = [
        ("sched_step", STEP, dict(gamma=sig(S.StepLR)["gamma"])),
        ("sched_cosine", COSINE, dict(eta_min=sig(S.CosineAnnealingLR)["eta_min"])),
        ("sched_warmup", WARMUP, {k: sig(S.LinearLR)[k]
                                  for k in ("start_factor", "end_factor", "total_iters")}),
    ]
    return out, sched


def clip_reference():
    """torch.nn.utils.clip_grad_norm_ over the gradient list split into two
    tensors (the norm is global over all of them): norm before clipping and
    the gradients after, for several max_norm values (100: no clipping)."""
    flat = sum(GRADS, [])
    out = []
    for name, max_norm in (("clip_1", 1.0), ("clip_10", 10.0), ("clip_100", 100.0),
                           ("clip_0", 0.0), ("clip_half_norm", None)):
        a = torch.tensor(flat[:30], dtype=torch.float64, requires_grad=True)
        b = torch.tensor(flat[30:], dtype=torch.float64, requires_grad=True)
        a.grad = a.detach().clone()
        b.grad = b.detach().clone()
        if max_norm is None:  # clip to half the current norm
            max_norm = f32(0.5 * float(torch.cat([a.grad, b.grad]).norm()))
        norm = torch.nn.utils.clip_grad_norm_([a, b], max_norm)
        out.append((name, max_norm, float(norm), torch.cat([a.grad, b.grad]).tolist()))
    return flat, out


def fmt(v):
    return repr(float(v))


def tensor_line(name, dims, values):
    return "%s %d %s : %s\n" % (name, len(dims), " ".join(str(d) for d in dims),
                                " ".join(fmt(v) for v in values))


def main():
    lines = ["# Written by tests/reference/optim.py (PyTorch %s, float64).\n" % torch.__version__,
             "# opt_*: x0, grads [steps, n], lrs [steps], params after each step; config as "
             "scalars.\n",
             "# sched_*: lr [counters] at counters 0.. from base_lr; fields as scalars.\n",
             "# clip_*: grads, max_norm, returned norm and clipped grads of clip_grad_norm_.\n",
             "# defaults_*: PyTorch's default hyperparameters.\n"]
    for name, kind, cfg, lrs, traj in optim_reference():
        lines.append("case opt_%s\n" % name)
        lines.append("kind = %d\n" % kind)
        for k, v in cfg.items():
            lines.append("%s = %s\n" % (k, fmt(v)))
        lines.append(tensor_line("x0", [N], X0))
        lines.append(tensor_line("grads", [STEPS, N], sum(GRADS, [])))
        lines.append(tensor_line("lrs", [STEPS], lrs))
        lines.append(tensor_line("params", [STEPS, N], sum(traj, [])))
    base, scheds = schedule_reference()
    for name, kind, fields, lrs in scheds:
        assert all(math.isfinite(v) for v in lrs)
        lines.append("case sched_%s\n" % name)
        lines.append("kind = %d\n" % kind)
        lines.append("base_lr = %s\n" % fmt(base))
        for k, v in fields.items():
            lines.append("%s = %s\n" % (k, fmt(v)))
        lines.append(tensor_line("lr", [len(lrs)], lrs))
    opt_defaults, sched_defaults = defaults_reference()
    for name, kind, fields in opt_defaults + sched_defaults:
        lines.append("case defaults_%s\n" % name)
        lines.append("kind = %d\n" % kind)
        for k, v in fields.items():
            lines.append("%s = %s\n" % (k, fmt(v)))
    flat, clips = clip_reference()
    for name, max_norm, norm, clipped in clips:
        lines.append("case %s\n" % name)
        lines.append("max_norm = %s\n" % fmt(max_norm))
        lines.append("norm = %s\n" % fmt(norm))
        lines.append(tensor_line("grads", [len(flat)], flat))
        lines.append(tensor_line("clipped", [len(flat)], clipped))
    with open(OUT, "w") as f:
        f.writelines(lines)


if __name__ == "__main__":
    main()
