#!/bin/sh
# Token models end to end with nabla train, eval, predict (a class per
# position too) and gradcheck: token ids stay the
# whole numbers they are (never scaled nor standardised); a GRU's last state
# learns to recall the first token of a sequence; an LSTM learns a label
# per position (NumPy labels [N, T], ignore_index for the first position);
# a token outside the vocabulary fails with one line naming the sample of
# the batch and the position; an epoch resumed from a mid-epoch checkpoint
# reports the loss and accuracy per position of the whole epoch.
# Usage: test_sequence_cli.sh BUILD_DIR
. "$(dirname "$0")/support/harness.sh"

# the validation accuracy of epoch 40, in percent, from train's output
val_acc() {
    cat "$@" | awk '/^epoch 40\/40/ { for (i = 1; i <= NF; i++) if ($i == "val_acc") print $(i + 1) }' |
        tr -d '%'
}

# 240 sequences of 5 tokens from a vocabulary of 4, a fixed pseudo-random
# sequence; the label is the first token.
awk 'BEGIN {
    print "t0,t1,t2,t3,t4,label";
    s = 4321;
    for (i = 0; i < 240; i++) {
        line = "";
        for (j = 0; j < 5; j++) {
            s = (s * 1103515245 + 12345) % 2147483648;
            v = int(s / 2147483648 * 4);
            if (j == 0) first = v;
            line = line v ",";
        }
        print line first;
    }
}' > "$work/first.csv"
cat > "$work/first.nn" <<'NN'
input 5 tokens=4
embedding 8
gru 16 last=true
dense 4
loss cross_entropy
NN
"$nabla" train "$work/first.nn" --data "csv:$work/first.csv,label=label" --epochs 40 \
    --lr 0.02 --batch 16 --val-split 0.25 --seed 1 --out "$work/first.safetensors" \
    > "$work/first.out" 2> "$work/first.err"
check '[ $? -eq 0 ]' "train exits 0: $(cat "$work/first.err")"
acc=$(val_acc "$work/first.out" "$work/first.err")
check 'awk -v a="$acc" "BEGIN { exit !(a >= 95) }"' \
    "the GRU recalls the first token: val_acc $acc% (want >= 95%): $(tail -2 "$work/first.out")"
"$nabla" predict "$work/first.nn" --weights "$work/first.safetensors" \
    --input "csv:$work/first.csv,label=label" --limit 40 > "$work/pred.csv" 2> "$work/pred.err"
check '[ $? -eq 0 ]' "predict exits 0: $(cat "$work/pred.err")"
right=$(awk -F, 'NR == FNR { if (FNR > 1) want[FNR - 2] = $6; next }
                 FNR > 1 && $2 == want[$1] { n++ } END { print n + 0 }' \
        "$work/first.csv" "$work/pred.csv")
check '[ "$right" -ge 38 ]' "predict recalls the first token of $right of 40 rows"

# nabla gradcheck draws token ids from the vocabulary, not features
"$nabla" gradcheck "$work/first.nn" > "$work/gc.out" 2> "$work/gc.err"
check '[ $? -eq 0 ] && grep -q "^passed" "$work/gc.out"' \
    "gradcheck of a token model passes: $(cat "$work/gc.out" "$work/gc.err")"

# a token outside the vocabulary, at position 2 of one sequence (batches of
# one sample: it is sample 0 of its batch)
awk -F, 'NR == 8 { $3 = 9 } { print }' OFS=, "$work/first.csv" > "$work/bad.csv"
expect_error 1 "embedding '0': sample 0 of the batch, position 2: token 9 is not an integer in \[0, 4)" \
    "$nabla" train "$work/first.nn" --data "csv:$work/bad.csv,label=label" --epochs 1 \
    --batch 1 --quiet --out "$work/bad.safetensors"

# labels per position from NumPy files: the sum of a token and the one
# before it, mod 4; the first position has none (-1, the ignore_index)
npy_i4() { # FILE ROWS COLS, values (one per line) on standard input
    awk -v rows="$2" -v cols="$3" 'BEGIN { ORS = "" }
    { v[n++] = $1 }
    END {
        h = sprintf("{'"'"'descr'"'"': '"'"'<i4'"'"', '"'"'fortran_order'"'"': False, '"'"'shape'"'"': (%d, %d), }", rows, cols);
        while ((10 + length(h) + 1) % 64) h = h " ";
        printf "\223NUMPY\001%c%c%c%s\n", 0, (length(h) + 1) % 256, int((length(h) + 1) / 256), h;
        for (i = 0; i < n; i++) {
            x = v[i] < 0 ? v[i] + 4294967296 : v[i];
            printf "%c%c%c%c", x % 256, int(x / 256) % 256, int(x / 65536) % 256, int(x / 16777216);
        }
    }' > "$1"
}
awk -F, 'NR > 1 { for (j = 1; j <= 5; j++) print $j }' "$work/first.csv" | LC_ALL=C npy_i4 "$work/x.npy" 240 5
awk -F, 'NR > 1 { print -1; for (j = 2; j <= 5; j++) print ($j + $(j - 1)) % 4 }' "$work/first.csv" |
    LC_ALL=C npy_i4 "$work/y.npy" 240 5
cat > "$work/sum.nn" <<'NN'
input 5 tokens=4
embedding 8
lstm 16
dense 4
loss cross_entropy ignore_index=-1
NN
"$nabla" train "$work/sum.nn" --data "npy:$work/x.npy,$work/y.npy" --epochs 40 --lr 0.02 \
    --batch 16 --val-split 0.25 --seed 1 --out "$work/sum.safetensors" \
    > "$work/sum.out" 2> "$work/sum.err"
check '[ $? -eq 0 ]' "train (labels per position) exits 0: $(cat "$work/sum.err")"
acc=$(val_acc "$work/sum.out" "$work/sum.err")
check 'awk -v a="$acc" "BEGIN { exit !(a >= 95) }"' \
    "the LSTM learns every position: val_acc $acc% (want >= 95%): $(tail -2 "$work/sum.out")"
# nabla predict: a class per position, class1 .. class4 (class0 has no label)
"$nabla" predict "$work/sum.nn" --weights "$work/sum.safetensors" --input "npy:$work/x.npy" \
    --limit 40 > "$work/sum_pred.csv" 2> "$work/sum_pred.err"
check '[ $? -eq 0 ] && head -1 "$work/sum_pred.csv" | grep -q "^sample,class0,class1,class2,class3,class4,p0_0,p0_1,"' \
    "predict's header has a class per position: $(head -1 "$work/sum_pred.csv") $(cat "$work/sum_pred.err")"
right=$(awk -F, 'NR == FNR { if (FNR > 1) for (j = 2; j <= 5; j++) want[FNR - 2, j] = ($j + $(j - 1)) % 4; next }
                 FNR > 1 { for (j = 2; j <= 5; j++) n += $(j + 1) == want[$1, j] } END { print n + 0 }' \
        "$work/first.csv" "$work/sum_pred.csv")
check '[ "$right" -ge 152 ]' "predict gets $right of 160 positions right"

# a run stopped with Ctrl-C in the middle of an epoch and resumed logs the
# loss and accuracy per position of a run never stopped (4000 sequences,
# batches of one: 4000 steps per epoch)
awk 'BEGIN { s = 99; for (i = 0; i < 20000; i++) { s = (s * 1103515245 + 12345) % 2147483648;
    print int(s / 2147483648 * 4) } }' > "$work/many.txt"
LC_ALL=C npy_i4 "$work/xm.npy" 4000 5 < "$work/many.txt"
awk '{ print NR % 5 == 1 ? -1 : ($1 + prev) % 4; prev = $1 }' "$work/many.txt" |
    LC_ALL=C npy_i4 "$work/ym.npy" 4000 5
set -- train "$work/sum.nn" --data "npy:$work/xm.npy,$work/ym.npy" --epochs 2 --batch 1 \
    --seed 3 --quiet
"$nabla" "$@" --log "$work/whole.csv" > "$work/whole.out" 2>&1
check '[ $? -eq 0 ]' "the whole run: $(cat "$work/whole.out")"
"$nabla" "$@" --checkpoint "$work/int.ckpt" --checkpoint-every 500 > /dev/null 2> "$work/int.err" &
pid=$!
i=0 # SIGINT once the first checkpoint exists
while [ ! -f "$work/int.ckpt" ] && [ $i -lt 3000 ]; do sleep 0.01; i=$((i + 1)); done
while kill -INT $pid 2> /dev/null; do :; done
wait $pid
at=$(sed -n 's/^interrupted at step \([0-9]*\);.*/\1/p' "$work/int.err")
check '[ -n "$at" ] && [ $((at % 4000)) -ne 0 ]' "stopped in the middle of an epoch: $(cat "$work/int.err")"
"$nabla" "$@" --checkpoint "$work/int.ckpt" --resume "$work/int.ckpt" --log "$work/resumed.csv" \
    > /dev/null 2> "$work/err"
check '[ $? -eq 0 ]' "resumed: $(cat "$work/err")"
check '[ "$(cut -d, -f1-5 "$work/whole.csv")" = "$(cut -d, -f1-5 "$work/resumed.csv")" ]' \
    "loss and accuracy of the resumed epoch: $(cat "$work/whole.csv") vs $(cat "$work/resumed.csv")"

# nabla eval: loss and accuracy per position; the per-class report is refused
"$nabla" eval "$work/sum.nn" --weights "$work/sum.safetensors" --data "npy:$work/x.npy,$work/y.npy" \
    > "$work/eval.out" 2> "$work/eval.err"
check '[ $? -eq 0 ]' "eval exits 0: $(cat "$work/eval.err")"
acc=$(sed -n 's/^loss [0-9.]*, accuracy \([0-9.]*\)% (240 samples)$/\1/p' "$work/eval.out")
check 'awk -v a="$acc" "BEGIN { exit !(a >= 95) }"' \
    "eval's accuracy per position: '$acc' from $(cat "$work/eval.out")"
expect_error 2 "report: a model with a class per position gives its loss and accuracy only" \
    "$nabla" eval "$work/sum.nn" --weights "$work/sum.safetensors" \
    --data "npy:$work/x.npy,$work/y.npy" --report "$work/r.json"

finish
