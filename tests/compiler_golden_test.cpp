// Golden tests for the printed forward graph and backward graph (autodiff + optimizer update + entry points) of
// every example model. Regenerate with NNC_REGEN_GOLDEN=1 (see tests/golden.h).
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <regex>
#include <set>

#include "compiler/compilation.h"
#include "compiler/graph/graph_printer.h"
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

// The DOT form of lenet5's whole program: a node statement for every node, in its cluster; every edge between
// declared nodes; every backward node named after a forward node (its VJP's) and every update node after a
// parameter.
TEST(GraphDot, BackwardNodesNameTheirForwardNodes) {
  auto c = compileFrontEnd(dsl::SourceFile::read(std::string(NNC_SOURCE_DIR) + "/examples/lenet5.nn"));
  ASSERT_TRUE(c->graph.has_value()) << c->diags->render();
  Program program = buildProgram(std::move(*c->graph), c->checked->train);
  const Graph& g = program.graph;
  std::string dot = printDot(program, true);
  EXPECT_EQ(dot.rfind("digraph \"lenet5\" {", 0), 0u);
  EXPECT_EQ(std::count(dot.begin(), dot.end(), '{'), std::count(dot.begin(), dot.end(), '}'));
  std::set<int> declared;
  std::regex node_line(R"(n(\d+) \[label="%(\d+) ([a-z_0-9]+)[^"]*"[^\n]*)");
  for (std::sregex_iterator it(dot.begin(), dot.end(), node_line), end; it != end; ++it) {
    int id = std::stoi((*it)[1]);
    EXPECT_EQ(id, std::stoi((*it)[2]));
    EXPECT_EQ((*it)[3].str(), opInfo(g.node(id).op).name);
    declared.insert(id);
    const Node& node = g.node(id);
    if (node.origin == kNoNode) continue;
    EXPECT_LT(node.origin, g.forwardEnd()) << "a backward node belongs to a forward node";
    if (opInfo(node.op).family == OpFamily::Leaf) continue;  // a state or constant shows its own name
    std::string expected = g.node(node.origin).op == Op::Param
                               ? fmt::format("update of %{} {}", node.origin, g.node(node.origin).name)
                               : fmt::format("backward of %{} {}", node.origin, opInfo(g.node(node.origin).op).name);
    EXPECT_NE(it->str().find(expected), std::string::npos) << it->str();
  }
  EXPECT_EQ(declared.size(), g.nodes.size());
  std::regex edge(R"(n(\d+) -> n(\d+);)");
  int edges = 0;
  for (std::sregex_iterator it(dot.begin(), dot.end(), edge), end; it != end; ++it, ++edges) {
    EXPECT_TRUE(declared.count(std::stoi((*it)[1])));
    EXPECT_TRUE(declared.count(std::stoi((*it)[2])));
  }
  size_t inputs = 0;
  for (const Node& node : g.nodes) inputs += node.inputs.size();
  EXPECT_EQ(static_cast<size_t>(edges), inputs);
  for (const char* cluster : {"cluster_forward", "cluster_backward", "cluster_update"})
    EXPECT_NE(dot.find(cluster), std::string::npos) << cluster;
}

}  // namespace
}  // namespace nnc
