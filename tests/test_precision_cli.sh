#!/bin/sh
# --precision on the command line: an unknown value is a usage error; bf16
# where no bf16 kernel runs (simulated with NB_BF16=none) is one clear line
# and exit 1; where the CPU has one, a bf16 run trains, records its
# precision in the checkpoint and resumes only in it, and eval and predict
# take the flag too.
# Usage: test_precision_cli.sh BUILD_DIR
. "$(dirname "$0")/support/harness.sh"

iris_csv "$work/train.csv" numeric
cat > "$work/iris.nn" <<'MODEL'
input 4
dense 16
relu
dense 3
loss cross_entropy
MODEL
data="csv:$work/train.csv"

expect_error 2 "precision fp16: expected fp32 or bf16" \
    "$nabla" train "$work/iris.nn" --data "$data" --precision fp16
expect_error 2 "precision x: expected fp32 or bf16" \
    "$nabla" eval "$work/iris.nn" --weights "$work/none" --data "$data" --precision x
NB_BF16=none expect_error 1 "^nabla train: --precision bf16 needs a CPU with AVX512-BF16 (" \
    "$nabla" train "$work/iris.nn" --data "$data" --precision bf16 --quiet
check '[ ! -e "$work/w.safetensors" ]' "no output after the error"

if NB_BF16=none "$nabla" train "$work/iris.nn" --data "$data" --epochs 1 --quiet \
       > "$work/probe" 2>&1 &&
   ! "$nabla" train "$work/iris.nn" --data "$data" --epochs 1 --precision bf16 --quiet \
       > "$work/probe" 2>&1; then
    echo "no bf16 kernel on this CPU: $(cat "$work/probe")"
    finish
    exit $?
fi

"$nabla" train "$work/iris.nn" --data "$data" --epochs 20 --batch 16 --precision bf16 \
    --out "$work/w.safetensors" --quiet > "$work/train.out" 2>&1
check '[ $? -eq 0 ]' "bf16 training exits 0: $(cat "$work/train.out")"
"$nabla" eval "$work/iris.nn" --weights "$work/w.safetensors" --data "$data" \
    --precision bf16 > "$work/eval.out" 2>&1
check '[ $? -eq 0 ]' "eval --precision bf16 exits 0: $(cat "$work/eval.out")"
acc=$(sed -n 's/.*accuracy \([0-9.]*\)%.*/\1/p' "$work/eval.out")
check 'awk -v a="$acc" "BEGIN { exit !(a >= 90) }"' "bf16 eval accuracy $acc% >= 90%"
"$nabla" predict "$work/iris.nn" --weights "$work/w.safetensors" --input "$data" \
    --precision bf16 --limit 3 > "$work/pred.csv" 2> "$work/pred.err"
check '[ $(wc -l < "$work/pred.csv") -eq 4 ]' "predict --precision bf16: $(cat "$work/pred.err")"
expect_error 1 "trained with --precision bf16, this run asks for fp32" \
    "$nabla" train "$work/iris.nn" --data "$data" --epochs 22 --batch 16 \
    --resume "$work/w.safetensors.ckpt" --quiet
"$nabla" train "$work/iris.nn" --data "$data" --epochs 22 --batch 16 --precision bf16 \
    --resume "$work/w.safetensors.ckpt" --out "$work/w.safetensors" --quiet > "$work/r.out" 2>&1
check '[ $? -eq 0 ]' "resume in bf16 exits 0: $(cat "$work/r.out")"
finish
