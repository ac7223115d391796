#!/bin/sh
# Debian's word list (package wamerican, /usr/share/dict/words: UTF-8 with
# accented letters) as makemore's data: every tenth word, a context of 3,
# one epoch of a small MLP beats the uniform guess by a wide margin.  Exits
# 77 (skipped) without the word list.
# Usage: test_words_cli.sh BUILD_DIR
. "$(dirname "$0")/support/harness.sh"
words=/usr/share/dict/words
if [ ! -r "$words" ]; then
    echo "skipped: $words is missing (apt-get install wamerican)"
    exit 77
fi
awk 'NR % 10 == 0' "$words" > "$work/words.txt"
# the vocabulary: the distinct characters and the line boundary
vocab=$(( $(LC_ALL=C.UTF-8 grep -o . "$work/words.txt" | LC_ALL=C sort -u | wc -l) + 1 ))
printf 'input 3\ndense 64\ntanh\ndense %d\nloss cross_entropy\n' "$vocab" > "$work/m.nn"
check '"$nabla" train "$work/m.nn" --data "lines:$work/words.txt,context=3" --val-split 0.1 --epochs 1 --batch 64 --optim adam --lr 0.01 --seed 1 --quiet --log "$work/log.csv"' \
    "train on the word list"
# uniform: log($vocab) nats, about 4.2
check 'awk -F, -v v="$vocab" "NR == 2 { exit !(\$6 < log(v) - 1) }" "$work/log.csv"' \
    "validation loss below log($vocab) - 1: $(cat "$work/log.csv")"
finish
