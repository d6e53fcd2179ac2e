// The machine nnc compiles kernels for: a value decided once per command (`--target`, default `host`) and
// passed down the pipeline to lowering (whose schedules follow its vector width and register count), AOT
// emission, the kernel cache key and the trainer, which checks at start that its CPU has `cpu_features`.
//
// Halide 14 picks LLVM's -mcpu from the target's features (sapphirerapids, cannonlake, skylake-avx512, haswell,
// corei7-avx, penryn, k8), and that CPU turns on more instructions than the feature names say: avx512_sapphirerapids
// turns on AVX-VNNI, which AMD's Zen 4 lacks (SIGILL in `{vex} vpdpwssd`). So a target's CPU features are those of
// its -mcpu plus its -mattrs, and the host target is built from cpuid, a feature at a time, only where the CPU
// has all of them; Halide's own host detection is never used.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

namespace nnc {

struct Target {
  std::string name;    // as the user named it: "host", "x86-64-v3", or the Halide target string itself
  std::string halide;  // the Halide target string the kernels are compiled for, canonical
  std::vector<std::string> cpu_features;  // what a CPU needs to run them (runtime/cpu_features.h names)

  // "cuda" or "opencl" when the kernels run on a GPU (the CPU features then serve Halide's host code), or "".
  std::string gpuApi() const;
  // "x86-64-v3 (x86-64-linux-avx-avx2-f16c-fma-sse41)", or the Halide string alone when it is the name.
  std::string describe() const;
};

// A --target the compiler cannot build a trainer for, with a message for the user.
struct TargetError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The widest target whose code a CPU with `cpu_features` runs: Halide features are added in the order their
// -mcpu grows (sse41, avx, f16c, fma, avx2, avx512, avx512_skylake, avx512_cannonlake, avx512_sapphirerapids),
// each kept only when the CPU has every feature it needs. Named by its Halide string.
Target targetForCpu(const std::vector<std::string>& cpu_features);

// targetForCpu of the CPU nnc runs on (cpuid, less NNC_HIDE_CPU_FEATURES; runtime/cpu_features.h), named
// "host". Computed once.
const Target& hostTarget();

// `host`, a named level (x86-64, x86-64-v2, x86-64-v3, x86-64-v4), or a Halide target string for x86-64 Linux
// ("host-FEATURES" adds features to the host's). `cuda` and `opencl` are the host's CPU with kernels for that GPU
// API, and either may follow a named level (`x86-64-v3-cuda`); CUDA without a capability gets sm_80
// (cuda_capability_80). Throws TargetError.
Target parseTarget(const std::string& text);

// The CPU features code that Halide 14 compiles for `halide_target` may use: those of the -mcpu it picks and of
// the -mattrs it adds, less the ones LLVM emits only for explicit intrinsics (AES, PCLMUL, SHA, VAES, XSAVE,
// RDRAND and other system instructions), which neither Halide's runtime nor nnc's kernels call.
std::vector<std::string> cpuFeaturesFor(const std::string& halide_target);

}  // namespace nnc
