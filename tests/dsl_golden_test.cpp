// Golden tests: printAst of each example model must equal tests/golden/<name>.ast byte for byte.
//
// To regenerate the golden files after an intended change to the parser or printer, run
//     NNC_REGEN_GOLDEN=1 build/tests/dsl_tests --gtest_filter='Golden*'
// and review the diff (`git diff tests/golden`) before committing it.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "dsl/ast_printer.h"
#include "dsl/checker.h"
#include "dsl/lexer.h"
#include "dsl/parser.h"

namespace nnc::dsl {
namespace {

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// Parses and checks examples/<name>.nn, then compares or (NNC_REGEN_GOLDEN=1) rewrites the golden file.
void expectGolden(const std::string& name) {
  std::string root = NNC_SOURCE_DIR;
  SourceFile source = SourceFile::read(root + "/examples/" + name + ".nn");
  DiagnosticEngine diags(source);
  Module module = parse(lex(source, diags), source, diags);
  EXPECT_TRUE(check(module, diags).has_value());
  ASSERT_EQ(diags.render(), "");
  std::string actual = printAst(module, source);

  std::string golden_path = root + "/tests/golden/" + name + ".ast";
  const char* regen = std::getenv("NNC_REGEN_GOLDEN");
  if (regen && std::string(regen) == "1") {
    std::ofstream(golden_path, std::ios::binary) << actual;
    GTEST_SKIP() << "rewrote " << golden_path;
  }
  EXPECT_EQ(actual, readFile(golden_path)) << "golden file: " << golden_path;
}

TEST(Golden, Mlp) { expectGolden("mlp"); }
TEST(Golden, Logreg) { expectGolden("logreg"); }

}  // namespace
}  // namespace nnc::dsl
