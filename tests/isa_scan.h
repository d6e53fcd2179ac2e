// Test support: finds instructions outside a set of CPU features in x86-64 assembly text, LLVM's (`nnc emit
// --stage=assembly`, Halide's compile_to_assembly) or objdump's (`objdump -d --no-show-raw-insn TRAINER`), both
// in AT&T syntax. A short list of mnemonics and registers per extension (runtime/cpu_features.h names), enough
// to tell when code compiled for one target uses an instruction set the target does not have: VEX and YMM
// without AVX, ZMM and mask registers without AVX-512, `{vex} vpdpwssd` without AVX-VNNI, ...
#pragma once

#include <string>
#include <vector>

namespace nnc::testing {

struct IsaViolation {
  std::string feature;  // the missing feature the instruction needs
  std::string line;     // the assembly line
};

// The lines of `assembly` that need a feature `cpu_features` lacks; at most `limit` of them.
std::vector<IsaViolation> instructionsOutside(const std::string& assembly, const std::vector<std::string>& cpu_features,
                                              size_t limit = 20);

}  // namespace nnc::testing
