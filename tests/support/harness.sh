# The shared start of the command-line tests, sourced with the build
# directory as $1: $nabla, a scratch directory $work removed at exit, and
#   ok / bad MESSAGE        count a passed or failed check
#   check 'TEST' MESSAGE    eval TEST; bad MESSAGE if it fails
#   expect_error CODE PATTERN COMMAND...
#                           COMMAND exits with CODE and prints one line to
#                           stderr, matching PATTERN (kept in $work/err)
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
finish() {
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}
