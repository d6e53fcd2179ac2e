// The x86-64 instruction-set features of the running CPU, read with cpuid, and the named levels people build
// distributable binaries for (x86-64-v2 ... v4). Shared by the compiler (its host target, compiler/target.cpp)
// and every trainer (the start-up check that this CPU can run the kernels it carries). No Halide here; the
// reading itself is cpu_features_core.h's, which the inference library shares.
//
// Features are named as Linux's /proc/cpuinfo and `lscpu` name them ("avx512bw", "abm" for LZCNT, "avx_vnni"),
// so a user can compare a message with what their machine prints.
#pragma once

#include <string>
#include <vector>

namespace nnc::cpu {

// Whether this CPU (and the OS, for AVX and AVX-512 register state) supports `feature`. Features listed in the
// environment variable NNC_HIDE_CPU_FEATURES (comma-separated) read as missing: tests use it to stand for an
// older CPU. Unknown names read as missing.
bool hasFeature(const std::string& feature);

// The features of `required` this CPU lacks, in the order given.
std::vector<std::string> missingFeatures(const std::vector<std::string>& required);

// The features hasFeature knows that this CPU has (less NNC_HIDE_CPU_FEATURES).
std::vector<std::string> thisCpuFeatures();

// A named instruction-set level: `halide_features` is what follows "x86-64-linux-" in its Halide target string,
// `cpu_features` what a CPU needs to run code compiled for it (checked against compiler/target.cpp's rules by
// tests/compiler_target_test.cpp).
struct IsaLevel {
  const char* name;
  const char* halide_features;
  std::vector<std::string> cpu_features;
};

// x86-64 (SSE2), x86-64-v2, x86-64-v3, x86-64-v4, oldest first.
const std::vector<IsaLevel>& isaLevels();

// The newest named level this CPU runs, or nullptr when none (not an x86-64 CPU).
const IsaLevel* newestLevelOfThisCpu();

// "a, b, c".
std::string joinFeatures(const std::vector<std::string>& features);

}  // namespace nnc::cpu
