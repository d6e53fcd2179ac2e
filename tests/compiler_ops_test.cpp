// Every differentiable op in the op table: forward values on hand-computed cases, and the graph-level gradient
// (autodiff -> Halide, float64) against central finite differences.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <random>
#include <set>

#include "compiler/autodiff/autodiff.h"
#include "tests/compiler_ops_util.h"

namespace nnc {
namespace {

using testing::B;
using testing::D;
using testing::evaluate;
using testing::GradCase;
using testing::JitEntry;
using testing::leaf;
using testing::OpGradient;

TEST(OpForward, ElementwiseBroadcastsTrailingDimensions) {
  Graph g;
  NodeId a = leaf(g, Op::Param, {D(2), D(3)}, DType::F32, "a");
  NodeId b = leaf(g, Op::Param, {D(3)}, DType::F32, "b");
  std::map<NodeId, std::vector<double>> values = {{a, {1, 2, 3, 4, 5, 6}}, {b, {10, 20, 30}}};
  EXPECT_EQ(evaluate(g, g.add(Op::Add, {a, b}), values), (std::vector<double>{11, 22, 33, 14, 25, 36}));
  EXPECT_EQ(evaluate(g, g.add(Op::Sub, {a, b}), values), (std::vector<double>{-9, -18, -27, -6, -15, -24}));
  EXPECT_EQ(evaluate(g, g.add(Op::Mul, {a, b}), values), (std::vector<double>{10, 40, 90, 40, 100, 180}));
  EXPECT_EQ(evaluate(g, g.add(Op::Div, {b, a}), values), (std::vector<double>{10, 10, 10, 2.5, 4, 5}));
  EXPECT_EQ(evaluate(g, g.add(Op::Neg, {b}), values), (std::vector<double>{-10, -20, -30}));
}

TEST(OpForward, ReluAndStep) {
  Graph g;
  NodeId a = leaf(g, Op::Param, {D(4)}, DType::F32, "a");
  std::map<NodeId, std::vector<double>> values = {{a, {-2, 0, 0.5, 3}}};
  EXPECT_EQ(evaluate(g, g.add(Op::Relu, {a}), values), (std::vector<double>{0, 0, 0.5, 3}));
  EXPECT_EQ(evaluate(g, g.add(Op::Step, {a}), values), (std::vector<double>{0, 0, 1, 1}));
}

// float(y): integer labels as floats, same shape.
TEST(OpForward, ToFloatConvertsIntegers) {
  Graph g;
  NodeId y = leaf(g, Op::Input, {B()}, DType::I32, "y");
  NodeId f = g.add(Op::ToFloat, {y});
  EXPECT_EQ(g.node(f).dtype, DType::F32);
  EXPECT_EQ(evaluate(g, f, {}, {{y, {3, -1, 0}}}, 3), (std::vector<double>{3, -1, 0}));
  EXPECT_NE(inferShape(g, Op::ToFloat, {f}, {}).error, "");
}

TEST(OpForward, MatMulWithEachTransposeLayout) {
  Graph g;
  NodeId a = leaf(g, Op::Param, {D(2), D(2)}, DType::F32, "a");  // [[1, 2], [3, 4]]
  NodeId b = leaf(g, Op::Param, {D(2), D(2)}, DType::F32, "b");  // [[5, 6], [7, 8]]
  std::map<NodeId, std::vector<double>> values = {{a, {1, 2, 3, 4}}, {b, {5, 6, 7, 8}}};
  auto matmul = [&](bool ta, bool tb) {
    Attrs attrs;
    attrs.transpose_a = ta;
    attrs.transpose_b = tb;
    return evaluate(g, g.add(Op::MatMul, {a, b}, attrs), values);
  };
  EXPECT_EQ(matmul(false, false), (std::vector<double>{19, 22, 43, 50}));  // A B
  EXPECT_EQ(matmul(true, false), (std::vector<double>{26, 30, 38, 44}));   // A^T B
  EXPECT_EQ(matmul(false, true), (std::vector<double>{17, 23, 39, 53}));   // A B^T
  EXPECT_EQ(matmul(true, true), (std::vector<double>{23, 31, 34, 46}));    // A^T B^T
}

TEST(OpForward, MatMulWiderThanOneVectorTile) {
  // 3 x 5 @ 5 x 37: exercises the register-tiled schedule and its shifted tail.
  Graph g;
  NodeId a = leaf(g, Op::Param, {D(3), D(5)}, DType::F32, "a");
  NodeId b = leaf(g, Op::Param, {D(5), D(37)}, DType::F32, "b");
  std::vector<double> av(15), bv(185);
  for (size_t i = 0; i < av.size(); ++i) av[i] = static_cast<double>(i % 7) - 3;
  for (size_t i = 0; i < bv.size(); ++i) bv[i] = static_cast<double>(i % 11) * 0.5;
  std::vector<double> got = evaluate(g, g.add(Op::MatMul, {a, b}), {{a, av}, {b, bv}});
  for (int m = 0; m < 3; ++m)
    for (int n = 0; n < 37; ++n) {
      double want = 0;
      for (int k = 0; k < 5; ++k) want += av[m * 5 + k] * bv[k * 37 + n];
      EXPECT_EQ(got[m * 37 + n], want) << m << "," << n;
    }
}

// Every path of the matmul schedule against a naive loop: rows fixed or the symbolic batch, below and above the
// register tile's 6 rows (with a shifted tail), columns below one vector, one vector, and several tiles with a
// tail; each transpose layout (a transposed B is packed in 8x8 blocks, with shifted tails too). Integer-valued
// inputs keep every sum exact, so the comparison is exact.
TEST(OpForward, MatMulScheduleMatchesNaiveLoops) {
  for (bool batch_rows : {false, true})
    for (int rows : {1, 5, 6, 13})
      for (int columns : {3, 8, 37})
        for (int ta = 0; ta < 2; ++ta)
          for (int tb = 0; tb < 2; ++tb) {
            const int depth = 11;
            if (batch_rows && ta) continue;  // a transposed A stores the rows innermost: not a batch input
            Graph g;
            Dim m = batch_rows ? B() : D(rows);
            NodeId a = leaf(g, batch_rows ? Op::Input : Op::Param, ta ? Shape{D(depth), m} : Shape{m, D(depth)},
                            DType::F32, "a");
            NodeId b = leaf(g, Op::Param, tb ? Shape{D(columns), D(depth)} : Shape{D(depth), D(columns)}, DType::F32, "b");
            std::vector<double> av(rows * depth), bv(depth * columns);
            for (size_t i = 0; i < av.size(); ++i) av[i] = static_cast<double>((i * 7) % 13) - 6;
            for (size_t i = 0; i < bv.size(); ++i) bv[i] = static_cast<double>((i * 5) % 9) - 4;
            Attrs attrs;
            attrs.transpose_a = ta;
            attrs.transpose_b = tb;
            std::vector<double> got = evaluate(g, g.add(Op::MatMul, {a, b}, attrs), {{a, av}, {b, bv}}, {}, rows);
            for (int i = 0; i < rows; ++i)
              for (int j = 0; j < columns; ++j) {
                double want = 0;
                for (int k = 0; k < depth; ++k)
                  want += (ta ? av[k * rows + i] : av[i * depth + k]) * (tb ? bv[j * depth + k] : bv[k * columns + j]);
                ASSERT_EQ(got[i * columns + j], want) << "rows " << rows << (batch_rows ? " (batch)" : "") << ", columns "
                                                      << columns << ", ta " << ta << ", tb " << tb << " at " << i << "," << j;
              }
          }
}

TEST(OpForward, SumToReducesBroadcastDimensions) {
  Graph g;
  NodeId a = leaf(g, Op::Param, {D(2), D(3)}, DType::F32, "a");
  std::map<NodeId, std::vector<double>> values = {{a, {1, 2, 3, 4, 5, 6}}};
  Attrs to_row, to_column, to_scalar;
  to_row.shape = {D(3)};
  to_column.shape = {D(2), D(1)};
  EXPECT_EQ(evaluate(g, g.add(Op::SumTo, {a}, to_row), values), (std::vector<double>{5, 7, 9}));
  EXPECT_EQ(evaluate(g, g.add(Op::SumTo, {a}, to_column), values), (std::vector<double>{6, 15}));
  EXPECT_EQ(evaluate(g, g.add(Op::SumTo, {a}, to_scalar), values), (std::vector<double>{21}));
}

TEST(OpForward, CrossEntropyIsStableMeanNegativeLogLikelihood) {
  Graph g;
  NodeId z = leaf(g, Op::Input, {B(), D(2)}, DType::F32, "z");
  NodeId y = leaf(g, Op::Input, {B()}, DType::I32, "y");
  NodeId loss = g.add(Op::CrossEntropy, {z, y});
  // Row 0: equal logits -> log 2. Row 1: logits 1000 and 0, label 1 -> 1000 (no overflow).
  std::vector<double> got = evaluate(g, loss, {{z, {0, 0, 1000, 0}}}, {{y, {0, 1}}}, 2);
  EXPECT_NEAR(got[0], (std::log(2.0) + 1000.0) / 2, 1e-12);
  NodeId grad = g.add(Op::CrossEntropyGrad, {z, y, g.fill(1, {})});
  // d/dz = (softmax - onehot) / B
  std::vector<double> dz = evaluate(g, grad, {{z, {0, 0, 1000, 0}}}, {{y, {0, 1}}}, 2);
  EXPECT_NEAR(dz[0], -0.25, 1e-12);
  EXPECT_NEAR(dz[1], 0.25, 1e-12);
  EXPECT_NEAR(dz[2], 0.5, 1e-12);
  EXPECT_NEAR(dz[3], -0.5, 1e-12);
}

// ---- gradients against central finite differences ------------------------------------------------------

TEST_P(OpGradient, MatchesCentralFiniteDifferences) {
  const GradCase& c = GetParam();
  constexpr int kBatch = 3;
  Graph g;
  std::vector<NodeId> params;
  for (size_t i = 0; i < c.param_shapes.size(); ++i)
    params.push_back(leaf(g, Op::Param, c.param_shapes[i], DType::F32, "p" + std::to_string(i)));
  NodeId labels = leaf(g, Op::Input, {B()}, DType::I32, "y");
  NodeId out = c.build(g, params, labels);
  // A scalar loss that weighs every output element differently: sum(out * w).
  NodeId weights = leaf(g, Op::Input, g.node(out).shape, DType::F32, "w");
  g.loss = g.add(Op::SumTo, {g.add(Op::Mul, {out, weights})}, {});
  std::vector<NodeId> grads = differentiate(g, g.loss, params);

  EntryPoint entry{"grads", {labels, weights}, {g.loss}, {"loss"}};
  for (size_t i = 0; i < params.size(); ++i) {
    entry.arguments.push_back(params[i]);
    entry.outputs.push_back(grads[i]);
    entry.output_names.push_back("grad" + std::to_string(i));
  }
  JitEntry jit(g, entry, kBatch);
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> uniform(-1, 1);
  auto sample = [&] {
    double v = uniform(rng);
    if (c.positive) return 0.5 + std::abs(v);
    if (c.probability) return 0.5 + 0.4 * v;
    if (c.away_from_zero) v += v < 0 ? -0.1 : 0.1;
    for (double kink : c.kinks)
      if (std::abs(v - kink) < 0.05) v = kink + (v < kink ? -0.1 : 0.1);
    return v;
  };
  std::vector<std::vector<double>> values;
  for (NodeId p : params) {
    values.emplace_back(testing::elementCount(g.node(p).shape, kBatch));
    for (double& v : values.back()) v = sample();
    jit.set(p, values.back());
  }
  std::vector<double> w(testing::elementCount(g.node(weights).shape, kBatch));
  for (double& v : w) v = uniform(rng);
  jit.set(weights, w);
  jit.setLabels(labels, {1, 0, 2});
  std::vector<std::vector<double>> analytic = jit.run();

  constexpr double kStep = 1e-6;
  for (size_t p = 0; p < params.size(); ++p)
    for (size_t i = 0; i < values[p].size(); ++i) {
      double saved = values[p][i];
      values[p][i] = saved + kStep;
      jit.set(params[p], values[p]);
      double plus = jit.run()[0][0];
      values[p][i] = saved - kStep;
      jit.set(params[p], values[p]);
      double minus = jit.run()[0][0];
      values[p][i] = saved;
      jit.set(params[p], values[p]);
      double numeric = (plus - minus) / (2 * kStep);
      double exact = analytic[p + 1][i];
      double scale = std::max({std::abs(numeric), std::abs(exact), 1e-3});
      EXPECT_LT(std::abs(numeric - exact) / scale, 1e-6)
          << c.name << " param " << p << " element " << i << ": autodiff " << exact << ", finite difference " << numeric;
    }
}

NodeId binary(Graph& g, Op op, const std::vector<NodeId>& p) { return g.add(op, {p[0], p[1]}); }

NodeId matmul(Graph& g, const std::vector<NodeId>& p, bool ta, bool tb) {
  Attrs attrs;
  attrs.transpose_a = ta;
  attrs.transpose_b = tb;
  return g.add(Op::MatMul, {p[0], p[1]}, attrs);
}

const GradCase kGradCases[] = {
    {"add_broadcast", {{B(), D(4)}, {D(4)}}, [](Graph& g, auto& p, NodeId) { return binary(g, Op::Add, p); }},
    {"sub_broadcast", {{D(4)}, {B(), D(4)}}, [](Graph& g, auto& p, NodeId) { return binary(g, Op::Sub, p); }},
    {"mul_broadcast", {{B(), D(4)}, {D(1), D(4)}}, [](Graph& g, auto& p, NodeId) { return binary(g, Op::Mul, p); }},
    {"mul_shared_operand", {{D(5)}}, [](Graph& g, auto& p, NodeId) { return g.add(Op::Mul, {p[0], p[0]}); }},
    {"div", {{B(), D(4)}, {B(), D(4)}}, [](Graph& g, auto& p, NodeId) { return binary(g, Op::Div, p); }, false, true},
    {"neg", {{B(), D(4)}}, [](Graph& g, auto& p, NodeId) { return g.add(Op::Neg, {p[0]}); }},
    {"relu", {{B(), D(6)}}, [](Graph& g, auto& p, NodeId) { return g.add(Op::Relu, {p[0]}); }, true},
    {"step", {{B(), D(6)}}, [](Graph& g, auto& p, NodeId) { return g.add(Op::Step, {p[0]}); }, true},
    {"matmul", {{B(), D(5)}, {D(5), D(17)}}, [](Graph& g, auto& p, NodeId) { return matmul(g, p, false, false); }},
    {"matmul_tb", {{B(), D(5)}, {D(9), D(5)}}, [](Graph& g, auto& p, NodeId) { return matmul(g, p, false, true); }},
    {"matmul_ta", {{D(5), D(4)}, {D(5), D(3)}}, [](Graph& g, auto& p, NodeId) { return matmul(g, p, true, false); }},
    {"matmul_ta_tb", {{D(5), D(4)}, {D(3), D(5)}}, [](Graph& g, auto& p, NodeId) { return matmul(g, p, true, true); }},
    {"sum_to", {{B(), D(4)}},
     [](Graph& g, auto& p, NodeId) {
       Attrs to;
       to.shape = {D(4)};
       return g.add(Op::SumTo, {p[0]}, to);
     }},
    {"cross_entropy", {{B(), D(4)}}, [](Graph& g, auto& p, NodeId y) { return g.add(Op::CrossEntropy, {p[0], y}); }},
    // Rows 1, 0 and 2 of a 4-row table (the labels as ids); repeated ids: TokenModel tests.
    {"gather", {{D(4), D(3)}}, [](Graph& g, auto& p, NodeId y) { return g.add(Op::Gather, {p[0], y}); }},
    // The scatter-add as a function of dout (its adjoint is a gather).
    {"gather_grad", {{B(), D(3)}},
     [](Graph& g, auto& p, NodeId y) {
       Attrs table;
       table.shape = {D(4), D(3)};
       return g.add(Op::GatherGrad, {y, p[0]}, table);
     }},
};

INSTANTIATE_TEST_SUITE_P(AllOps, OpGradient, ::testing::ValuesIn(kGradCases),
                         [](const auto& info) { return info.param.name; });

}  // namespace

namespace testing {
std::set<std::string> convTestedOps();  // compiler_ops_conv_test.cpp: ops in its gradient-checked graphs
std::set<std::string> normTestedOps();  // compiler_ops_norm_test.cpp: ops in its gradient-checked models
std::set<std::string> sequenceTestedOps();  // compiler_ops_sequence_test.cpp: likewise
std::set<std::string> embeddingTestedOps();  // compiler_ops_embedding_test.cpp: likewise
}  // namespace testing

namespace {

// Every op of the op table has a gradient case (in this file or another op family's test file: every
// instantiation of OpGradient counts, and every op in the gradient-checked graphs of compiler_ops_conv_test.cpp and
// compiler_ops_norm_test.cpp and compiler_ops_sequence_test.cpp), or is
// a leaf, or is a backward-only helper, which the gradient case of the op that uses it checks (and which has a
// forward case of its own).
TEST(OpTable, EveryOpIsCovered) {
  std::set<std::string> cases;
  const ::testing::UnitTest& tests = *::testing::UnitTest::GetInstance();
  for (int i = 0; i < tests.total_test_suite_count(); ++i) {
    const ::testing::TestSuite& suite = *tests.GetTestSuite(i);
    std::string suite_name = suite.name();
    if (suite_name.size() < 11 || suite_name.substr(suite_name.size() - 11) != "/OpGradient") continue;
    for (int j = 0; j < suite.total_test_count(); ++j) {
      std::string test = suite.GetTestInfo(j)->name();
      cases.insert(test.substr(test.find('/') + 1));
    }
  }
  std::set<std::string> checked_graphs = testing::convTestedOps();
  checked_graphs.merge(testing::normTestedOps());
  checked_graphs.merge(testing::sequenceTestedOps());
  checked_graphs.merge(testing::embeddingTestedOps());
  auto covered = [&](const std::string& op) {
    if (checked_graphs.count(op)) return true;
    for (const std::string& c : cases)
      if (c == op || c.rfind(op + "_", 0) == 0) return true;
    return false;
  };
  const std::set<std::string> exempt = {
      "input", "param", "state", "scalar", "fill",  // leaves
      "cross_entropy_grad",                         // cross_entropy's adjoint
      "sign", "max_mask", "in_range", "gelu_grad",  // the adjoints of abs, maximum/minimum, clamp, gelu
      "max_grad", "binary_cross_entropy_with_logits_grad",  // the adjoints of max and the with-logits loss
      "stop_gradient",  // zero gradient by definition, which finite differences cannot see (own test)
      "to_float",       // of integers (labels): no gradient (forward test OpForward.ToFloat)
  };
#define OP(Enum, name, arity, family, rules) \
  EXPECT_TRUE(exempt.count(name) || covered(name)) << "no gradient case for op " << name;
#include "compiler/graph/ops.def"
#undef OP
}

}  // namespace
}  // namespace nnc
