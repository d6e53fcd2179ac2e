// ONNX export of the eval-mode graph (see onnx_export.h): one rule per op, in graph order.
#include "compiler/onnx/onnx_export.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <stdexcept>

#include "onnx/onnx_pb.h"

namespace nnc::onnx_export {

namespace {

// A model without an ONNX form: its message names the op and where the model file wrote it.
struct NoOnnxForm : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class GraphWriter {
 public:
  GraphWriter(const Program& program, bool normalized) : g_(program.graph) {
    graph_.set_name(g_.model_name);
    const Node& features = g_.node(g_.inputs[0].node);
    features_ = g_.inputs[0].name;
    addValueInfo(graph_.add_input(), features_, features.shape, features.dtype);
    for (const ParamInfo& p : g_.params) taken_.insert(p.name);
    taken_.insert(features_);
    // Named alike in both forms (so their constants are the same), clear of the parameters' names.
    normalization_[0] = fresh("normalization.offset");
    normalization_[1] = fresh("normalization.scale");
    std::string centered = fresh(features_ + ".centered"), x = fresh(features_ + ".normalized");
    if (normalized) {  // x' = (x - offset) * scale, per feature
      node("Sub", {features_, normalization_[0]}, centered, "normalize");
      node("Mul", {centered, normalization_[1]}, x, "normalize");
    }
    names_[g_.inputs[0].node] = normalized ? x : features_;
  }

  // Translates every node predict computes, then the post-processing and the graph output.
  void write(std::vector<size_t>& params) {
    std::vector<bool> needed = ancestors(g_, {g_.output});
    for (NodeId id = 0; id < static_cast<NodeId>(g_.nodes.size()); ++id)
      if (needed[id])
        for (NodeId in : g_.node(id).inputs) users_[in].push_back(id);
    for (NodeId id = 0; id < static_cast<NodeId>(g_.nodes.size()); ++id)
      if (needed[id]) matchLayer(id);
    for (NodeId id = 0; id < static_cast<NodeId>(g_.nodes.size()); ++id)
      if (needed[id] && !names_.count(id) && !folded_.count(id)) translate(id);
    for (size_t i = 0; i < g_.params.size(); ++i)
      if (needed[g_.params[i].node]) params.push_back(i);
    postProcess();
  }

  onnx::GraphProto& graph() { return graph_; }
  // The initializer names of the normalization: offset, scale.
  const std::string* normalization() const { return normalization_; }

 private:
  // A fresh tensor name: the binding's name when it is free, else the binding or op name with a number.
  std::string fresh(const std::string& wanted) {
    std::string name = wanted;
    for (int n = 1; taken_.count(name); ++n) name = fmt::format("{}_{}", wanted, n);
    taken_.insert(name);
    return name;
  }

  std::string node(const std::string& op_type, const std::vector<std::string>& inputs, const std::string& output,
                   const std::string& scope, const std::vector<onnx::AttributeProto>& attributes = {}) {
    onnx::NodeProto* n = graph_.add_node();
    n->set_op_type(op_type);
    n->set_name(fmt::format("{}/{}_{}", scope, op_type, graph_.node_size() - 1));
    for (const std::string& in : inputs) n->add_input(in);
    n->add_output(output);
    for (const onnx::AttributeProto& a : attributes) *n->add_attribute() = a;
    return output;
  }

  static onnx::AttributeProto intAttr(const std::string& name, int64_t value) {
    onnx::AttributeProto a;
    a.set_name(name);
    a.set_type(onnx::AttributeProto::INT);
    a.set_i(value);
    return a;
  }
  static onnx::AttributeProto floatAttr(const std::string& name, double value) {
    onnx::AttributeProto a;
    a.set_name(name);
    a.set_type(onnx::AttributeProto::FLOAT);
    a.set_f(static_cast<float>(value));
    return a;
  }
  static onnx::AttributeProto intsAttr(const std::string& name, const std::vector<int64_t>& values) {
    onnx::AttributeProto a;
    a.set_name(name);
    a.set_type(onnx::AttributeProto::INTS);
    for (int64_t v : values) a.add_ints(v);
    return a;
  }

  // An initializer holding constant values (float32, or int64 for shapes and axes).
  std::string floatConstant(const std::string& wanted, const std::vector<int64_t>& dims,
                            const std::vector<float>& values) {
    onnx::TensorProto* t = graph_.add_initializer();
    t->set_name(fresh(wanted));
    t->set_data_type(onnx::TensorProto::FLOAT);
    for (int64_t d : dims) t->add_dims(d);
    t->set_raw_data(values.data(), values.size() * sizeof(float));
    return t->name();
  }
  std::string scalar(const std::string& wanted, double value) {
    return floatConstant(wanted, {}, {static_cast<float>(value)});
  }
  std::string intConstant(const std::string& wanted, const std::vector<int64_t>& values) {
    onnx::TensorProto* t = graph_.add_initializer();
    t->set_name(fresh(wanted));
    t->set_data_type(onnx::TensorProto::INT64);
    t->add_dims(static_cast<int64_t>(values.size()));
    t->set_raw_data(values.data(), values.size() * sizeof(int64_t));
    return t->name();
  }

  void addValueInfo(onnx::ValueInfoProto* info, const std::string& name, const Shape& shape, DType dtype) {
    info->set_name(name);
    onnx::TypeProto_Tensor* tensor = info->mutable_type()->mutable_tensor_type();
    tensor->set_elem_type(dtype == DType::I32 ? onnx::TensorProto::INT32 : onnx::TensorProto::FLOAT);
    for (const Dim& dim : shape) {
      onnx::TensorShapeProto_Dimension* d = tensor->mutable_shape()->add_dim();
      if (dim.isSymbolic())
        d->set_dim_param(dim.symbol);
      else
        d->set_dim_value(dim.extent);
    }
  }

  [[noreturn]] void refuse(NodeId id, const std::string& why) const {
    const Node& n = g_.node(id);
    std::string where = n.name.empty() ? "" : fmt::format(" (in `{}`)", n.name);
    if (auto users = users_.find(id); where.empty() && users != users_.end() && !g_.node(users->second[0]).name.empty())
      where = fmt::format(" (read by `{}`)", g_.node(users->second[0]).name);  // an anonymous node: where it goes
    throw NoOnnxForm(fmt::format("`{}`{}: {}", opInfo(n.op).name, where, why));
  }

  // A shape as Reshape's shape input: the batch becomes -1 (every other extent is fixed).
  std::vector<int64_t> reshapeTarget(NodeId id, const Shape& shape) const {
    std::vector<int64_t> dims;
    int symbolic = 0;
    for (const Dim& dim : shape) {
      dims.push_back(dim.isSymbolic() ? -1 : dim.extent);
      symbolic += dim.isSymbolic();
    }
    if (symbolic > 1) refuse(id, "a shape with more than one batch dimension");
    return dims;
  }

  static std::vector<int64_t> swapLastTwo(size_t rank) {
    std::vector<int64_t> perm;
    for (size_t i = 0; i < rank; ++i) perm.push_back(static_cast<int64_t>(i));
    std::swap(perm[rank - 1], perm[rank - 2]);
    return perm;
  }

  void translate(NodeId id) {
    const Node& n = g_.node(id);
    auto in = [&](size_t i) { return names_.at(n.inputs[i]); };
    std::string scope = n.name.empty() ? opInfo(n.op).name : n.name;
    std::string out = n.op == Op::Param || n.op == Op::Input ? "" : fresh(scope);
    if (auto layer = layers_.find(id); layer != layers_.end()) {  // the last node of a layer ONNX has an op for
      std::vector<std::string> inputs;
      for (NodeId in : layer->second.inputs) inputs.push_back(names_.at(in));
      node(layer->second.op_type, inputs, out, scope, layer->second.attributes);
      if (layer->second.op_type == "Conv") addWindowAttrs(g_.node(layer->second.window), true);
      names_[id] = out;
      return;
    }
    auto unary = [&](const char* op_type, std::vector<onnx::AttributeProto> attributes = {}) {
      node(op_type, {in(0)}, out, scope, attributes);
    };
    auto binary = [&](const char* op_type) { node(op_type, {in(0), in(1)}, out, scope); };
    switch (n.op) {
      case Op::Input:
        if (n.attrs.index != 0) refuse(id, "predict reads only the features");
        return;  // named in the constructor
      case Op::Param: names_[id] = g_.params[n.attrs.index].name; return;
      case Op::Fill: {
        std::vector<int64_t> dims;
        if (isBatched(n.shape)) {
          // A constant over the batch is a scalar to ONNX's broadcasting where each user's other operand has the
          // user's shape (z = mu + sigma * 0).
          if (users_[id].empty()) refuse(id, "a constant over the batch as the prediction");
          for (NodeId user : users_[id]) {
            const Node& u = g_.node(user);
            bool elementwise = u.op == Op::Add || u.op == Op::Sub || u.op == Op::Mul || u.op == Op::Div ||
                               u.op == Op::Minimum || u.op == Op::Maximum;
            NodeId other = elementwise ? u.inputs[u.inputs[0] == id ? 1 : 0] : kNoNode;
            if (!elementwise || u.shape != n.shape || g_.node(other).shape != u.shape)
              refuse(id, "a constant over the batch that is not an operand of arithmetic on its shape");
          }
        } else {
          for (const Dim& dim : n.shape) dims.push_back(dim.extent);
        }
        taken_.erase(out);
        size_t count = dims.empty() ? 1 : elementCount(n.shape, 1);
        out = floatConstant(out, dims, std::vector<float>(count, static_cast<float>(n.attrs.value)));
        break;
      }
      case Op::CausalMask: {
        int64_t t = n.shape[0].extent;
        std::vector<float> mask(t * t);
        for (int64_t row = 0; row < t; ++row)
          for (int64_t col = 0; col < t; ++col)
            mask[row * t + col] = col <= row ? 0.0f : static_cast<float>(kCausalMasked);
        taken_.erase(out);
        out = floatConstant(out, {t, t}, mask);
        break;
      }
      case Op::Add: binary("Add"); break;
      case Op::Sub: binary("Sub"); break;
      case Op::Mul: binary("Mul"); break;
      case Op::Div: binary("Div"); break;
      case Op::Minimum: binary("Min"); break;
      case Op::Maximum: binary("Max"); break;
      case Op::Neg: unary("Neg"); break;
      case Op::Relu: unary("Relu"); break;
      case Op::Exp: unary("Exp"); break;
      case Op::Log: unary("Log"); break;
      case Op::Sqrt: unary("Sqrt"); break;
      case Op::Abs: unary("Abs"); break;
      case Op::Sigmoid: unary("Sigmoid"); break;
      case Op::Tanh: unary("Tanh"); break;
      case Op::Erf: unary("Erf"); break;
      case Op::Softplus: unary("Softplus"); break;
      case Op::Identity:
      case Op::StopGradient: unary("Identity"); break;
      case Op::LeakyRelu: unary("LeakyRelu", {floatAttr("alpha", n.attrs.alpha)}); break;
      case Op::Elu: unary("Elu", {floatAttr("alpha", n.attrs.alpha)}); break;
      case Op::Square: node("Mul", {in(0), in(0)}, out, scope); break;
      case Op::Pow: node("Pow", {in(0), scalar(scope + ".exponent", n.attrs.alpha)}, out, scope); break;
      case Op::Clamp:
        node("Clip", {in(0), scalar(scope + ".min", n.attrs.alpha), scalar(scope + ".max", n.attrs.beta)}, out, scope);
        break;
      case Op::Step:  // 1 where x > 0, else 0: relu(sign(x)), exactly, in float ops alone
        node("Relu", {node("Sign", {in(0)}, fresh(scope + ".sign"), scope)}, out, scope);
        break;
      case Op::ToFloat: unary("Cast", {intAttr("to", onnx::TensorProto::FLOAT)}); break;
      case Op::Gelu: gelu(n, in(0), out, scope); break;
      case Op::MatMul:
      case Op::BatchMatMul: out = matmul(id, in(0), in(1), out, scope); break;
      case Op::Sum:
        node("ReduceSum", {in(0), intConstant(scope + ".axes", n.attrs.axes)}, out, scope,
             {intAttr("keepdims", n.attrs.keepdims)});
        break;
      case Op::Mean:
        unary("ReduceMean", {intsAttr("axes", n.attrs.axes), intAttr("keepdims", n.attrs.keepdims)});
        break;
      case Op::Max: unary("ReduceMax", {intsAttr("axes", n.attrs.axes), intAttr("keepdims", n.attrs.keepdims)}); break;
      case Op::SumTo: {  // sum the broadcast axes (keeping them), then drop the leading ones
        std::vector<int64_t> axes;
        const Shape& from = g_.node(n.inputs[0]).shape;
        size_t lead = from.size() - n.shape.size();
        for (size_t a = 0; a < from.size(); ++a)
          if (a < lead || n.shape[a - lead] != from[a]) axes.push_back(static_cast<int64_t>(a));
        std::string summed = node("ReduceSum", {in(0), intConstant(scope + ".axes", axes)}, fresh(scope + ".summed"),
                                  scope, {intAttr("keepdims", 1)});
        node("Reshape", {summed, intConstant(scope + ".shape", reshapeTarget(id, n.shape))}, out, scope);
        break;
      }
      case Op::Softmax: unary("Softmax", {intAttr("axis", n.attrs.axes[0])}); break;
      case Op::LogSoftmax: unary("LogSoftmax", {intAttr("axis", n.attrs.axes[0])}); break;
      case Op::Transpose: unary("Transpose", {intsAttr("perm", n.attrs.axes)}); break;
      case Op::Reshape:
        node("Reshape", {in(0), intConstant(scope + ".shape", reshapeTarget(id, n.shape))}, out, scope);
        break;
      case Op::BroadcastTo: broadcast(id, in(0), out, scope); break;
      case Op::Concat: node("Concat", {in(0), in(1)}, out, scope, {intAttr("axis", n.attrs.axes[0])}); break;
      case Op::Slice:
        node("Slice",
             {in(0), intConstant(scope + ".starts", {n.attrs.start}), intConstant(scope + ".ends", {n.attrs.end}),
              intConstant(scope + ".axes", {n.attrs.axes[0]})},
             out, scope);
        break;
      case Op::Gather: node("Gather", {in(0), in(1)}, out, scope, {intAttr("axis", 0)}); break;
      case Op::Conv2d:
        binary("Conv");
        addWindowAttrs(n, true);
        break;
      case Op::MaxPool2d:
        unary("MaxPool");
        addWindowAttrs(n, true);
        break;
      case Op::AvgPool2d:
        if (n.attrs.dilation[0] != 1 || n.attrs.dilation[1] != 1)
          refuse(id, "ONNX's AveragePool has no dilation (opset 17)");
        unary("AveragePool", {intAttr("count_include_pad", 1)});
        addWindowAttrs(n, false);
        break;
      case Op::GlobalAvgPool: unary("ReduceMean", {intsAttr("axes", {2, 3}), intAttr("keepdims", 0)}); break;
      default: refuse(id, "has no ONNX form in predict's graph");
    }
    names_[id] = out;
  }

  // Conv and pooling windows: kernel_shape, strides, pads (begin H, W, end H, W), dilations.
  void addWindowAttrs(const Node& n, bool dilations) {
    onnx::NodeProto* last = graph_.mutable_node(graph_.node_size() - 1);
    const Attrs& a = n.attrs;
    std::vector<int64_t> kernel = {a.kernel[0], a.kernel[1]};
    if (n.op == Op::Conv2d) {
      const Shape& w = g_.node(n.inputs[1]).shape;
      kernel = {w[2].extent, w[3].extent};
    }
    *last->add_attribute() = intsAttr("kernel_shape", kernel);
    *last->add_attribute() = intsAttr("strides", {a.stride[0], a.stride[1]});
    *last->add_attribute() = intsAttr("pads", {a.padding[0], a.padding[1], a.padding[0], a.padding[1]});
    if (dilations) *last->add_attribute() = intsAttr("dilations", {a.dilation[0], a.dilation[1]});
  }

  // gelu(x) = x (1 + erf(x / sqrt 2)) / 2, as PyTorch exports it; the tanh form
  // x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))) / 2.
  void gelu(const Node& n, const std::string& x, const std::string& out, const std::string& scope) {
    std::string inner;
    if (n.attrs.approximate) {
      std::string cube = node("Pow", {x, scalar(scope + ".three", 3)}, fresh(scope + ".cube"), scope);
      std::string scaled = node("Mul", {cube, scalar(scope + ".cubic", 0.044715)}, fresh(scope + ".cubic_term"), scope);
      std::string sum = node("Add", {x, scaled}, fresh(scope + ".sum"), scope);
      std::string arg =
          node("Mul", {sum, scalar(scope + ".sqrt_2_over_pi", std::sqrt(2 / M_PI))}, fresh(scope + ".arg"), scope);
      inner = node("Tanh", {arg}, fresh(scope + ".tanh"), scope);
    } else {
      std::string arg = node("Div", {x, scalar(scope + ".sqrt_2", std::sqrt(2.0))}, fresh(scope + ".arg"), scope);
      inner = node("Erf", {arg}, fresh(scope + ".erf"), scope);
    }
    std::string one_plus = node("Add", {inner, scalar(scope + ".one", 1)}, fresh(scope + ".one_plus"), scope);
    std::string times_x = node("Mul", {x, one_plus}, fresh(scope + ".times_x"), scope);
    node("Mul", {times_x, scalar(scope + ".half", 0.5)}, out, scope);
  }

  // op(A) @ op(B): Gemm when both are 2-D (a linear layer: transB), else MatMul after transposing the operands' last two
  // axes as needed (ONNX's MatMul broadcasts a shared 2-D operand and treats leading axes as batch, as nnc does).
  std::string matmul(NodeId id, const std::string& a, const std::string& b, std::string out, const std::string& scope) {
    const Node& n = g_.node(id);
    size_t rank_a = g_.node(n.inputs[0]).shape.size(), rank_b = g_.node(n.inputs[1]).shape.size();
    if (n.op == Op::MatMul && n.attrs.transpose_a && rank_a > 2)
      refuse(id, "a contraction over the leading axes (a backward form)");
    if (rank_a == 2 && rank_b == 2) {
      return node("Gemm", {a, b}, out, scope,
                  {intAttr("transA", n.attrs.transpose_a), intAttr("transB", n.attrs.transpose_b)});
    }
    std::string left = a, right = b;
    if (n.attrs.transpose_a)
      left = node("Transpose", {a}, fresh(scope + ".a_t"), scope, {intsAttr("perm", swapLastTwo(rank_a))});
    if (n.attrs.transpose_b)
      right = node("Transpose", {b}, fresh(scope + ".b_t"), scope, {intsAttr("perm", swapLastTwo(rank_b))});
    return node("MatMul", {left, right}, out, scope);
  }

  // The only user of `id` within predict's graph, or kNoNode.
  NodeId onlyUser(NodeId id) const {
    auto users = users_.find(id);
    return users != users_.end() && users->second.size() == 1 ? users->second[0] : kNoNode;
  }

  // The parameter vector `v` is, directly or reshaped (each reshape read by the next alone), or kNoNode.
  NodeId paramVector(NodeId v, std::vector<NodeId>& inner) const {
    const Node& n = g_.node(v);
    if (n.op == Op::Reshape && onlyUser(v) != kNoNode) {
      inner.push_back(v);
      return paramVector(n.inputs[0], inner);
    }
    return n.op == Op::Param && n.shape.size() == 1 ? v : kNoNode;
  }

  // The parameter vector [C] that `v` is as a per-channel operand of x [B, C, ..]: itself for a 2-D x, else as a
  // column [C, 1, ..] of x's rank less one; kNoNode otherwise.
  NodeId channelVector(NodeId v, const Shape& x, std::vector<NodeId>& inner) const {
    Shape column = {x[1]};
    column.resize(std::max<size_t>(x.size() - 1, 1), Dim{1, {}});
    return g_.node(v).shape == column ? paramVector(v, inner) : kNoNode;
  }

  // Layers nnc builds of several nodes that are one ONNX op, matched at their last node `id`: a linear layer's or
  // convolution's bias add (Gemm's C, Conv's B, as PyTorch exports them) and the eval-mode normalizations
  // (BatchNormalization, LayerNormalization). The nodes inside go to folded_.
  void matchLayer(NodeId id) {
    const Node& n = g_.node(id);
    if (n.op != Op::Add || onlyUser(n.inputs[0]) != id || g_.node(n.inputs[0]).shape != n.shape) return;
    std::vector<NodeId> inner;
    NodeId product = n.inputs[0];
    const Node& p = g_.node(product);
    bool gemm = p.op == Op::MatMul && p.shape.size() == 2 && g_.node(p.inputs[0]).shape.size() == 2 &&
                g_.node(p.inputs[1]).shape.size() == 2 && !p.attrs.transpose_a;
    // Gemm's C: a vector [N] along the rows; Conv's B: a column [O, 1, 1].
    NodeId bias = gemm && g_.node(n.inputs[1]).shape == Shape{p.shape[1]} ? paramVector(n.inputs[1], inner)
                  : p.op == Op::Conv2d                                   ? channelVector(n.inputs[1], p.shape, inner)
                                                                         : kNoNode;
    if (bias != kNoNode) {
      folded_.insert(product);
      folded_.insert(inner.begin(), inner.end());
      layers_[id] = gemm ? Layer{"Gemm", {p.inputs[0], p.inputs[1], bias}, {intAttr("transB", p.attrs.transpose_b)}}
                         : Layer{"Conv", {p.inputs[0], p.inputs[1], bias}, {}, product};
      return;
    }
    matchNormalization(id);
  }

  // Add(Mul(Div(Sub(x, mean), Sqrt(Add(var, eps))), weight), bias), each inner node read only inside: batch_norm's
  // (mean and var the running statistics, per channel) or layer_norm's (the Means of x and of the squared
  // deviations over the last axes, weight and bias of their shape).
  void matchNormalization(NodeId id) {
    const Node& n = g_.node(id);
    NodeId product = n.inputs[0];
    if (g_.node(product).op != Op::Mul) return;
    NodeId div = g_.node(product).inputs[0];
    if (g_.node(div).op != Op::Div || onlyUser(div) != product) return;
    NodeId sub = g_.node(div).inputs[0], sqrt = g_.node(div).inputs[1];
    if (g_.node(sub).op != Op::Sub || g_.node(sqrt).op != Op::Sqrt || onlyUser(sqrt) != div) return;
    NodeId plus_eps = g_.node(sqrt).inputs[0];
    if (g_.node(plus_eps).op != Op::Add || onlyUser(plus_eps) != sqrt) return;
    const Node& eps = g_.node(g_.node(plus_eps).inputs[1]);
    if (eps.op != Op::Fill || !eps.shape.empty()) return;
    NodeId x = g_.node(sub).inputs[0], var = g_.node(plus_eps).inputs[0];
    const Shape& x_shape = g_.node(x).shape;
    if (x_shape != n.shape || x_shape.size() < 2) return;
    std::vector<NodeId> inner = {product, div, sub, sqrt, plus_eps};
    if (onlyUser(g_.node(plus_eps).inputs[1]) == plus_eps) inner.push_back(g_.node(plus_eps).inputs[1]);
    NodeId weight = g_.node(product).inputs[1], bias = n.inputs[1];
    Layer layer;
    if (NodeId mean = channelVector(g_.node(sub).inputs[1], x_shape, inner); mean != kNoNode) {  // batch_norm
      weight = channelVector(weight, x_shape, inner), bias = channelVector(bias, x_shape, inner);
      var = channelVector(var, x_shape, inner);
      if (onlyUser(sub) != div || weight == kNoNode || bias == kNoNode || var == kNoNode) return;
      layer = Layer{"BatchNormalization", {x, weight, bias, mean, var}, {floatAttr("epsilon", eps.attrs.value)}};
    } else {  // layer_norm: sub = x - Mean(x), var = Mean(Square(sub)), over the same last axes
      const Node& mean_x = g_.node(g_.node(sub).inputs[1]);
      const Node& mean_sq = g_.node(var);
      if (mean_x.op != Op::Mean || mean_x.inputs[0] != x || mean_sq.op != Op::Mean || !mean_x.attrs.keepdims ||
          mean_sq.attrs.axes != mean_x.attrs.axes || !mean_sq.attrs.keepdims || g_.node(weight).op != Op::Param ||
          g_.node(bias).op != Op::Param || g_.node(mean_sq.inputs[0]).op != Op::Square ||
          g_.node(mean_sq.inputs[0]).inputs[0] != sub || onlyUser(var) != plus_eps ||
          onlyUser(mean_sq.inputs[0]) != var || onlyUser(g_.node(sub).inputs[1]) != sub || users_.at(sub).size() != 2)
        return;
      const Shape& normalized = g_.node(weight).shape;
      if (g_.node(bias).shape != normalized || mean_x.attrs.axes.size() != normalized.size()) return;
      int64_t axis = static_cast<int64_t>(x_shape.size() - normalized.size());
      for (size_t i = 0; i < mean_x.attrs.axes.size(); ++i)
        if (mean_x.attrs.axes[i] != axis + static_cast<int64_t>(i) || normalized[i] != x_shape[axis + i])
          return;
      inner.insert(inner.end(), {g_.node(sub).inputs[1], var, mean_sq.inputs[0]});
      layer = Layer{"LayerNormalization", {x, weight, bias},
                    {intAttr("axis", axis), floatAttr("epsilon", eps.attrs.value)}};
    }
    folded_.insert(inner.begin(), inner.end());
    layers_[id] = layer;
  }

  // broadcast_to: first the axes x lacks (Unsqueeze), then Expand; the batch keeps its extent (1 in the target).
  void broadcast(NodeId id, const std::string& x, const std::string& out, const std::string& scope) {
    const Node& n = g_.node(id);
    if (n.attrs.alpha != 0) refuse(id, "a broadcast that divides (a backward form)");
    const Shape& from = g_.node(n.inputs[0]).shape;
    std::string source = x;
    if (from.size() < n.shape.size())
      source = node("Unsqueeze", {x, intConstant(scope + ".axes", n.attrs.axes)}, fresh(scope + ".unsqueezed"), scope);
    std::vector<int64_t> target;
    for (const Dim& dim : n.shape) target.push_back(dim.isSymbolic() ? 1 : dim.extent);
    for (size_t a = 0, f = 0; a < n.shape.size(); ++a) {
      bool added = from.size() < n.shape.size() &&
                   std::find(n.attrs.axes.begin(), n.attrs.axes.end(), static_cast<int64_t>(a)) != n.attrs.axes.end();
      if (n.shape[a].isSymbolic() && (added || !from[f].isSymbolic())) refuse(id, "a broadcast over the batch");
      if (!added) ++f;
    }
    node("Expand", {source, intConstant(scope + ".shape", target)}, out, scope);
  }

  // What `trainer predict -o` makes of the output (runtime/predictions.h), and the graph output.
  void postProcess() {
    const Node& output = g_.node(g_.output);
    std::string y = names_.at(g_.output);
    Shape shape = output.shape;
    std::string name;
    if (g_.task == Task::Classify) {
      name = fresh("probabilities");
      if (shape.back().extent >= 2) {
        node("Softmax", {y}, name, "probabilities", {intAttr("axis", -1)});
      } else {  // one logit z stands for two classes: [1 - sigmoid(z), sigmoid(z)]
        std::string p = node("Sigmoid", {y}, fresh("probability"), "probabilities");
        std::string minus = node("Neg", {y}, fresh("minus_logit"), "probabilities");  // 1 - sigmoid(z), accurately
        std::string q = node("Sigmoid", {minus}, fresh("complement"), "probabilities");
        node("Concat", {q, p}, name, "probabilities", {intAttr("axis", -1)});
        shape.back().extent = 2;
      }
    } else {
      name = fresh(g_.task == Task::Regress ? "predictions" : "reconstructions");
      bool logits = g_.criterion != kNoNode && g_.node(g_.criterion).op == Op::BinaryCrossEntropyWithLogits;
      node(logits ? "Sigmoid" : "Identity", {y}, name, name);
    }
    addValueInfo(graph_.add_output(), name, shape, DType::F32);
  }

  const Graph& g_;
  onnx::GraphProto graph_;
  std::string features_, normalization_[2];
  std::map<NodeId, std::string> names_;
  std::map<NodeId, std::vector<NodeId>> users_;  // within predict's graph
  struct Layer {
    std::string op_type;
    std::vector<NodeId> inputs;
    std::vector<onnx::AttributeProto> attributes;
    NodeId window = kNoNode;  // a Conv's node: its window attributes
  };
  std::map<NodeId, Layer> layers_;  // by the layer's last node
  std::set<NodeId> folded_;         // nodes inside a layer
  std::set<std::string> taken_;
};

}  // namespace

SerializedGraph serializeEvalGraph(const Program& program) {
  SerializedGraph result;
  try {
    for (int normalized = 0; normalized < 2; ++normalized) {
      GraphWriter writer(program, normalized);
      std::vector<size_t> params;
      writer.write(params);
      result.params = params;
      result.normalization[0] = writer.normalization()[0];
      result.normalization[1] = writer.normalization()[1];
      if (!normalized) {  // the constants, the same in both forms, once
        onnx::GraphProto constants;
        *constants.mutable_initializer() = writer.graph().initializer();
        constants.SerializeToString(&result.constants);
      }
      writer.graph().clear_initializer();
      writer.graph().SerializeToString(&result.graph[normalized]);
    }
  } catch (const NoOnnxForm& e) {
    SerializedGraph none;
    none.error = e.what();
    return none;
  }
  onnx::ModelProto model;
  model.set_ir_version(onnx::IR_VERSION);
  model.set_producer_name("nnc");
  model.set_producer_version(NNC_VERSION);
  onnx::OperatorSetIdProto* opset = model.add_opset_import();
  opset->set_domain("");
  opset->set_version(kOpset);
  model.set_doc_string(
      fmt::format("model `{}` exported by nnc: what `trainer predict -o` writes", program.graph.model_name));
  model.SerializeToString(&result.model_head);
  return result;
}

}  // namespace nnc::onnx_export
