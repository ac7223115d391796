#!/bin/sh
# nabla train --early-stop / --keep best end to end, on a small problem that
# overfits (100 samples of 8 features, 20% of the labels flipped, a 68k-parameter
# MLP): validation loss is lowest at some epoch k and rises after it.
#  - --early-stop P stops at epoch k + P, and --out holds the weights of epoch
#    k, byte for byte those of a plain run of k epochs;
#  - a run killed (SIGKILL) in the patience window and resumed stops at the
#    same epoch with the same --out bytes;
#  - --val DATA does the same as the held-out split given as a file;
#  - the usage errors; a run without --out says so once.
# Usage: test_earlystop_cli.sh BUILD_DIR
. "$(dirname "$0")/support/harness.sh"

# label: the sign of the first two features' sum, 20% flipped (a fixed LCG)
awk 'BEGIN {
    s = 7;
    for (i = 0; i < 100; i++) {
        line = ""; sum = 0;
        for (j = 0; j < 8; j++) {
            s = (s * 1103515245 + 12345) % 2147483648;
            x = 2 * s / 2147483648 - 1;
            if (j < 2) sum += x;
            line = line sprintf("%.4f,", x);
        }
        s = (s * 1103515245 + 12345) % 2147483648;
        y = sum > 0;
        if (s / 2147483648 < 0.2) y = 1 - y;
        print line y;
    }
}' > "$work/d.csv"
cat > "$work/m.nn" <<'EOF2'
input 8
dense 256
relu
dense 256
relu
dense 2
loss cross_entropy
EOF2
P=4
set -- train "$work/m.nn" --data "csv:$work/d.csv" --val-split 0.5 --batch 5 --lr 0.0002 \
    --seed 0 --threads 1
val_loss() { awk -F, -v e="$2" 'NR > 1 && $1 == e { print $6 }' "$1"; }

# --- the full run: where validation loss is lowest (k), and that it rises after
"$nabla" "$@" --epochs 20 --keep last --quiet --log "$work/full.csv" 2> "$work/full.err"
check '[ $? -eq 0 ]' "full run: $(cat "$work/full.err")"
k=$(awk -F, 'NR > 1 && (best == "" || $6 < best) { best = $6; k = $1 } END { print k }' \
    "$work/full.csv")
echo "validation loss lowest at epoch $k of 20: $(val_loss "$work/full.csv" "$k")"
check '[ "$k" -ge 2 ] && [ $((k + P)) -lt 20 ]' "k = $k: the problem does not overfit as meant"
rises=$(awk -F, -v k="$k" -v p=$P 'NR > 1 && $1 == k { b = $6 }
    NR > 1 && $1 > k && $1 <= k + p && $6 > b { n++ } END { print n + 0 }' "$work/full.csv")
check '[ "$rises" -eq $P ]' "validation loss above epoch $k's in each of the $P epochs after"

# --- early stopping: stops at k + P, keeps epoch k's weights
"$nabla" "$@" --epochs 20 --early-stop $P --out "$work/es.st" --log "$work/es.csv" \
    2> "$work/es.err"
check '[ $? -eq 0 ]' "early-stopping run: $(cat "$work/es.err")"
stop=$(tail -n 1 "$work/es.csv" | cut -d, -f1)
echo "--early-stop $P stopped after epoch $stop"
check '[ "$stop" = $((k + P)) ]' "stopped after epoch $stop, not $((k + P))"
check 'grep -q "early stop: val_loss has not improved for $P epochs since epoch $k" "$work/es.err"' \
    "the stop is explained: $(cat "$work/es.err")"
check 'grep -q "^weights of epoch $k (the best, val_loss [0-9.]*) saved to $work/es.st$" "$work/es.err"' \
    "the last line names the epoch saved: $(tail -n 1 "$work/es.err")"
"$nabla" "$@" --epochs "$k" --keep last --out "$work/plain.st" --quiet
check 'cmp -s "$work/es.st" "$work/plain.st"' "--out of the early stop = a plain run of $k epochs"
"$nabla" "$@" --epochs "$((k + P))" --keep last --out "$work/last.st" --quiet
check '! cmp -s "$work/es.st" "$work/last.st"' "--keep best differs from the last epoch's weights"
"$nabla" "$@" --epochs 20 --early-stop $P --keep last --out "$work/eslast.st" --quiet
check 'cmp -s "$work/eslast.st" "$work/last.st"' "--keep last: the weights of epoch $((k + P))"

# --- SIGKILL in the patience window, then --resume: the same end.  The run
# checkpoints every step; it is frozen (SIGSTOP) to read its checkpoint's
# epoch, and killed once that epoch is in [k, k + P - 1].
"$nabla" "$@" --epochs 20 --early-stop $P --checkpoint-every 1 --out "$work/cut.st" --quiet &
pid=$!
at=""
while kill -STOP $pid 2> /dev/null; do
    e=$(grep -ao '"nabla.epoch":"[0-9]*"' "$work/cut.st.ckpt" 2> /dev/null | tr -dc 0-9)
    if [ -n "$e" ] && [ "$e" -ge "$k" ]; then
        kill -9 $pid
        at=$e
        break
    fi
    kill -CONT $pid
    sleep 0.01
done
wait $pid 2> /dev/null
echo "killed with the checkpoint at epoch ${at:-none}"
check '[ -n "$at" ] && [ "$at" -lt $((k + P)) ]' "killed in the patience window (at epoch ${at:-none})"
check '[ ! -e "$work/cut.st" ]' "the killed run wrote no --out"
"$nabla" "$@" --epochs 20 --early-stop $P --checkpoint-every 1 --out "$work/cut.st" \
    --log "$work/cut.csv" --resume "$work/cut.st.ckpt" 2> "$work/cut.err"
check '[ $? -eq 0 ]' "resume: $(cat "$work/cut.err")"
check '[ "$(tail -n 1 "$work/cut.csv" | cut -d, -f1)" = "$stop" ]' "the resumed run stops after epoch $stop"
check 'cmp -s "$work/es.st" "$work/cut.st"' "the resumed run's --out = the uninterrupted run's"
check "[ \"\$(cut -d, -f1-7 \"\$work/es.csv\")\" = \"\$(cut -d, -f1-7 \"\$work/cut.csv\")\" ]" "the resumed run's log (but its times) = the uninterrupted run's"
# resuming the finished run writes the same outputs again
rm "$work/cut.st"
"$nabla" "$@" --epochs 20 --early-stop $P --checkpoint-every 1 --out "$work/cut.st" \
    --resume "$work/cut.st.ckpt" 2> "$work/again.err"
check '[ $? -eq 0 ] && grep -q "stopped early after epoch $stop" "$work/again.err"' \
    "resuming a stopped run: $(cat "$work/again.err")"
check 'cmp -s "$work/es.st" "$work/cut.st"' "... writes the same --out"
# other early-stopping settings cannot resume it
expect_error 1 "the checkpoint was made with validation settings 'monitor=val_loss patience=$P" \
    "$nabla" "$@" --epochs 20 --early-stop 2 --out "$work/cut.st" --resume "$work/cut.st.ckpt"

# --- --val DATA: the same held-out half given as a file
head -n 50 "$work/d.csv" > "$work/a.csv"
tail -n 50 "$work/d.csv" > "$work/b.csv"
"$nabla" train "$work/m.nn" --data "csv:$work/a.csv" --val "csv:$work/b.csv" --epochs 20 \
    --early-stop 2 --batch 5 --out "$work/v.st" --log "$work/v.csv" 2> "$work/v.err"
check '[ $? -eq 0 ] && grep -q "50 training samples, 50 validation" "$work/v.err"' \
    "--val: $(cat "$work/v.err")"
vk=$(awk -F, 'NR > 1 && (best == "" || $6 < best) { best = $6; k = $1 } END { print k }' "$work/v.csv")
check 'grep -q "^weights of epoch $vk (the best" "$work/v.err"' "--val keeps its best epoch $vk"

# --- --monitor val_acc: the epoch of the best validation accuracy (the first
# of equals, as a later equal value is no improvement)
"$nabla" "$@" --epochs 20 --monitor val_acc --early-stop $P --out "$work/acc.st" \
    --log "$work/acc.csv" 2> "$work/acc.err"
ak=$(awk -F, 'NR > 1 && (best == "" || $7 > best) { best = $7; k = $1 } END { print k }' \
    "$work/acc.csv")
alast=$(tail -n 1 "$work/acc.csv" | cut -d, -f1)
check '[ "$alast" = $((ak + P)) ] && grep -q "^weights of epoch $ak (the best, val_acc [0-9.]*%)" "$work/acc.err"' \
    "--monitor val_acc: best epoch $ak, stopped after $alast: $(tail -n 2 "$work/acc.err")"

# --- usage errors
m="$work/m.nn"
d="csv:$work/d.csv"
expect_error 2 "--early-stop needs validation data (--val SOURCE or --val-split F)" \
    "$nabla" train "$m" --data "$d" --early-stop 3
expect_error 2 "--monitor needs validation data" "$nabla" train "$m" --data "$d" --monitor val_acc
expect_error 2 "--min-delta needs validation data" "$nabla" train "$m" --data "$d" --min-delta 0.1
expect_error 2 "--keep best needs validation data" "$nabla" train "$m" --data "$d" --keep best
expect_error 2 "--monitor val_los: val_loss or val_acc expected" \
    "$nabla" train "$m" --data "$d" --val-split 0.2 --monitor val_los
expect_error 2 "--keep first: best or last expected" \
    "$nabla" train "$m" --data "$d" --val-split 0.2 --keep first
expect_error 2 "--early-stop" "$nabla" train "$m" --data "$d" --val-split 0.2 --early-stop 0
expect_error 2 "--min-delta" "$nabla" train "$m" --data "$d" --val-split 0.2 --min-delta -1
expect_error 2 "--val and --val-split exclude each other" \
    "$nabla" train "$m" --data "$d" --val "$d" --val-split 0.2
printf 'input 8\ndense 1\nloss mse\n' > "$work/reg.nn"
expect_error 2 "--monitor val_acc: $work/reg.nn has no class output" \
    "$nabla" train "$work/reg.nn" --data "csv:$work/d.csv" --val-split 0.2 --monitor val_acc
printf '1,2,3\n' > "$work/narrow.csv"
expect_error 1 "narrow.csv" "$nabla" train "$m" --data "$d" --val "csv:$work/narrow.csv" --quiet

# --- without --out: said once
"$nabla" train "$m" --data "$d" --epochs 2 --batch 50 2> "$work/noout.err"
check '[ "$(grep -c "weights will not be saved" "$work/noout.err")" -eq 1 ]' \
    "a run without --out says once that its weights are not saved: $(cat "$work/noout.err")"
"$nabla" train "$m" --data "$d" --epochs 2 --batch 50 --quiet 2> "$work/noout.err"
check '[ ! -s "$work/noout.err" ]' "... but not with --quiet"
finish
