#!/usr/bin/env bash
# The GPU check, for a machine with an NVIDIA GPU and its driver (a few minutes): builds every example for CUDA and
# runs the same parity checks CI runs on PoCL (tests/gpu_parity.sh with --target=cuda: grads, optimizer steps and
# predict against the CPU trainer), then times `trainer bench` for LeNet-5 and mlp at batch 64 and 1024 on the GPU
# and on the CPU, and prints the GEMM rate of mlp's step at batch 1024. Paste its output into bench/README.md.
#
# Usage: bench/gpu_check.sh [BUILD_DIR [GPU_TARGET]]   (run from the repository; BUILD_DIR defaults to build,
#        GPU_TARGET to cuda; `opencl` runs the same script on PoCL, where the timings mean nothing)
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$src/build}" && pwd)
gpu=${2:-cuda}
work=$(mktemp -d /tmp/nnc_gpu_check.XXXXXX)
export NNC_CACHE_DIR=$work/cache
echo "== machine"
lscpu | sed -n 's/^Model name: *//p' | head -1
command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv

echo "== parity with the CPU trainers ($gpu)"
"$src/tests/gpu_parity.sh" "$build/nnc" "$src" "$work/parity" "$build/tests/tensor_diff" "$gpu"

echo "== speed: trainer bench, GPU ($gpu) against this machine's CPU (all its cores)"
cd "$work"
for model in lenet5 mlp; do
  for target in host "$gpu"; do "$build/nnc" build "$src/examples/$model.nn" -o "$model-$target" --target="$target" 2> /dev/null; done
  for batch in 64 1024; do
    line() { ./"$model-$1" bench --entry train_step --batch "$batch" --repeats 3 2> /dev/null | tail -1; }
    cpu=$(line host) gpu_line=$(line "$gpu")
    echo "$model $gpu: $gpu_line"
    echo "$model cpu:  $cpu"
    ratio=$(awk -v a="$gpu_line" -v b="$cpu" 'BEGIN { split(a, x, " "); split(b, y, " ");
      for (i in x) if (x[i] == "images/s") g = x[i - 1]; for (i in y) if (y[i] == "images/s") c = y[i - 1];
      if (c > 0) printf "%.3g", g / c }')
    echo "$model at batch $batch: GPU / CPU images/s = $ratio"
  done
done

# mlp's step multiplies 784 -> 256 -> 128 -> 10 forward, and twice as much backward: 6 * B * (784*256 + 256*128 +
# 128*10) floating-point operations, the elementwise work aside.
ms=$(./"mlp-$gpu" bench --entry train_step --batch 1024 --repeats 3 2> /dev/null | tail -1 | sed -n 's/.*, \([0-9.]*\) ms\/step.*/\1/p')
awk -v ms="$ms" 'BEGIN { flops = 6 * 1024 * (784 * 256 + 256 * 128 + 128 * 10);
  printf "mlp train_step at batch 1024: %.3f ms, %.0f GFLOP/s of matrix products (compare with the GPU'"'"'s fp32 peak)\n", ms, flops / ms / 1e6 }'
rm -rf "$work"
