// Convolution, pooling and flatten: forward values on hand-computed cases, attribute and shape errors, and the
// graph-level gradient (autodiff -> Halide, float64) against central finite differences.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <random>
#include <set>

#include "compiler/autodiff/autodiff.h"
#include "compiler/compilation.h"
#include "compiler/graph/ops_conv.h"
#include "tests/compiler_jit.h"
#include "tests/compiler_ops_util.h"

namespace nnc {
namespace testing {
std::set<std::string> convTestedOps();  // used by OpTable.EveryOpIsCovered (compiler_ops_test.cpp)
}  // namespace testing

namespace {

using testing::B;
using testing::D;
using testing::evaluate;
using testing::JitEntry;
using testing::leaf;

std::vector<double> iota(int n, double first = 0, double step = 1) {
  std::vector<double> v(n);
  for (int i = 0; i < n; ++i) v[i] = first + step * i;
  return v;
}

Attrs window(int64_t kernel, int64_t stride = 1, int64_t padding = 0, int64_t dilation = 1) {
  Attrs a;
  for (int axis = 0; axis < 2; ++axis) {
    a.kernel[axis] = kernel;
    a.stride[axis] = stride;
    a.padding[axis] = padding;
    a.dilation[axis] = dilation;
  }
  return a;
}

// y = conv2d(x, w) with the given window (kernel comes from w).
std::vector<double> conv(Shape xs, std::vector<double> x, Shape ws, std::vector<double> w, Attrs attrs) {
  Graph g;
  NodeId xi = leaf(g, Op::Param, xs, DType::F32, "x");
  NodeId wi = leaf(g, Op::Param, ws, DType::F32, "w");
  return evaluate(g, g.add(Op::Conv2d, {xi, wi}, attrs), {{xi, x}, {wi, w}});
}

std::vector<double> unary(Op op, Shape xs, std::vector<double> x, Attrs attrs) {
  Graph g;
  NodeId xi = leaf(g, Op::Param, xs, DType::F32, "x");
  return evaluate(g, g.add(op, {xi}, attrs), {{xi, x}});
}

using V = std::vector<double>;

TEST(ConvForward, OutputSizeFormula) {
  EXPECT_EQ(convOutputSize(28, 5, 1, 2, 1), 28);
  EXPECT_EQ(convOutputSize(14, 5, 1, 0, 1), 10);
  EXPECT_EQ(convOutputSize(7, 3, 2, 1, 1), 4);
  EXPECT_EQ(convOutputSize(4, 2, 1, 0, 2), 2);
  EXPECT_EQ(convOutputSize(4, 5, 1, 0, 1), 0);
}

TEST(ConvForward, Conv2dPlain) {
  // 3x3 image 1..9, kernel [[1, 0], [0, 1]]: sums of diagonal pairs.
  EXPECT_EQ(conv({D(1), D(1), D(3), D(3)}, iota(9, 1), {D(1), D(1), D(2), D(2)}, {1, 0, 0, 1}, window(2)),
            (V{6, 8, 12, 14}));
}

TEST(ConvForward, Conv2dStride2Padding1) {
  // 3x3 ones kernel over 1..9 padded by zeros, every second window: sums of the 2x2 corners.
  EXPECT_EQ(conv({D(1), D(1), D(3), D(3)}, iota(9, 1), {D(1), D(1), D(3), D(3)}, V(9, 1), window(3, 2, 1)),
            (V{12, 16, 24, 28}));
}

TEST(ConvForward, Conv2dDilation2) {
  // x[r][c] = 4r + c; taps at (0,0), (0,2), (2,0), (2,2) weighted 1, 2, 3, 4: y = 10 x[i][j] + 68.
  EXPECT_EQ(conv({D(1), D(1), D(4), D(4)}, iota(16), {D(1), D(1), D(2), D(2)}, {1, 2, 3, 4}, window(2, 1, 0, 2)),
            (V{68, 78, 108, 118}));
}

TEST(ConvForward, Conv2dMixesChannels) {
  // Two input channels [1, 2] and [3, 4], 1x1 kernels: out0 = x0 + 10 x1, out1 = 100 x0 + 1000 x1; batch of 2.
  EXPECT_EQ(conv({D(2), D(2), D(1), D(2)}, {1, 2, 3, 4, 0, 1, 0, 0}, {D(2), D(2), D(1), D(1)}, {1, 10, 100, 1000},
                 window(1)),
            (V{31, 42, 3100, 4200, 0, 1, 0, 100}));
}

// A pool that reads a pipeline argument directly, with an output row of 14 (not a multiple of the 4 float64
// lanes): its vectorized update must stop at the last column instead of reading past the input's end.
TEST(ConvForward, PoolOfAnArgumentStaysInsideIt) {
  Shape rows = {D(1), D(1), D(2), D(28)};  // 0..27 over 28..55
  V max = unary(Op::MaxPool2d, rows, iota(56), window(2, 2));
  V average = unary(Op::AvgPool2d, rows, iota(56), window(2, 2));
  ASSERT_EQ(max.size(), 14u);
  ASSERT_EQ(average.size(), 14u);
  for (int j = 0; j < 14; ++j) {
    EXPECT_EQ(max[j], 29 + 2 * j) << j;
    EXPECT_EQ(average[j], 14.5 + 2 * j) << j;
  }
}

TEST(ConvForward, Pools) {
  Shape s4 = {D(1), D(1), D(4), D(4)}, s3 = {D(1), D(1), D(3), D(3)};
  EXPECT_EQ(unary(Op::MaxPool2d, s4, iota(16), window(2, 2)), (V{5, 7, 13, 15}));
  EXPECT_EQ(unary(Op::AvgPool2d, s4, iota(16), window(2, 2)), (V{2.5, 4.5, 10.5, 12.5}));
  // Padding never wins a max (all inputs negative) and counts as zeros in an average (count_include_pad).
  EXPECT_EQ(unary(Op::MaxPool2d, s3, iota(9, -1, -1), window(3, 2, 1)), (V{-1, -2, -4, -5}));
  std::vector<double> avg = unary(Op::AvgPool2d, s3, iota(9, 1), window(3, 2, 1));
  V want = {12.0 / 9, 16.0 / 9, 24.0 / 9, 28.0 / 9};
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(avg[i], want[i], 1e-15);
  EXPECT_EQ(unary(Op::GlobalAvgPool, {D(1), D(2), D(2), D(2)}, iota(8, 1), {}), (V{2.5, 6.5}));
}

TEST(ConvForward, ReshapeKeepsRowMajorOrder) {
  Attrs to;
  to.shape = {D(2), D(6)};
  EXPECT_EQ(unary(Op::Reshape, {D(2), D(3), D(1), D(2)}, iota(12), to), iota(12));
  to.shape = {D(2), D(3), D(2), D(1)};
  EXPECT_EQ(unary(Op::Reshape, {D(2), D(6)}, iota(12), to), iota(12));
}

TEST(ConvShape, NonPositiveOutputNamesTheWindow) {
  Graph g;
  NodeId x = leaf(g, Op::Param, {B(), D(1), D(4), D(4)}, DType::F32, "x");
  NodeId w = leaf(g, Op::Param, {D(2), D(1), D(5), D(5)}, DType::F32, "w");
  ShapeResult r = inferShape(g, Op::Conv2d, {x, w}, window(5));
  EXPECT_NE(r.error.find("input size 4, kernel 5, stride 1, padding 0"), std::string::npos) << r.error;
  NodeId w2 = leaf(g, Op::Param, {D(2), D(3), D(3), D(3)}, DType::F32, "w2");
  EXPECT_NE(inferShape(g, Op::Conv2d, {x, w2}, window(3)).error.find("input channels"), std::string::npos);
  ShapeResult ok = inferShape(g, Op::MaxPool2d, {x}, window(2, 2));
  EXPECT_EQ(shapeToString(ok.shape), "[B, 1, 2, 2]");
}

TEST(ConvShape, AttributesAreValidated) {
  EXPECT_EQ(convAttrsError(Op::Conv2d, window(3, 1, 5)), "");  // convolution padding is unbounded
  EXPECT_NE(convAttrsError(Op::Conv2d, window(0)), "");
  EXPECT_NE(convAttrsError(Op::Conv2d, window(3, 0)), "");
  EXPECT_NE(convAttrsError(Op::Conv2d, window(3, 1, 0, 0)), "");
  EXPECT_NE(convAttrsError(Op::Conv2d, window(3, 1, -1)), "");
  EXPECT_EQ(convAttrsError(Op::MaxPool2d, window(3, 2, 1)), "");
  EXPECT_NE(convAttrsError(Op::MaxPool2d, window(3, 2, 2)), "");  // PyTorch: padding <= kernel / 2
  EXPECT_NE(convAttrsError(Op::AvgPool2d, window(2, 2, 2)), "");
}

// ---- the DSL forms ------------------------------------------------------------------------------------

std::unique_ptr<Compilation> frontEnd(const std::string& body, const std::string& input = "f32[B, 1, 8, 8]") {
  return compileFrontEnd(dsl::SourceFile("t.nn", "model m(x: " + input + ", y: i32[B]) {\n" + body +
                                                     "    loss = cross_entropy(logits, y)\n    return logits\n}\n"));
}

TEST(ConvLayer, CreatesPyTorchNamedParametersWithDefaultInit) {
  auto c = frontEnd("    conv1 = conv2d(x, 4, kernel = 3, padding = 1)\n"
                    "    pool = max_pool2d(relu(conv1), kernel = 2)\n"
                    "    logits = linear(flatten(avg_pool2d(pool, 2)), 10)\n");
  ASSERT_TRUE(c->graph) << c->diags->render();
  const Graph& g = *c->graph;
  ASSERT_GE(g.params.size(), 2u);
  EXPECT_EQ(g.params[0].name, "conv1.weight");
  EXPECT_EQ(shapeToString(g.node(g.params[0].node).shape), "[4, 1, 3, 3]");
  EXPECT_EQ(g.params[1].name, "conv1.bias");
  EXPECT_EQ(shapeToString(g.node(g.params[1].node).shape), "[4]");
  for (int i = 0; i < 2; ++i) {  // U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = 1 * 3 * 3
    EXPECT_EQ(g.params[i].init.kind, InitKind::Uniform);
    EXPECT_DOUBLE_EQ(g.params[i].init.b, 1.0 / 3);
    EXPECT_DOUBLE_EQ(g.params[i].init.a, -1.0 / 3);
  }
  EXPECT_EQ(g.params[2].name, "logits.weight");
  EXPECT_EQ(shapeToString(g.node(g.params[2].node).shape), "[10, 16]");  // 4 channels x 2 x 2
}

TEST(ConvLayer, BiasCanBeLeftOut) {
  auto c = frontEnd("    conv1 = conv2d(x, 4, kernel = 3, bias = 0)\n    logits = linear(global_avg_pool(conv1), 10)\n");
  ASSERT_TRUE(c->graph) << c->diags->render();
  EXPECT_EQ(c->graph->params.size(), 3u);  // conv1.weight, logits.weight, logits.bias
}

TEST(ConvLayer, BadAttributesAndShapesAreReported) {
  auto kind = [](const std::string& body) {
    auto c = frontEnd(body + "    logits = linear(flatten(h), 10)\n");
    return c->diags->render();
  };
  EXPECT_NE(kind("    h = max_pool2d(x, kernel = 2, padding = 2)\n").find("padding at most half the kernel"),
            std::string::npos);
  EXPECT_NE(kind("    h = conv2d(x, 3, kernel = 0)\n").find("at least 1"), std::string::npos);
  EXPECT_NE(kind("    h = conv2d(x, 3, kernel = 3, stride = 1.5)\n").find("must be an integer"), std::string::npos);
  EXPECT_NE(kind("    h = conv2d(x, 3, kernel = 3, groups = 2)\n").find("has no argument `groups`"), std::string::npos);
  std::string too_big = kind("    h = conv2d(x, 3, kernel = 9)\n");
  EXPECT_NE(too_big.find("input size 8, kernel 9, stride 1, padding 0, dilation 1"), std::string::npos) << too_big;
  EXPECT_NE(kind("    h = conv2d(flatten(x), 3, kernel = 3)\n").find("needs an input [batch, channels"),
            std::string::npos);
}

// ---- gradients against central finite differences ------------------------------------------------------

struct ConvCase {
  std::string name;
  std::vector<Shape> param_shapes;
  std::function<NodeId(Graph&, const std::vector<NodeId>&)> build;
};

void PrintTo(const ConvCase& c, std::ostream* os) { *os << c.name; }

// The case's graph: params, the op under test, the loss sum(out * w) and its gradients.
struct CaseGraph {
  Graph g;
  std::vector<NodeId> params, grads;
  NodeId weights = kNoNode;
};

CaseGraph buildCase(const ConvCase& c) {
  CaseGraph cg;
  Graph& g = cg.g;
  for (size_t i = 0; i < c.param_shapes.size(); ++i)
    cg.params.push_back(leaf(g, Op::Param, c.param_shapes[i], DType::F32, "p" + std::to_string(i)));
  NodeId out = c.build(g, cg.params);
  cg.weights = leaf(g, Op::Input, g.node(out).shape, DType::F32, "w");
  g.loss = g.add(Op::SumTo, {g.add(Op::Mul, {out, cg.weights})}, {});
  cg.grads = differentiate(g, g.loss, cg.params);
  return cg;
}

class ConvGradient : public ::testing::TestWithParam<ConvCase> {};

TEST_P(ConvGradient, MatchesCentralFiniteDifferences) {
  const ConvCase& c = GetParam();
  constexpr int kBatch = 3;
  CaseGraph cg = buildCase(c);
  Graph& g = cg.g;
  EntryPoint entry{"grads", {cg.weights}, {g.loss}, {"loss"}};
  for (size_t i = 0; i < cg.params.size(); ++i) {
    entry.arguments.push_back(cg.params[i]);
    entry.outputs.push_back(cg.grads[i]);
    entry.output_names.push_back("grad" + std::to_string(i));
  }
  JitEntry jit(g, entry, kBatch);
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> uniform(-1, 1);  // continuous: no ties in a max-pool window
  std::vector<std::vector<double>> values;
  for (NodeId p : cg.params) {
    values.emplace_back(testing::elementCount(g.node(p).shape, kBatch));
    for (double& v : values.back()) v = uniform(rng);
    jit.set(p, values.back());
  }
  std::vector<double> w(testing::elementCount(g.node(cg.weights).shape, kBatch));
  for (double& v : w) v = uniform(rng);
  jit.set(cg.weights, w);
  std::vector<std::vector<double>> analytic = jit.run();

  constexpr double kStep = 1e-6;
  for (size_t p = 0; p < cg.params.size(); ++p)
    for (size_t i = 0; i < values[p].size(); ++i) {
      double saved = values[p][i];
      values[p][i] = saved + kStep;
      jit.set(cg.params[p], values[p]);
      double plus = jit.run()[0][0];
      values[p][i] = saved - kStep;
      jit.set(cg.params[p], values[p]);
      double minus = jit.run()[0][0];
      values[p][i] = saved;
      jit.set(cg.params[p], values[p]);
      double numeric = (plus - minus) / (2 * kStep);
      double exact = analytic[p + 1][i];
      double scale = std::max({std::abs(numeric), std::abs(exact), 1e-3});
      EXPECT_LT(std::abs(numeric - exact) / scale, 1e-6)
          << c.name << " param " << p << " element " << i << ": autodiff " << exact << ", finite difference " << numeric;
    }
}

NodeId conv2d(Graph& g, const std::vector<NodeId>& p, Attrs attrs) { return g.add(Op::Conv2d, {p[0], p[1]}, attrs); }

const ConvCase kGradCases[] = {
    {"conv2d_same", {{B(), D(2), D(5), D(5)}, {D(3), D(2), D(3), D(3)}},
     [](Graph& g, auto& p) { return conv2d(g, p, window(3, 1, 1)); }},
    {"conv2d_stride2_padding1_dilation2", {{B(), D(2), D(7), D(6)}, {D(2), D(2), D(2), D(3)}},
     [](Graph& g, auto& p) { return conv2d(g, p, window(2, 2, 1, 2)); }},
    {"conv2d_bias", {{B(), D(2), D(4), D(4)}, {D(3), D(2), D(2), D(2)}, {D(3)}},
     [](Graph& g, auto& p) {
       Attrs column;
       column.shape = {D(3), D(1), D(1)};
       return g.add(Op::Add, {conv2d(g, p, window(2)), g.add(Op::Reshape, {p[2]}, column)});
     }},
    // Enough output channels that the bias gradient is summed in the weight gradient's register tiles (one input
    // channel: the weight gradient is also cut in batch chunks).
    {"conv2d_bias_in_weight_gradient", {{B(), D(2), D(4), D(4)}, {D(6), D(2), D(2), D(2)}, {D(6)}},
     [](Graph& g, auto& p) {
       Attrs column;
       column.shape = {D(6), D(1), D(1)};
       return g.add(Op::Add, {conv2d(g, p, window(2, 1, 1)), g.add(Op::Reshape, {p[2]}, column)});
     }},
    {"conv2d_bias_in_batch_chunks", {{B(), D(1), D(5), D(5)}, {D(6), D(1), D(3), D(3)}, {D(6)}},
     [](Graph& g, auto& p) {
       Attrs column;
       column.shape = {D(6), D(1), D(1)};
       return g.add(Op::Add, {conv2d(g, p, window(3, 1, 1)), g.add(Op::Reshape, {p[2]}, column)});
     }},
    // A bias per example ([B, O, 1, 1]): its gradient is not the weight gradient's sum over the batch.
    {"conv2d_per_example_bias", {{B(), D(2), D(4), D(4)}, {D(6), D(2), D(2), D(2)}, {B(), D(6), D(1), D(1)}},
     [](Graph& g, auto& p) { return g.add(Op::Add, {conv2d(g, p, window(2)), p[2]}); }},
    // Two convolutions summed by one node computed at root (read twice): one epilogue, two window sums.
    {"two_conv2d_one_sum", {{B(), D(2), D(4), D(4)}, {D(3), D(2), D(2), D(2)}, {D(3), D(2), D(2), D(2)}},
     [](Graph& g, auto& p) {
       NodeId sum = g.add(Op::Add, {conv2d(g, p, window(2)), g.add(Op::Conv2d, {p[0], p[2]}, window(2))});
       return g.add(Op::Mul, {sum, sum});
     }},
    {"max_pool2d", {{B(), D(2), D(4), D(4)}}, [](Graph& g, auto& p) { return g.add(Op::MaxPool2d, {p[0]}, window(2, 2)); }},
    {"max_pool2d_overlapping_padded", {{B(), D(2), D(5), D(5)}},
     [](Graph& g, auto& p) { return g.add(Op::MaxPool2d, {p[0]}, window(3, 2, 1)); }},
    {"avg_pool2d", {{B(), D(2), D(4), D(6)}}, [](Graph& g, auto& p) { return g.add(Op::AvgPool2d, {p[0]}, window(2, 2)); }},
    // Tiling windows that leave the last row and column uncovered (5 = 2 * 2 + 1): their gradient is 0 there.
    {"max_pool2d_uncovered_edge", {{B(), D(2), D(5), D(5)}},
     [](Graph& g, auto& p) { return g.add(Op::MaxPool2d, {p[0]}, window(2, 2)); }},
    {"avg_pool2d_uncovered_edge", {{B(), D(1), D(5), D(7)}},
     [](Graph& g, auto& p) { return g.add(Op::AvgPool2d, {p[0]}, window(3, 3)); }},
    {"avg_pool2d_overlapping_padded", {{B(), D(2), D(5), D(5)}},
     [](Graph& g, auto& p) { return g.add(Op::AvgPool2d, {p[0]}, window(3, 2, 1)); }},
    {"global_avg_pool", {{B(), D(3), D(2), D(3)}}, [](Graph& g, auto& p) { return g.add(Op::GlobalAvgPool, {p[0]}); }},
    {"reshape_to_features", {{B(), D(2), D(2), D(3)}},
     [](Graph& g, auto& p) {
       Attrs to;
       to.shape = {B(), D(12)};
       return g.add(Op::Reshape, {p[0]}, to);
     }},
};

INSTANTIATE_TEST_SUITE_P(ConvOps, ConvGradient, ::testing::ValuesIn(kGradCases),
                         [](const auto& info) { return info.param.name; });

}  // namespace

// The ops that appear in the gradient-checked graphs above (forward ops and the backward ops their VJPs create).
std::set<std::string> testing::convTestedOps() {
  std::set<std::string> ops;
  for (const ConvCase& c : kGradCases) {
    CaseGraph cg = buildCase(c);
    for (const Node& node : cg.g.nodes) ops.insert(opInfo(node.op).name);
  }
  return ops;
}

}  // namespace nnc
