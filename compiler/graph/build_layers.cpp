// Graph building of layers: linear, embedding, batch_norm, layer_norm, dropout, prelu; see graph_builder.h.
#include "compiler/graph/graph_builder.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace nnc::graph_building {

std::optional<Value> GraphBuilder::linear(const Expr& e) {
  if (!expectArgs(e, 2, "linear(x, out_features)")) return std::nullopt;
  std::optional<int64_t> out = positiveInteger(*e.args[1], "`out_features` of `linear`");
  std::optional<std::string> name = layerName(e);
  NodeId x = tensorExpr(*e.args[0]);
  if (!out || !name || x == kNoNode) return std::nullopt;
  const Shape& in_shape = graph_.node(x).shape;
  if (in_shape.size() != 2 || in_shape[1].isSymbolic()) {
    error(dsl::DiagKind::ShapeMismatch, e.args[0]->span, fmt::format("`linear` needs an input [batch, features], got {}",
                                              shapeToString(in_shape)));
    return std::nullopt;
  }
  double bound = 1.0 / std::sqrt(static_cast<double>(in_shape[1].extent));  // torch.nn.Linear's default
  ParamInit init{InitKind::Uniform, -bound, bound};
  NodeId weight = declareParam(*name + ".weight", {{*out, {}}, in_shape[1]}, init, e.span);
  if (weight == kNoNode) return std::nullopt;
  NodeId bias = declareParam(*name + ".bias", {{*out, {}}}, init, e.span);
  Attrs attrs;
  attrs.transpose_b = true;
  NodeId product = graph_.add(Op::MatMul, {x, weight}, attrs, {}, e.span);
  return Value{graph_.add(Op::Add, {product, bias}, {}, {}, e.span), {}};
}

// embedding(ids, num, dim): the parameter `<binding>.weight` [num, dim], initialized N(0, 1) as
// torch.nn.Embedding's, and its rows gathered at the ids: [.., dim] for ids i32 [..]. Ids outside [0, num) read the
// nearest row (the lowering clamps them; the trainer checks its data separately).
std::optional<Value> GraphBuilder::embedding(const Expr& e) {
  if (!expectArgs(e, 3, "embedding(ids, num, dim)")) return std::nullopt;
  std::optional<int64_t> num = positiveInteger(*e.args[1], "`num` of `embedding`");
  std::optional<int64_t> dim = positiveInteger(*e.args[2], "`dim` of `embedding`");
  std::optional<std::string> name = layerName(e);
  NodeId ids = tensorExpr(*e.args[0]);
  if (!num || !dim || !name || ids == kNoNode) return std::nullopt;
  const Node& ids_node = graph_.node(ids);
  if (ids_node.dtype != DType::I32 || ids_node.shape.size() > kMaxRank - 1) {  // the result adds an axis
    error(dsl::DiagKind::ShapeMismatch, e.args[0]->span,
          fmt::format("`embedding` looks up integer ids `i32` of rank at most {}, got {} {}", kMaxRank - 1,
                      dtypeName(ids_node.dtype), shapeToString(ids_node.shape)));
    return std::nullopt;
  }
  NodeId weight = declareParam(*name + ".weight", {{*num, {}}, {*dim, {}}}, {InitKind::Normal, 0, 1}, e.span);
  if (weight == kNoNode) return std::nullopt;
  return Value{graph_.add(Op::Gather, {weight, ids}, {}, {}, e.span), {}};
}

NodeId GraphBuilder::node(Op op, std::vector<NodeId> in, const Expr& at, Attrs attrs) {
  return graph_.add(op, std::move(in), std::move(attrs), {}, at.span);
}

NodeId GraphBuilder::channelColumn(NodeId v, size_t rank, const Expr& at) {
  if (rank <= 2) return v;
  Attrs column;
  column.shape = {graph_.node(v).shape[0]};
  column.shape.resize(rank - 1, Dim{1, {}});
  return node(Op::Reshape, {v}, at, column);
}

NodeId GraphBuilder::normalize(NodeId centered, NodeId var, double eps, NodeId weight, NodeId bias, const Expr& at) {
  NodeId xhat = node(Op::Div, {centered, node(Op::Sqrt, {node(Op::Add, {var, number(eps, at)}, at)}, at)}, at);
  return node(Op::Add, {node(Op::Mul, {xhat, weight}, at), bias}, at);
}

bool GraphBuilder::numberAttributes(const Expr& e, const std::vector<std::string>& names, std::vector<double>& values,
                      const std::string& signature) {
  if (!attributeArgs(e, names, signature.c_str())) return false;
  for (size_t i = 0; i < names.size(); ++i)
    if (!numberArg(e, i + 1, names[i].c_str(), values[i])) return false;
  return true;
}

std::optional<Value> GraphBuilder::batchNorm(const Expr& e) {
  std::vector<double> v = {0.1, 1e-5};  // momentum, eps
  if (!numberAttributes(e, {"momentum", "eps"}, v, "batch_norm(x, momentum = 0.1, eps = 1e-5)"))
    return std::nullopt;
  if (!(v[0] >= 0 && v[0] <= 1) || !(v[1] > 0)) {
    error(dsl::DiagKind::BadAttribute, e.span, "`batch_norm` needs 0 <= momentum <= 1 and eps > 0");
    return std::nullopt;
  }
  std::optional<std::string> name = layerName(e);
  NodeId x = tensorExpr(*e.args[0]);
  if (!name || x == kNoNode) return std::nullopt;
  const Shape shape = graph_.node(x).shape;
  if (shape.size() < 2 || shape[1].isSymbolic()) {
    error(dsl::DiagKind::ShapeMismatch, e.args[0]->span,
          fmt::format("`batch_norm` needs an input [batch, channels, ...], got {}", shapeToString(shape)));
    return std::nullopt;
  }
  const Shape channels = {shape[1]};
  NodeId weight = declareParam(*name + ".weight", channels, {InitKind::Ones}, e.span);
  if (weight == kNoNode) return std::nullopt;
  NodeId bias = declareParam(*name + ".bias", channels, {InitKind::Zeros}, e.span);
  NodeId running_mean = declareParam(*name + ".running_mean", channels, {InitKind::Zeros}, e.span, false);
  NodeId running_var = declareParam(*name + ".running_var", channels, {InitKind::Ones}, e.span, false);
  NodeId batches = declareParam(*name + ".num_batches_tracked", {}, {InitKind::Zeros}, e.span, false);
  graph_.params[graph_.node(batches).attrs.index].is_integer = true;
  mode_dependent_ = true;
  size_t rank = shape.size();
  NodeId weight_column = channelColumn(weight, rank, e), bias_column = channelColumn(bias, rank, e);
  if (mode_ == Mode::Eval) {
    NodeId centered = node(Op::Sub, {x, channelColumn(running_mean, rank, e)}, e);
    return Value{normalize(centered, channelColumn(running_var, rank, e), v[1], weight_column, bias_column, e), {}};
  }
  Attrs stats;  // every axis but the channels, kept so that the statistics broadcast against x
  stats.keepdims = true;
  Shape per_channel_count = shape;  // x's shape with the channels reduced, to count n
  per_channel_count[1] = Dim{1, {}};
  for (size_t i = 0; i < rank; ++i)
    if (i != 1) stats.axes.push_back(static_cast<int64_t>(i));
  NodeId mean = node(Op::Mean, {x}, e, stats);
  NodeId centered = node(Op::Sub, {x, mean}, e);
  NodeId var = node(Op::Mean, {node(Op::Square, {centered}, e)}, e, stats);

  Attrs flat, all;
  flat.shape = channels;
  for (size_t i = 0; i < rank; ++i) all.axes.push_back(static_cast<int64_t>(i));
  NodeId n = node(Op::Sum, {graph_.fill(1, per_channel_count, e.span)}, e, all);
  NodeId bessel = node(Op::Div, {n, node(Op::Maximum, {node(Op::Sub, {n, number(1, e)}, e), number(1, e)}, e)}, e);
  auto average = [&](NodeId running, NodeId batch_value) {
    NodeId kept = node(Op::Mul, {number(1 - v[0], e), running}, e);
    NodeId update = node(Op::Add, {kept, node(Op::Mul, {number(v[0], e), node(Op::Reshape, {batch_value}, e, flat)}, e)}, e);
    graph_.params[graph_.node(running).attrs.index].update = update;
  };
  average(running_mean, mean);
  average(running_var, node(Op::Mul, {var, bessel}, e));
  graph_.params[graph_.node(batches).attrs.index].update = node(Op::Add, {batches, number(1, e)}, e);
  return Value{normalize(centered, var, v[1], weight_column, bias_column, e), {}};
}

std::optional<Value> GraphBuilder::layerNorm(const Expr& e) {
  std::vector<double> v = {1, 1e-5};  // dims, eps
  if (!numberAttributes(e, {"dims", "eps"}, v, "layer_norm(x, dims = 1, eps = 1e-5)")) return std::nullopt;
  std::optional<std::string> name = layerName(e);
  NodeId x = tensorExpr(*e.args[0]);
  if (!name || x == kNoNode) return std::nullopt;
  const Shape shape = graph_.node(x).shape;
  if (v[0] != std::floor(v[0]) || v[0] < 1 || v[0] >= static_cast<double>(shape.size()) || !(v[1] > 0)) {
    error(dsl::DiagKind::BadAttribute, e.span,
          fmt::format("`layer_norm` needs eps > 0 and 1 <= dims < {} (the rank of x, {}, less the batch)",
                      shape.size(), shapeToString(shape)));
    return std::nullopt;
  }
  Attrs stats;
  stats.keepdims = true;
  Shape normalized;
  for (size_t i = shape.size() - static_cast<size_t>(v[0]); i < shape.size(); ++i) {
    if (shape[i].isSymbolic()) {
      error(dsl::DiagKind::ShapeMismatch, e.span, fmt::format("`layer_norm` normalizes fixed dimensions, got {}", shapeToString(shape)));
      return std::nullopt;
    }
    stats.axes.push_back(static_cast<int64_t>(i));
    normalized.push_back(shape[i]);
  }
  NodeId weight = declareParam(*name + ".weight", normalized, {InitKind::Ones}, e.span);
  if (weight == kNoNode) return std::nullopt;
  NodeId bias = declareParam(*name + ".bias", normalized, {InitKind::Zeros}, e.span);
  NodeId centered = node(Op::Sub, {x, node(Op::Mean, {x}, e, stats)}, e);
  NodeId var = node(Op::Mean, {node(Op::Square, {centered}, e)}, e, stats);
  return Value{normalize(centered, var, v[1], weight, bias, e), {}};
}

std::optional<Value> GraphBuilder::dropout(const Expr& e) {
  std::vector<double> v = {0.5};
  if (!numberAttributes(e, {"p"}, v, "dropout(x, p = 0.5)")) return std::nullopt;
  if (!(v[0] >= 0 && v[0] < 1)) {
    error(dsl::DiagKind::BadAttribute, e.span, "the probability `p` of `dropout` must be in [0, 1)");
    return std::nullopt;
  }
  NodeId x = tensorExpr(*e.args[0]);
  if (x == kNoNode) return std::nullopt;
  if (v[0] == 0) return Value{x, {}};
  mode_dependent_ = true;
  if (mode_ == Mode::Eval) return Value{x, {}};
  randomScalars();
  Attrs mask;
  mask.shape = graph_.node(x).shape;
  mask.alpha = v[0];
  mask.index = dropout_sites_++;
  return Value{node(Op::Mul, {x, node(Op::DropoutMask, {graph_.dropout_seed, graph_.dropout_row}, e, mask)}, e), {}};
}

void GraphBuilder::randomScalars() {
  if (graph_.dropout_seed != kNoNode) return;
  for (auto [leaf, name] : {std::pair{&graph_.dropout_seed, "dropout_seed"}, {&graph_.dropout_row, "dropout_row"}}) {
    Node scalar;
    scalar.op = Op::Scalar;
    scalar.dtype = DType::I32;
    scalar.name = name;
    *leaf = append(std::move(scalar));
  }
}

std::optional<Value> GraphBuilder::randnLike(const Expr& e) {
  if (!expectArgs(e, 1, "randn_like(x)")) return std::nullopt;
  NodeId x = tensorExpr(*e.args[0]);
  if (x == kNoNode) return std::nullopt;
  mode_dependent_ = true;
  Shape shape = graph_.node(x).shape;
  if (mode_ == Mode::Eval) return Value{graph_.fill(0, shape, e.span), {}};  // predict is deterministic: the mean
  randomScalars();
  Attrs attrs;
  attrs.shape = std::move(shape);
  attrs.index = dropout_sites_++;
  return Value{node(Op::RandNormal, {graph_.dropout_seed, graph_.dropout_row}, e, attrs), {}};
}

std::optional<Value> GraphBuilder::latent(const Expr& e) {
  if (!expectArgs(e, 1, "latent(z)")) return std::nullopt;
  NodeId z = tensorExpr(*e.args[0]);
  if (z == kNoNode) return std::nullopt;
  const Shape& shape = graph_.node(z).shape;
  bool batched = shape.size() >= 2 && shape[0].isSymbolic() &&
                 std::none_of(shape.begin() + 1, shape.end(), [](const Dim& dim) { return dim.isSymbolic(); });
  if (!batched || graph_.node(z).dtype != DType::F32) {
    error(dsl::DiagKind::BadLatent, e.span,
          fmt::format("a latent code is `f32[B, ...]`, a vector (or tensor) of fixed extents per example, but this is "
                      "{}{}", dtypeName(graph_.node(z).dtype), shapeToString(shape)));
    return std::nullopt;
  }
  if (mode_ == Mode::Train) {
    if (latent_call_) {
      dsl::Diagnostic& diag = error(dsl::DiagKind::BadLatent, e.span,
                                    "a model has one latent code; `sample` decodes it alone");
      dsl::DiagnosticEngine::note(diag, latent_call_->span, "first marked here");
      return std::nullopt;
    }
    latent_call_ = &e;
  }
  graph_.latent = z;  // the eval-mode pass, when there is one, marks its own node last
  return Value{z, {}};
}

std::optional<Value> GraphBuilder::prelu(const Expr& e) {
  std::vector<double> v = {1, 0.25};
  if (!numberAttributes(e, {"num_parameters", "init"}, v, "prelu(x, num_parameters = 1, init = 0.25)"))
    return std::nullopt;
  std::optional<std::string> name = layerName(e);
  NodeId x = tensorExpr(*e.args[0]);
  if (!name || x == kNoNode) return std::nullopt;
  const Shape shape = graph_.node(x).shape;
  bool per_channel = shape.size() >= 2 && !shape[1].isSymbolic() && v[0] == static_cast<double>(shape[1].extent);
  if (v[0] != 1 && !per_channel) {
    error(dsl::DiagKind::BadAttribute, e.span,
          fmt::format("`num_parameters` of `prelu` must be 1 or the channel count (axis 1) of x, {}", shapeToString(shape)));
    return std::nullopt;
  }
  NodeId weight = declareParam(*name + ".weight", {Dim{static_cast<int64_t>(v[0]), {}}}, {InitKind::Constant, v[1]}, e.span);
  if (weight == kNoNode) return std::nullopt;
  NodeId slope = per_channel ? channelColumn(weight, shape.size(), e) : weight;
  NodeId negative_part = node(Op::Relu, {node(Op::Neg, {x}, e)}, e);
  return Value{node(Op::Sub, {node(Op::Relu, {x}, e), node(Op::Mul, {slope, negative_part}, e)}, e), {}};
}

}  // namespace nnc::graph_building
