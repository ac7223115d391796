#!/bin/sh
# The nabla command end to end: a CSV classifier trained, evaluated and used
# for predictions; a run killed with SIGKILL and resumed ends bit-identical to
# an uninterrupted one; bad input gives one clear line and a non-zero exit.
# Usage: test_cli.sh BUILD_DIR
. "$(dirname "$0")/support/harness.sh"

# --- a small CSV: 3 classes of 4 features, with a header and text labels
iris_csv "$work/train.csv"
# the same rows without the label column, to predict
cut -d, -f1,2,4,5 "$work/train.csv" | tail -n +2 > "$work/features.csv"

cat > "$work/iris.nn" <<'EOF'
input 4
dense 16 init=he
relu
dense 3
loss cross_entropy
EOF

# --- train, evaluate, predict
"$nabla" train "$work/iris.nn" --data "csv:$work/train.csv,label=species" --epochs 40 \
    --batch 16 --val-split 0.2 --seed 3 --out "$work/iris.safetensors" \
    --log "$work/log.csv" --plot "$work/plot.svg" --quiet > "$work/train.out" 2> "$work/train.err"
check '[ $? -eq 0 ]' "train on a CSV exits 0: $(cat "$work/train.err")"
check '[ -s "$work/iris.safetensors" ]' "weights written"
check '[ $(wc -l < "$work/log.csv") -eq 41 ]' "log has a header and 40 epochs"
check 'grep -q "<svg" "$work/plot.svg"' "plot is an SVG picture"
"$nabla" eval "$work/iris.nn" --weights "$work/iris.safetensors" \
    --data "csv:$work/train.csv,label=species" > "$work/eval.out" 2>&1
check '[ $? -eq 0 ]' "eval exits 0: $(cat "$work/eval.out")"
acc=$(sed -n 's/.*accuracy \([0-9.]*\)%.*/\1/p' "$work/eval.out")
check 'awk -v a="$acc" "BEGIN { exit !(a >= 90) }"' "eval accuracy $acc% >= 90%"
"$nabla" predict "$work/iris.nn" --weights "$work/iris.safetensors" \
    --input "csv:$work/features.csv" > "$work/pred.csv" 2> "$work/pred.err"
check '[ $? -eq 0 ]' "predict exits 0: $(cat "$work/pred.err")"
check '[ $(wc -l < "$work/pred.csv") -eq 301 ]' "one prediction per row plus a header"
check 'head -n 1 "$work/pred.csv" | grep -q "^sample,class,name,p_setosa,p_versicolor,p_virginica$"' \
    "prediction header names the classes: $(head -n 1 "$work/pred.csv")"
# rows cycle setosa, versicolor, virginica: compare the predicted names
right=$(awk -F, 'NR > 1 { split("setosa versicolor virginica", n, " ");
                          if ($3 == n[($1 % 3) + 1]) r++ } END { print r + 0 }' "$work/pred.csv")
check '[ "$right" -ge 270 ]' "predicted names right for $right of 300 rows"
"$nabla" info "$work/iris.nn" > "$work/info.out"
check 'grep -q "parameters: 131 " "$work/info.out"' "info counts 4*16+16+16*3+3 = 131 parameters"

# --- class labels keep their training meaning: a test file without setosa
# would number versicolor 0 and virginica 1 on its own
grep -v setosa "$work/train.csv" > "$work/no_setosa.csv"
"$nabla" eval "$work/iris.nn" --weights "$work/iris.safetensors" \
    --data "csv:$work/no_setosa.csv,label=species" > "$work/eval2.out" 2>&1
acc2=$(sed -n 's/.*accuracy \([0-9.]*\)%.*/\1/p' "$work/eval2.out")
check 'awk -v a="$acc2" "BEGIN { exit !(a >= 90) }"' \
    "eval on a file lacking one class: accuracy $acc2% >= 90%: $(cat "$work/eval2.out")"
"$nabla" train "$work/iris.nn" --data "csv:$work/train.csv,label=species" --epochs 40 \
    --batch 16 --seed 3 --test "csv:$work/no_setosa.csv,label=species" --quiet \
    > "$work/test2.out" 2>&1
acc3=$(sed -n 's/.*test accuracy \([0-9.]*\)%.*/\1/p' "$work/test2.out")
check 'awk -v a="$acc3" "BEGIN { exit !(a >= 90) }"' \
    "train --test on a file lacking one class: accuracy $acc3% >= 90%: $(cat "$work/test2.out")"
sed '5s/setosa/setosaa/' "$work/train.csv" > "$work/unknown.csv"
if ! grep -q setosaa "$work/unknown.csv"; then bad "unknown.csv lacks its unknown class"; fi
"$nabla" eval "$work/iris.nn" --weights "$work/iris.safetensors" \
    --data "csv:$work/unknown.csv,label=species" > "$work/out" 2> "$work/err"
check '[ $? -eq 1 ] && grep -q "unknown.csv:5: .*label .setosaa. is not a class the model was trained on (it knows classes .setosa., .versicolor., .virginica.)" "$work/err"' \
    "eval refuses a class never trained on: $(cat "$work/err")"
"$nabla" train "$work/iris.nn" --data "csv:$work/train.csv,label=species" --epochs 1 --quiet \
    --test "csv:$work/unknown.csv,label=species" > "$work/out" 2> "$work/err"
check '[ $? -eq 1 ] && grep -q "unknown.csv:5: .*setosaa" "$work/err"' \
    "train --test refuses a class never trained on: $(cat "$work/err")"
# class numbers: a label at or above the trained class count
sed -e 1d -e 's/setosa/0/; s/versicolor/1/; s/virginica/2/' "$work/train.csv" > "$work/numbers.csv"
"$nabla" train "$work/iris.nn" --data "csv:$work/numbers.csv,label=2" --epochs 1 --quiet \
    --out "$work/numbers.safetensors" > "$work/out" 2>&1
check '[ $? -eq 0 ]' "train on class numbers: $(cat "$work/out")"
sed '6s/,2,/,3,/' "$work/numbers.csv" > "$work/numbers3.csv"
"$nabla" eval "$work/iris.nn" --weights "$work/numbers.safetensors" \
    --data "csv:$work/numbers3.csv,label=2" > "$work/out" 2> "$work/err"
check '[ $? -eq 1 ] && grep -q "numbers3.csv:6: .*label .3. is not a class the model was trained on (it knows classes 0 to 2)" "$work/err"' \
    "eval refuses class number 3 of 3 classes: $(cat "$work/err")"

# --- each optimiser's own defaults (AdamW: weight decay 0.01), printed at the start
set -- train "$work/iris.nn" --data "csv:$work/train.csv,label=species" --epochs 2 --seed 1 \
    --optim adamw
"$nabla" "$@" --out "$work/adamw.safetensors" > /dev/null 2> "$work/adamw.err"
check 'grep -q "^optimiser adamw: lr 0.001, weight decay 0.01, betas 0.9 0.999, eps 1e-08$" "$work/adamw.err"' \
    "train prints the optimiser settings: $(cat "$work/adamw.err")"
"$nabla" "$@" --weight-decay 0.01 --out "$work/adamw01.safetensors" --quiet > /dev/null 2>&1
"$nabla" "$@" --weight-decay 0 --out "$work/adamw0.safetensors" --quiet > /dev/null 2>&1
check 'cmp -s "$work/adamw.safetensors" "$work/adamw01.safetensors"' \
    "adamw without --weight-decay trains as with --weight-decay 0.01"
check '! cmp -s "$work/adamw.safetensors" "$work/adamw0.safetensors"' \
    "adamw --weight-decay 0 differs from the default"

# --- IDX files (the Fashion-MNIST test split, when installed)
fm=/usr/share/datasets/fashion-mnist
if [ -f $fm/t10k-images-idx3-ubyte.gz ]; then
    "$nabla" train models/fashion_mlp.nn --data "idx:$fm/t10k-images-idx3-ubyte.gz,$fm/t10k-labels-idx1-ubyte.gz" \
        --epochs 1 --quiet --out "$work/idx.safetensors" > "$work/idx.out" 2>&1
    check '[ $? -eq 0 ]' "train on IDX files: $(cat "$work/idx.out")"
    "$nabla" predict models/fashion_mlp.nn --weights "$work/idx.safetensors" \
        --input "idx:$fm/t10k-images-idx3-ubyte.gz" --limit 5 > "$work/idx.pred" 2>&1
    check '[ $? -eq 0 ] && [ $(wc -l < "$work/idx.pred") -eq 6 ]' "predict IDX images"
else
    echo "skipped: IDX training (dataset-fashion-mnist not installed)"
fi

# --- SIGKILL mid-run, then --resume: bit-identical to an uninterrupted run
awk 'BEGIN { s = 7; print "a,b,c,d,e,f,label";
    for (i = 0; i < 20000; i++) { line = "";
        for (j = 0; j < 6; j++) { s = (s * 1103515245 + 12345) % 2147483648;
            line = line sprintf("%.5f,", s / 2147483648) }
        print line (i % 4) } }' > "$work/big.csv"
cat > "$work/big.nn" <<'EOF'
input 6
dense 512
tanh
dropout 0.1
dense 512
tanh
dense 4
loss cross_entropy
EOF
# the same training every time; run directly (not in a function or subshell)
# so that $! below is the nabla process itself
set -- train "$work/big.nn" --data "csv:$work/big.csv" --epochs 3 --batch 32 --seed 9 \
    --optim adam --threads 1 --checkpoint-every 50 --quiet
"$nabla" "$@" --out "$work/full.safetensors" > /dev/null 2>&1
check '[ $? -eq 0 ]' "uninterrupted run"
"$nabla" "$@" --out "$work/cut.safetensors" > /dev/null 2>&1 &
pid=$!
i=0
while [ ! -f "$work/cut.safetensors.ckpt" ] && [ $i -lt 3000 ]; do sleep 0.01; i=$((i + 1)); done
sleep 0.3
if kill -9 $pid 2>/dev/null; then ok; else bad "the run ended before it could be killed"; fi
wait $pid 2>/dev/null
check '[ ! -f "$work/cut.safetensors" ]' "the killed run wrote no final weights"
check '[ -f "$work/cut.safetensors.ckpt" ]' "the killed run left its checkpoint"
"$nabla" "$@" --out "$work/cut.safetensors" --resume "$work/cut.safetensors.ckpt" \
    > /dev/null 2> "$work/resume.err"
check '[ $? -eq 0 ]' "resume exits 0: $(cat "$work/resume.err")"
check 'cmp -s "$work/full.safetensors" "$work/cut.safetensors"' \
    "resumed weights are bit-identical to the uninterrupted run"
"$nabla" "$@" --out "$work/other.safetensors" --resume "$work/cut.safetensors.ckpt" --batch 64 \
    > /dev/null 2> "$work/e.err"
check '[ $? -eq 1 ] && grep -q "made with --batch 32" "$work/e.err"' \
    "resume with another batch size is refused: $(cat "$work/e.err")"

# --- errors: one line on stderr, non-zero exit, nothing destroyed
nabla_error() { # nabla_error CODE PATTERN ARGS...: expect_error for nabla ARGS
    c=$1
    p=$2
    shift 2
    expect_error "$c" "$p" "$nabla" "$@"
}
nabla_error 2 "unknown command 'trian'" trian
nabla_error 2 "unknown option '--epoch'" train "$work/iris.nn" --data fashion-mnist --epoch 3
nabla_error 2 "needs a value" train "$work/iris.nn" --data
nabla_error 2 "expected an integer from 1" train "$work/iris.nn" --data x --epochs 0
nabla_error 2 "--optim: .*unknown optimiser .adamm" train "$work/iris.nn" --data x --optim adamm
# settings are checked once, by the library, before anything is loaded
nabla_error 2 "--lr / --weight-decay: optim adam: lr = -1, must be >= 0" train "$work/iris.nn" --data x --lr -1
nabla_error 2 "--lr / --weight-decay: optim sgd: weight_decay = -3" train "$work/iris.nn" --data x --optim sgd --weight-decay -3
nabla_error 2 "--clip-norm / --schedule: clip_norm -1 must be finite" train "$work/iris.nn" --data x --clip-norm -1
check '! grep -q "nb_[a-z_]*:" "$work/err"' "no library function names in messages: $(cat "$work/err")"
nabla_error 2 "--lr abc: expected a number" train "$work/iris.nn" --data x --lr abc
nabla_error 1 "no_such.csv: cannot open" train "$work/iris.nn" --data "csv:$work/no_such.csv"
printf 'input 4\ndense 16 inti=he\n' > "$work/bad.nn"
nabla_error 1 "bad.nn:2: dense: unexpected option 'inti=he'" train "$work/bad.nn" --data x
nabla_error 1 "takes 6 values per sample" train "$work/big.nn" --data "csv:$work/train.csv,label=species"
printf 'a,b,c,d,label\n1,2,3,4,0\n1,2,x,4,1\n' > "$work/garbage.csv"
nabla_error 1 "garbage.csv:3: column 3 ('c'): 'x' is not a number" \
    train "$work/iris.nn" --data "csv:$work/garbage.csv"
printf 'a,b,c,d,label\n1,2,3,4,0\n1,2,3,4,7\n' > "$work/labels.csv"
nabla_error 1 "label 7; the model has 3 classes" train "$work/iris.nn" --data "csv:$work/labels.csv"
head -c 100 "$work/iris.safetensors" > "$work/truncated.safetensors"
nabla_error 1 "truncated.safetensors" eval "$work/iris.nn" --weights "$work/truncated.safetensors" \
    --data "csv:$work/train.csv,label=species"
cp "$work/iris.safetensors" "$work/keep.safetensors"
nabla_error 1 "--out .*no_such_dir/w.safetensors: cannot write in directory" train "$work/iris.nn" --data "csv:$work/train.csv,label=species" \
    --epochs 1 --quiet --out "$work/no_such_dir/w.safetensors"
check 'cmp -s "$work/iris.safetensors" "$work/keep.safetensors"' "earlier weights untouched"
# --- arrays: 60 RGB images of 4x4, channels last (HWC) and first (CHW), the
# same pixels; bytes written by printf from octal escapes
npy_u8() { # npy_u8 FILE SHAPE: an .npy header for u8 data of SHAPE, e.g. "60, 4, 4, 3"
    head="{'descr': '|u1', 'fortran_order': False, 'shape': ($2), }"
    pad=$(( (64 - (10 + ${#head} + 1) % 64) % 64 ))
    len=$(( ${#head} + pad + 1 ))
    printf "\223NUMPY\001\000$(printf '\\%03o\\%03o' $((len % 256)) $((len / 256)))" > "$1"
    printf "%s%*s\n" "$head" "$pad" "" >> "$1"
}
pixels() { # pixels hwc|chw: the image bytes as octal escapes
    awk -v order="$1" 'BEGIN { s = 99;
        for (i = 0; i < 60; i++) { c = i % 3;
            for (k = 0; k < 3; k++) for (p = 0; p < 16; p++) {
                s = (s * 1103515245 + 12345) % 2147483648;
                v[k, p] = (k == c ? 120 : 0) + int(s / 2147483648 * 100) }
            if (order == "hwc") { for (p = 0; p < 16; p++) for (k = 0; k < 3; k++) printf "\\%03o", v[k, p] }
            else { for (k = 0; k < 3; k++) for (p = 0; p < 16; p++) printf "\\%03o", v[k, p] } } }'
}
labels() { # labels BAD_SAMPLE BAD_LABEL: i % 3, but BAD_LABEL for sample BAD_SAMPLE
    awk -v b="$1" -v l="$2" 'BEGIN { for (i = 0; i < 60; i++) printf "\\%03o", i == b ? l : i % 3 }'
}
npy_u8 "$work/hwc.npy" "60, 4, 4, 3" && printf "$(pixels hwc)" >> "$work/hwc.npy"
npy_u8 "$work/chw.npy" "60, 3, 4, 4" && printf "$(pixels chw)" >> "$work/chw.npy"
npy_u8 "$work/y.npy" "60," && printf "$(labels -1 0)" >> "$work/y.npy"
npy_u8 "$work/y5.npy" "60," && printf "$(labels 7 5)" >> "$work/y5.npy"
check '[ $(wc -c < "$work/hwc.npy") -eq $((128 + 2880)) ] && [ $(wc -c < "$work/y.npy") -eq $((128 + 60)) ]' \
    "test arrays written: $(wc -c < "$work/hwc.npy") and $(wc -c < "$work/y.npy") bytes"
# the same images as an IDX file: magic 0 0 8 4, then the dimensions big-endian
printf '\000\000\010\004\000\000\000\074\000\000\000\004\000\000\000\004\000\000\000\003' > "$work/hwc-ubyte"
printf "$(pixels hwc)" >> "$work/hwc-ubyte"
cat > "$work/rgb.nn" <<'EOF'
input 3 4 4
conv 4 3 padding=1
relu
flatten
dense 3
loss cross_entropy
EOF
set -- train "$work/rgb.nn" --epochs 2 --batch 8 --seed 5 --quiet
nabla_error 1 "hwc.npy,.*samples are \[4, 4, 3\], channels last (H W C), but the model's input is C H W \[3, 4, 4\]; add ,layout=hwc" \
    "$@" --data "npy:$work/hwc.npy,$work/y.npy"
nabla_error 1 "hwc-ubyte: samples are \[4, 4, 3\], channels last .*layout=hwc" "$@" --data "idx:$work/hwc-ubyte"
"$nabla" "$@" --data "npy:$work/chw.npy,$work/y.npy" --out "$work/chw.safetensors" > "$work/out" 2>&1
check '[ $? -eq 0 ]' "train on a CHW array: $(cat "$work/out")"
"$nabla" "$@" --data "npy:$work/hwc.npy,$work/y.npy,layout=hwc" --out "$work/hwc.safetensors" \
    > "$work/out" 2>&1
check '[ $? -eq 0 ]' "train on an HWC array with layout=hwc: $(cat "$work/out")"
check 'cmp -s "$work/chw.safetensors" "$work/hwc.safetensors"' \
    "layout=hwc gives the weights of the CHW array, byte for byte"
"$nabla" "$@" --data "$work/hwc.npy,$work/y.npy,layout=hwc" --out "$work/plain.safetensors" \
    > "$work/out" 2>&1
check '[ $? -eq 0 ] && cmp -s "$work/chw.safetensors" "$work/plain.safetensors"' \
    "--data X.npy,Y.npy without a prefix: $(cat "$work/out")"
"$nabla" eval "$work/rgb.nn" --weights "$work/chw.safetensors" --data "npy:$work/chw.npy,$work/y.npy" \
    > "$work/out" 2>&1
check '[ $? -eq 0 ] && grep -q "(60 samples)" "$work/out"' "eval on arrays: $(cat "$work/out")"
nabla_error 1 "y5.npy: sample 7 has label 5, which is not a class of the model (it knows classes 0 to 2)" \
    eval "$work/rgb.nn" --weights "$work/chw.safetensors" --data "npy:$work/chw.npy,$work/y5.npy"

# --- data files without a prefix, and messages without function names
"$nabla" train "$work/iris.nn" --data "$work/train.csv,label=species" --epochs 1 --quiet \
    > "$work/out" 2>&1
check '[ $? -eq 0 ]' "--data FILE.csv without csv: works: $(cat "$work/out")"
nabla_error 1 "spiral.txt: unknown data source; write csv:FILE for a CSV file, npy:X.npy,Y.npy" \
    train "$work/iris.nn" --data spiral.txt
check '! grep -q "nb_[a-z_]*:" "$work/err"' "no function name in: $(cat "$work/err")"
nabla_error 1 "layout=sideways" train "$work/rgb.nn" --data "npy:$work/chw.npy,layout=sideways"

# --- a shipped model by name, from any directory
abs=$(cd "$build" && pwd)/nabla
(cd "$work" && "$abs" info fashion_mlp > "$work/info2.out" 2>&1)
check '[ $? -eq 0 ] && grep -q "^model .*models/fashion_mlp.nn$" "$work/info2.out"' \
    "info finds fashion_mlp by name: $(head -n 1 "$work/info2.out")"
(cd "$work" && "$abs" gradcheck fashion_mlp --samples 2 --batch 1 > "$work/gc2.out" 2>&1)
check '[ $? -eq 0 ]' "gradcheck finds fashion_mlp by name: $(cat "$work/gc2.out")"
nabla_error 1 "no_such_model: cannot open" info no_such_model

# nabla export: usage, the file written, a pool without an ONNX counterpart
nabla_error 2 "--weights and --onnx are required" export "$work/iris.nn" --weights "$work/iris.safetensors"
if "$nabla" export "$work/iris.nn" --weights "$work/iris.safetensors" --onnx "$work/iris.onnx" \
    > "$work/export.out" 2>&1; then
    check '[ -s "$work/iris.onnx" ] && grep -q "data.input" "$work/iris.onnx"' "export writes the model"
    # a pool whose ceil_mode drops the last window of one axis only: no ONNX equivalent
    printf 'input 1 1 4\nmaxpool 2 padding=1 ceil=true\nflatten\nfc = dense 3\nloss cross_entropy\n' \
        > "$work/ceil.nn"
    "$nabla" train "$work/ceil.nn" --data "csv:$work/train.csv,label=species" --epochs 1 --quiet \
        --out "$work/ceil.safetensors" > /dev/null 2>&1
    nabla_error 1 "ceil_mode rounds one axis up" export "$work/ceil.nn" --weights "$work/ceil.safetensors" \
        --onnx "$work/ceil.onnx"
    check '[ ! -e "$work/ceil.onnx" ]' "a failed export writes nothing"
    # nabla import: the exported model comes back, predicts the same and trains on
    "$nabla" import "$work/iris.onnx" > "$work/import.out" 2>&1
    check '[ $? -eq 0 ] && grep -q "^dense 16" "$work/import.out" && grep -q "^loss cross_entropy" "$work/import.out"' \
        "import prints the model text: $(cat "$work/import.out")"
    "$nabla" import "$work/iris.onnx" --out "$work/back.nn" --weights "$work/back.safetensors" \
        > "$work/import.out" 2>&1
    check '[ $? -eq 0 ] && [ ! -s "$work/import.out" ] && [ -s "$work/back.nn" ]' \
        "import writes a model file and weights: $(cat "$work/import.out")"
    "$nabla" predict "$work/back.nn" --weights "$work/back.safetensors" \
        --input "csv:$work/features.csv" > "$work/back.csv" 2>&1
    check 'cmp -s "$work/pred.csv" "$work/back.csv"' "the imported model predicts the same (class names included)"
    "$nabla" train "$work/back.nn" --data "csv:$work/train.csv,label=species" --epochs 1 --quiet \
        --init "$work/back.safetensors" --out "$work/back2.safetensors" > "$work/import.out" 2>&1
    check '[ $? -eq 0 ]' "the imported model trains on: $(cat "$work/import.out")"
    nabla_error 2 "--out needs --weights" import "$work/iris.onnx" --out "$work/back.nn"
    nabla_error 2 "--loss hinge" import "$work/iris.onnx" --loss hinge
    nabla_error 2 "--data-input bytes: expected bytes/255 or raw" import "$work/iris.onnx" --data-input bytes
    nabla_error 2 "an output must not replace an input" import "$work/iris.onnx" --out "$work/iris.onnx" \
        --weights "$work/w.safetensors"
    nabla_error 1 "not an ONNX model" import "$work/train.csv"
    mkdir "$work/adir" && mkfifo "$work/fifo"
    nabla_error 1 "--out $work/adir: is a directory" import "$work/iris.onnx" --out "$work/adir" \
        --weights "$work/w.safetensors"
    nabla_error 1 "--weights $work/fifo: is a FIFO" import "$work/iris.onnx" --weights "$work/fifo"
    check '[ -p "$work/fifo" ] && [ ! -e "$work/w.safetensors" ]' "refused outputs stay as they were"
    cp "$work/back.nn" "$work/back.before"
    head -c 200 "$work/iris.onnx" > "$work/cut.onnx"
    nabla_error 1 "cut.onnx: not an ONNX model" import "$work/cut.onnx" --out "$work/back.nn" \
        --weights "$work/back.safetensors"
    check 'cmp -s "$work/back.nn" "$work/back.before"' "a failed import leaves the outputs as they were"
    # tensors in an external data file beside the model, as PyTorch 2 exports them
    cp tests/corpus/onnx_external/mlp.onnx tests/corpus/onnx_external/mlp.onnx.data "$work/"
    cp "$work/mlp.onnx.data" "$work/data.before"
    "$nabla" import "$work/mlp.onnx" > "$work/import.out" 2>&1
    check '[ $? -eq 0 ] && grep -q "^out = dense 3" "$work/import.out"' \
        "import reads external data: $(cat "$work/import.out")"
    nabla_error 1 "--weights $work/mlp.onnx.data is the external data file 'mlp.onnx.data' of" \
        import "$work/mlp.onnx" --out "$work/mlp.nn" --weights "$work/mlp.onnx.data"
    check 'cmp -s "$work/mlp.onnx.data" "$work/data.before" && [ ! -e "$work/mlp.nn" ]' \
        "the external data file is left as it was"
    rm "$work/mlp.onnx.data"
    nabla_error 1 "initializer 'fc.weight': external data '$work/mlp.onnx.data': No such file" \
        import "$work/mlp.onnx"
else
    check 'grep -q "libonnx-dev" "$work/export.out"' "export without ONNX support: $(cat "$work/export.out")"
fi
for cmd in train eval predict info gradcheck export import; do
    "$nabla" $cmd --help > "$work/help" 2>&1
    check '[ $? -eq 0 ] && grep -q "^usage: nabla $cmd" "$work/help"' "nabla $cmd --help"
done
"$nabla" gradcheck "$work/iris.nn" > "$work/gc.out" 2>&1
check '[ $? -eq 0 ] && grep -q "passed" "$work/gc.out"' "gradcheck: $(cat "$work/gc.out")"

# the shipped convolutional models, in double precision (conv, pooling, batch
# norm, dropout, residual projections)
for m in fashion_cnn fashion_resnet; do
    "$nabla" gradcheck models/$m.nn --samples 3 --batch 2 > "$work/gc.out" 2>&1
    check '[ $? -eq 0 ] && grep -q "0 outside tolerance" "$work/gc.out"' "gradcheck $m: $(cat "$work/gc.out")"
done

finish
