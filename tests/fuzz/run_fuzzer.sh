#!/usr/bin/env bash
# Builds the front-end fuzzer (tests/fuzz/frontend_fuzzer.cpp) with clang++-14 + libFuzzer + ASan/UBSan and runs it.
#
#   tests/fuzz/run_fuzzer.sh SECONDS [WORKDIR]     (WORKDIR defaults to build/fuzz)
#
# 1. compiles dsl/*.cpp, the Halide-free compiler files and the harness into WORKDIR/frontend_fuzzer;
# 2. gathers seeds: examples/*.nn, tests/**/*.nn and every ```nn block of dsl/REFERENCE.md;
# 3. fuzzes for SECONDS, growing WORKDIR/corpus (kept between runs), with tests/fuzz/nn.dict;
# 4. exits non-zero on any finding (crash, sanitizer report, timeout, OOM, escaping exception); the input that
#    triggered it is saved as WORKDIR/artifacts/{crash,timeout,oom,leak}-<sha1>.
set -euo pipefail
seconds=${1:?usage: run_fuzzer.sh SECONDS [WORKDIR]}
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mkdir -p "${2:-$repo/build/fuzz}" && cd "${2:-$repo/build/fuzz}" && pwd)
cxx=${CXX_FUZZ:-clang++-14}
# Two runs sharing WORKDIR would overwrite each other's objects, binary and log: refuse the second one.
exec 9>"$work/.lock"
flock -n 9 || { echo "run_fuzzer: another run is using $work; pass another WORKDIR" >&2; exit 1; }

# --- 1. Build. Each source compiles to its own object, in parallel; the lead's dsl/ files are globbed. ---
flags=(-std=c++20 -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined
       -fno-sanitize-recover=undefined -I"$repo")
# The compiler's stages that do not see Halide (lowering, schedules, plans, AOT and targets do), less the link step
# and the driver: the graph IR, autodiff, the compilation, the kernel cache's keys and the schedule policy names.
sources=("$repo"/dsl/*.cpp "$repo"/tests/fuzz/frontend_fuzzer.cpp "$repo"/compiler/graph/*.cpp
         "$repo"/compiler/autodiff/*.cpp "$repo"/compiler/compilation.cpp "$repo"/compiler/aot/kernel_cache.cpp
         "$repo"/compiler/schedule/policy.cpp)
mkdir -p "$work/obj"
rm -f "$work"/obj/*.o
echo "run_fuzzer: compiling ${#sources[@]} files with $cxx"
printf '%s\n' "${sources[@]}" |
  xargs -P "$(nproc)" -I{} sh -c 'f={}; exec "$0" "$@" -c "$f" -o "'"$work"'/obj/$(basename "$f" .cpp).o"' \
    "$cxx" "${flags[@]}"
"$cxx" "${flags[@]}" "$work"/obj/*.o -lfmt -o "$work/frontend_fuzzer"

# --- 2. Seeds: every model file the repository already has. ---
rm -rf "$work/seeds" && mkdir -p "$work/seeds" "$work/corpus" "$work/artifacts"
find "$repo/examples" "$repo/tests" -name '*.nn' -type f -print0 |
  while IFS= read -r -d '' f; do cp "$f" "$work/seeds/$(echo "${f#$repo/}" | tr / _)"; done
awk -v dir="$work/seeds" '
  /^```nn[[:space:]]*$/ { n++; out = sprintf("%s/reference_%02d.nn", dir, n); inside = 1; next }
  /^```/ && inside     { inside = 0; close(out); next }
  inside               { print > out }' "$repo/dsl/REFERENCE.md"
echo "run_fuzzer: $(ls "$work/seeds" | wc -l) seeds, $(ls "$work/corpus" | wc -l) inputs already in the corpus"

# --- 3. Fuzz. New inputs go to corpus/ (the first directory); seeds/ is only read. ---
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
status=0
"$work/frontend_fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=4096 \
  -dict="$repo/tests/fuzz/nn.dict" -artifact_prefix="$work/artifacts/" -print_final_stats=1 \
  "$work/corpus" "$work/seeds" 2>&1 | tee "$work/fuzz.log" || status=$?

# --- 4. Summary: libFuzzer's final stats (executions, exec/s) and the corpus size. ---
echo "run_fuzzer: ---- summary ----"
grep -aE '^(#[0-9]+[[:space:]]+DONE|Done [0-9]+ runs|stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb))' \
  "$work/fuzz.log" || true
echo "run_fuzzer: corpus: $(ls "$work/corpus" | wc -l) files in $work/corpus"
if ((status != 0)); then
  echo "run_fuzzer: FINDING (exit $status); reproduce with: $work/frontend_fuzzer $work/artifacts/<file>" >&2
fi
exit "$status"
