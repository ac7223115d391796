#!/bin/sh
# nabla generate: words sampled from a character model trained on lines:
# data, with a window model (context=3) and with the shipped whole-line models
# (models/words_gru.nn, models/words_transformer.nn); greedy decoding and
# seeded sampling repeat; bad models, weights, prompts and flags are errors.
# Usage: test_generate_cli.sh BUILD_DIR
. "$(dirname "$0")/support/harness.sh"
root=$(cd "$(dirname "$0")/.." && pwd)

# a word list over 9 characters (8 letters and the boundary): after "w"
# only "wxy" follows, after "a" only "abcd"; the other words add variety
i=0
while [ $i -lt 20 ]; do printf 'abcd\nwxy\nbead\ncafe\nface\ndab\n'; i=$((i + 1)); done > "$work/words.txt"
# 9 letters and the boundary
cat > "$work/mlp.nn" <<'NN'
input 3 tokens=10
embedding 8
flatten
dense 48
tanh
dense 10
loss cross_entropy
NN
letters='[abcdefwxy]'
check '"$nabla" train "$work/mlp.nn" --data "lines:$work/words.txt,context=3" --epochs 40 --batch 16 --lr 0.02 --seed 1 --quiet --out "$work/mlp.safetensors"' \
    "train a window model on lines:"
gen() { "$nabla" generate "$work/mlp.nn" --weights "$work/mlp.safetensors" "$@"; }

# --- samples: one per line, made of the vocabulary's characters
check 'gen --count 20 --seed 1 > "$work/s1" && [ "$(wc -l < "$work/s1")" -eq 20 ]' "20 samples"
check '! grep -v -x "$letters*" "$work/s1" > "$work/odd"' "samples of vocabulary characters only"
check 'grep -q -x -e abcd -e wxy -e bead -e cafe -e face -e dab "$work/s1"' "the training words come out: $(cat "$work/s1")"
# the same seed repeats, another seed differs; sample i does not depend on --count
check 'gen --count 20 --seed 1 > "$work/s1b" && cmp -s "$work/s1" "$work/s1b"' "the same seed repeats the samples"
check 'gen --count 20 --seed 2 > "$work/s2" && ! cmp -s "$work/s1" "$work/s2"' "another seed gives other samples"
check 'gen --count 3 --seed 1 > "$work/s3" && head -n 3 "$work/s1" | cmp -s - "$work/s3"' \
    "the first samples of --count 3 are those of --count 20"
# temperature 0 is greedy: the same for every seed; top-k 1 is greedy too
check 'gen --count 4 --temperature 0 --seed 1 > "$work/g1" && gen --count 4 --temperature 0 --seed 9 > "$work/g2" && cmp -s "$work/g1" "$work/g2"' \
    "temperature 0 does not depend on the seed"
check '[ "$(sort -u "$work/g1" | wc -l)" -eq 1 ]' "greedy samples are all the same: $(cat "$work/g1")"
check 'gen --count 4 --top-k 1 --seed 5 | cmp -s - "$work/g1"' "top-k 1 equals greedy"
# the prompt starts every sample, and the model continues it
check '[ "$(gen --prompt w --temperature 0 --count 1)" = wxy ]' "greedy after w: $(gen --prompt w --temperature 0 --count 1)"
check '[ "$(gen --prompt ab --temperature 0 --count 1)" = abcd ]' "greedy after ab: $(gen --prompt ab --temperature 0 --count 1)"
check 'gen --prompt ca --count 10 --seed 3 > "$work/p" && ! grep -v "^ca" "$work/p"' "samples start with the prompt"
check 'gen --prompt ab --max-length 3 --count 5 > "$work/m" && ! grep -v -x "ab$letters\\{0,1\\}" "$work/m"' \
    "--max-length 3 caps the samples"
# a high temperature and top-k 2 still give vocabulary characters
check 'gen --temperature 5 --top-k 2 --count 20 --seed 4 --max-length 30 > "$work/t" && ! grep -v -x "$letters*" "$work/t"' \
    "--temperature 5 --top-k 2 samples"

# --- the shipped whole-line models, sized for this list by their variables
for name in words_gru words_transformer; do
    check '"$nabla" train "$root/models/$name.nn" --set vocab=10 --set length=6 --data "lines:$work/words.txt" --epochs 30 --batch 16 --lr 0.01 --seed 1 --quiet --out "$work/$name.safetensors"' \
        "train models/$name.nn on lines:"
    wgen() { "$nabla" generate "$root/models/$name.nn" --set vocab=10 --set length=6 --weights "$work/$name.safetensors" "$@"; }
    check 'wgen --count 20 --seed 7 > "$work/$name.1" && wgen --count 20 --seed 7 | cmp -s - "$work/$name.1"' \
        "$name: the same seed, the same words"
    check '! grep -v -x "$letters*" "$work/$name.1"' "$name: words of vocabulary characters"
    check '[ "$(wgen --prompt w --temperature 0 --count 1)" = wxy ]' "$name: greedy after w: $(wgen --prompt w --temperature 0 --count 1)"
    check '[ "$(wgen --prompt ab --temperature 0 --count 1)" = abcd ]' "$name: greedy after ab: $(wgen --prompt ab --temperature 0 --count 1)"
done

# --- a model of a character stream (text:): a sample ends at a newline
printf 'input 8 tokens=10\nembedding 8\ngru 32\ndense 10\nloss cross_entropy\n' > "$work/stream.nn"
check '"$nabla" train "$work/stream.nn" --data "text:$work/words.txt,context=8" --epochs 3 --batch 32 --lr 0.01 --seed 1 --quiet --out "$work/stream.safetensors"' \
    "train a stream model on text:"
check '"$nabla" generate "$work/stream.nn" --weights "$work/stream.safetensors" --count 10 --seed 2 > "$work/st" && [ "$(wc -l < "$work/st")" -eq 10 ] && ! grep -v -x "$letters*" "$work/st"' \
    "stream samples, one line each"
check '[ "$("$nabla" generate "$work/stream.nn" --weights "$work/stream.safetensors" --prompt w --temperature 0 --count 1)" = wxy ]' \
    "stream model: greedy after w"

# --- errors
expect_error 2 "--prompt: character 2 'z' is not in the model's vocabulary (10 characters)" \
    "$nabla" generate "$work/mlp.nn" --weights "$work/mlp.safetensors" --prompt az
expect_error 2 "--temperature" \
    "$nabla" generate "$work/mlp.nn" --weights "$work/mlp.safetensors" --temperature -1
expect_error 2 "--top-k" "$nabla" generate "$work/mlp.nn" --weights "$work/mlp.safetensors" --top-k 0
expect_error 2 "--count" "$nabla" generate "$work/mlp.nn" --weights "$work/mlp.safetensors" --count x
expect_error 2 "--weights is required" "$nabla" generate "$work/mlp.nn"
expect_error 2 "unknown" "$nabla" generate "$work/mlp.nn" --weights "$work/mlp.safetensors" --colour red
# a model whose input is not tokens
printf 'input 3\ndense 16\ntanh\ndense 10\nloss cross_entropy\n' > "$work/plain.nn"
check '"$nabla" train "$work/plain.nn" --data "lines:$work/words.txt,context=3" --epochs 1 --quiet --out "$work/plain.safetensors"' \
    "train a model of ids as numbers"
expect_error 1 "$work/plain.nn: the input is not tokens" \
    "$nabla" generate "$work/plain.nn" --weights "$work/plain.safetensors"
# weights without a vocabulary: token ids from a CSV file
printf '1,2,3,4\n2,3,1,0\n3,1,2,2\n0,0,1,3\n' > "$work/ids.csv"
printf 'input 3 tokens=5\nembedding 4\nflatten\ndense 5\nloss cross_entropy\n' > "$work/ids.nn"
check '"$nabla" train "$work/ids.nn" --data "csv:$work/ids.csv,header=no" --epochs 1 --quiet --out "$work/ids.safetensors"' \
    "train a token model on CSV ids"
expect_error 1 "the weights have no vocabulary" \
    "$nabla" generate "$work/ids.nn" --weights "$work/ids.safetensors"
finish
