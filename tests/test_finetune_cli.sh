#!/bin/sh
# nabla train --init / --init-skip / --freeze end to end: fashion_mlp's
# layers trained on ten classes start a five-class model with a fresh head;
# the frozen layers' bytes in the result are those of the starting file.
# Usage: test_finetune_cli.sh BUILD_DIR (run from the source tree).
. "$(dirname "$0")/support/harness.sh"

# Synthetic 28x28 "images" as CSV rows: class c is a random binary pattern
# plus noise.  $1 rows, $2 classes, $3 seed.
images() {
    awk -v n="$1" -v classes="$2" -v seed="$3" 'BEGIN { srand(seed);
        for (c = 0; c < classes; c++) for (j = 0; j < 784; j++) p[c, j] = rand() < 0.3;
        h = ""; for (j = 0; j < 784; j++) h = h "p" j ","; print h "label";
        for (i = 0; i < n; i++) { c = i % classes; line = "";
            for (j = 0; j < 784; j++) line = line sprintf("%.2f,", p[c, j] * 0.6 + rand() * 0.4);
            print line c } }'
}

# The raw bytes of tensor $2 of safetensors file $1 on stdout: 8 bytes of
# header length, the JSON header, then the data at the tensor's offsets.
tensor_bytes() {
    hlen=$(od -An -t u8 -N8 "$1" | tr -d ' ')
    range=$(head -c $((8 + hlen)) "$1" | tail -c "$hlen" |
        sed -n "s/.*\"$2\":{[^}]*\"data_offsets\":\[\([0-9]*\),\([0-9]*\)\].*/\1 \2/p")
    [ -n "$range" ] || { echo "no tensor $2 in $1" >&2; return 1; }
    set -- "$1" $range
    tail -c +$((8 + hlen + $2 + 1)) "$1" | head -c $(($3 - $2))
}

images 250 10 5 > "$work/ten.csv"
images 200 5 7 > "$work/five.csv"
sed 's/^dense 10$/dense 5/' models/fashion_mlp.nn > "$work/five.nn"
check 'grep -q "^dense 5$" "$work/five.nn"' "five-class model written"
"$nabla" train models/fashion_mlp.nn --data "csv:$work/ten.csv,label=label" --epochs 2 \
    --batch 32 --quiet --out "$work/base.safetensors" 2> "$work/err"
check '[ $? -eq 0 ]' "base model trained: $(cat "$work/err")"

# fine-tune: a fresh 5-class head, the first two layers frozen
set -- train "$work/five.nn" --data "csv:$work/five.csv,label=label" --batch 32 --freeze '1.*,3.*'
"$nabla" "$@" --epochs 4 --init "$work/base.safetensors" --init-skip '5.*' \
    --out "$work/ft.safetensors" --log "$work/ft.csv" > "$work/out" 2> "$work/err"
check '[ $? -eq 0 ]' "fine-tuning ran: $(cat "$work/err")"
check 'grep -q "freeze: training 645 of 234501 parameters" "$work/err"' \
    "says how many parameters train (5x128 + 5)"
first=$(awk -F, 'NR == 2 { print $4 }' "$work/ft.csv")
last=$(awk -F, 'END { print $4 }' "$work/ft.csv")
check 'awk -v a="$first" -v b="$last" "BEGIN { exit !(b < a) }"' "loss falls: $first -> $last"
for t in 1.weight 1.bias 3.weight 3.bias; do
    tensor_bytes "$work/base.safetensors" "$t" > "$work/a.bin"
    tensor_bytes "$work/ft.safetensors" "$t" > "$work/b.bin"
    check '[ -s "$work/a.bin" ] && cmp -s "$work/a.bin" "$work/b.bin"' "frozen $t unchanged"
done
tensor_bytes "$work/ft.safetensors" 5.weight > "$work/head.bin"
check '[ $(wc -c < "$work/head.bin") -eq $((5 * 128 * 4)) ]' "the head has 5 rows"

# without --freeze everything trains from the given weights
"$nabla" train "$work/five.nn" --data "csv:$work/five.csv,label=label" --epochs 1 --quiet \
    --init "$work/base.safetensors" --init-skip '5.*' --out "$work/all.safetensors" 2> "$work/err"
tensor_bytes "$work/base.safetensors" 1.weight > "$work/a.bin"
tensor_bytes "$work/all.safetensors" 1.weight > "$work/b.bin"
check '! cmp -s "$work/a.bin" "$work/b.bin"' "unfrozen layers train"

# a checkpoint's weights start a run with other settings
"$nabla" train "$work/five.nn" --data "csv:$work/five.csv,label=label" --epochs 1 --quiet \
    --init "$work/ft.safetensors.ckpt" --optim sgd --batch 8 --freeze '1.*' \
    --out "$work/from_ckpt.safetensors" 2> "$work/err"
check '[ $? -eq 0 ]' "--init from a checkpoint: $(cat "$work/err")"
tensor_bytes "$work/ft.safetensors" 1.weight > "$work/a.bin"
tensor_bytes "$work/from_ckpt.safetensors" 1.weight > "$work/b.bin"
check 'cmp -s "$work/a.bin" "$work/b.bin"' "checkpoint weights loaded, 1.weight frozen"

# resuming keeps --freeze; the checkpoint remembers it
cp "$work/ft.safetensors.ckpt" "$work/resume.ckpt"
"$nabla" "$@" --epochs 6 --resume "$work/resume.ckpt" --out "$work/resumed.safetensors" \
    --checkpoint "$work/resume.ckpt" --quiet > "$work/out" 2> "$work/err"
check '[ $? -eq 0 ]' "resumed with the same --freeze: $(cat "$work/err")"
tensor_bytes "$work/base.safetensors" 3.weight > "$work/a.bin"
tensor_bytes "$work/resumed.safetensors" 3.weight > "$work/b.bin"
check 'cmp -s "$work/a.bin" "$work/b.bin"' "frozen 3.weight unchanged after resuming"
expect_error 2 "\-\-init starts a run; \-\-resume continues one" "$nabla" "$@" --epochs 5 \
    --init "$work/base.safetensors" --resume "$work/ft.safetensors.ckpt"
expect_error 1 "made with --freeze '1\.\*,3\.\*', this run asks for no --freeze" "$nabla" train \
    "$work/five.nn" --data "csv:$work/five.csv,label=label" --epochs 5 --batch 32 \
    --resume "$work/ft.safetensors.ckpt" --checkpoint "$work/ft.safetensors.ckpt"

# errors name the tensor, the shapes and the flag
d="csv:$work/five.csv,label=label"
expect_error 1 "tensor '5.weight' has shape \[10, 128\] but the graph's parameter is \[5, 128\] (--init-skip" \
    "$nabla" train "$work/five.nn" --data "$d" --init "$work/base.safetensors"
expect_error 2 "\-\-init-skip '9\.\*' matches no parameter of .*five.nn (they are: 1.weight, 1.bias, 3.weight" \
    "$nabla" train "$work/five.nn" --data "$d" --init "$work/base.safetensors" --init-skip '9.*'
expect_error 2 "\-\-freeze 'fc\*' matches no parameter" \
    "$nabla" train "$work/five.nn" --data "$d" --freeze '1.*,fc*'
expect_error 2 "\-\-freeze given 2 times; list several patterns comma-separated" \
    "$nabla" train "$work/five.nn" --data "$d" --freeze '1.*' --freeze='3.*'
expect_error 2 "\-\-freeze: an empty pattern" "$nabla" train "$work/five.nn" --data "$d" --freeze '1.*,'
expect_error 2 "\-\-freeze freezes every parameter" "$nabla" train "$work/five.nn" --data "$d" --freeze '*'
expect_error 2 "\-\-out .*base.safetensors is the same file as \-\-init" "$nabla" train "$work/five.nn" \
    --data "$d" --init "$work/base.safetensors" --init-skip '5.*' --out "$work/base.safetensors"
expect_error 2 "\-\-init-skip needs \-\-init FILE" "$nabla" train "$work/five.nn" --data "$d" --init-skip '5.*'
expect_error 1 "no_such.safetensors" "$nabla" train "$work/five.nn" --data "$d" \
    --init "$work/no_such.safetensors"
printf 'input 1 28 28\nflatten\ndense 256\nrelu\ndense 128\nrelu\ndense 64\nrelu\ndense 5\nloss cross_entropy\n' \
    > "$work/deeper.nn"
expect_error 1 "parameter '7.weight' \[5, 64\] is missing from the file (--init-skip" "$nabla" train \
    "$work/deeper.nn" --data "$d" --init "$work/base.safetensors" --init-skip '5.*'
finish
