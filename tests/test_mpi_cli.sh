#!/bin/sh
# mpirun -np 2 nabla train (docs/scaling.md): 2 processes agree with 1 at the
# same global batch, two runs give the same bits, a run killed and resumed
# under MPI ends bit-identical, --sync-bn makes batch norm agree with one
# process, and a bad setting stops every process.
# Usage: test_mpi_cli.sh BUILD_DIR MPIEXEC (MPIEXEC empty: built without MPI, skip)
. "$(dirname "$0")/support/harness.sh"
mpiexec=${2:-}
if [ -z "$mpiexec" ]; then echo "skipped: nabla was built without MPI"; exit 77; fi
# CI runs as root, which Open MPI refuses unless told; two ranks may share a core
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mpi2() { "$mpiexec" --oversubscribe --bind-to none -np 2 "$@"; }
close="$build/tests/weights_close"

# --- the data: the first 1024 Fashion-MNIST images (IDX), else a CSV
fm=/usr/share/datasets/fashion-mnist
be32() { printf "$(printf '\\%03o\\%03o\\%03o\\%03o' $(($1 >> 24 & 255)) $(($1 >> 16 & 255)) \
    $(($1 >> 8 & 255)) $(($1 & 255)))"; }
if [ -f $fm/train-images-idx3-ubyte.gz ]; then
    n=1024
    { printf '\000\000\010\003'; be32 $n; be32 28; be32 28
      gzip -dc $fm/train-images-idx3-ubyte.gz | tail -c +17 | head -c $((n * 784)); } > "$work/img"
    { printf '\000\000\010\001'; be32 $n
      gzip -dc $fm/train-labels-idx1-ubyte.gz | tail -c +9 | head -c $n; } > "$work/lab"
    model=models/fashion_mlp.nn
    data="idx:$work/img,$work/lab"
else
    echo "note: dataset-fashion-mnist not installed: a CSV model instead of fashion_mlp"
    iris_csv "$work/train.csv" numeric
    printf 'input 4\ndense 64\nrelu\ndense 3\nloss cross_entropy\n' > "$work/small.nn"
    model="$work/small.nn"
    data="csv:$work/train.csv"
fi

# --- (a) 2 processes against 1 at the same global batch: one epoch
set -- train "$model" --data "$data" --epochs 1 --batch 64 --optim momentum --lr 0.05 \
    --seed 4 --threads 1 --quiet
"$nabla" "$@" --out "$work/one.safetensors" > "$work/one.out" 2>&1
check '[ $? -eq 0 ]' "one process: $(cat "$work/one.out")"
mpi2 "$nabla" "$@" --out "$work/two.safetensors" > "$work/two.out" 2>&1
check '[ $? -eq 0 ]' "mpirun -np 2 nabla train exits 0: $(cat "$work/two.out")"
"$close" "$work/one.safetensors" "$work/two.safetensors" 1e-5 > "$work/close.out" 2>&1
check '[ $? -eq 0 ]' "2 processes agree with 1 within 1e-5: $(cat "$work/close.out")"
check '! cmp -s "$work/one.safetensors" "$work/two.safetensors"' \
    "the 2-process sums are really another order (else the check above proves nothing)"
# -np 1 is one process
"$mpiexec" --oversubscribe -np 1 "$nabla" "$@" --out "$work/np1.safetensors" > "$work/np1.out" 2>&1
check 'cmp -s "$work/one.safetensors" "$work/np1.safetensors"' \
    "mpirun -np 1 trains as one process: $(cat "$work/np1.out")"

# --- (b) the same bits every time: two uninterrupted runs of 3 epochs
set -- train "$model" --data "$data" --batch 64 --seed 4 --threads 1 --checkpoint-every 10 --quiet
mpi2 "$nabla" "$@" --epochs 3 --out "$work/full.safetensors" > "$work/full.out" 2>&1
check '[ $? -eq 0 ]' "uninterrupted 2-process run: $(cat "$work/full.out")"
mpi2 "$nabla" "$@" --epochs 3 --out "$work/again.safetensors" > "$work/again.out" 2>&1
check 'cmp -s "$work/full.safetensors" "$work/again.safetensors"' \
    "two 2-process runs are bit-identical: $(cat "$work/again.out")"

# --- (c) killed mid-run, then --resume under MPI: bit-identical.  Rank 0 is
# killed (SIGKILL, its pid from its lock file) as soon as its first
# checkpoint appears: at once, where a signal through mpirun takes a while.
# The killed run asks for many epochs, so that it is surely still running
# then; the resumed run asks for the 3 epochs of the runs above (the
# constant rate does not depend on --epochs).
# mpirun itself in the background (not through a function), so that $! is its pid
"$mpiexec" --oversubscribe --bind-to none -np 2 "$nabla" "$@" --epochs 1000 \
    --out "$work/cut.safetensors" > "$work/cut.out" 2>&1 &
pid=$!
i=0
while [ ! -f "$work/cut.safetensors.ckpt" ] && [ $i -lt 6000 ]; do sleep 0.01; i=$((i + 1)); done
rank0=$(cat "$work/cut.safetensors.lock" 2>/dev/null)
if [ -n "$rank0" ] && kill -KILL "$rank0" 2>/dev/null; then ok
else bad "rank 0 ended before it could be killed"; fi
wait $pid 2>/dev/null # mpirun ends the other rank
i=0
while [ -n "$rank0" ] && kill -0 "$rank0" 2>/dev/null && [ $i -lt 1000 ]; do
    sleep 0.01
    i=$((i + 1))
done
check '[ ! -f "$work/cut.safetensors" ]' "the killed run wrote no final weights"
check '[ -f "$work/cut.safetensors.ckpt" ]' "the killed run left its checkpoint"
mpi2 "$nabla" "$@" --epochs 3 --out "$work/cut.safetensors" \
    --resume "$work/cut.safetensors.ckpt" > "$work/resume.out" 2>&1
check '[ $? -eq 0 ]' "resume under MPI exits 0: $(cat "$work/resume.out")"
check 'cmp -s "$work/full.safetensors" "$work/cut.safetensors"' \
    "the resumed 2-process run is bit-identical to the uninterrupted one"

# --- batch norm with --sync-bn: the global batch's statistics, as one process
# (that per-process statistics differ is checked by test_dist)
iris_csv "$work/iris.csv" numeric
printf 'input 4\ndense 16\nbatchnorm\nrelu\ndense 3\nloss cross_entropy\n' > "$work/bn.nn"
set -- train "$work/bn.nn" --data "csv:$work/iris.csv" --epochs 2 --batch 30 --optim momentum \
    --lr 0.05 --seed 2 --threads 1 --quiet
"$nabla" "$@" --out "$work/bn1.safetensors" > "$work/bn1.out" 2>&1
mpi2 "$nabla" "$@" --sync-bn --out "$work/bn2s.safetensors" > "$work/bn2s.out" 2>&1
check '[ $? -eq 0 ]' "--sync-bn exits 0: $(cat "$work/bn2s.out")"
"$close" "$work/bn1.safetensors" "$work/bn2s.safetensors" 1e-5 > "$work/c2.out" 2>&1
check '[ $? -eq 0 ]' "with --sync-bn 2 processes agree with 1: $(cat "$work/c2.out")"

# --- a setting no process can train with stops them all, with the reason
mpi2 "$nabla" train "$model" --data "$data" --epochs 1 --batch 1 --quiet \
    > "$work/bad.out" 2>&1
rc=$?
check '[ $rc -ne 0 ] && grep -q "batch_size 1 is smaller than the 2 processes" "$work/bad.out"' \
    "--batch 1 on 2 processes fails (exit $rc): $(cat "$work/bad.out")"
finish
