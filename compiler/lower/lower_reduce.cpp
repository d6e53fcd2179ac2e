// Lowering of the reductions, layout ops and regression losses (THE ALGORITHM; schedule.cpp schedules them by
// family). Layout as in lower.h: row-major axis i of a rank-r tensor is Halide dimension r - 1 - i.
#include <algorithm>
#include <optional>
#include <stdexcept>

#include "compiler/lower/lower.h"
#include "compiler/graph/op_rules_reduce.h"

namespace nnc {

namespace {

using Halide::Expr;
using Halide::Func;
using Halide::RDom;
using Halide::Var;

bool contains(const std::vector<int64_t>& axes, size_t axis) {
  return std::find(axes.begin(), axes.end(), static_cast<int64_t>(axis)) != axes.end();
}

// Converts row-major coordinates to Halide argument order and back.
std::vector<Expr> reversed(std::vector<Expr> v) { return {v.rbegin(), v.rend()}; }

class ReduceLowering {
 public:
  ReduceLowering(const LoweringContext& ctx, const Node& node, LoweredNode& out)
      : ctx_(ctx), node_(node), out_(out), x_(ctx.func(node.inputs[0])), x_shape_(ctx.graph().node(node.inputs[0]).shape) {
    for (size_t i = 0; i < node.shape.size(); ++i) vars_.push_back(dimVars()[node.shape.size() - 1 - i]);  // row-major
  }

  void run() {
    switch (node_.op) {
      case Op::Sum: return reduce(out_.func, ReduceKind::Sum);
      case Op::Mean: return mean();
      case Op::Max: return reduce(out_.func, ReduceKind::Max);
      case Op::MaxGrad: return maxGrad();
      case Op::Softmax:
      case Op::LogSoftmax: return softmax(node_.op == Op::LogSoftmax);
      case Op::Transpose: return transpose();
      case Op::Reshape: return reshape();
      case Op::BroadcastTo: return broadcastTo();
      case Op::Concat: return concat();
      case Op::Slice: return slice();
      case Op::Mse:
      case Op::L1:
      case Op::BinaryCrossEntropy:
      case Op::BinaryCrossEntropyWithLogits: return meanLoss();
      case Op::BinaryCrossEntropyWithLogitsGrad: return logitsGrad();
      default: throw std::logic_error("internal error: lowerReduceFamily of another op");
    }
  }

 private:
  enum class ReduceKind { Sum, Max };

  // Defines f over the output vars (row-major `vars_`) as the reduction of x over `axes`. A reduction over no axis
  // is a copy. Returns the RDom (row-major order of the reduced axes) so callers can reuse the coordinates.
  void reduce(Func f, ReduceKind kind) { reduceOver(f, kind, node_.attrs.axes, node_.attrs.keepdims, vars_); }

  std::vector<Expr> reduceOver(Func f, ReduceKind kind, const std::vector<int64_t>& axes, bool keepdims,
                               const std::vector<Var>& out_vars) {
    std::vector<Expr> out_args(out_vars.rbegin(), out_vars.rend());
    std::vector<Halide::Var> halide_vars(out_vars.rbegin(), out_vars.rend());
    if (axes.empty()) {
      f(halide_vars) = x_(out_args);
      return {};
    }
    Halide::Region ranges;  // Halide order: the innermost reduced axis first
    for (size_t i = x_shape_.size(); i-- > 0;)
      if (contains(axes, i)) ranges.emplace_back(0, ctx_.extent(x_shape_[i]));
    RDom r(ranges, "r");
    std::vector<Expr> at;  // row-major coordinates into x
    int next_r = static_cast<int>(axes.size()) - 1;
    size_t next_out = 0;
    for (size_t i = 0; i < x_shape_.size(); ++i) {
      if (contains(axes, i)) {
        at.push_back(r[next_r--]);
        if (keepdims) ++next_out;
      } else {
        at.push_back(out_vars[next_out++]);
      }
    }
    Expr value = x_(reversed(at));
    if (kind == ReduceKind::Sum) {
      f(halide_vars) = ctx_.constant(0);
      f(halide_vars) += value;
    } else {
      f(halide_vars) = ctx_.floatType().min();
      f(halide_vars) = Halide::max(f(halide_vars), value);
    }
    out_.reductions.push_back(r);
    return at;
  }

  // The number of elements each output of a reduction over `axes` of `shape` sums, in the float type.
  Expr count(const Shape& shape, const std::vector<int64_t>& axes) const {
    Expr n = 1;
    for (int64_t axis : axes) n = n * ctx_.extent(shape[static_cast<size_t>(axis)]);
    return Halide::cast(ctx_.floatType(), n);
  }

  // mean = sum / count, the sum a helper so the result is a pure Func.
  void mean() {
    Func total = ctx_.helper("sum");
    reduce(total, ReduceKind::Sum);
    out_.func(vars_halide()) = total(vars_halide()) / count(x_shape_, node_.attrs.axes);
    out_.helpers.push_back(total);
  }

  std::vector<Var> vars_halide() const { return {vars_.rbegin(), vars_.rend()}; }

  // dx = dout at the first arg-max of each reduced slice (row-major order, as the RDom iterates), else 0.
  void maxGrad() {
    const std::vector<int64_t>& axes = node_.attrs.axes;
    Func dout = ctx_.func(node_.inputs[1]);
    std::vector<Expr> out_at;  // row-major coordinates of the maximum that x(vars_) belongs to
    for (size_t i = 0; i < x_shape_.size(); ++i)
      if (!contains(axes, i)) out_at.push_back(vars_[i]);
      else if (node_.attrs.keepdims) out_at.push_back(0);
    if (axes.empty()) {
      out_.func(vars_halide()) = dout(reversed(out_at));
      return;
    }
    Halide::Region ranges;
    for (size_t i = x_shape_.size(); i-- > 0;)
      if (contains(axes, i)) ranges.emplace_back(0, ctx_.extent(x_shape_[i]));
    RDom r(ranges, "r");
    std::vector<Expr> at;
    std::vector<Var> kept;
    for (size_t i = 0, next_r = axes.size(); i < x_shape_.size(); ++i)
      if (contains(axes, i)) at.push_back(r[static_cast<int>(--next_r)]);
      else {
        at.push_back(vars_[i]);
        kept.push_back(vars_[i]);
      }
    Func arg = ctx_.helper("argmax");
    std::vector<Var> kept_halide(kept.rbegin(), kept.rend());
    arg(kept_halide) = Halide::argmax(r, x_(reversed(at)));
    std::vector<Expr> kept_args(kept_halide.begin(), kept_halide.end());
    Expr is_max = Halide::Internal::const_true();
    for (size_t i = 0, next_r = axes.size(); i < x_shape_.size(); ++i)
      if (contains(axes, i)) {
        --next_r;
        is_max = is_max && vars_[i] == arg(kept_args)[static_cast<int>(next_r)];
      }
    out_.func(vars_halide()) = Halide::select(is_max, dout(reversed(out_at)), ctx_.constant(0));
    out_.helpers.push_back(arg);
    out_.reductions.push_back(r);
  }

  // Along axis a: m = max_a x, s = sum_a exp(x - m); softmax = exp(x - m) / s, log_softmax = x - m - log s.
  void softmax(bool log) {
    std::vector<int64_t> axis = node_.attrs.axes;
    std::vector<Var> kept;
    std::vector<Expr> drop;  // row-major coordinates of the slice statistics
    for (size_t i = 0; i < vars_.size(); ++i)
      if (!contains(axis, i)) {
        kept.push_back(vars_[i]);
        drop.push_back(vars_[i]);
      }
    Func m = ctx_.helper("max"), s = ctx_.helper("sum");
    std::vector<Expr> at = reduceOver(m, ReduceKind::Max, axis, false, kept);
    Expr shifted_r = x_(reversed(at)) - m(reversed(drop));
    std::vector<Var> kept_halide(kept.rbegin(), kept.rend());
    s(kept_halide) = ctx_.constant(0);
    s(kept_halide) += Halide::exp(shifted_r);
    std::vector<Expr> all(vars_.begin(), vars_.end());
    Expr shifted = x_(reversed(all)) - m(reversed(drop));
    // strict_float: LLVM's fast-math would reassociate (x - m) - log s into x - (m + log s), which float32 rounds at
    // the size of m (logits near 1e4 lost 2.4e-4: ONNX's test_logsoftmax_large_number).
    out_.func(vars_halide()) = log ? Halide::strict_float(shifted - Halide::log(s(reversed(drop))))
                                   : Halide::exp(shifted) / s(reversed(drop));
    out_.helpers = {m, s};
  }

  // Output row-major axis i reads input axis axes[i].
  void transpose() {
    std::vector<Expr> at(x_shape_.size());
    for (size_t i = 0; i < vars_.size(); ++i) at[static_cast<size_t>(node_.attrs.axes[i])] = vars_[i];
    out_.func(vars_halide()) = x_(reversed(at));
  }

  // The row-major flat index of the output coordinates, decomposed by the input extents.
  void reshape() {
    Expr flat = 0;
    for (size_t i = 0; i < vars_.size(); ++i) flat = flat * ctx_.extent(node_.shape[i]) + vars_[i];
    std::vector<Expr> at(x_shape_.size());
    for (size_t i = x_shape_.size(); i-- > 0;) {
      Expr extent = ctx_.extent(x_shape_[i]);
      at[i] = i == 0 ? flat : flat % extent;
      flat = flat / extent;
    }
    out_.func(vars_halide()) = x_(reversed(at));
  }

  void broadcastTo() {
    std::vector<Expr> at;
    for (size_t i = 0; i < vars_.size(); ++i)
      if (!contains(node_.attrs.axes, i)) at.push_back(vars_[i]);
      else if (node_.attrs.keepdims) at.push_back(0);
    Expr value = x_(reversed(at));
    if (node_.attrs.alpha != 0) value = value / count(node_.shape, node_.attrs.axes);
    out_.func(vars_halide()) = value;
  }

  // Along axis k: out[.., i, ..] = a[.., i, ..] for i < n_a, else b[.., i - n_a, ..]. Each read is clamped into its
  // operand, so the bounds Halide infers for the branch not taken stay inside it (a pipeline argument has exactly
  // its shape).
  void concat() {
    auto axis = static_cast<size_t>(node_.attrs.axes[0]);
    Func b = ctx_.func(node_.inputs[1]);
    const Shape& b_shape = ctx_.graph().node(node_.inputs[1]).shape;
    Expr n_a = ctx_.extent(x_shape_[axis]);
    std::vector<Expr> at_a(vars_.begin(), vars_.end()), at_b(vars_.begin(), vars_.end());
    Expr i = vars_[axis];
    at_a[axis] = Halide::min(i, n_a - 1);
    at_b[axis] = Halide::clamp(i - n_a, 0, ctx_.extent(b_shape[axis]) - 1);
    out_.func(vars_halide()) = Halide::select(i < n_a, x_(reversed(at_a)), b(reversed(at_b)));
  }

  // Along axis k: out[.., i, ..] = x[.., start + i, ..].
  void slice() {
    std::vector<Expr> at(vars_.begin(), vars_.end());
    auto axis = static_cast<size_t>(node_.attrs.axes[0]);
    at[axis] = at[axis] + static_cast<int>(node_.attrs.start);
    out_.func(vars_halide()) = x_(reversed(at));
  }

  // mean over every element of the per-element loss of (a, b).
  void meanLoss() {
    Func y = ctx_.func(node_.inputs[1]);
    Halide::Region ranges;
    for (size_t i = x_shape_.size(); i-- > 0;) ranges.emplace_back(0, ctx_.extent(x_shape_[i]));
    std::vector<Expr> at;
    Expr a, t;
    std::optional<RDom> r;
    if (!ranges.empty()) {
      r = RDom(ranges, "r");
      for (int i = 0; i < r->dimensions(); ++i) at.push_back((*r)[i]);
    }
    a = x_(at);
    t = y(at);
    Expr zero = ctx_.constant(0), one = ctx_.constant(1);
    Expr loss;
    switch (node_.op) {
      case Op::Mse: loss = (a - t) * (a - t); break;
      case Op::L1: loss = Halide::abs(a - t); break;
      // PyTorch's BCELoss clamps each log at -100, so p = 0 or 1 gives a finite loss.
      case Op::BinaryCrossEntropy: {
        Expr floor = ctx_.constant(-100);
        loss = -(t * Halide::max(Halide::log(a), floor) + (one - t) * Halide::max(Halide::log(one - a), floor));
        break;
      }
      // softplus(z) - z t, with softplus(z) = max(z, 0) + log(1 + exp(-|z|)): exp never overflows.
      case Op::BinaryCrossEntropyWithLogits:
        loss = Halide::max(a, zero) - a * t + Halide::log(one + Halide::exp(-Halide::abs(a)));
        break;
      default: throw std::logic_error("internal error: not a mean loss");
    }
    Func total = ctx_.helper("sum");
    if (r) {
      total() = zero;
      total() += loss;
      out_.reductions.push_back(*r);
    } else {
      total() = loss;
    }
    out_.func() = total() / count(x_shape_, allAxes());
    out_.helpers.push_back(total);
  }

  std::vector<int64_t> allAxes() const {
    std::vector<int64_t> axes;
    for (size_t i = 0; i < x_shape_.size(); ++i) axes.push_back(static_cast<int64_t>(i));
    return axes;
  }

  // dz = (sigmoid(z) - t) * dloss / count.
  void logitsGrad() {
    std::vector<Expr> at(vars_.rbegin(), vars_.rend());
    Func t = ctx_.func(node_.inputs[1]), dloss = ctx_.func(node_.inputs[2]);
    Expr z = x_(at);
    Expr sigmoid = ctx_.constant(1) / (ctx_.constant(1) + Halide::exp(-z));
    out_.func(vars_halide()) = (sigmoid - t(at)) * dloss() / count(x_shape_, allAxes());
  }

  const LoweringContext& ctx_;
  const Node& node_;
  LoweredNode& out_;
  Func x_;
  const Shape& x_shape_;
  std::vector<Var> vars_;  // the output's dimension variables, row-major
};

}  // namespace

void lowerReduceFamily(const LoweringContext& ctx, const Node& node, LoweredNode& lowered) {
  ReduceLowering(ctx, node, lowered).run();
}

}  // namespace nnc
