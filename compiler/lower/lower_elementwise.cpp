// Lowering of the elementwise math and activation ops to Halide expressions: THE ALGORITHM only (schedule.cpp
// inlines an elementwise op into its single consumer, or computes it at root). Each op's formula is written for
// numerical stability in float32; the gradient checks run the same expressions in float64.
#include <cmath>
#include <stdexcept>

#include "compiler/lower/lower.h"

namespace nnc {

using Halide::Expr;

namespace {

// erf: Halide's own polynomial handles only float32; float64 (the gradient checks) calls the C library's erf.
Expr erfOf(const LoweringContext& ctx, Expr x) {
  if (ctx.floatType() == Halide::Float(32)) return Halide::erf(x);
  return Halide::Internal::Call::make(ctx.floatType(), "erf", {x}, Halide::Internal::Call::PureExtern);
}

// x^p: an integer p (within +-64) as repeated multiplication, exact for negative x as well; otherwise pow, NaN
// for negative x as in PyTorch.
Expr power(const LoweringContext& ctx, Expr x, double p) {
  if (p == std::floor(p) && std::abs(p) <= 64) return Halide::pow(x, Expr(static_cast<int>(p)));
  return Halide::pow(x, ctx.constant(p));
}

// sigmoid(x) = 1 / (1 + e^-x), evaluated with e = exp(-|x|) <= 1 so it never overflows:
//   x >= 0: 1 / (1 + e);  x < 0: e / (1 + e)
Expr sigmoid(const LoweringContext& ctx, Expr x) {
  Expr e = Halide::exp(-Halide::abs(x));
  return Halide::select(x >= ctx.constant(0), ctx.constant(1) / (ctx.constant(1) + e), e / (ctx.constant(1) + e));
}

// softplus(x) = log(1 + e^x) = max(x, 0) + log(1 + e^-|x|) (no overflow), with PyTorch's threshold: x for x > 20.
// Below -20, e^x itself (log(1 + e) = e to 1e-9 relative there; 1 + e would round to 1 in float32).
Expr softplus(const LoweringContext& ctx, Expr x) {
  Expr stable = Halide::max(x, ctx.constant(0)) + Halide::log(ctx.constant(1) + Halide::exp(-Halide::abs(x)));
  return Halide::select(x > ctx.constant(20), x, x < ctx.constant(-20), Halide::exp(x), stable);
}

constexpr double kSqrt1_2 = 0.70710678118654752440;      // 1 / sqrt(2)
constexpr double kInvSqrt2Pi = 0.39894228040143267794;   // 1 / sqrt(2 pi)
constexpr double kSqrt2OverPi = 0.79788456080286535588;  // sqrt(2 / pi)
constexpr double kGeluCubic = 0.044715;

// gelu(x) = x Phi(x), Phi(x) = (1 + erf(x / sqrt 2)) / 2. Tanh form (PyTorch's approximate="tanh"):
//   gelu(x) ~ x (1 + tanh(u)) / 2, u = sqrt(2 / pi) (x + 0.044715 x^3)
// gelu_grad is its derivative:
//   exact: Phi(x) + x phi(x), phi(x) = exp(-x^2 / 2) / sqrt(2 pi)
//   tanh:  (1 + t) / 2 + x (1 - t^2) sqrt(2 / pi) (1 + 3 * 0.044715 x^2) / 2, t = tanh(u)
Expr gelu(const LoweringContext& ctx, Expr x, bool approximate, bool derivative) {
  auto c = [&](double v) { return ctx.constant(v); };
  if (!approximate) {
    Expr cdf = c(0.5) * (c(1) + erfOf(ctx, x * c(kSqrt1_2)));
    if (!derivative) return x * cdf;
    Expr pdf = Halide::exp(c(-0.5) * x * x) * c(kInvSqrt2Pi);
    return cdf + x * pdf;
  }
  Expr t = Halide::tanh(c(kSqrt2OverPi) * (x + c(kGeluCubic) * x * x * x));
  if (!derivative) return c(0.5) * x * (c(1) + t);
  Expr du = c(kSqrt2OverPi) * (c(1) + c(3 * kGeluCubic) * x * x);
  return c(0.5) * (c(1) + t) + c(0.5) * x * (c(1) - t * t) * du;
}

}  // namespace

Expr lowerElementwise(const LoweringContext& ctx, const Node& node, const std::vector<Expr>& in) {
  auto c = [&](double v) { return ctx.constant(v); };
  const Attrs& attrs = node.attrs;
  Expr x = in[0];
  switch (node.op) {
    case Op::Exp: return Halide::exp(x);
    case Op::Log: return Halide::log(x);
    case Op::Sqrt: return Halide::sqrt(x);
    case Op::Square: return x * x;
    case Op::Pow: return power(ctx, x, attrs.alpha);
    case Op::Abs: return Halide::abs(x);
    case Op::Minimum: return Halide::min(x, in[1]);
    case Op::Maximum: return Halide::max(x, in[1]);
    case Op::Clamp: return Halide::clamp(x, c(attrs.alpha), c(attrs.beta));
    case Op::Identity:
    case Op::StopGradient: return x;
    case Op::Sigmoid: return sigmoid(ctx, x);
    case Op::Tanh: return Halide::tanh(x);
    case Op::Erf: return erfOf(ctx, x);
    case Op::LeakyRelu: return Halide::select(x > c(0), x, x * c(attrs.alpha));
    // elu(x) = x for x > 0, alpha (e^x - 1) otherwise
    case Op::Elu: return Halide::select(x > c(0), x, c(attrs.alpha) * (Halide::exp(x) - c(1)));
    case Op::Gelu: return gelu(ctx, x, attrs.approximate, false);
    case Op::GeluGrad: return gelu(ctx, x, attrs.approximate, true);
    case Op::Softplus: return softplus(ctx, x);
    case Op::Sign: return Halide::select(x > c(0), c(1), x < c(0), c(-1), c(0));
    case Op::MaxMask: return Halide::select(x > in[1], c(1), x == in[1], c(0.5), c(0));
    case Op::InRange: return Halide::select(x >= c(attrs.alpha) && x <= c(attrs.beta), c(1), c(0));
    default: break;  // not an op of this file
  }
  throw std::logic_error(std::string("internal error: no elementwise lowering for ") + opInfo(node.op).name);
}

}  // namespace nnc
