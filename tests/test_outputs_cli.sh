#!/bin/sh
# The files nabla writes cannot destroy anything: an output is a regular file
# or a new path (never a device, a FIFO, a directory or a link to one), never
# an input or another output, and never written by two runs at once; logs and
# plots are replaced whole; a run killed while writing its outputs finishes
# them on --resume.
# Usage: test_outputs_cli.sh BUILD_DIR
. "$(dirname "$0")/support/harness.sh"

iris_csv "$work/train.csv" numeric # 3 classes of 4 features, labels 0-2
cat > "$work/m.nn" <<'EOF'
input 4
dense 16
relu
dense 3
loss cross_entropy
EOF
data="csv:$work/train.csv"

train() { "$nabla" train "$work/m.nn" --data "$data" --epochs 2 --batch 32 --quiet "$@"; }

# --- only a regular file or a new path
mkfifo "$work/fifo"
mkdir "$work/dir"
ln -s "$work/fifo" "$work/link"
ln -s /dev/null "$work/devlink"
for flag in out checkpoint log plot diagnose-log; do
    expect_error 1 "--$flag /dev/null: is a character device; an output must be a regular file" \
        train --$flag /dev/null
    expect_error 1 "--$flag $work/fifo: is a FIFO" train --$flag "$work/fifo"
    expect_error 1 "--$flag $work/dir: is a directory" train --$flag "$work/dir"
    expect_error 1 "--$flag $work/link: is a symbolic link to a FIFO" train --$flag "$work/link"
    expect_error 1 "--$flag $work/devlink: is a symbolic link to a character device" \
        train --$flag "$work/devlink"
done
check '[ -c /dev/null ] && [ -p "$work/fifo" ] && [ -d "$work/dir" ] && [ -L "$work/link" ]' \
    "the device, FIFO, directory and link are as they were"
check '[ -z "$(ls -A "$work/dir")" ]' "nothing written into the directory"

# --- no output is an input or another output
cp "$work/train.csv" "$work/train.keep"
cp "$work/m.nn" "$work/m.keep"
expect_error 2 "--out $work/train.csv is the same file as --data $work/train.csv" \
    train --out "$work/train.csv"
expect_error 2 "--log $work/../$(basename "$work")/train.csv is the same file as --data" \
    train --log "$work/../$(basename "$work")/train.csv"
ln -s "$work/m.nn" "$work/m.link"
expect_error 2 "--plot $work/m.link is the same file as the model file" train --plot "$work/m.link"
expect_error 2 "--diagnose-log $work/train.csv is the same file as --test" \
    "$nabla" train "$work/m.nn" --data "csv:$work/train.keep" --test "$data" --quiet \
    --diagnose-log "$work/train.csv"
expect_error 2 "--out $work/w and --checkpoint $work/w are the same file" \
    train --out "$work/w" --checkpoint "$work/w"
expect_error 2 "--log $work/new.csv and --plot $work/./new.csv are the same file" \
    train --log "$work/new.csv" --plot "$work/./new.csv"
expect_error 2 "--checkpoint $work/w.ckpt and --log $work/w.ckpt are the same file" \
    train --out "$work/w" --log "$work/w.ckpt"
check 'cmp -s "$work/train.csv" "$work/train.keep" && cmp -s "$work/m.nn" "$work/m.keep"' \
    "the data and the model file are untouched"
check '[ ! -e "$work/w" ] && [ ! -e "$work/new.csv" ]' "nothing written"
# a checkpoint may be resumed from and rewritten; no other output may replace it
train --out "$work/r.st" > /dev/null 2>&1
check '[ -f "$work/r.st.ckpt" ]' "a checkpoint to resume from"
cp "$work/r.st.ckpt" "$work/r.keep"
expect_error 2 "--log $work/r.st.ckpt is the same file as --resume" \
    train --epochs 3 --resume "$work/r.st.ckpt" --checkpoint "$work/c2" --log "$work/r.st.ckpt"
check 'cmp -s "$work/r.st.ckpt" "$work/r.keep"' "the checkpoint is untouched"
train --epochs 3 --out "$work/r.st" --resume "$work/r.st.ckpt" > /dev/null 2> "$work/err"
check '[ $? -eq 0 ]' "resume rewrites its own checkpoint: $(cat "$work/err")"

# --- a run killed while it writes its outputs: --resume writes them
train --out "$work/k.st" --log "$work/k.csv" > /dev/null 2>&1
cp "$work/k.st" "$work/k.keep"
cp "$work/k.csv" "$work/k.csv.keep"
rm "$work/k.st" "$work/k.csv"
echo partial > "$work/.k.st.tmp-Xy12ab"
train --out "$work/k.st" --log "$work/k.csv" --resume "$work/k.st.ckpt" > /dev/null 2> "$work/err"
check '[ $? -eq 0 ]' "resuming a run that ended writes its outputs: $(cat "$work/err")"
check 'cmp -s "$work/k.st" "$work/k.keep" && cmp -s "$work/k.csv" "$work/k.csv.keep"' \
    "the weights and the log are those of the run"
check '[ ! -e "$work/.k.st.tmp-Xy12ab" ]' "the killed write's temporary file is removed"
expect_error 1 "3 epochs already done; ask for more with --epochs" \
    train --epochs 2 --out "$work/k2.st" --resume "$work/r.st.ckpt"

# --- predict: the CSV header names the columns the rows have, also when the
# class list (2 names) and the model's outputs (3) differ
awk -F, 'NR == 1 { print; next } $5 != 2 { print $1 "," $2 "," $3 "," $4 "," ($5 ? "yes" : "no") }' \
    "$work/train.csv" > "$work/two.csv"
"$nabla" train "$work/m.nn" --data "csv:$work/two.csv" --epochs 1 --quiet --out "$work/two.st" \
    > /dev/null 2>&1
"$nabla" predict "$work/m.nn" --weights "$work/two.st" --input "csv:$work/two.csv" > "$work/two.pred" \
    2> "$work/err"
check '[ $? -eq 0 ] && [ $(wc -l < "$work/two.pred") -eq 201 ]' "predict: $(cat "$work/err")"
check 'awk -F, "NR == 1 { n = NF } NF != n { exit 1 }" "$work/two.pred"' \
    "header and rows have the same columns: $(head -n 2 "$work/two.pred")"

# --- NaN or infinite weights are refused by eval and predict, naming the tensor
# (the data of 0.bias comes first in the file: patch its element 2)
poison() { # poison FILE BYTES: a float32 written over element 2 of the first tensor
    cp "$work/two.st" "$1"
    hl=$(od -An -t u8 -N8 "$1" | tr -d ' ')
    printf "$2" | dd of="$1" bs=1 seek=$((8 + hl + 8)) conv=notrunc 2> /dev/null
}
poison "$work/nan.st" '\000\000\300\177'
poison "$work/inf.st" '\000\000\200\377'
expect_error 1 "--weights $work/nan.st: parameter '0.bias' is NaN (element 2)" \
    "$nabla" eval "$work/m.nn" --weights "$work/nan.st" --data "csv:$work/two.csv"
expect_error 1 "--weights $work/inf.st: parameter '0.bias' is infinite (element 2)" \
    "$nabla" predict "$work/m.nn" --weights "$work/inf.st" --input "csv:$work/two.csv"

# --- a second Ctrl-C cannot kill the write of the interrupt checkpoint: the
# run is sent SIGINT again and again until it ends
run_and_interrupt() { # the process in $pid, SIGINT once its checkpoint exists
    i=0
    while [ ! -f "$work/int.ckpt" ] && [ $i -lt 3000 ]; do sleep 0.01; i=$((i + 1)); done
    while kill -INT $pid 2> /dev/null; do :; done
    wait $pid
}
awk 'BEGIN { s = 7; print "a,b,c,d,label";
    for (i = 0; i < 20000; i++) { line = "";
        for (j = 0; j < 4; j++) { s = (s * 1103515245 + 12345) % 2147483648;
            line = line sprintf("%.5f,", s / 2147483648) }
        print line (i % 3) } }' > "$work/big.csv"
"$nabla" train "$work/m.nn" --data "csv:$work/big.csv" --epochs 100000 --batch 4 --quiet \
    --checkpoint "$work/int.ckpt" > /dev/null 2> "$work/int.err" &
pid=$!
run_and_interrupt
check '[ $? -eq 130 ] && grep -q "^interrupted at step [0-9]*; continue with --resume $work/int.ckpt" "$work/int.err"' \
    "the interrupt checkpoint is written: $(cat "$work/int.err")"

# --- Ctrl-C during an epoch's last step still finishes that epoch: its row
# is in the log and the checkpoint resumes. One batch per epoch puts nearly
# every interrupt in a last step (a wide model makes the step, not the
# checkpoint's write, take most of the time); three runs make a miss unlikely.
printf 'input 4\ndense 256\nrelu\ndense 256\nrelu\ndense 3\nloss cross_entropy\n' > "$work/wide.nn"
for k in 1 2 3; do
    rm -f "$work/int.ckpt" "$work/last.csv"
    "$nabla" train "$work/wide.nn" --data "csv:$work/big.csv" --epochs 100000 --batch 20000 --quiet \
        --checkpoint "$work/int.ckpt" --log "$work/last.csv" > /dev/null 2> "$work/int.err" &
    pid=$!
    i=0
    while [ ! -f "$work/int.ckpt" ] && [ $i -lt 3000 ]; do sleep 0.01; i=$((i + 1)); done
    sleep 0.0$k
    kill -INT $pid
    wait $pid
    done_epochs=$(($(wc -l < "$work/last.csv") - 1))
    "$nabla" train "$work/wide.nn" --data "csv:$work/big.csv" --epochs $((done_epochs + 1)) \
        --batch 20000 --quiet --resume "$work/int.ckpt" --checkpoint "$work/int.ckpt" \
        --log "$work/last.csv" > /dev/null 2>&1
    check '[ $(($(wc -l < "$work/last.csv") - 1)) -eq $((done_epochs + 1)) ]' \
        "interrupted at $(grep -o "step [0-9]*" "$work/int.err") with $done_epochs rows in the log, resumed for one more epoch: $(($(wc -l < "$work/last.csv") - 1)) rows"
done

# --- a float64 value beyond float32 (1e300) is refused at load, naming the
# sample, rather than poisoning the standardisation of its feature
zero='\000\000\000\000\000\000\000\000'
huge='\176\067\344\074\210\000\165\234' # 1e300, big-endian
{ printf '\000\000\016\002\000\000\000\003\000\000\000\004'
  for k in 0 1 2 3 4 5 6 7 8 9 10 11; do
      if [ $k -eq 9 ]; then printf "$huge"; else printf "$zero"; fi
  done; } > "$work/huge.idx"
printf '\000\000\010\001\000\000\000\003\000\001\002' > "$work/huge-labels.idx"
expect_error 1 "huge.idx,.*huge-labels.idx: x element 9 (sample 2, value 1) is 1e+300, beyond the range of float32" \
    "$nabla" train "$work/m.nn" --data "idx:$work/huge.idx,$work/huge-labels.idx" --quiet

# --- a damaged checkpoint is blamed, not the settings: counters that
# disagree, a NaN parameter, a NaN in the optimiser state
train --checkpoint "$work/c.ckpt" > /dev/null 2>&1
hl=$(od -An -t u8 -N8 "$work/c.ckpt" | tr -d ' ')
LC_ALL=C sed 's/"nabla.step":"20"/"nabla.step":"19"/' "$work/c.ckpt" > "$work/steps.ckpt"
check '! cmp -s "$work/c.ckpt" "$work/steps.ckpt"' "the step counter patched"
LC_ALL=C sed 's/"nabla.epoch":"2"/"nabla.epoch":"1"/' "$work/c.ckpt" > "$work/epoch.ckpt"
check '! cmp -s "$work/c.ckpt" "$work/epoch.ckpt"' "the epoch counter patched"
patch_nan() { # patch_nan FILE BYTE_OFFSET_IN_DATA
    cp "$work/c.ckpt" "$1"
    printf '\000\000\300\177' | dd of="$1" bs=1 seek=$((8 + hl + $2)) conv=notrunc 2> /dev/null
}
state=$(head -c $((8 + hl)) "$work/c.ckpt" | LC_ALL=C sed -n 's/.*"__optim__.state":{[^}]*"data_offsets":\[\([0-9]*\),.*/\1/p')
patch_nan "$work/param.ckpt" 8                  # 0.bias comes first: its element 2
patch_nan "$work/state.ckpt" $((state + 8))     # optimiser state value 2
expect_error 1 "--resume $work/steps.ckpt: the checkpoint's counters disagree (epoch 2, step 19, optimiser steps 20)" \
    train --epochs 3 --resume "$work/steps.ckpt" --checkpoint "$work/c2.ckpt"
expect_error 1 "--resume $work/epoch.ckpt: the checkpoint's history has 2 epochs" \
    train --epochs 3 --resume "$work/epoch.ckpt" --checkpoint "$work/c2.ckpt"
expect_error 1 "--resume $work/param.ckpt: parameter '0.bias' is NaN (element 2); the checkpoint is damaged" \
    train --epochs 3 --resume "$work/param.ckpt" --checkpoint "$work/c2.ckpt"
expect_error 1 "$work/state.ckpt: optimiser state value 2 is NaN; the checkpoint is damaged" \
    train --epochs 3 --resume "$work/state.ckpt" --checkpoint "$work/c2.ckpt"
check '[ ! -e "$work/c2.ckpt" ]' "no checkpoint written from a damaged one"

# --- a resumed epoch reports the whole epoch: stopped in the middle of epoch
# 1 (Ctrl-C after its first mid-epoch checkpoint) and resumed, the log's
# loss and accuracy equal those of a run never stopped; its time includes the
# time spent before the stop, saved in the checkpoint
set -- train "$work/m.nn" --data "csv:$work/big.csv" --epochs 2 --batch 1 --seed 4 --quiet
"$nabla" "$@" --log "$work/whole.csv" > /dev/null 2>&1
rm -f "$work/int.ckpt"
"$nabla" "$@" --checkpoint "$work/int.ckpt" --checkpoint-every 2000 > /dev/null 2> "$work/int.err" &
pid=$!
run_and_interrupt
at=$(sed -n 's/^interrupted at step \([0-9]*\);.*/\1/p' "$work/int.err")
check '[ -n "$at" ] && [ $((at % 20000)) -ne 0 ]' "stopped in the middle of an epoch: $(cat "$work/int.err")"
hl=$(od -An -t u8 -N8 "$work/int.ckpt" | tr -d ' ')
saved=$(head -c $((8 + hl)) "$work/int.ckpt" | LC_ALL=C sed -n 's/.*"train.epoch_sums":"[^"]* \([0-9.e+-]*\)".*/\1/p')
"$nabla" "$@" --checkpoint "$work/int.ckpt" --resume "$work/int.ckpt" --log "$work/resumed.csv" \
    > /dev/null 2> "$work/err"
check '[ $? -eq 0 ]' "resumed: $(cat "$work/err")"
check '[ "$(cut -d, -f1-5 "$work/whole.csv")" = "$(cut -d, -f1-5 "$work/resumed.csv")" ]' \
    "loss and accuracy of the resumed epoch: $(sed -n 2p "$work/whole.csv") vs $(sed -n 2p "$work/resumed.csv")"
seconds=$(awk -F, -v e=$((at / 20000 + 1)) '$1 == e { print $8 }' "$work/resumed.csv")
check '[ -n "$saved" ] && awk -v a="$seconds" -v b="$saved" "BEGIN { exit !(a + 0.001 >= b) }"' \
    "the resumed epoch's time ($seconds s) includes the $saved s before the stop"

# --- a full disk (a file size limit) leaves the log and the plot whole: the
# last version written, never one cut mid-row; no temporary file is left
limited() { # limited BLOCKS ARGS...: train with writes limited to BLOCKS blocks
    blocks=$1
    shift
    (trap '' XFSZ; ulimit -f "$blocks"; exec "$nabla" train "$work/m.nn" --data "$data" \
        --epochs 80 --batch 32 --quiet "$@") > /dev/null 2> "$work/err"
}
mkdir "$work/full"
limited 2 --log "$work/full/log.csv"
check '[ $? -eq 1 ] && grep -q "^nabla train: --log $work/full/log.csv: File too large" "$work/err"' \
    "the run stops when the log cannot be written: $(cat "$work/err")"
check '[ $(wc -l < "$work/full/log.csv") -gt 2 ] && [ "$(tail -c 1 "$work/full/log.csv" | od -An -c | tr -d " ")" = "\n" ] &&
       awk -F, "NF != 8 { exit 1 }" "$work/full/log.csv"' \
    "the log is whole: $(tail -n 2 "$work/full/log.csv")"
limited 7 --plot "$work/full/plot.svg"
check '[ $? -eq 1 ] && grep -q "^nabla train: --plot $work/full/plot.svg: File too large" "$work/err"' \
    "the run stops when the plot cannot be written: $(cat "$work/err")"
check '[ "$(tail -n 1 "$work/full/plot.svg")" = "</svg>" ]' "the plot is whole"
check '[ "$(ls -A "$work/full" | wc -l)" -eq 2 ]' "no temporary file left: $(ls -A "$work/full")"

# --- two runs on one output: the second refuses, naming the first one's lock
"$nabla" train "$work/m.nn" --data "csv:$work/big.csv" --epochs 100000 --batch 4 --quiet \
    --out "$work/shared.st" --checkpoint "$work/first.ckpt" > /dev/null 2>&1 &
pid=$!
i=0
while [ ! -f "$work/first.ckpt" ] && [ $i -lt 3000 ]; do sleep 0.01; i=$((i + 1)); done
expect_error 1 "--out $work/shared.st is being written by another run (process $pid holds its lock file $work/shared.st.lock)" \
    train --out "$work/shared.st"
expect_error 1 "--checkpoint $work/first.ckpt is being written by another run" \
    train --out "$work/other.st" --checkpoint "$work/first.ckpt"
check '[ ! -e "$work/other.st" ] && [ ! -e "$work/other.st.lock" ]' "the refused run wrote nothing"
kill -9 $pid
wait $pid 2> /dev/null
check '[ -f "$work/shared.st.lock" ]' "the killed run left its lock file"
# a lock file left by a killed run stops nobody; the temporary files that
# killed writes left are removed, other files are not
for f in .shared.st.tmp-aB3xZ9 .shared.st.log.tmp-000000 .shared.st.ckpt.tmp-Qw12Er; do
    echo partial > "$work/$f"
done
echo mine > "$work/.shared.st.tmp-keep"
train --out "$work/shared.st" --log "$work/shared.st.log" > /dev/null 2> "$work/err"
check '[ $? -eq 0 ]' "a stale lock file stops nobody: $(cat "$work/err")"
check '[ ! -e "$work/.shared.st.tmp-aB3xZ9" ] && [ ! -e "$work/.shared.st.log.tmp-000000" ] &&
       [ ! -e "$work/.shared.st.ckpt.tmp-Qw12Er" ]' "temporary files of killed writes removed"
check '[ -f "$work/.shared.st.tmp-keep" ]' "a file that is not one kept"
check '[ ! -e "$work/shared.st.lock" ] && [ ! -e "$work/shared.st.ckpt.lock" ] &&
       [ ! -e "$work/shared.st.log.lock" ]' "the run removed its lock files: $(ls "$work" | grep lock)"

finish
