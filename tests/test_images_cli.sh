#!/bin/sh
# nabla on an image folder end to end: train, eval and predict (class names
# printed) on PNG and JPEG files, grey and RGB, of several sizes, that
# test_image writes; a corrupt file is an error naming it, or skipped and
# counted with --skip-bad.
# Usage: test_images_cli.sh BUILD_DIR
. "$(dirname "$0")/support/harness.sh"

"$build/tests/test_image" --make-folder "$work/img" || { echo "cannot make the images"; exit 1; }
printf 'input 3 8 8\nflatten\ndense 16\nrelu\ndense 3\nloss cross_entropy\n' > "$work/rgb.nn"
printf 'input 1 8 8\nflatten\ndense 16\nrelu\ndense 3\nloss cross_entropy\n' > "$work/grey.nn"
printf 'input 64\ndense 3\nloss cross_entropy\n' > "$work/flat.nn"

# the corrupt file stops training, named
"$nabla" train "$work/rgb.nn" --data "folder:$work/img/train" --epochs 1 > /dev/null 2> "$work/err"
check '[ $? -eq 1 ] && grep -q "img/train/red/broken.png: corrupt PNG" "$work/err" && grep -q -- --skip-bad "$work/err"' \
    "a corrupt image is an error naming it: $(cat "$work/err")"

# --skip-bad: counted, then training on the rest
for m in rgb grey; do
    "$nabla" train "$work/$m.nn" --data "folder:$work/img/train" --test "folder:$work/img/test" \
        --epochs 20 --batch 8 --lr 0.01 --skip-bad --out "$work/$m.safetensors" > "$work/$m.out" 2> "$work/$m.err"
    check '[ $? -eq 0 ] && grep -q "1 image skipped" "$work/$m.err" && grep -q "skipped .*broken.png" "$work/$m.err"' \
        "$m: --skip-bad counts the corrupt file: $(cat "$work/$m.err")"
    check 'grep -q "img/train: 73 images, 3 classes, as [13] x 8 x 8" "$work/$m.err"' \
        "$m: images decoded once, with progress: $(cat "$work/$m.err")"
    acc=$(sed -n 's/.*test accuracy \([0-9.]*\)%.*/\1/p' "$work/$m.out")
    check '[ -n "$acc" ] && awk "BEGIN { exit !($acc >= 70) }"' "$m: test accuracy $acc (want >= 70%): $(cat "$work/$m.out")"
done

# eval agrees with the end of training; predict prints the class names
"$nabla" eval "$work/grey.nn" --weights "$work/grey.safetensors" --data "folder:$work/img/test" \
    > "$work/eval.out" 2> "$work/eval.err"
check '[ $? -eq 0 ] && grep -q "accuracy $acc% (18 samples)" "$work/eval.out"' \
    "eval on the folder: $(cat "$work/eval.out" "$work/eval.err") (train said $acc%)"
"$nabla" predict "$work/grey.nn" --weights "$work/grey.safetensors" --input "folder:$work/img/test" \
    > "$work/pred.csv" 2> /dev/null
check '[ $? -eq 0 ] && head -n 1 "$work/pred.csv" | grep -qx "sample,class,name,p_blue,p_green,p_red" && [ $(wc -l < "$work/pred.csv") -eq 19 ]' \
    "predict on the folder: $(head -n 3 "$work/pred.csv")"
# samples are in file-name order, then class: 000 of blue, green, red, then 001 ...
check '[ "$(sed -n "2,4p" "$work/pred.csv" | cut -d, -f3 | tr "\n" " ")" = "blue green red " ]' \
    "predict names the classes, in file order: $(sed -n '2,4p' "$work/pred.csv")"
"$nabla" predict "$work/grey.nn" --weights "$work/grey.safetensors" --input "$work/img/test/red/001.png" \
    > "$work/one.csv" 2> /dev/null
check '[ $? -eq 0 ] && [ $(wc -l < "$work/one.csv") -eq 2 ] && sed -n 2p "$work/one.csv" | grep -q "^0,2,red,"' \
    "predict one image file: $(cat "$work/one.csv")"

# errors: one clear line
"$nabla" train "$work/flat.nn" --data "folder:$work/img/train" > /dev/null 2> "$work/err"
check '[ $? -eq 1 ] && grep -q "images need a model whose input is C H W.*this one takes 64" "$work/err"' \
    "a model without image input: $(cat "$work/err")"
"$nabla" eval "$work/grey.nn" --weights "$work/grey.safetensors" --data "folder:$work/nothing" \
    > /dev/null 2> "$work/err"
check '[ $? -eq 1 ] && grep -q "nothing: No such file" "$work/err"' "a missing folder: $(cat "$work/err")"

finish
