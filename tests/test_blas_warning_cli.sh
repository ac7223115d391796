#!/bin/sh
# nabla train warns when OpenBLAS runs the products with kernels for an
# older CPU than this one (as an OpenBLAS that does not know the CPU does),
# and names the OPENBLAS_CORETYPE that picks the right ones.  The older
# kernels are forced here with OPENBLAS_CORETYPE=Prescott (SSE3).
# Skipped (exit 77) without OpenBLAS or on a CPU without AVX2 and FMA.
# Usage: test_blas_warning_cli.sh BUILD_DIR
. "$(dirname "$0")/support/harness.sh"

if ! NB_GEMM=openblas "$nabla" --version | grep -q "kernels: OpenBLAS"; then
    echo "skipped: nabla is built without OpenBLAS"
    exit 77
fi
flags=$(grep -m 1 '^flags' /proc/cpuinfo 2>/dev/null)
case " $flags " in
*" avx512f "*) has="AVX-512" right=SkylakeX ;;
*" avx2 "*" fma "* | *" fma "*" avx2 "*) has="AVX2" right=Haswell ;;
*) echo "skipped: this CPU has neither AVX-512 nor AVX2 with FMA"; exit 77 ;;
esac

iris_csv "$work/train.csv" numeric
printf 'input 4\ndense 8\nrelu\ndense 3\nloss cross_entropy\n' > "$work/iris.nn"
run() { # ENV...: one epoch; stderr in $work/err
    env "$@" "$nabla" train "$work/iris.nn" --data "csv:$work/train.csv" --epochs 1 \
        > "$work/out" 2> "$work/err"
    check '[ $? -eq 0 ]' "$*: exit 0: $(cat "$work/err")"
}
want="warning: OpenBLAS runs its Prescott kernels, but this CPU has $has (OPENBLAS_CORETYPE=Prescott asks for them): .*OPENBLAS_CORETYPE=$right picks"

run OPENBLAS_CORETYPE=Prescott NB_GEMM=openblas
check 'grep -q "$want" "$work/err"' "the warning on Prescott kernels: $(cat "$work/err")"
run OPENBLAS_CORETYPE=$right NB_GEMM=openblas
check '! grep -q "warning: OpenBLAS" "$work/err"' "no warning on $right: $(cat "$work/err")"
if [ "$has" = AVX-512 ]; then # nabla's own kernel runs the products: OpenBLAS is not used
    run OPENBLAS_CORETYPE=Prescott
    check '! grep -q "warning: OpenBLAS" "$work/err"' \
        "no warning with nabla's own kernel: $(cat "$work/err")"
fi
finish
