// Whole-program checks in float64: the gradient of every example model against central finite differences, and
// train_step of examples/mlp.nn against each optimizer's update (torch.optim's formulas) applied to grads' output.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "compiler/compilation.h"
#include "tests/compiler_model_check.h"

namespace nnc {
namespace {

constexpr int kBatch = 3;

using testing::compileExample;

std::vector<double> randomValues(size_t count, std::mt19937_64& rng, double scale) {
  std::uniform_real_distribution<double> uniform(-1, 1);
  std::vector<double> values(count);
  for (double& v : values) v = scale * uniform(rng);
  return values;
}

// The whole model's gradient (batch 3, float64) against central differences at 8 random elements of each
// trainable parameter, with parameters of PyTorch-like scale (0.1) so the softmax does not saturate. A relu
// input or a pooling near-tie within one step of its kink would make the difference quotient wrong at that
// element; random inputs make that unlikely. Models with dropout use a fixed mask (seed 12345).
class WholeModel : public ::testing::TestWithParam<std::string> {};

TEST_P(WholeModel, GradientMatchesFiniteDifferences) {
  Program program = compileExample(GetParam());
  std::mt19937_64 rng(11);
  testing::ModelValues values = testing::randomModelValues(program, kBatch, rng);
  testing::expectGradientsMatchFiniteDifferences(program, kBatch, values, rng);
}

INSTANTIATE_TEST_SUITE_P(Examples, WholeModel,
                         ::testing::Values("perceptron", "xor", "logreg", "softmax_regression", "mlp",
                                           "mlp_bn_dropout", "lenet5", "cnn_bn"),
                         [](const auto& info) { return info.param; });

// examples/vae.nn marks its latent code: `sample` given the codes predict's eval mode computes (the mean) decodes
// them to predict's output, and other codes to other images. Only the parameters and the code reach it.
TEST(SampleEntry, DecodesTheLatentCodeAsPredictDoes) {
  Program program = compileExample("vae");
  const Graph& g = program.graph;
  ASSERT_NE(g.latent, kNoNode);
  EXPECT_EQ(shapeToString(g.node(g.latent).shape), "[B, 16]");
  ASSERT_EQ(program.entryPoints().back(), &program.sample);
  ASSERT_EQ(program.sample.arguments.size(), 1 + g.params.size());
  EXPECT_EQ(program.sample.arguments[0], g.latent);
  std::mt19937_64 rng(5);
  testing::ModelValues values = testing::randomModelValues(program, kBatch, rng, 0.3);

  EntryPoint code_entry = program.predict;
  code_entry.outputs = {g.latent};
  testing::JitEntry encode(g, code_entry, kBatch);
  testing::setModelValues(encode, program, code_entry, values);
  std::vector<double> code = encode.run()[0];
  testing::JitEntry predict(g, program.predict, kBatch);
  testing::setModelValues(predict, program, program.predict, values);
  std::vector<double> predicted = predict.run()[0];

  testing::JitEntry sample(g, program.sample, kBatch);
  for (size_t i = 0; i < g.params.size(); ++i) sample.set(g.params[i].node, values.params[i]);
  sample.set(g.latent, code);
  std::vector<double> decoded = sample.run()[0];
  ASSERT_EQ(decoded.size(), predicted.size());
  for (size_t i = 0; i < decoded.size(); ++i) ASSERT_NEAR(decoded[i], predicted[i], 1e-12) << i;
  for (double& v : code) v = -v;
  sample.set(g.latent, code);
  EXPECT_NE(sample.run()[0], predicted);
}

// train_step against torch.optim's update applied by hand to the output of grads, for each optimizer variant.
struct OptimizerCase {
  const char* name;
  const char* optimizer;
  double momentum, weight_decay;
  bool nesterov;
  double clip_grad_norm = 0;
};

class TrainStep : public ::testing::TestWithParam<OptimizerCase> {};

TEST_P(TrainStep, IsGradsFollowedByTheOptimizerUpdate) {
  const OptimizerCase& oc = GetParam();
  auto c = compileFrontEnd(dsl::SourceFile::read(std::string(NNC_SOURCE_DIR) + "/examples/mlp.nn"));
  ASSERT_EQ(c->diags->render(), "");
  dsl::TrainConfig train = c->checked->train;
  dsl::OptimizerConfig& opt = train.optimizer;
  opt.name = oc.optimizer;
  opt.momentum = oc.momentum;
  opt.weight_decay = oc.weight_decay;
  opt.nesterov = oc.nesterov;
  train.clip_grad_norm = oc.clip_grad_norm;
  Program program = buildProgram(std::move(*c->graph), train);
  const Graph& g = program.graph;
  const std::string name = oc.optimizer;
  bool adam = name == "adam" || name == "adamw";
  size_t slots = adam ? 2 : name == "rmsprop" ? 1 : oc.momentum > 0 ? 1 : 0;
  ASSERT_EQ(program.states.size(), slots * g.params.size());
  const double lr = 0.05, t = 3, c1 = 1 - std::pow(opt.beta1, t), c2 = 1 - std::pow(opt.beta2, t);
  std::mt19937_64 rng(11);
  testing::ModelValues in = testing::randomModelValues(program, kBatch, rng);

  testing::JitEntry grads(g, program.grads_entry, kBatch);
  testing::setModelValues(grads, program, program.grads_entry, in);
  std::vector<std::vector<double>> g_out = grads.run();

  testing::JitEntry step(g, program.train_step, kBatch);
  testing::setModelValues(step, program, program.train_step, in);
  std::vector<std::vector<double>> state;  // square averages must be non-negative
  for (const StateInfo& s : program.states) {
    state.push_back(randomValues(in.params[s.param].size(), rng, 0.01));
    for (double& v : state.back()) v = std::abs(v);
    step.set(s.node, state.back());
  }
  step.setScalar(program.learning_rate, lr);
  if (adam) {
    step.setScalar(program.step_scalars[0], c1);
    step.setScalar(program.step_scalars[1], c2);
  }
  std::vector<std::vector<double>> out = step.run();  // loss, new params..., new states...

  EXPECT_DOUBLE_EQ(out[0][0], g_out[0][0]);
  size_t params = g.params.size();
  double clip = 1;  // torch.nn.utils.clip_grad_norm_: scale by min(1, c / (norm + 1e-6))
  if (oc.clip_grad_norm > 0) {
    double squares = 0;
    for (size_t p = 0; p < params; ++p)
      for (double v : g_out[p + 1]) squares += v * v;
    clip = std::min(1.0, oc.clip_grad_norm / (std::sqrt(squares) + 1e-6));
    ASSERT_LT(clip, 1.0) << "the case should clip";
  }
  auto new_state = [&](size_t p, size_t slot) { return out[1 + params + p * slots + slot]; };
  for (size_t p = 0; p < params; ++p)
    for (size_t i = 0; i < in.params[p].size(); ++i) {
      double w = in.params[p][i];
      double grad = clip * g_out[p + 1][i] + (name == "adamw" ? 0 : oc.weight_decay * w);
      double expected = 0;
      if (name == "sgd") {
        double update = grad;
        if (oc.momentum > 0) {
          double v = oc.momentum * state[p][i] + grad;
          ASSERT_NEAR(new_state(p, 0)[i], v, 1e-12) << program.states[p].name << "[" << i << "]";
          update = oc.nesterov ? grad + oc.momentum * v : v;
        }
        expected = w - lr * update;
      } else if (name == "rmsprop") {
        double s = opt.alpha * state[p][i] + (1 - opt.alpha) * grad * grad;
        ASSERT_NEAR(new_state(p, 0)[i], s, 1e-12);
        expected = w - lr * grad / (std::sqrt(s) + opt.eps);
      } else {
        double m = opt.beta1 * state[2 * p][i] + (1 - opt.beta1) * grad;
        double v = opt.beta2 * state[2 * p + 1][i] + (1 - opt.beta2) * grad * grad;
        ASSERT_NEAR(new_state(p, 0)[i], m, 1e-12);
        ASSERT_NEAR(new_state(p, 1)[i], v, 1e-12);
        double start = name == "adamw" ? w - lr * oc.weight_decay * w : w;
        expected = start - lr * (m / c1) / (std::sqrt(v / c2) + opt.eps);
      }
      ASSERT_NEAR(out[1 + p][i], expected, 1e-12 * std::max(1.0, std::abs(expected)))
          << g.params[p].name << "[" << i << "]";
    }
}

INSTANTIATE_TEST_SUITE_P(Optimizers, TrainStep,
                         ::testing::Values(OptimizerCase{"sgd", "sgd", 0, 0, false},
                                           OptimizerCase{"momentum", "sgd", 0.9, 0, false},
                                           OptimizerCase{"nesterov_weight_decay", "sgd", 0.9, 5e-3, true},
                                           OptimizerCase{"sgd_weight_decay", "sgd", 0, 1e-2, false},
                                           OptimizerCase{"rmsprop", "rmsprop", 0, 1e-3, false},
                                           OptimizerCase{"adam", "adam", 0, 1e-3, false},
                                           OptimizerCase{"adamw", "adamw", 0, 1e-2, false},
                                           OptimizerCase{"momentum_clipped", "sgd", 0.9, 0, false, 0.01}),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace nnc

namespace nnc {
namespace {

// Every example's three entry points lowered, scheduled and taken through Halide's lowering in float32 in one
// process, as `nnc build` does (Halide renames a Func created twice, so a schedule must not depend on names; the
// JIT tests lower one entry per program, in float64, with other vector widths).
class EntryPoints : public ::testing::TestWithParam<std::string> {};

TEST_P(EntryPoints, LowerAndScheduleForTheTrainer) {
  Program program = testing::compileExample(GetParam());
  for (const EntryPoint* entry : {&program.train_step, &program.grads_entry, &program.predict}) {
    LoweredEntry lowered = lowerEntry(program.graph, *entry, Halide::Float(32), hostTarget());
    Halide::Target target = lowered.target.with_feature(Halide::Target::NoRuntime);
    EXPECT_NO_THROW(lowered.pipeline().compile_to_module(lowered.arguments, entry->name, target)) << entry->name;
  }
}

INSTANTIATE_TEST_SUITE_P(Examples, EntryPoints,
                         ::testing::Values("perceptron", "xor", "logreg", "softmax_regression", "mlp",
                                           "mlp_bn_dropout", "lenet5", "cnn_bn"),
                         [](const auto& info) { return info.param; });

// LeNet-5's two convolution bias gradients (sum_to of each conv's dy) are summed by the weight gradients' register
// tiles as one more tap, in train_step and grads, where the tiles have a register to spare (AVX-512's 32); the
// ScheduleMatchesNaive and WholeModel tests check the values.
TEST(Lowering, ConvBiasGradientsSummedByWeightGradients) {
  if (vectorUnitFor(Halide::Target(hostTarget().halide), Halide::Float(32)).sumRegisters() < 26) GTEST_SKIP() << "a 5x5 kernel's 26 sums do not fit";
  Program program = testing::compileExample("lenet5");
  const Graph& g = program.graph;
  for (const EntryPoint* entry : {&program.train_step, &program.grads_entry}) {
    LoweredEntry lowered = lowerEntry(g, *entry, Halide::Float(32), hostTarget());
    ASSERT_EQ(lowered.bias_in_grad_weight.size(), 2u) << entry->name;
    for (auto [sum, grad_weight] : lowered.bias_in_grad_weight) {
      EXPECT_EQ(g.node(sum).op, Op::SumTo);
      EXPECT_EQ(g.node(grad_weight).op, Op::Conv2dGradWeight);
      EXPECT_EQ(g.node(sum).inputs[0], g.node(grad_weight).inputs[1]);
    }
  }
  EXPECT_TRUE(lowerEntry(g, program.predict, Halide::Float(32), hostTarget()).bias_in_grad_weight.empty());
}

// The schedule policy changes how an entry point runs, never what it computes: the loss and every gradient of
// each example's grads entry (the forward and backward kernels train_step runs before its elementwise update)
// under nnc's schedule equal the naive schedule's (every node at root, scalar loops) up to reassociation, at a
// batch that leaves a partial row tile (of 6) and a partial batch chunk (of 8, after a whole one). In float64
// (1e-10) and in float32, whose vectors are twice as wide and take other tile shapes and tails (the trainer's
// kernels). In float32 the reassociated sums differed by at most 2.3e-6 of the largest value (cnn_bn at batch 7,
// whose batch norm amplifies them); a schedule error (a wrong tap, a lane past the end) moves values by their own
// magnitude, far beyond the 1e-4 allowed.
class ScheduleMatchesNaive : public ::testing::TestWithParam<std::tuple<std::string, int>> {};

TEST_P(ScheduleMatchesNaive, LossAndGradients) {
  auto [example, bits] = GetParam();
  Program program = testing::compileExample(example);
  const Graph& g = program.graph;
  const int batch = 11;
  const EntryPoint& entry = program.grads_entry;
  Halide::Type float_type = Halide::Float(bits);
  double tolerance = bits == 64 ? 1e-10 : 1e-4;
  testing::JitEntry manual(g, entry, batch, {}, float_type);
  testing::JitEntry naive(g, entry, batch, {SchedulePolicy::Naive, batch}, float_type);
  int64_t classes = std::max<int64_t>(2, g.node(g.output).shape.back().extent);
  std::mt19937 rng(11);
  std::uniform_real_distribution<double> uniform(-1, 1);
  for (NodeId id : entry.arguments) {
    const Node& leaf = g.node(id);
    if (leaf.op == Op::Scalar) {
      if (leaf.dtype == DType::I32) {
        manual.setIntScalar(id, 3);
        naive.setIntScalar(id, 3);
      } else {
        manual.setScalar(id, 0.05);
        naive.setScalar(id, 0.05);
      }
    } else if (leaf.dtype == DType::I32) {
      std::vector<int32_t> labels(testing::elementCount(leaf.shape, batch));
      for (int32_t& label : labels) label = static_cast<int32_t>(rng() % classes);
      manual.setLabels(id, labels);
      naive.setLabels(id, labels);
    } else {
      std::vector<double> values(testing::elementCount(leaf.shape, batch));
      for (double& v : values) v = leaf.name.find("running_var") != std::string::npos ? 1 + uniform(rng) / 2 : uniform(rng);
      manual.set(id, values);
      naive.set(id, values);
    }
  }
  std::vector<std::vector<double>> want = naive.run(), got = manual.run();
  ASSERT_EQ(got.size(), want.size());
  for (size_t o = 0; o < got.size(); ++o) {
    double scale = 1;
    for (double v : want[o]) scale = std::max(scale, std::abs(v));
    for (size_t i = 0; i < got[o].size(); ++i)
      ASSERT_NEAR(got[o][i], want[o][i], tolerance * scale) << entry.output_names[o] << "[" << i << "]";
  }
}

INSTANTIATE_TEST_SUITE_P(Examples, ScheduleMatchesNaive,
                         ::testing::Combine(::testing::Values("xor", "logreg", "mlp", "mlp_bn_dropout", "lenet5",
                                                              "cnn_bn"),
                                            ::testing::Values(64, 32)),
                         [](const auto& info) {
                           return std::get<0>(info.param) + "_f" + std::to_string(std::get<1>(info.param));
                         });

}  // namespace
}  // namespace nnc
