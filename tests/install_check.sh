#!/bin/sh
# Install the library into a temporary prefix and build the README's example
# against it with pkg-config, static and shared, as a user of the library would.
# Usage: install_check.sh BUILD_DIR SOURCE_DIR
set -eu
build=$1
src=$2
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix" >/dev/null
libdir=$(find "$prefix" -name nabla.pc -exec dirname {} \; | head -n 1)
[ -n "$libdir" ] || { echo "nabla.pc was not installed"; exit 1; }
export PKG_CONFIG_PATH="$libdir"
cc -std=c11 -Wall -Wextra -Wpedantic -Werror -o "$prefix/quickstart" \
   "$src/examples/quickstart.c" $(pkg-config --cflags nabla) \
   $(pkg-config --libs nabla) -lm -Wl,-rpath,"$prefix/lib" -Wl,-rpath,"$(dirname "$libdir")"
"$prefix/quickstart"
# the shared library exports the interface of nabla.h and nothing else
so=$(find "$prefix" -name 'libnabla.so' | head -n 1)
exported=$(nm -D --defined-only "$so" | awk '{print $3}')
echo "$exported" | grep -qx nb_fit || { echo "libnabla.so does not export nb_fit"; exit 1; }
echo "$exported" | grep -qx nb_train_step || { echo "libnabla.so does not export nb_train_step"; exit 1; }
internal=$(echo "$exported" | grep -E '^nb__|^nb_err$|^nb_err_prefix$|^nb_gemm' || true)
[ -z "$internal" ] || { echo "libnabla.so exports internal symbols:"; echo "$internal"; exit 1; }
cc -std=c11 -o "$prefix/quickstart_static" "$src/examples/quickstart.c" \
   $(pkg-config --cflags nabla) "$(dirname "$libdir")/libnabla.a" \
   $(pkg-config --libs-only-l --static nabla | sed 's/-lnabla//')
"$prefix/quickstart_static"
# the command and the shipped models, found by name wherever the prefix is
[ -f "$prefix/share/nabla/models/fashion_mlp.nn" ] || { echo "models not installed"; exit 1; }
(cd / && "$prefix/bin/nabla" info fashion_cnn) | grep -q "^model $prefix/bin/../share/nabla/models/fashion_cnn.nn$" ||
    { echo "installed nabla does not find fashion_cnn by name"; exit 1; }
echo "1 passed, 0 failed"
