# The shared start of the command-line tests, sourced with the build
# directory as $1: $nabla, a scratch directory $work removed at exit, and
#   ok / bad MESSAGE        count a passed or failed check
#   check 'TEST' MESSAGE    eval TEST; bad MESSAGE if it fails
#   expect_error CODE PATTERN COMMAND...
#                           COMMAND exits with CODE and prints one line to
#                           stderr, matching PATTERN (kept in $work/err)
#   iris_csv FILE [numeric] 300 rows of 3 classes (setosa, versicolor,
#                           virginica) of 4 features around different
#                           centres, a header, and the class name in column 3
#                           (numeric: header a,b,c,d,label and the class
#                           number last)
#   finish                  print the counts; exit status 1 if any failed
set -u
build=$1
nabla=$build/nabla
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passed=0
failed=0
ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAILED: $*" >&2; }
check() { if eval "$1"; then ok; else bad "$2"; fi; }
expect_error() {
    code=$1
    pattern=$2
    shift 2
    "$@" > "$work/out" 2> "$work/err"
    rc=$?
    lines=$(grep -c . "$work/err")
    if [ $rc -eq "$code" ] && grep -q -- "$pattern" "$work/err" && [ "$lines" -eq 1 ]; then ok
    else bad "$*: exit $rc (want $code), stderr: $(cat "$work/err")"; fi
}
iris_csv() { # a fixed linear congruential sequence: the same file every time
    awk -v n=300 -v numeric="${2:-}" 'BEGIN {
        if (numeric) print "a,b,c,d,label";
        else print "sepal_length,sepal_width,species,petal_length,petal_width";
        split("setosa versicolor virginica", names, " ");
        s = 12345;
        for (i = 0; i < n; i++) {
            c = i % 3;
            line = "";
            for (j = 0; j < 4; j++) {
                s = (s * 1103515245 + 12345) % 2147483648;
                v = c * (j + 1) + (s / 2147483648 - 0.5) * 1.5;
                if (j == 2 && !numeric) line = line "," names[c + 1];
                line = line (j ? "," : "") sprintf("%.4f", v);
            }
            print numeric ? line "," c : line;
        }
    }' > "$1"
}
finish() {
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}
