#!/usr/bin/env bash
# Two nnc builds' trainers timed in turns, in one run: for each model, `nnc build` with each compiler, then
# `TRAINER bench` of train_step (batch 64) and predict (batch 256), alternating A, B, A, B, ... ROUNDS times per
# thread count, and the median ratio B / A of the step times (above 1: B is slower). For "does this change cost
# CPU speed": A is a build of the commit before it (git worktree add /tmp/before COMMIT; build it there).
# Usage: bench/compare_builds.sh NNC_A NNC_B [ROUNDS [MODEL...]]   (default 5 rounds, mlp and lenet5)
set -euo pipefail
nnc_a=$1 nnc_b=$2 rounds=${3:-5}
models=("${@:4}")
[ ${#models[@]} -gt 0 ] || models=(mlp lenet5)
src=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/nnc_compare_builds.XXXXXX)
trap 'rm -rf "$work"' EXIT
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p' | head -1); A = $nnc_a, B = $nnc_b"
ms() { "$1" bench --entry "$2" --batch "$3" --threads "$4" --repeats 3 --steps 50 2> /dev/null | tail -1 |
       sed -n 's/.*, \([0-9.]*\) ms\/step.*/\1/p'; }
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
for model in "${models[@]}"; do
  NNC_CACHE_DIR=$work/cache-a "$nnc_a" build "$src/examples/$model.nn" -o "$work/$model-a" 2> /dev/null
  NNC_CACHE_DIR=$work/cache-b "$nnc_b" build "$src/examples/$model.nn" -o "$work/$model-b" 2> /dev/null
  for threads in 1 2; do
    for entry_batch in "train_step 64" "predict 256"; do
      read -r entry batch <<< "$entry_batch"
      : > "$work/a.txt"; : > "$work/b.txt"; : > "$work/ratio.txt"
      for ((r = 0; r < rounds; r++)); do
        a=$(ms "$work/$model-a" "$entry" "$batch" "$threads") b=$(ms "$work/$model-b" "$entry" "$batch" "$threads")
        echo "$a" >> "$work/a.txt"; echo "$b" >> "$work/b.txt"
        awk -v a="$a" -v b="$b" 'BEGIN { print b / a }' >> "$work/ratio.txt"
      done
      printf "%-8s %-10s batch %4s, %d thread(s): A %.4f ms, B %.4f ms (medians of %d), B / A %.3f\n" "$model" \
        "$entry" "$batch" "$threads" "$(median < "$work/a.txt")" "$(median < "$work/b.txt")" "$rounds" \
        "$(median < "$work/ratio.txt")"
    done
  done
done
