// The cpuid reading of runtime/cpu_features.h without the C++ standard library (only <cpuid.h> and libc), so
// that the inference library (runtime/predict_library.h), which C programs link, checks its CPU as trainers do.
#pragma once

namespace nnc::cpu {

// Whether this CPU (and the OS, for AVX and AVX-512 register state) supports `feature`, named as Linux's
// /proc/cpuinfo names it. Features listed in the environment variable NNC_HIDE_CPU_FEATURES (comma-separated)
// read as missing: tests use it to stand for an older CPU. Unknown names read as missing. cpuid is read once per
// process; safe to call from several threads.
bool cpuHasFeature(const char* feature);

// The features cpuHasFeature knows: `count` of them, by index.
int knownFeatureCount();
const char* knownFeature(int index);

}  // namespace nnc::cpu
