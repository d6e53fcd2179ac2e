// Graph building of the ops that join and cut tensors along an axis: concat, slice and chunk (see graph_builder.h).
// All three check their axes and ranges here, so that the user sees a caret under the offending argument; the
// concat and slice ops' own shape rules (op_rules_reduce.cpp) only catch internal misuse.
#include "compiler/graph/graph_builder.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace nnc::graph_building {

std::optional<Value> GraphBuilder::concat(const Expr& e) {
  const char* signature = "concat(x1, x2, ..., axis = a)";
  const Expr* axis_arg = nullptr;
  for (const dsl::KeywordArg& kw : e.kwargs) {
    if (kw.name != "axis" || axis_arg) {
      error(dsl::DiagKind::BadAttribute, kw.name_span,
            fmt::format("`concat` takes tensors and one keyword, `axis`: `{}`", signature));
      return std::nullopt;
    }
    axis_arg = kw.value.get();
  }
  if (e.args.size() < 2) {
    error(dsl::DiagKind::WrongArgumentCount, e.span,
          fmt::format("`concat` takes two or more tensors and the axis by keyword: `{}`", signature));
    return std::nullopt;
  }
  std::vector<NodeId> parts;
  for (const dsl::ExprPtr& arg : e.args) {
    std::optional<Value> value = expr(*arg);
    if (!value) return std::nullopt;
    if (value->number) {
      error(dsl::DiagKind::ShapeMismatch, arg->span,
            fmt::format("`concat` joins tensors; this is a number (the axis goes by keyword: `{}`)", signature));
      return std::nullopt;
    }
    parts.push_back(value->node);
  }
  if (!axis_arg) {
    error(dsl::DiagKind::WrongArgumentCount, e.span, fmt::format("`concat` needs its axis by keyword: `{}`", signature));
    return std::nullopt;
  }
  const Shape first = graph_.node(parts[0]).shape;
  std::optional<int64_t> axis = axisArg(*axis_arg, first.size(), "`axis` of `concat`");
  if (!axis) return std::nullopt;
  Attrs attrs;
  attrs.axes = {*axis};
  NodeId joined = parts[0];
  for (size_t i = 1; i < parts.size(); ++i) {  // left to right: concat(concat(x1, x2), x3), ...
    std::optional<Value> next = apply(Op::Concat, {joined, parts[i]}, attrs, e,
                                      {i == 1 ? e.args[0].get() : nullptr, e.args[i].get()});
    if (!next) return std::nullopt;
    joined = next->node;
  }
  return Value{joined, {}};
}

std::optional<int64_t> GraphBuilder::integerArg(const Expr& call, size_t position, const char* keyword) {
  double value = 0.5;
  if (!numberArg(call, position, keyword, value, true)) return std::nullopt;
  if (value != std::floor(value) || std::abs(value) > 1e9) {
    error(dsl::DiagKind::BadAttribute, argument(call, position, keyword).span,
          fmt::format("`{}` of `{}` must be an integer", keyword, call.text));
    return std::nullopt;
  }
  return static_cast<int64_t>(value);
}


std::optional<std::pair<NodeId, int64_t>> GraphBuilder::fixedAxis(const Expr& e, const std::vector<std::string>& names,
                                                                   const char* signature) {
  if (e.args.empty()) {
    error(dsl::DiagKind::WrongArgumentCount, e.span, fmt::format("`{}` takes `{}`", e.text, signature));
    return std::nullopt;
  }
  if (!attributeArgs(e, names, signature)) return std::nullopt;
  NodeId x = tensorExpr(*e.args[0]);
  if (x == kNoNode) return std::nullopt;
  const Shape shape = graph_.node(x).shape;
  if (!findArgument(e, 1, "axis")) {
    error(dsl::DiagKind::WrongArgumentCount, e.span, fmt::format("`{}` needs its argument `axis`: `{}`", e.text, signature));
    return std::nullopt;
  }
  const Expr& axis_arg = argument(e, 1, "axis");
  std::optional<int64_t> axis = axisArg(axis_arg, shape.size(), fmt::format("`axis` of `{}`", e.text));
  if (!axis) return std::nullopt;
  if (shape[static_cast<size_t>(*axis)].isSymbolic()) {
    error(dsl::DiagKind::ShapeMismatch, axis_arg.span,
          fmt::format("`{}` along axis {} of a tensor {}: the axis must have a fixed size, not the batch's `{}`", e.text,
                      *axis, shapeToString(shape), shape[static_cast<size_t>(*axis)].symbol));
    return std::nullopt;
  }
  return std::pair{x, *axis};
}

std::optional<Value> GraphBuilder::slice(const Expr& e) {
  const char* signature = "slice(x, axis, start, end)";
  std::optional<std::pair<NodeId, int64_t>> x = fixedAxis(e, {"axis", "start", "end"}, signature);
  if (!x) return std::nullopt;
  int64_t n = graph_.node(x->first).shape[static_cast<size_t>(x->second)].extent;
  std::optional<int64_t> start = integerArg(e, 2, "start");
  std::optional<int64_t> end = start ? integerArg(e, 3, "end") : std::nullopt;
  if (!end) return std::nullopt;
  const Expr& start_arg = argument(e, 2, "start");
  const Expr& end_arg = argument(e, 3, "end");
  if (*start < -n || *start >= n) {
    error(dsl::DiagKind::BadAttribute, start_arg.span,
          fmt::format("`start` of `slice` must be in [{}, {}) for axis {} of size {}, got {}", -n, n, x->second, n, *start));
    return std::nullopt;
  }
  if (*end < -n || *end > n) {
    error(dsl::DiagKind::BadAttribute, end_arg.span,
          fmt::format("`end` of `slice` must be in [{}, {}] for axis {} of size {}, got {}", -n, n, x->second, n, *end));
    return std::nullopt;
  }
  Attrs attrs;
  attrs.axes = {x->second};
  attrs.start = *start < 0 ? *start + n : *start;
  attrs.end = *end < 0 ? *end + n : *end;
  if (attrs.start >= attrs.end) {
    error(dsl::DiagKind::BadAttribute, end_arg.span,
          fmt::format("`slice` of entries [{}, {}) along axis {} is empty; `end` must come after `start`", attrs.start,
                      attrs.end, x->second));
    return std::nullopt;
  }
  return apply(Op::Slice, {x->first}, attrs, e, {e.args[0].get()});
}

std::optional<Value> GraphBuilder::chunk(const Expr& e) {
  const char* signature = "chunk(x, axis, n, i)";
  std::optional<std::pair<NodeId, int64_t>> x = fixedAxis(e, {"axis", "n", "i"}, signature);
  if (!x) return std::nullopt;
  int64_t size = graph_.node(x->first).shape[static_cast<size_t>(x->second)].extent;
  std::optional<int64_t> n = integerArg(e, 2, "n");
  std::optional<int64_t> i = n ? integerArg(e, 3, "i") : std::nullopt;
  if (!i) return std::nullopt;
  if (*n < 1 || size % *n != 0) {
    error(dsl::DiagKind::BadAttribute, argument(e, 2, "n").span,
          fmt::format("`chunk` cuts axis {} of size {} into `n` equal chunks; {} does not divide {}", x->second, size,
                      *n, size));
    return std::nullopt;
  }
  if (*i < 0 || *i >= *n) {
    error(dsl::DiagKind::BadAttribute, argument(e, 3, "i").span,
          fmt::format("`i` of `chunk` picks one of {} chunks: it must be in [0, {}), got {}", *n, *n, *i));
    return std::nullopt;
  }
  Attrs attrs;
  attrs.axes = {x->second};
  attrs.start = *i * (size / *n);
  attrs.end = attrs.start + size / *n;
  return apply(Op::Slice, {x->first}, attrs, e, {e.args[0].get()});
}

}  // namespace nnc::graph_building
