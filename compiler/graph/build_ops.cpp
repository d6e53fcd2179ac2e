// Graph building of elementwise math, reductions, layout ops and losses; see graph_builder.h.
#include "compiler/graph/graph_builder.h"

#include <fmt/format.h>

#include <algorithm>

namespace nnc::graph_building {

std::optional<Value> GraphBuilder::unaryCall(const Expr& e, Op op) {
  if (!expectArgs(e, 1, fmt::format("{}(x)", e.text).c_str())) return std::nullopt;
  NodeId a = tensorExpr(*e.args[0]);
  if (a == kNoNode) return std::nullopt;
  return apply(op, {a}, {}, e, {e.args[0].get()});
}

std::optional<Value> GraphBuilder::elementwiseCall(const Expr& e) {
  Attrs attrs;
  if (e.text == "minimum" || e.text == "maximum") {
    if (!expectArgs(e, 2, fmt::format("{}(a, b)", e.text).c_str())) return std::nullopt;
    NodeId a = tensorExpr(*e.args[0]);
    NodeId b = tensorExpr(*e.args[1]);
    if (a == kNoNode || b == kNoNode) return std::nullopt;
    return apply(e.text == "minimum" ? Op::Minimum : Op::Maximum, {a, b}, attrs, e, {e.args[0].get(), e.args[1].get()});
  }
  Op op = Op::Clamp;
  bool ok = true;
  if (e.text == "pow") {
    op = Op::Pow;
    ok = attributeArgs(e, {"p"}, "pow(x, p)") && numberArg(e, 1, "p", attrs.alpha, true);
  } else if (e.text == "clamp") {
    ok = attributeArgs(e, {"low", "high"}, "clamp(x, low, high)") && numberArg(e, 1, "low", attrs.alpha, true) &&
         numberArg(e, 2, "high", attrs.beta, true);
    if (ok && !(attrs.alpha < attrs.beta)) {
      error(dsl::DiagKind::BadAttribute, e.span,
            fmt::format("`clamp(x, low, high)` needs low < high, got {} and {}", attrs.alpha, attrs.beta));
      ok = false;
    }
  } else if (e.text == "hardtanh") {
    ok = attributeArgs(e, {}, "hardtanh(x)");
    attrs.alpha = -1;
    attrs.beta = 1;
  } else if (e.text == "leaky_relu") {
    op = Op::LeakyRelu;
    attrs.alpha = 0.01;  // torch.nn.LeakyReLU's negative_slope
    ok = attributeArgs(e, {"slope"}, "leaky_relu(x, slope = 0.01)") && numberArg(e, 1, "slope", attrs.alpha);
  } else if (e.text == "elu") {
    op = Op::Elu;
    attrs.alpha = 1;
    ok = attributeArgs(e, {"alpha"}, "elu(x, alpha = 1.0)") && numberArg(e, 1, "alpha", attrs.alpha);
  } else {
    op = Op::Gelu;
    ok = attributeArgs(e, {"approximate"}, "gelu(x, approximate = \"none\")") && geluApproximate(e, attrs);
  }
  NodeId x = e.args.empty() ? kNoNode : tensorExpr(*e.args[0]);
  if (!ok || x == kNoNode) return std::nullopt;
  return apply(op, {x}, attrs, e, {e.args[0].get()});
}

bool GraphBuilder::attributeArgs(const Expr& e, const std::vector<std::string>& names, const char* signature) {
  if (e.args.empty() || e.args.size() > 1 + names.size()) {
    std::string counts = names.empty() ? "1 argument" : fmt::format("1 to {} arguments", 1 + names.size());
    error(dsl::DiagKind::WrongArgumentCount, e.span, fmt::format("`{}` takes {}: `{}`", e.text, counts, signature));
    return false;
  }
  for (size_t k = 0; k < e.kwargs.size(); ++k) {
    const dsl::KeywordArg& kw = e.kwargs[k];
    auto at = std::find(names.begin(), names.end(), kw.name);
    if (at == names.end()) {
      error(dsl::DiagKind::BadAttribute, kw.name_span,
            fmt::format("unknown argument `{}` of `{}`{}", kw.name, signature, dsl::didYouMean(kw.name, names)));
      return false;
    }
    bool repeated = std::any_of(e.kwargs.begin(), e.kwargs.begin() + static_cast<long>(k),
                                [&](const dsl::KeywordArg& earlier) { return earlier.name == kw.name; });
    if (repeated || static_cast<size_t>(at - names.begin()) + 1 < e.args.size()) {
      error(dsl::DiagKind::BadAttribute, kw.name_span, fmt::format("argument `{}` is given twice", kw.name));
      return false;
    }
  }
  return true;
}

bool GraphBuilder::geluApproximate(const Expr& e, Attrs& attrs) {
  const Expr* arg = e.args.size() > 1 ? e.args[1].get() : nullptr;
  for (const dsl::KeywordArg& kw : e.kwargs) arg = kw.value.get();
  if (!arg) return true;
  if (arg->kind != ExprKind::String || (arg->text != "none" && arg->text != "tanh")) {
    error(dsl::DiagKind::BadAttribute, arg->span, "`approximate` of `gelu` must be \"none\" or \"tanh\"");
    return false;
  }
  attrs.approximate = arg->text == "tanh";
  return true;
}

std::optional<Value> GraphBuilder::crossEntropy(const Expr& e) {
  if (!expectArgs(e, 2, "cross_entropy(logits, labels)")) return std::nullopt;
  NodeId logits = tensorExpr(*e.args[0]);
  NodeId labels = tensorExpr(*e.args[1]);
  if (logits == kNoNode || labels == kNoNode) return std::nullopt;
  return apply(Op::CrossEntropy, {logits, labels}, {}, e, {e.args[0].get(), e.args[1].get()});
}

std::optional<int64_t> GraphBuilder::axisArg(const Expr& arg, size_t rank, const std::string& what) {
  std::optional<Value> value = expr(arg);
  if (!value) return std::nullopt;
  double number = value->number.value_or(0.5);
  auto r = static_cast<double>(rank);
  if (!value->number || number != std::floor(number) || number < -r || number >= r) {
    error(dsl::DiagKind::BadAttribute, arg.span,
          fmt::format("{} must be an integer axis in [{}, {}) of a tensor of rank {}", what, -r, r, rank));
    return std::nullopt;
  }
  return static_cast<int64_t>(number < 0 ? number + r : number);
}

std::optional<Value> GraphBuilder::reduction(const Expr& e, Op op) {
  bool along = op == Op::Softmax || op == Op::LogSoftmax;
  std::string signature = e.text + (along ? "(x, axis = -1)" : "(x, axis = a, keepdims = 0)");
  if (e.args.size() != 1) {
    error(dsl::DiagKind::WrongArgumentCount, e.span,
          fmt::format("`{}` takes one tensor and keyword attributes: `{}`", e.text, signature));
    return std::nullopt;
  }
  NodeId x = tensorExpr(*e.args[0]);
  if (x == kNoNode) return std::nullopt;
  size_t rank = graph_.node(x).shape.size();
  Attrs attrs;
  bool has_axis = false;
  for (const dsl::KeywordArg& kw : e.kwargs) {
    if (kw.name == "axis") {
      std::optional<int64_t> axis = axisArg(*kw.value, rank, fmt::format("`axis` of `{}`", e.text));
      if (!axis) return std::nullopt;
      attrs.axes = {*axis};
      has_axis = true;
    } else if (kw.name == "keepdims" && !along) {
      std::optional<Value> value = expr(*kw.value);
      if (!value) return std::nullopt;
      if (!value->number || (*value->number != 0 && *value->number != 1)) {
        error(dsl::DiagKind::BadAttribute, kw.value->span, fmt::format("`keepdims` of `{}` must be 0 or 1", e.text));
        return std::nullopt;
      }
      attrs.keepdims = *value->number == 1;
    } else {
      error(dsl::DiagKind::BadAttribute, kw.value->span,
            fmt::format("`{}` has no attribute `{}`: `{}`", e.text, kw.name, signature));
      return std::nullopt;
    }
  }
  if (!has_axis && along) {
    if (rank == 0) {
      error(dsl::DiagKind::ShapeMismatch, e.span, fmt::format("`{}` needs a tensor with at least one axis", e.text));
      return std::nullopt;
    }
    attrs.axes = {static_cast<int64_t>(rank) - 1};
  }
  if (!has_axis && !along)
    for (size_t i = 0; i < rank; ++i) attrs.axes.push_back(static_cast<int64_t>(i));
  return apply(op, {x}, attrs, e, {e.args[0].get()});
}

std::optional<Value> GraphBuilder::transpose(const Expr& e) {
  if ((e.args.size() != 1 && e.args.size() != 3) || !e.kwargs.empty()) {
    error(dsl::DiagKind::WrongArgumentCount, e.span, "`transpose` takes `transpose(x)` or `transpose(x, a, b)`");
    return std::nullopt;
  }
  NodeId x = tensorExpr(*e.args[0]);
  if (x == kNoNode) return std::nullopt;
  size_t rank = graph_.node(x).shape.size();
  Attrs attrs;
  for (size_t i = 0; i < rank; ++i) attrs.axes.push_back(static_cast<int64_t>(i));
  if (e.args.size() == 1) {
    if (rank < 2) {
      error(dsl::DiagKind::ShapeMismatch, e.span,
            fmt::format("`transpose(x)` swaps the last two axes, but x has shape {}",
                        shapeToString(graph_.node(x).shape)));
      return std::nullopt;
    }
    std::swap(attrs.axes[rank - 1], attrs.axes[rank - 2]);
  } else {
    std::optional<int64_t> a = axisArg(*e.args[1], rank, "the first axis of `transpose`");
    std::optional<int64_t> b = axisArg(*e.args[2], rank, "the second axis of `transpose`");
    if (!a || !b) return std::nullopt;
    std::swap(attrs.axes[static_cast<size_t>(*a)], attrs.axes[static_cast<size_t>(*b)]);
  }
  return apply(Op::Transpose, {x}, attrs, e, {e.args[0].get()});
}

std::optional<Value> GraphBuilder::permute(const Expr& e) {
  if (e.args.empty() || !e.kwargs.empty()) {
    error(dsl::DiagKind::WrongArgumentCount, e.span, "`permute` takes `permute(x, a0, a1, ..., an)`: one axis per axis of x");
    return std::nullopt;
  }
  NodeId x = tensorExpr(*e.args[0]);
  if (x == kNoNode) return std::nullopt;
  const Shape& shape = graph_.node(x).shape;
  if (e.args.size() - 1 != shape.size()) {
    error(dsl::DiagKind::WrongArgumentCount, e.span,
          fmt::format("`permute` of a tensor {} takes {} axes, one per axis, got {}", shapeToString(shape),
                      shape.size(), e.args.size() - 1));
    return std::nullopt;
  }
  Attrs attrs;
  std::vector<bool> taken(shape.size(), false);
  for (size_t i = 1; i < e.args.size(); ++i) {
    std::optional<int64_t> axis = axisArg(*e.args[i], shape.size(), fmt::format("axis {} of `permute`", i - 1));
    if (!axis) return std::nullopt;
    if (taken[static_cast<size_t>(*axis)]) {
      error(dsl::DiagKind::BadAttribute, e.args[i]->span,
            fmt::format("`permute` takes each axis once; axis {} is given twice", *axis));
      return std::nullopt;
    }
    taken[static_cast<size_t>(*axis)] = true;
    attrs.axes.push_back(*axis);
  }
  return apply(Op::Transpose, {x}, attrs, e, {e.args[0].get()});
}

std::optional<Value> GraphBuilder::reshape(const Expr& e) {
  bool flatten = e.text == "flatten";
  if ((flatten ? e.args.size() != 1 : e.args.size() < 2) || !e.kwargs.empty()) {
    error(dsl::DiagKind::WrongArgumentCount, e.span,
          flatten ? "`flatten` takes one argument: `flatten(x)`" : "`reshape` takes `reshape(x, d1, ..., dn)`");
    return std::nullopt;
  }
  NodeId x = tensorExpr(*e.args[0]);
  if (x == kNoNode) return std::nullopt;
  const Shape& shape = graph_.node(x).shape;
  if (shape.empty()) {
    error(dsl::DiagKind::ShapeMismatch, e.span, fmt::format("`{}` keeps the first dimension, but x is a scalar", e.text));
    return std::nullopt;
  }
  Attrs attrs;
  attrs.shape = {shape[0]};
  if (flatten) {
    Dim rest{1, {}};
    for (size_t i = 1; i < shape.size(); ++i) {
      if (shape[i].isSymbolic()) {
        error(dsl::DiagKind::ShapeMismatch, e.span,
              fmt::format("`flatten` needs fixed dimensions after the first, got {}", shapeToString(shape)));
        return std::nullopt;
      }
      rest.extent *= shape[i].extent;
    }
    attrs.shape.push_back(rest);
  } else {
    int64_t count = 1;
    for (size_t i = 1; i < e.args.size(); ++i) {
      std::optional<int64_t> dim = positiveInteger(*e.args[i], "a dimension of `reshape`");
      if (!dim) return std::nullopt;
      if (count > (int64_t{1} << 40) / *dim) {  // no real tensor is this large; keeps the products in range
        error(dsl::DiagKind::BadAttribute, e.args[i]->span, "`reshape` to more than 2^40 elements per example");
        return std::nullopt;
      }
      count *= *dim;
      attrs.shape.push_back(Dim{*dim, {}});
    }
  }
  return apply(Op::Reshape, {x}, attrs, e, {e.args[0].get()});
}

std::optional<Value> GraphBuilder::pairLoss(const Expr& e, Op op, const char* signature) {
  if (!expectArgs(e, 2, signature)) return std::nullopt;
  NodeId a = tensorExpr(*e.args[0]);
  NodeId b = tensorExpr(*e.args[1]);
  if (a == kNoNode || b == kNoNode) return std::nullopt;
  return apply(op, {a, b}, {}, e, {e.args[0].get(), e.args[1].get()});
}

std::optional<Value> GraphBuilder::klNormal(const Expr& e) {
  if (!expectArgs(e, 2, "kl_normal(mu, logvar)")) return std::nullopt;
  NodeId mu = tensorExpr(*e.args[0]);
  NodeId logvar = tensorExpr(*e.args[1]);
  if (mu == kNoNode || logvar == kNoNode) return std::nullopt;
  const Shape shape = graph_.node(mu).shape;
  if (shape.empty() || shape != graph_.node(logvar).shape || graph_.node(mu).dtype != DType::F32 ||
      graph_.node(logvar).dtype != DType::F32) {
    dsl::Diagnostic& diag = error(
        dsl::DiagKind::ShapeMismatch, e.span,
        fmt::format("`kl_normal` needs `mu` and `logvar` of one shape [batch, ...], got {} and {}",
                    shapeToString(shape), shapeToString(graph_.node(logvar).shape)));
    for (auto [arg, id] : {std::pair{e.args[0].get(), mu}, {e.args[1].get(), logvar}})
      if (arg->kind == ExprKind::Name)
        dsl::DiagnosticEngine::note(diag, graph_.node(id).span, fmt::format("`{}` declared here with shape {}",
                                                                            arg->text, shapeToString(graph_.node(id).shape)));
    return std::nullopt;
  }
  // 1 + logvar - mu^2 - exp(logvar), per element
  NodeId terms = node(Op::Sub, {node(Op::Sub, {node(Op::Add, {number(1, e), logvar}, e), node(Op::Square, {mu}, e)}, e),
                                node(Op::Exp, {logvar}, e)},
                      e);
  Attrs per_example, batch;
  for (size_t i = 1; i < shape.size(); ++i) per_example.axes.push_back(static_cast<int64_t>(i));
  batch.axes = {0};
  NodeId summed = shape.size() > 1 ? node(Op::Sum, {terms}, e, per_example) : terms;
  return Value{node(Op::Mul, {number(-0.5, e), node(Op::Mean, {summed}, e, batch)}, e), {}};
}

std::optional<Value> GraphBuilder::causalMask(const Expr& e) {
  if (!expectArgs(e, 1, "causal_mask(T)")) return std::nullopt;
  std::optional<int64_t> size = positiveInteger(*e.args[0], "the size `T` of `causal_mask`");
  if (!size) return std::nullopt;
  if (*size > 46340) {  // T^2 elements must fit a buffer's 32-bit index
    error(dsl::DiagKind::BadAttribute, e.args[0]->span,
          fmt::format("`causal_mask({})` would have {}^2 elements; T must be at most 46340", *size, *size));
    return std::nullopt;
  }
  Attrs attrs;
  attrs.shape = {Dim{*size, {}}, Dim{*size, {}}};
  return apply(Op::CausalMask, {}, attrs, e, {});
}

std::optional<Value> GraphBuilder::l2Penalty(const Expr& e) {
  if (e.args.empty() || !e.kwargs.empty()) {
    error(dsl::DiagKind::WrongArgumentCount, e.span, "`l2_penalty` takes one or more tensors: `l2_penalty(W1, W2)`");
    return std::nullopt;
  }
  NodeId total = kNoNode;
  for (const dsl::ExprPtr& arg : e.args) {
    NodeId w = tensorExpr(*arg);
    if (w == kNoNode) return std::nullopt;
    std::optional<Value> square = apply(Op::Mul, {w, w}, {}, e, {arg.get(), arg.get()});
    if (!square) return std::nullopt;
    Attrs all;
    for (size_t i = 0; i < graph_.node(w).shape.size(); ++i) all.axes.push_back(static_cast<int64_t>(i));
    NodeId norm = graph_.add(Op::Sum, {square->node}, all, {}, e.span);
    total = total == kNoNode ? norm : graph_.add(Op::Add, {total, norm}, {}, {}, e.span);
  }
  return Value{total, {}};
}

}  // namespace nnc::graph_building
