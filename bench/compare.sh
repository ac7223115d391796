#!/bin/sh
# nabla against the strongest CPU peers on the same Fashion-MNIST models
# (mlp, mlp-wide, cnn) and sequence models (gru, transformer: next-token
# training on windows of Debian's word list), batch, optimiser and machine,
# in one run:
#   sh bench/compare.sh [--quick] [BUILD_DIR]        (make bench / make bench-quick)
#
# Training samples/s (Adam, batch 128) and, for the sequence models, tokens/s
# (Adam, batch 32, context 16) of nabla, PyTorch 2.x from PyPI (eager and
# torch.compile), JAX (a jit-compiled train step) and Debian's PyTorch;
# batch-1 latency of nabla against ONNX Runtime running nabla's own ONNX export;
# nabla on OpenBLAS (NB_GEMM=openblas, with OpenBLAS's own choice of kernels)
# against PyTorch 2.x; and which kernels each side runs.  docs/performance.md
# explains the table.
#
# Environment: BENCH_BATCHES (nabla's timed batches, default 200),
# PEER_BATCHES (each peer's timed batches, default 100), LATENCY_RUNS (timed
# batch-1 calls, default 2000), BENCH_THREADS (default "1 2"), BENCH_VENV (the
# peers' virtual environment, default ~/.cache/nabla-bench-venv),
# BENCH_INSTALL=0 (install nothing: a peer that is not there is missing),
# BENCH_MODELS (default "mlp mlp-wide cnn gru transformer": the models to run).
# --quick: 10 nabla batches, 5 per peer, 200 latency calls, 1 thread.
set -e
cd "$(dirname "$0")/.."
QUICK=0
if [ "$1" = "--quick" ]; then QUICK=1; shift; fi
BUILD=${1:-build}
BENCH="$BUILD/bench/nabla-bench"
NABLA="$BUILD/nabla"
PEERS=bench/peers
DEBIAN_PY=/usr/bin/python3
VENV=${BENCH_VENV:-$HOME/.cache/nabla-bench-venv}
if [ "$QUICK" = 1 ]; then
    BATCHES=${BENCH_BATCHES:-10} PEER_BATCHES=${PEER_BATCHES:-5}
    RUNS=${LATENCY_RUNS:-200} THREADS=${BENCH_THREADS:-1}
else
    BATCHES=${BENCH_BATCHES:-200} PEER_BATCHES=${PEER_BATCHES:-100}
    RUNS=${LATENCY_RUNS:-2000} THREADS=${BENCH_THREADS:-"1 2"}
fi
MODELS="" SEQ_MODELS="" # image and sequence models of BENCH_MODELS
for m in ${BENCH_MODELS:-mlp mlp-wide cnn gru transformer}; do
    case $m in
    mlp | mlp-wide | cnn) MODELS="$MODELS $m" ;;
    gru | transformer) SEQ_MODELS="$SEQ_MODELS $m" ;;
    *) echo "compare.sh: BENCH_MODELS: unknown model '$m'" >&2; exit 2 ;;
    esac
done
MODELS=${MODELS# } SEQ_MODELS=${SEQ_MODELS# }
BENCH_LIST=$(echo $MODELS $SEQ_MODELS | tr ' ' ,) # nabla-bench --model
PEER_TIMEOUT=900 # seconds for one peer run (a first torch.compile is slow)

for f in "$BENCH" "$NABLA"; do
    if [ ! -x "$f" ]; then
        echo "compare.sh: $f not found (run make first)" >&2
        exit 1
    fi
done

if [ "${BENCH_INSTALL:-1}" = 1 ]; then
    sh scripts/install-deps.sh python3-torch python3-numpy python3-venv python3-dev \
        dataset-fashion-mnist wamerican || echo "compare.sh: could not install every Debian package" >&2
fi

work=$(mktemp -d "$BUILD/bench-run.XXXXXX") # in the build tree: a long run outlives /tmp clean-ups
work=$(cd "$work" && pwd)
trap 'rm -rf "$work"' EXIT INT TERM
out="$work/results"
: >"$out"

# The peers' virtual environment: PyTorch 2.x, JAX and ONNX Runtime from PyPI.
# PyPI's Linux torch wheel is the CUDA build (several GB with its NVIDIA
# libraries); it runs on the CPU all the same.
venv_python() {
    if [ ! -x "$VENV/bin/python" ]; then
        [ "${BENCH_INSTALL:-1}" = 1 ] || return 1
        "$DEBIAN_PY" -m venv "$VENV" >&2 || return 1
    fi
    for p in numpy torch jax onnxruntime; do
        "$VENV/bin/python" -c "import $p" 2>/dev/null && continue
        [ "${BENCH_INSTALL:-1}" = 1 ] || continue
        echo "compare.sh: installing $p from PyPI into $VENV (torch: several GB, once)" >&2
        "$VENV/bin/pip" install -q "$p" >&2 ||
            echo "compare.sh: could not install $p: its columns are missing" >&2
    done
    echo "$VENV/bin/python"
}
VPY=$(venv_python) || VPY=""

# have PYTHON MODULE...: every module imports in that interpreter
have() {
    py=$1
    shift
    [ -n "$py" ] && for m in "$@"; do "$py" -c "import $m" 2>/dev/null || return 1; done
}

# peer LABEL PYTHON SCRIPT ARGS...: one peer run, its RESULT line tagged LABEL
peer() {
    label=$1 py=$2 script=$3
    shift 3
    if line=$(timeout "$PEER_TIMEOUT" "$py" "$PEERS/$script" "$@" 2>"$work/err" | grep '^RESULT'); then
        echo "$label $line" | tee -a "$out"
    else
        echo "compare.sh: $label $script $*: failed ($(tail -n 1 "$work/err"))" >&2
    fi
}

echo "machine: $(nproc) cores, $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -n 1)," \
     "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "nabla: $BATCHES timed batches; peers: $PEER_BATCHES; latency: median of $RUNS calls;" \
     "threads: $THREADS"

echo "== nabla (the kernel it picks)"
for t in $THREADS; do
    "$BENCH" --model "$BENCH_LIST" --threads "$t" --batches "$BATCHES" --latency-runs "$RUNS" \
        --save-weights "$work" >"$work/nabla" || echo "compare.sh: nabla-bench --threads $t failed" >&2
    grep '^KERNELS' "$work/nabla" | tee -a "$work/kernels"
    grep '^RESULT' "$work/nabla" | sed 's/^/nabla /' | tee -a "$out"
done

echo "== nabla on OpenBLAS: NB_GEMM=openblas, OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset"
for t in $THREADS; do
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE NB_GEMM=openblas \
        "$BENCH" --model "$BENCH_LIST" --threads "$t" --batches "$BATCHES" --latency-runs "$RUNS" \
        >"$work/nabla" ||
        echo "compare.sh: NB_GEMM=openblas nabla-bench --threads $t failed" >&2
    grep '^KERNELS' "$work/nabla" | sed 's/^KERNELS nabla/KERNELS nabla, NB_GEMM=openblas/' |
        tee -a "$work/kernels"
    grep '^RESULT' "$work/nabla" | sed 's/^/nabla-openblas /' | tee -a "$out"
done

# kernels NAME PYTHON SCRIPT ARGS...: a peer's KERNELS lines, printed and kept
kernels() {
    name=$1 py=$2 script=$3
    shift 3
    "$py" "$PEERS/$script" --kernels "$@" >"$work/k" 2>"$work/err" ||
        echo "compare.sh: $name: $script --kernels failed ($(tail -n 1 "$work/err"))" >&2
    tee -a "$work/kernels" <"$work/k"
}
run_torch() { # LABEL PYTHON MODE
    for m in $MODELS; do
        for t in $THREADS; do
            peer "$1" "$2" torch_train.py --model "$m" --threads "$t" --batches "$PEER_BATCHES" \
                --mode "$3" --label "$1"
        done
    done
    for m in $SEQ_MODELS; do
        for t in $THREADS; do
            peer "$1" "$2" torch_seq.py --model "$m" --threads "$t" --batches "$PEER_BATCHES" \
                --mode "$3" --label "$1"
        done
    done
}
if have "$VPY" numpy torch; then
    echo "== PyTorch $("$VPY" -c 'import torch; print(torch.__version__)') (PyPI), eager"
    kernels torch2 "$VPY" torch_train.py --label torch2
    run_torch torch2-eager "$VPY" eager
    echo "== PyTorch (PyPI), torch.compile (the first run of each model compiles it)"
    run_torch torch2-compile "$VPY" compile
else
    echo "compare.sh: PyTorch 2.x is missing (no torch in $VENV)" | tee -a "$work/missing"
fi
if have "$VPY" numpy jax; then
    echo "== JAX $("$VPY" -c 'import jax; print(jax.__version__)'), jit-compiled train step"
    kernels jax "$VPY" jax_train.py
    for m in $MODELS; do
        for t in $THREADS; do
            peer jax "$VPY" jax_train.py --model "$m" --threads "$t" --batches "$PEER_BATCHES"
        done
    done
    for m in $SEQ_MODELS; do
        for t in $THREADS; do
            peer jax "$VPY" jax_seq.py --model "$m" --threads "$t" --batches "$PEER_BATCHES"
        done
    done
else
    echo "compare.sh: JAX is missing (no jax in $VENV)" | tee -a "$work/missing"
fi
if have "$DEBIAN_PY" numpy torch; then
    echo "== PyTorch $("$DEBIAN_PY" -c 'import torch; print(torch.__version__)') (Debian), eager"
    kernels torch-debian "$DEBIAN_PY" torch_train.py --label torch-debian
    run_torch torch-debian "$DEBIAN_PY" eager
else
    echo "compare.sh: Debian's PyTorch is missing (python3-torch)" | tee -a "$work/missing"
fi

echo "== ONNX Runtime: batch-1 latency of nabla's export (nabla export --logits)"
if [ -z "$MODELS" ]; then
    echo "(no image model in BENCH_MODELS)"
elif have "$VPY" numpy onnxruntime; then
    kernels onnxruntime "$VPY" ort_latency.py
    for m in $MODELS; do
        "$BENCH" --print-model "$m" >"$work/$m.nn"
        if ! "$NABLA" export "$work/$m.nn" --weights "$work/$m.safetensors" \
            --onnx "$work/$m.onnx" --logits; then
            echo "compare.sh: nabla export of $m failed" >&2
            continue
        fi
        for t in $THREADS; do
            peer ort "$VPY" ort_latency.py --onnx "$work/$m.onnx" --model "$m" --threads "$t" \
                --runs "$RUNS"
        done
    done
else
    echo "compare.sh: ONNX Runtime is missing (no onnxruntime in $VENV)" | tee -a "$work/missing"
fi

echo
echo "== Kernels (as printed above)"
awk '!seen[$0]++' "$work/kernels" | sed 's/^KERNELS //'
echo
[ -f "$work/missing" ] && cat "$work/missing"
awk -v models="$MODELS" -v seq_models="$SEQ_MODELS" -f bench/table.awk "$out"
