// Golden-file comparison shared by the golden tests.
//
// To regenerate golden files after an intended change, run the test binary with NNC_REGEN_GOLDEN=1, e.g.
//     NNC_REGEN_GOLDEN=1 build/tests/compiler_tests --gtest_filter='Golden*'
// and review `git diff tests/golden` before committing.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

namespace nnc::testing {

inline std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// Compares `actual` with tests/golden/<name> (or tests/<name> when `name` has a folder), or rewrites that file
// when NNC_REGEN_GOLDEN=1.
inline void expectMatchesGolden(const std::string& actual, const std::string& name) {
  std::string path = std::string(NNC_SOURCE_DIR) + "/tests/" + (name.find('/') == std::string::npos ? "golden/" : "") + name;
  const char* regen = std::getenv("NNC_REGEN_GOLDEN");
  if (regen && std::string(regen) == "1") {
    std::ofstream(path, std::ios::binary) << actual;
    GTEST_SKIP() << "rewrote " << path;
  }
  EXPECT_EQ(actual, readFile(path)) << "golden file: " << path;
}

}  // namespace nnc::testing
