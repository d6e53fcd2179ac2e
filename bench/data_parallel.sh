#!/usr/bin/env bash
# Data parallelism on one machine: images/s of 2 ranks x 1 thread (mpirun, shared memory) against one process with
# 2 threads and with 1, at the same global batch, for each model; the 2 ranks once per gradient bucket size in
# BUCKETS_KB (--bucket-kb: 0 all-reduces after the backward pass, N > 0 overlaps it in buckets of N KB). ROUNDS
# alternating runs, medians.
# METHOD=bench (the default) times STEPS steps on one fixed batch with `TRAINER bench` (the fused train_step for
# one process, split_step, which under mpirun is grads + all-reduce + update, for 2 ranks; the median of 5
# timings per run): kernels and communication only. METHOD=train reads the rate of the training loop's progress
# line after STEPS steps of `TRAINER train` (data loading included; noisier on a shared machine).
# Usage: [METHOD=bench|train] [BUCKETS_KB="0 64"] [MPI_ARGS=...] bench/data_parallel.sh [BUILD_DIR [ROUNDS [STEPS [MODEL...]]]]
#        (defaults: build, 3, 200, mlp lenet5)
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$src/build}" && pwd)
rounds=${2:-3} steps=${3:-200}
models=("${@:4}")
[ ${#models[@]} -gt 0 ] || models=(mlp lenet5)
buckets=${BUCKETS_KB:-0 64} method=${METHOD:-bench}
MPI_ARGS=${MPI_ARGS:-}  # e.g. "--mca btl tcp,self": the ranks talk over TCP (loopback) instead of shared memory
work=$(mktemp -d /tmp/nnc_data_parallel.XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work"
export NNC_CACHE_DIR=$work/cache
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores; method: $method; mpirun ${MPI_ARGS:-(shared memory)}"
mpi=(mpirun --allow-run-as-root --oversubscribe -np 2 $MPI_ARGS)
# rate [mpirun...] TRAINER BATCH THREADS [FLAG...]: images/s of one run.
rate() {
  local launch=() trainer batch threads
  [ "$1" = mpirun ] && launch=("${mpi[@]}") && shift
  trainer=$1 batch=$2 threads=$3
  shift 3
  if [ "$method" = train ]; then
    "${launch[@]}" "$trainer" train --epochs 1 --max-steps "$steps" --save "$work/ckpt.safetensors" --batch "$batch" \
      --threads "$threads" "$@" 2>&1 | grep "^epoch 1/1 $steps/$steps " | tail -1 | sed -n 's/.*  \([0-9]*\) img\/s.*/\1/p'
  else
    local entry=train_step
    [ ${#launch[@]} -gt 0 ] && entry=split_step
    "${launch[@]}" "$trainer" bench --entry "$entry" --batch "$batch" --threads "$threads" --steps "$steps" \
      --repeats 5 --benchmark_color=false "$@" 2> /dev/null | sed -n "s/^$entry: .*, \([0-9]*\) images\/s$/\1/p"
  fi
}
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
for model in "${models[@]}"; do
  "$build/nnc" build "$src/examples/$model.nn" -o "$model" 2> /dev/null
  for global in 64 256; do
    : > one2.txt; : > one1.txt
    for kb in $buckets; do : > "two$kb.txt"; done
    for ((r = 0; r < rounds; r++)); do
      rate ./"$model" "$global" 2 >> one2.txt
      rate ./"$model" "$global" 1 >> one1.txt
      for kb in $buckets; do rate mpirun ./"$model" $((global / 2)) 1 --bucket-kb "$kb" >> "two$kb.txt"; done
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
