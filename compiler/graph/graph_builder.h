// The graph builder, shared by the files that build each kind of call (an internal header of compiler/graph/):
//   build_graph.cpp   statements, scopes, parameters, expressions, the table of the language's call ops
//                     (callRules: a new op is one entry there), function inlining, the entry values' checks
//   build_ops.cpp     elementwise math, reductions, layout and losses
//   build_layers.cpp  linear, normalization, dropout, prelu
//   build_conv.cpp    convolution and pooling
//   build_slices.cpp  concat, slice, chunk
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "compiler/graph/graph.h"
#include "dsl/checker.h"
#include "dsl/diagnostics.h"

namespace nnc::graph_building {

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

class GraphBuilder {
 public:
  GraphBuilder(const dsl::CheckedModule& module, dsl::DiagnosticEngine& diags) : module_(module), diags_(diags) {
    for (const dsl::ConstDecl& constant : module.module->constants)
      constants_[constant.name] = constant.value->kind == ExprKind::Unary ? -constant.value->args[0]->number
                                                                           : constant.value->number;
    for (const dsl::FunctionDecl& function : module.module->functions) functions_[function.name] = &function;
  }

  std::optional<Graph> build();

 private:
  // Train mode builds the loss (and train_step); eval mode only the prediction, where dropout and batch_norm
  // behave differently. Models without such ops are built once and share one prediction.
  enum class Mode { Train, Eval };

  // Builds one call of a language op; callRules maps each op's name to its rule.
  using CallRule = std::optional<Value> (*)(GraphBuilder&, const Expr&);
  static const std::map<std::string, CallRule>& callRules();

  void buildBody();

  // A number (a literal or a `const`) or a dimension symbol such as `B`.
  Dim dimension(const dsl::DimExpr& dim);

  Shape shapeOf(const dsl::TypeExpr& type);

  Value lookup(const std::string& name) const;

  void declareInput(const dsl::InputDecl& decl);

  NodeId append(Node node);

  // Reports an error; inside inlined function calls, notes point at each call on the way (innermost first).
  dsl::Diagnostic& error(dsl::DiagKind kind, dsl::Span span, std::string message);

  // A tensor for a value: numbers become scalar constants.
  NodeId tensor(const Value& value, dsl::Span span);

  // Creates a parameter (in eval mode: finds the one train mode created); the same full name twice (two layers in
  // one binding) is an error.
  NodeId declareParam(const std::string& name, Shape shape, ParamInit init, dsl::Span span, bool trainable = true);

  // Builds one statement of the current scope; returns the statement's value (nullopt after an error).
  std::optional<Value> statement(const dsl::Stmt& stmt);

  std::optional<Value> statementValue(const dsl::Stmt& stmt);

  std::optional<Value> paramStatement(const dsl::Stmt& stmt);

  // What the trainer runtime relies on: features [B, ...] f32 and then i32 labels [B] (a classifier), f32 targets
  // (a regressor) or nothing (a reconstruction), which set graph_.task; a scalar loss; a prediction that does not
  // need the labels, of shape [B, classes] or of its target's shape; and for a regressor or a reconstruction the
  // loss term comparing the prediction with its target (graph_.criterion).
  void checkEntryValues();
  bool checkInputs();  // sets graph_.task, or reports the inputs
  void findCriterion();
  // The prediction must depend on the features through graph_.latent alone, so `sample` can decode from it.
  void checkLatent();

  // A parameter that shapes the prediction but not the loss would never change in training. (Parameters that
  // reach neither belong to an unused binding, which the checker already warns about.)
  void warnParamsWithoutGradient();

  // A parameter's initializer call: its name, then its numeric arguments (positional or by keyword) with their
  // defaults, validated. Fan-based initializers take their fans from the shape at run time (runtime/tensor.cpp).
  std::optional<ParamInit> initializer(const Expr& call, const dsl::TypeExpr& type);

  // Reads argument `position` (or keyword `keyword`) of `call` as a number; a missing one keeps `out`.
  bool numberArg(const Expr& call, size_t position, const char* keyword, double& out, bool required = false);

  std::optional<Value> expr(const Expr& e);

  // The node of an expression that must be a tensor (numbers become scalar constants).
  NodeId tensorExpr(const Expr& e);

  std::optional<Value> binary(const Expr& e);

  // Arithmetic on two numbers is done now (`2 * HIDDEN` is a number, usable as a layer width).
  static double fold(const Expr& e, double a, double b);

  // Adds `op`, or reports its shape rule's complaint at `at` with notes at the named operands (null: no note).
  std::optional<Value> apply(Op op, std::vector<NodeId> in, Attrs attrs, const Expr& at,
                             std::vector<const Expr*> operands);

  std::optional<Value> call(const Expr& e);

  bool expectArgs(const Expr& e, size_t count, const char* signature);

  // The name a layer form gives its parameters: its binding's full name, or in a function's `return`, the
  // calling binding's. Anywhere else (a model's `return`, a `param` initializer) is an error.
  std::optional<std::string> layerName(const Expr& e);

  // A positive integer argument (a literal, a `const`, or a numeric function argument).
  std::optional<int64_t> positiveInteger(const Expr& e, const char* what);

  // Inlines a call of a user-defined function in a scope of its own (see Scope).
  std::optional<Value> callFunction(const Expr& e, const dsl::FunctionDecl& fn);

  // Binds positional, then keyword arguments to the function's parameters; each exactly once.
  std::optional<Scope> bindArguments(const Expr& e, const dsl::FunctionDecl& fn);

  // ---- elementwise math, reductions, layout and losses (build_ops.cpp) ----------------------------------

  std::optional<Value> unaryCall(const Expr& e, Op op);

  // The elementwise ops with attributes: `pow(x, p)`, `clamp(x, low, high)`, `leaky_relu(x, slope = 0.01)`,
  // `elu(x, alpha = 1.0)`, `gelu(x, approximate = "none")`, `hardtanh(x)` (clamp to [-1, 1]), and the binary
  // `minimum(a, b)`, `maximum(a, b)`. An attribute is given by position after the operands or by keyword.
  std::optional<Value> elementwiseCall(const Expr& e);

  // One tensor operand, then at most `names.size()` attributes by position, or by keyword with one of `names`.
  bool attributeArgs(const Expr& e, const std::vector<std::string>& names, const char* signature);

  // gelu's `approximate`: the string "none" (erf) or "tanh", as PyTorch's.
  bool geluApproximate(const Expr& e, Attrs& attrs);

  std::optional<Value> crossEntropy(const Expr& e);

  // An integer axis of a tensor of `rank` (negative counts from the end, as in Python), or nullopt after an error.
  std::optional<int64_t> axisArg(const Expr& arg, size_t rank, const std::string& what);

  // sum/mean/max(x, axis = a, keepdims = 0|1): over one axis, or without `axis` over all of them.
  // softmax/log_softmax(x, axis = a): along one axis, the last by default.
  std::optional<Value> reduction(const Expr& e, Op op);

  // transpose(x) swaps the last two axes; transpose(x, a, b) swaps axes a and b.
  std::optional<Value> transpose(const Expr& e);

  // permute(x, a0, ..., an): output axis i is input axis ai (negative axes count from the end), as torch.permute.
  std::optional<Value> permute(const Expr& e);

  // reshape(x, d1, ..., dn): [N, ...] -> [N, d1, ..., dn], the first (batch) dimension kept.
  // flatten(x): [N, d1, ..., dn] -> [N, d1 * ... * dn].
  std::optional<Value> reshape(const Expr& e);

  std::optional<Value> pairLoss(const Expr& e, Op op, const char* signature);

  // kl_normal(mu, logvar) = mean over the batch (axis 0) of -0.5 sum_{other axes} (1 + logvar - mu^2 - exp(logvar)),
  // KL(N(mu, exp(logvar)) || N(0, I)) per example, built from table ops.
  std::optional<Value> klNormal(const Expr& e);

  // latent(z): z itself, marked as the model's latent code: the `sample` entry point decodes values given in its
  // place (graph.latent), so the prediction must depend on the features through it alone.
  std::optional<Value> latent(const Expr& e);

  // causal_mask(T): the constant [T, T], 0 on and below the diagonal and -1e9 above (added to attention scores).
  std::optional<Value> causalMask(const Expr& e);

  // l2_penalty(W1, ..., Wn) = sum_i sum(Wi * Wi), the squared Frobenius norms of the given tensors.
  std::optional<Value> l2Penalty(const Expr& e);

  // ---- joining and cutting along an axis (build_slices.cpp) ------------------------------------------

  // concat(x1, ..., xn, axis = a): torch.cat, n >= 2, the axis by keyword (negative counts from the end); the
  // tensors agree on every other axis, and the axis has a fixed size. Chains binary concat ops left to right.
  std::optional<Value> concat(const Expr& e);

  // slice(x, axis, start, end): entries [start, end) along a fixed-size axis; negative start/end count from the
  // end as in Python; out-of-range or empty ranges are errors.
  std::optional<Value> slice(const Expr& e);

  // chunk(x, axis, n, i): chunk i of n equal chunks along the axis (n must divide its size), a slice.
  std::optional<Value> chunk(const Expr& e);

  // Reads the tensor and the `axis` (argument 1 or keyword) of slice/chunk, whose arguments are `names` after x;
  // the axis must have a fixed size.
  std::optional<std::pair<NodeId, int64_t>> fixedAxis(const Expr& e, const std::vector<std::string>& names,
                                                      const char* signature);

  // A required integer argument (position or keyword).
  std::optional<int64_t> integerArg(const Expr& call, size_t position, const char* keyword);

  // The expression of an argument given by position or keyword (the keyword wins); null when absent.
  static const Expr* findArgument(const Expr& call, size_t position, const char* keyword);
  // The same, when its presence was checked.
  static const Expr& argument(const Expr& call, size_t position, const char* keyword) {
    return *findArgument(call, position, keyword);
  }

  // ---- layers (build_layers.cpp): normalization, dropout and prelu are built from table ops; batch_norm and
  // dropout differ by mode

  // linear(x, out_features): x [.., in] @ weight[out, in]^T + bias[out], parameters named after the binding.
  std::optional<Value> linear(const Expr& e);
  // embedding(ids, num, dim): ids i32 [..] -> rows of weight [num, dim] ~ N(0, 1), [.., dim] (a gather).
  std::optional<Value> embedding(const Expr& e);

  NodeId node(Op op, std::vector<NodeId> in, const Expr& at, Attrs attrs = {});

  NodeId number(double value, const Expr& at) { return graph_.fill(value, {}, at.span); }

  // A per-channel vector [C] shaped to broadcast along axis 1 of a tensor of rank `rank`: [C, 1, ..., 1].
  NodeId channelColumn(NodeId v, size_t rank, const Expr& at);

  // (x - mean) / sqrt(var + eps) * weight + bias, with mean and var [C] or broadcastable as x.
  NodeId normalize(NodeId centered, NodeId var, double eps, NodeId weight, NodeId bias, const Expr& at);

  // Reads the numeric attributes `names` of a call whose first argument is the tensor (positional or keyword)
  // into `values`, which hold their defaults.
  bool numberAttributes(const Expr& e, const std::vector<std::string>& names, std::vector<double>& values,
                        const std::string& signature);

  // batch_norm(x, momentum = 0.1, eps = 1e-5): torch.nn.BatchNorm1d/2d over x [B, C, ...], per channel C.
  // Train mode normalizes with the batch's mean and biased variance over every axis but 1 and updates the
  // buffers: running_mean := (1 - momentum) running_mean + momentum mean, running_var likewise with the
  // unbiased variance n / (n - 1) var (n values per channel). Eval mode normalizes with the running statistics.
  // y = weight xhat + bias. Creates NAME.weight (ones), NAME.bias (zeros) and the buffers NAME.running_mean
  // (zeros), NAME.running_var (ones) and NAME.num_batches_tracked, PyTorch's state_dict names.
  std::optional<Value> batchNorm(const Expr& e);

  // layer_norm(x, dims = 1, eps = 1e-5): torch.nn.LayerNorm over the trailing `dims` axes of x, the same in
  // train and eval mode; NAME.weight (ones) and NAME.bias (zeros) have the shape of those axes.
  std::optional<Value> layerNorm(const Expr& e);

  // dropout(x, p = 0.5): inverted dropout in train mode (each element zeroed with probability p, the rest scaled
  // by 1 / (1 - p)), the identity in eval mode. Masks hash the runtime's per-step seed (see dropout_mask).
  std::optional<Value> dropout(const Expr& e);

  // randn_like(x): standard normal samples of x's shape in train mode (counter-based like dropout's masks: the
  // run's seed, the step, the global row, a salt per site), zeros in eval mode; no gradient to x.
  std::optional<Value> randnLike(const Expr& e);

  // The i32 scalars the random ops hash (graph.dropout_seed, graph.dropout_row), created on first use.
  void randomScalars();

  // prelu(x, num_parameters = 1, init = 0.25): torch.nn.PReLU, max(0, x) + weight min(0, x) with NAME.weight
  // [num_parameters], one slope shared or one per channel (axis 1), trained.
  std::optional<Value> prelu(const Expr& e);

  // ---- convolution and pooling (build_conv.cpp; their rules in ops_conv.cpp) ----------------------------

  // Reads the window attributes of `e` (positional from `first`, in the order of `names`, or by keyword) into
  // `attrs`; unknown keywords and non-integers are errors. `values` holds the defaults and receives the result.
  bool windowArgs(const Expr& e, size_t first, const std::vector<const char*>& names, std::vector<double>& values);

  // Sets square window attributes; reports invalid ones (kernel < 1, ...) as BadAttribute.
  bool setWindow(const Expr& e, Op op, Attrs& attrs, double kernel, double stride, double padding, double dilation);

  // conv2d(x, out_channels, kernel = K, stride = 1, padding = 0, dilation = 1, bias = 1): creates NAME.weight
  // [out, in, K, K] and (unless bias = 0) NAME.bias [out], both U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with
  // fan_in = in K K, as torch.nn.Conv2d. The bias [out] is added through a flatten to [out, 1, 1].
  std::optional<Value> conv2d(const Expr& e);

  // max_pool2d / avg_pool2d(x, kernel = K, stride = K, padding = 0), PyTorch's defaults.
  std::optional<Value> pool(const Expr& e, Op op);

  const dsl::CheckedModule& module_;
  dsl::DiagnosticEngine& diags_;
  Graph graph_;
  std::map<std::string, double> constants_;
  std::map<std::string, const dsl::FunctionDecl*> functions_;
  Scope* scope_ = nullptr;
  const dsl::Stmt* stmt_ = nullptr;  // the statement being built (names layer forms)
  Mode mode_ = Mode::Train;
  bool mode_dependent_ = false;  // the model has ops whose eval mode differs (a second pass builds it)
  const Expr* latent_call_ = nullptr;  // the model's latent(...) call, once train mode has built it
  int64_t dropout_sites_ = 0;  // random sites (dropout, randn_like) so far: each salts its hash with its number
  std::vector<std::pair<std::string, dsl::Span>> calls_;  // the function calls being inlined, outermost first
};

}  // namespace nnc::graph_building
