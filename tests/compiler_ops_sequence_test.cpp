// The ops of sequence models and variational autoencoders: concat, slice, chunk, causal_mask, randn_like and
// kl_normal. The graphs they build, their errors, forward values against hand-written references, and each op's
// gradient inside a small model against central finite differences (float64).
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <set>

#include "compiler/compilation.h"
#include "tests/compiler_model_check.h"

namespace nnc {
namespace testing {
std::set<std::string> sequenceTestedOps();  // used by OpTable.EveryOpIsCovered (compiler_ops_test.cpp)
}  // namespace testing

namespace {

using testing::compileModelSource;
using testing::bindingNode;
using testing::diagnostics;
using testing::expectError;
using testing::modelAround;
using testing::runOutputs;

// The binding `h` of modelAround(shape, op) at random x.
std::vector<double> valuesOf(const std::string& shape, const std::string& op, int batch, std::vector<double>& x) {
  Program p = compileModelSource("m.nn", modelAround(shape, op));
  std::mt19937_64 rng(3);
  testing::ModelValues values = testing::randomModelValues(p, batch, rng);
  x = values.x;
  return runOutputs(p, {bindingNode(p.graph, "h")}, values, batch)[0];
}

void expectGradients(const std::string& source, int samples = 48) {
  Program p = compileModelSource("m.nn", source);
  std::mt19937_64 rng(11);
  testing::ModelValues values = testing::randomModelValues(p, 3, rng, 0.5);
  testing::expectGradientsMatchFiniteDifferences(p, 3, values, rng, samples);
}

// ---- concat ------------------------------------------------------------------------------------------------

TEST(Concat, JoinsAlongTheAxisLeftToRight) {
  // x [B, 2, 6]; parts cut by slices and joined again in another order along the last axis (-1).
  std::vector<double> x;
  std::vector<double> h = valuesOf("2, 6", "concat(slice(x, 2, 4, 6), slice(x, 2, 0, 1), slice(x, -1, 1, 4), axis = -1)", 2, x);
  ASSERT_EQ(h.size(), x.size());
  const int order[6] = {4, 5, 0, 1, 2, 3};
  for (size_t row = 0; row < 4; ++row)
    for (int j = 0; j < 6; ++j) EXPECT_EQ(h[row * 6 + j], x[row * 6 + order[j]]) << row << " " << j;
  // Along a middle axis: x [B, 2, 3] joined with itself along axis 1 -> [B, 4, 3].
  h = valuesOf("2, 3", "concat(x, x * 2, axis = 1)", 2, x);
  ASSERT_EQ(h.size(), 2 * x.size());
  for (size_t b = 0; b < 2; ++b)
    for (size_t i = 0; i < 4; ++i)
      for (size_t j = 0; j < 3; ++j)
        EXPECT_EQ(h[(b * 4 + i) * 3 + j], x[(b * 2 + i % 2) * 3 + j] * (i < 2 ? 1 : 2)) << b << i << j;
}

TEST(Concat, BuildsBinaryConcatsWithTheSummedAxis) {
  auto c = compileFrontEnd(dsl::SourceFile("m.nn", modelAround("2, 3", "concat(x, x, tanh(x), axis = 2)")));
  ASSERT_EQ(c->diags->render(), "");
  const Node& h = c->graph->node(bindingNode(*c->graph, "h"));
  EXPECT_EQ(h.op, Op::Concat);
  EXPECT_EQ(shapeToString(h.shape), "[B, 2, 9]");
  EXPECT_EQ(shapeToString(c->graph->node(h.inputs[0]).shape), "[B, 2, 6]");
  EXPECT_EQ(h.attrs.axes, (std::vector<int64_t>{2}));
}

TEST(Concat, ErrorsNameTheProblem) {
  expectError("2, 3", "concat(x, reshape(x, 3, 2), axis = 1)",
              "`concat` along axis 1 needs tensors that agree on every other axis, got [B, 2, 3] and [B, 3, 2]");
  expectError("2, 3", "concat(x, x, axis = 0)", "`concat` along axis 0 of [B, 2, 3] and [B, 2, 3]: the axis must have a fixed size");
  expectError("2, 3", "concat(x, x, axis = 3)", "`axis` of `concat` must be an integer axis in [-3, 3)");
  expectError("2, 3", "concat(x, x)", "`concat` needs its axis by keyword");
  expectError("2, 3", "concat(x, axis = 1)", "`concat` takes two or more tensors and the axis by keyword");
  expectError("2, 3", "concat(x, x, 1)", "`concat` joins tensors; this is a number (the axis goes by keyword");
  expectError("2, 3", "concat(x, x, dim = 1)", "`concat` takes tensors and one keyword, `axis`");
}

TEST(Concat, GradientMatchesFiniteDifferences) {
  // Three parts along the features, then two along a middle axis of a rank-3 tensor.
  expectGradients(R"(model m(x: f32[B, 4], y: i32[B]) {
    param A: f32[4, 3] = xavier_uniform()
    param C: f32[4, 2] = xavier_uniform()
    param D: f32[4, 4] = xavier_uniform()
    a = x @ A
    c = tanh(x @ C)
    wide = concat(a, c, a * slice(c, 1, 0, 1), axis = 1)
    tall = concat(reshape(wide, 2, 4), reshape(tanh(x @ D), 1, 4), axis = -2)
    logits = linear(flatten(tall), 3)
    loss = cross_entropy(logits, y)
    return logits
}
)");
}

// ---- slice and chunk ---------------------------------------------------------------------------------------

TEST(Slice, PythonRangesWithNegativeIndices) {
  std::vector<double> x;
  struct Case {
    const char* op;
    int start, end;  // along the last axis of x [B, 2, 5]
  };
  for (Case c : {Case{"slice(x, 2, 1, 4)", 1, 4}, Case{"slice(x, -1, -3, 5)", 2, 5}, Case{"slice(x, 2, 0, -1)", 0, 4},
                 Case{"slice(x, axis = 2, start = -5, end = 1)", 0, 1}, Case{"chunk(x, -1, 5, 3)", 3, 4}}) {
    std::vector<double> h = valuesOf("2, 5", c.op, 2, x);
    int width = c.end - c.start;
    ASSERT_EQ(h.size(), 4u * width) << c.op;
    for (int row = 0; row < 4; ++row)
      for (int j = 0; j < width; ++j) EXPECT_EQ(h[row * width + j], x[row * 5 + c.start + j]) << c.op;
  }
  // Along axis 1 of x [B, 4, 2]: chunk 1 of 2 is rows 2 and 3 of each example.
  std::vector<double> h = valuesOf("4, 2", "chunk(x, 1, 2, 1)", 2, x);
  ASSERT_EQ(h.size(), 8u);
  for (int b = 0; b < 2; ++b)
    for (int j = 0; j < 4; ++j) EXPECT_EQ(h[b * 4 + j], x[b * 8 + 4 + j]);
}

TEST(Slice, ErrorsNameTheProblem) {
  expectError("2, 5", "slice(x, 2, 3, 3)", "`slice` of entries [3, 3) along axis 2 is empty");
  expectError("2, 5", "slice(x, 2, -1, 2)", "`slice` of entries [4, 2) along axis 2 is empty");
  expectError("2, 5", "slice(x, 2, 5, 6)", "`start` of `slice` must be in [-5, 5) for axis 2 of size 5, got 5");
  expectError("2, 5", "slice(x, 2, -6, 2)", "`start` of `slice` must be in [-5, 5) for axis 2 of size 5, got -6");
  expectError("2, 5", "slice(x, 2, 0, 6)", "`end` of `slice` must be in [-5, 5] for axis 2 of size 5, got 6");
  expectError("2, 5", "slice(x, 0, 0, 1)", "`slice` along axis 0 of a tensor [B, 2, 5]: the axis must have a fixed size");
  expectError("2, 5", "slice(x, 3, 0, 1)", "`axis` of `slice` must be an integer axis in [-3, 3)");
  expectError("2, 5", "slice(x, 1, 0.5, 1)", "`start` of `slice` must be an integer");
  expectError("2, 5", "slice(x, 1, 0)", "`slice` needs its argument `end`");
  expectError("2, 5", "slice(x, 1, 0, 1, stop = 2)", "unknown argument `stop`");
  expectError("2, 6", "chunk(x, 2, 4, 0)", "`chunk` cuts axis 2 of size 6 into `n` equal chunks; 4 does not divide 6");
  expectError("2, 6", "chunk(x, 2, 3, 3)", "`i` of `chunk` picks one of 3 chunks: it must be in [0, 3), got 3");
}

TEST(Slice, GradientIsTheAdjointPaddedWithZeros) {
  // Slices at the start, in the middle and at the end of an axis, so the zero padding is before, on both sides and
  // after; every element of P is sampled (it has 24).
  expectGradients(R"(model m(x: f32[B, 4], y: i32[B]) {
    param P: f32[4, 6] = xavier_uniform()
    h = reshape(x @ P, 2, 3)
    first = slice(h, 2, 0, 1)
    middle = slice(h, -1, 1, 2)
    last = chunk(tanh(x @ P), 1, 3, 2)
    logits = linear(concat(flatten(first * 3 + middle), last, axis = 1), 3)
    loss = cross_entropy(logits, y)
    return logits
}
)");
}

// ---- causal_mask -------------------------------------------------------------------------------------------

TEST(CausalMask, ZeroOnAndBelowTheDiagonalLargeNegativeAbove) {
  auto c = compileFrontEnd(dsl::SourceFile("m.nn", modelAround("4, 4", "x + causal_mask(4)")));
  ASSERT_EQ(c->diags->render(), "");
  const Graph& g = *c->graph;
  NodeId mask = g.node(bindingNode(g, "h")).inputs[1];
  EXPECT_EQ(g.node(mask).op, Op::CausalMask);
  EXPECT_EQ(shapeToString(g.node(mask).shape), "[4, 4]");
  for (Halide::Type type : {Halide::Float(64), Halide::Float(32)}) {
    EntryPoint entry{"mask", {}, {mask}, {"mask"}, {}};
    std::vector<double> values = testing::JitEntry(g, entry, 1, {}, type).run()[0];
    ASSERT_EQ(values.size(), 16u);
    for (int row = 0; row < 4; ++row)
      for (int col = 0; col < 4; ++col)
        EXPECT_EQ(values[row * 4 + col], col <= row ? 0 : -1e9) << row << " " << col << " " << type;
  }
}

// softmax(s + causal_mask(T)) row r is the softmax of s[r, 0..r], exactly 0 beyond, in float64 and float32 (the
// trainers' type), never NaN. (With -inf above the diagonal, as PyTorch's mask, this failed: the fast-math code
// Halide generates assumes finite values and computed the unmasked softmax.)
TEST(CausalMask, MaskedSoftmaxIsTheSoftmaxOfEachPrefix) {
  Program p = compileModelSource("m.nn", modelAround("4, 4", "softmax(x * 30 + causal_mask(4))"));
  std::mt19937_64 rng(5);
  testing::ModelValues values = testing::randomModelValues(p, 2, rng);
  for (Halide::Type type : {Halide::Float(64), Halide::Float(32)}) {
    std::vector<std::vector<double>> out =
        runOutputs(p, {bindingNode(p.graph, "h"), p.graph.output}, values, 2, 0, type);
    for (int r = 0; r < 8; ++r) {
      int row = r % 4;
      double max = -INFINITY, sum = 0;
      for (int c = 0; c <= row; ++c) max = std::max(max, 30 * values.x[r * 4 + c]);
      for (int c = 0; c <= row; ++c) sum += std::exp(30 * values.x[r * 4 + c] - max);
      for (int c = 0; c < 4; ++c) {
        double expected = c <= row ? std::exp(30 * values.x[r * 4 + c] - max) / sum : 0;
        EXPECT_NEAR(out[0][r * 4 + c], expected, type.bits() == 64 ? 1e-14 : 1e-5) << r << " " << c << " " << type;
        if (c > row) {
          EXPECT_EQ(out[0][r * 4 + c], 0) << "masked entries are exactly 0";
        }
      }
    }
    for (double logit : out[1]) EXPECT_TRUE(std::isfinite(logit));
  }
}

// Causal self-attention over 4 tokens, `softmax(q @ transpose(k) / sqrt(d) + causal_mask(T))`: the gradient of
// every parameter against central differences, and in float32 every gradient finite.
TEST(CausalMask, CausalAttentionGradientMatchesFiniteDifferences) {
  std::string source = R"(model attention(x: f32[B, 24], y: i32[B]) {
    param Wq: f32[6, 4] = xavier_uniform()
    param Wk: f32[6, 4] = xavier_uniform()
    param Wv: f32[6, 4] = xavier_uniform()
    tokens = reshape(x, 4, 6)
    scores = (tokens @ Wq) @ transpose(tokens @ Wk) / sqrt(4)
    attended = softmax(scores + causal_mask(4)) @ (tokens @ Wv)
    logits = linear(flatten(attended), 3)
    loss = cross_entropy(logits, y)
    return logits
}
)";
  expectGradients(source, 24);
  Program p = compileModelSource("attention.nn", source);
  std::mt19937_64 rng(8);
  testing::ModelValues values = testing::randomModelValues(p, 3, rng, 0.5);
  testing::JitEntry jit(p.graph, p.grads_entry, 3, {}, Halide::Float(32));
  testing::setModelValues(jit, p, p.grads_entry, values);
  for (const std::vector<double>& out : jit.run())
    for (double v : out) EXPECT_TRUE(std::isfinite(v));
}

TEST(CausalMask, SizeMustBeAPositiveInteger) {
  expectError("4, 4", "x + causal_mask(0)", "the size `T` of `causal_mask` must be a positive integer");
  expectError("4, 4", "x + causal_mask(2.5)", "the size `T` of `causal_mask` must be a positive integer");
  expectError("4, 4", "x + causal_mask(x)", "the size `T` of `causal_mask` must be a positive integer");
  expectError("4, 4", "x + causal_mask(50000)", "`causal_mask(50000)` would have 50000^2 elements");
  expectError("4, 4", "x + causal_mask(3)", "cannot broadcast [B, 4, 4] and [3, 3]");
}

// ---- randn_like --------------------------------------------------------------------------------------------

// The samples' definition (compiler/lower/lower.cpp), written out: Box-Muller on the lowbias32 hashes of 2i and
// 2i + 1 with the salted seed.
uint32_t mix(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352du;
  x ^= x >> 15;
  x *= 0x846ca68bu;
  return x ^ (x >> 16);
}
double referenceNormal(uint32_t index, int32_t seed, uint32_t site) {
  uint32_t salted = mix(static_cast<uint32_t>(seed) + site * 0x9E3779B9u);
  double u1 = ((mix((2 * index) ^ salted) >> 8) + 0.5) / 16777216.0;
  double u2 = (mix((2 * index + 1) ^ salted) >> 8) / 16777216.0;
  return std::sqrt(-2 * std::log(u1)) * std::cos(2 * M_PI * u2);
}

TEST(RandnLike, StandardNormalSamplesFollowSeedSiteAndGlobalRow) {
  constexpr int kBatch = 64, kWidth = 500;
  Program p = compileModelSource("randn.nn", modelAround(std::to_string(kWidth), "x + randn_like(x) + 0 * randn_like(x)"));
  const Graph& g = p.graph;
  std::mt19937_64 rng(1);
  testing::ModelValues values = testing::randomModelValues(p, kBatch, rng);
  NodeId h = bindingNode(g, "h");
  std::vector<double> z = runOutputs(p, {h}, values, kBatch)[0];
  double sum = 0, squares = 0;
  for (size_t i = 0; i < z.size(); ++i) {
    z[i] -= values.x[i];
    ASSERT_NEAR(z[i], referenceNormal(static_cast<uint32_t>(i), values.dropout_seed, 0), 1e-12) << i;
    sum += z[i];
    squares += z[i] * z[i];
  }
  // 32,000 samples: the mean's standard error is 0.0056, the variance's 0.0079; five of them either way.
  double n = static_cast<double>(z.size()), mean = sum / n;
  EXPECT_NEAR(mean, 0, 5 * 0.0056);
  EXPECT_NEAR(squares / n - mean * mean, 1, 5 * 0.0079);
  // The second site draws its own samples, not the first's.
  Program second = compileModelSource("randn.nn", modelAround(std::to_string(kWidth), "0 * randn_like(x) + randn_like(x)"));
  std::vector<double> other = runOutputs(second, {bindingNode(second.graph, "h")}, values, kBatch)[0];
  EXPECT_NEAR(other[7], referenceNormal(7, values.dropout_seed, 1), 1e-12);
  EXPECT_NE(other[7], z[7]);
  // The same seed reproduces them; another seed (the next step's) draws others.
  std::vector<double> again = runOutputs(p, {h}, values, kBatch)[0];
  for (size_t i = 0; i < z.size(); ++i) ASSERT_EQ(again[i] - values.x[i], z[i]);
  values.dropout_seed += 1;
  std::vector<double> next = runOutputs(p, {h}, values, kBatch)[0];
  values.dropout_seed -= 1;
  size_t same = 0;
  for (size_t i = 0; i < z.size(); ++i) same += next[i] - values.x[i] == z[i];
  EXPECT_EQ(same, 0u);
  // A batch starting at global row 5 (a data-parallel rank's share) gets rows 5.. of the samples.
  std::vector<double> shifted = runOutputs(p, {h}, values, kBatch, 5)[0];
  for (size_t i = 0; i + 5 * kWidth < z.size(); ++i)
    ASSERT_NEAR(shifted[i] - values.x[i], z[i + 5 * kWidth], 1e-12) << i;
}

TEST(RandnLike, EvalModeIsTheMean) {
  Program p = compileModelSource("randn.nn", modelAround("5", "x + 3 * randn_like(x)"));
  const Graph& g = p.graph;
  std::mt19937_64 rng(2);
  testing::ModelValues values = testing::randomModelValues(p, 4, rng);
  std::vector<double> eval = runOutputs(p, {bindingNode(g, "h", true)}, values, 4)[0];
  EXPECT_EQ(eval, values.x);
  std::vector<double> train = runOutputs(p, {bindingNode(g, "h")}, values, 4)[0];
  EXPECT_NE(train, values.x);
  EXPECT_EQ(p.predict.arguments.size(), 1 + g.params.size()) << "predict takes no seed";
}

TEST(RandnLike, TakesOneTensor) {
  expectError("5", "randn_like(x, 2)", "`randn_like` takes 1 argument: `randn_like(x)`");
  expectError("5", "randn_like(std = 2)", "`randn_like` takes 1 argument: `randn_like(x)`");
}

// ---- kl_normal ---------------------------------------------------------------------------------------------

TEST(KlNormal, SumsOverLatentAxesAndAveragesOverTheBatch) {
  // mu and logvar [B, 2, 3] cut from x [B, 2, 6].
  Program p = compileModelSource("kl.nn", modelAround("2, 6", "x * 0 + kl_normal(chunk(x, 2, 2, 0), chunk(x, 2, 2, 1))"));
  std::mt19937_64 rng(3);
  testing::ModelValues values = testing::randomModelValues(p, 3, rng);
  std::vector<double> h = runOutputs(p, {bindingNode(p.graph, "h")}, values, 3)[0];
  double total = 0;
  for (int b = 0; b < 3; ++b)
    for (int i = 0; i < 2; ++i)
      for (int j = 0; j < 3; ++j) {
        double mu = values.x[(b * 2 + i) * 6 + j], logvar = values.x[(b * 2 + i) * 6 + 3 + j];
        total += -0.5 * (1 + logvar - mu * mu - std::exp(logvar));
      }
  EXPECT_NEAR(h[0], total / 3, 1e-14);
}

TEST(KlNormal, ShapesMustMatch) {
  std::string rendered = diagnostics(R"(model m(x: f32[B, 6], y: i32[B]) {
    mu = slice(x, 1, 0, 3)
    logvar = slice(x, 1, 2, 6)
    logits = linear(x, 3)
    loss = cross_entropy(logits, y) + kl_normal(mu, logvar)
    return logits
}
)");
  EXPECT_NE(rendered.find("error: `kl_normal` needs `mu` and `logvar` of one shape [batch, ...], got [B, 3] and [B, 4]"),
            std::string::npos)
      << rendered;
  EXPECT_NE(rendered.find("note: `logvar` declared here with shape [B, 4]"), std::string::npos) << rendered;
  expectError("6", "x + kl_normal(x)", "`kl_normal` takes 2 arguments");
}

// A variational autoencoder's loss as PyTorch's examples write it: the reparameterized sample
// mu + exp(logvar / 2) * randn_like(mu), a decoder, and KL(q || N(0, I)). The noise is fixed by the seed, so the loss is
// a smooth function of the parameters and central differences apply.
TEST(KlNormal, VaeGradientMatchesFiniteDifferences) {
  expectGradients(R"(model vae(x: f32[B, 6], y: i32[B]) {
    enc = linear(x, 8)
    mu = slice(enc, 1, 0, 4)
    logvar = slice(enc, 1, 4, 8)
    z = mu + exp(0.5 * logvar) * randn_like(mu)
    recon = linear(tanh(z), 6)
    logits = linear(z, 3)
    loss = cross_entropy(logits, y) + mse(recon, x) + kl_normal(mu, logvar)
    return logits
}
)");
}

}  // namespace

std::set<std::string> testing::sequenceTestedOps() {
  std::set<std::string> ops;
  // The ops of the models the gradient tests above check (concat, slice, causal_mask, randn, kl_normal's parts).
  for (const char* op : {"concat(x, x, axis = 1)", "slice(x, 1, 0, 1)", "x + causal_mask(2)", "randn_like(x)",
                         "x * 0 + kl_normal(x, x)"}) {
    Program p = compileModelSource("ops.nn", modelAround("2, 2", op));
    for (const Node& node : p.graph.nodes) ops.insert(opInfo(node.op).name);
  }
  return ops;
}

}  // namespace nnc
