#!/bin/sh
# nabla train's progress bar on a pseudo-terminal (util-linux `script`): at 60
# columns every redraw fits in 59 (so it never wraps onto a new line), at 120
# it shows the last epoch's validation metrics.  Skipped without `script`.
# Usage: test_progress_tty.sh BUILD_DIR
. "$(dirname "$0")/support/harness.sh"
if ! command -v script > /dev/null 2>&1 || ! script -qc true /dev/null > /dev/null 2>&1; then
    echo "skipped: no util-linux script to make a pseudo-terminal"
    exit 0
fi
awk 'BEGIN { s = 3;
    for (i = 0; i < 400; i++) { line = "";
        for (j = 0; j < 4; j++) { s = (s * 1103515245 + 12345) % 2147483648;
            line = line sprintf("%.4f,", s / 2147483648) }
        print line (i % 2) } }' > "$work/d.csv"
printf 'input 4\ndense 16\nrelu\ndense 2\nloss cross_entropy\n' > "$work/m.nn"
# on a terminal of $1 columns: the redraws (the text before each carriage
# return of a line, the escape that erases to the end of the line removed) go
# to $work/bars, the lines (the text after the last) to $work/lines
on_tty() {
    script -qc "stty cols $1; '$nabla' train '$work/m.nn' --data 'csv:$work/d.csv' \
        --val-split 0.25 --epochs 3 --batch 10" /dev/null > "$work/tty.out" 2>&1
    tr -d '\033' < "$work/tty.out" | sed 's/\[K//g; s/\r$//' |
        awk -F '\r' -v bars="$work/bars" -v lines="$work/lines" '{
            for (i = 1; i < NF; i++) if ($i != "") print $i > bars
            print $NF > lines }'
}
on_tty 60
check '[ "$(grep -c "^epoch [0-9]/3 \[" "$work/bars")" -ge 3 ]' \
    "60 columns: redrawn: $(cat "$work/tty.out")"
check '[ "$(awk "length > 59" "$work/bars" | wc -l)" -eq 0 ]' \
    "60 columns: every redraw fits in 59: $(awk 'length > 59' "$work/bars")"
check '[ "$(grep -c "^epoch" "$work/lines")" -eq 3 ] && [ "$(grep -c "^epoch [0-9]/3  loss" "$work/lines")" -eq 3 ]' \
    "a line an epoch, none left by the redraws: $(cat "$work/lines")"
on_tty 120
check 'grep -q "^epoch 3/3 \[#*\] 30/30  loss [0-9.]*  val_loss [0-9.]*  val_acc" "$work/bars"' \
    "120 columns: the bar shows the last epoch's validation metrics: $(cat "$work/bars")"
check '[ "$(awk "length > 119" "$work/bars" | wc -l)" -eq 0 ]' "120 columns: fits"
finish
