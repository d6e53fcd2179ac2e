// The C++ face of the cpuid reading in cpu_features_core.cpp; see cpu_features.h.
#include "runtime/cpu_features.h"

#include <set>

#include "runtime/cpu_features_core.h"

namespace nnc::cpu {

bool hasFeature(const std::string& feature) { return cpuHasFeature(feature.c_str()); }

std::vector<std::string> missingFeatures(const std::vector<std::string>& required) {
  std::vector<std::string> missing;
  for (const std::string& feature : required)
    if (!hasFeature(feature)) missing.push_back(feature);
  return missing;
}

std::vector<std::string> thisCpuFeatures() {
  std::set<std::string> present;  // sorted by name
  for (int i = 0; i < knownFeatureCount(); ++i)
    if (cpuHasFeature(knownFeature(i))) present.insert(knownFeature(i));
  return {present.begin(), present.end()};
}

const std::vector<IsaLevel>& isaLevels() {
  static const std::vector<IsaLevel> levels = [] {
    std::vector<std::string> v1 = {"sse2"};
    std::vector<std::string> v2 = {"sse2", "pni", "ssse3", "sse4_1"};
    std::vector<std::string> v3 = v2;
    v3.insert(v3.end(), {"sse4_2", "popcnt", "avx", "avx2", "bmi1", "bmi2", "abm", "movbe", "fma", "f16c"});
    std::vector<std::string> v4 = v3;
    v4.insert(v4.end(), {"avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl", "adx", "3dnowprefetch"});
    return std::vector<IsaLevel>{{"x86-64", "", v1},
                                 {"x86-64-v2", "sse41", v2},
                                 {"x86-64-v3", "sse41-avx-avx2-fma-f16c", v3},
                                 {"x86-64-v4", "sse41-avx-avx2-fma-f16c-avx512-avx512_skylake", v4}};
  }();
  return levels;
}

const IsaLevel* newestLevelOfThisCpu() {
  const IsaLevel* newest = nullptr;
  for (const IsaLevel& level : isaLevels())
    if (missingFeatures(level.cpu_features).empty()) newest = &level;
  return newest;
}

std::string joinFeatures(const std::vector<std::string>& features) {
  std::string out;
  for (const std::string& feature : features) out += (out.empty() ? "" : ", ") + feature;
  return out;
}

}  // namespace nnc::cpu
