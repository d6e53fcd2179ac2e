#!/usr/bin/env bash
# Every Fashion-MNIST example trained through its own trainer (the path users run): 300 steps of its train block
# (optimizer, schedule, BatchNorm, dropout, validation split), then the test accuracy against a threshold a
# broken optimizer, initializer, kernel or runtime scalar would miss, and `predict` on the test split. perceptron
# and xor train to 100% in e2e_trainer.sh.
#
# Thresholds: measured at 300 steps on the AVX-512 development machine, less a margin of about 0.02 for other
# targets' rounding. With Adam's two bias corrections swapped in the runtime (beta1 <-> beta2,
# runtime/kernels.cpp), lenet5 and cnn_bn fell to 0.10 and mlp_bn_dropout to 0.65.
# Usage: examples_train.sh NNC SOURCE_DIR WORK_DIR [BUILD_FLAG...]   (--single-pipeline: one pipeline per entry point)
set -euo pipefail
nnc=$1 src=$2 work=$3
build_flags=("${@:4}")
rm -rf "$work" && mkdir -p "$work" && cd "$work"
fail() { echo "FAIL: $*" >&2; exit 1; }

#           model               measured  threshold
examples=(  "logreg             0.7972    0.77"
            "softmax_regression 0.8128    0.79"
            "mlp                0.8203    0.80"
            "mlp_bn_dropout     0.8339    0.81"
            "lenet5             0.8228    0.80"
            "cnn_bn             0.8583    0.83"
            "vit                0.7881    0.77" )
for row in "${examples[@]}"; do
  read -r model measured threshold <<< "$row"
  "$nnc" build "${build_flags[@]}" "$src/examples/$model.nn" -o "$model" 2> /dev/null
  ./"$model" train --max-steps 300 --threads 2 --save "$model.safetensors" --metrics "$model.jsonl" > /dev/null
  accuracy=$(sed -n 's/.*"test_accuracy":\([0-9.]*\).*/\1/p' "$model.jsonl" | tail -1)
  awk -v a="$accuracy" -v t="$threshold" 'BEGIN { exit !(a != "" && a >= t) }' ||
    fail "$model: test accuracy $accuracy after 300 steps, below $threshold (measured $measured)"
  ./"$model" predict --weights "$model.safetensors" --limit 3 -o "$model.npy" > predict.log
  grep -q "wrote class probabilities \[10000, 10\]" predict.log || fail "$model predict: $(cat predict.log)"
  echo "$model: $accuracy (threshold $threshold)"
done
