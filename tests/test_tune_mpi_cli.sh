#!/bin/sh
# mpirun nabla tune (docs/tune.md): rank 0 schedules, ranks 1..N-1 train.
#  - random search on 2 worker ranks gives the same CSV and best weights as
#    --jobs 2 locally (random search does not depend on the order);
#  - ASHA on 2 worker ranks: a complete CSV, best weights that evaluate;
#  - Ctrl-C (SIGINT to rank 0) stops the trials on the workers, and
#    --resume under mpirun ends with the CSV and weights of an uninterrupted
#    search;
#  - --jobs under mpirun is a usage error;
#  - a worker that cannot see the search directory stops the search with a
#    clear error (ranks in another working directory, --out relative).
# Usage: test_tune_mpi_cli.sh BUILD_DIR MPIEXEC (MPIEXEC empty: no MPI, skip)
. "$(dirname "$0")/support/harness.sh"
mpiexec=${2:-}
if [ -z "$mpiexec" ]; then echo "skipped: nabla was built without MPI"; exit 77; fi
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mpi3() { "$mpiexec" --oversubscribe --bind-to none -np 3 "$@"; }

iris_csv "$work/iris.csv" numeric
. "$(dirname "$0")/support/tune.sh"
tune_model "$work/m.nn"
search "$work/s.json" "$work/iris.csv"

# --- random search: 2 ranks against 2 local jobs
"$nabla" tune "$work/s.json" --out "$work/local" --strategy random --jobs 2 --quiet \
    > "$work/local.out" 2> "$work/err"
check '[ $? -eq 0 ]' "local random search: $(cat "$work/err")"
mpi3 "$nabla" tune "$work/s.json" --out "$work/ranks" --strategy random --quiet \
    > "$work/ranks.out" 2> "$work/ranks.err"
check '[ $? -eq 0 ]' "mpirun -np 3 nabla tune --strategy random: $(cat "$work/ranks.err")"
check '[ "$(grep -c . "$work/ranks/trials.csv")" -eq 10 ]' \
    "trials.csv has 9 trials: $(cat "$work/ranks/trials.csv")"
check 'cmp -s "$work/local/trials.csv" "$work/ranks/trials.csv"' \
    "the same CSV as --jobs 2: $(diff "$work/local/trials.csv" "$work/ranks/trials.csv")"
check 'cmp -s "$work/local/best.safetensors" "$work/ranks/best.safetensors"' \
    "the same best weights as --jobs 2"
check '[ "$(grep -h "^epoch 1/" "$work/ranks/trials/"*.out | grep -c .)" -eq 9 ]' \
    "every trial trained: $(ls "$work/ranks/trials")"
# two trials at once: the journal starts trials 1 and 2 before either is done
check '[ "$(sed -n "3,4p" "$work/ranks/journal" | tr "\n" ";")" = "start 1 2;start 2 2;" ]' \
    "2 workers, 2 trials at a time: $(cat "$work/ranks/journal")"

# --- ASHA: complete, and the best weights evaluate
mpi3 "$nabla" tune "$work/s.json" --out "$work/asha" > "$work/asha.out" 2> "$work/asha.err"
check '[ $? -eq 0 ]' "mpirun -np 3 nabla tune (ASHA): $(cat "$work/asha.err")"
csv=$work/asha/trials.csv
check '[ "$(grep -c . "$csv")" -eq 10 ] &&
       [ "$(awk -F, "NR > 1 && (\$2 == \"done\" || \$2 == \"stopped\") && \$9 != \"\"" "$csv" | grep -c .)" -eq 9 ]' \
    "ASHA's trials.csv has 9 judged trials: $(cat "$csv")"
check '[ "$(awk -F, "\$4 == 9 && \$11 != \"\"" "$csv" | grep -c .)" -ge 1 ]' \
    "a trial trained 9 epochs: $(cat "$csv")"
check '[ "$(grep -c "^ *[0-9]*[* ] \(done\|stopped\)" "$work/asha.out")" -eq 9 ]' \
    "the table: $(cat "$work/asha.out")"
best=$(sed -n 's/^best: trial \([0-9]*\) .*/\1/p' "$work/asha.out")
width=$(awk -F, -v t="$best" '$1 == t { print $8 }' "$csv")
"$nabla" eval "$work/m.nn" --set "width=$width" --weights "$work/asha/best.safetensors" \
    --data "csv:$work/iris.csv" > "$work/out" 2> "$work/err"
check '[ $? -eq 0 ]' "eval of best.safetensors (trial $best, width $width): $(cat "$work/err")"

# --- stopped, then --resume: as if never interrupted (random search, 4 trials
# of 81 epochs on 6000 rows, interrupted when trial 1 reaches epoch 3)
awk 'BEGIN { s = 99; print "a,b,c,d,label";
    for (i = 0; i < 6000; i++) { c = i % 3; line = "";
        for (j = 0; j < 4; j++) { s = (s * 1103515245 + 12345) % 2147483648;
            line = line (j ? "," : "") sprintf("%.4f", c * (j + 1) / 3 + (s / 2147483648 - 0.5) * 4) }
        print line "," c } }' > "$work/big.csv"
sed -e "s|$work/iris.csv|$work/big.csv|" -e 's/"trials": 9/"trials": 4/' \
    -e 's/"max_epochs": 9/"max_epochs": 81/' "$work/s.json" > "$work/b.json"
"$nabla" tune "$work/b.json" --out "$work/b1" --strategy random --jobs 2 --quiet \
    > "$work/out" 2> "$work/err"
check '[ $? -eq 0 ]' "local search on big.csv: $(cat "$work/err")"
"$mpiexec" --oversubscribe --bind-to none -np 3 "$nabla" tune "$work/b.json" --out "$work/b2" \
    --strategy random --quiet > "$work/int.out" 2> "$work/int.err" &
pid=$!
i=0
while [ $i -lt 2000 ] && ! grep -q "^epoch 3/" "$work/b2/trials/001.out" 2>/dev/null; do
    sleep 0.01
    i=$((i + 1))
done
# rank 0 at once (its pid from its lock file): through mpirun a signal takes a while
kill -INT "$(cat "$work/b2/journal.lock")"
wait $pid
check 'grep -q "^nabla tune: interrupted; continue with: .* --resume" "$work/int.err"' \
    "Ctrl-C under mpirun: $(cat "$work/int.err")"
pgrep -f "$work/b2/trials" > "$work/pgrep.out"
check '[ ! -s "$work/pgrep.out" ]' "trials left running: $(cat "$work/pgrep.out")"
check '[ "$(grep -c "^done" "$work/b2/journal")" -lt 4 ]' "the search was cut short"
# the trials the interrupt caught: started, not done, with a checkpoint (trial
# 1 may already have finished on a fast or loaded machine)
cut=
for t in $(awk '$1 == "start" { s[$2] = 1 } $1 == "done" || $1 == "failed" { delete s[$2] }
                END { for (t in s) print t }' "$work/b2/journal"); do
    [ -f "$(printf '%s/b2/trials/%03d.ckpt' "$work" "$t")" ] && cut="$cut $t"
done
# (81 epochs take well under a second: on a fast machine every running trial
# may finish before the stop reaches it, and then there is none to check)
[ -n "$cut" ] || echo "note: no trial was caught while it trained; its resume is not checked this run"
"$mpiexec" --oversubscribe --bind-to none -np 3 "$nabla" tune "$work/b.json" --out "$work/b2" \
    --strategy random --quiet --resume > "$work/out" 2> "$work/err"
check '[ $? -eq 0 ]' "--resume under mpirun: $(cat "$work/err")"
check 'cmp -s "$work/b1/trials.csv" "$work/b2/trials.csv" &&
       cmp -s "$work/b1/best.safetensors" "$work/b2/best.safetensors"' \
    "interrupted and resumed: the CSV and weights of the uninterrupted search"
# every trial the interrupt caught goes on from its checkpoint: it resumes,
# or, when its last epoch had ended before the interrupt was recorded (the
# journal has no "done" for it), it only writes its outputs from the
# checkpoint of that last epoch
for t in $cut; do
    out=$(printf '%s/b2/trials/%03d.out' "$work" "$t")
    check 'grep -qE "^resuming |: all [0-9]+ epochs done; writing the outputs" "$out"' \
        "trial $t, interrupted, resumed its checkpoint: $(tail -c 600 "$out")"
done

# --- --jobs under mpirun
mpi3 "$nabla" tune "$work/s.json" --out "$work/jobs" --jobs 2 > "$work/out" 2> "$work/err"
rc=$?
check '[ $rc -ne 0 ] && grep -q "^nabla tune: --jobs: under mpirun every rank but rank 0 runs one trial at a time (here 2)" "$work/err"' \
    "--jobs under mpirun (exit $rc): $(cat "$work/err")"

# --- a worker that cannot see the directory: rank 0 in $work/a, the workers
# in $work/b, --out relative, so that they look for b/dir/search.json
mkdir "$work/a" "$work/b"
exe=$(cd "$(dirname "$nabla")" && pwd)/nabla
"$mpiexec" --oversubscribe --bind-to none -np 1 -wdir "$work/a" "$exe" tune "$work/s.json" \
    --out dir : -np 2 -wdir "$work/b" "$exe" tune "$work/s.json" --out dir \
    > "$work/out" 2> "$work/err"
rc=$?
check '[ $rc -ne 0 ] && grep -q "^nabla tune: rank [12] on .* (working directory .*/b) cannot read dir/search.json: No such file or directory: --out must be on a filesystem that every node shares" "$work/err"' \
    "a worker that cannot see DIR (exit $rc): $(cat "$work/err")"
check '[ ! -e "$work/a/dir/trials.csv" ] && [ -z "$(ls "$work/a/dir/trials")" ]' \
    "no trial started: $(ls -R "$work/a")"
finish
