#!/bin/sh
# The files nabla writes cannot destroy anything: an output is a regular file
# or a new path (never a device, a FIFO, a directory or a link to one), never
# an input or another output, and never written by two runs at once; logs and
# plots are replaced whole; a run killed while writing its outputs finishes
# them on --resume.
# Usage: test_outputs_cli.sh BUILD_DIR
set -u
build=$1
nabla=$build/nabla
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passed=0
failed=0
ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAILED: $*" >&2; }
check() { if eval "$1"; then ok; else bad "$2"; fi; }

# 3 classes of 4 features around different centres (a fixed LCG sequence)
awk -v n=300 'BEGIN {
    print "a,b,c,d,label";
    s = 12345;
    for (i = 0; i < n; i++) {
        c = i % 3; line = "";
        for (j = 0; j < 4; j++) {
            s = (s * 1103515245 + 12345) % 2147483648;
            v = c * (j + 1) + (s / 2147483648 - 0.5) * 1.5;
            line = line (j ? "," : "") sprintf("%.4f", v);
        }
        print line "," c;
    }
}' > "$work/train.csv"
cat > "$work/m.nn" <<'EOF'
input 4
dense 16
relu
dense 3
loss cross_entropy
EOF
data="csv:$work/train.csv"

expect_error() { # expect_error CODE PATTERN COMMAND...: exit code and one matching line
    code=$1
    pattern=$2
    shift 2
    "$@" > "$work/out" 2> "$work/err"
    rc=$?
    lines=$(grep -c . "$work/err")
    if [ $rc -eq "$code" ] && grep -q -- "$pattern" "$work/err" && [ "$lines" -eq 1 ]; then ok
    else bad "$*: exit $rc (want $code), stderr: $(cat "$work/err")"; fi
}
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

echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
