#!/bin/sh
# Model-file variables (--set) and nabla tune, end to end:
#  - --set NAME=VALUE in train, info and eval; the errors of a missing value,
#    an unknown name and a bad form; --resume with other values is refused;
#  - a search of 9 trials (eta 3, epochs 1, 3, 9): the CSV's rows, the epochs
#    ASHA spends (9 x 1 + 3 x 2 + 1 x 6), promotion by resuming the trial's
#    checkpoint (its epochs continue), the same metrics as plain random search
#    of the same configurations, the best weights usable by eval;
#  - a search killed (SIGKILL) or interrupted (SIGINT, in the middle of a
#    rung) and resumed gives the same CSV and the same best weights;
#  - bad search files and output directories give one clear error.
# Usage: test_tune_cli.sh BUILD_DIR
. "$(dirname "$0")/support/harness.sh"

iris_csv "$work/iris.csv" numeric
. "$(dirname "$0")/support/tune.sh"
tune_model "$work/m.nn"

# ------------------------------------------------------------ --set
"$nabla" info "$work/m.nn" --set width=5 > "$work/info.out" 2>&1
check 'grep -q "^parameters: 43 " "$work/info.out"' "info --set width=5: $(cat "$work/info.out")"
"$nabla" train "$work/m.nn" --data "csv:$work/iris.csv" --set width=5 --epochs 2 --quiet \
    --out "$work/w5.safetensors" 2> "$work/err"
check '[ $? -eq 0 ]' "train --set width=5: $(cat "$work/err")"
"$nabla" eval "$work/m.nn" --set width=5 --weights "$work/w5.safetensors" \
    --data "csv:$work/iris.csv" > "$work/out" 2> "$work/err"
check '[ $? -eq 0 ]' "eval --set width=5: $(cat "$work/err")"
expect_error 1 "" "$nabla" eval "$work/m.nn" --weights "$work/w5.safetensors" \
    --data "csv:$work/iris.csv"
sed 's/:-8//' "$work/m.nn" > "$work/nodefault.nn"
expect_error 1 "nodefault.nn:2: variable 'width' has no value: set it (nabla ... --set width=VALUE)" \
    "$nabla" info "$work/nodefault.nn"
expect_error 1 "--set: .*m.nn: the model has no variable 'wdith' (its variables: width)" \
    "$nabla" train "$work/m.nn" --data "csv:$work/iris.csv" --set wdith=3
expect_error 2 "--set width: expected NAME=VALUE" "$nabla" info "$work/m.nn" --set width
expect_error 1 "checkpoint was saved for a different model" "$nabla" train "$work/m.nn" \
    --data "csv:$work/iris.csv" --set width=6 --epochs 3 --quiet \
    --checkpoint "$work/w5.safetensors.ckpt" --resume "$work/w5.safetensors.ckpt"

# ------------------------------------------------------------ a search
search "$work/s.json" "$work/iris.csv"
"$nabla" tune "$work/s.json" --out "$work/asha" > "$work/asha.out" 2> "$work/asha.err"
check '[ $? -eq 0 ]' "tune: $(cat "$work/asha.err")"
csv=$work/asha/trials.csv
check '[ "$(head -n 1 "$csv")" = "trial,status,seed,epochs,lr,batch,optim,width,val_acc@1,val_acc@3,val_acc@9" ]' \
    "trials.csv header: $(head -n 1 "$csv")"
check '[ "$(grep -c . "$csv")" -eq 10 ]' "trials.csv has 9 trials: $(cat "$csv")"
# every trial at rung 1, the best third of them at 3, the best of those at 9
check '[ "$(cut -d, -f4 "$csv" | sort | uniq -c | tr -s " " | tr "\n" ";")" = " 6 1; 2 3; 1 9; 1 epochs;" ]' \
    "epochs per trial: $(cut -d, -f2,4 "$csv" | tr "\n" " ")"
check 'grep -q "; 21 epochs trained in all (9 trials x 9 epochs: 81)" "$work/asha.out"' \
    "ASHA's epochs: $(tail -n 2 "$work/asha.out")"
check '[ "$(grep -c "^ *[0-9]*[* ] \(done\|stopped\)" "$work/asha.out")" -eq 9 ]' \
    "the table: $(cat "$work/asha.out")"
# the trial at 9 epochs was resumed twice: its epochs continue, 1 to 9
top=$(awk -F, '$4 == 9 { printf "%03d", $1 }' "$csv")
check 'grep -q "resuming .*/$top.ckpt at epoch 2, " "$work/asha/trials/$top.out" &&
       grep -q "resuming .*/$top.ckpt at epoch 4, " "$work/asha/trials/$top.out"' \
    "trial $top resumed at epochs 2 and 4: $(grep resuming "$work/asha/trials/$top.out")"
check '[ "$(grep -c "^epoch 1/" "$work/asha/trials/$top.out")" -eq 1 ] &&
       [ "$(cut -d, -f1 "$work/asha/trials/$top.csv" | tr "\n" " ")" = "epoch 1 2 3 4 5 6 7 8 9 " ]' \
    "trial $top trained each epoch once: $(cat "$work/asha/trials/$top.csv")"
check 'grep -q "^<svg" "$work/asha/tune.svg" && [ "$(grep -c "<polyline" "$work/asha/tune.svg")" -ge 9 ]' \
    "tune.svg draws the trials"
# the best weights with the best trial's width
width=$(awk -F, '$4 == 9 { print $8 }' "$csv")
"$nabla" eval "$work/m.nn" --set "width=$width" --weights "$work/asha/best.safetensors" \
    --data "csv:$work/iris.csv" > "$work/out" 2> "$work/err"
check '[ $? -eq 0 ]' "eval of best.safetensors (width $width): $(cat "$work/err")"

# plain random search: the same configurations, each to 9 epochs; where ASHA
# stopped a trial, its metric is random search's at that epoch
"$nabla" tune "$work/s.json" --out "$work/random" --strategy random --jobs 2 --quiet \
    > "$work/random.out" 2> "$work/err"
check '[ $? -eq 0 ]' "tune --strategy random: $(cat "$work/err")"
check 'grep -q "; 81 epochs trained in all" "$work/random.out"' "random search's epochs"
check '[ "$(cut -d, -f1,3,5-8 "$csv")" = "$(cut -d, -f1,3,5-8 "$work/random/trials.csv")" ]' \
    "the same configurations and seeds"
same=$(awk -F, 'NR == FNR { for (k = 9; k <= 11; k++) a[FNR, k] = $k; next }
    FNR > 1 { for (k = 9; k <= 11; k++) if (a[FNR, k] != "" && a[FNR, k] != $k) bad++ }
    END { print bad + 0 }' "$csv" "$work/random/trials.csv")
check '[ "$same" -eq 0 ]' "ASHA's metrics differ from random search's at $same rungs"

# ------------------------------------------------------------ kill and resume
awk 'BEGIN { s = 99; print "a,b,c,d,label";
    for (i = 0; i < 6000; i++) { c = i % 3; line = "";
        for (j = 0; j < 4; j++) { s = (s * 1103515245 + 12345) % 2147483648;
            line = line (j ? "," : "") sprintf("%.4f", c * (j + 1) / 3 + (s / 2147483648 - 0.5) * 4) }
        print line "," c } }' > "$work/big.csv"
search "$work/b.json" "$work/big.csv"
"$nabla" tune "$work/b.json" --out "$work/whole" --quiet > "$work/whole.out" 2> "$work/err"
check '[ $? -eq 0 ]' "tune on big.csv: $(cat "$work/err")"
wait_for() { # wait_for PATTERN FILE: until a line of FILE matches (at most 20 s)
    i=0
    while [ $i -lt 2000 ] && ! grep -q "$1" "$2" 2>/dev/null; do
        sleep 0.01
        i=$((i + 1))
    done
}
"$nabla" tune "$work/b.json" --out "$work/killed" --quiet > "$work/out" 2> "$work/err" &
pid=$!
wait_for "^done 4 " "$work/killed/journal"
kill -KILL $pid
wait $pid
for lock in "$work/killed/trials/"*.ckpt.lock; do # its trial ends with it
    child=$(cat "$lock" 2>/dev/null)
    i=0
    while [ -n "$child" ] && [ $i -lt 500 ] && kill -0 "$child" 2>/dev/null; do
        sleep 0.01
        i=$((i + 1))
    done
done
"$nabla" tune "$work/b.json" --out "$work/killed" --resume --quiet > "$work/out" 2> "$work/err"
check '[ $? -eq 0 ] && cmp -s "$work/whole/trials.csv" "$work/killed/trials.csv" &&
       cmp -s "$work/whole/best.safetensors" "$work/killed/best.safetensors"' \
    "killed and resumed: $(cat "$work/err"; diff "$work/whole/trials.csv" "$work/killed/trials.csv")"
check '[ "$(grep -c "^start 1 0" "$work/killed/journal")" -eq 1 ]' "a finished trial is not run again"
# Ctrl-C while a trial trains its last rung: the trial checkpoints, the search
# stops with 130, and --resume finishes that trial from its checkpoint
"$nabla" tune "$work/b.json" --out "$work/int" --quiet > "$work/out" 2> "$work/int.err" &
pid=$!
wait_for "^start [0-9]* 2" "$work/int/journal"
kill -INT $pid
wait $pid
rc=$?
check '[ $rc -eq 130 ] && grep -q "interrupted; continue with: nabla tune .*--resume" "$work/int.err"' \
    "interrupted search: exit $rc, $(cat "$work/int.err")"
"$nabla" tune "$work/b.json" --out "$work/int" --resume --quiet > "$work/out" 2> "$work/err"
check '[ $? -eq 0 ] && cmp -s "$work/whole/trials.csv" "$work/int/trials.csv" &&
       cmp -s "$work/whole/best.safetensors" "$work/int/best.safetensors"' \
    "interrupted and resumed: $(cat "$work/err"; diff "$work/whole/trials.csv" "$work/int/trials.csv")"

# A search stopped while its best trial trained from epoch 3 towards 9, with
# the trial's checkpoint at epoch 5 (made here by nabla train with the
# trial's settings): --resume continues that checkpoint, not epoch 3 or 1.
cp -R "$work/whole" "$work/mid"
rm "$work/mid/best.safetensors" "$work/mid/trials.csv"
t=$(awk '/^start [0-9]* 2$/ { print $2 }' "$work/mid/journal")
sed -i "/^start $t 2\$/q" "$work/mid/journal"
tt=$(printf %03d "$t")
rm "$work/mid/trials/$tt".*
set -- $(awk -F, -v t="$t" '$1 == t { print $3, $5, $6, $7, $8 }' "$work/whole/trials.csv")
"$nabla" train "$work/m.nn" --data "csv:$work/big.csv" --val-split 0.2 --epochs 5 --seed "$1" \
    --lr "$2" --batch "$3" --optim "$4" --set "width=$5" --threads 1 --quiet \
    --checkpoint "$work/mid/trials/$tt.ckpt" --log "$work/mid/trials/$tt.csv" 2> "$work/err"
check '[ $? -eq 0 ]' "trial $t to epoch 5: $(cat "$work/err")"
"$nabla" tune "$work/b.json" --out "$work/mid" --resume --quiet > "$work/out" 2> "$work/err"
check '[ $? -eq 0 ] && cmp -s "$work/whole/trials.csv" "$work/mid/trials.csv" &&
       cmp -s "$work/whole/best.safetensors" "$work/mid/best.safetensors"' \
    "resumed in the middle of a rung: $(cat "$work/err"; diff "$work/whole/trials.csv" "$work/mid/trials.csv")"
check 'grep -q "resuming .*/$tt.ckpt at epoch 6, " "$work/mid/trials/$tt.out" &&
       [ "$(grep -c "^epoch [1-5]/" "$work/mid/trials/$tt.out")" -eq 0 ]' \
    "trial $t went on from epoch 6: $(cat "$work/mid/trials/$tt.out")"

# ------------------------------------------------------------ errors
"$nabla" tune --help > "$work/out" 2>&1
check '[ $? -eq 0 ] && grep -q "^usage: nabla tune SEARCH.json --out DIR" "$work/out"' "tune --help"
s=$work/bad.json
printf '{"modle": "m.nn"}' > "$s"
expect_error 1 "bad.json: modle: unknown key (known: model, data, " "$nabla" tune "$s" --out "$work/e"
search "$s" "$work/iris.csv"
sed 's/"choice": \[16, 32\]/"choice": []/' "$s" > "$work/b2.json"
expect_error 1 "b2.json: space.batch: the choice list is empty" "$nabla" tune "$work/b2.json" --out "$work/e"
sed 's/\[0.001, 0.1\]/[0, 0.1]/' "$s" > "$work/b2.json"
expect_error 1 "b2.json: space.lr: log_uniform bounds must be above 0" "$nabla" tune "$work/b2.json" --out "$work/e"
sed 's/"log_uniform": \[0.001, 0.1\]/"uniform": [-1, 0.1]/' "$s" > "$work/b2.json"
expect_error 1 "b2.json: space.lr: a learning rate must be above 0" "$nabla" tune "$work/b2.json" --out "$work/e"
search "$s" "$work/iris.csv" ', "depth": {"choice": [1, 2]}'
expect_error 1 "bad.json: space: .*m.nn: the model has no variable 'depth' (its variables: width)" \
    "$nabla" tune "$s" --out "$work/e"
search "$s" "$work/iris.csv" ', "lr": {"choice": [1]}'
expect_error 1 "bad.json: space: 'lr' given twice" "$nabla" tune "$s" --out "$work/e"
search "$s" "$work/iris.csv" ', "dropout": {"normal": [0, 1]}'
expect_error 1 "bad.json: space.dropout: unknown distribution 'normal'" "$nabla" tune "$s" --out "$work/e"
printf '{"model": "m.nn",\n "trials": 3,,}' > "$s"
expect_error 1 "bad.json:2: not valid JSON" "$nabla" tune "$s" --out "$work/e"
search "$s" "$work/iris.csv"
sed 's/"val_split": 0.2, //' "$s" > "$work/b2.json"
expect_error 1 "the metric needs validation data" "$nabla" tune "$work/b2.json" --out "$work/e"
check '[ ! -e "$work/e" ]' "no output directory after a bad search file"
expect_error 2 "--strategy grid: expected asha or random" "$nabla" tune "$s" --out "$work/e" --strategy grid
expect_error 2 "--out DIR is required" "$nabla" tune "$s"
mkdir "$work/full" && : > "$work/full/keep.txt"
expect_error 1 "--out .*full: not empty; choose a new or empty directory" "$nabla" tune "$s" --out "$work/full"
expect_error 1 "--out .*iris.csv: not a directory" "$nabla" tune "$s" --out "$work/iris.csv"
expect_error 1 "--out .*asha holds a search already: continue it with --resume" \
    "$nabla" tune "$work/s.json" --out "$work/asha"
expect_error 1 "--resume: .*full holds no search" "$nabla" tune "$s" --out "$work/full" --resume
sed 's/"seed": 3/"seed": 4/' "$work/s.json" > "$s"
expect_error 1 "--resume: .*bad.json differs from the search file this search started with" \
    "$nabla" tune "$s" --out "$work/asha" --resume
expect_error 1 "--resume: .*journal is not a journal of a search with --strategy random" \
    "$nabla" tune "$work/s.json" --out "$work/asha" --resume --strategy random
check '[ "$(ls "$work/full")" = keep.txt ] && [ ! -s "$work/full/keep.txt" ]' \
    "a refused directory is left alone"
finish
