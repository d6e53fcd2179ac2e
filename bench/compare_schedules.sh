#!/usr/bin/env bash
# nnc's schedule policy against the naive schedule and Halide 14's autoschedulers: builds each model with every
# `nnc build --schedule=POLICY` (no kernel cache, so the build time is a cold one) and times its train_step
# (training batch) and predict (batch 256) with the trainer's own `bench` (median of REPEATS timings of STEPS
# calls, THREADS threads). A policy whose schedule Halide cannot compile, or that takes more than BUILD_TIMEOUT
# seconds to build (Adams2019 searches for minutes), is reported as failed, with the reason. With TARGETS, each
# policy is built for each `--target` (the cost of a portable trainer: TARGETS="host x86-64-v3 x86-64-v2").
# Usage: bench/compare_schedules.sh [MODEL...]
#        (default: mlp lenet5; environment: THREADS REPEATS STEPS BUILD_TIMEOUT NNC, POLICIES (default: all),
#        TARGETS (default: host))
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
nnc=${NNC:-$root/build/nnc} threads=${THREADS:-1} repeats=${REPEATS:-5} steps=${STEPS:-20}
build_timeout=${BUILD_TIMEOUT:-600}
read -ra policies <<< "${POLICIES:-manual naive li2018 mullapudi2016 adams2019}"
read -ra targets <<< "${TARGETS:-host}"
work=$(mktemp -d) && trap 'rm -rf "$work"' EXIT
models=("$@") && ((${#models[@]})) || models=(mlp lenet5)
printf "%-8s %-10s %-14s %8s %16s %16s\n" model target schedule build_s train_step_ms predict_ms
for model in "${models[@]}"; do
  for target in "${targets[@]}"; do
    for policy in "${policies[@]}"; do
      start=$(date +%s%N)
      if ! timeout "$build_timeout" "$nnc" build --no-cache --schedule="$policy" --target="$target" \
           "$root/examples/$model.nn" -o "$work/t" > /dev/null 2> "$work/err"; then
        reason=$(grep -v '^Warning\|^nnc: --schedule' "$work/err" | grep -m1 error | cut -c1-160 || true)
        printf "%-8s %-10s %-14s failed: %s\n" "$model" "$target" "$policy" "${reason:-no build within $build_timeout s}"
        continue
      fi
      tenths=$((($(date +%s%N) - start) / 100000000))
      "$work/t" bench --threads "$threads" --repeats "$repeats" --steps "$steps" 2> /dev/null > "$work/bench"
      ms() { grep "^$1:" "$work/bench" | sed 's/.*, \([0-9.]*\) ms\/step.*/\1/'; }
      printf "%-8s %-10s %-14s %6d.%d %16s %16s\n" "$model" "$target" "$policy" $((tenths / 10)) $((tenths % 10)) \
        "$(ms train_step)" "$(ms predict)"
    done
  done
done
