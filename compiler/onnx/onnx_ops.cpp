// ONNX import: one rule per ONNX operator, each returning the .nn expression of the node's output (see
// onnx_translate.h). The rules follow the ONNX operator specification (onnx/docs/Operators.md, opsets 11-17).
#include <fmt/format.h>

#include <algorithm>
#include <numeric>

#include "compiler/onnx/onnx_translate.h"
#include "dsl/source.h"

namespace nnc::onnx_import {

namespace {

using Kind = ImportError::Kind;

std::string join(const std::vector<std::string>& items, const char* separator) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) out += (i ? separator : "") + items[i];
  return out;
}

std::string joinInts(const std::vector<int64_t>& values) {
  std::vector<std::string> items;
  for (int64_t v : values) items.push_back(std::to_string(v));
  return join(items, ", ");
}

// Whether two ONNX shapes broadcast (numpy's rule, from the last axis); -1, the symbolic batch, meets anything.
bool broadcastable(const std::vector<int64_t>& a, const std::vector<int64_t>& b) {
  for (auto i = a.rbegin(), j = b.rbegin(); i != a.rend() && j != b.rend(); ++i, ++j)
    if (*i != *j && *i != 1 && *j != 1 && *i != -1 && *j != -1) return false;
  return true;
}

// Operands that meet by broadcasting. The batched operand's rank decides how constants broadcast against it: nnc
// aligns shapes at their last axis as ONNX does, but its batch axis B must not meet a constant's axis (a constant
// as wide as the batched value would).
void checkBroadcast(const NodeContext& c, const std::vector<const Value*>& operands) {
  for (const Value* a : operands)
    for (const Value* b : operands)
      if (a && b && !broadcastable(a->shape, b->shape))
        c.refuse(Kind::BadInput, fmt::format("operands `{}` [{}] and `{}` [{}] do not broadcast", a->onnx_name,
                                             joinInts(a->shape), b->onnx_name, joinInts(b->shape)));
  size_t batched_rank = 0;
  for (const Value* v : operands)
    if (v && v->batched) {
      if (batched_rank && batched_rank != v->shape.size())
        c.refuse(Kind::BatchAxis,
                 "its operands computed from the input differ in rank; nnc cannot align their batch axes");
      batched_rank = v->shape.size();
    }
  for (const Value* v : operands) {
    if (!v || v->batched || !batched_rank || (v->data && v->data->size() == 1)) continue;
    bool fits = c.newBatchAxis()
                    ? v->shape.size() <= batched_rank
                    : v->shape.size() < batched_rank || (v->shape.size() == batched_rank && v->shape[0] == 1);
    if (!fits)
      c.refuse(Kind::BatchAxis, fmt::format("constant `{}` of shape [{}] would broadcast against the batch axis",
                                            v->onnx_name, joinInts(v->shape)));
  }
}

// ---- elementwise ---------------------------------------------------------------------------------

template <const char* Op>
std::string binary(NodeContext& c) {
  checkBroadcast(c, {c.inputs.begin(), c.inputs.end()});
  return fmt::format("{} {} {}", c.tensor(0), Op, c.tensor(1));
}
constexpr char kPlus[] = "+", kMinus[] = "-", kTimes[] = "*", kOver[] = "/";

// Sum, Mean, Max, Min: any number of operands.
std::string variadic(NodeContext& c, const char* op) {
  checkBroadcast(c, {c.inputs.begin(), c.inputs.end()});
  std::string out = c.tensor(0);
  for (size_t i = 1; i < c.inputs.size(); ++i)
    out = std::string(op) == "+" ? fmt::format("{} + {}", out, c.tensor(i))
                                 : fmt::format("{}({}, {})", op, out, c.tensor(i));
  return out;
}

template <const char* Function>
std::string unary(NodeContext& c) {
  return fmt::format("{}({})", Function, c.tensor(0));
}
constexpr char kRelu[] = "relu", kSigmoid[] = "sigmoid", kTanh[] = "tanh", kExp[] = "exp", kLog[] = "log",
               kSqrt[] = "sqrt", kAbs[] = "abs", kSoftplus[] = "softplus", kErf[] = "erf";

std::string number(const NodeContext& c, const std::string& attr, double fallback) {
  return numberLiteral(c.floatAttr(attr, fallback), c);
}

// Clip (opset 11+): optional min and max inputs, constant numbers.
std::string clip(NodeContext& c) {
  std::string x = c.tensor(0);
  bool low = c.has(1), high = c.has(2);
  if (low && high && c.constNumber(1) < c.constNumber(2))
    return fmt::format("clamp({}, {}, {})", x, numberLiteral(c.constNumber(1), c), numberLiteral(c.constNumber(2), c));
  if (low) x = fmt::format("maximum({}, {})", x, numberLiteral(c.constNumber(1), c));
  if (high)
    x = fmt::format("minimum({}, {})", x, numberLiteral(c.constNumber(2), c));  // min(max(x, lo), hi) = hi for lo >= hi
  return low || high ? x : fmt::format("identity({})", x);
}

std::string pow(NodeContext& c) {
  if (c.in(1).batched) c.refuse(Kind::Semantics, "its exponent is computed; nnc's `pow` takes a constant number");
  return fmt::format("pow({}, {})", c.tensor(0), numberLiteral(c.constNumber(1), c));
}

// PRelu: max(x, 0) + slope min(x, 0). A slope [C] that does not broadcast against x [N, C, ..] is one per channel,
// as PRelu's slopes were before opset 7 (ONNX's version converter leaves them so): a param [C, 1, ..].
std::string prelu(NodeContext& c) {
  const std::vector<int64_t>& x = c.in(0).shape;
  const Value& slope = c.in(1);
  std::string slopes;
  if (slope.data && slope.shape.size() == 1 && x.size() > 2 && slope.shape[0] == x[1] &&
      !broadcastable(slope.shape, x)) {
    std::vector<int64_t> column(x.size() - 1, 1);
    column[0] = x[1];
    slopes = c.constantAs(1, column);
  } else {
    checkBroadcast(c, {c.inputs.begin(), c.inputs.end()});
    slopes = c.tensor(1);
  }
  std::string input = c.tensor(0);
  return fmt::format("maximum({}, 0) + {} * minimum({}, 0)", input, slopes, input);
}

// Pad: only the padding of nothing (PyTorch puts one before each AvgPool2d); nnc pads inside conv2d and the pools.
std::string pad(NodeContext& c) {
  std::vector<int64_t> pads = c.constInts(1);
  if (std::any_of(pads.begin(), pads.end(), [](int64_t p) { return p != 0; }))
    c.refuse(Kind::Semantics, fmt::format("pads [{}]; nnc pads only inside conv2d and the pools", joinInts(pads)));
  return c.tensor(0);
}

// Cast and CastLike between float32 values: the identity. nnc computes in float32 only (integer shape arithmetic
// is folded before the rules).
std::string cast(NodeContext& c) {
  int64_t to = c.node.op_type() == "CastLike" ? c.in(1).dtype : c.intAttr("to", 0);
  if (to != onnx::TensorProto::FLOAT || c.in(0).dtype != onnx::TensorProto::FLOAT)
    c.refuse(Kind::Semantics, fmt::format("a cast from {} to {}; nnc computes in float32",
                                          onnx::TensorProto::DataType_Name(c.in(0).dtype),
                                          onnx::TensorProto::DataType_Name(static_cast<int32_t>(to))));
  return c.tensor(0);
}

// Dropout in inference: the identity (its mask output is refused when used).
std::string dropout(NodeContext& c) {
  if (c.has(2) && c.constNumber(2) != 0)
    c.refuse(Kind::Semantics, "training_mode is set; nnc imports inference graphs");
  return c.tensor(0);
}

// ---- linear algebra --------------------------------------------------------------------------------

// An operand transposed: its last two axes swapped (the batch cannot be one of them).
std::string transposed(NodeContext& c, size_t i) {
  if (c.in(i).batched && !c.newBatchAxis() && c.in(i).shape.size() == 2)
    c.refuse(Kind::BatchAxis, "it transposes the batch axis");
  return fmt::format("transpose({})", c.tensor(i));
}

std::string matmul(NodeContext& c) {
  for (size_t i = 0; i < 2; ++i) {
    const Value& v = c.in(i);
    if (v.shape.size() < 2) c.refuse(Kind::Semantics, "a 1-D operand; nnc's `@` takes matrices");
    if (!v.batched && v.shape.size() != 2)
      c.refuse(Kind::BatchAxis, fmt::format("constant `{}` of rank {} would meet the batch axis; nnc shares only 2-D "
                                            "constants across a batched product",
                                            v.onnx_name, v.shape.size()));
  }
  return fmt::format("{} @ {}", c.tensor(0), c.tensor(1));
}

// Gemm: alpha A' B' + beta C. `linear(x, N)` when it is one (x [B, K], a constant weight [N, K] transposed and a
// constant bias [N]): the checkpoint names them BINDING.weight and BINDING.bias, as `linear` does.
std::string gemm(NodeContext& c) {
  bool trans_a = c.intAttr("transA", 0), trans_b = c.intAttr("transB", 0);
  double alpha = c.floatAttr("alpha", 1), beta = c.floatAttr("beta", 1);
  const Value& a = c.in(0);
  const Value& b = c.in(1);
  bool linear_weight = b.data && b.shape.size() == 2;
  bool bias = linear_weight && c.has(2) && c.in(2).data && c.in(2).shape == std::vector<int64_t>{b.shape[0]};
  if (a.batched && !c.newBatchAxis() && !trans_a && trans_b && alpha == 1 && beta == 1 && linear_weight &&
      (!c.has(2) || bias)) {
    int64_t out = b.shape[0];
    c.renameWeight(1, c.binding + ".weight", b.shape);
    if (bias)
      c.renameWeight(2, c.binding + ".bias", {out});
    else
      c.addWeight(c.binding + ".bias", {out}, std::vector<double>(out, 0.0));
    return fmt::format("linear({}, {})", c.tensor(0), out);
  }
  std::string lhs = trans_a ? transposed(c, 0) : c.tensor(0), rhs = trans_b ? transposed(c, 1) : c.tensor(1);
  std::string out = fmt::format("{} @ {}", lhs, rhs);
  if (alpha != 1) out = fmt::format("{} * ({})", numberLiteral(alpha, c), out);
  if (!c.has(2) || beta == 0) return out;
  Value product{"A'B'", "", c.output_shapes[0], onnx::TensorProto::FLOAT, a.batched, std::nullopt};
  checkBroadcast(c, {&product, &c.in(2)});
  std::string bias_term = c.tensor(2);
  return beta == 1 ? fmt::format("{} + {}", out, bias_term)
                   : fmt::format("{} + {} * {}", out, numberLiteral(beta, c), bias_term);
}

// ---- layout ----------------------------------------------------------------------------------------

// Reshape, Flatten, Squeeze, Unsqueeze: the input in the output's shape (row-major, as nnc's `reshape`, which keeps
// the batch axis). With the batch as axis 0, the output's axis 0 must be the batch.
std::string reshapeToOutput(NodeContext& c) {
  const Value& x = c.in(0);
  const std::vector<int64_t>& out = c.output_shapes[0];
  if (!x.batched && x.data && x.dtype == onnx::TensorProto::FLOAT)  // folded: a param of the new shape
    return c.constantAs(0, out);
  if (!x.batched) c.refuse(Kind::Semantics, "it reshapes a constant; nnc reshapes only values computed from the input");
  if (out == x.shape) return c.tensor(0);
  if (c.newBatchAxis()) {
    if (out.empty()) c.refuse(Kind::Semantics, "its output is a scalar; nnc keeps the batch axis");
    return fmt::format("reshape({}, {})", c.tensor(0), joinInts(out));
  }
  if (out.size() < 2 || out[0] != x.shape[0])
    c.refuse(Kind::BatchAxis,
             fmt::format("its output [{}] does not keep the batch axis of [{}]", joinInts(out), joinInts(x.shape)));
  if (out.size() == 2) return fmt::format("flatten({})", c.tensor(0));
  return fmt::format("reshape({}, {})", c.tensor(0), joinInts(std::vector<int64_t>(out.begin() + 1, out.end())));
}

std::string reshape(NodeContext& c) {
  if (c.intAttr("allowzero", 0)) {
    std::vector<int64_t> shape = c.constInts(1);
    if (std::count(shape.begin(), shape.end(), 0))
      c.refuse(Kind::Semantics, "allowzero with a 0 in the shape makes an empty tensor");
  }
  return reshapeToOutput(c);
}

std::string transpose(NodeContext& c) {
  size_t rank = c.in(0).shape.size();
  std::vector<int64_t> perm(rank);
  std::iota(perm.rbegin(), perm.rend(), 0);
  perm = c.intsAttr("perm", perm);
  std::vector<int64_t> axes;
  if (c.in(0).batched) {
    // The batch axis stays first (attention's heads: perm 0, 2, 1, 3); c.axis would refuse it as acted on.
    if (!c.newBatchAxis()) {
      if (perm.empty() || perm[0] != 0) c.refuse(Kind::BatchAxis, "it moves the batch axis");
      perm.erase(perm.begin());
    }
    axes.push_back(0);
  }
  for (int64_t p : perm) axes.push_back(c.axis(0, p));
  if (!c.in(0).batched)
    c.refuse(Kind::Semantics, "it transposes a constant; nnc permutes values computed from the input");
  std::vector<int64_t> identity(axes.size());
  std::iota(identity.begin(), identity.end(), 0);
  return axes == identity ? c.tensor(0) : fmt::format("permute({}, {})", c.tensor(0), joinInts(axes));
}

std::string concat(NodeContext& c) {
  if (c.inputs.size() == 1) return c.tensor(0);
  for (size_t i = 0; i < c.inputs.size(); ++i)
    if (c.in(i).batched != c.in(0).batched)
      c.refuse(Kind::BatchAxis,
               "it joins a constant to a value computed from the input; the constant has no batch axis");
  std::vector<std::string> operands;
  for (size_t i = 0; i < c.inputs.size(); ++i) operands.push_back(c.tensor(i));
  return fmt::format("concat({}, axis = {})", join(operands, ", "), c.axis(0, c.intAttr("axis", 0)));
}

// Slice (opset 10+): constant starts, ends, axes and steps; ends clamp as in ONNX, steps must be 1.
std::string slice(NodeContext& c) {
  const Value& x = c.in(0);
  std::vector<int64_t> starts = c.constInts(1), ends = c.constInts(2);
  std::vector<int64_t> axes(starts.size());
  std::iota(axes.begin(), axes.end(), 0);
  if (c.has(3)) axes = c.constInts(3);
  if (ends.size() != starts.size() || axes.size() != starts.size())
    c.refuse(Kind::BadInput, "starts, ends and axes of different lengths");
  if (c.has(4))
    for (int64_t step : c.constInts(4))
      if (step != 1) c.refuse(Kind::Semantics, fmt::format("step {}; nnc's `slice` takes steps of 1", step));
  std::string out = c.tensor(0);
  for (size_t i = 0; i < axes.size(); ++i) {
    int64_t axis = axes[i] < 0 ? axes[i] + static_cast<int64_t>(x.shape.size()) : axes[i];
    if (axis < 0 || axis >= static_cast<int64_t>(x.shape.size())) c.refuse(Kind::BadInput, "an axis out of range");
    int64_t dim = x.shape[axis];
    auto clampIndex = [&](int64_t index) { return std::clamp(index < 0 ? index + dim : index, int64_t{0}, dim); };
    int64_t start = clampIndex(starts[i]), end = clampIndex(ends[i]);
    if (end <= start) c.refuse(Kind::Semantics, "an empty slice; nnc's tensors are never empty");
    if (start == 0 && end == dim) continue;
    out = fmt::format("slice({}, {}, {}, {})", out, c.axis(0, axis), start, end);
  }
  return out;
}

// Split: each output a slice along the axis, of the size shape inference gives it (from the `split` sizes, or
// equal parts).
std::string split(NodeContext& c) {
  int64_t axis = c.intAttr("axis", 0), nn_axis = c.axis(0, axis), start = 0;
  if (axis < 0) axis += static_cast<int64_t>(c.in(0).shape.size());
  std::string x = c.tensor(0), first;
  for (size_t i = 0; i < c.output_shapes.size(); ++i) {
    int64_t size = c.output_shapes[i].at(static_cast<size_t>(axis));
    if (size <= 0) c.refuse(Kind::Semantics, "an empty part; nnc's tensors are never empty");
    std::string part = fmt::format("slice({}, {}, {}, {})", x, nn_axis, start, start + size);
    if (i == 0)
      first = part;
    else
      c.extraOutput(i, part);
    start += size;
  }
  return first;
}

// Tile: each axis repeated by joining copies (the batch axis cannot be repeated).
std::string tile(NodeContext& c) {
  std::vector<int64_t> repeats = c.constInts(1);
  if (std::any_of(repeats.begin(), repeats.end(), [](int64_t r) { return r < 1; }))
    c.refuse(Kind::Semantics, "a repeat below 1 makes an empty tensor");
  // The result holds the input's elements times every repeat: checked before any copy, as shape inference's own
  // product of them may have overflowed.
  std::vector<int64_t> factors = c.in(0).shape;
  factors.insert(factors.end(), repeats.begin(), repeats.end());
  c.checkElements(c.node.output(0), factors);
  std::string out = c.tensor(0);
  // Every copy is an operand of `concat` in the .nn: they must fit in a file nnc reads.
  auto most = static_cast<int64_t>(dsl::SourceFile::kMaxBytes / (out.size() + 2));
  if (!elementsWithin(repeats, most))
    c.refuse(Kind::Semantics, fmt::format("repeats [{}] make more than {} copies of `{}`, more than a .nn file of {} "
                                          "MiB holds", joinInts(repeats), most, c.in(0).onnx_name,
                                          dsl::SourceFile::kMaxBytes >> 20));
  for (size_t axis = 0; axis < repeats.size(); ++axis) {
    if (repeats[axis] == 1) continue;
    std::vector<std::string> copies(static_cast<size_t>(repeats[axis]), out);
    out = fmt::format("concat({}, axis = {})", join(copies, ", "), c.axis(0, static_cast<int64_t>(axis)));
  }
  return out;
}

// Input 0's shape [N, C, H, W], which must be images with the batch as N (nnc's conv2d, pools and the block moves).
const std::vector<int64_t>& images(const NodeContext& c) {
  const Value& x = c.in(0);
  if (!x.batched || c.newBatchAxis() || x.shape.size() != 4)
    c.refuse(c.newBatchAxis() ? Kind::BatchAxis : Kind::Semantics, "it takes images [N, C, H, W] with the batch as N");
  return x.shape;
}

// DepthToSpace and SpaceToDepth: a reshape that splits axes by the block size, a permutation and a reshape that
// joins them (the ONNX specification's own formulation).
std::string depthToSpace(NodeContext& c) {
  const std::vector<int64_t>& x = images(c);
  int64_t b = c.intAttr("blocksize", 1), channels = x[1] / (b * b);
  bool crd = c.stringAttr("mode", "DCR") == "CRD";
  std::string split = crd ? joinInts({channels, b, b, x[2], x[3]}) : joinInts({b, b, channels, x[2], x[3]});
  return fmt::format("reshape(permute(reshape({}, {}), {}), {})", c.tensor(0), split,
                     crd ? "0, 1, 4, 2, 5, 3" : "0, 3, 4, 1, 5, 2", joinInts({channels, x[2] * b, x[3] * b}));
}

std::string spaceToDepth(NodeContext& c) {
  const std::vector<int64_t>& x = images(c);
  int64_t b = c.intAttr("blocksize", 1);
  return fmt::format("reshape(permute(reshape({}, {}), 0, 3, 5, 1, 2, 4), {})", c.tensor(0),
                     joinInts({x[1], x[2] / b, b, x[3] / b, b}), joinInts({x[1] * b * b, x[2] / b, x[3] / b}));
}

// ---- reductions ------------------------------------------------------------------------------------

// A reduction over `axes` (all when empty), chained one axis at a time from the last: the input goes through
// `before`, each axis through `reducer`, the result through `after` ({} stands for the expression).
std::string reduce(NodeContext& c, const char* before, const char* reducer, const char* after) {
  const Value& x = c.in(0);
  std::vector<int64_t> axes = c.intsAttr("axes");
  if (c.node.op_type() == "ReduceSum" && c.opset() >= 13) {
    axes = c.has(1) ? c.constInts(1) : std::vector<int64_t>{};
    if (axes.empty() && c.intAttr("noop_with_empty_axes", 0)) return c.tensor(0);
  }
  if (axes.empty()) {
    axes.resize(x.shape.size());
    std::iota(axes.begin(), axes.end(), 0);
  }
  std::vector<int64_t> nn_axes;
  for (int64_t axis : axes) nn_axes.push_back(c.axis(0, axis));
  std::sort(nn_axes.rbegin(), nn_axes.rend());
  bool keep = c.intAttr("keepdims", 1);
  std::string out = fmt::format(fmt::runtime(before), c.tensor(0));
  for (int64_t axis : nn_axes)
    out = fmt::format("{}({}, axis = {}{})", reducer, out, axis, keep ? ", keepdims = 1" : "");
  return fmt::format(fmt::runtime(after), out);
}

// Softmax and LogSoftmax. Before opset 13 they flatten the input to 2-D at `axis` (default 1), which is a softmax
// along one axis only when that axis is the last.
std::string softmax(NodeContext& c, const char* function) {
  int64_t rank = static_cast<int64_t>(c.in(0).shape.size());
  int64_t axis = c.intAttr("axis", c.opset() >= 13 ? -1 : 1);
  if (c.opset() < 13 && (axis < 0 ? axis + rank : axis) != rank - 1)
    c.refuse(Kind::Semantics, fmt::format("opset {} {} over the flattened axes {}.. is not one axis", c.opset(),
                                          c.node.op_type(), axis));
  return fmt::format("{}({}, axis = {})", function, c.tensor(0), c.axis(0, axis));
}

// ---- convolution, pooling, normalization ----------------------------------------------------------

struct Window {
  int64_t kernel, stride, padding, dilation;
};

// A 2-D window's attributes as nnc's one value for both spatial axes (square kernels, equal strides, the same
// padding on every side).
Window window(NodeContext& c, const std::vector<int64_t>& kernel_shape) {
  images(c);
  auto same = [&](const std::vector<int64_t>& values, const char* what) {
    if (values.empty() || std::adjacent_find(values.begin(), values.end(), std::not_equal_to<>()) != values.end())
      c.refuse(Kind::Semantics,
               fmt::format("{} [{}]: nnc takes one value for both spatial axes", what, joinInts(values)));
    return values[0];
  };
  Window w{same(kernel_shape, "kernel"), same(c.intsAttr("strides", {1, 1}), "strides"), 0,
           same(c.intsAttr("dilations", {1, 1}), "dilations")};
  std::string auto_pad = c.stringAttr("auto_pad", "NOTSET");
  if (auto_pad == "NOTSET")
    w.padding = same(c.intsAttr("pads", {0, 0, 0, 0}), "pads");
  else if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
    int64_t total = (w.kernel - 1) * w.dilation;  // with stride 1 the output keeps the input's size
    if (w.stride != 1 || total % 2) c.refuse(Kind::Semantics, auto_pad + " pads unequally here");
    w.padding = total / 2;
  } else if (auto_pad != "VALID")
    c.refuse(Kind::BadInput, "unknown auto_pad " + auto_pad);
  if (c.intAttr("ceil_mode", 0)) c.refuse(Kind::Semantics, "ceil_mode; nnc rounds window counts down");
  return w;
}

std::string conv(NodeContext& c) {
  if (c.intAttr("group", 1) != 1) c.refuse(Kind::Semantics, "a grouped convolution");
  const Value& weight = c.in(1);
  if (weight.shape.size() != 4) c.refuse(Kind::Semantics, "nnc convolves in 2-D");
  Window w = window(c, c.intsAttr("kernel_shape", {weight.shape[2], weight.shape[3]}));
  c.renameWeight(1, c.binding + ".weight", weight.shape);
  if (c.has(2)) c.renameWeight(2, c.binding + ".bias", c.in(2).shape);
  return fmt::format("conv2d({}, {}, kernel = {}, stride = {}, padding = {}, dilation = {}{})", c.tensor(0),
                     weight.shape[0], w.kernel, w.stride, w.padding, w.dilation, c.has(2) ? "" : ", bias = 0");
}

std::string pool(NodeContext& c, const char* function) {
  Window w = window(c, c.intsAttr("kernel_shape"));
  if (w.dilation != 1) c.refuse(Kind::Semantics, "a dilated pool");
  if (2 * w.padding > w.kernel) c.refuse(Kind::Semantics, "padding above half the kernel");
  if (std::string(function) == "avg_pool2d" && w.padding && !c.intAttr("count_include_pad", 0))
    c.refuse(Kind::Semantics, "count_include_pad = 0 with padding; nnc's avg_pool2d counts the padding");
  return fmt::format("{}({}, kernel = {}, stride = {}, padding = {})", function, c.tensor(0), w.kernel, w.stride,
                     w.padding);
}

// Global pools: over every axis after the channels, kept as 1s.
std::string globalPool(NodeContext& c, const char* reducer) {
  std::string out = c.tensor(0);
  for (int64_t axis = static_cast<int64_t>(c.in(0).shape.size()) - 1; axis >= 2; --axis)
    out = fmt::format("{}({}, axis = {}, keepdims = 1)", reducer, out, c.axis(0, axis));
  return out;
}

// BatchNormalization in inference: nnc's `batch_norm` in eval mode, its params and buffers from the initializers
// under PyTorch's names (BINDING.weight, .bias, .running_mean, .running_var, .num_batches_tracked).
std::string batchNorm(NodeContext& c) {
  if (c.intAttr("training_mode", 0)) c.refuse(Kind::Semantics, "training_mode is set; nnc imports inference graphs");
  const Value& x = c.in(0);
  if (!x.batched || c.newBatchAxis() || x.shape.size() < 2 || x.shape.size() > 4)
    c.refuse(c.newBatchAxis() ? Kind::BatchAxis : Kind::Semantics,
             "nnc's batch_norm takes [N, C], [N, C, L] or [N, C, H, W] with the batch as N");
  int64_t channels = x.shape[1];
  const char* names[] = {"weight", "bias", "running_mean", "running_var"};
  for (size_t i = 0; i < 4; ++i) c.renameWeight(i + 1, c.binding + "." + names[i], {channels});
  c.addWeight(c.binding + ".num_batches_tracked", {}, {0.0});
  // PyTorch's momentum is 1 - ONNX's, rounded to the 6 digits a float32 momentum carries (0.1, not 0.100000024).
  double momentum = std::stod(fmt::format("{:.6g}", 1 - c.floatAttr("momentum", 0.9)));
  return fmt::format("batch_norm({}, momentum = {}, eps = {})", c.tensor(0), numberLiteral(momentum, c),
                     number(c, "epsilon", 1e-5));
}

// Gather of a constant table's rows at the model's integer input: nnc's `embedding`, its table BINDING.weight (as
// torch.nn.Embedding's). nnc clamps ids outside [0, rows) where ONNX counts negative ones from the end.
std::string gather(NodeContext& c) {
  const Value& table = c.in(0);
  const Value& ids = c.in(1);
  if (!table.data || table.shape.size() != 2 || c.intAttr("axis", 0) != 0 || !ids.batched || ids.data)
    c.refuse(Kind::Semantics, "nnc gathers only rows of a constant table at the input's ids (an embedding)");
  c.renameWeight(0, c.binding + ".weight", table.shape);
  return fmt::format("embedding({}, {}, {})", ids.expr, table.shape[0], table.shape[1]);
}

// LayerNormalization (opset 17): nnc's `layer_norm` over the axes from `axis` on, its params from Scale and B under
// `layer_norm`'s names (BINDING.weight, BINDING.bias).
std::string layerNorm(NodeContext& c) {
  const std::vector<int64_t>& x = c.in(0).shape;
  int64_t axis = c.intAttr("axis", -1);
  c.axis(0, axis);  // refuses the batch axis
  size_t first = static_cast<size_t>(axis < 0 ? axis + static_cast<int64_t>(x.size()) : axis);
  std::vector<int64_t> normalized(x.begin() + static_cast<std::ptrdiff_t>(first), x.end());
  for (size_t i = 1; i < 3 && c.has(i); ++i)
    if (c.in(i).shape != normalized)
      c.refuse(Kind::Semantics, fmt::format("`{}` has shape [{}], not the normalized axes' [{}]", c.in(i).onnx_name,
                                            joinInts(c.in(i).shape), joinInts(normalized)));
  c.renameWeight(1, c.binding + ".weight", normalized);
  if (c.has(2))
    c.renameWeight(2, c.binding + ".bias", normalized);
  else
    c.addWeight(c.binding + ".bias", normalized, std::vector<double>(c.in(1).data->size(), 0.0));
  return fmt::format("layer_norm({}, dims = {}, eps = {})", c.tensor(0), normalized.size(), number(c, "epsilon", 1e-5));
}

}  // namespace

const std::map<std::string, OpRule>& opRules() {
  static const std::map<std::string, OpRule> rules = {
      {"Add", binary<kPlus>},
      {"Sub", binary<kMinus>},
      {"Mul", binary<kTimes>},
      {"Div", binary<kOver>},
      {"Sum", [](NodeContext& c) { return variadic(c, "+"); }},
      {"Mean", [](NodeContext& c) { return fmt::format("({}) / {}", variadic(c, "+"), c.inputs.size()); }},
      {"Max", [](NodeContext& c) { return variadic(c, "maximum"); }},
      {"Min", [](NodeContext& c) { return variadic(c, "minimum"); }},
      {"Neg", [](NodeContext& c) { return fmt::format("-{}", c.tensor(0)); }},
      {"Reciprocal", [](NodeContext& c) { return fmt::format("1 / {}", c.tensor(0)); }},
      {"Relu", unary<kRelu>},
      {"Sigmoid", unary<kSigmoid>},
      {"Tanh", unary<kTanh>},
      {"Erf", unary<kErf>},
      {"Exp", unary<kExp>},
      {"Log", unary<kLog>},
      {"Sqrt", unary<kSqrt>},
      {"Abs", unary<kAbs>},
      {"Softplus", unary<kSoftplus>},
      {"Identity", [](NodeContext& c) { return c.tensor(0); }},
      {"Dropout", dropout},
      {"Cast", cast},
      {"CastLike", cast},
      {"Pad", pad},
      {"Pow", pow},
      {"Clip", clip},
      {"PRelu", prelu},
      {"LeakyRelu",
       [](NodeContext& c) { return fmt::format("leaky_relu({}, slope = {})", c.tensor(0), number(c, "alpha", 0.01)); }},
      {"Elu", [](NodeContext& c) { return fmt::format("elu({}, alpha = {})", c.tensor(0), number(c, "alpha", 1)); }},
      {"Selu",  // gamma elu(x, alpha)
       [](NodeContext& c) {
         return fmt::format("{} * elu({}, alpha = {})", number(c, "gamma", 1.05070102214813232421875), c.tensor(0),
                            number(c, "alpha", 1.67326319217681884765625));
       }},
      {"Celu",  // max(0, x) + min(0, alpha (exp(x / alpha) - 1)) = alpha elu(x / alpha)
       [](NodeContext& c) { return fmt::format("{0} * elu({1} / {0})", number(c, "alpha", 1), c.tensor(0)); }},
      {"HardSigmoid",  // max(0, min(1, alpha x + beta))
       [](NodeContext& c) {
         return fmt::format("clamp({} * {} + {}, 0, 1)", number(c, "alpha", 0.2), c.tensor(0), number(c, "beta", 0.5));
       }},
      {"HardSwish", [](NodeContext& c) { return fmt::format("{0} * clamp({0} / 6 + 0.5, 0, 1)", c.tensor(0)); }},
      {"Softsign", [](NodeContext& c) { return fmt::format("{0} / (1 + abs({0}))", c.tensor(0)); }},
      {"ThresholdedRelu",  // x where x > alpha, else 0
       [](NodeContext& c) { return fmt::format("{0} * step({0} - {1})", c.tensor(0), number(c, "alpha", 1)); }},
      {"Sign", [](NodeContext& c) { return fmt::format("step({0}) - step(-{0})", c.tensor(0)); }},
      {"Shrink",  // x + bias below -lambd, x - bias above lambd, else 0
       [](NodeContext& c) {
         return fmt::format("({0} + {1}) * step(-{2} - {0}) + ({0} - {1}) * step({0} - {2})", c.tensor(0),
                            number(c, "bias", 0), number(c, "lambd", 0.5));
       }},
      {"MatMul", matmul},
      {"Gemm", gemm},
      {"Reshape", reshape},
      {"Flatten", reshapeToOutput},
      {"Squeeze", reshapeToOutput},
      {"Unsqueeze", reshapeToOutput},
      {"Transpose", transpose},
      {"Concat", concat},
      {"Slice", slice},
      {"Split", split},
      {"Gather", gather},
      {"Tile", tile},
      {"DepthToSpace", depthToSpace},
      {"SpaceToDepth", spaceToDepth},
      {"ReduceSum", [](NodeContext& c) { return reduce(c, "{}", "sum", "{}"); }},
      {"ReduceMean", [](NodeContext& c) { return reduce(c, "{}", "mean", "{}"); }},
      {"ReduceMax", [](NodeContext& c) { return reduce(c, "{}", "max", "{}"); }},
      {"ReduceMin", [](NodeContext& c) { return reduce(c, "-{}", "max", "-{}"); }},  // min x = -max(-x)
      {"ReduceSumSquare", [](NodeContext& c) { return reduce(c, "square({})", "sum", "{}"); }},
      {"ReduceL1", [](NodeContext& c) { return reduce(c, "abs({})", "sum", "{}"); }},
      {"ReduceL2", [](NodeContext& c) { return reduce(c, "square({})", "sum", "sqrt({})"); }},
      {"ReduceLogSum", [](NodeContext& c) { return reduce(c, "{}", "sum", "log({})"); }},
      {"ReduceLogSumExp", [](NodeContext& c) { return reduce(c, "exp({})", "sum", "log({})"); }},
      {"Softmax", [](NodeContext& c) { return softmax(c, "softmax"); }},
      {"LogSoftmax", [](NodeContext& c) { return softmax(c, "log_softmax"); }},
      {"Conv", conv},
      {"MaxPool", [](NodeContext& c) { return pool(c, "max_pool2d"); }},
      {"AveragePool", [](NodeContext& c) { return pool(c, "avg_pool2d"); }},
      {"GlobalAveragePool", [](NodeContext& c) { return globalPool(c, "mean"); }},
      {"GlobalMaxPool", [](NodeContext& c) { return globalPool(c, "max"); }},
      {"BatchNormalization", batchNorm},
      {"LayerNormalization", layerNorm},
  };
  return rules;
}

}  // namespace nnc::onnx_import
