// Targets (compiler/target.h): the named levels, the host target from cpuid, the CPU features each target
// needs, schedules that follow the target, and kernels that stay within it.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "compiler/lower/lower.h"
#include "compiler/target.h"
#include "runtime/cpu_features.h"
#include "tests/compiler_model_check.h"
#include "tests/isa_scan.h"

namespace nnc {
namespace {

using testing::modelAround;
using Features = std::vector<std::string>;

Features sorted(Features features) {
  std::sort(features.begin(), features.end());
  return features;
}

bool hasHalideFeature(const Target& target, const std::string& feature) {
  std::string dashed = "-" + target.halide + "-";
  return dashed.find("-" + feature + "-") != std::string::npos;
}

// `lscpu` flags of the CPUs these machines have had (the instruction-set ones), AMD EPYC of the Zen 3 and Zen 4
// generations.
const Features kZen3 = {"sse2", "pni", "ssse3", "fma", "cx16", "sse4_1", "sse4_2", "movbe", "popcnt", "avx",
                        "f16c", "abm", "3dnowprefetch", "bmi1", "avx2", "bmi2", "adx", "sha_ni", "vaes",
                        "vpclmulqdq"};
Features zen4() {
  Features flags = kZen3;
  flags.insert(flags.end(), {"avx512f", "avx512dq", "avx512ifma", "avx512cd", "avx512bw", "avx512vl", "avx512_bf16",
                             "avx512vbmi", "avx512_vbmi2", "gfni", "avx512_vnni", "avx512_bitalg",
                             "avx512_vpopcntdq"});
  return flags;
}

TEST(Target, NamedLevelsNeedWhatHalidesRulesSay) {
  for (const cpu::IsaLevel& level : cpu::isaLevels()) {
    Target target = parseTarget(level.name);
    EXPECT_EQ(target.name, level.name);
    EXPECT_EQ(sorted(target.cpu_features), sorted(level.cpu_features)) << level.name;
    EXPECT_EQ(cpuFeaturesFor(target.halide), target.cpu_features) << level.name;
  }
  EXPECT_EQ(parseTarget("x86-64-v3").halide, "x86-64-linux-avx-avx2-f16c-fma-sse41");
  EXPECT_EQ(parseTarget("x86-64-v4").halide, "x86-64-linux-avx-avx2-avx512-avx512_skylake-f16c-fma-sse41");
}

// Halide 14 names a Zen 4 "avx512_sapphirerapids" (it has AVX512-BF16), whose -mcpu turns on AVX-VNNI: SIGILL.
TEST(Target, EachCpuGetsTheWidestTargetItRuns) {
  EXPECT_EQ(targetForCpu(kZen3).halide, "x86-64-linux-avx-avx2-f16c-fma-sse41");
  Target zen4_target = targetForCpu(zen4());
  EXPECT_TRUE(hasHalideFeature(zen4_target, "avx512_cannonlake")) << zen4_target.halide;
  EXPECT_FALSE(hasHalideFeature(zen4_target, "avx512_sapphirerapids")) << zen4_target.halide;
  Features sapphire_rapids = cpuFeaturesFor("x86-64-linux-avx-avx2-avx512-avx512_cannonlake-avx512_sapphirerapids-"
                                            "avx512_skylake-f16c-fma-sse41");
  EXPECT_NE(std::find(sapphire_rapids.begin(), sapphire_rapids.end(), "avx_vnni"), sapphire_rapids.end());
  EXPECT_NE(std::find(sapphire_rapids.begin(), sapphire_rapids.end(), "amx_tile"), sapphire_rapids.end());
  EXPECT_TRUE(hasHalideFeature(targetForCpu(sapphire_rapids), "avx512_sapphirerapids"));
  for (const char* missing : {"avx_vnni", "amx_tile", "avx512_fp16"}) {
    Features lacking = sapphire_rapids;
    lacking.erase(std::find(lacking.begin(), lacking.end(), missing));
    EXPECT_FALSE(hasHalideFeature(targetForCpu(lacking), "avx512_sapphirerapids")) << "without " << missing;
  }
  EXPECT_EQ(targetForCpu({"sse2"}).halide, "x86-64-linux");
  // AVX-512 without AVX2 is no AVX-512 target: LLVM's +avx512f turns AVX2 on.
  Features without_avx2 = zen4();
  without_avx2.erase(std::find(without_avx2.begin(), without_avx2.end(), "avx2"));
  EXPECT_EQ(targetForCpu(without_avx2).halide, "x86-64-linux-avx-f16c-fma-sse41");
  Features avx512_alone = cpuFeaturesFor("x86-64-linux-avx512");
  for (const char* implied : {"avx2", "fma", "f16c", "avx", "sse4_2", "sse2"})
    EXPECT_NE(std::find(avx512_alone.begin(), avx512_alone.end(), implied), avx512_alone.end()) << implied;
}

TEST(Target, HostRunsOnThisCpu) {
  EXPECT_EQ(hostTarget().name, "host");
  EXPECT_EQ(cpu::missingFeatures(hostTarget().cpu_features), Features{});
  EXPECT_EQ(parseTarget("host").halide, hostTarget().halide);
  Target profiled = parseTarget("host-profile");
  EXPECT_TRUE(hasHalideFeature(profiled, "profile"));
  EXPECT_EQ(profiled.cpu_features, hostTarget().cpu_features);
}

TEST(Target, HalideStringsAreCanonicalAndX86Linux) {
  Target target = parseTarget("x86-64-linux-sse41-fma-avx2-avx-f16c");
  EXPECT_EQ(target.halide, "x86-64-linux-avx-avx2-f16c-fma-sse41");
  EXPECT_EQ(target.name, target.halide);
  EXPECT_EQ(target.describe(), target.halide);
  EXPECT_EQ(parseTarget("x86-64-v3").describe(), "x86-64-v3 (x86-64-linux-avx-avx2-f16c-fma-sse41)");
  for (const char* bad : {"x86-64-v5", "arm-64-linux", "x86-32-linux", "x86-64-windows", "x86-64-linux-metal",
                          "x86-64-linux-cuda-opencl", "sparc-cuda", ""})
    EXPECT_THROW(parseTarget(bad), TargetError) << bad;
}

// GPU targets: the host's CPU (or a named level) for Halide's host code, plus the GPU API; CUDA always with a
// capability, or Halide 14 would emit PTX for sm_20.
TEST(Target, GpuTargetsNameTheirApiAndCpu) {
  Target opencl = parseTarget("opencl");
  EXPECT_EQ(opencl.gpuApi(), "opencl");
  EXPECT_EQ(opencl.name, "opencl");
  EXPECT_EQ(opencl.cpu_features, hostTarget().cpu_features);
  EXPECT_TRUE(hasHalideFeature(opencl, "opencl"));
  Target cuda = parseTarget("cuda");
  EXPECT_EQ(cuda.gpuApi(), "cuda");
  EXPECT_TRUE(hasHalideFeature(cuda, "cuda_capability_80"));
  Target v3 = parseTarget("x86-64-v3-cuda");
  EXPECT_EQ(v3.halide, "x86-64-linux-avx-avx2-cuda-cuda_capability_80-f16c-fma-sse41");
  EXPECT_EQ(v3.cpu_features, parseTarget("x86-64-v3").cpu_features);
  EXPECT_EQ(v3.describe(), "x86-64-v3-cuda (x86-64-linux-avx-avx2-cuda-cuda_capability_80-f16c-fma-sse41)");
  EXPECT_TRUE(hasHalideFeature(parseTarget("x86-64-linux-cuda"), "cuda_capability_80"));
  EXPECT_TRUE(hasHalideFeature(parseTarget("x86-64-linux-cuda-cuda_capability_86"), "cuda_capability_86"));
  EXPECT_FALSE(hasHalideFeature(parseTarget("x86-64-linux-cuda-cuda_capability_86"), "cuda_capability_80"));
  EXPECT_EQ(parseTarget("host").gpuApi(), "");
}

TEST(Target, SchedulesFollowTheTargetsVectorUnit) {
  struct Expected {
    const char* level;
    int lanes, min_lanes, registers;
  };
  for (Expected e : {Expected{"x86-64-v2", 4, 4, 16}, Expected{"x86-64-v3", 8, 8, 16},
                     Expected{"x86-64-v4", 16, 8, 32}}) {
    VectorUnit unit = vectorUnitFor(Halide::Target(parseTarget(e.level).halide), Halide::Float(32));
    EXPECT_EQ(unit.lanes, e.lanes) << e.level;
    EXPECT_EQ(unit.min_lanes, e.min_lanes) << e.level;
    EXPECT_EQ(unit.registers, e.registers) << e.level;
  }
}

// The scanner itself, on lines as LLVM and objdump print them: the feature each needs, or "" for none.
TEST(IsaScan, NamesTheFeatureEachInstructionNeeds) {
  Features v2 = parseTarget("x86-64-v2").cpu_features, v3 = parseTarget("x86-64-v3").cpu_features;
  Features avx = cpuFeaturesFor("x86-64-linux-avx-sse41");
  struct Case {
    const char* line;
    Features allowed;
    const char* feature;
  };
  for (const Case& c : std::vector<Case>{
           {"\tvfmadd231ps\t%ymm0, %ymm1, %ymm2", v2, "fma"},
           {"\tvfmadd231ps\t%ymm0, %ymm1, %ymm2", v3, ""},
           {"\tvaddps\t%zmm0, %zmm1, %zmm2", v3, "avx512f"},
           {"\tvpternlogd\t$150, %ymm1, %ymm2, %ymm3", v3, "avx512f"},
           {"  4011d6:\tvpmovqd %ymm1,%xmm2", v3, "avx512f"},
           {"\tvpermw\t%ymm1, %ymm2, %ymm3", v3, "avx512bw"},
           {"\tvmovaps\t%ymm17, %ymm2", v3, "avx512vl"},
           {"\t{vex}\tvpdpwssd\t%ymm8, %ymm13, %ymm15", zen4(), "avx_vnni"},
           {"\tvpdpwssd\t%zmm8, %zmm13, %zmm15", zen4(), ""},
           {"  4011d6:\tshlx   %rax,%rbx,%rcx", v2, "bmi2"},
           {"\tshlxq\t%rax, %rbx, %rcx", v3, ""},
           {"\tpopcntq\t%rax, %rcx", {"sse2"}, "popcnt"},
           {"\tpshufb\t%xmm0, %xmm1", {"sse2"}, "ssse3"},
           {"\tpmulld\t%xmm0, %xmm1", {"sse2", "pni", "ssse3"}, "sse4_1"},
           {"\tvpaddd\t%ymm0, %ymm1, %ymm2", avx, "avx2"},
           {"\tvaddps\t%ymm0, %ymm1, %ymm2", avx, ""},
           {"\tvaddps\t%xmm0, %xmm1, %xmm2", v2, "avx"},
           {"\tkmovw\t%k1, %eax", v3, "avx512f"},
           {"vfoo_loop:", v2, ""},
           {"\t# ymm0 = ymm1[0,1]", v2, ""},
           {"\t.section\t.text.vmovaps", v2, ""},
           {"\tcall\tvfprintf@PLT", v2, ""}}) {
    std::vector<testing::IsaViolation> found = testing::instructionsOutside(c.line, c.allowed);
    EXPECT_EQ(found.empty() ? "" : found[0].feature, c.feature) << c.line;
  }
}

// The gradient checks that died with SIGILL on a Zen 4 (BatchNorm, LayerNorm, PRelu losses in float64), and an
// example's float32 training step, compiled for each named target and for a Zen 4's host target: no instruction
// outside the target's CPU features. A Zen 4 named as Halide 14 names it is the planted bug the scan must see.
std::string assemblyText(Halide::Pipeline pipeline, const std::vector<Halide::Argument>& arguments,
                         const std::string& name, const Halide::Target& target) {
  std::string path = std::filesystem::temp_directory_path() / ("nnc_target_test_" + std::to_string(getpid()) + ".s");
  pipeline.compile_to_assembly(path, arguments, name, target.with_feature(Halide::Target::NoRuntime));
  std::stringstream text;
  text << std::ifstream(path).rdbuf();
  std::remove(path.c_str());
  return text.str();
}

std::string assemblyOf(const Program& program, const EntryPoint& entry, Halide::Type type, const Target& target) {
  LoweredEntry lowered = lowerEntry(program.graph, entry, type, target);
  return assemblyText(lowered.pipeline(), lowered.arguments, entry.name, lowered.target);
}

// Products of int16 pairs summed into int32 lanes, the shape of AVX-VNNI's `vpdpwssd` (the float64 layer_norm
// gradients' index arithmetic took that form before argument strides became constants).
std::string int16DotProductAssembly(const Target& target) {
  Halide::ImageParam a(Halide::Int(16), 2, "a"), b(Halide::Int(16), 2, "b");
  Halide::Var x("x"), y("y");
  Halide::RDom r(0, 64);
  Halide::RVar outer("outer"), pair("pair");
  Halide::Func dot("dot");
  dot(x, y) = 0;
  dot(x, y) += Halide::cast<int32_t>(a(r, y)) * Halide::cast<int32_t>(b(r, x));
  dot.vectorize(x, 8);
  dot.update().split(r, outer, pair, 2).reorder(pair, x, outer, y).atomic().vectorize(pair).vectorize(x, 8);
  return assemblyText(dot, {a, b}, "dot", Halide::Target(target.halide));
}

TEST(Target, KernelsStayWithinTheirTarget) {
  std::vector<Target> targets;
  for (const char* level : {"x86-64-v2", "x86-64-v3", "x86-64-v4"}) targets.push_back(parseTarget(level));
  targets.push_back(targetForCpu(zen4()));
  std::vector<std::pair<Program, Halide::Type>> programs;
  programs.emplace_back(testing::compileModelSource("bn.nn", modelAround("2, 3, 3", "batch_norm(x)")), Halide::Float(64));
  programs.emplace_back(testing::compileModelSource("ln.nn", modelAround("2, 3", "layer_norm(x, dims = 2)")),
                        Halide::Float(64));
  programs.emplace_back(testing::compileModelSource("prelu.nn", modelAround("2, 3", "prelu(x)")), Halide::Float(64));
  programs.emplace_back(testing::compileExample("mlp_bn_dropout"), Halide::Float(32));
  for (const auto& [program, type] : programs)
    for (const Target& target : targets) {
      std::vector<testing::IsaViolation> found =
          testing::instructionsOutside(assemblyOf(program, program.grads_entry, type, target), target.cpu_features);
      EXPECT_TRUE(found.empty()) << target.describe() << ", " << program.graph.model_name << ": " << found[0].feature
                                 << " in " << found[0].line;
    }
  // The target Halide 14's host detection makes of a Zen 4 lets LLVM use AVX-VNNI, which a Zen 4 lacks:
  // `{vex} vpdpwssd` for an int16 dot product. The one nnc makes of the same CPU does not.
  Target halide_zen4{"Halide's Zen 4", "x86-64-linux-avx-avx2-avx512-avx512_cannonlake-avx512_sapphirerapids-"
                                       "avx512_skylake-f16c-fma-sse41", {}};
  std::vector<testing::IsaViolation> found =
      testing::instructionsOutside(int16DotProductAssembly(halide_zen4), zen4());
  ASSERT_FALSE(found.empty());
  EXPECT_EQ(found[0].feature, "avx_vnni") << found[0].line;
  found = testing::instructionsOutside(int16DotProductAssembly(targetForCpu(zen4())), zen4());
  EXPECT_TRUE(found.empty()) << found[0].feature << " in " << found[0].line;
}

}  // namespace
}  // namespace nnc
