// Lowering of graph nodes to Halide Funcs: THE ALGORITHM only; THE SCHEDULE is in schedule.cpp.
#include "compiler/lower/lower.h"
#include "compiler/lower/lower_conv.h"

#include <cmath>
#include <stdexcept>

namespace nnc {

using Halide::Expr;
using Halide::Func;
using Halide::RDom;

const std::vector<Halide::Var>& dimVars() {
  static const std::vector<Halide::Var> kVars = {Halide::Var("d0"), Halide::Var("d1"), Halide::Var("d2"),
                                                 Halide::Var("d3"), Halide::Var("d4"), Halide::Var("d5")};
  return kVars;
}

bool narrowProduct(const Node& node) {
  if (node.op != Op::MatMul || node.shape.empty() || node.shape.back().isSymbolic()) return false;
  int64_t columns = node.shape.back().extent;
  return columns < 32 && columns % 8 != 0;
}

std::vector<int> halideExtents(const Shape& shape, int batch) {
  std::vector<int> extents;
  for (auto dim = shape.rbegin(); dim != shape.rend(); ++dim)
    extents.push_back(dim->isSymbolic() ? batch : static_cast<int>(dim->extent));
  return extents;
}

namespace {

// The first `rank` dimension variables as Halide argument list.
std::vector<Halide::Var> varsFor(size_t rank) {
  if (rank > kMaxRank || kMaxRank != dimVars().size()) throw std::logic_error("internal error: tensor rank above kMaxRank");
  return {dimVars().begin(), dimVars().begin() + static_cast<long>(rank)};
}

std::vector<Expr> asExprs(const std::vector<Halide::Var>& vars) { return {vars.begin(), vars.end()}; }

class Lowerer : public LoweringContext {
 public:
  Lowerer(const Graph& graph, LoweredEntry& out) : g_(graph), out_(out) {}

  // Arguments are read from the pipeline's arguments, whatever computes them elsewhere (a kernel of a plan reads
  // other kernels' results): the nodes that feed only them are not lowered.
  void run(const EntryPoint& entry) {
    for (size_t i = 0; i < entry.arguments.size(); ++i)
      declareArgument(entry.arguments[i], entry.argument_names.empty() ? "" : entry.argument_names[i]);
    std::vector<bool> needed(g_.nodes.size(), false), computed(g_.nodes.size(), false);
    for (NodeId id : entry.outputs) needed[id] = true;
    for (NodeId id = static_cast<NodeId>(g_.nodes.size()) - 1; id >= 0; --id) {
      if (!needed[id] || isArgument(out_, id)) continue;
      computed[id] = true;
      for (NodeId in : g_.node(id).inputs) needed[in] = true;
    }
    out_.bias_in_grad_weight = biasGradientsInWeightGradients(g_, computed, vectorUnitFor(out_.target, out_.float_type));
    for (NodeId id = 0; id < static_cast<NodeId>(g_.nodes.size()); ++id) {
      if (!needed[id] || out_.nodes.count(id)) continue;
      auto bias = out_.bias_in_grad_weight.find(id);
      if (bias != out_.bias_in_grad_weight.end() && !out_.nodes.count(bias->second))  // lowered ahead
        out_.nodes[bias->second] = lowerNode(bias->second);
      out_.nodes[id] = lowerNode(id);
    }
    for (size_t i = 0; i < entry.outputs.size(); ++i) {
      NodeId id = entry.outputs[i];
      std::vector<Halide::Var> vars = varsFor(g_.node(id).shape.size());
      bool direct = entry.plan_kernel && computed[id] && !biasReadsItsTiles(id) && storesOnlyItsShape(id) &&
                    std::find(entry.outputs.begin(), entry.outputs.begin() + i, id) == entry.outputs.begin() + i;
      Func result = direct ? out_.nodes.at(id).func : Func(cIdentifier(entry.output_names[i]));
      if (!direct) result(vars) = out_.nodes.at(id).func(vars);
      constrainOutput(result, g_.node(id).shape);
      out_.outputs.push_back(result);
      out_.output_nodes.push_back(id);
    }
  }

 private:
  // Whether every schedule of the node writes only its own extent, so that it can be a pipeline's result: not a
  // narrow product or window sums (their tiles round up past the end, over Halide's own larger allocation, which a
  // caller's buffer is not), nor a reduction or a pool with an update (GuardWithIf on an output's update stored
  // wrongly in Halide 14; compiler/schedule/cpu.cpp). A convolution's epilogue is stored by its ShiftInwards tiles.
  bool storesOnlyItsShape(NodeId id) const {
    const Node& node = g_.node(id);
    switch (opInfo(node.op).family) {
      case OpFamily::Elementwise: return true;
      case OpFamily::Layout: return true;
      case OpFamily::MatMul: return node.op == Op::MatMul && !narrowProduct(node);
      case OpFamily::Conv:  // a pure pool (no update) is vectorized with ShiftInwards
        return (node.op == Op::MaxPool2d || node.op == Op::AvgPool2d || node.op == Op::MaxPool2dGrad ||
                node.op == Op::AvgPool2dGrad) &&
               !out_.nodes.at(id).func.has_update_definition();
      default: return false;
    }
  }

  // A weight gradient whose tiles' extra column holds its bias gradient stores more than its shape.
  bool biasReadsItsTiles(NodeId id) const {
    return std::any_of(out_.bias_in_grad_weight.begin(), out_.bias_in_grad_weight.end(),
                       [&](const auto& pair) { return pair.second == id; });
  }

  // LoweringContext.
  const Graph& graph() const override { return g_; }
  Func func(NodeId id) const override { return out_.nodes.at(id).func; }
  Halide::Type floatType() const override { return out_.float_type; }

  Halide::Type typeOf(const Node& node) const { return node.dtype == DType::I32 ? Halide::Int(32) : out_.float_type; }

  // Creates the pipeline argument of a node (named `name`, else after the node) and records symbolic extents it
  // defines (the batch size).
  void declareArgument(NodeId id, const std::string& name) {
    const Node& node = g_.node(id);
    if (node.op == Op::Scalar) {
      Halide::Param<> scalar(typeOf(node), name.empty() ? node.name : name);
      out_.scalars.emplace(id, scalar);
      out_.arguments.push_back(scalar);
      return;
    }
    Halide::ImageParam image(typeOf(node), static_cast<int>(node.shape.size()), cIdentifier(name.empty() ? node.name : name));
    constrainDense(image, node.shape);
    size_t rank = node.shape.size();
    for (size_t i = 0; i < rank; ++i) {
      const Dim& dim = node.shape[rank - 1 - i];
      if (dim.isSymbolic() && !out_.symbols.count(dim.symbol))
        out_.symbols[dim.symbol] = image.dim(static_cast<int>(i)).extent();
    }
    out_.images.emplace(id, image);
    out_.arguments.push_back(image);
  }

  void constrainOutput(Func wrapper, const Shape& shape) const { constrainDense(wrapper.output_buffer(), shape); }

  // Argument and result buffers start at 0, have the node's fixed extents (a wrongly sized buffer is an error)
  // and are dense in row-major order, so strides are constants the kernels' address arithmetic folds (LeNet-5's
  // conv1 as a plan kernel: 0.056 -> X ms a step).
  static void constrainDense(Halide::OutputImageParam buffer, const Shape& shape) {
    Expr stride = 1;
    for (size_t i = 0; i < shape.size(); ++i) {
      const Dim& dim = shape[shape.size() - 1 - i];
      Halide::Internal::Dimension halide_dim = buffer.dim(static_cast<int>(i));
      halide_dim.set_min(0).set_stride(stride);
      if (!dim.isSymbolic()) halide_dim.set_extent(static_cast<int>(dim.extent));
      stride = dim.isSymbolic() ? stride * halide_dim.extent() : stride * static_cast<int>(dim.extent);
    }
  }

  // Halide argument and Func names must be C identifiers: fc1.weight -> fc1_weight.
  static std::string cIdentifier(std::string name) {
    for (char& c : name)
      if (!isalnum(static_cast<unsigned char>(c))) c = '_';
    return name;
  }

  Expr extent(const Dim& dim) const override {
    if (!dim.isSymbolic()) return static_cast<int>(dim.extent);
    auto it = out_.symbols.find(dim.symbol);
    if (it == out_.symbols.end()) throw std::logic_error("internal error: no argument defines dimension " + dim.symbol);
    return it->second;
  }

  // Reads node `id` at the coordinates of a result of shape `out_shape`, broadcasting size-1 and missing dims.
  Expr read(NodeId id, const std::vector<Expr>& coords, const Shape& out_shape) const override {
    const Shape& shape = g_.node(id).shape;
    std::vector<Expr> at;
    for (size_t i = 0; i < shape.size(); ++i) {
      bool broadcast = shape[shape.size() - 1 - i] == Dim{} && !(out_shape[out_shape.size() - 1 - i] == Dim{});
      at.push_back(broadcast ? Expr(0) : coords[i]);
    }
    return out_.nodes.at(id).func(at);
  }

  Expr constant(double value) const override { return Halide::cast(out_.float_type, Expr(value)); }

  LoweredNode lowerNode(NodeId id) {
    const Node& node = g_.node(id);
    std::vector<Halide::Var> vars = varsFor(node.shape.size());
    std::vector<Expr> coords = asExprs(vars);
    LoweredNode lowered;
    Func& f = lowered.func;
    f = Func(funcName(id, ""));
    current_ = id;
    if (out_.images.count(id)) {  // an argument: a leaf, or a node another kernel computes
      f(vars) = out_.images.at(id)(vars);
      return lowered;
    }
    auto operand = [&](int i) { return read(node.inputs[i], coords, node.shape); };
    switch (opInfo(node.op).rules) {
      case OpRules::Math: {
        std::vector<Expr> operands;
        for (size_t i = 0; i < node.inputs.size(); ++i) operands.push_back(operand(static_cast<int>(i)));
        f(vars) = lowerElementwise(*this, node, operands);
        return lowered;
      }
      case OpRules::Reduce: lowerReduceFamily(*this, node, lowered); return lowered;
      case OpRules::Conv: lowerConvFamily(*this, node, lowered, sumsBias(id)); return lowered;
      case OpRules::Core: break;
    }
    switch (node.op) {
      case Op::Scalar: f() = out_.scalars.at(id); break;
      case Op::Fill: f(vars) = constant(node.attrs.value); break;
      case Op::Add: f(vars) = operand(0) + operand(1); break;
      case Op::Sub: f(vars) = operand(0) - operand(1); break;
      case Op::Mul: f(vars) = operand(0) * operand(1); break;
      case Op::Div: f(vars) = operand(0) / operand(1); break;
      case Op::Neg: f(vars) = -operand(0); break;
      case Op::Relu: f(vars) = Halide::max(operand(0), constant(0)); break;
      case Op::Step: f(vars) = Halide::select(operand(0) > constant(0), constant(1), constant(0)); break;
      case Op::ToFloat: f(vars) = Halide::cast(out_.float_type, operand(0)); break;
      case Op::DropoutMask: f(vars) = dropoutMask(node, vars); break;
      case Op::RandNormal: f(vars) = randNormal(node, vars); break;
      case Op::CausalMask: f(vars) = causalMask(vars); break;
      case Op::MatMul: lowerMatMul(node, lowered); break;
      case Op::BatchMatMul: lowerBatchMatMul(node, lowered); break;
      case Op::SumTo:
        if (auto bias = out_.bias_in_grad_weight.find(id); bias != out_.bias_in_grad_weight.end())
          lowerBiasGradient(*this, node, bias->second, lowered);
        else
          lowerSumTo(node, lowered);
        break;
      case Op::CrossEntropy: lowerCrossEntropy(node, lowered, false); break;
      case Op::CrossEntropyGrad: lowerCrossEntropy(node, lowered, true); break;
      case Op::Gather: lowerGather(node, lowered); break;
      case Op::GatherGrad: lowerGatherGrad(node, lowered); break;
      default: throw std::logic_error(std::string("internal error: no core lowering for op ") + opInfo(node.op).name);
    }
    return lowered;
  }

  // The dropout mask is counter-based: element i (row-major) of site `salt` is kept when the top 24 bits of
  // hash(i) = mix(i ^ mix(seed + salt * 0x9E3779B9)) are at least p * 2^24, so a mask depends only on (seed, site,
  // i), never on the schedule or the thread count. mix is the "lowbias32" integer finalizer (C. Wellons). For a
  // batched mask, i counts from the first row of the step's global batch (the dropout_row scalar), so the ranks of a
  // data-parallel run draw the masks one process would.
  Expr dropoutMask(const Node& node, const std::vector<Halide::Var>& vars) const {
    auto threshold = static_cast<uint32_t>(std::ceil(node.attrs.alpha * 16777216.0));
    Expr keep = (counterHash(node, elementIndex(node, vars)) >> 8) >= u32(threshold);
    return Halide::select(keep, constant(1 / (1 - node.attrs.alpha)), constant(0));
  }

  // randn: standard normal samples by Box-Muller, z = sqrt(-2 ln u1) cos(2 pi u2), from two uniforms made of the
  // top 24 bits of the counter-based hashes of 2i and 2i + 1 (i and the site's salt as for the dropout mask):
  // u1 = (h + 1/2) / 2^24 in (0, 1), so the logarithm is finite (|z| <= 5.9), and u2 = h / 2^24 in [0, 1).
  Expr randNormal(const Node& node, const std::vector<Halide::Var>& vars) const {
    Expr twice = elementIndex(node, vars) * u32(2);
    auto uniform = [&](Expr hash, double offset) {
      return (Halide::cast(out_.float_type, hash >> 8) + constant(offset)) * constant(1.0 / 16777216.0);
    };
    Expr u1 = uniform(counterHash(node, twice), 0.5), u2 = uniform(counterHash(node, twice + u32(1)), 0);
    return Halide::sqrt(constant(-2) * Halide::log(u1)) * Halide::cos(constant(2 * M_PI) * u2);
  }

  static Expr u32(Expr e) { return Halide::cast(Halide::UInt(32), std::move(e)); }
  static Expr u32(uint32_t value) { return Halide::Internal::UIntImm::make(Halide::UInt(32), value); }

  // The "lowbias32" integer finalizer (C. Wellons).
  static Expr mix(Expr x) {
    x = x ^ (x >> 16);
    x = x * u32(0x7feb352du);
    x = x ^ (x >> 15);
    x = x * u32(0x846ca68bu);
    return x ^ (x >> 16);
  }

  // The row-major index of the element at `vars` of a node over (seed, first row), counted from the first row of
  // the step's global batch when the node is batched.
  Expr elementIndex(const Node& node, const std::vector<Halide::Var>& vars) const {
    Expr index = u32(0u), stride = u32(1u);
    for (size_t i = 0; i < vars.size(); ++i) {
      index = index + u32(Expr(vars[i])) * stride;
      stride = stride * u32(extent(node.shape[node.shape.size() - 1 - i]));
    }
    if (!node.shape.empty() && node.shape[0].isSymbolic())  // stride: one row's elements
      index = index + u32(out_.nodes.at(node.inputs[1]).func()) * (stride / u32(extent(node.shape[0])));
    return index;
  }

  // mix(counter ^ mix(seed + salt * 0x9E3779B9)): the seed is the node's first input, the salt its attr index.
  Expr counterHash(const Node& node, Expr counter) const {
    Expr seed = u32(out_.nodes.at(node.inputs[0]).func()) + u32(static_cast<uint32_t>(node.attrs.index) * 0x9E3779B9u);
    return mix(counter ^ mix(seed));
  }

  // causal_mask: (column, row) -> 0 where column <= row, else -1e9. PyTorch's generate_square_subsequent_mask puts
  // -inf there, but Halide compiles float arithmetic with LLVM's fast-math flags, which assume finite values: a
  // softmax of scores + (-inf) came out unmasked (measured, float32 and float64). exp(-1e9 - max) is exactly 0 in
  // both types, so masked softmax rows and their gradients are PyTorch's.
  Expr causalMask(const std::vector<Halide::Var>& vars) const {
    return Halide::select(vars[0] <= vars[1], constant(0), constant(kCausalMasked));
  }

  bool sumsBias(NodeId grad_weight) const {
    for (const auto& [sum, by] : out_.bias_in_grad_weight)
      if (by == grad_weight) return true;
    return false;
  }

  // Halide Func names must be unique in a pipeline: the op name, the node id and the helper's role.
  std::string funcName(NodeId id, const std::string& role) const {
    return std::string(opInfo(g_.node(id).op).name) + "_" + std::to_string(id) + (role.empty() ? "" : "_" + role);
  }
  Func helper(const std::string& role) const override { return Func(funcName(current_, role)); }

  // C(n, m) = sum_k A(k, m) * B(n, k) in Halide order. A transposed operand is read with swapped coordinates; a
  // transposed B is first packed into (n, k) order so the inner loop over n reads contiguous memory. Over flattened
  // rows (op_rules.cpp): the rows form C(n, m, e..) reads A at the entry e.. and the shared B at (n, k); the
  // contraction form's RDom runs over A's stored rows and then its leading coordinates,
  // C(n, m) = sum_{r, e..} A(m, r, e..) * B(n, r, e..), so no row index is divided or wrapped.
  void lowerMatMul(const Node& node, LoweredNode& lowered) {
    std::vector<Halide::Var> vars = varsFor(node.shape.size());
    Halide::Var n = vars[0], m = vars[1];
    const Shape& a = g_.node(node.inputs[0]).shape;
    Func fa = out_.nodes.at(node.inputs[0]).func;
    Func fb = out_.nodes.at(node.inputs[1]).func;
    size_t rank = a.size();
    Halide::Region ranges = {{0, extent(node.attrs.transpose_a ? a[rank - 2] : a[rank - 1])}};
    if (node.attrs.transpose_a)  // the contraction form (or a plain 2-D A^T): every leading dimension too
      for (size_t d = 2; d < rank; ++d) ranges.push_back({0, extent(a[rank - 1 - d])});
    RDom r(ranges, "k");
    Expr k = r.x;
    std::vector<Expr> rows_at(vars.begin() + 2, vars.end()), sums_at;  // the entry: rows form / contraction form
    for (int d = 1; d < r.dimensions(); ++d) sums_at.push_back(r[d]);
    auto at = [](Expr inner, Expr outer, const std::vector<Expr>& entry) {
      std::vector<Expr> coords = {std::move(inner), std::move(outer)};
      coords.insert(coords.end(), entry.begin(), entry.end());
      return coords;
    };
    Func b_nk = helper("packed_b");
    bool narrow = narrowProduct(node);
    Expr columns = extent(node.shape.back());
    Expr column = narrow ? Halide::clamp(n, 0, columns - 1) : Expr(n);
    std::vector<Halide::Var> b_vars = {n, m};  // B(n, k, e..) of the contraction form keeps its entry
    std::vector<Expr> b_entry;
    for (size_t d = 2; d < g_.node(node.inputs[1]).shape.size(); ++d) {
      b_vars.push_back(dimVars()[d]);
      b_entry.push_back(dimVars()[d]);
    }
    Expr b = node.attrs.transpose_b ? fb(at(m, column, b_entry)) : fb(at(column, m, b_entry));  // stored [N, K]: swap
    b_nk(b_vars) = narrow ? Halide::select(n < columns, b, constant(0)) : b;
    Expr a_km = node.attrs.transpose_a ? fa(at(m, k, sums_at)) : fa(at(k, m, rows_at));
    std::vector<Expr> b_at = {n, k};
    b_at.insert(b_at.end(), sums_at.begin(), sums_at.end());
    accumulateProduct(lowered, vars, a_km, b_nk, b_at, r);
  }

  // What both matmul forms end with: the output is an accumulator, acc(out..) = sum over `r` of a_km * b_nk(b_at),
  // b_nk its B read (or packed) in (n, k) order.
  void accumulateProduct(LoweredNode& lowered, const std::vector<Halide::Var>& vars, Expr a_km, Func b_nk,
                         const std::vector<Expr>& b_at, RDom r) {
    std::vector<Expr> out_at(vars.begin(), vars.end());
    Func acc = helper("acc");
    acc(out_at) = constant(0);
    acc(out_at) += a_km * b_nk(b_at);
    lowered.func(out_at) = acc(out_at);
    lowered.helpers = {acc, b_nk};
    lowered.reductions = {r};
  }

  // C(n, m, e..) = sum_k A(k, m, e..) * B(n, k, e..) in Halide order, e.. the batch entry's leading coordinates;
  // a 2-D operand ignores them and a transposed one is read with swapped coordinates. B is read through a helper
  // b_nk(n, k[, e..]) in (n, k) order, which the schedule packs when B is stored transposed (as lowerMatMul's).
  void lowerBatchMatMul(const Node& node, LoweredNode& lowered) {
    std::vector<Halide::Var> vars = varsFor(node.shape.size());
    Halide::Var n = vars[0], m = vars[1];
    std::vector<Expr> entry(vars.begin() + 2, vars.end());
    const Shape& a = g_.node(node.inputs[0]).shape;
    const Shape& b = g_.node(node.inputs[1]).shape;
    Func fa = out_.nodes.at(node.inputs[0]).func;
    Func fb = out_.nodes.at(node.inputs[1]).func;
    Dim k_dim = node.attrs.transpose_a ? a[a.size() - 2] : a[a.size() - 1];
    RDom k(0, extent(k_dim), "k");
    auto at = [&](const Shape& shape, Expr inner, Expr outer) {
      std::vector<Expr> coords = {inner, outer};
      if (shape.size() > 2) coords.insert(coords.end(), entry.begin(), entry.end());
      return coords;
    };
    Expr a_km = node.attrs.transpose_a ? fa(at(a, m, k)) : fa(at(a, k, m));
    std::vector<Halide::Var> b_vars = {n, m};  // b_nk(n, k[, e..]), k in the Var m
    if (b.size() > 2) b_vars.insert(b_vars.end(), vars.begin() + 2, vars.end());
    Func b_nk = helper("packed_b");
    b_nk(b_vars) = node.attrs.transpose_b ? fb(at(b, m, n)) : fb(at(b, n, m));
    accumulateProduct(lowered, vars, a_km, b_nk, at(b, n, k), k);
  }

  // Sums the source over every dimension that the target lacks or has as 1.
  void lowerSumTo(const Node& node, LoweredNode& lowered) {
    const Shape& from = g_.node(node.inputs[0]).shape;
    const Shape& to = node.shape;
    Halide::Region ranges;
    std::vector<size_t> reduced;  // Halide dims of the source that are summed
    for (size_t i = 0; i < from.size(); ++i) {
      bool kept = i < to.size() && !(to[to.size() - 1 - i] == Dim{} && !(from[from.size() - 1 - i] == Dim{}));
      if (kept) continue;
      reduced.push_back(i);
      ranges.emplace_back(0, extent(from[from.size() - 1 - i]));
    }
    std::vector<Halide::Var> vars = varsFor(to.size());
    if (reduced.empty()) {
      lowered.func(vars) = out_.nodes.at(node.inputs[0]).func(vars);
      return;
    }
    RDom r(ranges, "r");
    std::vector<Expr> at;
    for (size_t i = 0, j = 0; i < from.size(); ++i)
      at.push_back(j < reduced.size() && reduced[j] == i ? Expr(r[static_cast<int>(j++)]) : Expr(vars[i]));
    lowered.func(vars) = constant(0);
    lowered.func(vars) += out_.nodes.at(node.inputs[0]).func(at);
    lowered.reductions = {r};
  }

  // Softmax cross-entropy with integer labels, stable via the row maximum, at every position p: the rows b of
  // logits [B, C], or every (b, t) of logits [B, T, C] (a class per position; p is Halide dims 1..):
  //   lse(p) = max_c z(c, p) + log sum_c exp(z(c, p) - max)
  //   loss = mean_p (lse(p) - z(y(p), p));  dz(c, p) = (softmax(z)(c, p) - [c == y(p)]) * dloss / P
  // over the P positions (B, or B * T), the positions summed in row-major order. Labels are clamped to [0, C).
  void lowerCrossEntropy(const Node& node, LoweredNode& lowered, bool gradient) {
    const Shape& shape = g_.node(node.inputs[0]).shape;
    std::vector<Halide::Var> vars = varsFor(shape.size());
    Halide::Var c = vars[0];
    std::vector<Halide::Var> b(vars.begin() + 1, vars.end());  // the position
    Func z = out_.nodes.at(node.inputs[0]).func;
    Func y = out_.nodes.at(node.inputs[1]).func;
    Expr classes = extent(shape.back()), positions = extent(shape[0]);
    for (size_t i = 1; i + 1 < shape.size(); ++i) positions = positions * extent(shape[i]);
    auto logit = [&](Expr cls, const auto& position) {  // z at class `cls` of `position`
      std::vector<Expr> at = {std::move(cls)};
      at.insert(at.end(), position.begin(), position.end());
      return z(at);
    };
    RDom rc(0, classes, "rc");
    Func row_max = helper("row_max"), row_sum = helper("row_sum");
    row_max(b) = out_.float_type.min();
    row_max(b) = Halide::max(row_max(b), logit(rc, b));
    row_sum(b) = constant(0);
    row_sum(b) += Halide::exp(logit(rc, b) - row_max(b));
    Expr label = Halide::clamp(y(b), 0, classes - 1);
    lowered.helpers = {row_max, row_sum};
    if (gradient) {
      Func dloss = out_.nodes.at(node.inputs[2]).func;
      Expr softmax = Halide::exp(logit(c, b) - row_max(b)) / row_sum(b);
      Expr onehot = Halide::select(c == label, constant(1), constant(0));
      lowered.func(vars) = (softmax - onehot) * dloss() / Halide::cast(out_.float_type, positions);
      lowered.reductions = {rc};
      return;
    }
    Func row_loss = helper("row_loss");
    row_loss(b) = row_max(b) + Halide::log(row_sum(b)) - logit(label, b);
    Halide::Region position_ranges;
    for (size_t i = 1; i < vars.size(); ++i) position_ranges.emplace_back(0, extent(shape[shape.size() - 1 - i]));
    RDom rb = shape.size() == 2 ? RDom(0, positions, "rb") : RDom(position_ranges, "rb");
    std::vector<Expr> each_position;
    for (int i = 0; i < rb.dimensions(); ++i) each_position.push_back(rb[i]);
    lowered.func() = constant(0);
    lowered.func() += row_loss(each_position);
    lowered.helpers.push_back(row_loss);
    lowered.reductions = {rc, rb};
    Func total = lowered.func;
    lowered.func = helper("mean");
    lowered.func() = total() / Halide::cast(out_.float_type, positions);
    lowered.helpers.push_back(total);
  }

  // gather: out(d, p..) = table(d, clamp(ids(p..), 0, N - 1)), the row of each position's id; an id out of range
  // reads the first or last row (PyTorch raises an error instead; the trainer checks its data).
  void lowerGather(const Node& node, LoweredNode& lowered) {
    std::vector<Halide::Var> vars = varsFor(node.shape.size());
    std::vector<Halide::Var> position(vars.begin() + 1, vars.end());
    Func table = out_.nodes.at(node.inputs[0]).func, ids = out_.nodes.at(node.inputs[1]).func;
    Expr rows = extent(g_.node(node.inputs[0]).shape[0]);
    lowered.func(vars) = table(vars[0], Halide::clamp(ids(position), 0, rows - 1));
  }

  // gather_grad: dtable(d, n) = 0, then for every position p in row-major order (an RDom, never parallel: two
  // positions may share an id) dtable(d, clamp(ids(p), 0, N - 1)) += dout(d, p): a deterministic scatter-add.
  void lowerGatherGrad(const Node& node, LoweredNode& lowered) {
    Halide::Var d = dimVars()[0], n = dimVars()[1];
    const Shape& ids_shape = g_.node(node.inputs[0]).shape;
    Func ids = out_.nodes.at(node.inputs[0]).func, dout = out_.nodes.at(node.inputs[1]).func;
    Halide::Region ranges;
    for (size_t i = 0; i < ids_shape.size(); ++i) ranges.emplace_back(0, extent(ids_shape[ids_shape.size() - 1 - i]));
    std::vector<Expr> position, at = {d};
    Expr row = 0;
    if (ranges.empty()) {  // a single id
      row = ids();
    } else {
      RDom p(ranges, "p");
      for (int i = 0; i < p.dimensions(); ++i) position.push_back(p[i]);
      row = ids(position);
      lowered.reductions = {p};
    }
    at.insert(at.end(), position.begin(), position.end());
    lowered.func(d, n) = constant(0);
    lowered.func(d, Halide::clamp(row, 0, extent(node.shape[0]) - 1)) += dout(at);
  }

  const Graph& g_;
  LoweredEntry& out_;
  NodeId current_ = kNoNode;
};

}  // namespace

LoweredEntry lowerEntry(const Graph& graph, const EntryPoint& entry, Halide::Type float_type, const Target& target,
                        const ScheduleOptions& schedule) {
  LoweredEntry lowered;
  lowered.float_type = float_type;
  lowered.target = Halide::Target(target.halide);
  lowered.plan_kernel = entry.plan_kernel;
  Lowerer(graph, lowered).run(entry);
  scheduleEntryWith(graph, lowered, schedule);
  return lowered;
}

}  // namespace nnc
