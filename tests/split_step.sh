#!/usr/bin/env bash
# The step data-parallel training takes, grads then update (`train --step split`), against the fused train_step
# through the trainer's own loop: 20 steps of mlp (SGD with momentum) and cnn_bn (Adam, BatchNorm's running
# statistics returned by grads, dropout) from the same initialization and batches, then every parameter and
# buffer compared. Bit-identical today (the plans share their kernels); the tolerance is float32 rounding.
# Then `bench --entry split_step` and `--entry update` run.
# Usage: split_step.sh NNC SOURCE_DIR WORK_DIR TENSOR_DIFF
set -euo pipefail
nnc=$1 src=$2 work=$3 tensor_diff=$4
rm -rf "$work" && mkdir -p "$work" && cd "$work"
fail() { echo "FAIL: $*" >&2; exit 1; }
for model in mlp cnn_bn; do
  "$nnc" build "$src/examples/$model.nn" -o "$model" 2> build.log || fail "$model: $(cat build.log)"
  for step in fused split; do
    ./"$model" train --max-steps 20 --no-shuffle --threads 2 --step "$step" --save "$model-$step.safetensors" \
      > "$model-$step.log" 2>&1 || fail "$model --step $step: $(tail -3 "$model-$step.log")"
  done
  "$tensor_diff" "$model-fused.safetensors" "$model-split.safetensors" 1e-7 1e-4 > "$model.diff" ||
    fail "$model: grads + update against train_step: $(grep 'OUT OF' "$model.diff")"
  echo "$model: 20 steps of grads + update match train_step"
done
for entry in split_step update; do
  ./cnn_bn bench --entry "$entry" --steps 3 --repeats 1 2> /dev/null | grep -q "^$entry: batch 64, " ||
    fail "bench --entry $entry"
done
set +e; ./mlp train --step halves > step.out 2>&1; code=$?; set -e
[ "$code" = 1 ] && grep -q "\`--step\` takes fused or split" step.out || fail "--step halves: exit $code, $(cat step.out)"
