// Per-op rules of the elementwise math and activation ops: the VJP (with the calculus beside each rule) and the
// floating-point operation count. Shapes follow numpy broadcasting (elementwiseShape in op_rules.cpp); the
// Halide algorithms are in compiler/lower/lower_elementwise.cpp.
//
// Adjoints are written with graph ops; `out` is the node's own value, reused where the derivative is a function
// of it (exp, sigmoid, tanh, elu). Helper ops that are piecewise constant (sign, max_mask, in_range) have no
// gradient; gelu_grad has no second derivative yet.
#include "compiler/graph/op_rules_elementwise.h"

#include <stdexcept>

namespace nnc {

namespace {
constexpr double kTwoOverSqrtPi = 1.12837916709551257390;  // 2 / sqrt(pi)
}  // namespace

std::vector<NodeId> elementwiseVjp(Graph& g, NodeId id, NodeId grad, const std::vector<bool>& wanted) {
  const Node node = g.node(id);  // a copy: adding nodes may reallocate g.nodes
  dsl::Span span = node.span;
  auto add = [&](Op op, std::vector<NodeId> in, Attrs attrs = {}) { return g.add(op, std::move(in), attrs, {}, span); };
  auto scalar = [&](double value) { return g.fill(value, {}, span); };
  auto times_grad = [&](NodeId derivative) { return add(Op::Mul, {grad, derivative}); };
  NodeId a = node.inputs[0];
  NodeId b = node.inputs.size() > 1 ? node.inputs[1] : kNoNode;
  double alpha = node.attrs.alpha;
  switch (node.op) {
    // d exp(a) = exp(a) da
    case Op::Exp: return {times_grad(id)};
    // d log(a) = da / a
    case Op::Log: return {add(Op::Div, {grad, a})};
    // d sqrt(a) = da / (2 sqrt(a))
    case Op::Sqrt: return {add(Op::Div, {grad, add(Op::Mul, {id, scalar(2)})})};
    // d a^2 = 2 a da
    case Op::Square: return {times_grad(add(Op::Mul, {a, scalar(2)}))};
    // d a^p = p a^(p-1) da; p = 0 is constant (and a^-1 would be inf at 0)
    case Op::Pow: {
      if (alpha == 0) return {kNoNode};
      Attrs lower = node.attrs;
      lower.alpha = alpha - 1;
      return {times_grad(add(Op::Mul, {add(Op::Pow, {a}, lower), scalar(alpha)}))};
    }
    // d |a| = sign(a) da (0 at 0, as PyTorch)
    case Op::Abs: return {times_grad(add(Op::Sign, {a}))};
    // d max(a, b) = [a > b] da + [b > a] db, a tie splitting the gradient in halves (as PyTorch)
    case Op::Maximum:
      return {wanted[0] ? times_grad(add(Op::MaxMask, {a, b})) : kNoNode,
              wanted[1] ? times_grad(add(Op::MaxMask, {b, a})) : kNoNode};
    // d min(a, b) = [a < b] da + [b < a] db, ties halved
    case Op::Minimum:
      return {wanted[0] ? times_grad(add(Op::MaxMask, {b, a})) : kNoNode,
              wanted[1] ? times_grad(add(Op::MaxMask, {a, b})) : kNoNode};
    // d clamp(a, low, high) = [low <= a <= high] da (the bounds pass the gradient, as PyTorch's clamp)
    case Op::Clamp: return {times_grad(add(Op::InRange, {a}, node.attrs))};
    // d a = da
    case Op::Identity: return {grad};
    // stop_gradient(a) is a constant to autodiff
    case Op::StopGradient: return {kNoNode};
    // d s(a) = s (1 - s) da, s = sigmoid(a)
    case Op::Sigmoid: return {times_grad(add(Op::Mul, {id, add(Op::Sub, {scalar(1), id})}))};
    // d tanh(a) = (1 - tanh(a)^2) da
    case Op::Tanh: return {times_grad(add(Op::Sub, {scalar(1), add(Op::Mul, {id, id})}))};
    // d erf(a) = 2 / sqrt(pi) e^(-a^2) da
    case Op::Erf: {
      NodeId gauss = add(Op::Exp, {add(Op::Neg, {add(Op::Square, {a})})});
      return {times_grad(add(Op::Mul, {gauss, scalar(kTwoOverSqrtPi)}))};
    }
    // d leaky_relu(a) = (a > 0 ? 1 : slope) da = (step(a) (1 - slope) + slope) da
    case Op::LeakyRelu:
      return {times_grad(add(Op::Add, {add(Op::Mul, {add(Op::Step, {a}), scalar(1 - alpha)}), scalar(alpha)}))};
    // elu(a) = a > 0 ? a : alpha (e^a - 1), so d elu(a) = (a > 0 ? 1 : alpha e^a) da, and alpha e^a = elu(a) + alpha:
    // d elu(a) = (s + (1 - s) (elu(a) + alpha)) da with s = step(a)
    case Op::Elu: {
      NodeId s = add(Op::Step, {a});
      NodeId negative = add(Op::Mul, {add(Op::Sub, {scalar(1), s}), add(Op::Add, {id, scalar(alpha)})});
      return {times_grad(add(Op::Add, {s, negative}))};
    }
    // d gelu(a) = gelu'(a) da; the derivative of each form is given with its lowering (gelu_grad)
    case Op::Gelu: return {times_grad(add(Op::GeluGrad, {a}, node.attrs))};
    // d log(1 + e^a) = e^a / (1 + e^a) da = sigmoid(a) da (beyond the threshold softplus is a: sigmoid(a) = 1 to
    // within 2e-9 there)
    case Op::Softplus: return {times_grad(add(Op::Sigmoid, {a}))};
    // piecewise constant: no gradient
    case Op::Sign:
    case Op::InRange: return {kNoNode};
    case Op::MaxMask: return {kNoNode, kNoNode};
    case Op::GeluGrad: throw std::logic_error("internal error: gelu_grad has no second derivative yet");
    default: break;  // not an op of this file
  }
  throw std::logic_error(std::string("internal error: no elementwise VJP rule for ") + opInfo(node.op).name);
}

// exp, log, sqrt, tanh and erf count 1 each, like the arithmetic operations, compares and selects.
double elementwiseFlops(const Graph& g, NodeId id, int64_t batch) {
  const Node& node = g.node(id);
  double elements = static_cast<double>(elementCount(node.shape, batch));
  switch (node.op) {
    case Op::Identity:
    case Op::StopGradient: return 0;  // a copy
    case Op::Exp:
    case Op::Log:
    case Op::Sqrt:
    case Op::Square:
    case Op::Pow:  // one pow (an integer power is a few multiplies; counted 1)
    case Op::Abs:
    case Op::Minimum:
    case Op::Maximum:
    case Op::Tanh:
    case Op::Erf:
    case Op::Sign:
    case Op::MaxMask: return elements;
    case Op::Clamp:      // min and max
    case Op::InRange:    // two compares
    case Op::LeakyRelu:  // compare, multiply
      return 2 * elements;
    case Op::Elu:      // compare, exp, subtract, multiply
    case Op::Sigmoid:  // abs, exp, add, divide
      return 4 * elements;
    case Op::Softplus: return 6 * elements;  // abs, exp, add, log, max, add
    // exact: x / sqrt 2, erf, add 1, times x, times 1/2 (5). tanh form: x^3 (2), times c, add x, times k, tanh,
    // add 1, times x, times 1/2 (9).
    case Op::Gelu: return (node.attrs.approximate ? 9 : 5) * elements;
    // exact: the cdf as in gelu (4) + the pdf (x^2, times -1/2, exp, times 1/sqrt(2 pi): 4) + x pdf + cdf (2).
    // tanh form: u and tanh as in gelu (6), 1 + t, 1 - t^2 (2), 1 + 3 c x^2 (3), the products and sum (5).
    case Op::GeluGrad: return (node.attrs.approximate ? 17 : 10) * elements;
    default: break;
  }
  throw std::logic_error(std::string("internal error: no elementwise FLOP rule for ") + opInfo(node.op).name);
}

}  // namespace nnc
