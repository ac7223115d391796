#!/bin/sh
# nabla train --tensorboard DIR end to end, without Python (TensorBoard's own
# reader: tests/tensorboard_check.py): the event file is made in a new
# directory, a second run adds a second file, and a directory that cannot be
# made is an error naming the flag before training starts.
# Usage: test_tensorboard_cli.sh BUILD_DIR
. "$(dirname "$0")/support/harness.sh"

printf 'a,b,label\n0,1,0\n1,0,1\n0,0,0\n1,1,1\n' > "$work/d.csv"
printf 'input 2\ndense 2\nloss cross_entropy\n' > "$work/m.nn"
train() { "$nabla" train "$work/m.nn" --data "csv:$work/d.csv" --epochs 2 --batch 2 --quiet "$@"; }

if ! "$nabla" train --help | grep -q -- "--tensorboard DIR"; then bad "--help lists --tensorboard"; else ok; fi
train --tensorboard "$work/x" > "$work/out" 2> "$work/err"
if grep -q "^nabla train: --tensorboard needs protobuf-c" "$work/err"; then
    # the plain build: says what it needs, writes nothing
    check '[ ! -e "$work/x" ]' "built without protobuf-c: no directory made"
    echo "built without protobuf-c: only its message checked"
    finish
    exit $?
fi
check '[ -s "$work/x/$(ls "$work/x")" ] && [ "$(ls "$work/x" | wc -l)" -eq 1 ]' \
    "one event file in a new directory: $(ls "$work/x") $(cat "$work/err")"
check 'ls "$work/x" | grep -q "^events\.out\.tfevents\.[0-9]*\.[^/]*$"' "file name: $(ls "$work/x")"
# version record, then 2 steps x 2 epochs x (loss, lr) and 2 epochs x 3 metrics
f="$work/x/$(ls "$work/x")"
check '[ "$(od -An -tx1 -N12 "$f" | tr -d " \n")" = "1800000000000000a37f4b22" ]' \
    "the file starts with the version record's header"
check '[ "$(grep -ac "train/loss" "$f")" -ge 1 ] && [ "$(grep -ac "epoch/train_acc" "$f")" -ge 1 ]' \
    "train/loss and epoch/train_acc written"
train --tensorboard "$work/x" 2> "$work/err"
check '[ "$(ls "$work/x" | wc -l)" -eq 2 ]' "a second run: a second file ($(ls "$work/x"))"
# the directory cannot be made: a regular file is in the way
: > "$work/file"
expect_error 1 "^nabla train: --tensorboard: $work/file: not a directory" train --tensorboard "$work/file"
expect_error 1 "^nabla train: --tensorboard: $work/file/sub: cannot create the directory" \
    train --tensorboard "$work/file/sub"
finish
