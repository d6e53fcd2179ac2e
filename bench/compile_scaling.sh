#!/usr/bin/env bash
# Cold `nnc build` time against depth: MLPs of N relu(linear(h, 128)) layers and CNNs of N conv + BatchNorm +
# ReLU blocks with residual additions (16 channels, 14x14), each built as one pipeline per entry point
# (--single-pipeline) and as a plan of kernels (the default), no kernel cache (--no-cache), and the plan again
# with a warm cache. A build that
# takes more than TIMEOUT seconds is reported as such.
# Usage: bench/compile_scaling.sh [DEPTH...]   (default: 5 10 25 50 100; environment: NNC, TIMEOUT (default 120))
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
nnc=${NNC:-$root/build/nnc} timeout=${TIMEOUT:-120}
work=$(mktemp -d) && trap 'rm -rf "$work"' EXIT
depths=("$@") && ((${#depths[@]})) || depths=(5 10 25 50 100)

mlp() {  # DEPTH
  echo "model mlp$1(x: f32[B, 784], y: i32[B]) {"
  echo "    h0 = relu(linear(x, 128))"
  for i in $(seq 1 $(($1 - 1))); do echo "    h$i = relu(linear(h$((i - 1)), 128))"; done
  echo "    logits = linear(h$(($1 - 1)), 10)"
  echo "    loss = cross_entropy(logits, y)"
  echo "    return logits"
  echo "}"
  echo "train {"
  echo "    optimizer = sgd(lr = 0.01, momentum = 0.9)"
  echo "}"
}

cnn() {  # DEPTH
  echo "model cnn$1(x: f32[B, 1, 28, 28], y: i32[B]) {"
  echo "    h0 = max_pool2d(relu(conv2d(x, 16, kernel = 3, padding = 1)), kernel = 2)"
  for i in $(seq 1 "$1"); do
    echo "    c$i = conv2d(h$((i - 1)), 16, kernel = 3, padding = 1, bias = 0)"
    echo "    b$i = batch_norm(c$i)"
    echo "    h$i = relu(b$i) + h$((i - 1))"
  done
  echo "    logits = linear(flatten(h$1), 10)"
  echo "    loss = cross_entropy(logits, y)"
  echo "    return logits"
  echo "}"
  echo "train {"
  echo "    optimizer = adam(lr = 0.001)"
  echo "}"
}

seconds() {  # FLAGS... : the build's wall time, or "> TIMEOUT s"
  local start=$(date +%s%N)
  if ! timeout "$timeout" "$nnc" build "$@" > /dev/null 2>&1; then echo "> $timeout s"; return; fi
  local tenths=$((($(date +%s%N) - start) / 100000000))
  echo "$((tenths / 10)).$((tenths % 10)) s"
}

printf "%-5s %5s %16s %16s %16s %8s\n" model depth one_pipeline plan_cold plan_cached kernels
for model in mlp cnn; do
  for depth in "${depths[@]}"; do
    "$model" "$depth" > "$work/m.nn"
    one=$(seconds --single-pipeline --no-cache "$work/m.nn" -o "$work/t")
    cold=$(seconds --no-cache "$work/m.nn" -o "$work/t")
    NNC_CACHE_DIR=$work/cache "$nnc" build "$work/m.nn" -o "$work/t" > /dev/null 2>&1 || true
    cached=$(NNC_CACHE_DIR=$work/cache seconds "$work/m.nn" -o "$work/t")
    kernels=$("$nnc" emit --stage=plan "$work/m.nn" | sed -n 's/^kernels: //p')
    printf "%-5s %5d %16s %16s %16s %8s\n" "$model" "$depth" "$one" "$cold" "$cached" "$kernels"
  done
done
