// Test support: instructions outside a CPU feature set; see isa_scan.h.
#include "tests/isa_scan.h"

#include <algorithm>
#include <regex>
#include <sstream>

namespace nnc::testing {

namespace {

// An instruction an extension adds: its mnemonic (the whole mnemonic, AT&T size suffixes included) and/or a
// pattern anywhere in the line (registers, a source operand); a rule with both needs both.
struct IsaRule {
  const char* feature;
  const char* mnemonic;  // nullptr: any
  const char* line;      // nullptr: any
};

// Scalar mnemonics take an AT&T size suffix in LLVM's output (shlxq, popcntl), not in objdump's.
#define SCALAR(names) "(" names ")[bwlq]?"

// More specific extensions first: the first rule that matches names the feature.
const IsaRule kRules[] = {
    {"pni", "haddp[sd]|hsubp[sd]|addsubp[sd]|movs[hl]dup|movddup|lddqu|fisttp[sl]?", nullptr},
    {"ssse3", "pshufb|palignr|pabs[bwd]|phadd(w|d|sw)|phsub(w|d|sw)|pmaddubsw|pmulhrsw|psign[bwd]", nullptr},
    {"sse4_1",
     "pmulld|pmuldq|pmin(sd|ud|sb|uw)|pmax(sd|ud|sb|uw)|round[ps][sd]|blendv?p[sd]|pblendvb|pblendw|insertps|"
     "extractps|pextr[bdq]|pinsr[bdq]|ptest|pmov[sz]x[bwd][wdq]|dpp[sd]|pcmpeqq|packusdw|mpsadbw|phminposuw",
     nullptr},
    {"sse4_2", SCALAR("crc32") "|pcmpgtq|pcmp[ei]stri|pcmp[ei]strm", nullptr},
    {"popcnt", SCALAR("popcnt"), nullptr},
    {"avx512_vp2intersect", "vp2intersect[dq]", nullptr},
    {"avx512_bitalg", "vpopcnt[bw]|vpshufbitqmb", nullptr},
    {"avx512_vpopcntdq", "vpopcnt[dq]", nullptr},
    {"avx512_vbmi2", "vpshl(d|dv)[wdq]|vpshr(d|dv)[wdq]|vpcompress[bw]|vpexpand[bw]", nullptr},
    {"avx512vbmi", "vpermb|vpermi2b|vpermt2b|vpmultishiftqb", nullptr},
    {"avx512ifma", "vpmadd52[lh]uq", nullptr},
    {"avx512_bf16", "vcvtne2ps2bf16|vcvtneps2bf16|vdpbf16ps", nullptr},
    {"avx512_fp16", "v(add|sub|mul|div|max|min|sqrt)[ps]h|vfn?m(add|sub)(132|213|231)[ps]h|vmovsh|vmovw|vcvtph2psx",
     nullptr},
    {"avx_vnni", "\\{vex\\}vpdp(bu|ws)sds?", nullptr},  // the VEX form, as LLVM and objdump 2.36+ print it
    {"avx512_vnni", "vpdp(bu|ws)sds?", nullptr},
    {"gfni", "v?gf2p8(affineqb|affineinvqb|mulb)", nullptr},
    {"amx_tile", "ldtilecfg|sttilecfg|tileloaddt?1?|tilestored|tilezero|tilerelease|tdp\\w+", nullptr},
    {"avx512bw",
     "vpermw|vpermi2w|vpermt2w|vpmovu?s?wb|vpmov[bw]2m|vpmovm2[bw]|vdbpsadbw|vmovdqu(8|16)|vpblendm[bw]|"
     "vpcmpu?[bw]|vptestn?m[bw]|vpsllvw|vpsrlvw|vpsravw|k(mov|and|andn|or|xor|xnor|not|test|ortest|add)[dq]|kunpck(wd|dq)",
     nullptr},
    {"avx512dq",
     "vpmullq|vcvtt?p[sd]2u?qq|vcvtu?qq2p[sd]|vrange[ps][sd]|vreduce[ps][sd]|vfpclass[ps][sd]|vpmovm2[dq]|vpmov[dq]2m|"
     "vextract[fi](32x8|64x2)|vinsert[fi](32x8|64x2)|vbroadcast[fi](32x2|32x8|64x2)|k(mov|and|andn|or|xor|xnor|not|test|"
     "ortest|add)b",
     nullptr},
    {"avx512cd", "vplzcnt[dq]|vpconflict[dq]|vpbroadcastm(b2q|w2d)", nullptr},
    {"avx512vl", nullptr, "%[xy]mm(1[6-9]|2[0-9]|3[01])\\b"},
    {"avx512f",
     "vpternlog[dq]|vpmovu?s?(qd|qw|qb|dw|db)|vpabsq|vcvtt?p[sd]2udq|vcvtudq2p[sd]|vcvtusi2s[sd]|vcvtt?s[sd]2usi|"
     "vpermi2(d|q|ps|pd)|vpermt2(d|q|ps|pd)|vrndscale[ps][sd]|vscalef[ps][sd]|vgetexp[ps][sd]|vgetmant[ps][sd]|"
     "vfixupimm[ps][sd]|vp?compress(d|q|ps|pd)|vp?expand(d|q|ps|pd)|vpsraq|vpro[lr]v?[dq]|vp(max|min)[su]q|"
     "vextract[fi](32x4|64x4)|vinsert[fi](32x4|64x4)|vbroadcast[fi](32x4|64x4)|vshuf[fi](32x4|64x2)|valign[dq]|"
     "vblendmp[sd]|vpblendm[dq]|vmovdq[au](32|64)|vrcp14[ps][sd]|vrsqrt14[ps][sd]|vptestn?m[dq]|vpcmpu?[dq]|"
     "vpscatter[dq][dq]|vscatter[dq]p[sd]|k(mov|and|andn|or|xor|xnor|not|test|ortest|shiftl|shiftr)w|kunpckbw",
     nullptr},
    {"avx512f", nullptr, "%zmm|%k[0-7]\\b|\\{1to"},
    {"fma4", "vfn?m(add|sub)(sub|add)?[ps][sd]", nullptr},  // FMA's forms carry 132, 213 or 231
    {"fma", "vfn?m(add|sub)(sub|add)?(132|213|231)[ps][sd]", nullptr},
    {"f16c", "vcvtph2ps|vcvtps2ph", nullptr},
    {"avx2",
     "vpbroadcast[bwdq]|vbroadcasti128|vperm[dq]|vpermps|vperm2i128|vinserti128|vextracti128|vp?gather[dq][dq]|"
     "vgather[dq]p[sd]|vpmaskmov[dq]|vps[lr]lv[dq]|vpsrav[dq]",
     nullptr},
    {"avx2", "vp(?!ermil|erm2f128|test)[a-z0-9]+", "%ymm"},  // integer instructions on 256 bits
    {"avx2", "vbroadcasts[sd]", "vbroadcasts[sd]\\s+%xmm"},  // from a register
    {"avx", "(\\{vex\\})?v[a-z0-9]+", nullptr},  // every VEX (and EVEX) encoded instruction
    {"avx", nullptr, "%ymm"},
    // Not tzcnt: objdump prints GCC's baseline `rep bsf` (a bsf on CPUs without BMI1) as tzcnt.
    {"bmi1", SCALAR("andn|bextr|blsi|blsmsk|blsr"), nullptr},
    {"bmi2", SCALAR("bzhi|mulx|pdep|pext|rorx|sarx|shlx|shrx"), nullptr},
    {"abm", SCALAR("lzcnt"), nullptr},
    {"movbe", SCALAR("movbe"), nullptr},
    {"adx", SCALAR("adcx|adox"), nullptr},
    {"3dnowprefetch", "prefetchw", nullptr},
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
    std::regex mnemonic, line;
  };
  std::vector<Compiled> rules;
  for (const IsaRule& rule : kRules) {
    if (std::find(cpu_features.begin(), cpu_features.end(), rule.feature) != cpu_features.end()) continue;
    rules.push_back({rule.feature, std::regex(std::string("^(") + (rule.mnemonic ? rule.mnemonic : ".*") + ")$"),
                     std::regex(rule.line ? rule.line : "")});
  }
  std::vector<IsaViolation> found;
  std::istringstream lines(assembly);
  for (std::string line; std::getline(lines, line) && found.size() < limit;) {
    std::string mnemonic = mnemonicOf(line);
    if (mnemonic.empty()) continue;
    for (const Compiled& rule : rules)
      if (std::regex_match(mnemonic, rule.mnemonic) && std::regex_search(line, rule.line)) {
        found.push_back({rule.feature, line});
        break;
      }
  }
  return found;
}

}  // namespace nnc::testing
