// The GPU that a trainer built for `--target=cuda` or `--target=opencl` runs its kernels on. Halide's runtime loads
// the driver (libcuda, or an OpenCL ICD loader) when the first kernel runs and, where a call fails, reports it
// through the error handler; the trainer instead looks for the driver and the device first, so that a missing one
// is a clear error (DeviceError, exit 1) before any data is loaded.
#pragma once

#include <stdexcept>
#include <string>

#include "runtime/model_spec.h"

namespace nnc::rt {

struct DeviceError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// "cuda" or "opencl" when the model's kernels run on a GPU (its Halide target names one), otherwise "".
std::string gpuApiOf(const ModelSpec& model);

struct Device {
  std::string api;   // cuda or opencl
  int index;         // among the driver's devices (for OpenCL, the first platform's, or HL_OCL_PLATFORM_NAME's)
  int count;         // how many the driver has
  std::string name;  // "NVIDIA H100 80GB HBM3", "cpu-haswell-AMD EPYC 7B13 (Portable Computing Language)"
  std::string describe() const;  // "cuda device 0 of 1: NVIDIA H100 80GB HBM3"
};

// Loads the driver of `api` and finds device `index`, or when it is -1 the one Halide's runtime picks (the only
// one, or the one with the most compute units). Throws DeviceError naming what is missing.
Device findDevice(const std::string& api, int index);

// For a GPU model: lets Halide's runtime load drivers by their versioned names too (libcuda.so.1, where only the
// driver and not its development package is installed), finds the device (findDevice), and has the kernels use
// it. `index` -1 picks as Halide does. For a CPU model an index other than -1 is a DeviceError.
void selectDevice(const ModelSpec& model, int index);

}  // namespace nnc::rt
