#!/bin/sh
# Text data from the command line: `nabla train --data lines:FILE,context=3`
# learns next characters (ids as reals into a small MLP), holds out whole
# lines, saves the vocabulary with the weights; predict and eval encode new
# text with that vocabulary; text:FILE,context=T windows a stream; every bad
# file or option is an error naming the file, line and column.
# Usage: test_text_cli.sh BUILD_DIR
. "$(dirname "$0")/support/harness.sh"

# two words over 7 characters: after "w" comes "x", after "abc" comes "d"
i=0
while [ $i -lt 30 ]; do printf 'abcd\nwxy\n'; i=$((i + 1)); done > "$work/words.txt"
cat > "$work/m.nn" <<'NN'
input 3
dense 32
tanh
dense 8
loss cross_entropy
NN
data="lines:$work/words.txt,context=3"
train() {
    "$nabla" train "$work/m.nn" --data "$data" --epochs 30 --batch 16 --optim adam --lr 0.02 \
        --seed 1 --quiet "$@"
}

# --- training: the validation loss falls; 15 of 60 lines held out
check 'train --val-split 0.25 --out "$work/w.safetensors" --log "$work/log.csv" > "$work/out" 2>&1' \
    "train on lines:"
check 'awk -F, "NR == 2 { first = \$6 } END { exit !(\$6 < first / 3 && \$6 < 0.3) }" "$work/log.csv"' \
    "the validation loss falls: $(cut -d, -f6 "$work/log.csv" | tr '\n' ' ')"
# 15 held-out lines: 8 of abcd (5 samples) and 7 of wxy (4), or close to it
check 'awk -F, "NR == 2 { exit !(\$7 > 0) }" "$work/log.csv"' "validation accuracy is reported"
# the vocabulary is in the weights' metadata, in code-point order after the boundary
cat > "$work/vocab.txt" <<'TXT'
"data.classes":"[\"\\n\",\"a\",\"b\",\"c\",\"d\",\"w\",\"x\",\"y\"]"
TXT
check 'grep -q -F -f "$work/vocab.txt" "$work/w.safetensors"' "the vocabulary is saved as data.classes"
# ids stay ids: text is never standardised
check 'grep -q -F "\"data.input\":\"raw\"" "$work/w.safetensors"' "text input is saved as raw"

# --- predict on new text uses the saved vocabulary: alone, "wxy" would number w 1
printf 'wxy\n' > "$work/wxy.txt"
check '"$nabla" predict "$work/m.nn" --weights "$work/w.safetensors" --input "lines:$work/wxy.txt,context=3" > "$work/pred.csv"' \
    "predict on lines:"
check '[ "$(sed -n 3p "$work/pred.csv" | cut -d, -f2,3)" = "6,x" ] && [ "$(sed -n 4p "$work/pred.csv" | cut -d, -f2,3)" = "7,y" ]' \
    "after w comes x, after wx comes y: $(cat "$work/pred.csv")"
check '"$nabla" eval "$work/m.nn" --weights "$work/w.safetensors" --data "lines:$work/wxy.txt,context=3" > "$work/eval.txt"' \
    "eval on lines:"
check 'grep -q "accuracy" "$work/eval.txt"' "eval reports: $(cat "$work/eval.txt")"

# --- characters the model never saw, bad UTF-8
printf 'abc\nwxqy\n' > "$work/new.txt"
expect_error 1 "$work/new.txt:2:3: character 'q' (U+0071) is not in the vocabulary (8 characters)" \
    "$nabla" eval "$work/m.nn" --weights "$work/w.safetensors" --data "lines:$work/new.txt,context=3"
printf 'abc\nw\351x\n' > "$work/latin1.txt"
expect_error 1 "$work/latin1.txt:2:2: invalid UTF-8 (byte 0xe9); the text must be UTF-8" \
    "$nabla" train "$work/m.nn" --data "lines:$work/latin1.txt,context=3" --epochs 1
printf '\n\n' > "$work/blank.txt"
expect_error 1 "$work/blank.txt: no text (every line is empty)" \
    "$nabla" train "$work/m.nn" --data "lines:$work/blank.txt,context=3" --epochs 1

# --- options
expect_error 1 "--data lines: context=0 is not a whole number from 1 to 1000000" \
    "$nabla" train "$work/m.nn" --data "lines:$work/words.txt,context=0" --epochs 1
expect_error 1 "--data lines: unknown option 'stride' (known: context, length)" \
    "$nabla" train "$work/m.nn" --data "lines:$work/words.txt,stride=2" --epochs 1
expect_error 1 "--data text:$work/words.txt needs context=T, the window length" \
    "$nabla" train "$work/m.nn" --data "text:$work/words.txt" --epochs 1
# whole lines are padded to the model's input: 3 positions cannot hold abcd
expect_error 1 "$work/words.txt:1: the line has 4 characters; with its boundary it needs 5 positions, more than length=3" \
    "$nabla" train "$work/m.nn" --data "lines:$work/words.txt" --epochs 1
# length= sets it: here to a size the model does not take
expect_error 1 "samples have 6 values but $work/m.nn takes 3 values per sample" \
    "$nabla" train "$work/m.nn" --data "lines:$work/words.txt,length=6" --epochs 1
expect_error 1 "$work/words.txt:1: the line has 4 characters; with its boundary it needs 5 positions, more than length=3" \
    "$nabla" train "$work/m.nn" --data "lines:$work/words.txt,length=3" --epochs 1

# a model of 6 positions gets lines padded to 6, in training and in predict
cat > "$work/p.nn" <<'NN'
input 6
dense 6
loss mse
NN
check '"$nabla" train "$work/p.nn" --data "lines:$work/words.txt" --epochs 1 --quiet --out "$work/p.safetensors"' \
    "train on whole lines padded to the input"
check '"$nabla" predict "$work/p.nn" --weights "$work/p.safetensors" --input "lines:$work/wxy.txt" > "$work/p.csv" && [ "$(wc -l < "$work/p.csv")" -eq 2 ]' \
    "predict pads new lines to the input"

# --- a stream: windows of 6 characters, targets shifted by one (here as
# regression targets, which is all a dense model can do with them)
cat > "$work/s.nn" <<'NN'
input 6
dense 16
tanh
dense 6
loss mse
NN
check '"$nabla" train "$work/s.nn" --data "text:$work/words.txt,context=6,stride=2" --val-split 0.2 --epochs 2 --quiet --log "$work/s.csv"' \
    "train on text:"
check '[ "$(wc -l < "$work/s.csv")" -eq 3 ]' "two epochs logged"
finish
