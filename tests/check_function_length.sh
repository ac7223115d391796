#!/bin/sh
# Fails, naming file, line and length, when a function under src/ is longer
# than MAX lines (default 80), counted from the first line of its signature
# to its closing brace.  With --list, prints every function's length instead,
# longest first.
# Usage: check_function_length.sh SOURCE_DIR [MAX | --list]
set -eu
src=$1
max=${2:-80}
list=0
[ "$max" = "--list" ] && list=1 && max=0
find "$src/src" -name '*.c' | sort | while read -r f; do
    awk -v max="$max" -v list="$list" -v file="${f#"$src"/}" '
        # a signature starts at column 0 and ends with the opening brace;
        # type and table definitions ("struct x {", "... = {") are not functions
        !inside && /^[A-Za-z_]/ && !sig { sig = NR; name = $0 }
        !inside && sig && /;[ \t]*$/ { sig = 0 }
        !inside && sig && /\{[ \t]*$/ {
            if (name ~ /^(typedef|struct|enum|union)/ || name ~ /=/) sig = 0
            else { inside = 1; start = sig }
        }
        inside && /^\}/ {
            len = NR - start + 1
            sub(/\(.*/, "", name)
            n = split(name, w, /[ *]+/)
            if (list) printf "%d %s:%d %s\n", len, file, start, w[n]
            else if (len > max) printf "%s:%d: %s is %d lines (at most %d)\n", file, start, w[n], len, max
            inside = 0; sig = 0
        }
        END { }' "$f"
done | if [ "$list" = 1 ]; then sort -rn; else
    out=$(cat)
    if [ -n "$out" ]; then echo "$out"; exit 1; fi
    echo "every function under src/ is at most $max lines"
fi
