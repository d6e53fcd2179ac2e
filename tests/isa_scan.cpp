// Test support: instructions outside a CPU feature set; see isa_scan.h.
#include "tests/isa_scan.h"

#include <algorithm>
#include <regex>
#include <sstream>

namespace nnc::testing {

namespace {

// An extension's instructions: a mnemonic pattern (the whole mnemonic, AT&T size suffixes included), or a
// pattern anywhere in the line (registers, prefixes).
struct IsaRule {
  const char* feature;
  const char* mnemonic;  // nullptr: none
  const char* operands;  // nullptr: none
};

// Scalar mnemonics take an AT&T size suffix in LLVM's output (shlxq, popcntl), not in objdump's.
#define SCALAR(names) "(" names ")[bwlq]?"

const IsaRule kRules[] = {
    {"ssse3", "pshufb|palignr|pabs[bwd]|phadd(w|d|sw)|phsub(w|d|sw)|pmaddubsw|pmulhrsw|psign[bwd]", nullptr},
    {"sse4_1",
     "pmulld|pmin(sd|ud|sb|uw)|pmax(sd|ud|sb|uw)|round[ps][sd]|blendv?p[sd]|pblendvb|pblendw|insertps|extractps|"
     "pextr[bdq]|pinsr[bdq]|ptest|pmov[sz]x[bwd][wdq]|dpp[sd]|pcmpeqq|packusdw|mpsadbw|phminposuw",
     nullptr},
    {"sse4_2", SCALAR("crc32") "|pcmpgtq|pcmp[ei]stri|pcmp[ei]strm", nullptr},
    {"popcnt", SCALAR("popcnt"), nullptr},
    {"avx", "(\\{vex\\})?v[a-z0-9]+", "%ymm"},  // every VEX (and EVEX) encoded instruction
    {"avx2",
     "vpbroadcast[bwdq]|vbroadcasti128|vperm[dq]|vpermps|vperm2i128|vinserti128|vextracti128|vp?gather[dq][dq]|"
     "vgather[dq]p[sd]|vpmaskmov[dq]|vps[lr]lv[dq]|vpsrav[dq]",
     nullptr},
    {"fma", "vfn?m(add|sub)(sub|add)?(132|213|231)[ps][sd]", nullptr},
    {"f16c", "vcvtph2ps|vcvtps2ph", nullptr},
    // Not tzcnt: objdump prints GCC's baseline `rep bsf` (a bsf on CPUs without BMI1) as tzcnt.
    {"bmi1", SCALAR("andn|bextr|blsi|blsmsk|blsr"), nullptr},
    {"bmi2", SCALAR("bzhi|mulx|pdep|pext|rorx|sarx|shlx|shrx"), nullptr},
    {"abm", SCALAR("lzcnt"), nullptr},
    {"movbe", SCALAR("movbe"), nullptr},
    {"adx", SCALAR("adcx|adox"), nullptr},
    {"3dnowprefetch", "prefetchw", nullptr},
    {"avx512f", "k(mov|and|andn|or|xor|xnor|not|shiftl|shiftr|test|ortest|unpck|add)[bwdq]",
     "%zmm|%k[1-7]\\b|\\{1to|%[xy]mm(1[6-9]|2[0-9]|3[01])\\b"},
    {"avx512ifma", "vpmadd52[lh]uq", nullptr},
    {"avx512vbmi", "vpermb|vpermi2b|vpermt2b|vpmultishiftqb", nullptr},
    {"avx512_vbmi2", "vpshl(d|dv)[wdq]|vpshr(d|dv)[wdq]|vpcompress[bw]|vpexpand[bw]", nullptr},
    {"avx512_vnni", "vpdp(bu|ws)sds?", nullptr},  // the EVEX form; LLVM and objdump print the VEX form `{vex} vpdp...`
    {"avx_vnni", "\\{vex\\}vpdp(bu|ws)sds?", nullptr},
    {"avx512_bf16", "vcvtne2ps2bf16|vcvtneps2bf16|vdpbf16ps", nullptr},
    {"avx512_fp16", "v(add|sub|mul|div|max|min|sqrt)[ps]h|vfn?m(add|sub)(132|213|231)[ps]h|vmovsh|vmovw|vcvtph2psx",
     nullptr},
    {"avx512_bitalg", "vpopcnt[bw]|vpshufbitqmb", nullptr},
    {"avx512_vpopcntdq", "vpopcnt[dq]", nullptr},
    {"avx512_vp2intersect", "vp2intersect[dq]", nullptr},
    {"gfni", "v?gf2p8(affineqb|affineinvqb|mulb)", nullptr},
    {"amx_tile", "ldtilecfg|sttilecfg|tileloaddt?1?|tilestored|tilezero|tilerelease|tdp\\w+", nullptr},
};
#undef SCALAR

// The mnemonic of an instruction line ("vfmadd231ps", "{vex}vpdpwssd" for the VEX form of an instruction with an
// EVEX one), past an objdump address and other prefixes; "" for labels, directives and comments.
std::string mnemonicOf(const std::string& line) {
  static const std::regex kInstruction(
      R"(^\s*(?:[0-9a-f]+:\s*)?((?:(?:\{vex\}|\{evex\}|lock|rep[nez]*|notrack|bnd|data16|cs|ds)\s+)*)([a-z][a-z0-9]*)(?:\s|$))");
  size_t start = line.find_first_not_of(" \t");
  if (start == std::string::npos || line[start] == '.' || line[start] == '#' || line.back() == ':') return "";
  std::smatch match;
  if (!std::regex_search(line, match, kInstruction)) return "";
  return (match[1].str().find("{vex}") != std::string::npos ? "{vex}" : "") + match[2].str();
}

}  // namespace

std::vector<IsaViolation> instructionsOutside(const std::string& assembly, const std::vector<std::string>& cpu_features,
                                              size_t limit) {
  struct Compiled {
    const char* feature;
    std::regex mnemonic, operands;
    bool has_mnemonic, has_operands;
  };
  std::vector<Compiled> rules;
  for (const IsaRule& rule : kRules) {
    if (std::find(cpu_features.begin(), cpu_features.end(), rule.feature) != cpu_features.end()) continue;
    rules.push_back({rule.feature, std::regex(std::string("^(") + (rule.mnemonic ? rule.mnemonic : "$^") + ")$"),
                     std::regex(rule.operands ? rule.operands : "$^"), rule.mnemonic != nullptr,
                     rule.operands != nullptr});
  }
  std::vector<IsaViolation> found;
  std::istringstream lines(assembly);
  for (std::string line; std::getline(lines, line) && found.size() < limit;) {
    std::string mnemonic = mnemonicOf(line);
    if (mnemonic.empty()) continue;
    for (const Compiled& rule : rules)
      if ((rule.has_mnemonic && std::regex_match(mnemonic, rule.mnemonic)) ||
          (rule.has_operands && std::regex_search(line, rule.operands))) {
        found.push_back({rule.feature, line});
        break;
      }
  }
  return found;
}

}  // namespace nnc::testing
