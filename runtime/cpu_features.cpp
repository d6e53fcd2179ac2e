// cpuid and xgetbv, read once per process; see cpu_features.h.
#include "runtime/cpu_features.h"

#include <cpuid.h>

#include <cstdint>
#include <cstdlib>
#include <set>
#include <sstream>

namespace nnc::cpu {

namespace {

enum Register { EAX, EBX, ECX, EDX };

// Register state the OS must save for a feature's instructions to be usable (XCR0 bits).
constexpr uint64_t kNoState = 0;
constexpr uint64_t kYmmState = 0x6;           // SSE and AVX state
constexpr uint64_t kZmmState = 0x6 | 0xe0;    // plus the opmask and the upper ZMM registers
constexpr uint64_t kTileState = 0x60000;      // AMX tile configuration and data

struct FeatureBit {
  const char* name;
  uint32_t leaf, subleaf;
  Register reg;
  int bit;
  uint64_t os_state;
};

// Intel SDM vol. 2A, CPUID; AMD APM vol. 3, appendix E.
const FeatureBit kFeatureBits[] = {
    {"sse2", 1, 0, EDX, 26, kNoState},
    {"pni", 1, 0, ECX, 0, kNoState},  // SSE3
    {"ssse3", 1, 0, ECX, 9, kNoState},
    {"fma", 1, 0, ECX, 12, kYmmState},
    {"cx16", 1, 0, ECX, 13, kNoState},
    {"sse4_1", 1, 0, ECX, 19, kNoState},
    {"sse4_2", 1, 0, ECX, 20, kNoState},
    {"movbe", 1, 0, ECX, 22, kNoState},
    {"popcnt", 1, 0, ECX, 23, kNoState},
    {"avx", 1, 0, ECX, 28, kYmmState},
    {"f16c", 1, 0, ECX, 29, kYmmState},
    {"bmi1", 7, 0, EBX, 3, kNoState},
    {"avx2", 7, 0, EBX, 5, kYmmState},
    {"bmi2", 7, 0, EBX, 8, kNoState},
    {"avx512f", 7, 0, EBX, 16, kZmmState},
    {"avx512dq", 7, 0, EBX, 17, kZmmState},
    {"adx", 7, 0, EBX, 19, kNoState},
    {"avx512ifma", 7, 0, EBX, 21, kZmmState},
    {"avx512pf", 7, 0, EBX, 26, kZmmState},
    {"avx512er", 7, 0, EBX, 27, kZmmState},
    {"avx512cd", 7, 0, EBX, 28, kZmmState},
    {"sha_ni", 7, 0, EBX, 29, kNoState},
    {"avx512bw", 7, 0, EBX, 30, kZmmState},
    {"avx512vl", 7, 0, EBX, 31, kZmmState},
    {"avx512vbmi", 7, 0, ECX, 1, kZmmState},
    {"avx512_vbmi2", 7, 0, ECX, 6, kZmmState},
    {"gfni", 7, 0, ECX, 8, kNoState},
    {"vaes", 7, 0, ECX, 9, kYmmState},
    {"vpclmulqdq", 7, 0, ECX, 10, kYmmState},
    {"avx512_vnni", 7, 0, ECX, 11, kZmmState},
    {"avx512_bitalg", 7, 0, ECX, 12, kZmmState},
    {"avx512_vpopcntdq", 7, 0, ECX, 14, kZmmState},
    {"avx512_vp2intersect", 7, 0, EDX, 8, kZmmState},
    {"amx_bf16", 7, 0, EDX, 22, kTileState},
    {"avx512_fp16", 7, 0, EDX, 23, kZmmState},
    {"amx_tile", 7, 0, EDX, 24, kTileState},
    {"amx_int8", 7, 0, EDX, 25, kTileState},
    {"avx_vnni", 7, 1, EAX, 4, kYmmState},
    {"avx512_bf16", 7, 1, EAX, 5, kZmmState},
    {"abm", 0x80000001, 0, ECX, 5, kNoState},  // LZCNT
    {"3dnowprefetch", 0x80000001, 0, ECX, 8, kNoState},  // PREFETCHW
    {"fma4", 0x80000001, 0, ECX, 16, kYmmState},
};

// The register state the OS enabled (XCR0), or 0 without OSXSAVE.
uint64_t osRegisterState() {
  unsigned eax, ebx, ecx, edx;
  if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx) || !(ecx & (1u << 27))) return 0;
  uint32_t low, high;
  __asm__("xgetbv" : "=a"(low), "=d"(high) : "c"(0));
  return (static_cast<uint64_t>(high) << 32) | low;
}

bool readFeature(const FeatureBit& feature, uint64_t os_state) {
  unsigned regs[4] = {0, 0, 0, 0};
  if (__get_cpuid_max(feature.leaf & 0x80000000u, nullptr) < feature.leaf) return false;
  if (feature.subleaf > 0) {  // sub-leaf 0's EAX is the highest sub-leaf (leaf 7)
    __cpuid_count(feature.leaf, 0, regs[EAX], regs[EBX], regs[ECX], regs[EDX]);
    if (regs[EAX] < feature.subleaf) return false;
  }
  __cpuid_count(feature.leaf, feature.subleaf, regs[EAX], regs[EBX], regs[ECX], regs[EDX]);
  return (regs[feature.reg] >> feature.bit & 1u) && (os_state & feature.os_state) == feature.os_state;
}

std::set<std::string> splitList(const char* text) {
  std::set<std::string> items;
  std::stringstream stream(text ? text : "");
  for (std::string item; std::getline(stream, item, ',');)
    if (!item.empty()) items.insert(item);
  return items;
}

const std::set<std::string>& presentFeatures() {
  static const std::set<std::string> present = [] {
    std::set<std::string> hidden = splitList(std::getenv("NNC_HIDE_CPU_FEATURES"));
    uint64_t os_state = osRegisterState();
    std::set<std::string> found;
    for (const FeatureBit& feature : kFeatureBits)
      if (!hidden.count(feature.name) && readFeature(feature, os_state)) found.insert(feature.name);
    return found;
  }();
  return present;
}

}  // namespace

bool hasFeature(const std::string& feature) { return presentFeatures().count(feature) > 0; }

std::vector<std::string> missingFeatures(const std::vector<std::string>& required) {
  std::vector<std::string> missing;
  for (const std::string& feature : required)
    if (!hasFeature(feature)) missing.push_back(feature);
  return missing;
}

std::vector<std::string> thisCpuFeatures() { return {presentFeatures().begin(), presentFeatures().end()}; }

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
