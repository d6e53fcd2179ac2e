// Parameter initializers: the statistics each one promises (torch.nn.init's formulas), and determinism per seed.
#include <gtest/gtest.h>

#include <cmath>

#include "runtime/tensor.h"

namespace nnc::rt {
namespace {

struct Stats {
  double mean = 0, std = 0, min = INFINITY, max = -INFINITY;
};

// Initializes one [256, 512] parameter (fan_in 512, fan_out 256) and measures it.
Stats sample(InitKind kind, double a, double b, uint64_t seed = 3) {
  ParamSpec spec{"w", 2, {256, 512}, kind, a, b, true, false};
  ModelSpec model{};
  model.params = &spec;
  model.num_params = 1;
  std::vector<Tensor> params = allocateParams(model);
  initializeParams(model, seed, params);
  Stats s;
  size_t n = params[0].number_of_elements();
  for (size_t i = 0; i < n; ++i) {
    double v = params[0].data()[i];
    s.mean += v / static_cast<double>(n);
    s.min = std::min(s.min, v);
    s.max = std::max(s.max, v);
  }
  for (size_t i = 0; i < n; ++i) s.std += std::pow(params[0].data()[i] - s.mean, 2) / static_cast<double>(n);
  s.std = std::sqrt(s.std);
  return s;
}

TEST(Init, ConstantsAreExact) {
  Stats c = sample(InitKind::Constant, 0.25, 0);
  EXPECT_EQ(c.min, 0.25);
  EXPECT_EQ(c.max, 0.25);
}

TEST(Init, UniformAndNormalMatchTheirParameters) {
  Stats u = sample(InitKind::Uniform, -0.5, 1.5);
  EXPECT_GE(u.min, -0.5);
  EXPECT_LT(u.max, 1.5);
  EXPECT_NEAR(u.mean, 0.5, 0.01);
  EXPECT_NEAR(u.std, 2 / std::sqrt(12.0), 0.01);
  Stats n = sample(InitKind::Normal, 1.0, 0.5);
  EXPECT_NEAR(n.mean, 1.0, 0.01);
  EXPECT_NEAR(n.std, 0.5, 0.01);
}

TEST(Init, FanBasedInitializersFollowTorch) {
  const double fan_in = 512, fan_out = 256, relu_gain = std::sqrt(2.0);
  Stats xu = sample(InitKind::XavierUniform, 1, 0);
  EXPECT_NEAR(xu.max, std::sqrt(6 / (fan_in + fan_out)), 1e-3);
  EXPECT_NEAR(xu.std, std::sqrt(2 / (fan_in + fan_out)), 1e-3);
  Stats xn = sample(InitKind::XavierNormal, 1, 0);
  EXPECT_NEAR(xn.std, std::sqrt(2 / (fan_in + fan_out)), 1e-3);
  Stats hu = sample(InitKind::HeUniform, relu_gain, 0);
  EXPECT_NEAR(hu.max, relu_gain * std::sqrt(3 / fan_in), 1e-3);
  EXPECT_NEAR(hu.std, relu_gain / std::sqrt(fan_in), 1e-3);
  Stats hn = sample(InitKind::HeNormal, relu_gain, 0);
  EXPECT_NEAR(hn.mean, 0, 1e-3);
  EXPECT_NEAR(hn.std, relu_gain / std::sqrt(fan_in), 1e-3);
}

TEST(Init, SeedsDetermineTheValues) {
  EXPECT_EQ(sample(InitKind::Normal, 0, 1, 7).mean, sample(InitKind::Normal, 0, 1, 7).mean);
  EXPECT_NE(sample(InitKind::Normal, 0, 1, 7).mean, sample(InitKind::Normal, 0, 1, 8).mean);
}

}  // namespace
}  // namespace nnc::rt
