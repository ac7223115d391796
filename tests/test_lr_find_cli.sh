#!/bin/sh
# nabla lr-find end to end on a small CSV problem: the range test runs one
# pass, its suggestion follows the documented rule and lies in the range, the
# plot is a whole SVG picture, nothing else is written; bad input gives one
# clear line and exit code 2 (usage) or 1 (failure).
# Usage: test_lr_find_cli.sh BUILD_DIR
. "$(dirname "$0")/support/harness.sh"

iris_csv "$work/train.csv" # 3 classes of 4 features, text labels
cat > "$work/iris.nn" <<'NN'
input 4
dense 16 init=he
relu
dense 3
loss cross_entropy
NN
data="csv:$work/train.csv,label=species"

# --- a run: 300 rows in batches of 16 are 19 steps
ls "$work" > "$work/before.txt"
"$nabla" lr-find "$work/iris.nn" --data "$data" --batch 16 --start-lr 1e-5 --end-lr 1 \
    --plot "$work/lr.svg" --seed 4 > "$work/run.out" 2> "$work/run.err"
check '[ $? -eq 0 ]' "lr-find exits 0: $(cat "$work/run.err")"
check '[ ! -s "$work/run.err" ]' "nothing on stderr: $(cat "$work/run.err")"
sug=$(sed -n 's/^suggested learning rate: \([0-9.e+-]*\) .*/\1/p' "$work/run.out")
check '[ -n "$sug" ]' "a suggested rate is printed: $(cat "$work/run.out")"
check 'awk -v s="$sug" "BEGIN { exit !(s >= 1e-5 && s <= 1) }"' \
    "suggestion $sug lies in [1e-5, 1]"
# the rule: the rate of the row marked as the lowest smoothed loss, / 10
low=$(awk '/<- lowest smoothed loss/ { print $2 }' "$work/run.out")
check 'awk -v s="$sug" -v l="$low" "BEGIN { r = s / (l / 10); exit !(r > 0.999 && r < 1.001) }"' \
    "suggestion $sug is the lowest smoothed loss's rate $low / 10"
# first row at --start-lr; without an early stop the last is step 19 at --end-lr
check 'awk "\$1 == 1 { exit !(\$2 == 1e-05) }" "$work/run.out"' "step 1 runs at --start-lr"
if grep -q "^stopped after" "$work/run.out"; then
    bad "the loss of this easy problem diverged below rate 1: $(cat "$work/run.out")"
else
    check 'awk "\$1 == 19 { f = (\$2 == 1) } END { exit !f }" "$work/run.out"' \
        "one pass: step 19 of 19 runs at --end-lr: $(cat "$work/run.out")"
fi
check 'head -n 1 "$work/lr.svg" | grep -q "^<?xml" && tail -n 1 "$work/lr.svg" | grep -q "^</svg>$"' \
    "the plot is a whole SVG file"
check 'grep -q "learning rate (log)" "$work/lr.svg" && grep -q "suggestion $(printf %.2g "$sug")" "$work/lr.svg"' \
    "the plot has a log rate axis and marks the suggestion"
ls "$work" > "$work/after.txt"
check '[ "$(diff "$work/before.txt" "$work/after.txt" | grep "^>" | grep -v -e "lr.svg" -e "run.out" -e "run.err" -e "before.txt" -e "after.txt")" = "" ]' \
    "lr-find writes no weights or other files: $(diff "$work/before.txt" "$work/after.txt")"
# the same seed gives the same measurement; --steps takes fewer steps
"$nabla" lr-find "$work/iris.nn" --data "$data" --batch 16 --start-lr 1e-5 --end-lr 1 \
    --seed 4 > "$work/again.out" 2>&1
check 'cmp -s "$work/run.out" "$work/again.out"' "a second run with --seed 4 prints the same"
"$nabla" lr-find "$work/iris.nn" --data "$data" --batch 16 --steps 10 > "$work/ten.out" 2>&1
check 'awk "\$1 == 10 { f = (\$2 == 10) } END { exit !f }" "$work/ten.out"' \
    "--steps 10 ends at step 10 at the default --end-lr 10: $(cat "$work/ten.out")"
check 'grep -q "^suggested learning rate" "$work/ten.out"' "--steps 10 gives a suggestion"
# a range that starts past the lowest loss suggests --start-lr and says so
"$nabla" lr-find "$work/iris.nn" --data "$data" --batch 8 --start-lr 0.3 --end-lr 30 \
    > "$work/high.out" 2>&1
check 'grep -q "^suggested learning rate: 0.3 (--start-lr: .*try a lower --start-lr)" "$work/high.out"' \
    "a range past the minimum suggests --start-lr: $(tail -n 1 "$work/high.out")"

# --- errors
expect_error 2 "lr-find: --data is required" "$nabla" lr-find "$work/iris.nn"
expect_error 2 "lr-find: expected one model file" "$nabla" lr-find --data "$data"
expect_error 2 "end-lr 0.001 must be above --start-lr 0.01" \
    "$nabla" lr-find "$work/iris.nn" --data "$data" --start-lr 1e-2 --end-lr 1e-3
expect_error 2 "start-lr" "$nabla" lr-find "$work/iris.nn" --data "$data" --start-lr 0
expect_error 2 "end-lr" "$nabla" lr-find "$work/iris.nn" --data "$data" --end-lr nan
expect_error 2 "steps 7: expected an integer from 8" \
    "$nabla" lr-find "$work/iris.nn" --data "$data" --steps 7
expect_error 1 "one pass over the data has 5 mini-batches of 64; the test takes at least 8 steps" \
    "$nabla" lr-find "$work/iris.nn" --data "$data" --batch 64
expect_error 2 "steps 20: one pass over the data has only 19 mini-batches of 16" \
    "$nabla" lr-find "$work/iris.nn" --data "$data" --batch 16 --steps 20
expect_error 2 "optim" "$nabla" lr-find "$work/iris.nn" --data "$data" --optim adamx
expect_error 1 "missing.csv" "$nabla" lr-find "$work/iris.nn" --data "csv:$work/missing.csv"
expect_error 1 "plot" "$nabla" lr-find "$work/iris.nn" --data "$data" --plot "$work/no/dir/p.svg"
printf 'input 4\ndense 3\n' > "$work/noloss.nn"
expect_error 1 "noloss.nn: the model has no 'loss' line" \
    "$nabla" lr-find "$work/noloss.nn" --data "$data"
printf 'input 3\ndense 3\nloss cross_entropy\n' > "$work/three.nn"
expect_error 1 "samples have 4 values but the model takes 3" \
    "$nabla" lr-find "$work/three.nn" --data "$data"
printf 'input 4\ndense 2\nloss cross_entropy\n' > "$work/two.nn"
expect_error 1 "label 2; the model has 2 classes" "$nabla" lr-find "$work/two.nn" --data "$data"
expect_error 1 "diverged after .* too early for a suggestion" \
    "$nabla" lr-find "$work/iris.nn" --data "$data" --batch 16 --optim sgd --start-lr 1e6 \
    --end-lr 1e30
cp "$work/train.csv" "$work/keep.csv"
expect_error 2 "plot .*train.csv is the same file as --data" \
    "$nabla" lr-find "$work/iris.nn" --data "$data" --plot "$work/train.csv"
check 'cmp -s "$work/train.csv" "$work/keep.csv"' "the data file is left as it was"
expect_error 2 "plot .*iris.nn is the same file as the model file" \
    "$nabla" lr-find "$work/iris.nn" --data "$data" --plot "$work/iris.nn"
check '[ ! -e "$work/no" ]' "no directory created for a bad --plot"
finish
