// cpuid and xgetbv, read once per process; see cpu_features_core.h. Free of the C++ standard library.
#include "runtime/cpu_features_core.h"

#include <cpuid.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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

constexpr int kFeatureCount = sizeof kFeatureBits / sizeof kFeatureBits[0];
constexpr uint64_t kRead = uint64_t{1} << 63;  // in the mask of present features: cpuid has been read
static_assert(kFeatureCount < 63, "the features and kRead fit in 64 bits");

// Whether `name` is an item of the comma-separated `list`.
bool listed(const char* list, const char* name) {
  size_t length = strlen(name);
  for (const char* item = list; item;) {
    const char* comma = strchr(item, ',');
    size_t item_length = comma ? static_cast<size_t>(comma - item) : strlen(item);
    if (item_length == length && strncmp(item, name, length) == 0) return true;
    item = comma ? comma + 1 : nullptr;
  }
  return false;
}

// Bit i: kFeatureBits[i] is present (less NNC_HIDE_CPU_FEATURES). Threads that race to read it first compute the
// same mask, so a relaxed cache suffices.
uint64_t presentFeatures() {
  static uint64_t cached = 0;
  uint64_t mask = __atomic_load_n(&cached, __ATOMIC_RELAXED);
  if (mask) return mask;
  const char* hidden = getenv("NNC_HIDE_CPU_FEATURES");
  uint64_t os_state = osRegisterState();
  mask = kRead;
  for (int i = 0; i < kFeatureCount; ++i)
    if (!(hidden && listed(hidden, kFeatureBits[i].name)) && readFeature(kFeatureBits[i], os_state))
      mask |= uint64_t{1} << i;
  __atomic_store_n(&cached, mask, __ATOMIC_RELAXED);
  return mask;
}

}  // namespace

bool cpuHasFeature(const char* feature) {
  for (int i = 0; i < kFeatureCount; ++i)
    if (strcmp(kFeatureBits[i].name, feature) == 0) return presentFeatures() >> i & 1;
  return false;
}

int knownFeatureCount() { return kFeatureCount; }
const char* knownFeature(int index) { return kFeatureBits[index].name; }

}  // namespace nnc::cpu
