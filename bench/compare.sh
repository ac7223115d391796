#!/bin/sh
# nabla against PyTorch (Debian's python3-torch) on the same Fashion-MNIST
# models, batch, optimiser and machine, in one run:
#   sh bench/compare.sh [BUILD_DIR]
# Environment: BENCH_BATCHES (nabla's timed batches, default 200),
# TORCH_LIMIT (training samples of PyTorch's one epoch, default 20000 to keep
# the run short; 60000 is the full epoch), BENCH_THREADS (default "1 2").
# Each side is reported at its best thread count.
set -e
cd "$(dirname "$0")/.."
BUILD=${1:-build}
BENCH="$BUILD/bench/nabla-bench"
TORCH_SCRIPT=../shared/bench/torch_fmnist.py
PY=/usr/bin/python3
BATCHES=${BENCH_BATCHES:-200}
LIMIT=${TORCH_LIMIT:-20000}
THREADS=${BENCH_THREADS:-"1 2"}
MODELS="mlp mlp-wide cnn"

if [ ! -x "$BENCH" ]; then
    echo "compare.sh: $BENCH not found (run make first)" >&2
    exit 1
fi

sh scripts/install-deps.sh python3-torch python3-numpy dataset-fashion-mnist ||
    echo "compare.sh: could not install python3-torch python3-numpy dataset-fashion-mnist" >&2

have_torch=1
if [ ! -f "$TORCH_SCRIPT" ]; then
    echo "compare.sh: $TORCH_SCRIPT not found: nabla's figures only"
    have_torch=0
elif ! "$PY" -c "import torch, numpy" 2>/dev/null; then
    echo "compare.sh: python3-torch (or python3-numpy) is missing: nabla's figures only"
    have_torch=0
fi

out=$(mktemp)
trap 'rm -f "$out"' EXIT INT TERM

# value KEY LINE: the number after "KEY=" in a RESULT line.
value() { printf '%s\n' "$2" | sed -n "s/.* $1=\([0-9.]*\).*/\1/p"; }

for t in $THREADS; do
    echo "== nabla-bench --threads $t --batches $BATCHES"
    "$BENCH" --threads "$t" --batches "$BATCHES" | tee -a "$out"
done
if [ "$have_torch" = 1 ]; then
    echo "== PyTorch $("$PY" -c 'import torch; print(torch.__version__)'):" \
         "one epoch of --limit $LIMIT samples (of 60000)"
    for m in $MODELS; do
        for t in $THREADS; do
            line=$("$PY" "$TORCH_SCRIPT" --model "$m" --threads "$t" --epochs 1 \
                   --limit "$LIMIT" | grep '^RESULT') || line=""
            if [ -n "$line" ]; then
                echo "torch $line" | tee -a "$out"
            else
                echo "compare.sh: torch_fmnist.py --model $m --threads $t failed" >&2
            fi
        done
    done
fi

# best SIDE MODEL: "samples_per_s threads" of the fastest run.
best() {
    if [ "$1" = torch ]; then pat="^torch RESULT model=$2 "; else pat="^RESULT model=$2 "; fi
    grep "$pat" "$out" | while IFS= read -r l; do
        echo "$(value samples_per_s "$l") $(value threads "$l")"
    done | sort -n -r | head -n 1
}

echo
printf '%-9s %18s %18s %14s\n' model "nabla samples/s" "PyTorch samples/s" "nabla/PyTorch"
for m in $MODELS; do
    nb=$(best nabla "$m")
    nb_s=${nb% *}
    nb_t=${nb#* }
    if [ -z "$nb" ]; then nbtxt="failed"; else nbtxt="$nb_s (${nb_t}t)"; fi
    th=""
    [ "$have_torch" = 1 ] && th=$(best torch "$m")
    if [ -n "$th" ]; then
        th_s=${th% *}
        th_t=${th#* }
        thtxt="$th_s (${th_t}t)"
        if [ -n "$nb" ]; then
            ratio=$(awk "BEGIN { printf \"%.2f\", $nb_s / $th_s }")
        else
            ratio="-"
        fi
    else
        thtxt="-"
        ratio="-"
    fi
    printf '%-9s %18s %18s %14s\n' "$m" "$nbtxt" "$thtxt" "$ratio"
done
echo "(best thread count of $THREADS for each side; nabla: $BATCHES timed batches of 128;"
echo " PyTorch: one epoch of $LIMIT samples, batch 128, as timed by torch_fmnist.py)"
