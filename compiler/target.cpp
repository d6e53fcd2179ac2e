// Targets: parsing --target, the host's from cpuid, and the CPU features a Halide target needs; see target.h.
#include "compiler/target.h"

#include <Halide.h>
#include <fmt/format.h>

#include <algorithm>

#include "runtime/cpu_features.h"

namespace nnc {

namespace {

using Feature = Halide::Target::Feature;
using Features = std::vector<std::string>;

void append(Features& to, const Features& more) {
  for (const std::string& feature : more)
    if (std::find(to.begin(), to.end(), feature) == to.end()) to.push_back(feature);
}

// The features of each -mcpu Halide 14 picks (CodeGen_X86::mcpu), as `clang-14 -march=CPU -dM -E` lists them,
// without the intrinsic-only ones (target.h). Each CPU's list extends the one before it.
const Features kK8 = {"sse2"};
const Features kPenryn = {"pni", "ssse3", "sse4_1"};
const Features kCorei7Avx = {"sse4_2", "popcnt", "avx"};
const Features kHaswell = {"avx2", "bmi1", "bmi2", "abm", "movbe", "fma", "f16c"};
const Features kKnl = {"avx512f", "avx512cd", "avx512pf", "avx512er", "adx", "3dnowprefetch"};
const Features kSkylakeAvx512 = {"avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl", "adx", "3dnowprefetch"};
const Features kCannonlake = {"avx512ifma", "avx512vbmi"};
const Features kSapphireRapids = {"avx512_bf16", "avx512_vnni", "avx_vnni", "avx512_fp16", "avx512_vbmi2",
                                  "avx512_bitalg", "avx512_vpopcntdq", "avx512_vp2intersect", "gfni",
                                  "amx_tile", "amx_int8", "amx_bf16"};

Features mcpuFeatures(const Halide::Target& t) {
  Features out = kK8;
  bool spr = t.has_feature(Feature::AVX512_SapphireRapids), cnl = spr || t.has_feature(Feature::AVX512_Cannonlake);
  bool skx = cnl || t.has_feature(Feature::AVX512_Skylake), knl = !skx && t.has_feature(Feature::AVX512_KNL);
  bool hsw = skx || knl || t.has_feature(Feature::AVX2), snb = hsw || t.has_feature(Feature::AVX);
  if (snb || t.has_feature(Feature::SSE41)) append(out, kPenryn);
  if (snb) append(out, kCorei7Avx);
  if (hsw) append(out, kHaswell);
  if (knl) append(out, kKnl);
  if (skx) append(out, kSkylakeAvx512);
  if (cnl) append(out, kCannonlake);
  if (spr) append(out, kSapphireRapids);
  return out;
}

// Halide 14's CodeGen_X86::mattrs.
Features mattrFeatures(const Halide::Target& t) {
  Features out;
  if (t.has_feature(Feature::FMA)) out.push_back("fma");
  if (t.has_feature(Feature::FMA4)) out.push_back("fma4");
  if (t.has_feature(Feature::F16C)) out.push_back("f16c");
  if (!t.features_any_of({Feature::AVX512, Feature::AVX512_KNL, Feature::AVX512_Skylake, Feature::AVX512_Cannonlake}))
    return out;
  append(out, {"avx512f", "avx512cd"});
  if (t.has_feature(Feature::AVX512_KNL)) append(out, {"avx512pf", "avx512er"});
  if (t.features_any_of({Feature::AVX512_Skylake, Feature::AVX512_Cannonlake}))
    append(out, {"avx512vl", "avx512bw", "avx512dq"});
  if (t.has_feature(Feature::AVX512_Cannonlake)) append(out, {"avx512ifma", "avx512vbmi"});
  if (t.has_feature(Feature::AVX512_SapphireRapids)) append(out, {"avx512_bf16", "avx512_vnni", "amx_int8", "amx_bf16"});
  return out;
}

// What LLVM turns on with each feature (X86.td's `Implies`): +avx512f alone brings AVX2, FMA and F16C.
const std::vector<std::pair<std::string, Features>> kImplied = {
    {"avx512_fp16", {"avx512bw", "avx512dq", "avx512vl"}},
    {"avx512_bf16", {"avx512bw"}},
    {"avx512vbmi", {"avx512bw"}},
    {"avx512_vbmi2", {"avx512bw"}},
    {"avx512_bitalg", {"avx512bw"}},
    {"avx512ifma", {"avx512f"}},
    {"avx512_vnni", {"avx512f"}},
    {"avx512_vpopcntdq", {"avx512f"}},
    {"avx512_vp2intersect", {"avx512f"}},
    {"avx512pf", {"avx512f"}},
    {"avx512er", {"avx512f"}},
    {"avx512cd", {"avx512f"}},
    {"avx512bw", {"avx512f"}},
    {"avx512dq", {"avx512f"}},
    {"avx512vl", {"avx512f"}},
    {"avx512f", {"avx2", "fma", "f16c"}},
    {"avx_vnni", {"avx2"}},
    {"amx_int8", {"amx_tile"}},
    {"amx_bf16", {"amx_tile"}},
    {"avx2", {"avx"}},
    {"fma", {"avx"}},
    {"fma4", {"avx"}},
    {"f16c", {"avx"}},
    {"avx", {"sse4_2"}},
    {"sse4_2", {"sse4_1"}},
    {"sse4_1", {"ssse3"}},
    {"ssse3", {"pni"}},
    {"pni", {"sse2"}},
};

// The features of the -mcpu and -mattrs, closed under LLVM's implications (kImplied lists an implying feature
// before the ones it implies, so one pass in order suffices).
Features featuresOf(const Halide::Target& t) {
  Features out = mcpuFeatures(t);
  append(out, mattrFeatures(t));
  for (const auto& [feature, implied] : kImplied)
    if (std::find(out.begin(), out.end(), feature) != out.end()) append(out, implied);
  return out;
}

Target makeTarget(const std::string& name, const Halide::Target& t) {
  return {name, t.to_string(), featuresOf(t)};
}

Halide::Target parseHalide(const std::string& text) {
  if (!Halide::Target::validate_target_string(text))
    throw TargetError(fmt::format(
        "unknown target `{}`: expected host, x86-64, x86-64-v2, x86-64-v3, x86-64-v4 or a Halide target string "
        "such as x86-64-linux-avx-avx2-f16c-fma-sse41",
        text));
  Halide::Target t(text);
  if (t.arch != Halide::Target::X86 || t.bits != 64 || t.os != Halide::Target::Linux)
    throw TargetError(fmt::format("target `{}`: nnc builds trainers for x86-64 Linux (x86-64-linux-...)", text));
  if (t.has_gpu_feature() && !t.features_any_of({Feature::CUDA, Feature::OpenCL}))
    throw TargetError(fmt::format("target `{}`: the GPU APIs nnc builds for are cuda and opencl", text));
  if (t.has_feature(Feature::CUDA) && t.has_feature(Feature::OpenCL))
    throw TargetError(fmt::format("target `{}`: name one GPU API, cuda or opencl", text));
  // Without a capability Halide 14 emits PTX for sm_20, which no current driver runs.
  if (t.has_feature(Feature::CUDA) && t.get_cuda_capability_lower_bound() == 20)
    t = t.with_feature(Feature::CUDACapability80);
  return t;
}

}  // namespace

std::string Target::gpuApi() const {
  Halide::Target t(halide);
  return t.has_feature(Feature::CUDA) ? "cuda" : t.has_feature(Feature::OpenCL) ? "opencl" : "";
}

std::string Target::describe() const { return name == halide ? halide : fmt::format("{} ({})", name, halide); }

std::vector<std::string> cpuFeaturesFor(const std::string& halide_target) {
  return featuresOf(Halide::Target(halide_target));
}

// A Zen 4 (AVX512-BF16 without AVX-VNNI or AMX) gets avx512_cannonlake, not sapphirerapids.
Target targetForCpu(const std::vector<std::string>& cpu_features) {
  auto runs = [&](const Halide::Target& t) {
    for (const std::string& needed : featuresOf(t))
      if (std::find(cpu_features.begin(), cpu_features.end(), needed) == cpu_features.end()) return false;
    return true;
  };
  Halide::Target t("x86-64-linux");
  for (Feature feature : {Feature::SSE41, Feature::AVX, Feature::F16C, Feature::FMA, Feature::AVX2, Feature::AVX512,
                          Feature::AVX512_Skylake, Feature::AVX512_Cannonlake, Feature::AVX512_SapphireRapids})
    if (runs(t.with_feature(feature))) t = t.with_feature(feature);
  return makeTarget(t.to_string(), t);
}

const Target& hostTarget() {
  static const Target host = [] {
    Target target = targetForCpu(cpu::thisCpuFeatures());
    target.name = "host";
    return target;
  }();
  return host;
}

Target parseTarget(const std::string& text) {
  if (text == "host") return hostTarget();
  // A GPU API after a CPU target's name ("opencl" alone is the host's CPU with OpenCL kernels).
  for (const char* api : {"cuda", "opencl"}) {
    std::string suffix = std::string("-") + api;
    bool alone = text == api;
    if (!alone && (text.size() <= suffix.size() || text.compare(text.size() - suffix.size(), suffix.size(), suffix) != 0))
      continue;
    std::string cpu = alone ? "host" : text.substr(0, text.size() - suffix.size());
    if (cpu != "host" && cpu.rfind("x86-64", 0) != 0) continue;
    Halide::Target t = parseHalide(parseTarget(cpu).halide + suffix);
    return makeTarget(text, t);
  }
  for (const cpu::IsaLevel& level : cpu::isaLevels())
    if (text == level.name)
      return makeTarget(level.name, Halide::Target(fmt::format("x86-64-linux{}{}", *level.halide_features ? "-" : "",
                                                               level.halide_features)));
  if (text.rfind("host-", 0) == 0) {
    Halide::Target t = parseHalide(hostTarget().halide + text.substr(4));
    return makeTarget(t.to_string(), t);
  }
  Halide::Target t = parseHalide(text);
  return makeTarget(t.to_string(), t);
}

}  // namespace nnc
