#!/bin/sh
# The search of docs/tune.md: ASHA against plain random search over the same
# 27 configurations of models/fashion_mlp.nn (lr, batch, width) on
# Fashion-MNIST, then the figures: each search's best validation accuracy and
# the epochs each trained.  ASHA must come within 0.5 points of random search
# in at most 40% of its epochs.  Random search has no decisions to make, so
# it runs two trials at a time; ASHA runs one, which makes it repeatable.
# Usage: scripts/tune-demo.sh [NABLA [DIR]]   (default build/nabla, build/tune-demo)
set -eu
nabla=${1:-build/nabla}
dir=${2:-build/tune-demo}
search=examples/tune/fashion_mlp.json
mkdir -p "$dir"
for s in asha random; do
    jobs=1
    [ "$s" = random ] && jobs=2
    if [ -f "$dir/$s/journal" ]; then resume=--resume; else resume=; fi
    "$nabla" tune "$search" --out "$dir/$s" --strategy "$s" --jobs "$jobs" --quiet $resume \
        > "$dir/$s.txt"
    tail -n 2 "$dir/$s.txt"
done
# best val_acc (%) and epochs of each: from the "best:" line
figures() {
    sed -n 's/^best: trial [0-9]* (.*): val_acc \([0-9.]*\) at epoch [0-9]*; \([0-9]*\) epochs.*/\1 \2/p' \
        "$dir/$1.txt"
}
set -- $(figures asha) $(figures random)
awk -v a="$1" -v ae="$2" -v r="$3" -v re="$4" 'BEGIN {
    printf "ASHA:   best val_acc %.2f%% in %d epochs\n", 100 * a, ae;
    printf "random: best val_acc %.2f%% in %d epochs\n", 100 * r, re;
    gap = 100 * (r - a); share = ae / re;
    printf "ASHA is %.2f points below random search, with %.0f%% of its epochs\n", gap, 100 * share;
    if (gap > 0.5 || share > 0.4) { print "FAILED: more than 0.5 points or 40% of the epochs"; exit 1 }
}'
