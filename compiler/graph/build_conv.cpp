// Graph building of convolution and pooling; see graph_builder.h (shape rules in ops_conv.cpp).
#include "compiler/graph/graph_builder.h"
#include "compiler/graph/ops_conv.h"

#include <fmt/format.h>

#include <cmath>

namespace nnc::graph_building {

bool GraphBuilder::windowArgs(const Expr& e, size_t first, const std::vector<const char*>& names, std::vector<double>& values) {
  if (e.args.size() > first + names.size()) {
    error(dsl::DiagKind::WrongArgumentCount, e.span, fmt::format("`{}` takes at most {} positional arguments",
                                                                 e.text, first + names.size()));
    return false;
  }
  for (const dsl::KeywordArg& kw : e.kwargs)
    if (std::find_if(names.begin(), names.end(), [&](const char* n) { return kw.name == n; }) == names.end()) {
      error(dsl::DiagKind::BadAttribute, kw.name_span, fmt::format("`{}` has no argument `{}`", e.text, kw.name));
      return false;
    }
  for (size_t i = 0; i < names.size(); ++i) {
    if (!numberArg(e, first + i, names[i], values[i])) return false;
    if (values[i] != std::floor(values[i]) || std::abs(values[i]) > 1e6) {
      error(dsl::DiagKind::BadAttribute, e.span, fmt::format("`{}` of `{}` must be an integer", names[i], e.text));
      return false;
    }
  }
  return true;
}

bool GraphBuilder::setWindow(const Expr& e, Op op, Attrs& attrs, double kernel, double stride, double padding, double dilation) {
  for (int axis = 0; axis < 2; ++axis) {
    attrs.kernel[axis] = static_cast<int64_t>(kernel);
    attrs.stride[axis] = static_cast<int64_t>(stride);
    attrs.padding[axis] = static_cast<int64_t>(padding);
    attrs.dilation[axis] = static_cast<int64_t>(dilation);
  }
  std::string problem = convAttrsError(op, attrs);
  if (problem.empty()) return true;
  error(dsl::DiagKind::BadAttribute, e.span, problem);
  return false;
}

std::optional<Value> GraphBuilder::conv2d(const Expr& e) {
  if (e.args.size() < 2) {
    error(dsl::DiagKind::WrongArgumentCount, e.span, "`conv2d` takes `conv2d(x, out_channels, kernel = K, ...)`");
    return std::nullopt;
  }
  std::optional<int64_t> out = positiveInteger(*e.args[1], "`out_channels` of `conv2d`");
  std::vector<double> v = {0, 1, 0, 1, 1};  // kernel (required), stride, padding, dilation, bias
  if (!out || !windowArgs(e, 2, {"kernel", "stride", "padding", "dilation", "bias"}, v)) return std::nullopt;
  Attrs attrs;
  if (!setWindow(e, Op::Conv2d, attrs, v[0], v[1], v[2], v[3])) return std::nullopt;
  std::optional<std::string> name = layerName(e);
  NodeId x = tensorExpr(*e.args[0]);
  if (!name || x == kNoNode) return std::nullopt;
  const Shape& in_shape = graph_.node(x).shape;
  if (in_shape.size() != 4 || in_shape[1].isSymbolic()) {
    error(dsl::DiagKind::ShapeMismatch, e.args[0]->span,
          fmt::format("`conv2d` needs an input [batch, channels, height, width], got {}", shapeToString(in_shape)));
    return std::nullopt;
  }
  int64_t k = attrs.kernel[0];
  double bound = 1.0 / std::sqrt(static_cast<double>(in_shape[1].extent * k * k));
  ParamInit init{InitKind::Uniform, -bound, bound};
  NodeId weight = declareParam(*name + ".weight", {{*out, {}}, in_shape[1], {k, {}}, {k, {}}}, init, e.span);
  if (weight == kNoNode) return std::nullopt;
  std::optional<Value> y = apply(Op::Conv2d, {x, weight}, attrs, e, {e.args[0].get()});
  if (!y || v[4] == 0) return y;
  NodeId bias = declareParam(*name + ".bias", {{*out, {}}}, init, e.span);
  Attrs column;
  column.shape = {{*out, {}}, {1, {}}, {1, {}}};
  NodeId bias_column = graph_.add(Op::Reshape, {bias}, column, {}, e.span);
  return Value{graph_.add(Op::Add, {y->node, bias_column}, {}, {}, e.span), {}};
}

std::optional<Value> GraphBuilder::pool(const Expr& e, Op op) {
  if (e.args.empty()) {
    error(dsl::DiagKind::WrongArgumentCount, e.span, fmt::format("`{}` takes `{}(x, kernel = K, ...)`", e.text, e.text));
    return std::nullopt;
  }
  std::vector<double> v = {0, 1, 0};  // kernel (required), stride (default: kernel), padding
  if (!windowArgs(e, 1, {"kernel", "stride", "padding"}, v)) return std::nullopt;
  bool stride_given = e.args.size() > 2 ||
                      std::any_of(e.kwargs.begin(), e.kwargs.end(), [](auto& kw) { return kw.name == "stride"; });
  Attrs attrs;
  if (!setWindow(e, op, attrs, v[0], stride_given ? v[1] : v[0], v[2], 1)) return std::nullopt;
  NodeId x = tensorExpr(*e.args[0]);
  if (x == kNoNode) return std::nullopt;
  return apply(op, {x}, attrs, e, {e.args[0].get()});
}

}  // namespace nnc::graph_building
