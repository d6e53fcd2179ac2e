// Graph building: walks the checked model's statements in order and appends one node per value.
//
// 1. Inputs become Input nodes (features first, then integer labels).
// 2. `param` declarations become Param nodes with their initializer.
// 3. Bindings evaluate their expression; operators and call ops go through the op table's shape rules, and a
//    failing rule becomes an error at the expression with notes at the operands' declarations.
// 4. The `loss` binding and the `return` value become graph.loss and graph.output.
#include "compiler/build_graph.h"

#include <fmt/format.h>

#include <cmath>
#include <map>

namespace nnc {

namespace {

using dsl::Expr;
using dsl::ExprKind;

class GraphBuilder {
 public:
  GraphBuilder(const dsl::CheckedModule& module, dsl::DiagnosticEngine& diags) : module_(module), diags_(diags) {}

  std::optional<Graph> build() {
    graph_.model_name = module_.model->name;
    for (const dsl::InputDecl& input : module_.model->inputs) declareInput(input);
    for (const dsl::Stmt& stmt : module_.model->body) statement(stmt);
    if (diags_.hasErrors()) return std::nullopt;
    checkEntryValues();
    if (diags_.hasErrors()) return std::nullopt;
    return std::move(graph_);
  }

 private:
  std::optional<Shape> shapeOf(const dsl::TypeExpr& type) {
    Shape shape;
    for (const dsl::DimExpr& dim : type.dims)
      shape.push_back(dim.value ? Dim{*dim.value, {}} : Dim{1, dim.symbol});
    return shape;
  }

  void declareInput(const dsl::InputDecl& decl) {
    Node node;
    node.op = Op::Input;
    node.name = decl.name;
    node.span = decl.name_span;
    node.shape = *shapeOf(decl.type);
    if (decl.type.dtype == "i32") {
      node.dtype = DType::I32;
    } else if (decl.type.dtype != "f32") {
      diags_.error(decl.type.dtype_span,
                   fmt::format("inputs of type `{}` are not supported yet; use `f32` or `i32`", decl.type.dtype));
      return;
    }
    node.attrs.index = static_cast<int64_t>(graph_.inputs.size());
    NodeId id = append(std::move(node));
    graph_.inputs.push_back({decl.name, id});
    values_[decl.name] = id;
  }

  NodeId append(Node node) {
    graph_.nodes.push_back(std::move(node));
    return static_cast<NodeId>(graph_.nodes.size() - 1);
  }

  NodeId declareParam(const std::string& name, Shape shape, ParamInit init, dsl::Span span) {
    Node node;
    node.op = Op::Param;
    node.name = name;
    node.span = span;
    node.shape = std::move(shape);
    node.attrs.index = static_cast<int64_t>(graph_.params.size());
    NodeId id = append(std::move(node));
    graph_.params.push_back({name, id, init});
    return id;
  }

  void statement(const dsl::Stmt& stmt) {
    binding_ = &stmt;
    layers_in_binding_ = 0;
    switch (stmt.kind) {
      case dsl::StmtKind::Param: {
        std::optional<ParamInit> init = initializer(*stmt.value, *stmt.type);
        if (!init) return;
        if (stmt.type->dtype != "f32") {
          diags_.error(stmt.type->dtype_span, fmt::format("parameters must be `f32`, not `{}`", stmt.type->dtype));
          return;
        }
        for (const dsl::DimExpr& dim : stmt.type->dims)
          if (!dim.value) {
            diags_.error(dim.span, fmt::format("parameter shapes must be fixed; `{}` is symbolic", dim.symbol));
            return;
          }
        values_[stmt.name] = declareParam(stmt.name, *shapeOf(*stmt.type), *init, stmt.name_span);
        return;
      }
      case dsl::StmtKind::Binding: {
        NodeId id = expr(*stmt.value);
        if (id == kNoNode) return;
        if (opInfo(graph_.nodes[id].op).family != OpFamily::Leaf) graph_.nodes[id].name = stmt.name;
        values_[stmt.name] = id;
        if (&stmt == module_.loss) graph_.loss = id;
        return;
      }
      case dsl::StmtKind::Return: graph_.output = expr(*stmt.value); return;
    }
  }

  // What the trainer runtime relies on: inputs (features [B, ...] f32, labels [B] i32), a scalar loss, and a
  // prediction [B, classes] that does not need the labels.
  void checkEntryValues() {
    const Node& loss = graph_.node(graph_.loss);
    if (!loss.shape.empty())
      diags_.error(module_.loss->value->span,
                   fmt::format("the loss must be a scalar, but this has shape {}", shapeToString(loss.shape)));
    auto inputIs = [&](size_t i, DType dtype, size_t min_rank) {
      if (i >= graph_.inputs.size()) return false;
      const Node& input = graph_.node(graph_.inputs[i].node);
      return input.dtype == dtype && input.shape.size() >= min_rank && input.shape[0].isSymbolic() &&
             (i == 0 || input.shape.size() == 1);
    };
    if (graph_.inputs.size() != 2 || !inputIs(0, DType::F32, 2) || !inputIs(1, DType::I32, 1)) {
      diags_.error(module_.model->name_span,
                   "a trainable model takes two inputs: features `f32[B, ...]` and integer labels `i32[B]`, "
                   "e.g. `model m(x: f32[B, 784], y: i32[B])`");
      return;
    }
    const Node& output = graph_.node(graph_.output);
    const Dim& batch = graph_.node(graph_.inputs[0].node).shape[0];
    if (output.shape.size() != 2 || !(output.shape[0] == batch) || output.shape[1].isSymbolic())
      diags_.error(module_.output->value->span,
                   fmt::format("the returned prediction must have shape [{}, classes], but this has shape {}",
                               batch.symbol, shapeToString(output.shape)));
    std::vector<bool> uses(graph_.nodes.size(), false);
    uses[graph_.output] = true;
    for (NodeId id = graph_.output; id >= 0; --id)
      if (uses[id])
        for (NodeId in : graph_.node(id).inputs) uses[in] = true;
    for (size_t i = 1; i < graph_.inputs.size(); ++i)
      if (uses[graph_.inputs[i].node])
        diags_.error(module_.output->value->span,
                     fmt::format("the returned prediction depends on `{}`; `predict` only gets the features",
                                 graph_.inputs[i].name));
  }

  std::optional<ParamInit> initializer(const Expr& call, const dsl::TypeExpr& type) {
    static const std::map<std::string, InitKind> kInits = {
        {"zeros", InitKind::Zeros},   {"ones", InitKind::Ones},
        {"uniform", InitKind::Uniform}, {"normal", InitKind::Normal},
        {"xavier_uniform", InitKind::XavierUniform}, {"he_normal", InitKind::HeNormal}};
    auto it = call.kind == ExprKind::Call ? kInits.find(call.text) : kInits.end();
    if (it == kInits.end()) {
      diags_.error(call.span, "a parameter's initializer must be one of `zeros()`, `ones()`, `uniform(low, high)`, "
                              "`normal(mean, std)`, `xavier_uniform()`, `he_normal()`");
      return std::nullopt;
    }
    ParamInit init{it->second, 0, 0};
    if (init.kind == InitKind::Normal) init.b = 1;
    if (init.kind == InitKind::Uniform || init.kind == InitKind::Normal) {
      const char* first = init.kind == InitKind::Uniform ? "low" : "mean";
      const char* second = init.kind == InitKind::Uniform ? "high" : "std";
      if (!numberArg(call, 0, first, init.a) || !numberArg(call, 1, second, init.b)) return std::nullopt;
      if (init.kind == InitKind::Uniform && !(init.a < init.b)) {
        diags_.error(call.span, "`uniform(low, high)` needs low < high");
        return std::nullopt;
      }
      if (init.kind == InitKind::Normal && !(init.b > 0)) {
        diags_.error(call.span, "`normal(mean, std)` needs std > 0");
        return std::nullopt;
      }
    } else if (!call.args.empty() || !call.kwargs.empty()) {
      diags_.error(call.span, fmt::format("`{}()` takes no arguments", call.text));
      return std::nullopt;
    }
    if ((init.kind == InitKind::XavierUniform || init.kind == InitKind::HeNormal) && type.dims.size() != 2) {
      diags_.error(call.span, fmt::format("`{}()` needs a 2-D parameter [out, in]", call.text));
      return std::nullopt;
    }
    return init;
  }

  // Reads argument `position` (or keyword `keyword`) of `call` as a number; a missing one keeps `out`.
  bool numberArg(const Expr& call, size_t position, const char* keyword, double& out) {
    const Expr* arg = position < call.args.size() ? call.args[position].get() : nullptr;
    for (const dsl::KeywordArg& kw : call.kwargs)
      if (kw.name == keyword) arg = kw.value.get();
    if (!arg) return true;
    double sign = 1;
    if (arg->kind == ExprKind::Unary) {
      sign = -1;
      arg = arg->args[0].get();
    }
    if (arg->kind != ExprKind::Number) {
      diags_.error(arg->span, fmt::format("`{}` of `{}` must be a number", keyword, call.text));
      return false;
    }
    out = sign * arg->number;
    return true;
  }

  NodeId expr(const Expr& e) {
    switch (e.kind) {
      case ExprKind::Number: return graph_.fill(e.number, {}, e.span);
      case ExprKind::String:
        diags_.error(e.span, "a string is not a tensor");
        return kNoNode;
      case ExprKind::Name: {
        auto it = values_.find(e.text);
        return it == values_.end() ? kNoNode : it->second;  // the checker reported undefined names
      }
      case ExprKind::Unary: {
        NodeId a = expr(*e.args[0]);
        return a == kNoNode ? kNoNode : apply(Op::Neg, {a}, {}, e, {e.args[0].get()});
      }
      case ExprKind::Binary: return binary(e);
      case ExprKind::Call: return call(e);
    }
    return kNoNode;
  }

  NodeId binary(const Expr& e) {
    NodeId a = expr(*e.args[0]);
    NodeId b = expr(*e.args[1]);
    if (a == kNoNode || b == kNoNode) return kNoNode;
    Op op = Op::Add;
    switch (e.binary_op) {
      case dsl::BinaryOp::Add: op = Op::Add; break;
      case dsl::BinaryOp::Sub: op = Op::Sub; break;
      case dsl::BinaryOp::Mul: op = Op::Mul; break;
      case dsl::BinaryOp::Div: op = Op::Div; break;
      case dsl::BinaryOp::MatMul: op = Op::MatMul; break;
    }
    return apply(op, {a, b}, {}, e, {e.args[0].get(), e.args[1].get()});
  }

  // Adds `op`, or reports its shape rule's complaint at `at` with notes at the named operands.
  NodeId apply(Op op, std::vector<NodeId> in, Attrs attrs, const Expr& at, std::vector<const Expr*> operands) {
    ShapeResult result = inferShape(graph_, op, in, attrs);
    if (result.error.empty()) return graph_.add(op, std::move(in), std::move(attrs), {}, at.span);
    dsl::Diagnostic& diag = diags_.error(at.span, result.error);
    for (size_t i = 0; i < in.size() && i < operands.size(); ++i) {
      const Node& node = graph_.node(in[i]);
      if (operands[i]->kind == ExprKind::Name)
        dsl::DiagnosticEngine::note(diag, node.span,
                                    fmt::format("`{}` declared here with shape {}", node.name, shapeToString(node.shape)));
    }
    return kNoNode;
  }

  NodeId call(const Expr& e) {
    static const std::vector<std::string> kOps = {"linear", "relu", "cross_entropy"};
    if (e.text == "relu") return unaryCall(e, Op::Relu);
    if (e.text == "cross_entropy") return crossEntropy(e);
    if (e.text == "linear") return linear(e);
    diags_.error(e.callee_span, fmt::format("unknown op `{}`{}", e.text, dsl::didYouMean(e.text, kOps)));
    return kNoNode;
  }

  bool expectArgs(const Expr& e, size_t count, const char* signature) {
    if (e.args.size() == count && e.kwargs.empty()) return true;
    diags_.error(e.span, fmt::format("`{}` takes {} argument{}: `{}`", e.text, count, count == 1 ? "" : "s", signature));
    return false;
  }

  NodeId unaryCall(const Expr& e, Op op) {
    if (!expectArgs(e, 1, fmt::format("{}(x)", e.text).c_str())) return kNoNode;
    NodeId a = expr(*e.args[0]);
    return a == kNoNode ? kNoNode : apply(op, {a}, {}, e, {e.args[0].get()});
  }

  NodeId crossEntropy(const Expr& e) {
    if (!expectArgs(e, 2, "cross_entropy(logits, labels)")) return kNoNode;
    NodeId logits = expr(*e.args[0]);
    NodeId labels = expr(*e.args[1]);
    if (logits == kNoNode || labels == kNoNode) return kNoNode;
    return apply(Op::CrossEntropy, {logits, labels}, {}, e, {e.args[0].get(), e.args[1].get()});
  }

  // linear(x, out_features): x [.., in] @ weight[out, in]^T + bias[out], parameters named after the binding.
  NodeId linear(const Expr& e) {
    if (!expectArgs(e, 2, "linear(x, out_features)")) return kNoNode;
    const Expr& width = *e.args[1];
    if (width.kind != ExprKind::Number || !width.is_integer || width.number < 1) {
      diags_.error(width.span, "`out_features` of `linear` must be a positive integer");
      return kNoNode;
    }
    if (binding_->kind != dsl::StmtKind::Binding || ++layers_in_binding_ > 1) {
      diags_.error(e.callee_span, fmt::format("`linear` names its parameters after its binding; give this one a "
                                              "binding of its own (`name = linear(...)`)"));
      return kNoNode;
    }
    NodeId x = expr(*e.args[0]);
    if (x == kNoNode) return kNoNode;
    const Shape& in_shape = graph_.node(x).shape;
    if (in_shape.size() != 2 || in_shape[1].isSymbolic()) {
      diags_.error(e.args[0]->span, fmt::format("`linear` needs an input [batch, features], got {}",
                                                shapeToString(in_shape)));
      return kNoNode;
    }
    auto out = static_cast<int64_t>(width.number);
    double bound = 1.0 / std::sqrt(static_cast<double>(in_shape[1].extent));  // torch.nn.Linear's default
    ParamInit init{InitKind::Uniform, -bound, bound};
    const std::string& name = binding_->name;
    NodeId weight = declareParam(name + ".weight", {{out, {}}, in_shape[1]}, init, e.span);
    NodeId bias = declareParam(name + ".bias", {{out, {}}}, init, e.span);
    Attrs attrs;
    attrs.transpose_b = true;
    NodeId product = graph_.add(Op::MatMul, {x, weight}, attrs, {}, e.span);
    return graph_.add(Op::Add, {product, bias}, {}, {}, e.span);
  }

  const dsl::CheckedModule& module_;
  dsl::DiagnosticEngine& diags_;
  Graph graph_;
  std::map<std::string, NodeId> values_;
  const dsl::Stmt* binding_ = nullptr;
  int layers_in_binding_ = 0;
};

}  // namespace

std::optional<Graph> buildGraph(const dsl::CheckedModule& module, dsl::DiagnosticEngine& diags) {
  return GraphBuilder(module, diags).build();
}

}  // namespace nnc
