// Lowering of convolution, pooling and `flatten` to Halide (THE ALGORITHM), and their CPU schedule.
//
// Layout: an NCHW tensor [B, C, H, W] is the Halide Func f(w, h, c, b). The formulas are those of
// compiler/graph/ops_conv.cpp. Every read that may fall outside the input goes through a constant_exterior wrapper
// (0 for sums, the lowest float for max), so no access is out of bounds; the wrapper is a helper that the
// schedule materializes, so the window loops read plain memory. Windowed results are a pure
// initialisation plus one update over an RDom of the window (and of channels for convolution).
#include "compiler/lower/lower_conv.h"

#include <algorithm>
#include <stdexcept>

namespace nnc {

namespace {

using Halide::Expr;
using Halide::Func;
using Halide::RDom;
using Halide::Var;

struct Window {
  int kh, kw, sh, sw, ph, pw, dh, dw;
};

Window windowOf(const Attrs& a, int kh, int kw) {
  return {kh,
          kw,
          static_cast<int>(a.stride[0]),
          static_cast<int>(a.stride[1]),
          static_cast<int>(a.padding[0]),
          static_cast<int>(a.padding[1]),
          static_cast<int>(a.dilation[0]),
          static_cast<int>(a.dilation[1])};
}

int fixed(const Dim& dim) { return static_cast<int>(dim.extent); }

// conv2d_grad_input at row stride 1 bounds its loop over kernel rows per pair of output rows
// (lowerConv2dGradInput), and its schedule tiles rows in pairs.
constexpr int kRowPair = 2;
bool boundedRows(const Node& node) {
  return node.op == Op::Conv2dGradInput && node.attrs.stride[0] == 1 && node.shape[2].extent >= kRowPair;
}

// How many of `node`'s last helpers its own schedule places (not at root): an operand's copy (`weights`, `dy`)
// and the sums `acc` of convolutions and their gradients.
size_t ownScheduledHelpers(const Node& node) {
  return isWindowSums(node) || node.op == Op::Conv2dGradWeight ? 2 : 0;
}

// f(w, h, c, b) of an NCHW tensor of spatial size (height, width), `value` outside it: a zero-bordered (or
// -inf-bordered) copy that the schedule materializes and adds to `helpers`. Windows without padding never read
// outside, so they read f itself, which the schedule computes at root when it is elementwise (scheduleEntry):
// LeNet-5 had five such copies in its step.
Func padded(Func f, int height, int width, Expr value, bool padding, std::vector<Func>& helpers) {
  if (!padding) return f;
  Func border = Halide::BoundaryConditions::constant_exterior(f, value, {{0, width}, {0, height}, {Expr(), Expr()},
                                                                         {Expr(), Expr()}});
  helpers.push_back(border);
  return border;
}

bool hasPadding(const Attrs& a) { return a.padding[0] > 0 || a.padding[1] > 0; }

// The output position `o` of a window whose tap `k` reads input position `x` (x = o S + k D - P), when it exists:
// valid is false when (x + P - k D) is not a multiple of S or the position lies outside [0, size).
struct Source {
  Expr index, valid;
};
Source windowSource(Expr x, Expr k, int stride, int padding, int dilation, int size) {
  Expr num = x + padding - k * dilation;
  Expr index = num / stride;  // Halide's integer division rounds down
  Expr valid = index >= 0 && index < size;
  if (stride > 1) valid = valid && num % stride == 0;
  return {Halide::clamp(index, 0, size - 1), valid};
}

// Input 1 of a convolution or its gradient (the weights; dy of the weight gradient) as a helper of its own, so
// that a schedule vectorizing over channels can store a copy with the channels innermost; otherwise it is inlined.
Func operandHelper(const LoweringContext& ctx, const Node& node, const std::string& role, LoweredNode& lowered) {
  Func copy = ctx.helper(role);
  std::vector<Var> vars(dimVars().begin(), dimVars().begin() + 4);
  copy(vars) = ctx.func(node.inputs[1])(vars);
  lowered.helpers.push_back(copy);
  return copy;
}

void lowerConv2d(const LoweringContext& ctx, const Node& node, LoweredNode& lowered) {
  Var j = dimVars()[0], i = dimVars()[1], o = dimVars()[2], b = dimVars()[3];
  const Shape& xs = ctx.graph().node(node.inputs[0]).shape;
  const Shape& ws = ctx.graph().node(node.inputs[1]).shape;
  Window k = windowOf(node.attrs, fixed(ws[2]), fixed(ws[3]));
  Func x = padded(ctx.func(node.inputs[0]), fixed(xs[2]), fixed(xs[3]), ctx.constant(0), hasPadding(node.attrs),
                  lowered.helpers);
  Func w = operandHelper(ctx, node, "weights", lowered);
  RDom r(Halide::Region{{0, k.kw}, {0, k.kh}, {0, fixed(xs[1])}}, "r");  // q, p, c
  Func acc = ctx.helper("acc");  // the sums, so the schedule can keep a tile of them in registers
  acc(j, i, o, b) = ctx.constant(0);
  acc(j, i, o, b) += x(j * k.sw + r.x * k.dw - k.pw, i * k.sh + r.y * k.dh - k.ph, r.z, b) * w(r.x, r.y, r.z, o);
  lowered.func(j, i, o, b) = acc(j, i, o, b);
  lowered.helpers.push_back(acc);
  lowered.reductions = {r};
}

// dx[b,c,h,w] = sum_{o,p,q} dy[b,o,i,j] w[o,c,p,q] where i S + p D - P = h and j S + q D - P = w.
void lowerConv2dGradInput(const LoweringContext& ctx, const Node& node, LoweredNode& lowered) {
  Var xw = dimVars()[0], xh = dimVars()[1], c = dimVars()[2], b = dimVars()[3];
  const Shape& dys = ctx.graph().node(node.inputs[0]).shape;
  const Shape& ws = ctx.graph().node(node.inputs[1]).shape;
  Window k = windowOf(node.attrs, fixed(ws[2]), fixed(ws[3]));
  // dy is read through a zero border, so only a stride > 1 needs a test (of divisibility) per tap.
  Func dy = padded(ctx.func(node.inputs[0]), fixed(dys[2]), fixed(dys[3]), ctx.constant(0), true, lowered.helpers);
  Func w = operandHelper(ctx, node, "weights", lowered);
  RDom r(Halide::Region{{0, k.kw}, {0, k.kh}, {0, fixed(ws[0])}}, "r");  // q, p, o
  Expr nj = xw + k.pw - r.x * k.dw, ni = xh + k.ph - r.y * k.dh;
  if (boundedRows(node)) {
    // Kernel rows that meet only dy's zero border add nothing. They are skipped per pair of output rows (the
    // schedule's row tile, kRowPair), a test the same for both rows, so the loop over p is bounded per tile.
    Expr first = xh / kRowPair * kRowPair + k.ph - r.y * k.dh;  // dy row read by the pair's first row
    r.where(first + kRowPair - 1 >= 0 && first < fixed(dys[2]));
  }
  Expr tap = dy(nj / k.sw, ni / k.sh, r.z, b);  // Halide's integer division rounds down
  if (k.sw > 1 || k.sh > 1) tap = Halide::select(nj % k.sw == 0 && ni % k.sh == 0, tap, ctx.constant(0));
  Func acc = ctx.helper("acc");
  acc(xw, xh, c, b) = ctx.constant(0);
  acc(xw, xh, c, b) += tap * w(r.x, r.y, c, r.z);
  lowered.func(xw, xh, c, b) = acc(xw, xh, c, b);
  lowered.helpers.push_back(acc);
  lowered.reductions = {r};
}

// dw[o,c,p,q] = sum_{b,i,j} dy[b,o,i,j] x[b,c,iS+pD-P, jS+qD-P]. With `sums_bias` (biasGradientsInWeightGradients)
// dw also has a column q = KW whose row p = 0 is the bias gradient sum_{b,i,j} dy[b,o,i,j] (a tap of ones) and
// whose other rows are 0.
void lowerConv2dGradWeight(const LoweringContext& ctx, const Node& node, LoweredNode& lowered, bool sums_bias) {
  Var q = dimVars()[0], p = dimVars()[1], c = dimVars()[2], o = dimVars()[3];
  const Shape& xs = ctx.graph().node(node.inputs[0]).shape;
  const Shape& dys = ctx.graph().node(node.inputs[1]).shape;
  Window k = windowOf(node.attrs, static_cast<int>(node.attrs.kernel[0]), static_cast<int>(node.attrs.kernel[1]));
  Func x = padded(ctx.func(node.inputs[0]), fixed(xs[2]), fixed(xs[3]), ctx.constant(0), hasPadding(node.attrs),
                  lowered.helpers);
  Func dy = operandHelper(ctx, node, "dy", lowered);
  RDom r(Halide::Region{{0, fixed(dys[3])}, {0, fixed(dys[2])}, {0, ctx.extent(dys[0])}}, "r");  // j, i, b
  Expr column = sums_bias ? Halide::min(q, k.kw - 1) : Expr(q);  // the bias column reads no new input
  Expr tap = x(r.x * k.sw + column * k.dw - k.pw, r.y * k.sh + p * k.dh - k.ph, c, r.z);
  // Unrolled over (q, p), the bias column's zero rows simplify away.
  if (sums_bias) tap = Halide::select(q == k.kw, Halide::select(p == 0, ctx.constant(1), ctx.constant(0)), tap);
  Func acc = ctx.helper("acc");
  acc(q, p, c, o) = ctx.constant(0);
  acc(q, p, c, o) += dy(r.x, r.y, o, r.z) * tap;
  lowered.func(q, p, c, o) = acc(q, p, c, o);
  lowered.helpers.push_back(acc);
  lowered.reductions = {r};
}

// The taps of the window at output (j, i) of channel c, batch entry b, in row-major window order.
std::vector<Expr> windowTaps(Func x, const Window& k, Expr j, Expr i, Var c, Var b) {
  std::vector<Expr> taps;
  for (int p = 0; p < k.kh; ++p)
    for (int q = 0; q < k.kw; ++q) taps.push_back(x(j * k.sw + q * k.dw - k.pw, i * k.sh + p * k.dh - k.ph, c, b));
  return taps;
}

// Pools are pure expressions over their unrolled taps, not updates over a window RDom: pure definitions vectorize
// with a shifted tail, where an update's guarded tail ran scalar (LeNet-5's pool1, 14 wide: 0.15 ms per step).
void lowerPool(const LoweringContext& ctx, const Node& node, LoweredNode& lowered) {
  Var j = dimVars()[0], i = dimVars()[1], c = dimVars()[2], b = dimVars()[3];
  const Shape& xs = ctx.graph().node(node.inputs[0]).shape;
  Window k = windowOf(node.attrs, static_cast<int>(node.attrs.kernel[0]), static_cast<int>(node.attrs.kernel[1]));
  bool is_max = node.op == Op::MaxPool2d;
  Expr outside = is_max ? Expr(ctx.floatType().min()) : ctx.constant(0);
  Func x = padded(ctx.func(node.inputs[0]), fixed(xs[2]), fixed(xs[3]), outside, hasPadding(node.attrs),
                  lowered.helpers);
  std::vector<Expr> taps = windowTaps(x, k, j, i, c, b);
  Expr value = taps[0];
  for (size_t t = 1; t < taps.size(); ++t) value = is_max ? Halide::max(value, taps[t]) : value + taps[t];
  lowered.func(j, i, c, b) = is_max ? value : value * ctx.constant(1.0 / (k.kh * k.kw));
}

// max_pool2d_grad: dx[h,w] = sum of dy[i,j] over the windows (i, j) whose first maximum (row-major window order,
// as PyTorch) is at (h, w). avg_pool2d_grad: dx[h,w] = sum of dy[i,j] / (KH KW) over the windows containing it.
void lowerPoolGrad(const LoweringContext& ctx, const Node& node, LoweredNode& lowered) {
  Var xw = dimVars()[0], xh = dimVars()[1], c = dimVars()[2], b = dimVars()[3];
  bool is_max = node.op == Op::MaxPool2dGrad;
  NodeId dy_id = is_max ? node.inputs[1] : node.inputs[0];
  const Shape& dys = ctx.graph().node(dy_id).shape;
  const Shape& xs = node.shape;
  Window k = windowOf(node.attrs, static_cast<int>(node.attrs.kernel[0]), static_cast<int>(node.attrs.kernel[1]));
  Func dy = ctx.func(dy_id);
  Expr scale = ctx.constant(is_max ? 1.0 : 1.0 / (k.kh * k.kw));
  Func arg;  // max_pool2d_grad: the row-major index p KW + q of each window's first maximum
  if (is_max) {
    Var j = dimVars()[0], i = dimVars()[1];
    Func x = padded(ctx.func(node.inputs[0]), fixed(xs[2]), fixed(xs[3]), Expr(ctx.floatType().min()),
                    hasPadding(node.attrs), lowered.helpers);
    std::vector<Expr> taps = windowTaps(x, k, j, i, c, b);
    Expr best = taps[0], at = 0;
    for (size_t t = 1; t < taps.size(); ++t) {  // a later tap wins only when strictly greater: the first maximum
      at = Halide::select(taps[t] > best, static_cast<int>(t), at);
      best = Halide::max(best, taps[t]);
    }
    arg = ctx.helper("argmax");
    arg(j, i, c, b) = at;
    lowered.helpers.push_back(arg);
  }
  Func& dx = lowered.func;
  if (k.sw == k.kw && k.sh == k.kh && k.pw == 0 && k.ph == 0 && k.dw == 1 && k.dh == 1) {
    // Windows that tile the input (stride = kernel, no padding): each position lies in at most one window, so
    // dx is a pure function of it, with no loop over taps. LeNet-5's two max-pool gradients: see bench/README.md.
    Expr oj = xw / k.kw, oi = xh / k.kh;  // the window of (xh, xw), when the output has it
    Expr inside = oj < fixed(dys[3]) && oi < fixed(dys[2]);
    Expr j = Halide::min(oj, fixed(dys[3]) - 1), i = Halide::min(oi, fixed(dys[2]) - 1);
    if (is_max) inside = inside && arg(j, i, c, b) == (xh - oi * k.kh) * k.kw + xw - oj * k.kw;
    dx(xw, xh, c, b) = Halide::select(inside, dy(j, i, c, b) * scale, ctx.constant(0));
    return;
  }
  RDom r(Halide::Region{{0, k.kw}, {0, k.kh}}, "r");  // q, p
  Source sj = windowSource(xw, r.x, k.sw, k.pw, k.dw, fixed(dys[3]));
  Source si = windowSource(xh, r.y, k.sh, k.ph, k.dh, fixed(dys[2]));
  Expr routed = sj.valid && si.valid;
  if (is_max) routed = routed && arg(sj.index, si.index, c, b) == r.y * k.kw + r.x;
  dx(xw, xh, c, b) = ctx.constant(0);
  dx(xw, xh, c, b) += Halide::select(routed, dy(sj.index, si.index, c, b) * scale, ctx.constant(0));
  lowered.reductions = {r};
}

void lowerGlobalAvgPool(const LoweringContext& ctx, const Node& node, LoweredNode& lowered) {
  Var c = dimVars()[0], b = dimVars()[1];
  const Shape& xs = ctx.graph().node(node.inputs[0]).shape;
  Func x = ctx.func(node.inputs[0]);
  RDom r(Halide::Region{{0, fixed(xs[3])}, {0, fixed(xs[2])}}, "r");  // w, h
  Expr scale = ctx.constant(1.0 / (fixed(xs[2]) * fixed(xs[3])));
  lowered.func(c, b) = ctx.constant(0);
  lowered.func(c, b) += x(r.x, r.y, c, b) * scale;
  lowered.reductions = {r};
}

void lowerGlobalAvgPoolGrad(const LoweringContext& ctx, const Node& node, LoweredNode& lowered) {
  Var w = dimVars()[0], h = dimVars()[1], c = dimVars()[2], b = dimVars()[3];
  Expr scale = ctx.constant(1.0 / (fixed(node.shape[2]) * fixed(node.shape[3])));
  lowered.func(w, h, c, b) = ctx.func(node.inputs[0])(c, b) * scale;
}

// conv2d_grad_weight dw(q, p, c, o) = acc(...), the sums over dy's (j, i, b), is vectorized along the output
// channels o when there are at least 4, else along dy's width j. LeNet-5's conv1 (6 channels, 28 wide, batch 64,
// 1 thread, profile): 0.28 ms along 6 of 16 lanes of o, 0.66 ms along j in vectors of 16 (its last 12 columns
// in predicated vectors, whose masked sums LLVM keeps in memory).
bool gradWeightByChannel(const Node& node) { return node.shape[0].extent >= 4; }

// The output channels of a conv2d_grad_weight register tile (scheduleGradWeightByChannel): `tile` channels in
// vectors of `lanes`, up to two vectors; fewer channels than a vector make one vector of them all.
struct ChannelTile {
  int lanes, tile;
};
ChannelTile gradWeightChannelTile(const Node& node, const VectorUnit& unit) {
  int64_t channels = node.shape[0].extent;
  int lanes = unit.lanesFor(channels);
  if (lanes == 0) return {static_cast<int>(channels), static_cast<int>(channels)};
  return {lanes, channels >= 2 * lanes ? 2 * lanes : lanes};
}

// Whether a conv2d_grad_weight's register tiles hold the sums of all its taps and `extra` more.
bool gradWeightTileHoldsAllTaps(const Node& node, const VectorUnit& unit, int extra) {
  ChannelTile t = gradWeightChannelTile(node, unit);
  return t.tile / t.lanes * (node.shape[2].extent * node.shape[3].extent + extra) <= unit.sumRegisters();
}

}  // namespace

bool isWindowSums(const Node& node) { return node.op == Op::Conv2d || node.op == Op::Conv2dGradInput; }

void lowerBiasGradient(const LoweringContext& ctx, const Node& sum_to, NodeId grad_weight, LoweredNode& lowered) {
  std::vector<Var> vars(dimVars().begin(), dimVars().begin() + static_cast<long>(sum_to.shape.size()));
  int kernel_width = fixed(ctx.graph().node(grad_weight).shape[3]);
  lowered.func(vars) = ctx.func(grad_weight)(kernel_width, 0, 0, dimVars()[2]);  // [.., O, 1, 1]: Halide d2 is O
}

std::map<NodeId, NodeId> biasGradientsInWeightGradients(const Graph& graph, const std::vector<bool>& needed,
                                                        const VectorUnit& unit) {
  std::map<NodeId, NodeId> pairs;
  for (NodeId g = 0; g < static_cast<NodeId>(graph.nodes.size()); ++g) {
    const Node& grad_weight = graph.node(g);
    if (!needed[g] || grad_weight.op != Op::Conv2dGradWeight || !gradWeightByChannel(grad_weight) ||
        !gradWeightTileHoldsAllTaps(grad_weight, unit, 1))
      continue;
    NodeId dy = grad_weight.inputs[1];
    for (NodeId s = dy + 1; s < g; ++s) {  // before g, so g's inputs (x precedes dy) are lowered before s
      const Node& sum = graph.node(s);
      if (!needed[s] || sum.op != Op::SumTo || sum.inputs[0] != dy || pairs.count(s)) continue;
      const Shape& to = sum.shape;  // [O, 1, 1] or [1, O, 1, 1]; not [B, O, 1, 1] (a bias per example)
      bool per_channel = to.size() >= 3 && to.size() <= 4 && to[to.size() - 3] == grad_weight.shape[0];
      for (size_t d = 0; d < to.size(); ++d)
        if (d != to.size() - 3 && !(to[d] == Dim{})) per_channel = false;
      if (per_channel && graph.node(grad_weight.inputs[0]).shape.size() == 4 && grad_weight.inputs[0] < s) {
        pairs[s] = g;
        break;
      }
    }
  }
  return pairs;
}

void lowerConvFamily(const LoweringContext& ctx, const Node& node, LoweredNode& lowered, bool sums_bias) {
  switch (node.op) {
    case Op::Conv2d: return lowerConv2d(ctx, node, lowered);
    case Op::Conv2dGradInput: return lowerConv2dGradInput(ctx, node, lowered);
    case Op::Conv2dGradWeight: return lowerConv2dGradWeight(ctx, node, lowered, sums_bias);
    case Op::MaxPool2d:
    case Op::AvgPool2d: return lowerPool(ctx, node, lowered);
    case Op::MaxPool2dGrad:
    case Op::AvgPool2dGrad: return lowerPoolGrad(ctx, node, lowered);
    case Op::GlobalAvgPool: return lowerGlobalAvgPool(ctx, node, lowered);
    case Op::GlobalAvgPoolGrad: return lowerGlobalAvgPoolGrad(ctx, node, lowered);
    default: break;
  }
  throw std::logic_error("internal error: lowerConvFamily called for a non-conv op");
}

// The share of a machine vector's lanes that compute results when a loop of `extent` iterations runs in vectors
// of `lanes` (0: not vectorized).
double usefulLanes(int64_t extent, int lanes, const VectorUnit& unit) {
  if (lanes == 0) return 0;
  return static_cast<double>(extent) / static_cast<double>((extent + lanes - 1) / lanes * unit.lanes);
}

// Along j: the taps are too few to vectorize, so the reduction over j is split by the vector width and the inner
// part factored out (rfactor) into partial sums partial(u, q, p, c, o) vectorized over u, contiguous in dy and
// (at stride 1) in x, then summed. Partial sums run in a fixed order, so results stay deterministic. Inside the
// reduction: one kernel row p of taps q (unrolled), so each dy vector serves the row's sums without spilling
// them. Each output channel is one task of the parallel loop, its partial sums its own, so no two threads write
// to one cache line (partial sums at root, parallel over o, took LeNet-5's conv1 16 ms per step on 2 threads
// against 1.9 ms on one). LeNet-5 train_step, batch 64, 1 thread, one run: all 25 taps of a (c, o) innermost
// (spilled) 14.9 ms; one row of taps 10.0 ms; rows of taps for two output channels at once 10.2 ms (not kept).
void scheduleGradWeightByWidth(const Graph& graph, const Node& node, LoweredNode& lowered, const VectorUnit& unit) {
  Func acc = lowered.helpers.back();
  Halide::RDom r = lowered.reductions[0];
  Halide::RVar jo("jo"), ji("ji");
  Var u("u");
  Var q = dimVars()[0], p = dimVars()[1], c = dimVars()[2], o = dimVars()[3];
  int lanes = unit.lanesFor(graph.node(node.inputs[1]).shape[3].extent);
  acc.compute_root().parallel(o);
  acc.update().parallel(o);
  if (lanes == 0) return;
  Func partial = acc.update().split(r.x, jo, ji, lanes, Halide::TailStrategy::GuardWithIf).rfactor(ji, u);
  partial.compute_at(acc, o).reorder_storage(u, q, p, c, o).vectorize(u);
  partial.update().reorder(u, q, jo, r.y, r.z, p, c, o).vectorize(u).unroll(q);
}

// A weight gradient with fewer tasks than this (input channels x tiles of output channels) is also cut along the
// batch, in chunks of kBatchChunk examples.
constexpr int64_t kMinGradWeightTasks = 4;
constexpr int kBatchChunk = 8;

// Along o: acc(q, p, c, o) stored channels innermost, in register tiles of up to two vectors of channels x all
// kernel taps when they fit the register file (else x one kernel row of taps), the reduction over (j, i, b)
// outside them, dy copied channels innermost; per point, the dy vectors and one broadcast of x per tap make
// the tile's fused multiply-adds (the width-vectorized sums waste 6 of 16 lanes at LeNet-5's output width 10
// and kept their sums in memory). Tasks: one per input channel and tile (and kernel row). LeNet-5, batch 64,
// 1 thread: one row per tile took conv2's weight gradient 2.8 -> 0.34 ms (profile); all 25 taps per tile,
// dy read once instead of once per row (nnc_kernels_bench, two alternating runs): conv2 248-257 -> 161-175 us,
// conv1 371-392 -> 254-273 us (on 2 threads, as one task: 301 -> 273 us), the step 1.91-1.99 -> 1.55-1.69 ms.
// The copy of dy reads it in vectors along the width and, up to 16 channels, stores them interleaved (dense
// stores) instead of gathering vectors of channels (profile, conv1's dy: 0.055 -> 0.03 ms; conv2's 0.021 ->
// 0.013 ms); dy's elementwise producer is inlined into it (readsThroughCopy): LeNet-5's relu derivative times
// the pooling gradient, 0.05 ms per step.
void scheduleGradWeightByChannel(const Node& node, LoweredNode& lowered, const VectorUnit& unit, int64_t dy_width) {
  Func dw = lowered.func, dy = lowered.helpers[lowered.helpers.size() - 2], acc = lowered.helpers.back();
  Halide::RDom r = lowered.reductions[0];
  Var q = dimVars()[0], p = dimVars()[1], c = dimVars()[2], o = dimVars()[3];
  Var oo("oo"), oi("oi"), pc("pc");
  int64_t channels = node.shape[0].extent;
  auto [lanes, tile] = gradWeightChannelTile(node, unit);
  dy.compute_root()
      .reorder_storage(dimVars()[2], dimVars()[0], dimVars()[1], dimVars()[3])
      .reorder(dimVars()[2], dimVars()[0], dimVars()[1], dimVars()[3])
      .parallel(dimVars()[3]);
  if (int width_lanes = unit.lanesFor(dy_width); width_lanes && channels <= 16)
    dy.vectorize(dimVars()[0], width_lanes, Halide::TailStrategy::ShiftInwards).unroll(dimVars()[2]);
  else
    dy.vectorize(dimVars()[2], lanes, Halide::TailStrategy::ShiftInwards);
  // Each tile's sums are computed inside it (constant extents, unrolled: registers), the reduction outside them.
  bool all_taps = gradWeightTileHoldsAllTaps(node, unit, 0);
  dw.split(o, oo, oi, tile, Halide::TailStrategy::ShiftInwards);
  acc.compute_at(dw, oo).reorder_storage(o, q, p, c).reorder(o, q, p, c).vectorize(o, lanes).unroll(o).unroll(q);
  int64_t tasks = node.shape[1].extent * ((channels + tile - 1) / tile);
  if (all_taps && tasks < kMinGradWeightTasks) {
    // Too few tasks for two threads (LeNet-5's conv1: one): the batch is cut in chunks of kBatchChunk, each a
    // task with its own tile of sums (stored), which acc then adds up in chunk order, so results do not depend
    // on the thread count. LeNet-5's step on 2 threads (four alternating runs): 1.12-1.17 -> 1.00-1.04 ms.
    Halide::RVar bo("bo"), bi("bi");
    Var chunk("chunk"), so("so"), si("si");
    Func partial = acc.update().split(r.z, bo, bi, kBatchChunk, Halide::TailStrategy::GuardWithIf).rfactor(bo, chunk);
    Func chunks = partial.in(acc);
    dw.reorder(oi, q, p, oo, c);
    acc.unroll(p);
    acc.update().reorder(o, q, p, bo).vectorize(o, lanes).unroll(o).unroll(q).unroll(p);
    chunks.compute_root().split(o, so, si, tile, Halide::TailStrategy::ShiftInwards).reorder(si, q, p, so, c, chunk)
        .parallel(chunk);
    partial.compute_at(chunks, so).reorder_storage(o, q, p, c, chunk).vectorize(o, lanes).unroll(o).unroll(q)
        .unroll(p);
    partial.update().reorder(o, q, p, r.x, r.y, bi).vectorize(o, lanes).unroll(o).unroll(q).unroll(p);
  } else if (all_taps) {
    dw.reorder(oi, q, p, oo, c).parallel(c);
    acc.unroll(p);
    acc.update().reorder(o, q, p, r.x, r.y, r.z).vectorize(o, lanes).unroll(o).unroll(q).unroll(p);
  } else {
    dw.reorder(oi, q, oo, p, c).fuse(p, c, pc).parallel(pc);
    acc.update().reorder(o, q, r.x, r.y, r.z).vectorize(o, lanes).unroll(o).unroll(q);
  }
}

// THE SCHEDULE: every Conv-family result at root (but pure pools read once, inlined into their reader, and window sums
// stored by their epilogue), its pure and update definitions vectorized over dimension 0 (the output width, or channels
// for global_avg_pool) when it spans a vector (a pure row shorter than one: one vector of the row), and parallel over
// the outermost pure dimension (the batch; output channels for conv2d_grad_weight). Reduction loops stay serial and in
// order, so results are deterministic. Helpers (zero-bordered copies of inputs, the max-pool arg-max) are at root too.
// LeNet-5's train step (batch 64, shared 2-core AVX2 box, load ~8, same run back to back): 104-125 ms with the borders
// evaluated as selects in every tap, 87-89 ms with them materialized. Windows without padding read their producer
// directly: skipping the copy alone was slower (52-67 ms against 46-50 ms), because the copy also materialized the
// producer (relu of conv + bias), which the windows then recomputed at every tap; scheduleEntry now computes such
// producers at root, and without the copies the step went 5.9 -> 5.25 ms.

// The largest divisor of `extent` up to `limit` when it is at least half of it (no tile overlaps another), else
// min(extent, limit) (ShiftInwards recomputes the overlap).
int tileOf(int64_t extent, int limit) {
  for (int t = limit; 2 * t >= limit; --t)
    if (t <= extent && extent % t == 0) return t;
  return static_cast<int>(std::min<int64_t>(extent, limit));
}

// How a window-sum result y(j, i, o, b) (conv2d, conv2d_grad_input) is vectorized: along the output width j or
// along the channels o, whichever computes fewer wasted lanes (the width when equal).
struct SumsLayout {
  bool by_channel;
  int lanes;
  bool round_up;  // the width is one rounded-up vector: the input is read through a border and y is internal
};

SumsLayout sumsLayout(const Node& node, const VectorUnit& unit, bool epilogue) {
  int64_t width = node.shape[3].extent, channels = node.shape[1].extent;
  // conv2d_grad_input always reads dy through a zero border, and conv2d does when padded; then a vector past the
  // width reads border zeros, not past a pipeline argument. An epilogue may read other operands past their end.
  bool bordered = (node.op == Op::Conv2dGradInput || hasPadding(node.attrs)) && !epilogue;
  int width_lanes = unit.lanesFor(width);
  bool round_up = bordered && width < unit.lanes &&
                  usefulLanes(width, unit.lanes, unit) > usefulLanes(width, width_lanes, unit);
  if (round_up) width_lanes = unit.lanes;
  int channel_lanes = unit.lanesFor(channels);
  if (usefulLanes(channels, channel_lanes, unit) > usefulLanes(width, width_lanes, unit))
    return {true, channel_lanes, false};
  return {false, width_lanes, round_up};
}

// conv2d and conv2d_grad_input: y(j, i, o, b) = acc(...), the sums of a window over (q, p, channels). Each task
// (a batch entry) walks register tiles of sums, the window loop outside them, so every vector loaded serves
// several sums and every broadcast several vectors:
// - along the width: one vector of j x `rows` rows x `channels` channels; each tap loads `rows` input vectors and
//   broadcasts `channels` weights (conv1 of LeNet-5: 28 = 2 vectors, 6 channels x 4 rows on AVX-512);
// - along the channels (when the width would waste more lanes: LeNet-5's conv2, 10 wide, 16 channels): the sums
//   stored channels innermost, a tile of `positions` x `rows` output points; each tap loads one vector of
//   weights (a copy with channels innermost) and broadcasts one input value per point.
// Measured on LeNet-5 (batch 64, 1 thread, profile): the sums in memory, one vector of one channel at a time:
// conv2 forward 2.2 ms, its input gradient 4.4 ms; 8-wide tiles along the width of 2 rows x 4 channels: 0.50 and
// 0.96 ms; this schedule: see bench/README.md.
void scheduleWindowSums(const Node& node, LoweredNode& lowered, const VectorUnit& unit,
                        std::optional<Func> epilogue) {
  Func y = epilogue.value_or(lowered.func), weights = lowered.helpers[lowered.helpers.size() - 2];
  Func acc = lowered.helpers.back();
  Halide::RDom r = lowered.reductions[0];
  Var j = dimVars()[0], i = dimVars()[1], o = dimVars()[2], b = dimVars()[3];
  Var jo("jo"), ji("ji"), io("io"), ii("ii"), oo("oo"), oi("oi");
  const Shape& s = node.shape;
  int64_t width = s[3].extent, height = s[2].extent, channels = s[1].extent;
  int budget = unit.sumRegisters();
  SumsLayout layout = sumsLayout(node, unit, epilogue.has_value());
  int tile_j, tile_i, tile_o;
  if (layout.by_channel) {
    tile_o = channels >= 2 * layout.lanes ? 2 * layout.lanes : layout.lanes;
    int vectors = tile_o / layout.lanes;
    tile_j = tileOf(width, std::min(12, budget / vectors));
    tile_i = tileOf(height, std::max(1, budget / (vectors * tile_j)));
    // The copy of the weights with the vectorized channel dimension (o for conv2d, c for its input gradient)
    // innermost: weights(q, p, c, o).
    Var vectorized = node.op == Op::Conv2d ? dimVars()[3] : dimVars()[2];
    Var other = node.op == Op::Conv2d ? dimVars()[2] : dimVars()[3];
    weights.compute_root().reorder_storage(vectorized, dimVars()[0], dimVars()[1], other);
  } else {
    tile_j = layout.lanes ? layout.lanes : 1;
    tile_o = channels <= 8 ? static_cast<int>(channels) : tileOf(channels, 8);
    tile_i = boundedRows(node) ? kRowPair : tileOf(height, std::max(1, std::min(4, budget / tile_o)));
  }
  Halide::TailStrategy tail = layout.round_up ? Halide::TailStrategy::RoundUp : Halide::TailStrategy::ShiftInwards;
  y.compute_root()
      .split(j, jo, ji, tile_j, tail)
      .split(i, io, ii, tile_i, Halide::TailStrategy::ShiftInwards)
      .split(o, oo, oi, tile_o, Halide::TailStrategy::ShiftInwards)
      .reorder(ji, ii, oi, jo, io, oo, b)
      .parallel(b);
  acc.compute_at(y, jo).unroll(j).unroll(i).unroll(o);
  acc.update().unroll(j).unroll(i).unroll(o);
  if (layout.by_channel) {
    acc.reorder_storage(o, j, i, b).reorder(o, j, i, b).vectorize(o, layout.lanes);
    acc.update().reorder(o, j, i, r.x, r.y, r.z).vectorize(o, layout.lanes);
  } else {
    acc.update().reorder(j, i, o, r.x, r.y, r.z);
    if (layout.lanes) {
      y.vectorize(ji);
      acc.vectorize(j, layout.lanes);
      acc.update().vectorize(j, layout.lanes);
    }
  }
}

bool windowTilesInput(const Node& node) {
  if (node.op != Op::MaxPool2d && node.op != Op::AvgPool2d && node.op != Op::MaxPool2dGrad) return false;
  Window k = windowOf(node.attrs, static_cast<int>(node.attrs.kernel[0]), static_cast<int>(node.attrs.kernel[1]));
  return k.sw == k.kw && k.sh == k.kh && k.dw == 1 && k.dh == 1 && k.pw == 0 && k.ph == 0;
}

bool readsThroughCopy(const Node& node, size_t k) {
  if (node.op == Op::Conv2dGradWeight) return k == 1 ? gradWeightByChannel(node) : hasPadding(node.attrs);
  return k == 0 && (node.op == Op::Conv2dGradInput || (node.op == Op::Conv2d && hasPadding(node.attrs)));
}

void scheduleConvFamily(const Graph& graph, const Node& node, LoweredNode& lowered, const VectorUnit& unit,
                        bool inline_if_pure, std::optional<Func> epilogue) {
  size_t at_root = lowered.helpers.size() - ownScheduledHelpers(node);
  // Borders and arg-maxima, pure and at least as wide as the narrowest feature map among the node's operands and
  // result (not the weights), are vectorized; conv2d_grad_weight's result is weight-shaped, and its border stays
  // scalar.
  int64_t narrowest = node.op == Op::Conv2dGradWeight ? 0 : node.shape.back().extent;
  for (size_t k = 0; k < node.inputs.size() && !(isWindowSums(node) && k == 1); ++k) {
    const Shape& s = graph.node(node.inputs[k]).shape;
    if (s.size() == 4) narrowest = std::min(narrowest, s.back().extent);
  }
  for (size_t h = 0; h < at_root; ++h) {
    Func helper = lowered.helpers[h];
    helper.compute_root();
    if (helper.dimensions() != 4) continue;
    helper.parallel(dimVars()[3]);
    if (int lanes = rowLanes(narrowest, unit))
      helper.vectorize(dimVars()[0], lanes, Halide::TailStrategy::ShiftInwards);
  }
  if (isWindowSums(node)) return scheduleWindowSums(node, lowered, unit, epilogue);
  Func f = lowered.func;
  // LeNet-5's pool1 gradient: 1.2 MB not stored; pool2, flattened for fc1: read once, by the flattening copy.
  bool pool = node.op == Op::MaxPool2dGrad || node.op == Op::AvgPool2dGrad || node.op == Op::MaxPool2d ||
              node.op == Op::AvgPool2d;
  if (inline_if_pure && pool && !f.has_update_definition()) return;
  f.compute_root();
  if (node.op == Op::Conv2dGradWeight)
    return gradWeightByChannel(node)
               ? scheduleGradWeightByChannel(node, lowered, unit, graph.node(node.inputs[1]).shape[3].extent)
               : scheduleGradWeightByWidth(graph, node, lowered, unit);
  Var inner = dimVars()[0], outer = dimVars()[node.shape.size() - 1];
  int64_t width = node.shape.back().isSymbolic() ? 0 : node.shape.back().extent;
  int vector = f.has_update_definition() ? unit.lanesFor(width) : rowLanes(width, unit);
  if (vector) f.vectorize(inner, vector, Halide::TailStrategy::ShiftInwards);
  if (node.shape.size() >= 2) f.parallel(outer);
  if (!f.has_update_definition()) return;
  // No RoundUp (the default tail): it computes past the last column and would read past the end of an input
  // buffer that feeds the pool directly (max_pool2d of a model input).
  if (vector) f.update().vectorize(inner, vector, Halide::TailStrategy::GuardWithIf);
  if (node.shape.size() >= 2) f.update().parallel(outer);
}

}  // namespace nnc
