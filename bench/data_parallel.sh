#!/usr/bin/env bash
# Data parallelism on one machine: training images/s of 2 ranks x 1 thread (mpirun, shared memory) against one
# process with 2 threads and with 1, at the same global batch, for each model; the 2 ranks once per gradient
# bucket size in BUCKETS_KB (--bucket-kb: 0 all-reduces after the backward pass, N > 0 overlaps it in buckets of
# N KB). ROUNDS alternating runs of STEPS steps each, medians. The rate is the trainer's own progress line at the
# run's last step (no evaluation).
# Usage: [BUCKETS_KB="0 64"] bench/data_parallel.sh [BUILD_DIR [ROUNDS [STEPS [MODEL...]]]]
#        (defaults: build, 3, 200, mlp lenet5)
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$src/build}" && pwd)
rounds=${2:-3} steps=${3:-200}
models=("${@:4}")
buckets=${BUCKETS_KB:-0 64}
[ ${#models[@]} -gt 0 ] || models=(mlp lenet5)
work=$(mktemp -d /tmp/nnc_data_parallel.XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work"
export NNC_CACHE_DIR=$work/cache
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores"
rate() { "$@" 2>&1 | grep "^epoch 1/1 $steps/$steps " | tail -1 | sed -n 's/.*  \([0-9]*\) img\/s.*/\1/p'; }
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
for model in "${models[@]}"; do
  "$build/nnc" build "$src/examples/$model.nn" -o "$model" 2> /dev/null
  for global in 64 256; do
    : > one2.txt; : > one1.txt
    for kb in $buckets; do : > "two$kb.txt"; done
    for ((r = 0; r < rounds; r++)); do
      common=(train --epochs 1 --max-steps "$steps" --save "$work/ckpt.safetensors")
      rate ./"$model" "${common[@]}" --batch "$global" --threads 2 >> one2.txt
      rate ./"$model" "${common[@]}" --batch "$global" --threads 1 >> one1.txt
      for kb in $buckets; do
        rate mpirun --allow-run-as-root --oversubscribe -np 2 ./"$model" "${common[@]}" --batch $((global / 2)) \
          --threads 1 --bucket-kb "$kb" >> "two$kb.txt"
      done
    done
    a=$(median < one2.txt) b=$(median < one1.txt)
    printf "%-7s global batch %4d: 1 process x 2 threads %7.0f img/s, x 1 thread %7.0f" "$model" "$global" "$a" "$b"
    for kb in $buckets; do
      c=$(median < "two$kb.txt")
      printf "; 2 ranks x 1 thread, --bucket-kb %s: %7.0f (%.2fx 2 threads)" "$kb" "$c" "$(awk -v c="$c" -v a="$a" 'BEGIN { print c / a }')"
    done
    echo
  done
done
