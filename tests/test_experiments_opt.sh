#!/bin/sh
# nabla experiment optimizers / schedules with --quick: both run, write their
# plot and summary, and the summaries show what docs/course.md says:
# momentum and Adam beat plain gradient descent at the same rate on an
# ill-conditioned quadratic, adaptive steps escape a saddle first, SGD's noise
# near the minimum grows in proportion to eta and a decaying rate removes it.
# The Fashion-MNIST part is checked when the data set is installed; without
# it the command must still succeed with the 2-D part.
# Usage: test_experiments_opt.sh BUILD_DIR
. "$(dirname "$0")/support/harness.sh"
# the field in column $3 of the summary row whose first two columns are $1 $2
field() { awk -v a="$1" -v b="$2" -v c="$3" '$1 == a && $2 == b { print $c; exit }' "$4"; }
# awk as a calculator: true when the expression holds
holds() { awk "BEGIN { exit !($1) }"; }
# steps_to_tol as a number ("never" counts as more than any budget)
steps() { v=$(field "$1" "$2" 5 "$work/opt/optimizers.txt"); case $v in never|diverged|'') echo 1000000;; *) echo "$v";; esac; }

# --- optimizers
"$nabla" experiment optimizers --quick --seed 0 --out "$work/opt" > "$work/opt.out" 2> "$work/opt.err"
check '[ $? -eq 0 ]' "optimizers exits 0: $(cat "$work/opt.err")"
txt=$work/opt/optimizers.txt
svg=$work/opt/optimizers.svg
check '[ -s "$txt" ] && [ $(wc -c < "$svg") -gt 20000 ]' "optimizers writes its summary and plot"
check 'cmp -s "$txt" "$work/opt.out"' "the summary file is what was printed"
check 'grep -q "</svg>" "$svg"' "the plot is a complete SVG"
# contour drawing: level curves under the paths, some of them closed loops
n_contours=$(grep -c "class='contour'" "$svg")
check '[ "$n_contours" -ge 30 ]' "level curves drawn ($n_contours paths)"
check 'grep "class='"'"'contour'"'"'" "$svg" | grep -q "Z"' "closed level curves (ellipses) present"
check 'grep -q "clip-path=" "$svg"' "paths clipped to the plot box"
for f in quadratic rosenbrock saddle; do
    for o in sgd momentum ema-momentum nesterov adagrad rmsprop adam; do
        check '[ -n "$(field $f $o 4 "$txt")" ]' "summary row $f $o"
    done
done
# quadratic x^2/20 + y^2 at the same rate: momentum, Nesterov and Adam need
# fewer steps than gradient descent to reach the tolerance
sgd=$(steps quadratic sgd)
for o in momentum nesterov adam; do
    s=$(steps quadratic $o)
    check 'holds "$s < $sgd"' "quadratic: $o reaches the tolerance in $s steps, sgd in $sgd"
done
check 'holds "$sgd < 1000000"' "quadratic: sgd converges at its rate"
# Rosenbrock: momentum reaches the tolerance and ends far below plain SGD
check 'holds "$(steps rosenbrock momentum) < 1000000"' "rosenbrock: momentum converges"
check 'holds "$(field rosenbrock momentum 4 "$txt") * 1000 < $(field rosenbrock sgd 4 "$txt")"' \
    "rosenbrock: momentum's final f far below sgd's"
# saddle: escape steps (|y| > 0.5); Adam first, then momentum, then SGD
esc() { v=$(field saddle "$1" 6 "$txt"); [ "$v" = never ] && echo 1000000 || echo "$v"; }
check 'holds "$(esc adam) < $(esc momentum) && $(esc momentum) < $(esc sgd)"' \
    "saddle escape order adam $(esc adam) < momentum $(esc momentum) < sgd $(esc sgd)"
# the same seed gives the same numbers
"$nabla" experiment optimizers --quick --seed 0 --out "$work/opt2" > /dev/null 2>&1
check '[ "$(grep -v "^plot:" "$txt")" = "$(grep -v "^plot:" "$work/opt2/optimizers.txt")" ]' \
    "optimizers is deterministic for a seed"

# Fashion-MNIST part: checked when the data are there
if grep -q '^fmnist ' "$txt"; then
    check '[ $(grep -c "^fmnist " "$txt") -eq 7 ]' "fashion-mnist: a row per optimiser"
    for o in sgd momentum ema-momentum nesterov adagrad rmsprop adam; do
        l1=$(field fmnist $o 4 "$txt"); l=$(field fmnist $o 5 "$txt"); a=$(field fmnist $o 7 "$txt")
        check 'holds "$l < $l1 && $a > 40 && $a <= 100"' \
            "fashion-mnist $o: loss $l1 -> $l, test accuracy $a%"
    done
    check 'holds "$(field fmnist momentum 5 "$txt") < $(field fmnist sgd 5 "$txt")"' \
        "fashion-mnist: momentum's training loss below sgd's at the same rate"
    check '[ $(grep -c "Fashion-MNIST" "$svg") -ge 3 ]' "fashion-mnist panels in the plot"
    # the training-loss curve has a point per batch to the last epoch (the
    # --quick run has fewer than 20 batches an epoch) and its axis says so
    awk '/<g transform=/ { g = "" } { g = g $0 "\n" }
         /<\/g>/ && g ~ /Fashion-MNIST: training loss/ { printf "%s", g; exit }' "$svg" \
        > "$work/loss_panel.svg"
    sizes=$(sed -n 's/.*batch \([0-9]*\), \([0-9]*\) training .*, \([0-9]*\) epochs.*/\1 \2 \3/p' "$txt")
    want=$(echo "$sizes" | awk '{ print int(($2 + $1 - 1) / $1) * $3 }')
    got=$(grep -m 1 "<polyline" "$work/loss_panel.svg" | sed "s/.*points='\([^']*\)'.*/\1/" | wc -w)
    check '[ "$got" -eq "$want" ]' "training-loss curve: $got points, want one per batch ($sizes): $want"
    check 'grep -q ">mean loss per batch" "$work/loss_panel.svg"' "training-loss axis: per batch"
else
    echo "note: Fashion-MNIST not installed; its part was not checked" >&2
fi
# without the data the 2-D part still runs, the summary says what is missing
NABLA_DATA_DIR=$work/nowhere "$nabla" experiment optimizers --quick --out "$work/nodata" \
    > "$work/nodata.out" 2> "$work/nodata.err"
check '[ $? -eq 0 ]' "optimizers without Fashion-MNIST exits 0"
check 'grep -q "^quadratic *sgd" "$work/nodata/optimizers.txt"' "2-D part done without the data"
check 'grep -q "fashion-mnist: skipped" "$work/nodata/optimizers.txt"' "summary says part (b) skipped"
check 'grep -q "apt-get install dataset-fashion-mnist" "$work/nodata.err"' "stderr says how to install"

# --- schedules
"$nabla" experiment schedules --quick --seed 0 --out "$work/sch" > "$work/sch.out" 2> "$work/sch.err"
check '[ $? -eq 0 ]' "schedules exits 0: $(cat "$work/sch.err")"
stxt=$work/sch/schedules.txt
check '[ -s "$stxt" ] && [ $(wc -c < "$work/sch/schedules.svg") -gt 5000 ]' \
    "schedules writes its summary and plot"
check 'cmp -s "$stxt" "$work/sch.out"' "the schedules summary is what was printed"
late() { field schedule "$1" 6 "$stxt"; }
# late phase: a constant rate keeps jittering at its noise level; the decays
# bring the excess loss far below it
check 'holds "$(late constant) > 10 * $(late linear-decay)"' \
    "late excess: constant $(late constant) vs linear decay $(late linear-decay)"
check 'holds "$(late constant) > 3 * $(late cosine)"' \
    "late excess: constant $(late constant) vs cosine $(late cosine)"
# the schedules' rates: linear decay reaches eta_tau = eta_0/100, constant stays
check 'holds "$(field schedule linear-decay 4 "$stxt") == 0.0005 && $(field schedule constant 4 "$stxt") == 0.05"' \
    "final rates of the schedules"
# noise level against a constant eta: grows with eta, about in proportion
# (doubling eta doubles it), and agrees with eta sigma^2 tr(G)/B
awk '$1 == "noise" { print $2, $3, $4, $6 }' "$stxt" > "$work/noise"
check '[ $(wc -l < "$work/noise") -eq 4 ]' "four constant rates measured"
check 'awk "NR > 1 { r = \$2 / prev; if (r < 1.6 || r > 2.6) exit 1 } { prev = \$2 }" "$work/noise"' \
    "noise doubles when eta doubles: $(tr '\n' ';' < "$work/noise")"
check 'awk "{ q = \$2 / \$3; if (q < 0.8 || q > 1.35) exit 1 }" "$work/noise"' \
    "noise level within 20-35% of eta sigma^2 tr(G)/B"
check 'awk "NR == 1 { exit !(\$4 < \$2) }" "$work/noise"' \
    "reshuffled epochs are less noisy than independent batches at a small eta"

finish
