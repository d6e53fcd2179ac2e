#!/usr/bin/env bash
# Measures the figures the spine reports: `nnc build` time for examples/mlp.nn, the trainer's size, train_step
# time at batch 64 on 1 and 2 threads (kernels only), and one full epoch (data loading included) on Fashion-MNIST.
# With --torch, also one epoch of the PyTorch equivalent (bench/torch_mlp.py) in the same run, for a ratio.
# Usage: bench/spine.sh [--torch]   (after scripts/setup.sh has built build/nnc)
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
start=$(date +%s.%N)
build/nnc build examples/mlp.nn -o "$work/mlp" 2> /dev/null
echo "nnc build examples/mlp.nn: $(echo "$(date +%s.%N) - $start" | bc) s"
echo "trainer size: $(stat -c %s "$work/mlp") bytes"
for threads in 1 2; do
  echo "threads $threads: $("$work/mlp" bench --batch 64 --steps 500 --threads "$threads")"
done
"$work/mlp" train --epochs 1 --batch 64 --save "$work/mlp.safetensors" 2> /dev/null | grep '^epoch'
if [ "${1:-}" = "--torch" ]; then
  echo "pytorch, 2 threads: $(/usr/bin/python3 bench/torch_mlp.py --epochs 1 --lr 0.02 --threads 2)"
fi
