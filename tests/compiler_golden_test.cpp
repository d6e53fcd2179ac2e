// Golden tests for the printed forward graph and backward graph (autodiff + optimizer update + entry points) of
// every example model. Regenerate with NNC_REGEN_GOLDEN=1 (see tests/golden.h).
#include <gtest/gtest.h>

#include "compiler/compilation.h"
#include "compiler/graph_printer.h"
#include "tests/golden.h"

namespace nnc {
namespace {

class GoldenGraph : public ::testing::TestWithParam<std::string> {};

TEST_P(GoldenGraph, ForwardAndBackwardGraphsMatch) {
  const std::string& name = GetParam();
  auto c = compileFrontEnd(dsl::SourceFile::read(std::string(NNC_SOURCE_DIR) + "/examples/" + name + ".nn"));
  ASSERT_EQ(c->diags->render(), "");
  ASSERT_TRUE(c->graph.has_value());
  testing::expectMatchesGolden(printForwardGraph(*c->graph), name + ".graph");
  Program program = buildProgram(std::move(*c->graph), c->checked->train);
  testing::expectMatchesGolden(printBackwardGraph(program), name + ".backward");
}

INSTANTIATE_TEST_SUITE_P(Examples, GoldenGraph,
                         ::testing::Values("perceptron", "xor", "logreg", "softmax_regression", "mlp",
                                           "mlp_bn_dropout", "lenet5", "cnn_bn"));

}  // namespace
}  // namespace nnc
