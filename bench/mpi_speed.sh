#!/bin/sh
# Training speed of 2 MPI processes against 1 (docs/scaling.md): samples/s
# of one epoch, as nabla train prints it (start-up and loading excluded),
# the two set-ups taking turns, each rank one thread bound to its own core.
# Usage: bench/mpi_speed.sh BUILD_DIR MODEL SAMPLES RUNS [BATCH]
#   SAMPLES  the first SAMPLES Fashion-MNIST training images (an IDX subset)
# Prints every run's figure and the medians.  Needs an idle machine with at
# least 2 cores for figures worth quoting.
set -eu
build=$1 model=$2 n=$3 runs=$4 batch=${5:-128}
fm=/usr/share/datasets/fashion-mnist
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
be32() { printf "$(printf '\\%03o\\%03o\\%03o\\%03o' $(($1 >> 24 & 255)) $(($1 >> 16 & 255)) \
    $(($1 >> 8 & 255)) $(($1 & 255)))"; }
{ printf '\000\000\010\003'; be32 "$n"; be32 28; be32 28
  gzip -dc $fm/train-images-idx3-ubyte.gz | tail -c +17 | head -c $((n * 784)); } > "$work/img"
{ printf '\000\000\010\001'; be32 "$n"
  gzip -dc $fm/train-labels-idx1-ubyte.gz | tail -c +9 | head -c "$n"; } > "$work/lab"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
set -- train "$model" --data "idx:$work/img,$work/lab" --epochs 1 --batch "$batch" --threads 1
rate() { sed -n 's/.* \([0-9]*\) samples\/s$/\1/p' "$1" | tail -n 1; }
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
: > "$work/one" ; : > "$work/two"
for i in $(seq "$runs"); do
    taskset -c 0 "$build/nabla" "$@" > "$work/out" 2>&1
    rate "$work/out" >> "$work/one"
    mpirun -np 2 --bind-to core --map-by core "$build/nabla" "$@" > "$work/out" 2>&1
    rate "$work/out" >> "$work/two"
    echo "run $i: 1 process $(tail -n 1 "$work/one") samples/s, 2 processes $(tail -n 1 "$work/two") samples/s"
done
one=$(median < "$work/one") two=$(median < "$work/two")
echo "median: 1 process $one samples/s, 2 processes $two samples/s, speed-up $(echo "$two $one" | awk '{ printf "%.2f", $1 / $2 }')"
