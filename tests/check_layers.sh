#!/bin/sh
# Layers point one way: a file under src/ or tools/ may include headers of its
# own layer or of a layer below it, never of a layer above.  Lowest first:
LAYERS="src/core src/kernels src/ops src/formats src/train src/model
        tools/plot tools/experiments tools/cli"
# include/nabla.h, the public header, may be included everywhere.  A layer is
# a folder: every file in it (and in its subfolders) belongs to it, and a file
# in a folder missing from the list fails the check until the folder is given
# its place.
#
# An include is resolved the way the build finds it: relative to the file
# ("../core/internal.h", "gemm.h"), from src/ ("kernels/gemm.h"), from
# include/, or by name in a folder whose library exports its headers
# ("svgplot.h" in tools/plot).  Includes that resolve to no file of the
# project (system headers) are skipped.
# Usage: check_layers.sh [SOURCE_DIR]   (default: the current directory)
set -eu
cd "${1:-.}"
headers=$(find src tools include -name '*.h' | sort | tr '\n' ' ')
files=$(find src tools -name '*.[ch]' | sort)
awk -v layers="$LAYERS" -v headers="$headers" '
function dirname(p) { sub("/[^/]*$", "", p); return p }
function basename(p) { sub("^.*/", "", p); return p }
# a/b/../c/./d.h -> a/c/d.h
function normalise(p,    n, part, i, top, out) {
    n = split(p, part, "/")
    top = 0
    for (i = 1; i <= n; i++) {
        if (part[i] == "." || part[i] == "") continue
        if (part[i] == ".." && top > 0 && stack[top] != "..") top--
        else stack[++top] = part[i]
    }
    out = ""
    for (i = 1; i <= top; i++) out = out (i > 1 ? "/" : "") stack[i]
    return out
}
function layer_of(p,    i) {
    for (i = 1; i <= nlayers; i++)
        if (index(p, layer[i] "/") == 1) return layer[i]
    return ""
}
# The project files an include may name, separated by spaces.
function resolve(name, quoted,    c) {
    if (quoted && ((c = normalise(dir "/" name)) in known)) return c
    if ((c = normalise("src/" name)) in known) return c
    if ((c = normalise("include/" name)) in known) return c
    if (index(name, "/") == 0 && (name in by_name)) return by_name[name]
    return ""
}
BEGIN {
    nlayers = split(layers, layer, " ")
    order = ""
    for (i = 1; i <= nlayers; i++) {
        rank[layer[i]] = i
        order = order (i > 1 ? " < " : "") layer[i]
    }
    n = split(headers, h, " ")
    for (i = 1; i <= n; i++) {
        known[h[i]] = 1
        if (h[i] ~ "^include/") continue
        b = basename(h[i])
        by_name[b] = (b in by_name) ? by_name[b] " " h[i] : h[i]
    }
    bad = 0
}
FNR == 1 {
    dir = dirname(FILENAME)
    here = layer_of(FILENAME)
    if (here == "") {
        printf "%s: folder %s is not a layer: give it its place in tests/check_layers.sh\n",
               FILENAME, dir
        bad = 1
    }
}
/^[ \t]*#[ \t]*include[ \t]*["<]/ {
    line = $0
    sub("^[ \t]*#[ \t]*include[ \t]*", "", line)
    quoted = substr(line, 1, 1) == "\""
    name = substr(line, 2)
    sub("[\">].*$", "", name)
    n = split(resolve(name, quoted), target, " ")
    for (i = 1; i <= n; i++) {
        if (target[i] ~ "^include/" || here == "") continue
        there = layer_of(target[i])
        if (there == "" || rank[there] > rank[here]) {
            printf "%s:%d: includes %s, from layer %s above %s\n", FILENAME, FNR,
                   target[i], there == "" ? dirname(target[i]) : there, here
            bad = 1
        }
    }
}
END {
    if (bad) print "check_layers: layers point one way: " order
    exit bad
}
' $files
