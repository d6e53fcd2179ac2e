// The reductions, layout ops and regression/binary losses: forward values on hand-computed cases, gradients
// against central finite differences (float64), and the DSL forms that build them.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "compiler/compilation.h"
#include "compiler/graph/program.h"
#include "tests/compiler_model_check.h"
#include "tests/compiler_ops_util.h"

namespace nnc {
namespace {

using testing::B;
using testing::D;
using testing::diagnostics;
using testing::evaluate;
using testing::GradCase;
using testing::OpGradient;
using testing::leaf;


Attrs over(std::vector<int64_t> axes, bool keepdims = false) {
  Attrs attrs;
  attrs.axes = std::move(axes);
  attrs.keepdims = keepdims;
  return attrs;
}

using Values = std::vector<double>;

TEST(ReduceForward, SumMeanMaxOverAxes) {
  Graph g;
  NodeId a = leaf(g, Op::Param, {D(2), D(3)}, DType::F32, "a");  // [[1, 5, 3], [4, 2, 6]]
  std::map<NodeId, Values> values = {{a, {1, 5, 3, 4, 2, 6}}};
  EXPECT_EQ(evaluate(g, g.add(Op::Sum, {a}, over({1})), values), (Values{9, 12}));
  EXPECT_EQ(evaluate(g, g.add(Op::Sum, {a}, over({0}, true)), values), (Values{5, 7, 9}));
  EXPECT_EQ(g.node(g.add(Op::Sum, {a}, over({0}, true))).shape, (Shape{D(1), D(3)}));
  EXPECT_EQ(evaluate(g, g.add(Op::Sum, {a}, over({0, 1})), values), (Values{21}));
  EXPECT_EQ(evaluate(g, g.add(Op::Mean, {a}, over({1})), values), (Values{3, 4}));
  EXPECT_EQ(evaluate(g, g.add(Op::Mean, {a}, over({0, 1})), values), (Values{3.5}));
  EXPECT_EQ(evaluate(g, g.add(Op::Max, {a}, over({1})), values), (Values{5, 6}));
  EXPECT_EQ(evaluate(g, g.add(Op::Max, {a}, over({0}, true)), values), (Values{4, 5, 6}));
  EXPECT_EQ(evaluate(g, g.add(Op::Max, {a}, over({0, 1})), values), (Values{6}));
}

TEST(ReduceForward, MeanOverTheBatchUsesTheRuntimeBatchSize) {
  Graph g;
  NodeId x = leaf(g, Op::Input, {B(), D(2)}, DType::F32, "x");
  EXPECT_EQ(evaluate(g, g.add(Op::Mean, {x}, over({0})), {{x, {1, 2, 3, 4, 5, 9}}}, {}, 3), (Values{3, 5}));
  EXPECT_EQ(evaluate(g, g.add(Op::Mean, {x}, over({0, 1})), {{x, {1, 2, 3, 4, 5, 9}}}, {}, 3), (Values{4}));
}

TEST(ReduceForward, MaxGradGoesToTheFirstArgMax) {
  Graph g;
  NodeId a = leaf(g, Op::Param, {D(2), D(3)}, DType::F32, "a");
  NodeId d = leaf(g, Op::Param, {D(2)}, DType::F32, "d");
  // Row 1 ties at 6: the first (row-major) maximum gets the adjoint.
  std::map<NodeId, Values> values = {{a, {1, 5, 3, 6, 2, 6}}, {d, {10, 20}}};
  EXPECT_EQ(evaluate(g, g.add(Op::MaxGrad, {a, d}, over({1})), values), (Values{0, 10, 0, 20, 0, 0}));
}

TEST(ReduceForward, SoftmaxAndLogSoftmaxAreStableForLargeLogits) {
  Graph g;
  NodeId z = leaf(g, Op::Param, {D(2), D(2)}, DType::F32, "z");
  std::map<NodeId, Values> values = {{z, {0, 0, 1000, 0}}};
  Values p = evaluate(g, g.add(Op::Softmax, {z}, over({1})), values);
  EXPECT_NEAR(p[0], 0.5, 1e-15);
  EXPECT_NEAR(p[1], 0.5, 1e-15);
  EXPECT_NEAR(p[2], 1, 1e-15);
  EXPECT_NEAR(p[3], 0, 1e-15);
  Values lp = evaluate(g, g.add(Op::LogSoftmax, {z}, over({1})), values);
  EXPECT_NEAR(lp[0], -std::log(2.0), 1e-15);
  EXPECT_NEAR(lp[2], 0, 1e-15);
  EXPECT_NEAR(lp[3], -1000, 1e-12);
  // Along axis 0 (columns): column 1 holds [0, 0].
  Values q = evaluate(g, g.add(Op::Softmax, {z}, over({0})), values);
  EXPECT_NEAR(q[0], 0, 1e-15);
  EXPECT_NEAR(q[1], 0.5, 1e-15);
  EXPECT_NEAR(q[2], 1, 1e-15);
}

TEST(LayoutForward, TransposeReshapeBroadcast) {
  Graph g;
  NodeId a = leaf(g, Op::Param, {D(2), D(3)}, DType::F32, "a");
  std::map<NodeId, Values> values = {{a, {1, 2, 3, 4, 5, 6}}};
  NodeId t = g.add(Op::Transpose, {a}, over({1, 0}));
  EXPECT_EQ(g.node(t).shape, (Shape{D(3), D(2)}));
  EXPECT_EQ(evaluate(g, t, values), (Values{1, 4, 2, 5, 3, 6}));
  Attrs to;
  to.shape = {D(3), D(2)};
  EXPECT_EQ(evaluate(g, g.add(Op::Reshape, {a}, to), values), (Values{1, 2, 3, 4, 5, 6}));
  Attrs wide;
  wide.shape = {D(2), D(2), D(3)};
  wide.axes = {1};
  EXPECT_EQ(evaluate(g, g.add(Op::BroadcastTo, {a}, wide), values),
            (Values{1, 2, 3, 1, 2, 3, 4, 5, 6, 4, 5, 6}));
  wide.alpha = 1;  // divided by the broadcast count, 2
  EXPECT_EQ(evaluate(g, g.add(Op::BroadcastTo, {a}, wide), values),
            (Values{0.5, 1, 1.5, 0.5, 1, 1.5, 2, 2.5, 3, 2, 2.5, 3}));
  // A 3-D permutation: out[i][j][k] = x[j][k][i] for x [2, 1, 3].
  NodeId c = leaf(g, Op::Param, {D(2), D(1), D(3)}, DType::F32, "c");
  NodeId p = g.add(Op::Transpose, {c}, over({2, 0, 1}));
  EXPECT_EQ(g.node(p).shape, (Shape{D(3), D(2), D(1)}));
  EXPECT_EQ(evaluate(g, p, {{c, {1, 2, 3, 4, 5, 6}}}), (Values{1, 4, 2, 5, 3, 6}));
}

TEST(LayoutForward, ReshapeKeepsTheBatchDimension) {
  Graph g;
  NodeId x = leaf(g, Op::Input, {B(), D(2), D(3)}, DType::F32, "x");
  Attrs to;
  to.shape = {B(), D(6)};
  Values data = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  EXPECT_EQ(evaluate(g, g.add(Op::Reshape, {x}, to), {{x, data}}, {}, 2), data);
  to.shape = {B(), D(4)};
  EXPECT_NE(inferShape(g, Op::Reshape, {x}, to).error, "");
}

TEST(MatMulForward, BatchedProductsWithSharedAndTransposedOperands) {
  Graph g;
  NodeId a = leaf(g, Op::Input, {B(), D(2), D(2)}, DType::F32, "a");  // [[[1, 2], [3, 4]], [[0, 1], [1, 0]]]
  NodeId w = leaf(g, Op::Param, {D(2), D(2)}, DType::F32, "w");          // [[5, 6], [7, 8]]
  std::map<NodeId, Values> values = {{a, {1, 2, 3, 4, 0, 1, 1, 0}}, {w, {5, 6, 7, 8}}};
  auto product = [&](NodeId x, NodeId y, bool ta, bool tb) {
    Attrs attrs;
    attrs.transpose_a = ta;
    attrs.transpose_b = tb;
    return evaluate(g, g.add(Op::BatchMatMul, {x, y}, attrs), values, {}, 2);
  };
  EXPECT_EQ(product(a, w, false, false), (Values{19, 22, 43, 50, 7, 8, 5, 6}));
  EXPECT_EQ(product(a, w, false, true), (Values{17, 23, 39, 53, 6, 8, 5, 7}));
  EXPECT_EQ(product(w, a, false, false), (Values{23, 34, 31, 46, 6, 5, 8, 7}));
  EXPECT_EQ(product(a, a, true, false), (Values{10, 14, 14, 20, 1, 0, 0, 1}));
  EXPECT_NE(inferShape(g, Op::BatchMatMul, {w, w}, {}).error, "");
}

TEST(MatMulForward, BatchedProductsOverSeveralLeadingDimensions) {
  Graph g;
  // [B, 2, 1, 2]: entry (b, h) is the row [b + 1, h + 1]; w [2, 2] = [[1, 2], [3, 4]].
  NodeId a = leaf(g, Op::Input, {B(), D(2), D(1), D(2)}, DType::F32, "a");
  NodeId v = leaf(g, Op::Input, {B(), D(2), D(2), D(1)}, DType::F32, "v");  // entry (b, h): the column [h, b]
  NodeId w = leaf(g, Op::Param, {D(2), D(2)}, DType::F32, "w");
  std::map<NodeId, Values> values = {{a, {1, 1, 1, 2, 2, 1, 2, 2}}, {v, {0, 0, 1, 0, 0, 1, 1, 1}}, {w, {1, 2, 3, 4}}};
  NodeId shared = g.add(Op::BatchMatMul, {a, w});
  EXPECT_EQ(shapeToString(g.node(shared).shape), "[B, 2, 1, 2]");
  EXPECT_EQ(evaluate(g, shared, values, {}, 2), (Values{4, 6, 7, 10, 5, 8, 8, 12}));
  // [1, 2] @ [2, 1] per entry: (b + 1) h + (h + 1) b.
  EXPECT_EQ(evaluate(g, g.add(Op::BatchMatMul, {a, v}), values, {}, 2), (Values{0, 1, 1, 4}));
  NodeId other = leaf(g, Op::Input, {B(), D(3), D(2), D(1)}, DType::F32, "other");
  EXPECT_NE(inferShape(g, Op::BatchMatMul, {a, other}, {}).error.find("the same leading dimensions"), std::string::npos);
}

// `count` values uniform in [-1, 1).
Values uniformValues(std::mt19937_64& rng, size_t count) {
  std::uniform_real_distribution<double> uniform(-1, 1);
  Values v(count);
  for (double& x : v) x = uniform(rng);
  return v;
}

void expectNear(const Values& got, const Values& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-12) << "element " << i;
}

// Products over flattened rows (a matmul whose A has leading dimensions) against naive loops: the rows form
// [B, 2, 7, 5] @ [5, N] (and B stored transposed), 7 rows per entry so the register tiles of 6 rows shift inwards,
// and the contraction form [B, 2, 7, 5]^T @ [B, 2, 7, N] -> [5, N], summed over every entry and row; N = 16 (whole
// vectors) and 20 (a narrow product's zero-extended columns).
TEST(MatMulForward, FlattenedRowsMatchNaiveLoops) {
  constexpr int kBatch = 3, kEntries = kBatch * 2, kRows = 7, kDepth = 5;
  std::mt19937_64 rng(5);
  for (int columns : {16, 20}) {
    Graph g;
    NodeId a = leaf(g, Op::Input, {B(), D(2), D(kRows), D(kDepth)}, DType::F32, "a");
    NodeId w = leaf(g, Op::Param, {D(kDepth), D(columns)}, DType::F32, "w");
    NodeId wt = leaf(g, Op::Param, {D(columns), D(kDepth)}, DType::F32, "wt");
    NodeId dy = leaf(g, Op::Input, {B(), D(2), D(kRows), D(columns)}, DType::F32, "dy");
    std::map<NodeId, Values> values = {{a, uniformValues(rng, kEntries * kRows * kDepth)},
                                       {w, uniformValues(rng, kDepth * columns)},
                                       {wt, uniformValues(rng, kDepth * columns)},
                                       {dy, uniformValues(rng, kEntries * kRows * columns)}};
    const Values &va = values[a], &vw = values[w], &vwt = values[wt], &vdy = values[dy];
    Values rows(kEntries * kRows * columns, 0), rows_t(rows.size(), 0), sums(kDepth * columns, 0);
    for (int e = 0; e < kEntries; ++e)
      for (int i = 0; i < kRows; ++i)
        for (int j = 0; j < columns; ++j)
          for (int k = 0; k < kDepth; ++k) {
            double x = va[(e * kRows + i) * kDepth + k];
            rows[(e * kRows + i) * columns + j] += x * vw[k * columns + j];
            rows_t[(e * kRows + i) * columns + j] += x * vwt[j * kDepth + k];
            sums[k * columns + j] += x * vdy[(e * kRows + i) * columns + j];
          }
    Attrs tb, ta;
    tb.transpose_b = true;
    ta.transpose_a = true;
    NodeId product = g.add(Op::MatMul, {a, w});
    NodeId contraction = g.add(Op::MatMul, {a, dy}, ta);
    EXPECT_EQ(shapeToString(g.node(product).shape), "[B, 2, 7, " + std::to_string(columns) + "]");
    EXPECT_EQ(shapeToString(g.node(contraction).shape), "[5, " + std::to_string(columns) + "]");
    expectNear(evaluate(g, product, values, {}, kBatch), rows);
    expectNear(evaluate(g, g.add(Op::MatMul, {a, wt}, tb), values, {}, kBatch), rows_t);
    expectNear(evaluate(g, contraction, values, {}, kBatch), sums);
  }
  Graph g;  // B shared by the rows, or both operands with the same leading dimensions and A transposed
  NodeId a = leaf(g, Op::Input, {B(), D(2), D(3)}, DType::F32, "a");
  NodeId c = leaf(g, Op::Input, {B(), D(4), D(3)}, DType::F32, "c");
  Attrs ta;
  ta.transpose_a = true;
  EXPECT_NE(inferShape(g, Op::MatMul, {a, c}, {}).error.find("flattened rows"), std::string::npos);
  EXPECT_NE(inferShape(g, Op::MatMul, {a, c}, ta).error, "");
}

// Per-entry products in register tiles (attention's [B, H, T, D] products) against naive loops: entries of 7 rows
// (tiles of 6 shifted inwards) by 16 or 20 columns, with B stored transposed (packed per entry) and A transposed.
TEST(MatMulForward, BatchedTilesMatchNaiveLoops) {
  constexpr int kBatch = 3, kEntries = kBatch * 2, kRows = 7, kDepth = 5;
  std::mt19937_64 rng(6);
  for (int columns : {16, 20}) {
    Graph g;
    NodeId a = leaf(g, Op::Input, {B(), D(2), D(kRows), D(kDepth)}, DType::F32, "a");
    NodeId at = leaf(g, Op::Input, {B(), D(2), D(kDepth), D(kRows)}, DType::F32, "at");
    NodeId b = leaf(g, Op::Input, {B(), D(2), D(kDepth), D(columns)}, DType::F32, "b");
    NodeId bt = leaf(g, Op::Input, {B(), D(2), D(columns), D(kDepth)}, DType::F32, "bt");
    std::map<NodeId, Values> values = {{a, uniformValues(rng, kEntries * kRows * kDepth)},
                                       {at, uniformValues(rng, kEntries * kRows * kDepth)},
                                       {b, uniformValues(rng, kEntries * kDepth * columns)},
                                       {bt, uniformValues(rng, kEntries * kDepth * columns)}};
    const Values &va = values[a], &vat = values[at], &vb = values[b], &vbt = values[bt];
    Values plain(kEntries * kRows * columns, 0), tb(plain.size(), 0), ta(plain.size(), 0);
    for (int e = 0; e < kEntries; ++e)
      for (int i = 0; i < kRows; ++i)
        for (int j = 0; j < columns; ++j)
          for (int k = 0; k < kDepth; ++k) {
            double x = va[(e * kRows + i) * kDepth + k], xt = vat[(e * kDepth + k) * kRows + i];
            size_t o = (e * kRows + i) * columns + j;
            plain[o] += x * vb[(e * kDepth + k) * columns + j];
            tb[o] += x * vbt[(e * columns + j) * kDepth + k];
            ta[o] += xt * vb[(e * kDepth + k) * columns + j];
          }
    Attrs transpose_b, transpose_a;
    transpose_b.transpose_b = true;
    transpose_a.transpose_a = true;
    expectNear(evaluate(g, g.add(Op::BatchMatMul, {a, b}), values, {}, kBatch), plain);
    expectNear(evaluate(g, g.add(Op::BatchMatMul, {a, bt}, transpose_b), values, {}, kBatch), tb);
    expectNear(evaluate(g, g.add(Op::BatchMatMul, {at, b}, transpose_a), values, {}, kBatch), ta);
  }
}

TEST(LossForward, MseAndBinaryCrossEntropies) {
  Graph g;
  NodeId p = leaf(g, Op::Input, {B(), D(2)}, DType::F32, "p");
  NodeId t = leaf(g, Op::Input, {B(), D(2)}, DType::F32, "t");
  // mse: ((0.5)^2 + 1^2 + 0 + 2^2) / 4
  EXPECT_NEAR(evaluate(g, g.add(Op::Mse, {p, t}), {{p, {0.5, 1, 2, 3}}, {t, {0, 0, 2, 1}}}, {}, 2)[0], 5.25 / 4, 1e-15);
  // l1: (0.5 + 1 + 0 + 2) / 4
  EXPECT_NEAR(evaluate(g, g.add(Op::L1, {p, t}), {{p, {0.5, 1, 2, 3}}, {t, {0, 0, 2, 1}}}, {}, 2)[0], 3.5 / 4, 1e-15);
  // bce: -(log 0.8 + log(1 - 0.4) + log 0.5 + 0.5 log 0.25 + 0.5 log 0.75) / 4 ... and p = 0 with t = 1 gives the
  // clamped log, -100, as PyTorch does.
  double want = -(std::log(0.8) + std::log(0.6) + std::log(0.5) + 0.5 * std::log(0.25) + 0.5 * std::log(0.75)) / 4;
  EXPECT_NEAR(evaluate(g, g.add(Op::BinaryCrossEntropy, {p, t}), {{p, {0.8, 0.4, 0.5, 0.25}}, {t, {1, 0, 1, 0.5}}},
                       {}, 2)[0],
              want, 1e-12);
  EXPECT_NEAR(evaluate(g, g.add(Op::BinaryCrossEntropy, {p, t}), {{p, {0, 1, 1, 1}}, {t, {1, 1, 1, 1}}}, {}, 2)[0],
              100.0 / 4, 1e-12);
  // with logits: z = 0 -> log 2; z = 1000, t = 1 -> 0; z = -1000, t = 1 -> 1000 (no overflow); z = 2, t = 0.25.
  double z2 = std::log(1 + std::exp(2.0)) - 2 * 0.25;
  EXPECT_NEAR(evaluate(g, g.add(Op::BinaryCrossEntropyWithLogits, {p, t}), {{p, {0, 1000, -1000, 2}}, {t, {0, 1, 1, 0.25}}},
                       {}, 2)[0],
              (std::log(2.0) + 0 + 1000 + z2) / 4, 1e-12);
  NodeId dz = g.add(Op::BinaryCrossEntropyWithLogitsGrad, {p, t, g.fill(1, {})});
  Values grad = evaluate(g, dz, {{p, {0, 1000, -1000, 2}}, {t, {0, 1, 1, 0.25}}}, {}, 2);
  EXPECT_NEAR(grad[0], 0.5 / 4, 1e-15);
  EXPECT_NEAR(grad[1], 0, 1e-15);
  EXPECT_NEAR(grad[2], -1.0 / 4, 1e-15);
  EXPECT_NEAR(grad[3], (1 / (1 + std::exp(-2.0)) - 0.25) / 4, 1e-15);
}

TEST(ReduceShapes, RulesRejectBadOperands) {
  Graph g;
  NodeId a = leaf(g, Op::Param, {D(2), D(3)}, DType::F32, "a");
  NodeId b = leaf(g, Op::Param, {D(3), D(2)}, DType::F32, "b");
  NodeId y = leaf(g, Op::Input, {B()}, DType::I32, "y");
  EXPECT_NE(inferShape(g, Op::Sum, {a}, over({2})).error, "");
  EXPECT_NE(inferShape(g, Op::Sum, {y}, over({0})).error, "");
  EXPECT_NE(inferShape(g, Op::Softmax, {a}, over({0, 1})).error, "");
  EXPECT_NE(inferShape(g, Op::Transpose, {a}, over({0, 0})).error, "");
  EXPECT_NE(inferShape(g, Op::Mse, {a, b}, {}).error, "");
  EXPECT_EQ(inferShape(g, Op::Mse, {a, a}, {}).shape, Shape{});
}

// ---- gradients -----------------------------------------------------------------------------------------

NodeId unary(Graph& g, Op op, NodeId x, Attrs attrs) { return g.add(op, {x}, std::move(attrs)); }

Attrs shaped(Shape shape, std::vector<int64_t> axes = {}, double alpha = 0) {
  Attrs attrs;
  attrs.shape = std::move(shape);
  attrs.axes = std::move(axes);
  attrs.alpha = alpha;
  return attrs;
}

const GradCase kReduceGradCases[] = {
    {"sum_axis1", {{B(), D(4)}}, [](Graph& g, auto& p, NodeId) { return unary(g, Op::Sum, p[0], over({1})); }},
    {"sum_batch_keepdims", {{B(), D(4)}},
     [](Graph& g, auto& p, NodeId) { return unary(g, Op::Sum, p[0], over({0}, true)); }},
    {"sum_all", {{B(), D(2), D(3)}}, [](Graph& g, auto& p, NodeId) { return unary(g, Op::Sum, p[0], over({0, 1, 2})); }},
    {"mean_outer_axes", {{B(), D(3), D(4)}},
     [](Graph& g, auto& p, NodeId) { return unary(g, Op::Mean, p[0], over({0, 2})); }},
    {"mean_keepdims", {{B(), D(5)}}, [](Graph& g, auto& p, NodeId) { return unary(g, Op::Mean, p[0], over({1}, true)); }},
    {"max_axis1", {{B(), D(5)}}, [](Graph& g, auto& p, NodeId) { return unary(g, Op::Max, p[0], over({1})); }},
    {"max_all_keepdims", {{B(), D(2), D(3)}},
     [](Graph& g, auto& p, NodeId) { return unary(g, Op::Max, p[0], over({0, 1, 2}, true)); }},
    {"softmax_last", {{B(), D(5)}}, [](Graph& g, auto& p, NodeId) { return unary(g, Op::Softmax, p[0], over({1})); }},
    {"softmax_batch", {{B(), D(4)}}, [](Graph& g, auto& p, NodeId) { return unary(g, Op::Softmax, p[0], over({0})); }},
    {"log_softmax", {{B(), D(2), D(5)}},
     [](Graph& g, auto& p, NodeId) { return unary(g, Op::LogSoftmax, p[0], over({1})); }},
    {"transpose_2d", {{B(), D(4)}}, [](Graph& g, auto& p, NodeId) { return unary(g, Op::Transpose, p[0], over({1, 0})); }},
    {"transpose_3d", {{B(), D(3), D(4)}},
     [](Graph& g, auto& p, NodeId) { return unary(g, Op::Transpose, p[0], over({2, 0, 1})); }},
    {"reshape", {{B(), D(2), D(3)}},
     [](Graph& g, auto& p, NodeId) { return unary(g, Op::Reshape, p[0], shaped({B(), D(3), D(2)})); }},
    {"broadcast_to_mean", {{D(4)}},
     [](Graph& g, auto& p, NodeId y) {
       return unary(g, Op::BroadcastTo, p[0], shaped({g.node(y).shape[0], D(4)}, {0}, 1));
     }},
    {"mse", {{B(), D(3)}, {B(), D(3)}}, [](Graph& g, auto& p, NodeId) { return g.add(Op::Mse, {p[0], p[1]}); }},
    {"l1", {{B(), D(3)}, {B(), D(3)}}, [](Graph& g, auto& p, NodeId) { return g.add(Op::L1, {p[0], p[1]}); }},
    {"binary_cross_entropy", {{B(), D(3)}},
     [](Graph& g, auto& p, NodeId) {
       // The target gets no gradient, so it is a constant here: 0.3 everywhere.
       return g.add(Op::BinaryCrossEntropy, {p[0], g.fill(0.3, g.node(p[0]).shape)});
     },
     false, false, {}, true},
    {"binary_cross_entropy_with_logits", {{B(), D(3)}, {B(), D(3)}},
     [](Graph& g, auto& p, NodeId) { return g.add(Op::BinaryCrossEntropyWithLogits, {p[0], p[1]}); }},
    {"batch_matmul", {{B(), D(2), D(3)}, {B(), D(3), D(4)}},
     [](Graph& g, auto& p, NodeId) { return g.add(Op::BatchMatMul, {p[0], p[1]}); }},
    {"batch_matmul_shared_tb", {{B(), D(2), D(3)}, {D(9), D(3)}},
     [](Graph& g, auto& p, NodeId) {
       Attrs attrs;
       attrs.transpose_b = true;
       return g.add(Op::BatchMatMul, {p[0], p[1]}, attrs);
     }},
    {"batch_matmul_shared_ta", {{D(3), D(2)}, {B(), D(3), D(4)}},
     [](Graph& g, auto& p, NodeId) {
       Attrs attrs;
       attrs.transpose_a = true;
       return g.add(Op::BatchMatMul, {p[0], p[1]}, attrs);
     }},
    {"batch_matmul_ta_tb", {{B(), D(3), D(2)}, {B(), D(4), D(3)}},
     [](Graph& g, auto& p, NodeId) {
       Attrs attrs;
       attrs.transpose_a = attrs.transpose_b = true;
       return g.add(Op::BatchMatMul, {p[0], p[1]}, attrs);
     }},
    // Attention's products: [B, H, T, D] @ [B, H, D, T] (scores, k stored transposed) and a 4-D entry by a shared
    // matrix.
    {"batch_matmul_4d_tb", {{B(), D(2), D(3), D(4)}, {B(), D(2), D(5), D(4)}},
     [](Graph& g, auto& p, NodeId) {
       Attrs attrs;
       attrs.transpose_b = true;
       return g.add(Op::BatchMatMul, {p[0], p[1]}, attrs);
     }},
    {"batch_matmul_4d_tiled_tb", {{B(), D(2), D(7), D(4)}, {B(), D(2), D(16), D(4)}},
     [](Graph& g, auto& p, NodeId) {
       Attrs attrs;
       attrs.transpose_b = true;
       return g.add(Op::BatchMatMul, {p[0], p[1]}, attrs);
     }},
    {"batch_matmul_4d_shared", {{B(), D(2), D(3), D(4)}, {D(4), D(2)}},
     [](Graph& g, auto& p, NodeId) { return g.add(Op::BatchMatMul, {p[0], p[1]}); }},
    // Products over flattened rows (op_rules.cpp): the rows form, with B stored transposed and narrow, and the
    // contraction form a shared matrix's gradient takes.
    {"matmul_rows", {{B(), D(2), D(3)}, {D(3), D(4)}},
     [](Graph& g, auto& p, NodeId) { return g.add(Op::MatMul, {p[0], p[1]}); }},
    {"matmul_rows_4d_tb", {{B(), D(2), D(7), D(4)}, {D(9), D(4)}},
     [](Graph& g, auto& p, NodeId) {
       Attrs attrs;
       attrs.transpose_b = true;
       return g.add(Op::MatMul, {p[0], p[1]}, attrs);
     }},
    {"matmul_contraction", {{B(), D(2), D(3), D(7)}, {B(), D(2), D(3), D(16)}},
     [](Graph& g, auto& p, NodeId) {
       Attrs attrs;
       attrs.transpose_a = true;
       return g.add(Op::MatMul, {p[0], p[1]}, attrs);
     }},
    {"l2_penalty_composite", {{D(3), D(2)}, {D(4)}},
     [](Graph& g, auto& p, NodeId) {
       return g.add(Op::Add, {g.add(Op::Sum, {g.add(Op::Mul, {p[0], p[0]})}, over({0, 1})),
                              g.add(Op::Sum, {g.add(Op::Mul, {p[1], p[1]})}, over({0}))});
     }},
};

INSTANTIATE_TEST_SUITE_P(ReduceOps, OpGradient, ::testing::ValuesIn(kReduceGradCases),
                         [](const auto& info) { return info.param.name; });

// ---- the DSL forms ---------------------------------------------------------------------------------------

// A small model using log_softmax, mean, mse, l2_penalty and the layout ops builds its forward and backward graphs.
TEST(ReduceDsl, ModelWithTheNewOpsBuildsItsProgram) {
  const char* text = R"(model m(x: f32[B, 2, 3], y: i32[B]) {
    param W: f32[10, 6] = normal(0, 0.1)
    param V: f32[10, 10] = zeros()
    h = flatten(x) @ transpose(W)
    logits = h + reshape(h, 10) @ V
    logp = log_softmax(logits, axis = -1)
    probs = softmax(logits)
    peak = max(probs, axis = 1, keepdims = 1)
    centred = logits - mean(logits, axis = 0, keepdims = 1)
    loss = cross_entropy(logits, y) + 0.1 * mse(probs, softmax(centred)) - 0.01 * mean(logp) + 0.001 * l2_penalty(W, V) + 0 * sum(peak)
    return logits
}
)";
  auto c = compileFrontEnd(dsl::SourceFile("m.nn", text));
  EXPECT_EQ(c->diags->render(), "");
  ASSERT_TRUE(c->graph.has_value());
  Program program = buildProgram(std::move(*c->graph), c->checked->train);
  EXPECT_EQ(program.grads.size(), 2u);
}

TEST(ReduceDsl, BinaryLossesTakeFloatTargets) {
  EXPECT_EQ(diagnostics(R"(model m(x: f32[B, 4], y: i32[B]) {
    p = linear(x, 2)
    t = softmax(p) * 0 + 0.5
    loss = binary_cross_entropy(softmax(p), t) + binary_cross_entropy_with_logits(p, t) + mse(softmax(p), t)
    return p
}
)"),
            "");
}

TEST(ReduceDsl, BadAxesAndArgumentsAreReported) {
  std::string base = "model m(x: f32[B, 4], y: i32[B]) {\n    p = linear(x, 2)\n    loss = cross_entropy(p, y) + ";
  std::string tail = "\n    return p\n}\n";
  EXPECT_NE(diagnostics(base + "sum(x, axis = 2)" + tail).find("`axis` of `sum` must be an integer axis in [-2, 2)"),
            std::string::npos);
  EXPECT_NE(diagnostics(base + "sum(x, axis = -3)" + tail).find("must be an integer axis"), std::string::npos);
  EXPECT_NE(diagnostics(base + "mean(x, keepdims = 2)" + tail).find("`keepdims` of `mean` must be 0 or 1"),
            std::string::npos);
  EXPECT_NE(diagnostics(base + "mean(x, 1)" + tail).find("takes one tensor"), std::string::npos);
  EXPECT_NE(diagnostics(base + "sum(softmax(x, dim = 1))" + tail).find("has no attribute `dim`"), std::string::npos);
  EXPECT_NE(diagnostics(base + "sum(reshape(x, 3))" + tail).find("cannot reshape [B, 4] to [B, 3]"), std::string::npos);
  EXPECT_NE(diagnostics(base + "sum(reshape(x, 1000000, 1000000, 1000000))" + tail).find("2^40"), std::string::npos);
  EXPECT_NE(diagnostics(base + "mse(x, p)" + tail).find("one shape"), std::string::npos);
  EXPECT_NE(diagnostics(base + "l2_penalty()" + tail).find("one or more tensors"), std::string::npos);
  EXPECT_EQ(diagnostics(base + "mean(sum(transpose(transpose(x, 0, 1)), axis = -1)) + max(flatten(x))" + tail), "");
  // `@` of a 3-D operand is the batched product; transpose(x) swaps the last two axes.
  EXPECT_EQ(diagnostics(base + "mean(reshape(x, 2, 2) @ transpose(reshape(x, 2, 2)))" + tail), "");
  EXPECT_NE(diagnostics(base + "mean(reshape(x, 2, 2) @ reshape(x, 4, 1))" + tail).find("inner dimensions"),
            std::string::npos);
}

}  // namespace
}  // namespace nnc
