// Per-op rules of the graph IR: the shape rule and the VJP (reverse-mode derivative) of every op in ops.def.
//
// Each VJP returns one adjoint per input, written with ordinary graph ops; the autodiff driver
// (compiler/autodiff/autodiff.cpp) accumulates fan-out and reduces broadcast adjoints, so the rules here do neither.
#include <fmt/format.h>

#include <algorithm>

#include <stdexcept>

#include "compiler/graph/graph.h"
#include "compiler/graph/op_rules_elementwise.h"
#include "compiler/graph/op_rules_reduce.h"
#include "compiler/graph/ops_conv.h"

namespace nnc {

const OpInfo& opInfo(Op op) {
  static const OpInfo kTable[] = {
#define OP(Enum, name, arity, family, rules) {name, arity, OpFamily::family, OpRules::rules},
#include "compiler/graph/ops.def"
#undef OP
  };
  return kTable[static_cast<int>(op)];
}

std::string shapeToString(const Shape& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) out += ", ";
    out += shape[i].isSymbolic() ? shape[i].symbol : std::to_string(shape[i].extent);
  }
  return out + "]";
}

const char* dtypeName(DType dtype) {
  switch (dtype) {
    case DType::F32: return "f32";
    case DType::I32: return "i32";
  }
  return "?";
}

const char* taskName(Task task) {
  switch (task) {
    case Task::Classify: return "classify";
    case Task::Regress: return "regress";
    case Task::Reconstruct: return "reconstruct";
  }
  return "?";
}

Shape broadcastShapes(const Shape& a, const Shape& b, bool& ok) {
  ok = true;
  const Shape& longer = a.size() >= b.size() ? a : b;
  const Shape& shorter = a.size() >= b.size() ? b : a;
  Shape out = longer;
  size_t offset = longer.size() - shorter.size();
  for (size_t i = 0; i < shorter.size(); ++i) {
    const Dim& x = longer[offset + i];
    const Dim& y = shorter[i];
    if (x == y || y == Dim{}) continue;
    if (x == Dim{}) {
      out[offset + i] = y;
      continue;
    }
    ok = false;
  }
  return out;
}

namespace {

ShapeResult fail(std::string message) { return {{}, DType::F32, std::move(message)}; }

ShapeResult elementwiseShape(const Graph& g, Op op, const std::vector<NodeId>& in) {
  for (NodeId id : in)
    if (g.node(id).dtype != DType::F32)
      return fail(fmt::format("`{}` needs floating-point operands, got {} {}", opInfo(op).name,
                              dtypeName(g.node(id).dtype), shapeToString(g.node(id).shape)));
  if (in.size() == 1) return {g.node(in[0]).shape, DType::F32, {}};
  bool ok = false;
  Shape out = broadcastShapes(g.node(in[0]).shape, g.node(in[1]).shape, ok);
  if (!ok)
    return fail(fmt::format("cannot broadcast {} and {} for `{}`", shapeToString(g.node(in[0]).shape),
                            shapeToString(g.node(in[1]).shape), opInfo(op).name));
  return {out, DType::F32, {}};
}

ShapeResult matmulShape(const Graph& g, const std::vector<NodeId>& in, const Attrs& attrs);

// The 2-D product's shape rule on the last two dimensions of a and b (the matrices of a batched product).
ShapeResult lastTwoDimsMatmulShape(const Shape& a, const Shape& b, const Attrs& attrs) {
  Graph matrices;
  for (const Shape* s : {&a, &b}) {
    Node node;
    node.op = Op::Param;
    node.shape = Shape(s->end() - 2, s->end());
    matrices.nodes.push_back(node);
  }
  return matmulShape(matrices, {0, 1}, attrs);
}

// A product over flattened rows: the leading dimensions of its operands are more rows of one 2-D GEMM.
//   rows:        A [L.., M, K] @ op(B) [K, N] -> [L.., M, N], B a plain matrix shared by every row
//   contraction: A [L.., R, K]^T @ B [L.., R, N] -> [K, N], summed over L.. and R (the shared matrix's gradient)
ShapeResult flatRowsMatmulShape(const Graph& g, const std::vector<NodeId>& in, const Attrs& attrs) {
  const Shape& a = g.node(in[0]).shape;
  const Shape& b = g.node(in[1]).shape;
  bool rows = b.size() == 2 && !attrs.transpose_a;
  bool contraction = attrs.transpose_a && !attrs.transpose_b && a.size() == b.size() &&
                     Shape(a.begin(), a.end() - 2) == Shape(b.begin(), b.end() - 2);
  if (!rows && !contraction)
    return fail(fmt::format("`matmul` over flattened rows needs [.., M, K] @ [K, N] or [.., R, K]^T @ [.., R, N], "
                            "got {} and {}",
                            shapeToString(a), shapeToString(b)));
  ShapeResult result = lastTwoDimsMatmulShape(a, b, attrs);
  if (result.error.empty() && rows) result.shape.insert(result.shape.begin(), a.begin(), a.end() - 2);
  return result;
}

ShapeResult matmulShape(const Graph& g, const std::vector<NodeId>& in, const Attrs& attrs) {
  const Shape& a = g.node(in[0]).shape;
  const Shape& b = g.node(in[1]).shape;
  if (a.size() >= 2 && b.size() >= 2 && a.size() + b.size() > 4) return flatRowsMatmulShape(g, in, attrs);
  if (a.size() != 2 || b.size() != 2)
    return fail(fmt::format("`@` needs two matrices, got {} and {}", shapeToString(a), shapeToString(b)));
  Dim m = attrs.transpose_a ? a[1] : a[0], ka = attrs.transpose_a ? a[0] : a[1];
  Dim kb = attrs.transpose_b ? b[1] : b[0], n = attrs.transpose_b ? b[0] : b[1];
  if (!(ka == kb)) {
    std::string hint;
    if (!attrs.transpose_b && ka == b[1]) hint = "; the right operand looks transposed";
    return fail(fmt::format("`@` of {} and {}: inner dimensions {} and {} differ{}", shapeToString(a),
                            shapeToString(b), shapeToString({ka}), shapeToString({kb}), hint));
  }
  return {{m, n}, DType::F32, {}};
}

// [b, M, K] @ [b, K, N] -> [b, M, N], per batch entry as matmulShape; a 2-D operand is shared by every entry.
ShapeResult batchMatmulShape(const Graph& g, const std::vector<NodeId>& in, const Attrs& attrs) {
  const Shape& a = g.node(in[0]).shape;
  const Shape& b = g.node(in[1]).shape;
  // The leading (batch) dimensions: equal on both operands, or one operand a plain matrix shared by every entry.
  Shape lead_a(a.begin(), a.end() - std::min<size_t>(a.size(), 2)), lead_b(b.begin(), b.end() - std::min<size_t>(b.size(), 2));
  bool ranks_ok = a.size() >= 2 && b.size() >= 2 && a.size() + b.size() >= 5;
  if (!ranks_ok || (!lead_a.empty() && !lead_b.empty() && lead_a != lead_b))
    return fail(fmt::format("batched `@` needs [.., M, K] and [.., K, N] with the same leading dimensions (or one of "
                            "them 2-D), got {} and {}",
                            shapeToString(a), shapeToString(b)));
  ShapeResult result = lastTwoDimsMatmulShape(a, b, attrs);  // per entry
  if (!result.error.empty()) return result;
  const Shape& lead = lead_a.empty() ? lead_b : lead_a;
  result.shape.insert(result.shape.begin(), lead.begin(), lead.end());
  return result;
}

// The shape left after summing `from` down to `to` must be reachable by broadcasting `to`.
ShapeResult sumToShape(const Graph& g, const std::vector<NodeId>& in, const Attrs& attrs) {
  bool ok = false;
  Shape b = broadcastShapes(attrs.shape, g.node(in[0]).shape, ok);
  if (!ok || b != g.node(in[0]).shape)
    return fail(fmt::format("cannot sum {} to {}", shapeToString(g.node(in[0]).shape), shapeToString(attrs.shape)));
  return {attrs.shape, DType::F32, {}};
}

// logits [B, .., C] and labels i32 [B, ..]: a class per position, the labels' shape plus the classes axis.
ShapeResult crossEntropyShape(const Graph& g, const std::vector<NodeId>& in) {
  const Node& logits = g.node(in[0]);
  const Node& labels = g.node(in[1]);
  if (logits.shape.size() < 2 || logits.dtype != DType::F32)
    return fail(fmt::format("`cross_entropy` needs f32 logits [batch, classes] (or [batch, .., classes]), got {} {}",
                            dtypeName(logits.dtype), shapeToString(logits.shape)));
  if (labels.dtype != DType::I32 || labels.shape.empty())
    return fail(fmt::format("`cross_entropy` needs integer labels [batch] (or [batch, ..]), got {} {}",
                            dtypeName(labels.dtype), shapeToString(labels.shape)));
  if (logits.shape.size() == 2 && labels.shape.size() == 1 && !(labels.shape[0] == logits.shape[0]))
    return fail(fmt::format("`cross_entropy`: logits {} and labels {} have different batch sizes",
                            shapeToString(logits.shape), shapeToString(labels.shape)));
  if (Shape(logits.shape.begin(), logits.shape.end() - 1) != labels.shape)
    return fail(fmt::format("`cross_entropy`: logits {} must be the labels' shape {} plus a classes axis",
                            shapeToString(logits.shape), shapeToString(labels.shape)));
  return {{}, DType::F32, {}};
}

// table f32 [N, D] (fixed), ids i32 of any rank -> [ids.., D].
ShapeResult gatherShape(const Graph& g, const std::vector<NodeId>& in) {
  const Node& table = g.node(in[0]);
  const Node& ids = g.node(in[1]);
  if (table.dtype != DType::F32 || table.shape.size() != 2 || isBatched(table.shape))
    return fail(fmt::format("`gather` reads rows of a fixed f32 table [rows, columns], got {} {}",
                            dtypeName(table.dtype), shapeToString(table.shape)));
  if (ids.dtype != DType::I32)
    return fail(fmt::format("`embedding` looks up integer ids (i32), got {} {}", dtypeName(ids.dtype),
                            shapeToString(ids.shape)));
  if (ids.shape.size() > kMaxRank - 1)  // the result adds an axis
    return fail(fmt::format("`embedding` looks up ids of rank at most {}, got {}", kMaxRank - 1, shapeToString(ids.shape)));
  Shape out = ids.shape;
  out.push_back(table.shape[1]);
  return {out, DType::F32, {}};
}

// ids i32 [..], dout [ids.., D] -> the table's shape (attr shape [N, D]).
ShapeResult gatherGradShape(const Graph& g, const std::vector<NodeId>& in, const Attrs& attrs) {
  const Shape& ids = g.node(in[0]).shape;
  Shape expected = ids;
  if (attrs.shape.size() == 2) expected.push_back(attrs.shape[1]);
  if (g.node(in[0]).dtype != DType::I32 || attrs.shape.size() != 2 || g.node(in[1]).shape != expected)
    return fail(fmt::format("`gather_grad` of ids {} and dout {} into {}", shapeToString(ids),
                            shapeToString(g.node(in[1]).shape), shapeToString(attrs.shape)));
  return {attrs.shape, DType::F32, {}};
}

}  // namespace

ShapeResult inferShape(const Graph& g, Op op, const std::vector<NodeId>& in, const Attrs& attrs) {
  if (static_cast<int>(in.size()) != opInfo(op).arity)
    return fail(fmt::format("`{}` takes {} operands, got {}", opInfo(op).name, opInfo(op).arity, in.size()));
  switch (opInfo(op).rules) {
    case OpRules::Math: return elementwiseShape(g, op, in);
    case OpRules::Reduce: return reduceFamilyShape(g, op, in, attrs);
    case OpRules::Conv: return convShape(g, op, in, attrs);
    case OpRules::Core: break;
  }
  switch (op) {
    case Op::Input:
    case Op::Param:
    case Op::State:
    case Op::Scalar:
      throw std::logic_error("leaf nodes are created with their shape, not inferred");
    case Op::Fill: return {attrs.shape, DType::F32, {}};
    case Op::ToFloat:
      if (g.node(in[0]).dtype != DType::I32) return fail("`float` converts integer tensors (labels); this is already f32");
      return {g.node(in[0]).shape, DType::F32, {}};
    case Op::DropoutMask:
    case Op::RandNormal:
      for (NodeId scalar : in)
        if (g.node(scalar).dtype != DType::I32 || !g.node(scalar).shape.empty())
          return fail(fmt::format("`{}` takes an integer seed and an integer first row, both scalars", opInfo(op).name));
      if (op == Op::DropoutMask && !(attrs.alpha >= 0 && attrs.alpha < 1))
        return fail("the dropout probability must be in [0, 1)");
      return {attrs.shape, DType::F32, {}};
    case Op::CausalMask:
      if (attrs.shape.size() != 2 || !(attrs.shape[0] == attrs.shape[1]) || attrs.shape[0].isSymbolic())
        return fail(fmt::format("`causal_mask` is a fixed square matrix [T, T], not {}", shapeToString(attrs.shape)));
      return {attrs.shape, DType::F32, {}};
    case Op::Add:
    case Op::Sub:
    case Op::Mul:
    case Op::Div:
    case Op::Neg:
    case Op::Relu:
    case Op::Step: return elementwiseShape(g, op, in);
    case Op::MatMul: return matmulShape(g, in, attrs);
    case Op::BatchMatMul: return batchMatmulShape(g, in, attrs);
    case Op::SumTo: return sumToShape(g, in, attrs);
    case Op::CrossEntropy: return crossEntropyShape(g, in);
    case Op::CrossEntropyGrad: return {g.node(in[0]).shape, DType::F32, {}};
    case Op::Gather: return gatherShape(g, in);
    case Op::GatherGrad: return gatherGradShape(g, in, attrs);
    default: break;  // ops of the other rule modules returned above
  }
  throw std::logic_error(std::string("internal error: no core shape rule for op ") + opInfo(op).name);
}

// Inputs have smaller ids than their users, so one pass from the highest id down suffices.
std::vector<bool> ancestors(const Graph& graph, const std::vector<NodeId>& roots, NodeId stop) {
  std::vector<bool> needed(graph.nodes.size(), false);
  for (NodeId root : roots)
    if (root != kNoNode) needed[root] = true;
  for (NodeId id = static_cast<NodeId>(graph.nodes.size()) - 1; id >= 0; --id)
    if (needed[id] && id != stop)
      for (NodeId in : graph.node(id).inputs) needed[in] = true;
  return needed;
}

bool isBatched(const Shape& shape) {
  return std::any_of(shape.begin(), shape.end(), [](const Dim& d) { return d.isSymbolic(); });
}

int64_t elementCount(const Shape& shape, int64_t batch) {
  int64_t count = 1;
  for (const Dim& dim : shape) count *= dim.isSymbolic() ? batch : dim.extent;
  return count;
}

double flops(const Graph& g, NodeId id, int64_t batch) {
  const Node& node = g.node(id);
  auto elements = [&](NodeId of) { return static_cast<double>(elementCount(g.node(of).shape, batch)); };
  switch (opInfo(node.op).rules) {  // the other modules count beside their rules
    case OpRules::Math: return elementwiseFlops(g, id, batch);
    case OpRules::Reduce: return reduceFamilyFlops(g, id, batch);
    case OpRules::Conv: return convFlops(g, id, batch);
    case OpRules::Core: break;
  }
  switch (node.op) {
    case Op::Input:
    case Op::Param:
    case Op::State:
    case Op::Scalar:
    case Op::Fill: return 0;
    // One operation per output element (a broadcast operand is read, not copied).
    case Op::Add:
    case Op::Sub:
    case Op::Mul:
    case Op::Div:
    case Op::Neg:
    case Op::Relu:
    case Op::Step: return elements(id);
    // Hashing the element index is integer work; the scale is the one float operation per element.
    case Op::ToFloat:
    case Op::DropoutMask: return elements(id);
    // Box-Muller per element: a log, a square root, a cosine, two multiplies and two int-to-float scalings (7).
    case Op::RandNormal: return 7 * elements(id);
    // A constant: a compare and a select per element, counted as 0 like a fill.
    case Op::CausalMask: return 0;
    // [M,K] @ [K,N]: M*N dot products of length K, a multiply and an add each: 2*M*N*K.
    case Op::MatMul:
    case Op::BatchMatMul: {  // per batch entry; a flattened-rows contraction runs over every row of A
      const Shape& a = g.node(node.inputs[0]).shape;
      size_t rows = a.size() - 2;
      Shape contracted = {node.attrs.transpose_a ? a[rows] : a[rows + 1]};
      if (node.op == Op::MatMul && node.attrs.transpose_a) contracted.assign(a.begin(), a.end() - 1);
      return 2 * elements(id) * static_cast<double>(elementCount(contracted, batch));
    }
    // One add per input element.
    case Op::SumTo: return elements(node.inputs[0]);
    // Per logit: max, subtract, exp, add into the row sum (4); per row (a position: [B] or [B, T]): log, add the max,
    // subtract the label's logit, add into the sum (4); then one divide for the mean. exp and log count 1 each.
    case Op::CrossEntropy: {
      const Shape& logits = g.node(node.inputs[0]).shape;
      double rows = static_cast<double>(elementCount(Shape(logits.begin(), logits.end() - 1), batch));
      return 4 * elements(node.inputs[0]) + 4 * rows + 1;
    }
    // Copying rows is data movement, like the layout ops: 0.
    case Op::Gather: return 0;
    // One add per element of dout.
    case Op::GatherGrad: return elements(node.inputs[1]);
    // Per logit: the row max and row sum again (4), then subtract, exp, divide by the sum (softmax), subtract the
    // one-hot, multiply by dloss, divide by the batch size (6).
    case Op::CrossEntropyGrad: return 10 * elements(id);
    default: break;  // ops of the other rule modules returned above
  }
  throw std::logic_error(std::string("internal error: no core FLOP count for op ") + opInfo(node.op).name);
}

NodeId Graph::add(Op op, std::vector<NodeId> in, Attrs attrs, std::string name, dsl::Span span) {
  ShapeResult result = inferShape(*this, op, in, attrs);
  if (!result.error.empty()) throw std::logic_error("internal error: " + result.error);
  Node node{op, std::move(in), std::move(attrs), std::move(result.shape), result.dtype, std::move(name), span};
  nodes.push_back(std::move(node));
  return static_cast<NodeId>(nodes.size() - 1);
}

NodeId Graph::addLeaf(Node node) {
  if (node.op != Op::Input && node.op != Op::Param) throw std::logic_error("internal error: addLeaf of a non-leaf");
  bool param = node.op == Op::Param;
  node.attrs.index = static_cast<int64_t>(param ? params.size() : inputs.size());
  std::string name = node.name;
  nodes.push_back(std::move(node));
  auto id = static_cast<NodeId>(nodes.size() - 1);
  if (param) params.push_back({name, id, {}});
  else inputs.push_back({name, id});
  return id;
}

NodeId Graph::fill(double value, Shape shape, dsl::Span span) {
  Attrs attrs;
  attrs.value = value;
  attrs.shape = std::move(shape);
  return add(Op::Fill, {}, std::move(attrs), {}, span);
}

std::vector<NodeId> vjp(Graph& g, NodeId id, NodeId grad, const std::vector<bool>& wanted) {
  const Node node = g.node(id);  // a copy: adding nodes may reallocate g.nodes
  dsl::Span span = node.span;
  auto add = [&](Op op, std::vector<NodeId> in, Attrs attrs = {}) { return g.add(op, std::move(in), attrs, {}, span); };
  // Builds input i's adjoint only when autodiff wants it.
  auto want = [&](size_t i, auto build) { return wanted[i] ? build() : kNoNode; };
  NodeId a = node.inputs.empty() ? kNoNode : node.inputs[0];
  NodeId b = node.inputs.size() > 1 ? node.inputs[1] : kNoNode;
  switch (opInfo(node.op).rules) {  // the other modules keep their calculus beside their rules
    case OpRules::Math: return elementwiseVjp(g, id, grad, wanted);
    case OpRules::Reduce: return reduceFamilyVjp(g, id, grad, wanted);
    case OpRules::Conv: return convVjp(g, id, grad, wanted);
    case OpRules::Core: break;
  }
  switch (node.op) {
    case Op::Input:
    case Op::Param:
    case Op::State:
    case Op::Scalar:
    case Op::Fill: return {};
    // d(a+b) = da + db
    case Op::Add: return {grad, grad};
    // d(a-b) = da - db
    case Op::Sub: return {grad, want(1, [&] { return add(Op::Neg, {grad}); })};
    // d(a*b) = b da + a db
    case Op::Mul:
      return {want(0, [&] { return add(Op::Mul, {grad, b}); }), want(1, [&] { return add(Op::Mul, {grad, a}); })};
    // d(a/b) = da / b - a db / b^2
    case Op::Div: {
      NodeId ga = add(Op::Div, {grad, b});
      return {ga, want(1, [&] { return add(Op::Neg, {add(Op::Div, {add(Op::Mul, {ga, a}), b})}); })};
    }
    // d(-a) = -da
    case Op::Neg: return {add(Op::Neg, {grad})};
    // d relu(a) = step(a) da
    case Op::Relu: return {add(Op::Mul, {grad, add(Op::Step, {a})})};
    // step is piecewise constant: zero gradient
    case Op::Step: return {g.fill(0, g.node(a).shape, span)};
    // integers have no gradient (the dropout mask and the normal samples depend only on the integer seed and row)
    case Op::ToFloat:
    case Op::DropoutMask:
    case Op::RandNormal: return {kNoNode, kNoNode};
    // a constant: no inputs, nothing to differentiate
    case Op::CausalMask: return {};
    // C = op(A) op(B): dA = G op(B)^T (stored transposed if A was), dB = op(A)^T G (likewise); batched, per entry
    // (a shared 2-D operand's adjoint comes out batched and autodiff sums it over the batch). A matmul over
    // flattened rows stays one: the rows form's dB = A^T G is the contraction form, whose adjoints are rows forms.
    case Op::MatMul:
    case Op::BatchMatMul: {
      Attrs ga, gb;
      NodeId da = kNoNode, db = kNoNode;
      if (!wanted[0]) {
      } else if (!node.attrs.transpose_a) {  // A [M,K]: dA = G [M,N] @ op(B)^T
        ga.transpose_b = !node.attrs.transpose_b;
        da = add(node.op, {grad, b}, ga);
      } else {  // A stored [K,M]: dA = op(B) @ G^T
        ga.transpose_a = node.attrs.transpose_b;
        ga.transpose_b = true;
        da = add(node.op, {b, grad}, ga);
      }
      if (!wanted[1]) {
      } else if (!node.attrs.transpose_b) {  // B [K,N]: dB = op(A)^T @ G
        gb.transpose_a = !node.attrs.transpose_a;
        db = add(node.op, {a, grad}, gb);
      } else {  // B stored [N,K]: dB = G^T @ op(A)
        gb.transpose_a = true;
        gb.transpose_b = node.attrs.transpose_a;
        db = add(node.op, {grad, a}, gb);
      }
      return {da, db};
    }
    // sum_to is a sum over broadcast dimensions; its adjoint broadcasts back: da = G broadcast to a's shape
    case Op::SumTo: return {add(Op::Add, {grad, g.fill(0, g.node(a).shape, span)})};
    // d mean_p(-log softmax(z_p)[y_p]) / dz = (softmax(z) - onehot(y)) / P over the P positions (rows [B] or
    // [B, T]); labels have no gradient
    case Op::CrossEntropy: return {add(Op::CrossEntropyGrad, {a, b, grad}), kNoNode};
    case Op::CrossEntropyGrad:
      throw std::logic_error("internal error: cross_entropy_grad has no second derivative yet");
    // out[p, :] = table[ids[p], :]: dtable[n, :] = sum of G[p, :] over the positions p with ids[p] == n (clamped);
    // ids have no gradient
    case Op::Gather: {
      Attrs table;
      table.shape = g.node(a).shape;
      return {want(0, [&] { return add(Op::GatherGrad, {b, grad}, table); }), kNoNode};
    }
    // gather_grad is linear in dout: d dout[p, :] = G[ids[p], :], a gather of the adjoint; ids have no gradient
    case Op::GatherGrad: return {kNoNode, want(1, [&] { return add(Op::Gather, {grad, a}); })};
    default: break;  // ops of the other rule modules returned above
  }
  throw std::logic_error(std::string("internal error: no core VJP for op ") + opInfo(node.op).name);
}

}  // namespace nnc
