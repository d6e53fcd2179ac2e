// isa_scan FEATURES: reads x86-64 assembly (LLVM's or objdump's) on stdin and prints each line that needs a CPU
// feature not in the comma-separated FEATURES (tests/isa_scan.h); exits 1 when there is one, else 0.
#include <iostream>
#include <iterator>
#include <sstream>

#include "tests/isa_scan.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: isa_scan FEATURE,FEATURE,... < ASSEMBLY\n";
    return 2;
  }
  std::vector<std::string> features;
  std::stringstream list(argv[1]);
  for (std::string feature; std::getline(list, feature, ',');) features.push_back(feature);
  std::string assembly(std::istreambuf_iterator<char>(std::cin), {});
  std::vector<nnc::testing::IsaViolation> found = nnc::testing::instructionsOutside(assembly, features);
  for (const auto& violation : found) std::cout << violation.feature << ": " << violation.line << "\n";
  return found.empty() ? 0 : 1;
}
