#!/bin/sh
# The bench's own parts without its peers: nabla-bench prints the models the
# peer scripts build (same parameter counts), saves trained weights that
# nabla export turns into ONNX files, rejects bad options with exit 2, and
# bench/table.awk turns result lines into the right best figures and ratios.
# Usage: test_bench_cli.sh BUILD_DIR
. "$(dirname "$0")/support/harness.sh"
bench=$build/bench/nabla-bench

# --- the models: the parameter counts of the peers' models (torch_train.py's
# nn.Sequential models; torch_seq.py's GRU: 27*16 + 3*64*(16+64+2) + 64*27+27,
# and transformer: (27+16)*32 + 2 blocks of 2*64 + 4*32*32+4*32 + 32*128+128
# + 128*32+32, + 64 + 32*27+27; jax_seq.py's are the same arrays)
for mp in mlp:235146 mlp-wide:1863690 cnn:225034 cnn-bn:421738 gru:17931 transformer:27739; do
    m=${mp%%:*}
    "$bench" --print-model "$m" > "$work/$m.nn"
    check '[ $? -eq 0 ]' "nabla-bench --print-model $m exits 0"
    "$nabla" info "$work/$m.nn" > "$work/info.out" 2>&1
    check 'grep -q "^parameters: ${mp#*:} " "$work/info.out"' \
        "$m has ${mp#*:} parameters: $(grep parameters "$work/info.out")"
done
expect_error 2 "nabla-bench: --print-model: unknown model 'resnet'" "$bench" --print-model resnet
"$bench" --model gru,resnet > "$work/out" 2> "$work/err"
check '[ $? -eq 2 ] && grep -q "^nabla-bench: unknown model .resnet.$" "$work/err"' \
    "an unknown name in a --model list is a usage error naming it: $(cat "$work/err")"
"$bench" --model none --no-sgemm > "$work/out" 2> "$work/err"
check '[ $? -eq 0 ] && ! grep -q "^RESULT" "$work/out" && [ ! -s "$work/err" ]' \
    "--model none (the sgemm alone) with --no-sgemm runs nothing: $(cat "$work/out" "$work/err")"
"$bench" --latency-runs 0 > "$work/out" 2> "$work/err"
check '[ $? -eq 2 ] && grep -q "^usage: nabla-bench" "$work/err"' "--latency-runs 0 is a usage error"
"$bench" --batches > "$work/out" 2> "$work/err"
check '[ $? -eq 2 ] && grep -q "^usage: nabla-bench" "$work/err"' "a flag without its value is a usage error"

# --- one short run: result and kernel lines, weights that export to ONNX
if [ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
    "$bench" --model mlp --threads 1 --batches 2 --latency-runs 5 --no-sgemm \
        --save-weights "$work" > "$work/run.out" 2> "$work/run.err"
    check '[ $? -eq 0 ]' "a short nabla-bench run exits 0: $(cat "$work/run.err")"
    check 'grep -q "^RESULT model=mlp threads=1 batch=128 batches=2 samples_per_s=[0-9]" "$work/run.out"' \
        "it prints mlp's result line: $(cat "$work/run.out")"
    check 'grep -q "^KERNELS nabla: float products: " "$work/run.out"' "it says which kernel runs"
    # --op-times: a row per op that took time (mlp's three dense layers), then the rest
    "$bench" --model mlp --threads 1 --batches 3 --latency-runs 2 --no-sgemm --op-times \
        > "$work/ops.out" 2> "$work/ops.err"
    check '[ $? -eq 0 ] && grep -q "^OP_TIMES model=mlp threads=1: microseconds a step (3 steps)$" "$work/ops.out"' \
        "--op-times heads its table: $(cat "$work/ops.out" "$work/ops.err")"
    check '[ $(awk "\$3 == \"linear\" && \$4 > 0 && \$5 > 0" "$work/ops.out" | wc -l) -eq 3 ]' \
        "three dense layers with forward and backward time: $(cat "$work/ops.out")"
    check 'grep -q "^  batch conversion [0-9.]*, optimiser [0-9.]*, ops [0-9.]*, the rest -*[0-9.]*: step [0-9.]*$" "$work/ops.out"' \
        "--op-times ends with the step's other parts"
    "$nabla" export "$work/mlp.nn" --weights "$work/mlp.safetensors" --onnx "$work/mlp.onnx" \
        --logits > "$work/export.out" 2>&1
    check '[ $? -eq 0 ] && [ -s "$work/mlp.onnx" ]' "nabla export takes the saved weights: $(cat "$work/export.out")"
    "$bench" --model mlp --batches 1 --latency-runs 1 --no-sgemm --save-weights "$work/none" \
        > "$work/out" 2> "$work/err"
    check '[ $? -eq 1 ] && grep -q "^nabla-bench: mlp: save weights: $work/none/mlp.safetensors" "$work/err"' \
        "an unwritable --save-weights fails naming the file: $(cat "$work/err")"
else
    echo "skipped: nabla-bench run (dataset-fashion-mnist not installed)"
fi

# --- the sequence models: a short run on the word stream, tokens per second
if [ -f /usr/share/dict/words ]; then
    for m in gru transformer; do
        "$bench" --model "$m" --threads 1 --batches 2 --latency-runs 2 --no-sgemm \
            > "$work/$m.out" 2> "$work/$m.err"
        check '[ $? -eq 0 ]' "a short nabla-bench --model $m run exits 0: $(cat "$work/$m.err")"
        check 'grep -q "^RESULT model=$m threads=1 batch=32 batches=2 samples_per_s=[0-9]* tokens_per_s=[0-9]* context=16 .* params=" "$work/$m.out"' \
            "it prints $m's result line with tokens/s: $(cat "$work/$m.out")"
    done
    NB_WORDS="$work/no-such-file" "$bench" --model gru --batches 1 --latency-runs 1 --no-sgemm \
        > "$work/out" 2> "$work/err"
    check '[ $? -eq 1 ] && grep -q "^nabla-bench: gru: data: cannot open $work/no-such-file" "$work/err"' \
        "a missing word list fails naming the file: $(cat "$work/err")"
else
    echo "skipped: nabla-bench sequence runs (wamerican not installed)"
fi

# --- the tables: best thread count per side, ratios against the best peer
cat > "$work/results" <<'R'
nabla RESULT model=mlp threads=1 batch=128 batches=9 samples_per_s=1000 gflops=1.00 latency_us=5.0 peak_rss_mb=1
nabla RESULT model=mlp threads=2 batch=128 batches=9 samples_per_s=3000 gflops=3.00 latency_us=6.0 peak_rss_mb=1
nabla RESULT sgemm kernel=nabla n=2048 threads=2 gflops=6.0 max_rel_err=1e-07 core="x"
nabla-openblas RESULT model=mlp threads=1 batch=128 batches=9 samples_per_s=600 gflops=0.6 latency_us=9.0 peak_rss_mb=1
torch2-eager RESULT label=torch2-eager model=mlp threads=2 batches=9 samples_per_s=800 loss=1
torch2-compile RESULT label=torch2-compile model=mlp threads=1 batches=9 samples_per_s=1200 loss=1
jax RESULT label=jax model=mlp threads=1 batches=9 samples_per_s=1500 loss=1
jax RESULT label=jax model=mlp threads=2 batches=9 samples_per_s=1400 loss=1
ort RESULT label=ort model=mlp threads=1 runs=9 latency_us=10.0 call=run
ort RESULT label=ort model=mlp threads=2 runs=9 latency_us=12.0 call=run
nabla RESULT model=mlp threads=2 batch=128 batches=9 samples_per_s=2500 gflops=2.50 latency_us=4.0 peak_rss_mb=1
nabla-avx2 RESULT model=mlp threads=2 batch=128 batches=9 samples_per_s=2400 gflops=2.4 latency_us=8.0 peak_rss_mb=1
nabla-avx2 RESULT model=mlp threads=1 batch=128 batches=9 samples_per_s=1800 gflops=1.8 latency_us=7.5 peak_rss_mb=1
R
awk -v models="mlp cnn" -v rounds=2 -f bench/table.awk "$work/results" > "$work/table" 2> "$work/err"
check '[ $? -eq 0 ] && [ ! -s "$work/err" ]' "table.awk runs: $(cat "$work/err")"
check 'grep -q "^| mlp | 3000 (2t) | 800 (2t) | 1200 (1t) | 1500 (1t) | missing | \*\*2.00×\*\* (jax) | 3.0 | 50% |$" "$work/table"' \
    "training row: best of each side, 3000 / 1500 against jax, 3 of 6 GFLOP/s: $(cat "$work/table")"
check 'grep -q "^| mlp | 4.0 (2t) | 10.0 (1t) | \*\*2.50×\*\* |$" "$work/table"' \
    "latency row: 10 / 4, the later round's lower latency: $(cat "$work/table")"
check 'grep -q "^Each figure: the best of 2 rounds" "$work/table"' "the rounds are said"
check 'grep -q "^| mlp | 2400 (2t) | 1200 (1t) compile | \*\*2.00×\*\* | 7.5 (1t) | 10.0 (1t) | \*\*1.33×\*\* |$" "$work/table"' \
    "AVX2 row: 2400 against 1200, latency 7.5 against 10"
check 'grep -q "^| mlp | 600 (1t) | 1200 (1t) compile | \*\*0.50×\*\* | 5.00× |$" "$work/table"' \
    "OpenBLAS row: 600 against torch.compile's 1200"
check 'grep -q "^| cnn | missing | missing | missing | missing | missing | - |" "$work/table"' \
    "a model without figures is missing, not a failure"

# --- the sequence tables: tokens/s, the best peer, the parameter counts
cat > "$work/seq" <<'R'
nabla RESULT model=gru threads=1 batch=32 batches=9 samples_per_s=500 tokens_per_s=8000 context=16 gflops=2.00 latency_us=5.0 peak_rss_mb=1 loss=3 params=17931
nabla RESULT model=gru threads=2 batch=32 batches=9 samples_per_s=400 tokens_per_s=6400 context=16 gflops=1.60 latency_us=5.0 peak_rss_mb=1 loss=3 params=17931
nabla RESULT sgemm kernel=nabla n=2048 threads=1 gflops=8.0 max_rel_err=1e-07 core="x"
torch2-eager RESULT label=torch2-eager model=gru threads=2 batches=9 samples_per_s=250 tokens_per_s=4000 context=16 loss=3 params=17931
jax RESULT label=jax model=gru threads=1 batches=9 samples_per_s=125 tokens_per_s=2000 context=16 loss=3 params=17931
jax RESULT label=jax model=transformer threads=1 batches=9 samples_per_s=100 tokens_per_s=1600 context=16 loss=3 params=27000
nabla RESULT model=transformer threads=1 batch=32 batches=9 samples_per_s=100 tokens_per_s=1600 context=16 gflops=1 latency_us=5.0 peak_rss_mb=1 loss=3 params=27739
R
awk -v models="" -v seq_models="gru transformer" -f bench/table.awk "$work/seq" > "$work/table" 2> "$work/err"
check '[ $? -eq 0 ] && [ ! -s "$work/err" ]' "table.awk runs on sequence results alone: $(cat "$work/err")"
check 'grep -q "^| gru | 8000 (1t) | 4000 (2t) | missing | 2000 (1t) | missing | \*\*2.00×\*\* (torch2-eager) | 2.0 | 25% |$" "$work/table"' \
    "tokens/s row: 8000 / 4000 against eager, 2 of 8 GFLOP/s: $(cat "$work/table")"
check 'grep -q "^parameters: gru 17931 on every side that ran$" "$work/table"' "equal counts are said"
check 'grep -q "^PARAMETERS DIFFER: transformer: nabla 27739, jax 27000$" "$work/table"' \
    "a peer with another parameter count is flagged"
check '! grep -q "Fashion-MNIST" "$work/table"' "no image tables without image models"
finish
