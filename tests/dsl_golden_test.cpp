// Golden tests: printAst of each example model must equal tests/golden/<name>.ast byte for byte.
//
// Regenerate with NNC_REGEN_GOLDEN=1 build/tests/dsl_tests --gtest_filter='Golden*' (see tests/golden.h).
#include <gtest/gtest.h>

#include "dsl/ast_printer.h"
#include "dsl/checker.h"
#include "dsl/lexer.h"
#include "dsl/parser.h"
#include "tests/golden.h"

namespace nnc::dsl {
namespace {

// Parses and checks examples/<name>.nn, then compares or (NNC_REGEN_GOLDEN=1) rewrites the golden file.
void expectGolden(const std::string& name) {
  std::string root = NNC_SOURCE_DIR;
  SourceFile source = SourceFile::read(root + "/examples/" + name + ".nn");
  DiagnosticEngine diags(source);
  Module module = parse(lex(source, diags), source, diags);
  EXPECT_TRUE(check(module, diags).has_value());
  ASSERT_EQ(diags.render(), "");
  std::string actual = printAst(module, source);

  testing::expectMatchesGolden(actual, name + ".ast");
}

TEST(Golden, Mlp) { expectGolden("mlp"); }
TEST(Golden, Logreg) { expectGolden("logreg"); }

}  // namespace
}  // namespace nnc::dsl
