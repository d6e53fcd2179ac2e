// Graph building: walks the checked model's statements in order and appends one node per value.
//
// 1. Inputs become Input nodes (features first, then integer labels).
// 2. `param` declarations become Param nodes with their initializer.
// 3. Bindings evaluate their expression; operators and call ops go through the op table's shape rules, and a
//    failing rule becomes an error at the expression with notes at the operands' declarations. Arithmetic on
//    numbers (literals, `const`s) is folded, so numbers can size layers.
// 4. A call of a user-defined function is inlined in a scope of its own whose parameters are named after the
//    calling binding (`block1 = dense(x, 256)` creates `block1.fc.weight` for `fc = linear(...)` inside).
// 5. The `loss` binding and the `return` value become graph.loss and graph.output.
#include "compiler/graph/build_graph.h"
#include "compiler/graph/graph_builder.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace nnc {

namespace graph_building {

namespace {
constexpr size_t kMaxCallDepth = 64;
}  // namespace

std::optional<Graph> GraphBuilder::build() {
  graph_.model_name = module_.model->name;
  Scope model_scope;
  scope_ = &model_scope;
  for (const dsl::InputDecl& input : module_.model->inputs) declareInput(input);
  buildBody();
  if (diags_.hasErrors()) return std::nullopt;
  graph_.train_output = graph_.output;
  if (mode_dependent_) {  // the body again in eval mode, for predict: same parameters, running statistics
    mode_ = Mode::Eval;
    Scope eval_scope;
    for (const InputInfo& input : graph_.inputs) eval_scope.values[input.name] = Value{input.node, {}};
    scope_ = &eval_scope;
    buildBody();
    if (diags_.hasErrors()) return std::nullopt;
  }
  checkEntryValues();
  if (diags_.hasErrors()) return std::nullopt;
  warnParamsWithoutGradient();
  return std::move(graph_);
}

void GraphBuilder::buildBody() {
  for (const dsl::Stmt& stmt : module_.model->body) {
    std::optional<Value> value = statement(stmt);
    if (!value) continue;
    if (&stmt == module_.loss && mode_ == Mode::Train) graph_.loss = tensor(*value, stmt.value->span);
    if (&stmt == module_.output) graph_.output = tensor(*value, stmt.value->span);
  }
}

Dim GraphBuilder::dimension(const dsl::DimExpr& dim) {
  if (dim.value) return Dim{*dim.value, {}};
  if (std::optional<double> number = lookup(dim.symbol).number) return Dim{static_cast<int64_t>(*number), {}};
  return Dim{1, dim.symbol};
}

Shape GraphBuilder::shapeOf(const dsl::TypeExpr& type) {
  Shape shape;
  for (const dsl::DimExpr& dim : type.dims) shape.push_back(dimension(dim));
  return shape;
}

Value GraphBuilder::lookup(const std::string& name) const {
  auto it = scope_->values.find(name);
  if (it != scope_->values.end()) return it->second;
  auto constant = constants_.find(name);
  if (constant != constants_.end()) return Value{kNoNode, constant->second};
  return Value{};  // the checker reported undefined names
}

void GraphBuilder::declareInput(const dsl::InputDecl& decl) {
  Node node;
  node.op = Op::Input;
  node.name = decl.name;
  node.span = decl.name_span;
  node.shape = shapeOf(decl.type);
  if (decl.type.dtype == "i32") {
    node.dtype = DType::I32;
  } else if (decl.type.dtype != "f32") {
    error(dsl::DiagKind::UnsupportedType, decl.type.dtype_span,
                 fmt::format("inputs of type `{}` are not supported yet; use `f32` or `i32`", decl.type.dtype));
    return;
  }
  NodeId id = graph_.addLeaf(std::move(node));
  scope_->values[decl.name] = Value{id, {}};
}

NodeId GraphBuilder::append(Node node) {
  graph_.nodes.push_back(std::move(node));
  return static_cast<NodeId>(graph_.nodes.size() - 1);
}

dsl::Diagnostic& GraphBuilder::error(dsl::DiagKind kind, dsl::Span span, std::string message) {
  dsl::Diagnostic& diag = diags_.report(kind, span, std::move(message));
  constexpr size_t kInnermostShown = 4;  // deep call chains show their innermost calls and the outermost one
  for (size_t i = 0; i < calls_.size(); ++i) {
    const auto& [function, span] = calls_[calls_.size() - 1 - i];
    if (i < kInnermostShown) {
      dsl::DiagnosticEngine::note(diag, span, fmt::format("in this call of `{}`", function));
    } else if (i + 1 == calls_.size()) {
      dsl::DiagnosticEngine::note(diag, span, fmt::format("in this call of `{}`, {} calls further out", function,
                                                          i - kInnermostShown + 1));
    }
  }
  return diag;
}

NodeId GraphBuilder::tensor(const Value& value, dsl::Span span) {
  return value.number ? graph_.fill(*value.number, {}, span) : value.node;
}

NodeId GraphBuilder::declareParam(const std::string& name, Shape shape, ParamInit init, dsl::Span span, bool trainable) {
  for (const ParamInfo& param : graph_.params)
    if (param.name == name) {
      if (mode_ == Mode::Eval) return param.node;
      dsl::Diagnostic& diag = error(dsl::DiagKind::DuplicateParameter, span, fmt::format("parameter `{}` is created twice; give each layer a "
                                                             "binding of its own (`name = ...`)",
                                                             name));
      dsl::DiagnosticEngine::note(diag, graph_.node(param.node).span, "first created here");
      return kNoNode;
    }
  Node node;
  node.op = Op::Param;
  node.name = name;
  node.span = span;
  node.shape = std::move(shape);
  NodeId id = graph_.addLeaf(std::move(node));
  graph_.params.back().init = init;
  graph_.params.back().trainable = trainable;
  return id;
}

std::optional<Value> GraphBuilder::statement(const dsl::Stmt& stmt) {
  const dsl::Stmt* outer = stmt_;
  stmt_ = &stmt;
  std::optional<Value> value = statementValue(stmt);
  stmt_ = outer;
  if (value && stmt.kind != dsl::StmtKind::Return) scope_->values[stmt.name] = *value;
  return value;
}

std::optional<Value> GraphBuilder::statementValue(const dsl::Stmt& stmt) {
  switch (stmt.kind) {
    case dsl::StmtKind::Param: return paramStatement(stmt);
    case dsl::StmtKind::Binding: {
      std::optional<Value> value = expr(*stmt.value);
      if (value && !value->number && opInfo(graph_.node(value->node).op).family != OpFamily::Leaf)
        graph_.nodes[value->node].name = scope_->prefix + stmt.name;
      return value;
    }
    case dsl::StmtKind::Return: return expr(*stmt.value);
  }
  return std::nullopt;
}

std::optional<Value> GraphBuilder::paramStatement(const dsl::Stmt& stmt) {
  std::optional<ParamInit> init = initializer(*stmt.value, *stmt.type);
  if (!init) return std::nullopt;
  if (stmt.type->dtype != "f32") {
    error(dsl::DiagKind::UnsupportedType, stmt.type->dtype_span, fmt::format("parameters must be `f32`, not `{}`", stmt.type->dtype));
    return std::nullopt;
  }
  Shape shape = shapeOf(*stmt.type);
  for (size_t i = 0; i < shape.size(); ++i)
    if (shape[i].isSymbolic()) {
      error(dsl::DiagKind::SymbolicParameterShape, stmt.type->dims[i].span,
                   fmt::format("parameter shapes must be fixed; `{}` is symbolic", shape[i].symbol));
      return std::nullopt;
    }
  NodeId id = declareParam(scope_->prefix + stmt.name, shape, *init, stmt.name_span);
  if (id == kNoNode) return std::nullopt;
  return Value{id, {}};
}

void GraphBuilder::checkEntryValues() {
  const Node& loss = graph_.node(graph_.loss);
  if (!loss.shape.empty())
    error(dsl::DiagKind::LossNotScalar, module_.loss->value->span,
                 fmt::format("the loss must be a scalar, but this has shape {}", shapeToString(loss.shape)));
  if (!checkInputs()) return;
  const Node& output = graph_.node(graph_.output);
  const Node& features = graph_.node(graph_.inputs[0].node);
  const Dim& batch = features.shape[0];
  if (graph_.task == Task::Classify) {
    // Logits: the labels' shape plus a fixed classes axis ([B, C] for labels [B], [B, T, C] for labels [B, T]).
    const Shape& labels = graph_.node(graph_.inputs[1].node).shape;
    bool per_position = labels.size() >= 2;
    if (output.shape.size() != labels.size() + 1 || output.shape.back().isSymbolic() ||
        Shape(output.shape.begin(), output.shape.end() - 1) != labels) {
      Shape expected = labels;
      expected.push_back(Dim{1, "classes"});
      error(dsl::DiagKind::BadPrediction, module_.output->value->span,
            per_position ? fmt::format("the returned prediction must have the shape of the labels `{}` plus a "
                                       "classes axis, {}, but this has shape {}",
                                       graph_.inputs[1].name, shapeToString(expected), shapeToString(output.shape))
                         : fmt::format("the returned prediction must have shape [{}, classes], but this has shape {}",
                                       batch.symbol, shapeToString(output.shape)));
    }
  } else {
    const Node& target = graph_.node(graph_.inputs.back().node);
    if (output.shape != target.shape) {
      error(dsl::DiagKind::BadPrediction, module_.output->value->span,
            fmt::format("the returned prediction must have the shape of {} `{}`, {}, but this has shape {}",
                        graph_.task == Task::Regress ? "the targets" : "the input it reconstructs", target.name,
                        shapeToString(target.shape), shapeToString(output.shape)));
      return;
    }
  }
  std::vector<bool> uses = ancestors(graph_, {graph_.output});
  for (size_t i = 1; i < graph_.inputs.size(); ++i)
    if (uses[graph_.inputs[i].node])
      error(dsl::DiagKind::BadPrediction, module_.output->value->span,
                   fmt::format("the returned prediction depends on `{}`; `predict` only gets the features",
                               graph_.inputs[i].name));
  if (graph_.task != Task::Classify && !diags_.hasErrors()) findCriterion();
  if (graph_.latent != kNoNode && !diags_.hasErrors()) checkLatent();
  const dsl::EarlyStoppingConfig& stopping = module_.train.early_stopping;
  if (stopping.monitor == "val_accuracy" && graph_.task != Task::Classify)
    error(dsl::DiagKind::BadTrainValue, stopping.span,
          fmt::format("early stopping on `val_accuracy` needs a classifier, and model `{}` {}; monitor `val_loss`",
                      graph_.model_name, graph_.task == Task::Regress ? "regresses" : "reconstructs its input"));
}

void GraphBuilder::checkLatent() {
  std::vector<bool> uses = ancestors(graph_, {graph_.output}, graph_.latent);
  const std::string& features = graph_.inputs[0].name;
  std::string problem = !uses[graph_.latent]   ? "does not depend on the latent code"
                        : uses[graph_.inputs[0].node] ? fmt::format("depends on `{}` other than through the latent code", features)
                                                      : "";
  if (problem.empty()) return;
  dsl::Diagnostic& diag = error(dsl::DiagKind::BadLatent, module_.output->value->span,
                                fmt::format("the returned prediction {}; `sample` decodes latent codes alone", problem));
  dsl::DiagnosticEngine::note(diag, latent_call_->span, "the latent code is marked here");
}

// Features come first: f32 values or i32 token ids, batched, of rank 2 or more. Then integer labels i32[B, ..]
// (a classifier: a class per example, or per position of [B, T]), float targets or nothing.
bool GraphBuilder::checkInputs() {
  auto batched = [&](size_t i, DType dtype) {
    const Node& input = graph_.node(graph_.inputs[i].node);
    return input.dtype == dtype && !input.shape.empty() && input.shape[0].isSymbolic();
  };
  const size_t count = graph_.inputs.size();
  bool features = count >= 1 && (batched(0, DType::F32) || batched(0, DType::I32)) &&
                  graph_.node(graph_.inputs[0].node).shape.size() >= 2;
  bool same_batch = count == 2 && graph_.node(graph_.inputs[1].node).shape[0] == graph_.node(graph_.inputs[0].node).shape[0];
  if (features && count == 1) {
    graph_.task = Task::Reconstruct;
  } else if (features && same_batch && batched(1, DType::I32)) {
    graph_.task = Task::Classify;
  } else if (features && same_batch && batched(1, DType::F32)) {
    graph_.task = Task::Regress;
  } else {
    error(dsl::DiagKind::BadModelInputs, module_.model->name_span,
          "a trainable model takes features `f32[B, ...]` (or token ids `i32[B, T, ...]`), then integer labels "
          "`i32[B]` or `i32[B, T, ...]` (a classifier, a class per example or per position), float targets "
          "`f32[B, ...]` (a regressor) or nothing (a model that reconstructs its input), e.g. "
          "`model m(x: f32[B, 784], y: i32[B])`");
    return false;
  }
  return true;
}

void GraphBuilder::findCriterion() {
  // A criterion term: the prediction against the target input itself, by an op the trainer can evaluate alone.
  NodeId target = graph_.inputs.back().node;
  std::vector<bool> feeds_loss = ancestors(graph_, {graph_.loss});
  for (NodeId id = graph_.loss; id >= 0; --id) {
    const Node& node = graph_.node(id);
    bool criterion = node.op == Op::Mse || node.op == Op::L1 || node.op == Op::BinaryCrossEntropy ||
                     node.op == Op::BinaryCrossEntropyWithLogits;
    if (feeds_loss[id] && criterion && node.inputs[0] == graph_.train_output && node.inputs[1] == target) {
      graph_.criterion = id;
      return;
    }
  }
  const std::string& name = graph_.inputs.back().name;
  error(dsl::DiagKind::BadPrediction, module_.loss->value->span,
        fmt::format("the loss of a {} must compare the returned prediction with `{}` by `mse`, `l1`, "
                    "`binary_cross_entropy` or `binary_cross_entropy_with_logits` (other terms may be added), e.g. "
                    "`loss = mse(prediction, {})`",
                    graph_.task == Task::Regress ? "regressor" : "model that reconstructs its input", name, name));
}

void GraphBuilder::warnParamsWithoutGradient() {
  std::vector<bool> feeds_loss = ancestors(graph_, {graph_.loss}), feeds_output = ancestors(graph_, {graph_.output});
  for (const ParamInfo& param : graph_.params)
    if (param.trainable && feeds_output[param.node] && !feeds_loss[param.node])
      diags_.report(dsl::DiagKind::NoGradient, graph_.node(param.node).span,
                    fmt::format("the loss does not depend on parameter `{}`, so training never changes it",
                                param.name));
}

std::optional<ParamInit> GraphBuilder::initializer(const Expr& call, const dsl::TypeExpr& type) {
  struct InitSpec {
    InitKind kind;
    std::vector<std::pair<const char*, double>> args;  // name, default
  };
  static const double kSqrt2 = std::sqrt(2.0);
  static const std::map<std::string, InitSpec> kInits = {
      {"zeros", {InitKind::Zeros, {}}},
      {"ones", {InitKind::Ones, {}}},
      {"constant", {InitKind::Constant, {{"value", 0}}}},
      {"uniform", {InitKind::Uniform, {{"low", 0}, {"high", 1}}}},
      {"normal", {InitKind::Normal, {{"mean", 0}, {"std", 1}}}},
      {"xavier_uniform", {InitKind::XavierUniform, {{"gain", 1}}}},
      {"xavier_normal", {InitKind::XavierNormal, {{"gain", 1}}}},
      {"he_uniform", {InitKind::HeUniform, {{"gain", kSqrt2}}}},
      {"he_normal", {InitKind::HeNormal, {{"gain", kSqrt2}}}}};
  auto it = call.kind == ExprKind::Call ? kInits.find(call.text) : kInits.end();
  if (it == kInits.end()) {
    std::vector<std::string> names;
    for (const auto& [name, _] : kInits) names.push_back(name);
    error(dsl::DiagKind::BadInitializer, call.span,
          fmt::format("a parameter's initializer must be one of {}{}", dsl::backtickList(names),
                      call.kind == ExprKind::Call ? dsl::didYouMean(call.text, names) : ""));
    return std::nullopt;
  }
  const InitSpec& spec = it->second;
  if (call.args.size() > spec.args.size()) {
    error(dsl::DiagKind::BadAttribute, call.span,
          fmt::format("`{}` takes at most {} argument{}", call.text, spec.args.size(), spec.args.size() == 1 ? "" : "s"));
    return std::nullopt;
  }
  for (const dsl::KeywordArg& kw : call.kwargs)
    if (std::none_of(spec.args.begin(), spec.args.end(), [&](const auto& a) { return kw.name == a.first; })) {
      error(dsl::DiagKind::BadAttribute, kw.name_span, fmt::format("`{}` has no argument `{}`", call.text, kw.name));
      return std::nullopt;
    }
  double values[2] = {0, 0};
  for (size_t i = 0; i < spec.args.size(); ++i) {
    values[i] = spec.args[i].second;
    if (!numberArg(call, i, spec.args[i].first, values[i])) return std::nullopt;
  }
  ParamInit init{spec.kind, values[0], values[1]};
  const char* problem = nullptr;
  if (init.kind == InitKind::Uniform && !(init.a < init.b)) problem = "needs low < high";
  if (init.kind == InitKind::Normal && !(init.b > 0)) problem = "needs std > 0";
  bool fan_based = init.kind == InitKind::XavierUniform || init.kind == InitKind::XavierNormal ||
                   init.kind == InitKind::HeUniform || init.kind == InitKind::HeNormal;
  if (fan_based && !(init.a > 0)) problem = "needs gain > 0";
  if (fan_based && type.dims.size() < 2) problem = "needs a parameter of rank 2 or more ([out, in, ...]) for its fans";
  if (problem) {
    error(dsl::DiagKind::BadAttribute, call.span, fmt::format("`{}` {}", call.text, problem));
    return std::nullopt;
  }
  return init;
}

const Expr* GraphBuilder::findArgument(const Expr& call, size_t position, const char* keyword) {
  for (const dsl::KeywordArg& kw : call.kwargs)
    if (kw.name == keyword) return kw.value.get();
  return position < call.args.size() ? call.args[position].get() : nullptr;
}

bool GraphBuilder::numberArg(const Expr& call, size_t position, const char* keyword, double& out, bool required) {
  const Expr* arg = findArgument(call, position, keyword);
  if (!arg && required) {
    error(dsl::DiagKind::WrongArgumentCount, call.span, fmt::format("`{}` needs its argument `{}`", call.text, keyword));
    return false;
  }
  if (!arg) return true;
  if (arg->kind == ExprKind::String) {
    error(dsl::DiagKind::BadAttribute, arg->span, fmt::format("`{}` of `{}` must be a number", keyword, call.text));
    return false;
  }
  std::optional<Value> value = expr(*arg);
  if (!value) return false;
  if (!value->number) {
    error(dsl::DiagKind::BadAttribute, arg->span, fmt::format("`{}` of `{}` must be a number", keyword, call.text));
    return false;
  }
  out = *value->number;
  return true;
}

std::optional<Value> GraphBuilder::expr(const Expr& e) {
  switch (e.kind) {
    case ExprKind::Number: return Value{kNoNode, e.number};
    case ExprKind::String:
      error(dsl::DiagKind::NotATensor, e.span, "a string is not a tensor");
      return std::nullopt;
    case ExprKind::Name: {
      Value value = lookup(e.text);
      if (value.node == kNoNode && !value.number) return std::nullopt;
      return value;
    }
    case ExprKind::Unary: {
      std::optional<Value> a = expr(*e.args[0]);
      if (!a) return std::nullopt;
      if (a->number) return Value{kNoNode, -*a->number};
      return apply(Op::Neg, {a->node}, {}, e, {e.args[0].get()});
    }
    case ExprKind::Binary: return binary(e);
    case ExprKind::Call: return call(e);
  }
  return std::nullopt;
}

NodeId GraphBuilder::tensorExpr(const Expr& e) {
  std::optional<Value> value = expr(e);
  return value ? tensor(*value, e.span) : kNoNode;
}

std::optional<Value> GraphBuilder::binary(const Expr& e) {
  std::optional<Value> a = expr(*e.args[0]);
  std::optional<Value> b = expr(*e.args[1]);
  if (!a || !b) return std::nullopt;
  if (a->number && b->number && e.binary_op != dsl::BinaryOp::MatMul) return Value{kNoNode, fold(e, *a->number, *b->number)};
  Op op = Op::Add;
  switch (e.binary_op) {
    case dsl::BinaryOp::Add: op = Op::Add; break;
    case dsl::BinaryOp::Sub: op = Op::Sub; break;
    case dsl::BinaryOp::Mul: op = Op::Mul; break;
    case dsl::BinaryOp::Div: op = Op::Div; break;
    case dsl::BinaryOp::MatMul: op = Op::MatMul; break;
  }
  // [.., M, K] @ [K, N] is one GEMM over the flattened rows (a matmul); other products with leading dimensions are
  // per entry (a batch_matmul).
  if (op == Op::MatMul && !a->number && !b->number &&
      (graph_.node(a->node).shape.size() >= 3 || graph_.node(b->node).shape.size() >= 3) &&
      graph_.node(b->node).shape.size() != 2)
    op = Op::BatchMatMul;
  return apply(op, {tensor(*a, e.args[0]->span), tensor(*b, e.args[1]->span)}, {}, e,
               {e.args[0].get(), e.args[1].get()});
}

double GraphBuilder::fold(const Expr& e, double a, double b) {
  switch (e.binary_op) {
    case dsl::BinaryOp::Add: return a + b;
    case dsl::BinaryOp::Sub: return a - b;
    case dsl::BinaryOp::Mul: return a * b;
    case dsl::BinaryOp::Div: return a / b;
    case dsl::BinaryOp::MatMul: break;
  }
  return 0;
}

std::optional<Value> GraphBuilder::apply(Op op, std::vector<NodeId> in, Attrs attrs, const Expr& at,
                           std::vector<const Expr*> operands) {
  ShapeResult result = inferShape(graph_, op, in, attrs);
  if (result.error.empty()) return Value{graph_.add(op, std::move(in), std::move(attrs), {}, at.span), {}};
  dsl::Diagnostic& diag = error(dsl::DiagKind::ShapeMismatch, at.span, result.error);
  for (size_t i = 0; i < in.size() && i < operands.size(); ++i) {
    const Node& node = graph_.node(in[i]);
    if (operands[i] && operands[i]->kind == ExprKind::Name)
      dsl::DiagnosticEngine::note(diag, node.span,
                                  fmt::format("`{}` declared here with shape {}", node.name, shapeToString(node.shape)));
  }
  return std::nullopt;
}

// The language's call ops, each name with the rule that builds its graph: a new op is one entry here (and its
// row in dsl/REFERENCE.md).
const std::map<std::string, GraphBuilder::CallRule>& GraphBuilder::callRules() {
  using B = GraphBuilder;
  static const std::map<std::string, CallRule> rules = {
      // Elementwise math and activations (build_ops.cpp).
      {"relu", [](B& b, const Expr& e) { return b.unaryCall(e, Op::Relu); }},
      {"exp", [](B& b, const Expr& e) { return b.unaryCall(e, Op::Exp); }},
      {"log", [](B& b, const Expr& e) { return b.unaryCall(e, Op::Log); }},
      {"sqrt", [](B& b, const Expr& e) { return b.unaryCall(e, Op::Sqrt); }},
      {"square", [](B& b, const Expr& e) { return b.unaryCall(e, Op::Square); }},
      {"abs", [](B& b, const Expr& e) { return b.unaryCall(e, Op::Abs); }},
      {"identity", [](B& b, const Expr& e) { return b.unaryCall(e, Op::Identity); }},
      {"step", [](B& b, const Expr& e) { return b.unaryCall(e, Op::Step); }},
      {"sigmoid", [](B& b, const Expr& e) { return b.unaryCall(e, Op::Sigmoid); }},
      {"tanh", [](B& b, const Expr& e) { return b.unaryCall(e, Op::Tanh); }},
      {"erf", [](B& b, const Expr& e) { return b.unaryCall(e, Op::Erf); }},
      {"softplus", [](B& b, const Expr& e) { return b.unaryCall(e, Op::Softplus); }},
      {"stop_gradient", [](B& b, const Expr& e) { return b.unaryCall(e, Op::StopGradient); }},
      {"float", [](B& b, const Expr& e) { return b.unaryCall(e, Op::ToFloat); }},
      {"pow", [](B& b, const Expr& e) { return b.elementwiseCall(e); }},
      {"minimum", [](B& b, const Expr& e) { return b.elementwiseCall(e); }},
      {"maximum", [](B& b, const Expr& e) { return b.elementwiseCall(e); }},
      {"clamp", [](B& b, const Expr& e) { return b.elementwiseCall(e); }},
      {"hardtanh", [](B& b, const Expr& e) { return b.elementwiseCall(e); }},
      {"leaky_relu", [](B& b, const Expr& e) { return b.elementwiseCall(e); }},
      {"elu", [](B& b, const Expr& e) { return b.elementwiseCall(e); }},
      {"gelu", [](B& b, const Expr& e) { return b.elementwiseCall(e); }},
      // Reductions and layout (build_ops.cpp).
      {"sum", [](B& b, const Expr& e) { return b.reduction(e, Op::Sum); }},
      {"mean", [](B& b, const Expr& e) { return b.reduction(e, Op::Mean); }},
      {"max", [](B& b, const Expr& e) { return b.reduction(e, Op::Max); }},
      {"softmax", [](B& b, const Expr& e) { return b.reduction(e, Op::Softmax); }},
      {"log_softmax", [](B& b, const Expr& e) { return b.reduction(e, Op::LogSoftmax); }},
      {"transpose", [](B& b, const Expr& e) { return b.transpose(e); }},
      {"permute", [](B& b, const Expr& e) { return b.permute(e); }},
      {"reshape", [](B& b, const Expr& e) { return b.reshape(e); }},
      {"flatten", [](B& b, const Expr& e) { return b.reshape(e); }},
      // Joining and cutting along an axis (build_slices.cpp).
      {"concat", [](B& b, const Expr& e) { return b.concat(e); }},
      {"slice", [](B& b, const Expr& e) { return b.slice(e); }},
      {"chunk", [](B& b, const Expr& e) { return b.chunk(e); }},
      // Attention and variational autoencoders (build_ops.cpp, build_layers.cpp).
      {"causal_mask", [](B& b, const Expr& e) { return b.causalMask(e); }},
      {"kl_normal", [](B& b, const Expr& e) { return b.klNormal(e); }},
      {"randn_like", [](B& b, const Expr& e) { return b.randnLike(e); }},
      {"latent", [](B& b, const Expr& e) { return b.latent(e); }},
      // Losses (build_ops.cpp).
      {"cross_entropy", [](B& b, const Expr& e) { return b.crossEntropy(e); }},
      {"mse", [](B& b, const Expr& e) { return b.pairLoss(e, Op::Mse, "mse(pred, target)"); }},
      {"l1", [](B& b, const Expr& e) { return b.pairLoss(e, Op::L1, "l1(pred, target)"); }},
      {"binary_cross_entropy",
       [](B& b, const Expr& e) {
         return b.pairLoss(e, Op::BinaryCrossEntropy, "binary_cross_entropy(probabilities, target)");
       }},
      {"binary_cross_entropy_with_logits",
       [](B& b, const Expr& e) {
         return b.pairLoss(e, Op::BinaryCrossEntropyWithLogits, "binary_cross_entropy_with_logits(logits, target)");
       }},
      {"l2_penalty", [](B& b, const Expr& e) { return b.l2Penalty(e); }},
      // Layers (build_layers.cpp).
      {"linear", [](B& b, const Expr& e) { return b.linear(e); }},
      {"embedding", [](B& b, const Expr& e) { return b.embedding(e); }},
      {"batch_norm", [](B& b, const Expr& e) { return b.batchNorm(e); }},
      {"layer_norm", [](B& b, const Expr& e) { return b.layerNorm(e); }},
      {"dropout", [](B& b, const Expr& e) { return b.dropout(e); }},
      {"prelu", [](B& b, const Expr& e) { return b.prelu(e); }},
      // Convolution and pooling (build_conv.cpp).
      {"conv2d", [](B& b, const Expr& e) { return b.conv2d(e); }},
      {"max_pool2d", [](B& b, const Expr& e) { return b.pool(e, Op::MaxPool2d); }},
      {"avg_pool2d", [](B& b, const Expr& e) { return b.pool(e, Op::AvgPool2d); }},
      {"global_avg_pool",
       [](B& b, const Expr& e) -> std::optional<Value> {
         if (!b.expectArgs(e, 1, "global_avg_pool(x)")) return std::nullopt;
         return b.unaryCall(e, Op::GlobalAvgPool);
       }},
  };
  return rules;
}

std::optional<Value> GraphBuilder::call(const Expr& e) {
  if (functions_.count(e.text)) return callFunction(e, *functions_.at(e.text));
  if (auto rule = callRules().find(e.text); rule != callRules().end()) return rule->second(*this, e);
  std::vector<std::string> callees;
  for (const auto& [name, _] : callRules()) callees.push_back(name);
  for (const auto& [name, _] : functions_) callees.push_back(name);
  error(dsl::DiagKind::UnknownOp, e.callee_span, fmt::format("unknown op `{}`{}", e.text, dsl::didYouMean(e.text, callees)));
  return std::nullopt;
}

bool GraphBuilder::expectArgs(const Expr& e, size_t count, const char* signature) {
  if (e.args.size() == count && e.kwargs.empty()) return true;
  error(dsl::DiagKind::WrongArgumentCount, e.span, fmt::format("`{}` takes {} argument{}: `{}`", e.text, count, count == 1 ? "" : "s", signature));
  return false;
}

std::optional<std::string> GraphBuilder::layerName(const Expr& e) {
  if (stmt_ && stmt_->kind == dsl::StmtKind::Binding) return scope_->prefix + stmt_->name;
  if (stmt_ && stmt_->kind == dsl::StmtKind::Return && !scope_->return_name.empty()) return scope_->return_name;
  error(dsl::DiagKind::LayerNeedsBinding, e.callee_span, fmt::format("`{}` names its parameters after its binding; give it a binding of its "
                                          "own (`name = {}(...)`)",
                                          e.text, e.text));
  return std::nullopt;
}

std::optional<int64_t> GraphBuilder::positiveInteger(const Expr& e, const char* what) {
  std::optional<Value> value = expr(e);
  if (!value) return std::nullopt;
  if (!value->number || *value->number < 1 || *value->number != std::floor(*value->number)) {
    error(dsl::DiagKind::BadAttribute, e.span, fmt::format("{} must be a positive integer", what));
    return std::nullopt;
  }
  if (*value->number > 1e9) {
    error(dsl::DiagKind::BadAttribute, e.span,
          fmt::format("{} is {:.0f}; it must be at most 1000000000", what, *value->number));
    return std::nullopt;
  }
  return static_cast<int64_t>(*value->number);
}

std::optional<Value> GraphBuilder::callFunction(const Expr& e, const dsl::FunctionDecl& fn) {
  std::optional<std::string> name = layerName(e);
  if (!name) return std::nullopt;
  if (calls_.size() >= kMaxCallDepth) {
    error(dsl::DiagKind::CallsTooDeep, e.callee_span, fmt::format("function calls nested more than {} deep", kMaxCallDepth));
    return std::nullopt;
  }
  std::optional<Scope> callee = bindArguments(e, fn);
  if (!callee) return std::nullopt;
  callee->prefix = *name + ".";
  callee->return_name = *name;
  Scope* caller = scope_;
  scope_ = &*callee;
  calls_.emplace_back(fn.name, e.span);
  std::optional<Value> result;
  for (const dsl::Stmt& stmt : fn.body) {
    std::optional<Value> value = statement(stmt);
    if (stmt.kind == dsl::StmtKind::Return) result = value;
  }
  calls_.pop_back();
  scope_ = caller;
  return result;
}

std::optional<Scope> GraphBuilder::bindArguments(const Expr& e, const dsl::FunctionDecl& fn) {
  Scope callee;
  auto fail = [&](std::string message) {
    dsl::Diagnostic& diag = error(dsl::DiagKind::BadFunctionCall, e.span, std::move(message));
    dsl::DiagnosticEngine::note(diag, fn.name_span, fmt::format("`{}` declared here", fn.name));
    return std::nullopt;
  };
  if (e.args.size() > fn.params.size())
    return fail(fmt::format("`{}` takes {} arguments, got {}", fn.name, fn.params.size(), e.args.size()));
  for (size_t i = 0; i < e.args.size(); ++i) {
    std::optional<Value> value = expr(*e.args[i]);
    if (!value) return std::nullopt;
    callee.values[fn.params[i].name] = *value;
  }
  for (const dsl::KeywordArg& kw : e.kwargs) {
    auto param = std::find_if(fn.params.begin(), fn.params.end(), [&](auto& p) { return p.name == kw.name; });
    if (param == fn.params.end()) {
      std::vector<std::string> names;
      for (const dsl::FunctionParam& p : fn.params) names.push_back(p.name);
      return fail(fmt::format("`{}` has no parameter `{}`{}", fn.name, kw.name, dsl::didYouMean(kw.name, names)));
    }
    if (callee.values.count(kw.name)) return fail(fmt::format("argument `{}` is given twice", kw.name));
    std::optional<Value> value = expr(*kw.value);
    if (!value) return std::nullopt;
    callee.values[kw.name] = *value;
  }
  for (const dsl::FunctionParam& param : fn.params)
    if (!callee.values.count(param.name))
      return fail(fmt::format("missing argument `{}` in the call of `{}`", param.name, fn.name));
  return callee;
}

}  // namespace graph_building

std::optional<Graph> buildGraph(const dsl::CheckedModule& module, dsl::DiagnosticEngine& diags) {
  return graph_building::GraphBuilder(module, diags).build();
}

}  // namespace nnc
