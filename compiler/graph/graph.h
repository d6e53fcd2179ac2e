// The graph IR: a list of nodes in topological order (a node's inputs always have smaller ids).
//
// One Graph holds the forward pass, the backward pass that autodiff appends, and the optimizer update; an entry
// point (train_step, grads, predict) is a choice of output nodes in it. Shapes are row-major as the user writes
// them ([B, 784]); a dimension is either a fixed extent or a symbol such as the batch `B`.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "dsl/source.h"

namespace nnc {

enum class Op {
#define OP(Enum, name, arity, family, rules) Enum,
#include "compiler/graph/ops.def"
#undef OP
};

// Families decide the schedule policy (compiler/schedule/cpu.cpp). Layout ops move data (transpose, reshape); Conv
// ops are windowed (convolution, pooling).
enum class OpFamily { Leaf, Elementwise, MatMul, Reduce, Loss, Layout, Conv };

// Which module holds an op's rules and lowering (see ops.def).
enum class OpRules { Core, Math, Reduce, Conv };

struct OpInfo {
  const char* name;
  int arity;
  OpFamily family;
  OpRules rules;
};
const OpInfo& opInfo(Op op);

struct Dim {
  int64_t extent = 1;  // meaningful when symbol is empty
  std::string symbol;  // e.g. "B"

  bool isSymbolic() const { return !symbol.empty(); }
  bool operator==(const Dim&) const = default;
};
using Shape = std::vector<Dim>;
std::string shapeToString(const Shape& shape);  // "[B, 784]"

enum class DType { F32, I32 };
const char* dtypeName(DType dtype);

using NodeId = int32_t;
constexpr NodeId kNoNode = -1;
constexpr size_t kMaxRank = 6;  // the most axes a tensor has: lowering names a Halide Var per axis (lower.cpp's dimVars)
constexpr int64_t kMaxElements = INT32_MAX;  // the most elements a tensor holds: Halide's buffers index with 32 bits

struct Attrs {
  int64_t index = 0;  // Input, Param, State, Scalar: position among the pipeline arguments of its kind;
                      // DropoutMask, RandNormal: the salt that makes each site's random numbers its own
  double value = 0;   // Fill
  bool transpose_a = false, transpose_b = false;  // MatMul
  Shape shape;        // Fill, SumTo, Reshape: the result shape
  std::vector<int64_t> axes;  // reductions, softmax, transpose: row-major axes, non-negative
  bool keepdims = false;      // reductions
  double alpha = 0, beta = 0;  // scalar parameters of an op (slope, alpha, exponent, clamp bounds)
  bool approximate = false;    // gelu: the tanh approximation
  int64_t start = 0, end = 0;  // Slice: the range [start, end) along axes[0], non-negative
  int64_t kernel[2] = {1, 1}, stride[2] = {1, 1}, padding[2] = {0, 0}, dilation[2] = {1, 1};  // Conv (H, W)
};

// causal_mask's value above the diagonal: large and negative, finite (see compiler/lower/lower.cpp).
constexpr double kCausalMasked = -1e9;

struct Node {
  Op op = Op::Fill;
  std::vector<NodeId> inputs;
  Attrs attrs;
  Shape shape;
  DType dtype = DType::F32;
  std::string name;  // the binding or parameter it came from; empty for anonymous nodes
  dsl::Span span;    // where in the model file it came from (backward nodes carry their forward node's span)
  // Backward nodes: the forward node whose VJP created them (they carry its adjoint to its inputs); update nodes:
  // the parameter they update. kNoNode in the forward pass.
  NodeId origin = kNoNode;
};

// How a parameter is initialised by the trainer before the first step.
enum class InitKind { Zeros, Ones, Constant, Uniform, Normal, XavierUniform, XavierNormal, HeUniform, HeNormal };
struct ParamInit {
  InitKind kind = InitKind::Zeros;
  double a = 0, b = 0;  // Constant: value. Uniform: low, high. Normal: mean, std. Xavier/He: gain.
};

// A parameter, or a buffer: a tensor the trainer keeps and checkpoints like a parameter but that is not trained
// (batch_norm's running statistics); its value after a train step is `update`, computed in the forward pass.
struct ParamInfo {
  std::string name;  // checkpoint name, e.g. "fc1.weight"
  NodeId node = kNoNode;
  ParamInit init;
  bool trainable = true;
  bool is_integer = false;  // a count (num_batches_tracked): whole numbers, I64 in checkpoints
  NodeId update = kNoNode;  // buffers only
};

struct InputInfo {
  std::string name;
  NodeId node = kNoNode;
};

// What a model's output is, decided from its inputs (graph_building::GraphBuilder::checkEntryValues): a
// classifier's logits (features and i32 labels), a regressor's values (features and f32 targets of the output's
// shape) or a reconstruction of its own input (features only: autoencoders). The trainer's metrics, `eval` and
// `predict` follow it.
enum class Task { Classify, Regress, Reconstruct };
const char* taskName(Task task);  // "classify", "regress", "reconstruct"

struct Graph {
  std::string model_name;
  Task task = Task::Classify;
  // Regress and Reconstruct: the loss term comparing the train-mode output with the target (mse, l1 or a binary
  // cross-entropy), whose criterion the trainer's metrics use.
  NodeId criterion = kNoNode;
  std::vector<Node> nodes;
  std::vector<InputInfo> inputs;  // in declaration order; Input attr index points here
  std::vector<ParamInfo> params;  // Param attr index points here (parameters and buffers)
  NodeId loss = kNoNode;
  NodeId output = kNoNode;        // the prediction, in eval mode (predict)
  NodeId train_output = kNoNode;  // the prediction in train mode; the same node unless dropout or batch_norm
  NodeId latent = kNoNode;        // the value latent(z) marks, in eval mode: where the `sample` entry point starts
  NodeId dropout_seed = kNoNode;  // the i32 Scalar leaf the dropout masks hash, when the model has dropout
  NodeId dropout_row = kNoNode;   // the i32 Scalar leaf: the batch's first row in the step's global batch (a rank's
                                  // offset in data-parallel training, else 0), so masks follow the global row

  const Node& node(NodeId id) const { return nodes[id]; }
  // Nodes [0, trainForwardEnd()) are the train-mode forward pass, then come the eval-mode nodes predict needs
  // (when they differ), up to forwardEnd(); autodiff and the optimizer append after.
  NodeId trainForwardEnd() const { return std::max(loss, train_output) + 1; }
  NodeId forwardEnd() const { return std::max(loss, output) + 1; }
  // Appends a node whose shape and dtype come from the op's shape rule; an invalid combination is an internal
  // error (user-facing shape errors are reported by the graph builder before it calls this).
  NodeId add(Op op, std::vector<NodeId> inputs, Attrs attrs = {}, std::string name = {}, dsl::Span span = {});
  NodeId fill(double value, Shape shape, dsl::Span span = {});
  // Appends a leaf (`node.op` Input or Param), sets its attrs.index and registers it in `inputs` or `params` (as a
  // trainable parameter with the default init; the caller may change both).
  NodeId addLeaf(Node node);
  // Records `origin` (see Node::origin) on every node from `first` to the end.
  void markOrigin(NodeId first, NodeId origin) {
    for (NodeId id = first; id < static_cast<NodeId>(nodes.size()); ++id) nodes[id].origin = origin;
  }
};

// Shape inference: the result shape and dtype of `op` on `inputs`, or an error message for the user.
struct ShapeResult {
  Shape shape;
  DType dtype = DType::F32;
  std::string error;  // non-empty on failure
};
ShapeResult inferShape(const Graph& graph, Op op, const std::vector<NodeId>& inputs, const Attrs& attrs);

// Numpy broadcasting of two shapes; sets `ok` to false when they are incompatible.
Shape broadcastShapes(const Shape& a, const Shape& b, bool& ok);

// The floating-point operations `node` performs at batch size `batch` (symbolic dimensions take that extent): a
// multiply-add counts 2, so matmul is 2*M*N*K; elementwise ops 1 per output element; leaves 0. The counts of the
// reductions and losses are given beside their rules in op_rules.cpp. Used by `nnc check`'s model summary.
double flops(const Graph& graph, NodeId node, int64_t batch);

// Marks every node that one of `roots` depends on (the roots included; kNoNode roots are ignored), not looking
// past `stop` (marked, its inputs not followed): what an entry point computes, or reaches through a value given.
std::vector<bool> ancestors(const Graph& graph, const std::vector<NodeId>& roots, NodeId stop = kNoNode);

// The number of elements of `shape` when every symbolic dimension has extent `batch`.
int64_t elementCount(const Shape& shape, int64_t batch);
// Whether `shape` has a symbolic dimension (the batch).
bool isBatched(const Shape& shape);

// The adjoint of each input of `node` given the adjoint `grad` of its output: kNoNode where an input has no
// gradient (integer labels) or `wanted[i]` is false. Results may have the broadcast output's shape; autodiff
// reduces them.
std::vector<NodeId> vjp(Graph& graph, NodeId node, NodeId grad, const std::vector<bool>& wanted);

}  // namespace nnc
