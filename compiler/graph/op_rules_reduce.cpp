// Shape rules, VJPs and FLOP counts of the reductions (sum, mean, max, softmax, log_softmax), the layout ops
// (transpose, reshape, broadcast_to) and the regression/binary losses (mse, binary_cross_entropy[_with_logits]).
// op_rules.cpp's switches send these ops here. Axes are row-major, non-negative and sorted; the graph builder
// normalises what the user writes (negative axes, a missing axis meaning all of them).
#include "compiler/graph/op_rules_reduce.h"

#include <fmt/format.h>

#include <algorithm>
#include <stdexcept>

namespace nnc {

namespace {

ShapeResult fail(std::string message) { return {{}, DType::F32, std::move(message)}; }

bool axesValid(const std::vector<int64_t>& axes, size_t rank) {
  for (size_t i = 0; i < axes.size(); ++i)
    if (axes[i] < 0 || axes[i] >= static_cast<int64_t>(rank) || (i > 0 && axes[i] <= axes[i - 1])) return false;
  return true;
}

bool contains(const std::vector<int64_t>& axes, size_t axis) {
  return std::find(axes.begin(), axes.end(), static_cast<int64_t>(axis)) != axes.end();
}

std::string axesToString(const std::vector<int64_t>& axes) { return fmt::format("[{}]", fmt::join(axes, ", ")); }

// The symbolic dimensions of a shape, sorted, and the product of its fixed extents.
std::pair<std::vector<std::string>, int64_t> splitDims(const Shape& shape) {
  std::vector<std::string> symbols;
  int64_t fixed = 1;
  for (const Dim& dim : shape)
    if (dim.isSymbolic()) symbols.push_back(dim.symbol);
    else fixed *= dim.extent;
  std::sort(symbols.begin(), symbols.end());
  return {symbols, fixed};
}

ShapeResult needsFloat(const Graph& g, Op op, NodeId id) {
  const Node& node = g.node(id);
  if (node.dtype == DType::F32) return {};
  return fail(fmt::format("`{}` needs a floating-point operand, got {} {}", opInfo(op).name, dtypeName(node.dtype),
                          shapeToString(node.shape)));
}

ShapeResult lossShape(const Graph& g, Op op, const std::vector<NodeId>& in) {
  for (NodeId id : in)
    if (ShapeResult r = needsFloat(g, op, id); !r.error.empty()) return r;
  const Shape& a = g.node(in[0]).shape;
  const Shape& b = g.node(in[1]).shape;
  if (a != b)
    return fail(fmt::format("`{}` needs a prediction and a target of one shape, got {} and {}", opInfo(op).name,
                            shapeToString(a), shapeToString(b)));
  return {};
}

// torch.cat of two tensors: the same rank and dimensions but along the axis, which is fixed in both.
ShapeResult concatShape(const Graph& g, const std::vector<NodeId>& in, const Attrs& attrs) {
  if (ShapeResult r = needsFloat(g, Op::Concat, in[1]); !r.error.empty()) return r;
  const Shape& a = g.node(in[0]).shape;
  const Shape& b = g.node(in[1]).shape;
  if (attrs.axes.size() != 1 || !axesValid(attrs.axes, a.size()))
    return fail(fmt::format("`concat` along axis {} of a tensor {}", axesToString(attrs.axes), shapeToString(a)));
  auto axis = static_cast<size_t>(attrs.axes[0]);
  bool others_equal = a.size() == b.size();
  for (size_t i = 0; others_equal && i < a.size(); ++i) others_equal = i == axis || a[i] == b[i];
  if (!others_equal)
    return fail(fmt::format("`concat` along axis {} needs tensors that agree on every other axis, got {} and {}", axis,
                            shapeToString(a), shapeToString(b)));
  if (a[axis].isSymbolic() || b[axis].isSymbolic())
    return fail(fmt::format("`concat` along axis {} of {} and {}: the axis must have a fixed size, not the batch's",
                            axis, shapeToString(a), shapeToString(b)));
  Shape out = a;
  out[axis] = Dim{a[axis].extent + b[axis].extent, {}};
  return {out, DType::F32, {}};
}

}  // namespace

Shape reducedShape(const Shape& shape, const std::vector<int64_t>& axes, bool keepdims) {
  Shape out;
  for (size_t i = 0; i < shape.size(); ++i)
    if (!contains(axes, i)) out.push_back(shape[i]);
    else if (keepdims) out.push_back(Dim{});
  return out;
}

ShapeResult reduceFamilyShape(const Graph& g, Op op, const std::vector<NodeId>& in, const Attrs& attrs) {
  if (ShapeResult r = needsFloat(g, op, in[0]); !r.error.empty()) return r;
  const Shape& x = g.node(in[0]).shape;
  switch (op) {
    case Op::Sum:
    case Op::Mean:
    case Op::Max:
      if (!axesValid(attrs.axes, x.size()))
        return fail(fmt::format("`{}` over axes {} of a tensor {}", opInfo(op).name, axesToString(attrs.axes),
                                shapeToString(x)));
      return {reducedShape(x, attrs.axes, attrs.keepdims), DType::F32, {}};
    case Op::MaxGrad:
      if (!axesValid(attrs.axes, x.size()) || g.node(in[1]).shape != reducedShape(x, attrs.axes, attrs.keepdims))
        return fail("`max_grad`: the adjoint does not have the shape of the maximum");
      return {x, DType::F32, {}};
    case Op::Softmax:
    case Op::LogSoftmax:
      if (attrs.axes.size() != 1 || !axesValid(attrs.axes, x.size()))
        return fail(fmt::format("`{}` along axis {} of a tensor {}", opInfo(op).name, axesToString(attrs.axes),
                                shapeToString(x)));
      return {x, DType::F32, {}};
    case Op::Transpose: {
      std::vector<int64_t> sorted = attrs.axes;
      std::sort(sorted.begin(), sorted.end());
      if (sorted.size() != x.size() || !axesValid(sorted, x.size()))
        return fail(fmt::format("`transpose` of a tensor {} by the permutation {}", shapeToString(x),
                                axesToString(attrs.axes)));
      Shape out;
      for (int64_t axis : attrs.axes) out.push_back(x[static_cast<size_t>(axis)]);
      return {out, DType::F32, {}};
    }
    case Op::Reshape:
      if (splitDims(x) != splitDims(attrs.shape))
        return fail(fmt::format("cannot reshape {} to {}: the element counts differ", shapeToString(x),
                                shapeToString(attrs.shape)));
      return {attrs.shape, DType::F32, {}};
    case Op::BroadcastTo:
      if (!axesValid(attrs.axes, attrs.shape.size()) || reducedShape(attrs.shape, attrs.axes, attrs.keepdims) != x)
        return fail(fmt::format("cannot broadcast {} to {}", shapeToString(x), shapeToString(attrs.shape)));
      return {attrs.shape, DType::F32, {}};
    case Op::Concat: return concatShape(g, in, attrs);
    case Op::Slice: {
      size_t axis = attrs.axes.empty() ? 0 : static_cast<size_t>(attrs.axes[0]);
      if (attrs.axes.size() != 1 || !axesValid(attrs.axes, x.size()) || x[axis].isSymbolic() || attrs.start < 0 ||
          attrs.start >= attrs.end || attrs.end > x[axis].extent)
        return fail(fmt::format("`slice` [{}, {}) along axis {} of a tensor {}", attrs.start, attrs.end,
                                axesToString(attrs.axes), shapeToString(x)));
      Shape out = x;
      out[axis] = Dim{attrs.end - attrs.start, {}};
      return {out, DType::F32, {}};
    }
    case Op::Mse:
    case Op::L1:
    case Op::BinaryCrossEntropy:
    case Op::BinaryCrossEntropyWithLogits:
      if (ShapeResult r = lossShape(g, op, in); !r.error.empty()) return r;
      return {{}, DType::F32, {}};
    case Op::BinaryCrossEntropyWithLogitsGrad: return {x, DType::F32, {}};
    default: throw std::logic_error("internal error: reduceFamilyShape of another op");
  }
}

double reduceFamilyFlops(const Graph& g, NodeId id, int64_t batch) {
  const Node& node = g.node(id);
  double in = static_cast<double>(elementCount(g.node(node.inputs[0]).shape, batch));
  double out = static_cast<double>(elementCount(node.shape, batch));
  switch (node.op) {
    // One add (or compare) per input element; mean divides once per output element.
    case Op::Sum:
    case Op::Max: return in;
    case Op::Mean: return in + out;
    // Per input element: the arg-max scan (1) and the select of the adjoint (1).
    case Op::MaxGrad: return 2 * in;
    // Per element: max, subtract, exp, add into the sum (4), then a divide (softmax) or subtract and log (1).
    case Op::Softmax:
    case Op::LogSoftmax: return 5 * in;
    // Data movement only; broadcast_to of a mean's adjoint divides once per output element.
    case Op::Transpose:
    case Op::Reshape:
    case Op::Concat:
    case Op::Slice: return 0;
    case Op::BroadcastTo: return node.attrs.alpha != 0 ? out : 0;
    // Per element: subtract, square, add (3); one divide for the mean.
    case Op::Mse:
    case Op::L1: return 3 * in + 1;
    // Per element: two logs, two clamps, 1 - p, 1 - t, two multiplies, add, add into the sum (10); one divide.
    case Op::BinaryCrossEntropy: return 10 * in + 1;
    // Per element: max, multiply, subtract, abs, negate, exp, add, log, add, add into the sum (10); one divide.
    case Op::BinaryCrossEntropyWithLogits: return 10 * in + 1;
    // Per element: negate, exp, add, divide (sigmoid), subtract, multiply by dloss, divide by the count (7).
    case Op::BinaryCrossEntropyWithLogitsGrad: return 7 * in;
    default: throw std::logic_error("internal error: reduceFamilyFlops of another op");
  }
}

std::vector<NodeId> reduceFamilyVjp(Graph& g, NodeId id, NodeId grad, const std::vector<bool>& wanted) {
  const Node node = g.node(id);  // a copy: adding nodes may reallocate g.nodes
  dsl::Span span = node.span;
  auto add = [&](Op op, std::vector<NodeId> in, Attrs attrs = {}) { return g.add(op, std::move(in), attrs, {}, span); };
  NodeId a = node.inputs[0];
  NodeId b = node.inputs.size() > 1 ? node.inputs[1] : kNoNode;
  const Shape a_shape = g.node(a).shape;  // a copy, like node
  // The adjoint of a reduction over `axes`: copy it back along them (divided by the count for a mean).
  auto broadcastBack = [&](NodeId of, std::vector<int64_t> axes, bool keepdims, bool mean) {
    Attrs to;
    to.shape = a_shape;
    to.axes = std::move(axes);
    to.keepdims = keepdims;
    to.alpha = mean ? 1 : 0;
    return add(Op::BroadcastTo, {of}, to);
  };
  auto allAxes = [&] {
    std::vector<int64_t> axes;
    for (size_t i = 0; i < a_shape.size(); ++i) axes.push_back(static_cast<int64_t>(i));
    return axes;
  };
  Attrs keep;  // a sum along the op's axes that keeps them, for softmax adjoints
  keep.axes = node.attrs.axes;
  keep.keepdims = true;
  switch (node.op) {
    // d sum_axes(a) = broadcast(G) along the axes
    case Op::Sum: return {broadcastBack(grad, node.attrs.axes, node.attrs.keepdims, false)};
    // d mean_axes(a) = broadcast(G) / count
    case Op::Mean: return {broadcastBack(grad, node.attrs.axes, node.attrs.keepdims, true)};
    // d max_axes(a) = G at the (first) arg-max of each slice, 0 elsewhere
    case Op::Max: return {add(Op::MaxGrad, {a, grad}, node.attrs)};
    // y = softmax(a): da = y * (G - sum_axis(G * y))
    case Op::Softmax: return {add(Op::Mul, {id, add(Op::Sub, {grad, add(Op::Sum, {add(Op::Mul, {grad, id})}, keep)})})};
    // y = a - logsumexp(a): da = G - softmax(a) * sum_axis(G)
    case Op::LogSoftmax: {
      Attrs along;
      along.axes = node.attrs.axes;
      NodeId softmax = add(Op::Softmax, {a}, along);
      return {add(Op::Sub, {grad, add(Op::Mul, {softmax, add(Op::Sum, {grad}, keep)})})};
    }
    // y = transpose(a, p): da = transpose(G, p^-1)
    case Op::Transpose: {
      Attrs inverse;
      inverse.axes.resize(node.attrs.axes.size());
      for (size_t i = 0; i < node.attrs.axes.size(); ++i)
        inverse.axes[static_cast<size_t>(node.attrs.axes[i])] = static_cast<int64_t>(i);
      return {add(Op::Transpose, {grad}, inverse)};
    }
    // reshape keeps the row-major element order: da = reshape(G, shape of a)
    case Op::Reshape: {
      Attrs back;
      back.shape = a_shape;
      return {add(Op::Reshape, {grad}, back)};
    }
    // concat(a, b) along axis k: da = G[.., 0:n_a, ..], db = G[.., n_a:n_a + n_b, ..] (slices along k)
    case Op::Concat: {
      auto axis = static_cast<size_t>(node.attrs.axes[0]);
      int64_t n_a = a_shape[axis].extent;
      auto part = [&](int64_t start, int64_t end) {
        Attrs range;
        range.axes = node.attrs.axes;
        range.start = start;
        range.end = end;
        return add(Op::Slice, {grad}, range);
      };
      return {wanted[0] ? part(0, n_a) : kNoNode, wanted[1] ? part(n_a, node.shape[axis].extent) : kNoNode};
    }
    // slice(a, k, s, e): da = G padded with zeros along k, [zeros of s, G, zeros of n - e] (concats)
    case Op::Slice: {
      auto axis = static_cast<size_t>(node.attrs.axes[0]);
      Attrs along;
      along.axes = node.attrs.axes;
      auto zeros = [&](int64_t count) {
        Shape shape = a_shape;
        shape[axis] = Dim{count, {}};
        return g.fill(0, shape, span);
      };
      NodeId da = grad;
      if (node.attrs.start > 0) da = add(Op::Concat, {zeros(node.attrs.start), da}, along);
      if (node.attrs.end < a_shape[axis].extent) da = add(Op::Concat, {da, zeros(a_shape[axis].extent - node.attrs.end)}, along);
      return {da};
    }
    // broadcast_to copies a along axes (scaled by 1/count with alpha): da = sum_axes(G) (or mean_axes(G))
    case Op::BroadcastTo: {
      Attrs reduce;
      reduce.axes = node.attrs.axes;
      reduce.keepdims = node.attrs.keepdims;
      return {add(node.attrs.alpha != 0 ? Op::Mean : Op::Sum, {grad}, reduce)};
    }
    // mse = mean((p - t)^2): dp = 2 (p - t) G / N, dt = -dp
    case Op::Mse: {
      NodeId twice = add(Op::Mul, {add(Op::Sub, {a, b}), g.fill(2, {}, span)});
      NodeId dp = add(Op::Mul, {twice, broadcastBack(grad, allAxes(), false, true)});
      return {dp, wanted[1] ? add(Op::Neg, {dp}) : kNoNode};
    }
    // l1 = mean(|p - t|): dp = sign(p - t) G / N (0 where p == t, as PyTorch), dt = -dp
    case Op::L1: {
      NodeId dp = add(Op::Mul, {add(Op::Sign, {add(Op::Sub, {a, b})}), broadcastBack(grad, allAxes(), false, true)});
      return {dp, wanted[1] ? add(Op::Neg, {dp}) : kNoNode};
    }
    // bce = mean(-(t log p + (1 - t) log(1 - p))): dp = (p - t) / (p (1 - p)) G / N. The target gets no gradient
    // (it would need log); clamped logs (p at 0 or 1) are not differentiated specially.
    case Op::BinaryCrossEntropy: {
      NodeId denominator = add(Op::Mul, {a, add(Op::Sub, {g.fill(1, {}, span), a})});
      NodeId slope = add(Op::Div, {add(Op::Sub, {a, b}), denominator});
      return {add(Op::Mul, {slope, broadcastBack(grad, allAxes(), false, true)}), kNoNode};
    }
    // bce = mean(max(z, 0) - z t + log(1 + exp(-|z|))) = mean(softplus(z) - z t): dz = (sigmoid(z) - t) G / N,
    // dt = -z G / N
    case Op::BinaryCrossEntropyWithLogits: {
      NodeId dz = wanted[0] ? add(Op::BinaryCrossEntropyWithLogitsGrad, {a, b, grad}) : kNoNode;
      NodeId dt = wanted[1] ? add(Op::Mul, {add(Op::Neg, {a}), broadcastBack(grad, allAxes(), false, true)}) : kNoNode;
      return {dz, dt};
    }
    case Op::MaxGrad:
    case Op::BinaryCrossEntropyWithLogitsGrad:
      throw std::logic_error(fmt::format("internal error: {} has no second derivative yet", opInfo(node.op).name));
    default: throw std::logic_error("internal error: reduceFamilyVjp of another op");
  }
}

}  // namespace nnc
