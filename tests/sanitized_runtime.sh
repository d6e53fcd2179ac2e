#!/usr/bin/env bash
# The runtime library (what every trainer links: loaders, checkpoints, training loop, CLI) and its unit tests
# built with AddressSanitizer and UndefinedBehaviorSanitizer, then run: a memory error or undefined behaviour in
# them fails the test. Objects are kept in WORK_DIR and rebuilt only when their source or a header is newer.
# Usage: sanitized_runtime.sh SOURCE_DIR WORK_DIR
set -euo pipefail
src=$1 work=$2
mkdir -p "$work/obj"
cxx=${CXX:-g++}
flags=(-std=c++20 -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
       -I"$src" -I/usr/include/halide14 -DNNC_VERSION='"sanitized"')
newest_header=$(ls -t "$src"/runtime/*.h "$src"/tests/runtime_test_util.h | head -1)
sources=("$src"/runtime/*.cpp "$src"/tests/runtime_*_test.cpp)
stale=()
for f in "${sources[@]}"; do
  o="$work/obj/$(basename "$f" .cpp).o"
  [ -f "$o" ] && [ "$o" -nt "$f" ] && [ "$o" -nt "$newest_header" ] || stale+=("$f")
done
echo "sanitized_runtime: compiling ${#stale[@]} of ${#sources[@]} files"
if ((${#stale[@]})); then
  printf '%s\n' "${stale[@]}" |
    xargs -P 2 -I{} sh -c 'f={}; exec "$0" "$@" -c "$f" -o "'"$work"'/obj/$(basename "$f" .cpp).o"' "$cxx" "${flags[@]}"
fi
# The runtime as the static library trainers link, so that only what the tests use is pulled in (the kernels'
# glue needs the Halide runtime of a generated trainer).
rm -f "$work/libnnc_runtime.a"
runtime_objects=()
for f in "$src"/runtime/*.cpp; do runtime_objects+=("$work/obj/$(basename "$f" .cpp).o"); done
ar rcs "$work/libnnc_runtime.a" "${runtime_objects[@]}"
test_objects=()
for f in "$src"/tests/runtime_*_test.cpp; do test_objects+=("$work/obj/$(basename "$f" .cpp).o"); done
"$cxx" "${flags[@]}" "${test_objects[@]}" "$work/libnnc_runtime.a" -lgtest_main -lgtest -lbenchmark -lz -lpthread \
  -o "$work/runtime_tests"
cd "$work"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ./runtime_tests
