"""ONNX Runtime batch-1 inference latency of an ONNX file, measured as
nabla-bench measures nabla's: 50 untimed calls, then the median of --runs
timed calls on one sample.

  ort_latency.py --onnx FILE --model NAME --threads T [--runs N]
  ort_latency.py --kernels

The session runs on the CPU provider with intra_op_num_threads T, one
inter-op thread and every graph optimisation.  Two ways of calling it from
Python are timed, session.run with a dict and run_with_iobinding with the
input and output bound once; the faster median is reported, with its name."""
import argparse
import sys
import time

import numpy as np
import onnxruntime as ort

import fmnist


def session(path, threads):
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def median_us(call, runs):
    for _ in range(50):
        call()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return 1e6 * float(np.median(times))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--onnx")
    ap.add_argument("--model", default="?")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--runs", type=int, default=2000)
    ap.add_argument("--kernels", action="store_true")
    a = ap.parse_args()
    if a.kernels:
        fmnist.kernels("onnxruntime", f"onnxruntime {ort.__version__}, device "
                       f"{ort.get_device()}, providers: {', '.join(ort.get_available_providers())}"
                       "\nthe sessions run on: CPUExecutionProvider (MLAS kernels)")
        return 0
    if not a.onnx:
        raise SystemExit("ort_latency.py: --onnx FILE is required")
    sess = session(a.onnx, a.threads)
    inp = sess.get_inputs()[0]
    shape = [1 if not isinstance(d, int) else d for d in inp.shape]
    x = np.random.default_rng(0).random(shape, dtype=np.float32)
    feed = {inp.name: x}
    out_names = [o.name for o in sess.get_outputs()]
    binding = sess.io_binding()
    binding.bind_cpu_input(inp.name, x)
    for name in out_names:
        binding.bind_output(name, "cpu")
    sess.run_with_iobinding(binding)
    plain = median_us(lambda: sess.run(out_names, feed), a.runs)
    bound = median_us(lambda: sess.run_with_iobinding(binding), a.runs)
    best, how = (plain, "run") if plain <= bound else (bound, "iobinding")
    fmnist.result(label="ort", model=a.model, threads=a.threads, runs=a.runs,
                  latency_us=f"{best:.1f}", call=how, run_us=f"{plain:.1f}",
                  iobinding_us=f"{bound:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
