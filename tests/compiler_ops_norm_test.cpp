// batch_norm, layer_norm, dropout and prelu: train- and eval-mode forward values against naive references, the
// running-statistics update against PyTorch's formula, dropout's masks, and each op's gradient inside a small model
// against central finite differences (float64).
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <set>

#include "compiler/compilation.h"
#include "tests/compiler_model_check.h"

namespace nnc {
namespace testing {
std::set<std::string> normTestedOps();  // used by OpTable.EveryOpIsCovered (compiler_ops_test.cpp)
}  // namespace testing

namespace {

using testing::compileModelSource;
using testing::bindingNode;
using testing::modelAround;
using testing::runOutputs;

const ParamInfo& param(const Program& p, const std::string& name) {
  for (const ParamInfo& info : p.graph.params)
    if (info.name == name) return info;
  throw std::logic_error("no parameter " + name);
}

// ---- batch_norm --------------------------------------------------------------------------------------

struct BatchNormCase {
  const char* name;
  int channels, spatial;  // x is [B, C] (spatial 1) or [B, C, 2, spatial / 2]
};

void PrintTo(const BatchNormCase& c, std::ostream* os) { *os << c.name; }

class BatchNorm : public ::testing::TestWithParam<BatchNormCase> {};

// Train mode: per channel, the batch mean and biased variance over (B, H, W); the buffers move by momentum 0.2
// towards the mean and the unbiased variance; eval mode uses the buffers. All against a naive loop.
TEST_P(BatchNorm, TrainAndEvalMatchPyTorchFormulas) {
  const BatchNormCase& c = GetParam();
  std::string shape = c.spatial == 1 ? std::to_string(c.channels)
                                     : std::to_string(c.channels) + ", 2, " + std::to_string(c.spatial / 2);
  Program p = compileModelSource("bn.nn", modelAround(shape, "batch_norm(x, momentum = 0.2, eps = 0.001)"));
  const Graph& g = p.graph;
  constexpr int kBatch = 4;
  std::mt19937_64 rng(3);
  testing::ModelValues values = testing::randomModelValues(p, kBatch, rng, 1.0);
  const ParamInfo& mean_buffer = param(p, "h.running_mean");
  const ParamInfo& var_buffer = param(p, "h.running_var");
  const ParamInfo& batches = param(p, "h.num_batches_tracked");
  ASSERT_FALSE(mean_buffer.trainable);
  auto out = runOutputs(p, {bindingNode(g, "h", false), bindingNode(g, "h", true), mean_buffer.update, var_buffer.update,
                     batches.update},
                 values, kBatch);
  auto valueOf = [&](const std::string& name) { return values.params[g.node(param(p, name).node).attrs.index]; };
  std::vector<double> weight = valueOf("h.weight"), bias = valueOf("h.bias");
  std::vector<double> running_mean = valueOf("h.running_mean"), running_var = valueOf("h.running_var");
  const int n = kBatch * c.spatial;
  for (int ch = 0; ch < c.channels; ++ch) {
    auto at = [&](int b, int s) { return (b * c.channels + ch) * c.spatial + s; };
    double mean = 0, var = 0;
    for (int b = 0; b < kBatch; ++b)
      for (int s = 0; s < c.spatial; ++s) mean += values.x[at(b, s)] / n;
    for (int b = 0; b < kBatch; ++b)
      for (int s = 0; s < c.spatial; ++s) var += std::pow(values.x[at(b, s)] - mean, 2) / n;
    for (int b = 0; b < kBatch; ++b)
      for (int s = 0; s < c.spatial; ++s) {
        double x = values.x[at(b, s)];
        EXPECT_NEAR(out[0][at(b, s)], (x - mean) / std::sqrt(var + 1e-3) * weight[ch] + bias[ch], 1e-12);
        EXPECT_NEAR(out[1][at(b, s)], (x - running_mean[ch]) / std::sqrt(running_var[ch] + 1e-3) * weight[ch] + bias[ch],
                    1e-12);
      }
    EXPECT_NEAR(out[2][ch], 0.8 * running_mean[ch] + 0.2 * mean, 1e-12);
    EXPECT_NEAR(out[3][ch], 0.8 * running_var[ch] + 0.2 * var * n / (n - 1), 1e-12);
  }
  EXPECT_EQ(out[4][0], values.params[g.node(batches.node).attrs.index][0] + 1);
}

TEST_P(BatchNorm, GradientMatchesFiniteDifferences) {
  const BatchNormCase& c = GetParam();
  std::string shape = c.spatial == 1 ? std::to_string(c.channels)
                                     : std::to_string(c.channels) + ", 2, " + std::to_string(c.spatial / 2);
  // A linear layer in front, so the gradient also flows through the normalization into a parameter.
  std::string source = "model m(x: f32[B, " + shape + "], y: i32[B]) {\n    param s: f32[" + std::to_string(c.channels) +
                       (c.spatial == 1 ? "" : ", 1, 1") + "] = normal(1, 0.3)\n    h = batch_norm(x * s)\n" +
                       "    logits = linear(flatten(h), 3)\n    loss = cross_entropy(logits, y)\n    return logits\n}\n";
  Program p = compileModelSource("bn.nn", source);
  std::mt19937_64 rng(5);
  testing::ModelValues values = testing::randomModelValues(p, 4, rng, 1.0);
  testing::expectGradientsMatchFiniteDifferences(p, 4, values, rng);
}

INSTANTIATE_TEST_SUITE_P(Shapes, BatchNorm,
                         ::testing::Values(BatchNormCase{"features", 3, 1}, BatchNormCase{"images", 2, 6}),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(BatchNorm, RejectsBadInputsAndAttributes) {
  for (const char* op : {"batch_norm(x, momentum = 2)", "batch_norm(x, eps = 0)", "batch_norm(x, mean = 1)"}) {
    auto c = compileFrontEnd(dsl::SourceFile("bad.nn", modelAround("4", op)));
    EXPECT_TRUE(c->diags->hasErrors()) << op;
  }
  auto c = compileFrontEnd(dsl::SourceFile("bad.nn", "model m(x: f32[B, 4], y: i32[B]) {\n    s = sum(x, axis = 1)\n"
                                                     "    h = batch_norm(s)\n    loss = mean(h)\n    return x\n}\n"));
  EXPECT_NE(c->diags->render().find("`batch_norm` needs an input [batch, channels, ...], got [B]"), std::string::npos)
      << c->diags->render();
}

// ---- layer_norm ----------------------------------------------------------------------------------------

class LayerNorm : public ::testing::TestWithParam<int> {};

// Over the trailing `dims` axes of x [B, 2, 3], with weight and bias of those axes' shape.
TEST_P(LayerNorm, MatchesNaiveReferenceAndFiniteDifferences) {
  int dims = GetParam();
  Program p = compileModelSource("ln.nn", modelAround("2, 3", "layer_norm(x, dims = " + std::to_string(dims) + ")"));
  const Graph& g = p.graph;
  EXPECT_EQ(g.node(param(p, "h.weight").node).shape.size(), static_cast<size_t>(dims));
  constexpr int kBatch = 3;
  std::mt19937_64 rng(9);
  testing::ModelValues values = testing::randomModelValues(p, kBatch, rng, 1.0);
  auto out = runOutputs(p, {bindingNode(g, "h", false)}, values, kBatch);
  const std::vector<double>& weight = values.params[g.node(param(p, "h.weight").node).attrs.index];
  const std::vector<double>& bias = values.params[g.node(param(p, "h.bias").node).attrs.index];
  int group = dims == 1 ? 3 : 6;  // elements normalized together
  for (int first = 0; first < kBatch * 6; first += group) {
    double mean = 0, var = 0;
    for (int i = 0; i < group; ++i) mean += values.x[first + i] / group;
    for (int i = 0; i < group; ++i) var += std::pow(values.x[first + i] - mean, 2) / group;
    for (int i = 0; i < group; ++i)
      EXPECT_NEAR(out[0][first + i], (values.x[first + i] - mean) / std::sqrt(var + 1e-5) * weight[i] + bias[i], 1e-12);
  }
  testing::expectGradientsMatchFiniteDifferences(p, kBatch, values, rng);
}

INSTANTIATE_TEST_SUITE_P(Dims, LayerNorm, ::testing::Values(1, 2));

// ---- dropout -------------------------------------------------------------------------------------------

// The mask's definition (compiler/lower/lower.cpp), written out: lowbias32 of the row-major index and the salted seed.
uint32_t mix(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352du;
  x ^= x >> 15;
  x *= 0x846ca68bu;
  return x ^ (x >> 16);
}
double referenceMask(uint32_t index, int32_t seed, uint32_t site, double p) {
  uint32_t h = mix(index ^ mix(static_cast<uint32_t>(seed) + site * 0x9E3779B9u));
  return (h >> 8) >= static_cast<uint32_t>(std::ceil(p * 16777216.0)) ? 1 / (1 - p) : 0;
}

TEST(Dropout, TrainMasksFollowTheSeedAndEvalIsIdentity) {
  constexpr int kBatch = 64;
  Program p = compileModelSource("dropout.nn", modelAround("50", "dropout(dropout(x, p = 0.3), p = 0.3)"));
  const Graph& g = p.graph;
  std::mt19937_64 rng(1);
  testing::ModelValues values = testing::randomModelValues(p, kBatch, rng);
  NodeId train = bindingNode(g, "h", false);
  auto out = runOutputs(p, {train, g.output}, values, kBatch);
  // Eval mode is the identity: the prediction is the linear head applied to x itself.
  const std::vector<double>& w = values.params[g.node(param(p, "logits.weight").node).attrs.index];
  const std::vector<double>& b = values.params[g.node(param(p, "logits.bias").node).attrs.index];
  for (int row = 0; row < kBatch; ++row)
    for (int k = 0; k < 3; ++k) {
      double logit = b[k];
      for (int i = 0; i < 50; ++i) logit += values.x[row * 50 + i] * w[k * 50 + i];
      ASSERT_NEAR(out[1][row * 3 + k], logit, 1e-12);
    }
  size_t kept = 0;
  for (size_t i = 0; i < values.x.size(); ++i) {
    double expected = values.x[i] * referenceMask(static_cast<uint32_t>(i), values.dropout_seed, 0, 0.3) *
                      referenceMask(static_cast<uint32_t>(i), values.dropout_seed, 1, 0.3);
    ASSERT_DOUBLE_EQ(out[0][i], expected) << i;
    kept += out[0][i] != 0;
  }
  // Two sites keep 0.49 of 3200 elements: 1568 expected, standard deviation 28.
  EXPECT_NEAR(static_cast<double>(kept), 1568, 5 * 28.3);
  EXPECT_EQ(runOutputs(p, {train}, values, kBatch)[0], out[0]) << "the same seed gives the same masks";
  values.dropout_seed += 1;
  EXPECT_NE(runOutputs(p, {train}, values, kBatch)[0], out[0]) << "another seed gives other masks";
}

TEST(Dropout, GradientMatchesFiniteDifferences) {
  Program p = compileModelSource("dropout.nn", "model m(x: f32[B, 6], y: i32[B]) {\n    fc = linear(x, 5)\n"
                                               "    h = dropout(tanh(fc), p = 0.5)\n    logits = linear(h, 3)\n"
                                               "    loss = cross_entropy(logits, y)\n    return logits\n}\n");
  std::mt19937_64 rng(2);
  testing::expectGradientsMatchFiniteDifferences(p, 3, testing::randomModelValues(p, 3, rng, 0.5), rng);
}

TEST(Dropout, ProbabilityOutsideTheUnitIntervalIsAnError) {
  for (const char* op : {"dropout(x, p = 1)", "dropout(x, p = -0.1)"}) {
    auto c = compileFrontEnd(dsl::SourceFile("bad.nn", modelAround("4", op)));
    EXPECT_NE(c->diags->render().find("must be in [0, 1)"), std::string::npos) << c->diags->render();
  }
}

// ---- prelu ---------------------------------------------------------------------------------------------

class PRelu : public ::testing::TestWithParam<int> {};

// max(0, x) + a min(0, x) on x [B, 2, 3], one slope shared or one per channel.
TEST_P(PRelu, MatchesNaiveReferenceAndFiniteDifferences) {
  int slopes = GetParam();
  Program p = compileModelSource("prelu.nn", modelAround("2, 3", "prelu(x, num_parameters = " + std::to_string(slopes) + ")"));
  const Graph& g = p.graph;
  constexpr int kBatch = 3;
  std::mt19937_64 rng(4);
  testing::ModelValues values = testing::randomModelValues(p, kBatch, rng, 1.0);
  auto out = runOutputs(p, {bindingNode(g, "h", false)}, values, kBatch);
  const std::vector<double>& a = values.params[g.node(param(p, "h.weight").node).attrs.index];
  for (size_t i = 0; i < values.x.size(); ++i) {
    double x = values.x[i], slope = a[slopes == 1 ? 0 : (i / 3) % 2];
    EXPECT_NEAR(out[0][i], x > 0 ? x : slope * x, 1e-15);
  }
  testing::expectGradientsMatchFiniteDifferences(p, kBatch, values, rng);
}

INSTANTIATE_TEST_SUITE_P(Slopes, PRelu, ::testing::Values(1, 2));

}  // namespace

std::set<std::string> testing::normTestedOps() {
  std::set<std::string> ops;
  for (const char* op : {"dropout(x, p = 0.5)", "batch_norm(x)", "layer_norm(x)", "prelu(x)"}) {
    Program p = compileModelSource("ops.nn", modelAround("2", op));
    for (const Node& node : p.graph.nodes) ops.insert(opInfo(node.op).name);
  }
  return ops;
}

}  // namespace nnc
