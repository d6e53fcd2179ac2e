#!/usr/bin/env bash
# Installs what nnc needs on Debian 12 (only what is missing), then configures and builds it into build/.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  build-essential cmake ninja-build pkg-config
  libhalide14-0-dev        # Halide 14 (brings LLVM 14): lowering and AOT compilation
  libfmt-dev nlohmann-json3-dev zlib1g-dev
  libgtest-dev libbenchmark-dev
  libopenblas-dev          # OpenBLAS sgemm, the bound bench/kernels_bench.cpp compares matmul kernels with
  clang-14 libclang-rt-14-dev   # libFuzzer + sanitizers for tests/fuzz/run_fuzzer.sh
  dataset-fashion-mnist    # the default training data, in /usr/share/datasets/fashion-mnist
  pocl-opencl-icd ocl-icd-libopencl1 clinfo   # an OpenCL device on the CPU: GPU schedules tested without a GPU
  libonnx-dev libprotobuf-dev   # ONNX's protobuf classes and shape inference: `nnc import`
  libonnx-testdata         # ONNX's node tests: the conformance suite (tests/onnx_conformance.cpp)
  openmpi-bin libopenmpi3  # mpirun and libmpi: data-parallel training (trainers load libmpi only under mpirun)
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build build
