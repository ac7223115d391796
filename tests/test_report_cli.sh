#!/bin/sh
# The evaluation report end to end: `nabla eval --report r.json --confusion
# c.svg` on a small CSV classifier writes both files, and every printed figure
# (per-class precision, recall, F1, support, the averages, accuracy, the
# confusion matrix) agrees with the JSON; `train --test` prints the same
# report; a class absent from the test data is flagged as 0/0; top-k is on by
# default above 5 classes; a regression model gets MAE, RMSE and R^2; options
# that do not suit the model are refused before any training.
# Usage: test_report_cli.sh BUILD_DIR
. "$(dirname "$0")/support/harness.sh"

# NC classes of 4 noisy features (a fixed LCG sequence), named by a list
make_csv() { # FILE NROWS NC SKIP_CLASS(-1: none) SEED
    awk -v n="$2" -v nc="$3" -v skip="$4" -v s="$5" 'BEGIN {
        split("alpha beta delta gamma eta zeta theta", name, " ");
        print "a,b,c,d,label";
        for (i = 0; i < n; i++) {
            c = i % nc; if (c == skip) continue;
            line = "";
            for (j = 0; j < 4; j++) {
                s = (s * 1103515245 + 12345) % 2147483648;
                v = ((c + j) % nc) * 0.8 + (s / 2147483648 - 0.5) * 3;
                line = line (j ? "," : "") sprintf("%.4f", v);
            }
            print line "," name[c + 1];
        }
    }' > "$1"
}
# four classes; the test data (150 rows) lacks "gamma", the last of the sorted names
make_csv "$work/train.csv" 400 4 -1 11
make_csv "$work/test.csv" 200 4 3 29
printf 'input 4\ndense 16\nrelu\ndense 4\nloss cross_entropy\n' > "$work/four.nn"

"$nabla" train "$work/four.nn" --data "csv:$work/train.csv" --test "csv:$work/test.csv" \
    --epochs 3 --batch 32 --quiet --out "$work/w.st" > "$work/train.out" 2> "$work/train.err"
check '[ $? -eq 0 ]' "train exits 0: $(cat "$work/train.err")"
"$nabla" eval "$work/four.nn" --weights "$work/w.st" --data "csv:$work/test.csv" \
    --report "$work/r.json" --confusion "$work/c.svg" > "$work/eval.out" 2> "$work/eval.err"
check '[ $? -eq 0 ]' "eval exits 0: $(cat "$work/eval.err")"
check '[ -s "$work/r.json" ] && [ -s "$work/c.svg" ]' "--report and --confusion write their files"

# --- the SVG: one cell per pair of classes, every class named
check 'head -n 1 "$work/c.svg" | grep -q "^<?xml" && tail -n 1 "$work/c.svg" | grep -q "^</svg>$"' \
    "the SVG is a whole document"
cells=$(grep -c "^<rect x=" "$work/c.svg")
check '[ "$cells" -eq 16 ]' "4 x 4 cells in the SVG, found $cells"
for name in alpha beta delta gamma; do
    check '[ $(grep -c ">$name</text>" "$work/c.svg") -eq 2 ]' "class $name labels a row and a column"
done

# --- printed figures against the JSON
json() { # KEY: its values in order (classes by index, then macro and weighted averages)
    awk -F '\t' -v k="\"$1\":" '$(NF-1) == k { v = $NF; sub(/,$/, "", v); print v }' "$work/r.json"
}
table() { # COLUMN: the printed values of eval's table
    awk -v col="$1" '/^confusion matrix/ { exit } /^[0-9]+ [a-z]+ / || /^(macro|weighted) avg / {
        gsub(/\*/, ""); print $(NF - 4 + col) }' "$work/eval.out"
}
col=1
for key in precision recall f1 support; do
    json "$key" > "$work/j.$key"
    table $col > "$work/p.$key"
    check '[ $(wc -l < "$work/p.$key") -eq 6 ] && [ $(wc -l < "$work/j.$key") -eq 6 ]' \
        "$key: 4 classes and 2 averages printed ($(wc -l < "$work/p.$key")) and in the JSON"
    check 'paste "$work/p.$key" "$work/j.$key" | awk "{ d = \$1 - \$2; if (d < 0) d = -d;
        if (d > 0.0000501) exit 1 }"' "$key: printed $(tr '\n' ' ' < "$work/p.$key") vs JSON $(tr '\n' ' ' < "$work/j.$key")"
    col=$((col + 1))
done
check '[ "$(sed -n 4p "$work/j.support")" = 0 ]' "gamma (absent from the test data) has support 0"
check 'grep -q "^3 gamma  *[0-9.]*\*\{0,1\}  *0.0000\*  *[0-9.]*  *0$" "$work/eval.out"' \
    "gamma's recall is marked 0/0: $(grep '^3 gamma' "$work/eval.out")"
check 'grep -q "^\* 0/0 taken as 0" "$work/eval.out"' "the 0/0 footnote is printed"
check 'awk -F "\t" "/\"name\":\tgamma/ { g = 1 } g && /zero_division/ { exit !/recall/ }" "$work/r.json"' \
    "JSON: gamma's zero_division names recall"
acc_p=$(sed -n 's/^loss [0-9.]*, accuracy \([0-9.]*\)% (150 samples)$/\1/p' "$work/eval.out")
acc_j=$(json accuracy)
check 'awk -v p="$acc_p" -v j="$acc_j" "BEGIN { d = p - 100 * j; exit !(p != \"\" && d < 0.00501 && d > -0.00501) }"' \
    "accuracy printed $acc_p% vs JSON $acc_j"
check '[ "$(json samples)" = 150 ] && [ "$(json kind)" = "\"classification\"" ]' "JSON kind and samples"
# the confusion matrix: printed rows are the JSON rows; row sums are the supports
awk '/^confusion matrix/ { on = 1; next } on && /^[0-9]+ / { $1 = ""; $2 = ""; sub(/^ +/, ""); print }' \
    "$work/eval.out" > "$work/p.cm"
sed -n 's/.*"confusion_matrix":\t\[\[\(.*\)\]\]$/\1/p' "$work/r.json" | sed 's/\], \[/\n/g; s/,//g' \
    > "$work/j.cm"
check '[ $(wc -l < "$work/p.cm") -eq 4 ] && cmp -s "$work/p.cm" "$work/j.cm"' \
    "confusion matrix printed = JSON: $(tr '\n' '/' < "$work/p.cm") vs $(tr '\n' '/' < "$work/j.cm")"
sed -n "s/^<text .* fill='#\(000000\|ffffff\)'>\([0-9]*\)<\/text>$/\2/p" "$work/c.svg" | tr '\n' ' ' \
    > "$work/s.cm"
check '[ "$(cat "$work/s.cm")" = "$(tr "\n" " " < "$work/j.cm")" ]' \
    "the SVG's cells hold the JSON's counts: $(cat "$work/s.cm")"
check '[ "$(awk "{ s = 0; for (i = 1; i <= NF; i++) s += \$i; print s }" "$work/p.cm" | tr "\n" " ")" = "$(tr "\n" " " < "$work/j.support" | cut -d" " -f1-4) " ]' \
    "confusion row sums are the supports"

# --- train --test prints the same report for the same weights
sed 's/^test //; s/, test accuracy/, accuracy/' "$work/train.out" > "$work/train.plain"
check 'cmp -s "$work/train.plain" "$work/eval.out"' "train --test and eval print the same report"

# --- top-k: off with 4 classes by default; on with --top-k; 5 by default with 7 classes
check '! grep -q "^top-" "$work/eval.out" && [ "$(json top_k)" = 0 ] && [ "$(json top_k_accuracy)" = null ]' \
    "no top-k accuracy by default with 4 classes"
"$nabla" eval "$work/four.nn" --weights "$work/w.st" --data "csv:$work/test.csv" --top-k 4 \
    > "$work/k4.out" 2>&1
check 'grep -q "^top-4 accuracy 100.00%$" "$work/k4.out"' "--top-k 4 of 4 classes is 100%: $(grep top- "$work/k4.out")"
"$nabla" eval "$work/four.nn" --weights "$work/w.st" --data "csv:$work/test.csv" --top-k 1 \
    > "$work/k1.out" 2>&1
top1=$(sed -n 's/^top-1 accuracy \(.*\)%$/\1/p' "$work/k1.out")
check '[ -n "$top1" ] && [ "$top1" = "$acc_p" ]' "top-1 accuracy $top1 is the accuracy $acc_p"
make_csv "$work/seven.csv" 140 7 -1 5
printf 'input 4\ndense 7\nloss cross_entropy\n' > "$work/seven.nn"
"$nabla" train "$work/seven.nn" --data "csv:$work/seven.csv" --test "csv:$work/seven.csv" \
    --epochs 1 --quiet > "$work/seven.out" 2>&1
check 'grep -q "^top-5 accuracy [0-9.]*%$" "$work/seven.out"' "top-5 by default with 7 classes"
"$nabla" train "$work/seven.nn" --data "csv:$work/seven.csv" --test "csv:$work/seven.csv" \
    --epochs 1 --quiet --top-k 0 > "$work/seven0.out" 2>&1
check '! grep -q "^top-" "$work/seven0.out"' "--top-k 0 turns it off"

# --- regression: MAE, RMSE, R^2 printed and in the JSON; RMSE^2 is the MSE loss
awk 'BEGIN { print "x1,x2,y"; s = 7;
    for (i = 0; i < 200; i++) {
        s = (s * 1103515245 + 12345) % 2147483648; a = s / 2147483648;
        s = (s * 1103515245 + 12345) % 2147483648; b = s / 2147483648;
        printf "%.4f,%.4f,%.4f\n", a, b, 2 * a - b + 0.1 * sin(i) }}' > "$work/reg.csv"
printf 'input 2\ndense 8\ntanh\ndense 1\nloss mse\n' > "$work/reg.nn"
"$nabla" train "$work/reg.nn" --data "csv:$work/reg.csv" --test "csv:$work/reg.csv" --epochs 5 \
    --quiet --report "$work/reg.json" > "$work/reg.out" 2> "$work/reg.err"
check '[ $? -eq 0 ]' "regression train exits 0: $(cat "$work/reg.err")"
line=$(grep "^MAE " "$work/reg.out")
for key in mae rmse r2; do
    p=$(echo "$line" | sed -n "s/.*$(echo $key | sed 's/r2/R^2/' | tr a-z A-Z | sed 's/\^/\\^/') \([-0-9.e]*\).*/\1/p")
    j=$(awk -F '\t' -v k="\"$key\":" '$(NF-1) == k { v = $NF; sub(/,$/, "", v); print v; exit }' "$work/reg.json")
    check 'awk -v p="$p" -v j="$j" "BEGIN { d = (p - j) / j; exit !(p != \"\" && d < 1e-5 && d > -1e-5) }"' \
        "regression $key printed '$p' vs JSON '$j'"
done
loss=$(awk -F '\t' '$(NF-1) == "\"loss\":" { v = $NF; sub(/,$/, "", v); print v }' "$work/reg.json")
rmse=$(awk -F '\t' '$(NF-1) == "\"rmse\":" { v = $NF; sub(/,$/, "", v); print v; exit }' "$work/reg.json")
check 'awk -v l="$loss" -v r="$rmse" "BEGIN { d = (r * r - l) / l; exit !(d < 1e-5 && d > -1e-5) }"' \
    "RMSE^2 $rmse^2 is the MSE loss $loss"

# --- options that do not suit the model: refused before training (exit 2)
"$nabla" train "$work/reg.nn" --data "csv:$work/reg.csv" --test "csv:$work/reg.csv" \
    --epochs 100000 --confusion "$work/x.svg" > /dev/null 2> "$work/err"
check '[ $? -eq 2 ] && grep -q "confusion needs a classifier" "$work/err"' \
    "--confusion on a regression model: $(cat "$work/err")"
"$nabla" eval "$work/four.nn" --weights "$work/w.st" --data "csv:$work/test.csv" --top-k 5 \
    > /dev/null 2> "$work/err"
check '[ $? -eq 2 ] && grep -q -- "--top-k 5: the model has 4 classes" "$work/err"' "--top-k 5 of 4: $(cat "$work/err")"
"$nabla" eval "$work/four.nn" --weights "$work/w.st" --data "csv:$work/test.csv" --top-k x \
    > /dev/null 2> "$work/err"
check '[ $? -eq 2 ]' "--top-k x is a usage error: $(cat "$work/err")"
"$nabla" train "$work/four.nn" --data "csv:$work/train.csv" --report "$work/y.json" \
    > /dev/null 2> "$work/err"
check '[ $? -eq 2 ] && grep -q "need test data" "$work/err"' "train --report without --test: $(cat "$work/err")"
"$nabla" eval "$work/four.nn" --weights "$work/w.st" --data "csv:$work/test.csv" \
    --report "$work/no/such/dir/r.json" > /dev/null 2> "$work/err"
check '[ $? -eq 1 ] && grep -q -- "--report .*no/such/dir/r.json: cannot write" "$work/err"' \
    "--report in a missing directory: $(cat "$work/err")"

# a report never replaces an input or the other report, and is written whole
cp "$work/test.csv" "$work/test.keep"
"$nabla" eval "$work/four.nn" --weights "$work/w.st" --data "csv:$work/test.csv" \
    --report "$work/test.csv" > /dev/null 2> "$work/err"
check '[ $? -ne 0 ] && grep -q -- "--report" "$work/err" && cmp -s "$work/test.csv" "$work/test.keep"' \
    "--report onto the evaluated data is refused and the data kept: $(cat "$work/err")"
"$nabla" eval "$work/four.nn" --weights "$work/w.st" --data "csv:$work/test.csv" \
    --report "$work/same" --confusion "$work/same" > /dev/null 2> "$work/err"
check '[ $? -ne 0 ] && grep -q -- "--confusion" "$work/err" && [ ! -e "$work/same" ]' \
    "--report and --confusion on one file are refused: $(cat "$work/err")"
"$nabla" train "$work/four.nn" --data "csv:$work/train.csv" --test "csv:$work/test.csv" \
    --epochs 1 --quiet --report "$work/four.nn" > /dev/null 2> "$work/err"
check '[ $? -ne 0 ] && grep -q -- "--report" "$work/err" && grep -q "^loss cross_entropy" "$work/four.nn"' \
    "train --report onto the model file is refused: $(cat "$work/err")"
check '[ -z "$(ls -a "$work" | grep "\.tmp-")" ]' "no temporary file is left: $(ls -a "$work")"

finish
