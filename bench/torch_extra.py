"""The figures ../shared/bench/torch_fmnist.py does not print, measured the
way nabla-bench measures them:

  torch_extra.py latency --model M --threads T
      batch-1 inference latency (median of 2000 forwards, eval mode, no_grad)
  torch_extra.py rss --model M --threads T [--script PATH/torch_fmnist.py]
      peak RSS of torch_fmnist.py training M for one epoch on all of
      Fashion-MNIST (the child's ru_maxrss)

Each prints one line: RESULT model=M threads=T latency_us=... / peak_rss_mb=..."""
import argparse, os, resource, subprocess, sys, time

ap = argparse.ArgumentParser()
ap.add_argument("what", choices=["latency", "rss"])
ap.add_argument("--model", default="mlp")
ap.add_argument("--threads", type=int, default=1)
ap.add_argument("--script", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                 "..", "..", "shared", "bench",
                                                 "torch_fmnist.py"))
a = ap.parse_args()

if a.what == "rss":
    subprocess.run([sys.executable, a.script, "--model", a.model, "--threads", str(a.threads),
                    "--epochs", "1", "--limit", "60000"], check=True,
                   stdout=subprocess.DEVNULL)
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
    print(f"RESULT model={a.model} threads={a.threads} peak_rss_mb={rss:.1f}")
    sys.exit(0)

import torch, torch.nn as nn  # noqa: E402

def model(name):  # the nn.Sequential models of torch_fmnist.py
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
    raise SystemExit("unknown model " + name)

torch.set_num_threads(a.threads)
torch.manual_seed(0)
m = model(a.model).eval()
x = torch.rand(1, 1, 28, 28)
times = []
with torch.no_grad():
    for _ in range(50):
        m(x)
    for _ in range(2000):
        t0 = time.perf_counter()
        m(x)
        times.append(time.perf_counter() - t0)
times.sort()
med = 0.5 * (times[999] + times[1000])
print(f"RESULT model={a.model} threads={a.threads} latency_us={med * 1e6:.1f}")
