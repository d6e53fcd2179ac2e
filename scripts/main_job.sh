#!/usr/bin/env bash
# The main job: build nnc, compile examples/mlp.nn into a trainer, train it on Fashion-MNIST, print test accuracy.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
build/nnc build examples/mlp.nn -o build/mlp
build/mlp train --save build/mlp.safetensors --metrics build/mlp-metrics.jsonl "$@"
