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
#include "compiler/graph/ops_conv.h"

#include <fmt/format.h>

#include <cmath>
#include <algorithm>
#include <map>

namespace nnc {

namespace {

using dsl::Expr;
using dsl::ExprKind;

// A value in scope: a tensor (a graph node) or a plain number (a literal, a `const`, a numeric function argument).
struct Value {
  NodeId node = kNoNode;
  std::optional<double> number;
};

// Names visible in the body being built. A function call gets a fresh scope whose parameters are named after
// the calling binding: prefix "block1." in `block1 = dense(x, 256)`.
struct Scope {
  std::map<std::string, Value> values;
  std::string prefix;       // "" in the model
  std::string return_name;  // names layer forms in a function's `return` ("block1"); "" in the model
};

constexpr size_t kMaxCallDepth = 64;
const std::vector<std::string> kOps = {"linear", "relu", "cross_entropy", "sum", "mean", "max", "softmax",
                                       "log_softmax", "transpose", "reshape", "flatten", "mse",
                                       "binary_cross_entropy", "binary_cross_entropy_with_logits", "l2_penalty",
                                       "conv2d", "max_pool2d", "avg_pool2d", "global_avg_pool", "batch_norm",
                                       "layer_norm", "dropout", "prelu"};

// Elementwise ops called with one tensor and nothing else: `exp(x)`.
const std::map<std::string, Op> kUnaryOps = {
    {"exp", Op::Exp},           {"log", Op::Log},         {"sqrt", Op::Sqrt},           {"square", Op::Square},
    {"abs", Op::Abs},           {"identity", Op::Identity}, {"step", Op::Step},         {"sigmoid", Op::Sigmoid},
    {"tanh", Op::Tanh},         {"softplus", Op::Softplus}, {"stop_gradient", Op::StopGradient},
    {"float", Op::ToFloat}};
// Elementwise ops with attributes or two operands (GraphBuilder::elementwiseCall).
const std::vector<std::string> kAttrOps = {"pow", "minimum", "maximum", "clamp", "hardtanh", "leaky_relu", "elu",
                                           "gelu"};

class GraphBuilder {
 public:
  GraphBuilder(const dsl::CheckedModule& module, dsl::DiagnosticEngine& diags) : module_(module), diags_(diags) {
    for (const dsl::ConstDecl& constant : module.module->constants)
      constants_[constant.name] = constant.value->kind == ExprKind::Unary ? -constant.value->args[0]->number
                                                                           : constant.value->number;
    for (const dsl::FunctionDecl& function : module.module->functions) functions_[function.name] = &function;
  }

  std::optional<Graph> build() {
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

 private:
  // Train mode builds the loss (and train_step); eval mode only the prediction, where dropout and batch_norm
  // behave differently. Models without such ops are built once and share one prediction.
  enum class Mode { Train, Eval };

  void buildBody() {
    for (const dsl::Stmt& stmt : module_.model->body) {
      std::optional<Value> value = statement(stmt);
      if (!value) continue;
      if (&stmt == module_.loss && mode_ == Mode::Train) graph_.loss = tensor(*value, stmt.value->span);
      if (&stmt == module_.output) graph_.output = tensor(*value, stmt.value->span);
    }
  }

  // A number (a literal or a `const`) or a dimension symbol such as `B`.
  Dim dimension(const dsl::DimExpr& dim) {
    if (dim.value) return Dim{*dim.value, {}};
    if (std::optional<double> number = lookup(dim.symbol).number) return Dim{static_cast<int64_t>(*number), {}};
    return Dim{1, dim.symbol};
  }

  Shape shapeOf(const dsl::TypeExpr& type) {
    Shape shape;
    for (const dsl::DimExpr& dim : type.dims) shape.push_back(dimension(dim));
    return shape;
  }

  Value lookup(const std::string& name) const {
    auto it = scope_->values.find(name);
    if (it != scope_->values.end()) return it->second;
    auto constant = constants_.find(name);
    if (constant != constants_.end()) return Value{kNoNode, constant->second};
    return Value{};  // the checker reported undefined names
  }

  void declareInput(const dsl::InputDecl& decl) {
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

  NodeId append(Node node) {
    graph_.nodes.push_back(std::move(node));
    return static_cast<NodeId>(graph_.nodes.size() - 1);
  }

  // Reports an error; inside inlined function calls, notes point at each call on the way (innermost first).
  dsl::Diagnostic& error(dsl::DiagKind kind, dsl::Span span, std::string message) {
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

  // A tensor for a value: numbers become scalar constants.
  NodeId tensor(const Value& value, dsl::Span span) {
    return value.number ? graph_.fill(*value.number, {}, span) : value.node;
  }

  // Creates a parameter (in eval mode: finds the one train mode created); the same full name twice (two layers in
  // one binding) is an error.
  NodeId declareParam(const std::string& name, Shape shape, ParamInit init, dsl::Span span, bool trainable = true) {
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

  // Builds one statement of the current scope; returns the statement's value (nullopt after an error).
  std::optional<Value> statement(const dsl::Stmt& stmt) {
    const dsl::Stmt* outer = stmt_;
    stmt_ = &stmt;
    std::optional<Value> value = statementValue(stmt);
    stmt_ = outer;
    if (value && stmt.kind != dsl::StmtKind::Return) scope_->values[stmt.name] = *value;
    return value;
  }

  std::optional<Value> statementValue(const dsl::Stmt& stmt) {
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

  std::optional<Value> paramStatement(const dsl::Stmt& stmt) {
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

  // What the trainer runtime relies on: inputs (features [B, ...] f32, labels [B] i32), a scalar loss, and a
  // prediction [B, classes] that does not need the labels.
  void checkEntryValues() {
    const Node& loss = graph_.node(graph_.loss);
    if (!loss.shape.empty())
      error(dsl::DiagKind::LossNotScalar, module_.loss->value->span,
                   fmt::format("the loss must be a scalar, but this has shape {}", shapeToString(loss.shape)));
    auto inputIs = [&](size_t i, DType dtype, size_t min_rank) {
      if (i >= graph_.inputs.size()) return false;
      const Node& input = graph_.node(graph_.inputs[i].node);
      return input.dtype == dtype && input.shape.size() >= min_rank && input.shape[0].isSymbolic() &&
             (i == 0 || input.shape.size() == 1);
    };
    if (graph_.inputs.size() != 2 || !inputIs(0, DType::F32, 2) || !inputIs(1, DType::I32, 1)) {
      error(dsl::DiagKind::BadModelInputs, module_.model->name_span,
                   "a trainable model takes two inputs: features `f32[B, ...]` and integer labels `i32[B]`, "
                   "e.g. `model m(x: f32[B, 784], y: i32[B])`");
      return;
    }
    const Node& output = graph_.node(graph_.output);
    const Dim& batch = graph_.node(graph_.inputs[0].node).shape[0];
    if (output.shape.size() != 2 || !(output.shape[0] == batch) || output.shape[1].isSymbolic())
      error(dsl::DiagKind::BadPrediction, module_.output->value->span,
                   fmt::format("the returned prediction must have shape [{}, classes], but this has shape {}",
                               batch.symbol, shapeToString(output.shape)));
    std::vector<bool> uses(graph_.nodes.size(), false);
    uses[graph_.output] = true;
    for (NodeId id = graph_.output; id >= 0; --id)
      if (uses[id])
        for (NodeId in : graph_.node(id).inputs) uses[in] = true;
    for (size_t i = 1; i < graph_.inputs.size(); ++i)
      if (uses[graph_.inputs[i].node])
        error(dsl::DiagKind::BadPrediction, module_.output->value->span,
                     fmt::format("the returned prediction depends on `{}`; `predict` only gets the features",
                                 graph_.inputs[i].name));
  }

  // A parameter that shapes the prediction but not the loss would never change in training. (Parameters that
  // reach neither belong to an unused binding, which the checker already warns about.)
  void warnParamsWithoutGradient() {
    std::vector<bool> feeds_loss(graph_.nodes.size(), false), feeds_output(graph_.nodes.size(), false);
    feeds_loss[graph_.loss] = true;
    feeds_output[graph_.output] = true;
    for (NodeId id = static_cast<NodeId>(graph_.nodes.size()) - 1; id >= 0; --id)
      for (NodeId in : graph_.node(id).inputs) {
        feeds_loss[in] = feeds_loss[in] || feeds_loss[id];
        feeds_output[in] = feeds_output[in] || feeds_output[id];
      }
    for (const ParamInfo& param : graph_.params)
      if (param.trainable && feeds_output[param.node] && !feeds_loss[param.node])
        diags_.report(dsl::DiagKind::NoGradient, graph_.node(param.node).span,
                      fmt::format("the loss does not depend on parameter `{}`, so training never changes it",
                                  param.name));
  }

  // A parameter's initializer call: its name, then its numeric arguments (positional or by keyword) with their
  // defaults, validated. Fan-based initializers take their fans from the shape at run time (runtime/tensor.cpp).
  std::optional<ParamInit> initializer(const Expr& call, const dsl::TypeExpr& type) {
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

  // Reads argument `position` (or keyword `keyword`) of `call` as a number; a missing one keeps `out`.
  bool numberArg(const Expr& call, size_t position, const char* keyword, double& out, bool required = false) {
    const Expr* arg = position < call.args.size() ? call.args[position].get() : nullptr;
    for (const dsl::KeywordArg& kw : call.kwargs)
      if (kw.name == keyword) arg = kw.value.get();
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

  std::optional<Value> expr(const Expr& e) {
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

  // The node of an expression that must be a tensor (numbers become scalar constants).
  NodeId tensorExpr(const Expr& e) {
    std::optional<Value> value = expr(e);
    return value ? tensor(*value, e.span) : kNoNode;
  }

  std::optional<Value> binary(const Expr& e) {
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
    if (op == Op::MatMul && !a->number && !b->number &&
        (graph_.node(a->node).shape.size() == 3 || graph_.node(b->node).shape.size() == 3))
      op = Op::BatchMatMul;
    return apply(op, {tensor(*a, e.args[0]->span), tensor(*b, e.args[1]->span)}, {}, e,
                 {e.args[0].get(), e.args[1].get()});
  }

  // Arithmetic on two numbers is done now (`2 * HIDDEN` is a number, usable as a layer width).
  static double fold(const Expr& e, double a, double b) {
    switch (e.binary_op) {
      case dsl::BinaryOp::Add: return a + b;
      case dsl::BinaryOp::Sub: return a - b;
      case dsl::BinaryOp::Mul: return a * b;
      case dsl::BinaryOp::Div: return a / b;
      case dsl::BinaryOp::MatMul: break;
    }
    return 0;
  }

  // Adds `op`, or reports its shape rule's complaint at `at` with notes at the named operands.
  std::optional<Value> apply(Op op, std::vector<NodeId> in, Attrs attrs, const Expr& at,
                             std::vector<const Expr*> operands) {
    ShapeResult result = inferShape(graph_, op, in, attrs);
    if (result.error.empty()) return Value{graph_.add(op, std::move(in), std::move(attrs), {}, at.span), {}};
    dsl::Diagnostic& diag = error(dsl::DiagKind::ShapeMismatch, at.span, result.error);
    for (size_t i = 0; i < in.size() && i < operands.size(); ++i) {
      const Node& node = graph_.node(in[i]);
      if (operands[i]->kind == ExprKind::Name)
        dsl::DiagnosticEngine::note(diag, node.span,
                                    fmt::format("`{}` declared here with shape {}", node.name, shapeToString(node.shape)));
    }
    return std::nullopt;
  }

  std::optional<Value> call(const Expr& e) {
    if (functions_.count(e.text)) return callFunction(e, *functions_.at(e.text));
    if (e.text == "relu") return unaryCall(e, Op::Relu);
    if (auto unary = kUnaryOps.find(e.text); unary != kUnaryOps.end()) return unaryCall(e, unary->second);
    if (std::find(kAttrOps.begin(), kAttrOps.end(), e.text) != kAttrOps.end()) return elementwiseCall(e);
    if (e.text == "cross_entropy") return crossEntropy(e);
    if (e.text == "linear") return linear(e);
    if (e.text == "sum") return reduction(e, Op::Sum);
    if (e.text == "mean") return reduction(e, Op::Mean);
    if (e.text == "max") return reduction(e, Op::Max);
    if (e.text == "softmax") return reduction(e, Op::Softmax);
    if (e.text == "log_softmax") return reduction(e, Op::LogSoftmax);
    if (e.text == "transpose") return transpose(e);
    if (e.text == "reshape" || e.text == "flatten") return reshape(e);
    if (e.text == "mse") return pairLoss(e, Op::Mse, "mse(pred, target)");
    if (e.text == "binary_cross_entropy")
      return pairLoss(e, Op::BinaryCrossEntropy, "binary_cross_entropy(probabilities, target)");
    if (e.text == "binary_cross_entropy_with_logits")
      return pairLoss(e, Op::BinaryCrossEntropyWithLogits, "binary_cross_entropy_with_logits(logits, target)");
    if (e.text == "l2_penalty") return l2Penalty(e);
    if (e.text == "batch_norm") return batchNorm(e);
    if (e.text == "layer_norm") return layerNorm(e);
    if (e.text == "dropout") return dropout(e);
    if (e.text == "prelu") return prelu(e);
    if (std::optional<Value> conv; convCall(e, conv)) return conv;  // conv2d, pools
    std::vector<std::string> callees = kOps;
    for (const auto& [name, _] : kUnaryOps) callees.push_back(name);
    callees.insert(callees.end(), kAttrOps.begin(), kAttrOps.end());
    for (const auto& [name, _] : functions_) callees.push_back(name);
    error(dsl::DiagKind::UnknownOp, e.callee_span, fmt::format("unknown op `{}`{}", e.text, dsl::didYouMean(e.text, callees)));
    return std::nullopt;
  }

  bool expectArgs(const Expr& e, size_t count, const char* signature) {
    if (e.args.size() == count && e.kwargs.empty()) return true;
    error(dsl::DiagKind::WrongArgumentCount, e.span, fmt::format("`{}` takes {} argument{}: `{}`", e.text, count, count == 1 ? "" : "s", signature));
    return false;
  }

  std::optional<Value> unaryCall(const Expr& e, Op op) {
    if (!expectArgs(e, 1, fmt::format("{}(x)", e.text).c_str())) return std::nullopt;
    NodeId a = tensorExpr(*e.args[0]);
    if (a == kNoNode) return std::nullopt;
    return apply(op, {a}, {}, e, {e.args[0].get()});
  }

  // The elementwise ops with attributes: `pow(x, p)`, `clamp(x, low, high)`, `leaky_relu(x, slope = 0.01)`,
  // `elu(x, alpha = 1.0)`, `gelu(x, approximate = "none")`, `hardtanh(x)` (clamp to [-1, 1]), and the binary
  // `minimum(a, b)`, `maximum(a, b)`. An attribute is given by position after the operands or by keyword.
  std::optional<Value> elementwiseCall(const Expr& e) {
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

  // One tensor operand, then at most `names.size()` attributes by position, or by keyword with one of `names`.
  bool attributeArgs(const Expr& e, const std::vector<std::string>& names, const char* signature) {
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

  // gelu's `approximate`: the string "none" (erf) or "tanh", as PyTorch's.
  bool geluApproximate(const Expr& e, Attrs& attrs) {
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

  std::optional<Value> crossEntropy(const Expr& e) {
    if (!expectArgs(e, 2, "cross_entropy(logits, labels)")) return std::nullopt;
    NodeId logits = tensorExpr(*e.args[0]);
    NodeId labels = tensorExpr(*e.args[1]);
    if (logits == kNoNode || labels == kNoNode) return std::nullopt;
    return apply(Op::CrossEntropy, {logits, labels}, {}, e, {e.args[0].get(), e.args[1].get()});
  }

  // An integer axis of a tensor of `rank` (negative counts from the end, as in Python), or nullopt after an error.
  std::optional<int64_t> axisArg(const Expr& arg, size_t rank, const std::string& what) {
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

  // sum/mean/max(x, axis = a, keepdims = 0|1): over one axis, or without `axis` over all of them.
  // softmax/log_softmax(x, axis = a): along one axis, the last by default.
  std::optional<Value> reduction(const Expr& e, Op op) {
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

  // transpose(x) swaps the last two axes; transpose(x, a, b) swaps axes a and b.
  std::optional<Value> transpose(const Expr& e) {
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

  // reshape(x, d1, ..., dn): [N, ...] -> [N, d1, ..., dn], the first (batch) dimension kept.
  // flatten(x): [N, d1, ..., dn] -> [N, d1 * ... * dn].
  std::optional<Value> reshape(const Expr& e) {
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

  std::optional<Value> pairLoss(const Expr& e, Op op, const char* signature) {
    if (!expectArgs(e, 2, signature)) return std::nullopt;
    NodeId a = tensorExpr(*e.args[0]);
    NodeId b = tensorExpr(*e.args[1]);
    if (a == kNoNode || b == kNoNode) return std::nullopt;
    return apply(op, {a, b}, {}, e, {e.args[0].get(), e.args[1].get()});
  }

  // l2_penalty(W1, ..., Wn) = sum_i sum(Wi * Wi), the squared Frobenius norms of the given tensors.
  std::optional<Value> l2Penalty(const Expr& e) {
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

  // The name a layer form gives its parameters: its binding's full name, or in a function's `return`, the
  // calling binding's. Anywhere else (a model's `return`, a `param` initializer) is an error.
  std::optional<std::string> layerName(const Expr& e) {
    if (stmt_ && stmt_->kind == dsl::StmtKind::Binding) return scope_->prefix + stmt_->name;
    if (stmt_ && stmt_->kind == dsl::StmtKind::Return && !scope_->return_name.empty()) return scope_->return_name;
    error(dsl::DiagKind::LayerNeedsBinding, e.callee_span, fmt::format("`{}` names its parameters after its binding; give it a binding of its "
                                            "own (`name = {}(...)`)",
                                            e.text, e.text));
    return std::nullopt;
  }

  // A positive integer argument (a literal, a `const`, or a numeric function argument).
  std::optional<int64_t> positiveInteger(const Expr& e, const char* what) {
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

  // linear(x, out_features): x [.., in] @ weight[out, in]^T + bias[out], parameters named after the binding.
  std::optional<Value> linear(const Expr& e) {
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

  // ---- normalization, dropout and prelu, built from table ops; batch_norm and dropout differ by mode --------

  NodeId node(Op op, std::vector<NodeId> in, const Expr& at, Attrs attrs = {}) {
    return graph_.add(op, std::move(in), std::move(attrs), {}, at.span);
  }
  NodeId number(double value, const Expr& at) { return graph_.fill(value, {}, at.span); }

  // A per-channel vector [C] shaped to broadcast along axis 1 of a tensor of rank `rank`: [C, 1, ..., 1].
  NodeId channelColumn(NodeId v, size_t rank, const Expr& at) {
    if (rank <= 2) return v;
    Attrs column;
    column.shape = {graph_.node(v).shape[0]};
    column.shape.resize(rank - 1, Dim{1, {}});
    return node(Op::Reshape, {v}, at, column);
  }

  // (x - mean) / sqrt(var + eps) * weight + bias, with mean and var [C] or broadcastable as x.
  NodeId normalize(NodeId centered, NodeId var, double eps, NodeId weight, NodeId bias, const Expr& at) {
    NodeId xhat = node(Op::Div, {centered, node(Op::Sqrt, {node(Op::Add, {var, number(eps, at)}, at)}, at)}, at);
    return node(Op::Add, {node(Op::Mul, {xhat, weight}, at), bias}, at);
  }

  // Reads the numeric attributes `names` of a call whose first argument is the tensor (positional or keyword)
  // into `values`, which hold their defaults.
  bool numberAttributes(const Expr& e, const std::vector<std::string>& names, std::vector<double>& values,
                        const std::string& signature) {
    if (!attributeArgs(e, names, signature.c_str())) return false;
    for (size_t i = 0; i < names.size(); ++i)
      if (!numberArg(e, i + 1, names[i].c_str(), values[i])) return false;
    return true;
  }

  // batch_norm(x, momentum = 0.1, eps = 1e-5): torch.nn.BatchNorm1d/2d over x [B, C, ...], per channel C.
  // Train mode normalizes with the batch's mean and biased variance over every axis but 1 and updates the
  // buffers: running_mean := (1 - momentum) running_mean + momentum mean, running_var likewise with the
  // unbiased variance n / (n - 1) var (n values per channel). Eval mode normalizes with the running statistics.
  // y = weight xhat + bias. Creates NAME.weight (ones), NAME.bias (zeros) and the buffers NAME.running_mean
  // (zeros), NAME.running_var (ones) and NAME.num_batches_tracked, PyTorch's state_dict names.
  std::optional<Value> batchNorm(const Expr& e) {
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

  // layer_norm(x, dims = 1, eps = 1e-5): torch.nn.LayerNorm over the trailing `dims` axes of x, the same in
  // train and eval mode; NAME.weight (ones) and NAME.bias (zeros) have the shape of those axes.
  std::optional<Value> layerNorm(const Expr& e) {
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

  // dropout(x, p = 0.5): inverted dropout in train mode (each element zeroed with probability p, the rest scaled
  // by 1 / (1 - p)), the identity in eval mode. Masks hash the runtime's per-step seed (see dropout_mask).
  std::optional<Value> dropout(const Expr& e) {
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
    if (graph_.dropout_seed == kNoNode) {
      for (auto [leaf, name] : {std::pair{&graph_.dropout_seed, "dropout_seed"}, {&graph_.dropout_row, "dropout_row"}}) {
        Node scalar;
        scalar.op = Op::Scalar;
        scalar.dtype = DType::I32;
        scalar.name = name;
        *leaf = append(std::move(scalar));
      }
    }
    Attrs mask;
    mask.shape = graph_.node(x).shape;
    mask.alpha = v[0];
    mask.index = dropout_sites_++;
    return Value{node(Op::Mul, {x, node(Op::DropoutMask, {graph_.dropout_seed, graph_.dropout_row}, e, mask)}, e), {}};
  }

  // prelu(x, num_parameters = 1, init = 0.25): torch.nn.PReLU, max(0, x) + weight min(0, x) with NAME.weight
  // [num_parameters], one slope shared or one per channel (axis 1), trained.
  std::optional<Value> prelu(const Expr& e) {
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

  // ---- convolution and pooling (rules in ops_conv.cpp) ----------------------------------------------

  // Builds `e` when it calls one of these ops (into `result`, nullopt after an error); false for other callees.
  bool convCall(const Expr& e, std::optional<Value>& result) {
    if (e.text == "conv2d") result = conv2d(e);
    else if (e.text == "max_pool2d") result = pool(e, Op::MaxPool2d);
    else if (e.text == "avg_pool2d") result = pool(e, Op::AvgPool2d);
    else if (e.text == "global_avg_pool" && expectArgs(e, 1, "global_avg_pool(x)")) result = unaryCall(e, Op::GlobalAvgPool);
    else return e.text == "global_avg_pool" || e.text == "flatten";
    return true;
  }

  // Reads the window attributes of `e` (positional from `first`, in the order of `names`, or by keyword) into
  // `attrs`; unknown keywords and non-integers are errors. `values` holds the defaults and receives the result.
  bool windowArgs(const Expr& e, size_t first, const std::vector<const char*>& names, std::vector<double>& values) {
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

  // Sets square window attributes; reports invalid ones (kernel < 1, ...) as BadAttribute.
  bool setWindow(const Expr& e, Op op, Attrs& attrs, double kernel, double stride, double padding, double dilation) {
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

  // conv2d(x, out_channels, kernel = K, stride = 1, padding = 0, dilation = 1, bias = 1): creates NAME.weight
  // [out, in, K, K] and (unless bias = 0) NAME.bias [out], both U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with
  // fan_in = in K K, as torch.nn.Conv2d. The bias [out] is added through a flatten to [out, 1, 1].
  std::optional<Value> conv2d(const Expr& e) {
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

  // max_pool2d / avg_pool2d(x, kernel = K, stride = K, padding = 0), PyTorch's defaults.
  std::optional<Value> pool(const Expr& e, Op op) {
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

  // Inlines a call of a user-defined function in a scope of its own (see Scope).
  std::optional<Value> callFunction(const Expr& e, const dsl::FunctionDecl& fn) {
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

  // Binds positional, then keyword arguments to the function's parameters; each exactly once.
  std::optional<Scope> bindArguments(const Expr& e, const dsl::FunctionDecl& fn) {
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

  const dsl::CheckedModule& module_;
  dsl::DiagnosticEngine& diags_;
  Graph graph_;
  std::map<std::string, double> constants_;
  std::map<std::string, const dsl::FunctionDecl*> functions_;
  Scope* scope_ = nullptr;
  const dsl::Stmt* stmt_ = nullptr;  // the statement being built (names layer forms)
  Mode mode_ = Mode::Train;
  bool mode_dependent_ = false;  // the model has ops whose eval mode differs (a second pass builds it)
  int64_t dropout_sites_ = 0;
  std::vector<std::pair<std::string, dsl::Span>> calls_;  // the function calls being inlined, outermost first
};

}  // namespace

std::optional<Graph> buildGraph(const dsl::CheckedModule& module, dsl::DiagnosticEngine& diags) {
  return GraphBuilder(module, diags).build();
}

}  // namespace nnc
