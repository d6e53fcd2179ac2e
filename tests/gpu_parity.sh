#!/usr/bin/env bash
# GPU kernels checked without a GPU: every example built with `nnc build --target=opencl` runs its GPU schedules on
# PoCL (Debian's pocl-opencl-icd, an OpenCL device on the CPU) and must match the CPU trainer built from the same
# file, through the commands users run, from the same checkpoint (a few CPU training steps from the model's
# initialization):
#   grads    the loss and every gradient on the same batch (`trainer grads`)
#   train    the parameters and buffers (BatchNorm's running statistics) after one optimizer step on grads' batch,
#            and after 10 steps where the optimizer is not Adam (see tests/tensor_diff.cpp for why)
#   predict  the class probabilities of the whole test split
# then mlp trains one epoch on OpenCL to the CPU's test accuracy (within 0.005) and 10 steps on 2 ranks (mpirun)
# as the CPU build's 2 ranks do, `info` names the device and a
# missing one is exit 1, and every example's CUDA build embeds PTX for sm_80; without NVIDIA's driver the CUDA
# trainer refuses to start (exit 1, naming the driver).
# Tolerances: float32 sums in another order (GPU threads, no vector lanes); measured in bench/README.md.
# bench/gpu_check.sh runs the same checks with GPU_TARGET cuda on an NVIDIA GPU.
# Usage: gpu_parity.sh NNC SOURCE_DIR WORK_DIR TENSOR_DIFF [GPU_TARGET]   (GPU_TARGET: opencl, the default, or cuda)
set -euo pipefail
nnc=$1 src=$2 work=$3 tensor_diff=$4 gpu=${5:-opencl}
rm -rf "$work" && mkdir -p "$work" && cd "$work"
fail() { echo "FAIL: $*" >&2; exit 1; }
if [ "$gpu" = opencl ] && ! clinfo -l 2> /dev/null | grep -q 'Device'; then
  echo "gpu_parity: no OpenCL device (install pocl-opencl-icd and clinfo: scripts/setup.sh does)" >&2
  exit 77
fi

compare() {  # NAME EXPECTED ACTUAL ATOL RTOL [GRADS LR]
  "$tensor_diff" "${@:2}" > "$1.diff" || fail "$1: $gpu against the CPU:
$(grep -v '^ *$' "$1.diff" | grep 'OUT OF\|against' || cat "$1.diff")"
}

# The largest |difference| / max |expected| over the .diff files' tensors, less those zero but for rounding.
relative() { awk '/max \|diff\|/ { for (i = 1; i < NF; i++) if ($i == "|diff|") { d = $(i + 1); s = $(i + 3) }
                 if (s > 1e-6 && d / s > worst) worst = d / s } END { printf "%.2g", worst }' "$@"; }

for model in logreg softmax_regression mlp mlp_bn_dropout lenet5 cnn_bn perceptron xor; do
  for target in host "$gpu"; do
    "$nnc" build "$src/examples/$model.nn" -o "$model-$target" --target=$target 2> "$model-$target.build.log" ||
      fail "$model for $target: $(cat "$model-$target.build.log")"
  done
  ./"$model-host" train --max-steps 3 --threads 2 --save "$model-start.safetensors" > "$model-start.log" 2>&1
  for target in host "$gpu"; do
    ./"$model-$target" grads --weights "$model-start.safetensors" -o "$model-grads-$target.safetensors" > /dev/null
    # One step on the same batch as grads' (the first examples, in file order).
    ./"$model-$target" train --init "$model-start.safetensors" --max-steps 1 --no-shuffle --validation-split 0 --patience 0 \
      --threads 2 --save "$model-step-$target.safetensors" > "$model-step-$target.log" 2>&1
    ./"$model-$target" train --init "$model-start.safetensors" --max-steps 10 --no-shuffle --threads 2 \
      --save "$model-steps-$target.safetensors" > "$model-steps-$target.log" 2>&1
    ./"$model-$target" predict --weights "$model-start.safetensors" -o "$model-predict-$target.npy" > /dev/null
  done
  compare "$model-grads" "$model-grads-host.safetensors" "$model-grads-$gpu.safetensors" 1e-7 1e-4
  compare "$model-predict" "$model-predict-host.npy" "$model-predict-$gpu.npy" 1e-7 1e-4
  adam_lr=$(./"$model-host" info | sed -n 's/^optimizer: adamw\{0,1\} (lr \([0-9.e-]*\),.*/\1/p')
  if [ -z "$adam_lr" ]; then
    compare "$model-step" "$model-step-host.safetensors" "$model-step-$gpu.safetensors" 1e-7 1e-4
    compare "$model-steps" "$model-steps-host.safetensors" "$model-steps-$gpu.safetensors" 1e-7 1e-4
    steps="1 and 10 steps"
  else  # Adam turns rounding noise in zero gradients into steps of lr (tests/tensor_diff.cpp)
    compare "$model-step" "$model-step-host.safetensors" "$model-step-$gpu.safetensors" 1e-7 1e-4 \
      "$model-grads-host.safetensors" "$adam_lr"
    steps="1 Adam step"
  fi
  echo "$model: grads, $steps and predict match (largest difference $(relative "$model"-*.diff) of its tensor's scale)"
done

accuracy() { sed -n 's/.*"test_accuracy":\([0-9.]*\).*/\1/p' "$1" | tail -1; }
for target in host "$gpu"; do
  ./"mlp-$target" train --epochs 1 --threads 2 --save "mlp-epoch-$target.safetensors" --metrics "mlp-$target.jsonl" \
    > "mlp-epoch-$target.log" 2>&1
done
awk -v a="$(accuracy mlp-$gpu.jsonl)" -v b="$(accuracy mlp-host.jsonl)" 'BEGIN { exit !(a != "" && a - b <= 0.005 && b - a <= 0.005) }' ||
  fail "mlp after one epoch: $gpu $(accuracy mlp-$gpu.jsonl), CPU $(accuracy mlp-host.jsonl)"
echo "mlp, one epoch: test accuracy $(accuracy mlp-$gpu.jsonl) on $gpu, $(accuracy mlp-host.jsonl) on the CPU"

# Data-parallel training on the device: 2 ranks hand each gradient to the all-reduce as the plan finishes it
# (copied from the device then), and must train as the CPU build's 2 ranks do.
if command -v mpirun > /dev/null; then
  for target in host "$gpu"; do
    mpirun --allow-run-as-root --oversubscribe -np 2 ./"mlp-$target" train --init mlp-start.safetensors --max-steps 10 \
      --batch 32 --threads 1 --save "mlp-ranks-$target.safetensors" > "mlp-ranks-$target.log" 2>&1 ||
      fail "mlp for $target on 2 ranks: $(tail -5 "mlp-ranks-$target.log")"
  done
  compare mlp-ranks mlp-ranks-host.safetensors "mlp-ranks-$gpu.safetensors" 1e-7 1e-4
  echo "mlp on 2 ranks: 10 steps on $gpu match the CPU's"
fi

# The device: `info` names it; a device that is not there, no OpenCL platform, or --device on a CPU build is exit 1.
expect_exit_1() {  # WHAT MESSAGE COMMAND...
  local what=$1 message=$2
  shift 2
  set +e; "$@" > device.out 2> device.err; local code=$?; set -e
  [ "$code" = 1 ] && grep -q -e "$message" device.err || fail "$what: exit $code, $(cat device.out device.err)"
}
./"mlp-$gpu" info | grep -q "^device: $gpu device 0 of [0-9]*: ." || fail "info: $(./"mlp-$gpu" info | grep device)"
expect_exit_1 "--device 99" "--device 99: .* numbered from 0" ./"mlp-$gpu" train --device 99
expect_exit_1 "--device on a CPU build" "run on the CPU" ./mlp-host eval --weights mlp-start.safetensors --device 0
if [ "$gpu" = opencl ]; then
  expect_exit_1 "no OpenCL platform" "no OpenCL platform" env OCL_ICD_VENDORS=/nonexistent ./mlp-opencl train
fi
echo "device: $(./"mlp-$gpu" info | sed -n 's/^device: //p')"

for model in logreg softmax_regression mlp mlp_bn_dropout lenet5 cnn_bn perceptron xor; do
  "$nnc" build "$src/examples/$model.nn" -o "$model-cuda" --target=cuda 2> "$model-cuda.build.log" ||
    fail "$model for cuda: $(cat "$model-cuda.build.log")"
  ptx=$(strings "$model-cuda" | grep -c '^\.target sm_80' || true)
  [ "$ptx" -gt 0 ] || fail "$model's CUDA trainer holds no PTX for sm_80"
  if ! ldconfig -p | grep -q 'libcuda\.so'; then
    set +e; ./"$model-cuda" train --max-steps 1 > cuda.out 2> cuda.err; code=$?; set -e
    [ "$code" = 1 ] && grep -q "NVIDIA's driver (libcuda.so) is not installed" cuda.err ||
      fail "$model's CUDA trainer without a driver: exit $code, $(cat cuda.err)"
  fi
  kernels=$(strings "$model-cuda" | grep -c '\.entry' || true)
  shared=$(strings "$model-cuda" | awk '/\.entry/ { k++ } /ld\.shared/ && !seen[k]++ { n++ } END { print n + 0 }')
  echo "$model: CUDA build: $ptx PTX modules for sm_80, $kernels GPU kernels, $shared of them staging through shared memory"
done
