#!/usr/bin/env bash
# Builds the loader fuzzers (tests/fuzz/loader_fuzzer.cpp: NPY, IDX, CSV, safetensors) with clang++-14 + libFuzzer
# + ASan/UBSan and runs each for SECONDS.
#
#   tests/fuzz/run_loader_fuzzers.sh SECONDS [WORKDIR]     (WORKDIR defaults to build/fuzz-loaders)
#
# Seeds: the repository's data files and checkpoints (examples/data, tests/parity), Fashion-MNIST's label files
# when installed, and a small IDX image file. Corpora grow in WORKDIR/corpus-FORMAT, kept between runs. Exits
# non-zero on any finding; the input is saved as WORKDIR/artifacts/FORMAT-{crash,timeout,oom,leak}-<sha1>.
set -euo pipefail
seconds=${1:?usage: run_loader_fuzzers.sh SECONDS [WORKDIR]}
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mkdir -p "${2:-$repo/build/fuzz-loaders}" && cd "${2:-$repo/build/fuzz-loaders}" && pwd)
cxx=${CXX_FUZZ:-clang++-14}
exec 9>"$work/.lock"
flock -n 9 || { echo "run_loader_fuzzers: another run is using $work; pass another WORKDIR" >&2; exit 1; }

flags=(-std=c++20 -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined
       -fno-sanitize-recover=undefined -I"$repo" -I/usr/include/halide14)
runtime=(npy dataset csv safetensors atomic_file output_path shape)
mkdir -p "$work/obj" "$work/artifacts"
rm -f "$work"/obj/*.o
printf '%s\n' "${runtime[@]}" |
  xargs -P "$(nproc)" -I{} "$cxx" "${flags[@]}" -c "$repo/runtime/{}.cpp" -o "$work/obj/{}.o"
formats=(npy idx csv safetensors)
rm -f "$work"/*-fuzzer  # a failed build must not leave an old fuzzer to run
pids=()
for format in "${formats[@]}"; do
  define=NNC_FUZZ_$(echo "$format" | tr a-z A-Z)
  "$cxx" "${flags[@]}" -D"$define" "$repo/tests/fuzz/loader_fuzzer.cpp" "$work"/obj/*.o -lz -o "$work/$format-fuzzer" &
  pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid"; done

seeds() {  # FORMAT DIR: copies the format's seed files into DIR
  mkdir -p "$2"
  local f
  case $1 in
    npy) for f in "$repo"/tests/parity/*/*.npy; do cp "$f" "$2/$(basename "$(dirname "$f")")-$(basename "$f")"; done ;;
    csv) for f in "$repo"/examples/data/*/*.csv; do cp "$f" "$2/$(basename "$(dirname "$f")")-$(basename "$f")"; done ;;
    safetensors) for f in "$repo"/tests/parity/*/init.safetensors; do cp "$f" "$2/$(basename "$(dirname "$f")").safetensors"; done ;;
    idx) printf '\0\0\x08\x03\0\0\0\x02\0\0\0\x02\0\0\0\x02\x01\x02\x03\x04\x05\x06\x07\x08' > "$2/images-2x2x2"
         printf '\0\0\x08\x01\0\0\0\x03\x00\x01\x02' > "$2/labels-3"
         cp /usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz "$2/" 2>/dev/null || true ;;
  esac
}

export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export TMPDIR=${TMPDIR:-/dev/shm}
[ -w "$TMPDIR" ] || export TMPDIR=/tmp
status=0
for format in "${formats[@]}"; do
  rm -rf "$work/seeds-$format"
  seeds "$format" "$work/seeds-$format"
  mkdir -p "$work/corpus-$format"
  echo "run_loader_fuzzers: $format: $(ls "$work/seeds-$format" | wc -l) seeds, $(ls "$work/corpus-$format" | wc -l) in the corpus"
  "$work/$format-fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=1024 \
    -max_len=65536 -artifact_prefix="$work/artifacts/$format-" -print_final_stats=1 \
    "$work/corpus-$format" "$work/seeds-$format" > "$work/$format.log" 2>&1 || status=$?
  grep -aE '^(Done [0-9]+ runs|stat::(number_of_executed_units|average_exec_per_sec|new_units_added))' "$work/$format.log" |
    sed "s/^/run_loader_fuzzers: $format: /" || true
  if ((status != 0)); then
    tail -30 "$work/$format.log" >&2
    echo "run_loader_fuzzers: FINDING in $format (exit $status); reproduce with $work/$format-fuzzer $work/artifacts/$format-<file>" >&2
    exit "$status"
  fi
done
