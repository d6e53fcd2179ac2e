// `nnc check`'s model summary: golden tables for every example and the JSON of mlp (regenerate with
// NNC_REGEN_GOLDEN=1, see tests/golden.h), the numbers of mlp against counts worked out by hand, and the per-op
// FLOP rule.
#include <gtest/gtest.h>

#include "compiler/compilation.h"
#include "compiler/graph/summary.h"
#include "tests/golden.h"

namespace nnc {
namespace {

ModelSummary summarizeSource(dsl::SourceFile source) {
  auto c = compileFrontEnd(std::move(source));
  EXPECT_EQ(c->diags->render(), "");
  if (!c->graph) return {};
  Program program = buildProgram(std::move(*c->graph), c->checked->train);
  return summarize(program, *c->checked);
}

ModelSummary summarizeExample(const std::string& name) {
  return summarizeSource(dsl::SourceFile::read(std::string(NNC_SOURCE_DIR) + "/examples/" + name + ".nn"));
}

std::string shapeText(const SummaryRow& row) { return row.shape ? shapeToString(*row.shape) : "?"; }

class GoldenSummary : public ::testing::TestWithParam<std::string> {};

TEST_P(GoldenSummary, TableMatches) {
  testing::expectMatchesGolden(renderSummaryTable(summarizeExample(GetParam())), GetParam() + ".summary");
}

INSTANTIATE_TEST_SUITE_P(Examples, GoldenSummary,
                         ::testing::Values("perceptron", "xor", "logreg", "softmax_regression", "mlp",
                                           "mlp_bn_dropout", "lenet5", "cnn_bn"));

TEST(GoldenSummaryJson, MlpMatches) {
  testing::expectMatchesGolden(renderSummaryJson(summarizeExample("mlp")), "mlp.summary.json");
}

TEST(Summary, MlpRowsAndParameters) {
  ModelSummary s = summarizeExample("mlp");
  EXPECT_EQ(s.model, "mlp");
  ASSERT_EQ(s.inputs.size(), 2u);
  EXPECT_EQ(shapeToString(s.inputs[0].shape), "[B, 784]");
  ASSERT_EQ(s.rows.size(), 5u);
  const char* names[] = {"pixels", "fc1", "fc2", "logits", "loss"};
  const char* ops[] = {"div", "linear", "linear", "linear", "cross_entropy"};
  const char* shapes[] = {"[B, 784]", "[B, 256]", "[B, 128]", "[B, 10]", "[]"};
  int64_t params[] = {0, 256 * 784 + 256, 128 * 256 + 128, 10 * 128 + 10, 0};
  for (size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(s.rows[i].name, names[i]);
    EXPECT_EQ(s.rows[i].op, ops[i]);
    EXPECT_EQ(shapeText(s.rows[i]), shapes[i]);
    EXPECT_EQ(s.rows[i].params, params[i]) << names[i];
  }
  EXPECT_EQ(s.total_params, 235146);
  EXPECT_EQ(s.trainable_params, 235146);
  EXPECT_EQ(s.batch, 64);
}

TEST(Summary, MlpFlopsAndActivationsByHand) {
  ModelSummary s = summarizeExample("mlp");
  double matmuls = 2.0 * (784 * 256 + 256 * 128 + 128 * 10);
  double elementwise = 784 + 784      // (x - mean) / std
                       + 256 + 256    // fc1 bias add, relu
                       + 128 + 128    // fc2 bias add, relu
                       + 10;          // logits bias add
  double cross_entropy = 4 * 10 + 4 + 1.0 / 64;  // per logit 4, per row 4, the mean's divide once per batch
  EXPECT_DOUBLE_EQ(s.forward_flops_per_example, matmuls + elementwise + cross_entropy);

  // dlogits, then per layer: bias grad (sum_to), weight grad and (but for fc1) input grad matmuls, relu mask.
  double backward = 10 * 10                                // cross_entropy_grad
                    + 10 + 2 * 10 * 128 + 2 * 10 * 128     // logits: sum_to, dW, dx
                    + 128 + 128                            // step, mul
                    + 128 + 2 * 128 * 256 + 2 * 128 * 256  // fc2: sum_to, dW, dx
                    + 256 + 256                            // step, mul
                    + 256 + 2 * 256 * 784;                 // fc1: sum_to, dW (no dx: x needs no gradient)
  EXPECT_DOUBLE_EQ(s.backward_flops_per_example, backward);

  // pixels, fc1, relu(fc1), fc2, relu(fc2), logits: all read by the backward pass, 4 bytes each, batch 64.
  EXPECT_EQ(s.activation_bytes, 4 * 64 * (784 + 2 * 256 + 2 * 128 + 10));
}

TEST(Summary, ParamsGroupUnderTheirStatementAndAliasesKeepTheirRow) {
  ModelSummary s = summarizeSource(dsl::SourceFile("alias.nn", R"(model alias(x: f32[B, 4], y: i32[B]) {
    param scale: f32[4] = ones()
    fc = linear(x * scale, 3)
    h = fc
    loss = cross_entropy(h, y)
    return h
}
)"));
  ASSERT_EQ(s.rows.size(), 4u);
  EXPECT_EQ(s.rows[0].name, "scale");
  EXPECT_EQ(s.rows[0].op, "param");
  EXPECT_EQ(s.rows[0].params, 4);
  EXPECT_EQ(s.rows[1].name, "fc");
  EXPECT_EQ(s.rows[1].op, "linear");
  EXPECT_EQ(shapeText(s.rows[1]), "[B, 3]");
  EXPECT_EQ(s.rows[1].params, 3 * 4 + 3);
  EXPECT_EQ(s.rows[2].name, "h");
  EXPECT_EQ(s.rows[2].op, "alias");
  EXPECT_EQ(shapeText(s.rows[2]), "[B, 3]");
  EXPECT_EQ(s.total_params, 4 + 15);
}

TEST(Flops, PerOpRule) {
  Graph g;
  Node a{Op::Input, {}, {}, {{0, "B"}, {5, {}}}};
  Node w{Op::Param, {}, {}, {{7, {}}, {5, {}}}};
  g.nodes = {a, w};
  Attrs transpose_b;
  transpose_b.transpose_b = true;
  NodeId product = g.add(Op::MatMul, {0, 1}, transpose_b);  // [B,5] @ [7,5]^T = [B,7]
  NodeId relu = g.add(Op::Relu, {product});
  Attrs to_row;
  to_row.shape = {{7, {}}};
  NodeId summed = g.add(Op::SumTo, {relu}, to_row);
  EXPECT_EQ(flops(g, 0, 8), 0);
  EXPECT_EQ(flops(g, product, 8), 2.0 * 8 * 7 * 5);
  EXPECT_EQ(flops(g, relu, 8), 8 * 7);
  EXPECT_EQ(flops(g, summed, 8), 8 * 7);
}

}  // namespace
}  // namespace nnc
