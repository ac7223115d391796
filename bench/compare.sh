#!/bin/sh
# nabla against PyTorch (Debian's python3-torch) on the same Fashion-MNIST
# models, batch, optimiser and machine, in one run:
#   sh bench/compare.sh [BUILD_DIR]
# Environment: BENCH_BATCHES (nabla's timed batches, default 200),
# TORCH_LIMIT (training samples of PyTorch's one timed epoch, default 20000
# to keep the run short; 60000 is the full epoch), BENCH_THREADS (default
# "1 2").  Each side is reported at its best thread count.
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

echo "machine: $(nproc) cores, $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -n 1)," \
     "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}"
for t in $THREADS; do
    echo "== nabla-bench --threads $t --batches $BATCHES"
    "$BENCH" --threads "$t" --batches "$BATCHES" | tee -a "$out"
done
if [ "$have_torch" = 1 ]; then
    echo "== PyTorch $("$PY" -c 'import torch; print(torch.__version__)'):" \
         "one epoch of --limit $LIMIT samples (of 60000); batch-1 latency; peak RSS"
    for m in $MODELS; do
        for t in $THREADS; do
            line=$("$PY" "$TORCH_SCRIPT" --model "$m" --threads "$t" --epochs 1 \
                   --limit "$LIMIT" | grep '^RESULT') || line=""
            [ -n "$line" ] && echo "torch $line" | tee -a "$out" ||
                echo "compare.sh: torch_fmnist.py --model $m --threads $t failed" >&2
            line=$("$PY" bench/torch_extra.py latency --model "$m" --threads "$t" |
                   grep '^RESULT') || line=""
            [ -n "$line" ] && echo "torch $line" | tee -a "$out"
        done
    done
    line=$("$PY" bench/torch_extra.py rss --model mlp --threads 1 --script "$TORCH_SCRIPT" |
           grep '^RESULT') || line=""
    [ -n "$line" ] && echo "torch $line" | tee -a "$out"
fi

# The table: for each figure, each side at its best thread count.
echo
awk -v models="$MODELS" '
function val(line, key,   r) {
    if (match(line, " " key "=[0-9.]+")) { r = substr(line, RSTART + length(key) + 2, RLENGTH - length(key) - 2); return r + 0 }
    return -1
}
function better(old, new, lower) { return old == "" || (lower ? new < old + 0 : new > old + 0) }
/^RESULT sgemm kernel=openblas/ { t = val($0, "threads"); g = val($0, "gflops"); if (g > peak[t]) peak[t] = g; next }
/^RESULT sgemm kernel=nabla/ { t = val($0, "threads"); g = val($0, "gflops"); if (g > npeak[t]) npeak[t] = g; next }
{
    torch = ($1 == "torch"); m = $0; sub(/.*model=/, "", m); sub(/ .*/, "", m); t = val($0, "threads")
    side = torch ? "t" : "n"
    v = val($0, "samples_per_s"); if (v >= 0 && better(sps[side, m], v, 0)) { sps[side, m] = v; spst[side, m] = t; gf[side, m] = val($0, "gflops") }
    v = val($0, "latency_us"); if (v >= 0 && better(lat[side, m], v, 1)) { lat[side, m] = v; latt[side, m] = t }
    v = val($0, "peak_rss_mb"); if (v >= 0 && (rss[side, m] == "" || v < rss[side, m])) rss[side, m] = v
}
END {
    n = split(models, M, " ")
    top = (peak[2] > peak[1]) ? peak[2] : peak[1]
    ntop = (npeak[2] > npeak[1]) ? npeak[2] : npeak[1]
    printf "%-9s %16s %16s %7s | %8s %7s %7s | %9s %9s %7s | %8s %8s %7s\n", "model", "nabla samples/s", "torch samples/s", "ratio", "GFLOP/s", "%sgemm", "%nabla", "nabla us", "torch us", "ratio", "nabla MB", "torch MB", "ratio"
    for (i = 1; i <= n; i++) {
        m = M[i]
        r1 = (sps["t", m] > 0 && sps["n", m] > 0) ? sprintf("%.2f", sps["n", m] / sps["t", m]) : "-"
        r2 = (lat["t", m] > 0 && lat["n", m] > 0) ? sprintf("%.2f", lat["t", m] / lat["n", m]) : "-"
        r3 = (rss["t", m] > 0 && rss["n", m] > 0) ? sprintf("%.2f", rss["t", m] / rss["n", m]) : "-"
        p1 = top > 0 ? sprintf("%.0f%%", 100 * gf["n", m] / top) : "-"
        p2 = ntop > 0 ? sprintf("%.0f%%", 100 * gf["n", m] / ntop) : "-"
        ts = (sps["t", m] > 0) ? sprintf("%.0f (%dt)", sps["t", m], spst["t", m]) : "-"
        tl = (lat["t", m] > 0) ? sprintf("%.1f(%dt)", lat["t", m], latt["t", m]) : "-"
        tr = (rss["t", m] != "") ? sprintf("%.1f", rss["t", m]) : "-"
        printf "%-9s %11.0f (%dt) %16s %7s | %8.1f %7s %7s | %5.1f(%dt) %9s %7s | %8.1f %8s %7s\n", m, sps["n", m], spst["n", m], ts, r1, gf["n", m], p1, p2, lat["n", m], latt["n", m], tl, r2, rss["n", m], tr, r3
    }
    printf "\nsgemm 2048^3 peak: OpenBLAS %.1f GFLOP/s, nabla %.1f GFLOP/s (best of the thread counts)\n", top, ntop
    printf "ratios: samples/s nabla/torch; latency and RSS torch/nabla (higher is better for nabla everywhere)\n"
    printf "%%sgemm: nabla training GFLOP/s / OpenBLAS sgemm peak; %%nabla: / nabla sgemm peak\n"
}' "$out"
echo "(nabla: $BATCHES timed batches of 128; PyTorch: one epoch of $LIMIT samples, batch 128," \
     "as timed by torch_fmnist.py; RSS: PyTorch training mlp for one full epoch)"
