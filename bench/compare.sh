#!/bin/sh
# nabla against the strongest CPU peers on the same Fashion-MNIST models
# (mlp, mlp-wide, cnn, and cnn-bn: the course's CNN with batch norm and
# dropout) and sequence models (gru, transformer: next-token
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
# BENCH_MODELS (default "mlp mlp-wide cnn cnn-bn gru transformer": the models to run),
# BENCH_ROUNDS (default 3: every side runs each model once per round, the
# sides in turn, and the tables take each side's best round; a shared machine's
# speed drifts by tens of per cent within minutes, so sides measured minutes
# apart would compare the machine's states, not the programs).
# --quick: 10 nabla batches, 5 per peer, 200 latency calls, 1 thread, 1 round.
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
    RUNS=${LATENCY_RUNS:-200} THREADS=${BENCH_THREADS:-1} ROUNDS=${BENCH_ROUNDS:-1}
else
    BATCHES=${BENCH_BATCHES:-200} PEER_BATCHES=${PEER_BATCHES:-100}
    RUNS=${LATENCY_RUNS:-2000} THREADS=${BENCH_THREADS:-"1 2"} ROUNDS=${BENCH_ROUNDS:-3}
fi
case $ROUNDS in '' | *[!0-9]*) ROUNDS=0 ;; esac
if [ "$ROUNDS" -lt 1 ]; then
    echo "compare.sh: BENCH_ROUNDS '${BENCH_ROUNDS}' is not a positive number" >&2
    exit 2
fi
MODELS="" SEQ_MODELS="" # image and sequence models of BENCH_MODELS
for m in ${BENCH_MODELS:-mlp mlp-wide cnn cnn-bn gru transformer}; do
    case $m in
    mlp | mlp-wide | cnn | cnn-bn) MODELS="$MODELS $m" ;;
    gru | transformer) SEQ_MODELS="$SEQ_MODELS $m" ;;
    *) echo "compare.sh: BENCH_MODELS: unknown model '$m'" >&2; exit 2 ;;
    esac
done
MODELS=${MODELS# } SEQ_MODELS=${SEQ_MODELS# }
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
     "threads: $THREADS; rounds: $ROUNDS (the tables: each side's best)"

# kernels NAME PYTHON SCRIPT ARGS...: a peer's KERNELS lines, printed and kept
kernels() {
    name=$1 py=$2 script=$3
    shift 3
    "$py" "$PEERS/$script" --kernels "$@" >"$work/k" 2>"$work/err" ||
        echo "compare.sh: $name: $script --kernels failed ($(tail -n 1 "$work/err"))" >&2
    tee -a "$work/kernels" <"$work/k"
}

# nabla_runs LABEL MODEL [ENV...]: nabla-bench on MODEL ("none": the sgemm
# alone) at each thread count, its RESULT lines tagged LABEL
nabla_runs() {
    label=$1 m=$2
    shift 2
    for t in $THREADS; do
        extra="--no-sgemm"
        [ "$m" = none ] && extra=""
        [ "$label" = nabla ] && [ "$m" != none ] && extra="$extra --save-weights $work"
        env "$@" "$BENCH" --model "$m" --threads "$t" --batches "$BATCHES" --latency-runs "$RUNS" \
            $extra >"$work/nabla" || echo "compare.sh: $label nabla-bench --model $m --threads $t failed" >&2
        grep '^KERNELS' "$work/nabla" | sed "s/^KERNELS nabla/KERNELS $label/" >>"$work/kernels"
        grep '^RESULT' "$work/nabla" | sed "s/^/$label /" | tee -a "$out"
    done
}

# On a CPU with AVX-512, nabla's AVX2 kernel runs as a side of its own: what
# nabla does on a CPU without AVX-512.
AVX2_SIDE=0
if "$NABLA" --version | grep -q nabla-avx512 && NB_GEMM=avx2 "$NABLA" --version | grep -q nabla-avx2; then
    AVX2_SIDE=1
fi

# The peers present, and their kernels, once.
TORCH2=0 JAX=0 DEBIAN=0 ORT=0
if have "$VPY" numpy torch; then
    TORCH2=1
    echo "== PyTorch $("$VPY" -c 'import torch; print(torch.__version__)') (PyPI): eager and torch.compile"
    kernels torch2 "$VPY" torch_train.py --label torch2
else
    echo "compare.sh: PyTorch 2.x is missing (no torch in $VENV)" | tee -a "$work/missing"
fi
if have "$VPY" numpy jax; then
    JAX=1
    echo "== JAX $("$VPY" -c 'import jax; print(jax.__version__)'), jit-compiled train step"
    kernels jax "$VPY" jax_train.py
else
    echo "compare.sh: JAX is missing (no jax in $VENV)" | tee -a "$work/missing"
fi
if have "$DEBIAN_PY" numpy torch; then
    DEBIAN=1
    echo "== PyTorch $("$DEBIAN_PY" -c 'import torch; print(torch.__version__)') (Debian), eager"
    kernels torch-debian "$DEBIAN_PY" torch_train.py --label torch-debian
else
    echo "compare.sh: Debian's PyTorch is missing (python3-torch)" | tee -a "$work/missing"
fi
if [ -n "$MODELS" ] && have "$VPY" numpy onnxruntime; then
    ORT=1
    echo "== ONNX Runtime: batch-1 latency of nabla's export (nabla export --logits)"
    kernels onnxruntime "$VPY" ort_latency.py
elif [ -n "$MODELS" ]; then
    echo "compare.sh: ONNX Runtime is missing (no onnxruntime in $VENV)" | tee -a "$work/missing"
fi

# peer_runs LABEL PYTHON SCRIPT MODEL ARGS...: a peer on MODEL at each thread count
peer_runs() {
    label=$1 py=$2 script=$3 m=$4
    shift 4
    for t in $THREADS; do
        peer "$label" "$py" "$script" --model "$m" --threads "$t" --batches "$PEER_BATCHES" "$@"
    done
}

# ort_runs MODEL: ONNX Runtime on nabla's export of the weights nabla just trained
ort_runs() {
    m=$1
    "$BENCH" --print-model "$m" >"$work/$m.nn"
    if ! "$NABLA" export "$work/$m.nn" --weights "$work/$m.safetensors" \
        --onnx "$work/$m.onnx" --logits; then
        echo "compare.sh: nabla export of $m failed" >&2
        return
    fi
    for t in $THREADS; do
        peer ort "$VPY" ort_latency.py --onnx "$work/$m.onnx" --model "$m" --threads "$t" \
            --runs "$RUNS"
    done
}

# Rounds: in each, every side runs each model in turn, so that all sides see
# the machine in the same state; the tables take each side's best round.
for round in $(seq 1 "$ROUNDS"); do
    for m in $MODELS $SEQ_MODELS; do
        echo "== round $round of $ROUNDS: $m"
        case " $SEQ_MODELS " in *" $m "*) torch_script=torch_seq.py jax_script=jax_seq.py seq=1 ;;
        *) torch_script=torch_train.py jax_script=jax_train.py seq=0 ;; esac
        nabla_runs nabla "$m"
        # the OpenBLAS path, with OpenBLAS's own choice of kernels
        nabla_runs nabla-openblas "$m" -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE NB_GEMM=openblas
        [ "$AVX2_SIDE" = 1 ] && nabla_runs nabla-avx2 "$m" NB_GEMM=avx2
        if [ "$TORCH2" = 1 ]; then
            peer_runs torch2-eager "$VPY" "$torch_script" "$m" --mode eager --label torch2-eager
            peer_runs torch2-compile "$VPY" "$torch_script" "$m" --mode compile --label torch2-compile
        fi
        [ "$JAX" = 1 ] && peer_runs jax "$VPY" "$jax_script" "$m"
        [ "$DEBIAN" = 1 ] &&
            peer_runs torch-debian "$DEBIAN_PY" "$torch_script" "$m" --mode eager --label torch-debian
        [ "$ORT" = 1 ] && [ "$seq" = 0 ] && ort_runs "$m"
    done
    echo "== round $round of $ROUNDS: sgemm 2048^3"
    nabla_runs nabla none
    nabla_runs nabla-openblas none -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE NB_GEMM=openblas
    [ "$AVX2_SIDE" = 1 ] && nabla_runs nabla-avx2 none NB_GEMM=avx2
done

echo
echo "== Kernels (as printed above)"
awk '!seen[$0]++' "$work/kernels" | sed 's/^KERNELS //'
echo
[ -f "$work/missing" ] && cat "$work/missing"
awk -v models="$MODELS" -v seq_models="$SEQ_MODELS" -v rounds="$ROUNDS" -f bench/table.awk "$out"
