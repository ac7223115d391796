"""PyTorch training throughput on the bench's Fashion-MNIST models, measured
the way nabla-bench measures nabla: Adam (lr 1e-3), batch 128, WARMUP_BATCHES
untimed steps, then --batches timed steps of: gather the batch, forward,
cross-entropy, backward, optimiser step.

  torch_train.py --model mlp|mlp-wide|cnn|cnn-bn --threads T [--batches N]
                 [--mode eager|compile] [--label NAME]
  torch_train.py --kernels [--label NAME]

Prints RESULT label=... model=... threads=... samples_per_s=... loss=...;
--kernels prints which BLAS, MKL, oneDNN and CPU capability this torch runs.
The mode is "missing" (exit 3) where this torch has no torch.compile."""
import argparse
import ctypes
import sys
import time

import torch
import torch.nn as nn

import fmnist


def build(name):
    """The bench's models, layer for layer as in nabla-bench."""
    if name == "mlp":
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(),
                             nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10))
    if name == "mlp-wide":
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 1024), nn.ReLU(),
                             nn.Linear(1024, 1024), nn.ReLU(), nn.Linear(1024, 10))
    if name == "cnn":
        return nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Flatten(), nn.Linear(1600, 128), nn.ReLU(), nn.Linear(128, 10))
    if name == "cnn-bn":  # models/fashion_cnn.nn
        return nn.Sequential(nn.Conv2d(1, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32),
                             nn.ReLU(), nn.MaxPool2d(2),
                             nn.Conv2d(32, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64),
                             nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Dropout(0.3),
                             nn.Linear(3136, 128), nn.ReLU(), nn.Dropout(0.3),
                             nn.Linear(128, 10))
    raise SystemExit(f"torch_train.py: unknown model '{name}'")


def openblas_cores():
    """The core each OpenBLAS library loaded in this process picked."""
    cores = []
    with open("/proc/self/maps") as maps:
        libs = sorted({line.split()[-1] for line in maps if "openblas" in line.lower()})
    for lib in libs:
        try:
            f = ctypes.CDLL(lib).openblas_get_corename
            f.restype = ctypes.c_char_p
            cores.append(f"{lib}: {f().decode()}")
        except (OSError, AttributeError):
            continue
    return cores


def kernels(label):
    keys = ("Math Kernel", "oneDNN", "MKL-DNN", "OpenMP", "CPU capability")
    settings = ("BLAS_INFO", "LAPACK_INFO", "USE_MKL", "USE_MKLDNN", "USE_OPENMP")
    shown = []
    for line in torch.__config__.show().splitlines():
        if "Build settings:" in line:  # keep the BLAS and threading ones of a long list
            pairs = line.split("Build settings:", 1)[1].split(",")
            shown.append(" ".join(p.strip() for p in pairs if p.strip().split("=")[0] in settings))
        elif any(k in line for k in keys):
            shown.append(line.strip())
    parts = [f"torch {torch.__version__}"]
    parts += [f"mkl available: {torch.backends.mkl.is_available()}",
              f"mkldnn (oneDNN) available: {torch.backends.mkldnn.is_available()}"]
    if hasattr(torch.backends, "cpu"):
        parts.append(f"cpu capability: {torch.backends.cpu.get_cpu_capability()}")
    torch.zeros(64, 64) @ torch.zeros(64, 64)  # loads the BLAS
    parts += [f"OpenBLAS core {c}" for c in openblas_cores()]
    fmnist.kernels(label, "\n".join(parts + shown))


def adam(params, mode):
    """Adam in PyTorch's fastest CPU form: fused in eager mode where this torch
    fuses it on the CPU (2.4 on); plain under torch.compile, which fuses the
    update itself."""
    major, minor = (int(v) for v in torch.__version__.split(".")[:2])
    if mode == "eager" and (major, minor) >= (2, 4):
        return torch.optim.Adam(params, lr=1e-3, fused=True), "fused"
    return torch.optim.Adam(params, lr=1e-3), "default"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="mlp")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batches", type=int, default=100)
    ap.add_argument("--mode", choices=["eager", "compile"], default="eager")
    ap.add_argument("--label", default="torch")
    ap.add_argument("--kernels", action="store_true")
    a = ap.parse_args()
    if a.kernels:
        kernels(a.label)
        return 0
    if a.mode == "compile" and not hasattr(torch, "compile"):
        print(f"torch_train.py: torch {torch.__version__} has no torch.compile", file=sys.stderr)
        return 3
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    x_np, y_np = fmnist.train_set()
    x, y = torch.from_numpy(x_np), torch.from_numpy(y_np)
    model = build(a.model)
    opt, kind = adam(model.parameters(), a.mode)
    lossf = nn.CrossEntropyLoss()
    step_model, opt_step = model, opt.step
    if a.mode == "compile":
        step_model, opt_step = torch.compile(model), torch.compile(opt.step)
    t0 = 0.0
    for b, i in enumerate(fmnist.batches(len(x), fmnist.WARMUP_BATCHES + a.batches)):
        if b == fmnist.WARMUP_BATCHES:
            t0 = time.perf_counter()
        i = torch.from_numpy(i)
        opt.zero_grad(set_to_none=True)
        loss = lossf(step_model(x[i]), y[i])
        loss.backward()
        opt_step()
    dt = time.perf_counter() - t0
    fmnist.result(label=a.label, model=a.model, threads=a.threads, batches=a.batches,
                  samples_per_s=f"{a.batches * fmnist.BATCH / dt:.0f}",
                  loss=f"{loss.item():.4f}", adam=kind, peak_rss_mb=f"{fmnist.peak_rss_mb():.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
