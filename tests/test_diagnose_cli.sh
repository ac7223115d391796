#!/bin/sh
# nabla train --diagnose and NaN/inf handling end to end: a sigmoid MLP
# initialised far too large is reported as saturated (a WARNING naming the
# layer); a model that overflows names the node and op; a run that diverges
# stops with exit code 1 leaving the last checkpoint and the weights file
# byte for byte as they were; an update that overflows is never checkpointed.
# Usage: test_diagnose_cli.sh BUILD_DIR
. "$(dirname "$0")/support/harness.sh"

iris_csv "$work/train.csv" numeric # 3 classes of 4 features, labels 0-2
data="csv:$work/train.csv"

# --- saturation: N(0, 3^2) weights make the pre-activations of the second
# layer spread over +-10 and more, so most sigmoid values sit in the flat tails
cat > "$work/sat.nn" <<'EOF'
input 4
dense 32 init=normal:3
sigmoid
dense 32 init=normal:3
sigmoid
dense 3
loss cross_entropy
EOF
"$nabla" train "$work/sat.nn" --data "$data" --epochs 2 --batch 32 --seed 1 --quiet \
    --diagnose --diagnose-log "$work/diag.csv" > "$work/sat.out" 2> "$work/sat.err"
check '[ $? -eq 0 ]' "--diagnose run exits 0: $(cat "$work/sat.err")"
check '[ $(grep -c "^diagnostics: epoch [12], batch 1 (optimiser step \(1\|11\), 32 samples)$" "$work/sat.err") -eq 2 ]' \
    "one table per epoch, on its first batch: $(grep diagnostics "$work/sat.err")"
check 'grep -q "^  layer  *op  *mean  *std  *dead%  *sat%  *grad norm  *upd/weight$" "$work/sat.err"' \
    "table header: $(head -n 2 "$work/sat.err")"
check 'grep -q "^WARNING: layer .3. (sigmoid): [0-9.]*% of its values are saturated (outside \[0.01, 0.99\]" "$work/sat.err"' \
    "saturation WARNING names the second sigmoid layer: $(grep WARNING "$work/sat.err")"
# the saturated fraction printed in the table is the one warned about
sat=$(awk '$1 == "3" && $2 == "sigmoid" { print $6; exit }' "$work/sat.err")
check 'awk -v s="$sat" "BEGIN { exit !(s > 50) }"' "layer 3 saturated $sat% > 50%"
check 'grep -q "^  0.weight  *param " "$work/sat.err"' "parameters have rows"
check '[ "$(head -n 1 "$work/diag.csv")" = "epoch,step,layer,op,numel,mean,std,dead,saturated,grad_norm,weight_norm,update_ratio,warnings" ]' \
    "diagnose log header: $(head -n 1 "$work/diag.csv")"
check '[ $(wc -l < "$work/diag.csv") -eq 23 ]' "log: 11 rows per diagnosis, 2 diagnoses"
check 'grep -q "^1,1,3,sigmoid,1024,.*,saturated$" "$work/diag.csv"' "log flags the saturated layer"
check '[ ! -s "$work/sat.out" ]' "nothing on stdout"
# a sensible model (ReLU, He init) raises no saturation or dead-unit warning
sed -e 's/init=normal:3/init=he/' -e 's/sigmoid/relu/' "$work/sat.nn" > "$work/good.nn"
"$nabla" train "$work/good.nn" --data "$data" --epochs 2 --batch 32 --seed 1 --quiet \
    --diagnose-every 5 > /dev/null 2> "$work/good.err"
check '[ $? -eq 0 ]' "good model: $(cat "$work/good.err")"
check '[ $(grep -c "^diagnostics:" "$work/good.err") -eq 4 ]' "--diagnose-every 5: steps 1, 6, 11, 16"
check '! grep -q "saturated\|dead (" "$work/good.err"' "no saturation or dead-unit warning: $(grep WARNING "$work/good.err")"
check 'grep -q "^  1  *relu  .* 0.0  *- " "$work/good.err"' "relu rows show dead% and no sat%"

# --- an op that overflows: 1e30 * 1e30 is beyond float; the message names
# the node and its op, and no weights file is written
cat > "$work/inf.nn" <<'EOF'
input 4
dense 8
big = scale 1e30
huge = scale 1e30
dense 3
loss cross_entropy
EOF
"$nabla" train "$work/inf.nn" --data "$data" --epochs 2 --batch 32 --quiet \
    --out "$work/inf.safetensors" > /dev/null 2> "$work/inf.err"
rc=$?
check '[ $rc -eq 1 ]' "overflow exits 1 (got $rc)"
check 'grep -q "nabla train: loss is NaN at epoch 1, step 1 of 10 (optimiser step 1): the forward value of node .huge. (scale) is -\{0,1\}inf (.*); its inputs are finite" "$work/inf.err"' \
    "overflow names node 'huge' (scale): $(cat "$work/inf.err")"
check 'grep -q "(no checkpoint was written)$" "$work/inf.err"' "says no checkpoint was written"
check '[ $(grep -c . "$work/inf.err") -eq 1 ]' "one line"
check '[ ! -e "$work/inf.safetensors" ] && [ ! -e "$work/inf.safetensors.ckpt" ]' "no weights, no checkpoint"

# --- divergence after some epochs (SGD, learning rate too large for this
# regression).  The first run finds the epoch E where it blows up; then E-1
# epochs are trained with a checkpoint, and resuming them for epoch E must
# fail the same way, leaving checkpoint and weights untouched.
cat > "$work/div.nn" <<'EOF'
input 4
dense 16
tanh
dense 1
loss mse
EOF
set -- train "$work/div.nn" --data "$data" --batch 32 --optim sgd --lr 0.5 --seed 2 --threads 1 --quiet
"$nabla" "$@" --epochs 50 > /dev/null 2> "$work/div0.err"
rc=$?
e=$(sed -n 's/.* is [-a-z]* at epoch \([0-9]*\), step .*/\1/p' "$work/div0.err")
check '[ $rc -eq 1 ] && [ -n "$e" ] && [ "$e" -ge 2 ]' "divergence after epoch 1 (exit $rc): $(cat "$work/div0.err")"
check 'grep -q "the forward value of node .[^ ]*. ([a-z_0-9]*) is -\{0,1\}\(inf\|NaN\)" "$work/div0.err"' \
    "divergence names the node and op: $(cat "$work/div0.err")"
if [ -n "$e" ] && [ "$e" -ge 2 ]; then
    "$nabla" "$@" --epochs $((e - 1)) --out "$work/div.safetensors" > /dev/null 2> "$work/div1.err"
    check '[ $? -eq 0 ]' "the first $((e - 1)) epochs train: $(cat "$work/div1.err")"
    cp "$work/div.safetensors" "$work/keep.safetensors"
    cp "$work/div.safetensors.ckpt" "$work/keep.ckpt"
    "$nabla" "$@" --epochs "$e" --out "$work/div.safetensors" \
        --resume "$work/div.safetensors.ckpt" > /dev/null 2> "$work/div2.err"
    rc=$?
    check '[ $rc -eq 1 ]' "the resumed run fails with exit 1 (got $rc): $(cat "$work/div2.err")"
    # the same step and the same node as the uninterrupted run
    check '[ "$(sed "s/ (checkpoint .*//" "$work/div2.err")" = "$(sed "s/ (no checkpoint.*//" "$work/div0.err")" ]' \
        "the same message as the uninterrupted run: $(cat "$work/div2.err") vs $(cat "$work/div0.err")"
    check 'grep -q "(checkpoint .*div.safetensors.ckpt, from step [0-9]*, is intact)$" "$work/div2.err"' \
        "says the checkpoint is intact: $(cat "$work/div2.err")"
    check 'cmp -s "$work/div.safetensors.ckpt" "$work/keep.ckpt"' "checkpoint byte for byte unchanged"
    check 'cmp -s "$work/div.safetensors" "$work/keep.safetensors"' "weights byte for byte unchanged"
fi

# --- an update that overflows (inputs scaled to 1e33 give weight gradients near
# 1e33; times the learning rate 1e6 that is beyond float).  The gradients are
# finite, so the step is taken; --checkpoint-every 1 would then save infinite
# weights over the last good checkpoint, which must not happen.
cat > "$work/ovf.nn" <<'EOF'
input 4
scale 1e33
dense 3
loss cross_entropy
EOF
echo "an earlier good checkpoint" > "$work/ovf.ckpt"
cp "$work/ovf.ckpt" "$work/ovf.keep"
"$nabla" train "$work/ovf.nn" --data "$data" --epochs 2 --batch 32 --optim sgd --lr 1e6 --quiet \
    --checkpoint "$work/ovf.ckpt" --checkpoint-every 1 > /dev/null 2> "$work/ovf.err"
rc=$?
check '[ $rc -eq 1 ] && grep -q "^nabla train: after optimiser step 1 parameter .1.weight. is infinite (element [0-9]*): an update overflowed; lower the learning rate (checkpoint .*ovf.ckpt not written)$" "$work/ovf.err"' \
    "an overflowing update is not checkpointed (exit $rc): $(cat "$work/ovf.err")"
check 'cmp -s "$work/ovf.ckpt" "$work/ovf.keep"' "the earlier checkpoint is untouched"
# without mid-epoch checkpoints the next step's loss names the parameter
"$nabla" train "$work/ovf.nn" --data "$data" --epochs 2 --batch 32 --optim sgd --lr 1e6 --quiet \
    > /dev/null 2> "$work/ovf2.err"
check 'grep -q "(optimiser step 2): parameter .1.weight. holds -\{0,1\}inf (.*); it is read by .1. (linear); optimiser step 1 wrote it from finite gradients" "$work/ovf2.err"' \
    "the next step names the parameter: $(cat "$work/ovf2.err")"

# --- usage
"$nabla" train --help > "$work/help"
check 'grep -q -- "--diagnose-every N" "$work/help" && grep -q -- "--diagnose-log FILE" "$work/help"' \
    "--help documents the flags"
"$nabla" train "$work/sat.nn" --data "$data" --diagnose-every 0 > /dev/null 2> "$work/err"
check '[ $? -eq 2 ] && grep -q "diagnose-every" "$work/err"' "--diagnose-every 0 is refused: $(cat "$work/err")"

# --- --op-times: after training, a row per op with time (also with --quiet),
# the dense layers' forward and backward, the shares under the run's total
"$nabla" train "$work/sat.nn" --data "$data" --epochs 2 --batch 32 --seed 1 --quiet \
    --op-times > /dev/null 2> "$work/ops.err"
check '[ $? -eq 0 ] && grep -q "^time per op over the run ([0-9.]* s):$" "$work/ops.err"' \
    "--op-times prints its table: $(cat "$work/ops.err")"
check '[ $(awk "\$2 == \"linear\" && \$3 > 0 && \$4 > 0" "$work/ops.err" | wc -l) -eq 3 ]' \
    "three dense layers with forward and backward seconds: $(cat "$work/ops.err")"
check 'awk "/%\$/ { s += \$5 } END { exit !(s > 0 && s <= 100) }" "$work/ops.err"' \
    "the shares add up to at most the whole run"
check 'grep -q "^  the ops [0-9.]* s; the rest of the run [0-9.]* s$" "$work/ops.err"' "and the rest"

finish
