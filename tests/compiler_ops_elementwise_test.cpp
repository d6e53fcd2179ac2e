// The elementwise math and activation ops: forward values against hand-computed ones (PyTorch's conventions at
// the edges: huge inputs, the softplus threshold, log of 0), the finite-difference gradient cases (the
// OpGradient fixture of compiler_ops_test.cpp), the DSL calls with their attribute checks, and a model that uses
// several activations building its forward and backward graphs.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <set>

#include "compiler/autodiff/autodiff.h"
#include "compiler/compilation.h"
#include "compiler/graph/graph_printer.h"
#include "compiler/graph/program.h"
#include "tests/compiler_ops_util.h"

namespace nnc {
namespace {

using testing::B;
using testing::D;
using testing::evaluate;
using testing::GradCase;
using testing::leaf;
using testing::OpGradient;

// Evaluates `op` (with `attrs`) on the vector `x`.
std::vector<double> unary(Op op, const std::vector<double>& x, Attrs attrs = {}) {
  Graph g;
  NodeId a = leaf(g, Op::Param, {D(static_cast<int64_t>(x.size()))}, DType::F32, "a");
  return evaluate(g, g.add(op, {a}, attrs), {{a, x}});
}

void expectNear(const std::vector<double>& got, const std::vector<double>& want, double tolerance = 1e-15) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], tolerance) << "element " << i;
}

Attrs alphaBeta(double alpha, double beta = 0) {
  Attrs attrs;
  attrs.alpha = alpha;
  attrs.beta = beta;
  return attrs;
}

TEST(ElementwiseForward, ExpLogSqrtSquare) {
  expectNear(unary(Op::Exp, {0, 1, -1}), {1, 2.718281828459045, 0.36787944117144233});
  std::vector<double> log = unary(Op::Log, {1, 2, 0, -1});
  EXPECT_EQ(log[0], 0);
  EXPECT_NEAR(log[1], 0.6931471805599453, 1e-15);
  EXPECT_EQ(log[2], -std::numeric_limits<double>::infinity());  // as PyTorch: log(0) = -inf, log(-1) = nan
  EXPECT_TRUE(std::isnan(log[3]));
  expectNear(unary(Op::Sqrt, {0, 4, 2.25}), {0, 2, 1.5});
  expectNear(unary(Op::Square, {-3, 0.5}), {9, 0.25});
}

TEST(ElementwiseForward, PowWithIntegerAndFractionalExponents) {
  expectNear(unary(Op::Pow, {-2, 3}, alphaBeta(3)), {-8, 27});      // odd integer power keeps the sign
  expectNear(unary(Op::Pow, {-2, 4}, alphaBeta(-2)), {0.25, 0.0625});
  expectNear(unary(Op::Pow, {4, 2.25}, alphaBeta(0.5)), {2, 1.5});
  expectNear(unary(Op::Pow, {-2, 0}, alphaBeta(0)), {1, 1});
  EXPECT_TRUE(std::isnan(unary(Op::Pow, {-4}, alphaBeta(0.5))[0]));  // as PyTorch
}

TEST(ElementwiseForward, AbsSignIdentityStopGradient) {
  expectNear(unary(Op::Abs, {-2, 0, 3}), {2, 0, 3});
  expectNear(unary(Op::Sign, {-2, 0, 3}), {-1, 0, 1});
  expectNear(unary(Op::Identity, {-2, 0, 3}), {-2, 0, 3});
  expectNear(unary(Op::StopGradient, {-2, 0, 3}), {-2, 0, 3});
}

TEST(ElementwiseForward, MinimumMaximumAndTheirMaskBroadcast) {
  Graph g;
  NodeId a = leaf(g, Op::Param, {D(2), D(2)}, DType::F32, "a");
  NodeId b = leaf(g, Op::Param, {D(2)}, DType::F32, "b");
  std::map<NodeId, std::vector<double>> values = {{a, {1, 5, 3, 2}}, {b, {3, 2}}};
  EXPECT_EQ(evaluate(g, g.add(Op::Minimum, {a, b}), values), (std::vector<double>{1, 2, 3, 2}));
  EXPECT_EQ(evaluate(g, g.add(Op::Maximum, {a, b}), values), (std::vector<double>{3, 5, 3, 2}));
  EXPECT_EQ(evaluate(g, g.add(Op::MaxMask, {a, b}), values), (std::vector<double>{0, 1, 0.5, 0.5}));
}

TEST(ElementwiseForward, ClampAndInRangeIncludeTheBounds) {
  expectNear(unary(Op::Clamp, {-2, -0.5, 0.25, 0.5, 7}, alphaBeta(-0.5, 0.5)), {-0.5, -0.5, 0.25, 0.5, 0.5});
  expectNear(unary(Op::InRange, {-2, -0.5, 0.25, 0.5, 7}, alphaBeta(-0.5, 0.5)), {0, 1, 1, 1, 0});
}

TEST(ElementwiseForward, SigmoidAndTanhSaturateWithoutOverflow) {
  expectNear(unary(Op::Sigmoid, {-1000, -1, 0, 1, 1000}), {0, 0.2689414213699951, 0.5, 0.7310585786300049, 1});
  EXPECT_GT(unary(Op::Sigmoid, {-700})[0], 0);  // e^-700 / (1 + e^-700), not 1 / (1 + inf)
  expectNear(unary(Op::Tanh, {-1000, -1, 0, 1, 1000}), {-1, -0.7615941559557649, 0, 0.7615941559557649, 1});
}

TEST(ElementwiseForward, LeakyReluAndElu) {
  expectNear(unary(Op::LeakyRelu, {-2, 0, 3}, alphaBeta(0.01)), {-0.02, 0, 3});
  expectNear(unary(Op::Elu, {-1, 0, 3}, alphaBeta(1)), {-0.6321205588285577, 0, 3});
  expectNear(unary(Op::Elu, {-1000, 2}, alphaBeta(0.5)), {-0.5, 2});
}

TEST(ElementwiseForward, GeluExactAndTanhApproximation) {
  std::vector<double> x = {-3, -1, 0, 1, 2};
  // x Phi(x), and PyTorch's approximate="tanh" values.
  expectNear(unary(Op::Gelu, x), {-0.00404969409489031, -0.15865525393145707, 0, 0.8413447460685429,
                                  1.9544997361036416});
  Attrs tanh_form;
  tanh_form.approximate = true;
  expectNear(unary(Op::Gelu, x, tanh_form), {-0.0036373920817729943, -0.15880800939172324, 0, 0.8411919906082768,
                                             1.954597694087775});
  // d/dx x Phi(x) = Phi(x) + x phi(x)
  expectNear(unary(Op::GeluGrad, x), {-0.011945647204183918, -0.08331547058768629, 0.5, 1.0833154705876864,
                                      1.085231801078197});
}

TEST(ElementwiseForward, SoftplusIsStableAndHasPyTorchsThreshold) {
  std::vector<double> got = unary(Op::Softplus, {-30, -1, 0, 1, 25, 1000});
  EXPECT_NEAR(got[0] / 9.357622968839737e-14, 1, 1e-12);  // log1p(e^-30), not 0
  expectNear({got[1], got[2], got[3]}, {0.31326168751822286, 0.6931471805599453, 1.3132616875182228});
  EXPECT_EQ(got[4], 25);  // beyond the threshold 20: x itself
  EXPECT_EQ(got[5], 1000);
}

// erf is the C library's in float64 (and Halide's polynomial in float32: Float32AgreesWithFloat64).
TEST(ElementwiseForward, ErfIsTheCLibrarys) {
  std::vector<double> x = {-6, -3, -1, -1e-3, 0, 1e-3, 0.5, 3, 6};
  std::vector<double> want;
  for (double v : x) want.push_back(std::erf(v));
  expectNear(unary(Op::Erf, x), want);
}

// Finite differences see through stop_gradient, so its (zero) gradient is checked here rather than in a GradCase.
TEST(ElementwiseForward, TheGradientOfStopGradientIsZero) {
  Graph g;
  NodeId a = leaf(g, Op::Param, {D(3)}, DType::F32, "a");
  NodeId out = g.add(Op::Mul, {g.add(Op::StopGradient, {a}), a});  // d/da (c * a) = c, with c = a held constant
  Attrs to_scalar;
  g.loss = g.add(Op::SumTo, {out}, to_scalar);
  std::vector<NodeId> grads = differentiate(g, g.loss, {a});
  EXPECT_EQ(evaluate(g, grads[0], {{a, {1, -2, 3}}}), (std::vector<double>{1, -2, 3}));
}

// Trainers compute in float32, where erf is Halide's own polynomial: each op agrees with its float64 value.
TEST(ElementwiseForward, Float32AgreesWithFloat64) {
  Graph g;
  NodeId a = leaf(g, Op::Param, {D(9)}, DType::F32, "a");
  std::vector<double> x = {-30, -5, -1, -0.25, 0, 0.5, 2, 10, 25};
  Attrs tanh_form;
  tanh_form.approximate = true;
  std::vector<NodeId> outputs = {g.add(Op::Gelu, {a}), g.add(Op::Gelu, {a}, tanh_form),
                                 g.add(Op::GeluGrad, {a}), g.add(Op::GeluGrad, {a}, tanh_form),
                                 g.add(Op::Sigmoid, {a}), g.add(Op::Softplus, {a}), g.add(Op::Tanh, {a}),
                                 g.add(Op::Erf, {a}),
                                 g.add(Op::Elu, {a}, alphaBeta(1)), g.add(Op::Pow, {g.add(Op::Abs, {a})}, alphaBeta(1.5))};
  EntryPoint entry{"f32", {a}, outputs, {}};
  for (size_t i = 0; i < outputs.size(); ++i) entry.output_names.push_back("out" + std::to_string(i));
  LoweredEntry lowered = lowerEntry(g, entry, Halide::Float(32), hostTarget());
  Halide::Buffer<float> input(static_cast<int>(x.size()));
  for (size_t i = 0; i < x.size(); ++i) input(static_cast<int>(i)) = static_cast<float>(x[i]);
  lowered.images.at(a).set(input);
  std::vector<Halide::Buffer<>> buffers;
  for (size_t i = 0; i < outputs.size(); ++i) buffers.push_back(Halide::Buffer<float>(static_cast<int>(x.size())));
  Halide::Realization realization(buffers);
  lowered.pipeline().realize(realization, lowered.target);
  for (size_t o = 0; o < outputs.size(); ++o) {
    std::vector<double> want = evaluate(g, outputs[o], {{a, x}});
    Halide::Buffer<float> got(buffers[o]);
    for (size_t i = 0; i < x.size(); ++i)
      EXPECT_NEAR(got(static_cast<int>(i)), want[i], 1e-6 * std::max(1.0, std::abs(want[i])))
          << opInfo(g.node(outputs[o]).op).name << " output " << o << " at x = " << x[i];
  }
}

// ---- gradients against central finite differences (compiler_ops_test.cpp runs them) -------------------

NodeId unaryNode(Graph& g, Op op, NodeId x, Attrs attrs = {}) { return g.add(op, {x}, attrs); }

template <Op op>
NodeId plain(Graph& g, const std::vector<NodeId>& p, NodeId) {
  return g.add(op, {p[0]});
}

// erf(scale a + shift): the inputs U(-1, 1) moved near 0, or into a tail around +-3 (derivative 5e-6 to 2e-3).
NodeId erfAt(Graph& g, NodeId a, double scale, double shift) {
  return g.add(Op::Erf, {g.add(Op::Add, {g.add(Op::Mul, {a, g.fill(scale, {})}), g.fill(shift, {})})});
}

Attrs approximateTanh() {
  Attrs attrs;
  attrs.approximate = true;
  return attrs;
}

const GradCase kElementwiseGradCases[] = {
    {"exp", {{B(), D(4)}}, plain<Op::Exp>},
    {"log", {{B(), D(4)}}, plain<Op::Log>, false, true},
    {"sqrt", {{B(), D(4)}}, plain<Op::Sqrt>, false, true},
    {"square", {{B(), D(4)}}, plain<Op::Square>},
    {"pow_cube", {{B(), D(4)}}, [](Graph& g, auto& p, NodeId) { return unaryNode(g, Op::Pow, p[0], alphaBeta(3)); }},
    {"pow_fractional", {{B(), D(4)}},
     [](Graph& g, auto& p, NodeId) { return unaryNode(g, Op::Pow, p[0], alphaBeta(2.5)); }, false, true},
    {"pow_negative", {{B(), D(4)}},
     [](Graph& g, auto& p, NodeId) { return unaryNode(g, Op::Pow, p[0], alphaBeta(-2)); }, true},
    {"abs", {{B(), D(6)}}, plain<Op::Abs>, true},
    {"minimum_broadcast", {{B(), D(4)}, {D(4)}},
     [](Graph& g, auto& p, NodeId) { return g.add(Op::Minimum, {p[0], p[1]}); }},
    {"maximum_broadcast", {{D(4)}, {B(), D(4)}},
     [](Graph& g, auto& p, NodeId) { return g.add(Op::Maximum, {p[0], p[1]}); }},
    {"clamp", {{B(), D(8)}},
     [](Graph& g, auto& p, NodeId) { return unaryNode(g, Op::Clamp, p[0], alphaBeta(-0.5, 0.5)); }, false, false,
     {-0.5, 0.5}},
    {"identity", {{B(), D(4)}}, plain<Op::Identity>},
    {"sigmoid", {{B(), D(4)}}, plain<Op::Sigmoid>},
    {"tanh", {{B(), D(4)}}, plain<Op::Tanh>},
    {"erf", {{B(), D(6)}}, plain<Op::Erf>},
    {"erf_near_0", {{B(), D(6)}}, [](Graph& g, auto& p, NodeId) { return erfAt(g, p[0], 0.01, 0); }},
    {"erf_near_3", {{B(), D(6)}}, [](Graph& g, auto& p, NodeId) { return erfAt(g, p[0], 0.5, 3); }},
    {"erf_near_minus_3", {{B(), D(6)}}, [](Graph& g, auto& p, NodeId) { return erfAt(g, p[0], 0.5, -3); }},
    {"leaky_relu", {{B(), D(6)}},
     [](Graph& g, auto& p, NodeId) { return unaryNode(g, Op::LeakyRelu, p[0], alphaBeta(0.2)); }, true},
    {"elu", {{B(), D(6)}}, [](Graph& g, auto& p, NodeId) { return unaryNode(g, Op::Elu, p[0], alphaBeta(1.5)); },
     true},
    {"gelu", {{B(), D(6)}}, plain<Op::Gelu>},
    {"gelu_tanh", {{B(), D(6)}}, [](Graph& g, auto& p, NodeId) { return unaryNode(g, Op::Gelu, p[0], approximateTanh()); }},
    {"softplus", {{B(), D(6)}}, plain<Op::Softplus>},
};

INSTANTIATE_TEST_SUITE_P(Elementwise, OpGradient, ::testing::ValuesIn(kElementwiseGradCases),
                         [](const auto& info) { return info.param.name; });

// ---- the DSL calls ------------------------------------------------------------------------------------

std::unique_ptr<Compilation> build(const std::string& body) {
  return compileFrontEnd(dsl::SourceFile("t.nn", "model m(x: f32[B, 4], y: i32[B]) {\n" + body +
                                                     "    logits = linear(h, 3)\n"
                                                     "    loss = cross_entropy(logits, y)\n"
                                                     "    return logits\n}\n"));
}

// The node of the binding `name`, and the op and attributes of the binding `h`.
NodeId binding(const Compilation& c, const std::string& name) {
  for (NodeId id = 0; id < static_cast<NodeId>(c.graph->nodes.size()); ++id)
    if (c.graph->node(id).name == name) return id;
  throw std::logic_error("no node " + name);
}
const Node& bound(const Compilation& c) { return c.graph->node(binding(c, "h")); }

TEST(ElementwiseCalls, AttributesByPositionKeywordOrDefault) {
  struct Case {
    const char* call;
    Op op;
    double alpha, beta;
    bool approximate;
  };
  const Case cases[] = {
      {"pow(x, 3)", Op::Pow, 3, 0, false},
      {"pow(x, p = 0.5)", Op::Pow, 0.5, 0, false},
      {"clamp(x, -2, high = 3)", Op::Clamp, -2, 3, false},
      {"hardtanh(x)", Op::Clamp, -1, 1, false},
      {"leaky_relu(x)", Op::LeakyRelu, 0.01, 0, false},
      {"leaky_relu(x, slope = 0.2)", Op::LeakyRelu, 0.2, 0, false},
      {"elu(x)", Op::Elu, 1, 0, false},
      {"elu(x, 0.5)", Op::Elu, 0.5, 0, false},
      {"gelu(x)", Op::Gelu, 0, 0, false},
      {"gelu(x, approximate = \"tanh\")", Op::Gelu, 0, 0, true},
      {"gelu(x, approximate = \"none\")", Op::Gelu, 0, 0, false},
      {"minimum(x, 0.5)", Op::Minimum, 0, 0, false},
      {"maximum(x, x)", Op::Maximum, 0, 0, false},
      {"softplus(x)", Op::Softplus, 0, 0, false},
      {"stop_gradient(x)", Op::StopGradient, 0, 0, false},
  };
  for (const Case& c : cases) {
    auto compiled = build(std::string("    h = ") + c.call + "\n");
    ASSERT_EQ(compiled->diags->render(), "") << c.call;
    const Node& h = bound(*compiled);
    EXPECT_EQ(h.op, c.op) << c.call;
    EXPECT_EQ(h.attrs.alpha, c.alpha) << c.call;
    EXPECT_EQ(h.attrs.beta, c.beta) << c.call;
    EXPECT_EQ(h.attrs.approximate, c.approximate) << c.call;
  }
}

TEST(ElementwiseCalls, EveryUnaryCallBuilds) {
  for (const char* op : {"exp", "log", "sqrt", "square", "abs", "identity", "step", "sigmoid", "tanh", "erf",
                         "softplus", "stop_gradient", "relu"}) {
    auto c = build(std::string("    h = ") + op + "(x)\n");
    ASSERT_EQ(c->diags->render(), "") << op;
    EXPECT_EQ(opInfo(bound(*c).op).name, std::string(op));
  }
}

// Exact GELU as PyTorch exports it to ONNX (and `nnc import` writes it back) has gelu's values.
TEST(ElementwiseCalls, GeluFromErfIsGelu) {
  auto c = build("    h = x * (1 + erf(x / 1.4142135623730951)) * 0.5 - gelu(x)\n");
  ASSERT_EQ(c->diags->render(), "");
  std::map<NodeId, std::vector<double>> x = {{binding(*c, "x"), {-3, -1, -0.1, 0, 0.2, 1, 2.5, 4}}};
  expectNear(evaluate(*c->graph, binding(*c, "h"), x, {}, 2), std::vector<double>(8, 0.0));
}

// The first line of the rendered diagnostics of `call` bound to `h`.
std::string firstError(const std::string& call) {
  std::string text = build("    h = " + call + "\n")->diags->render();
  return text.substr(0, text.find('\n'));
}

TEST(ElementwiseCalls, BadAttributesAndArgumentCounts) {
  EXPECT_EQ(firstError("clamp(x, 1, -1)"),
            "t.nn:2:9: error: `clamp(x, low, high)` needs low < high, got 1 and -1");
  EXPECT_EQ(firstError("clamp(x, 1)"), "t.nn:2:9: error: `clamp` needs its argument `high`");
  EXPECT_EQ(firstError("pow(x)"), "t.nn:2:9: error: `pow` needs its argument `p`");
  EXPECT_EQ(firstError("pow(x, x)"), "t.nn:2:16: error: `p` of `pow` must be a number");
  EXPECT_EQ(firstError("leaky_relu(x, slope = \"big\")"), "t.nn:2:31: error: `slope` of `leaky_relu` must be a number");
  EXPECT_EQ(firstError("leaky_relu(x, slop = 0.1)"),
            "t.nn:2:23: error: unknown argument `slop` of `leaky_relu(x, slope = 0.01)`; did you mean `slope`?");
  EXPECT_EQ(firstError("elu(x, 0.5, alpha = 2)"), "t.nn:2:21: error: argument `alpha` is given twice");
  EXPECT_EQ(firstError("elu(x, alpha = 0.5, alpha = 2)"), "t.nn:2:29: error: argument `alpha` is given twice");
  EXPECT_EQ(firstError("elu(x, 1, 2)"), "t.nn:2:9: error: `elu` takes 1 to 2 arguments: `elu(x, alpha = 1.0)`");
  EXPECT_EQ(firstError("gelu(x, approximate = \"fast\")"),
            "t.nn:2:31: error: `approximate` of `gelu` must be \"none\" or \"tanh\"");
  EXPECT_EQ(firstError("hardtanh(x, 2)"), "t.nn:2:9: error: `hardtanh` takes 1 argument: `hardtanh(x)`");
  EXPECT_EQ(firstError("minimum(x)"), "t.nn:2:9: error: `minimum` takes 2 arguments: `minimum(a, b)`");
  EXPECT_EQ(firstError("exp(x, 2)"), "t.nn:2:9: error: `exp` takes 1 argument: `exp(x)`");
  EXPECT_EQ(firstError("sigmoud(x)"), "t.nn:2:9: error: unknown op `sigmoud`; did you mean `sigmoid`?");
}

TEST(ElementwiseCalls, GraphPrinterShowsAttributes) {
  auto c = build("    h = clamp(leaky_relu(pow(gelu(x, approximate = \"tanh\"), 3), slope = 0.2), -1, 2)\n");
  ASSERT_EQ(c->diags->render(), "");
  std::string text = printForwardGraph(*c->graph);
  for (const char* part : {"gelu(%0) {approximate=tanh}", "pow(%2) {p=3}", "leaky_relu(%3) {slope=0.2}",
                           "clamp(%4) {low=-1, high=2}"})
    EXPECT_NE(text.find(part), std::string::npos) << part << " in\n" << text;
}

// A model with several activations builds its forward, backward and update graphs (AOT is tested elsewhere).
TEST(ElementwiseCalls, ModelWithSeveralActivationsBuildsItsProgram) {
  auto c = compileFrontEnd(dsl::SourceFile("acts.nn",
                                           "model acts(x: f32[B, 8], y: i32[B]) {\n"
                                           "    a = gelu(linear(x, 16), approximate = \"tanh\")\n"
                                           "    b = leaky_relu(linear(a, 16), slope = 0.1)\n"
                                           "    c = elu(linear(b, 16)) + softplus(b) * sigmoid(b) - tanh(b)\n"
                                           "    d = clamp(c, -3, 3) + hardtanh(sqrt(square(c) + 1))\n"
                                           "    e = maximum(d, stop_gradient(exp(d))) + log(pow(d, 2) + 1) - abs(d)\n"
                                           "    logits = linear(gelu(e), 4)\n"
                                           "    loss = cross_entropy(logits, y)\n"
                                           "    return logits\n"
                                           "}\n"));
  ASSERT_EQ(c->diags->render(), "");
  ASSERT_TRUE(c->graph.has_value());
  Program program = buildProgram(std::move(*c->graph), c->checked->train);
  EXPECT_EQ(program.grads.size(), 8u);
  std::set<Op> ops;
  for (const Node& node : program.graph.nodes) ops.insert(node.op);
  for (Op op : {Op::GeluGrad, Op::Sign, Op::MaxMask, Op::InRange, Op::Sigmoid}) EXPECT_TRUE(ops.count(op));
}

}  // namespace
}  // namespace nnc
