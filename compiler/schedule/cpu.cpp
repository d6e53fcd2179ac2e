// THE SCHEDULE: CPU schedules for lowered entry points, for the entry's target (compiler/target.h): vectors of 16
// floats and 32 registers with AVX-512, as on the reference machine, 8 and 16 with AVX2, 4 and 16 with SSE
// (vectorUnitFor).
//
// Policy, per node family:
//   leaf         inlined (a leaf Func only renames a pipeline argument)
//   elementwise  inlined into its consumers (fusion) when it has one, or when all of them are pools whose
//                windows tile it; computed at root when it has several other consumers or feeds a matmul or a
//                window that rereads it (conv), so those inner loops read memory instead of recomputing; a
//                root one that alone reads a convolution stores the convolution's register tiles (epilogue)
//   matmul       root; register tiles of 6 rows x 2 vectors of columns, the reduction loop outside the tile,
//                row tiles in parallel; narrow products (the logits) in one rounded-up vector of columns;
//                products with leading dimensions (batch_matmul, a matmul over flattened rows): the same tiles
//                per entry, the entries in parallel
//   conv         compiler/lower/lower_conv.cpp (window sums, weight gradients, pools)
//   reduce/loss  root with their helpers (slice maxima and sums, arg-max), vectorized over the innermost kept
//                dimension, or over vector partial sums of the innermost reduced one when the kept one is short;
//                the elementwise backward losses (cross_entropy_grad, ..._with_logits_grad) likewise
//   layout       inlined into the consumer (index arithmetic only), materialized when a matmul reads it; gather
//                (embedding rows) likewise
//   gather_grad  root, serial over the positions (two may scatter into one row), vectorized over the row
// Every split of a feature dimension uses ShiftInwards (RoundUp only where the reads past the end meet a zero
// border) and is only made when the extent is at least the split factor; the batch dimension is never split,
// so every batch size (1, the last partial batch) works. Entry outputs are vectorized and parallel over their
// outermost dimension. Parallel loops run on the trainer's thread pool (runtime/thread_pool.h).
#include <algorithm>
#include <optional>
#include <set>
#include <stdexcept>

#include "compiler/lower/lower.h"
#include "compiler/lower/lower_conv.h"
#include "compiler/schedule/fusion.h"

namespace nnc {

namespace {

using Halide::Func;
using Halide::Var;

// The constant extent of Halide dimension 0 of `shape`, or 0 when it is symbolic or absent.
int64_t innerExtent(const Shape& shape) {
  if (shape.empty() || shape.back().isSymbolic()) return 0;
  return shape.back().extent;
}

// Whether a loop nest of `work` multiply-adds or element visits (a symbolic batch counted as 64) is worth
// handing to the thread pool: waking a worker costs more than a small loop. examples/mlp.nn's train_step on 2
// threads, every root stage parallel: 1.21 ms against 0.75 ms on one thread; see bench/README.md for after.
constexpr int64_t kParallelWork = 1 << 16;
bool worthParallel(const Shape& shape, int64_t per_element = 1) {
  return elementCount(shape, 64) * per_element >= kParallelWork;
}

// Vectorizes dimension 0 and, when worth it, parallelizes the outermost dimension of a root Func of `shape`.
void scheduleRootElementwise(Func f, const Shape& shape, const VectorUnit& unit) {
  f.compute_root();
  if (int lanes = unit.lanesFor(innerExtent(shape)))
    f.vectorize(dimVars()[0], lanes, Halide::TailStrategy::ShiftInwards);
  if (shape.size() >= 2 && worthParallel(shape)) f.parallel(dimVars()[shape.size() - 1]);
}

// A layout op computed at root: a reshape whose source's rows tile its own rows (flatten: [B, 16, 5, 5] ->
// [B, 400]) is split by the source's row length, so each vector of that length is a dense load and store (index
// arithmetic simplified away) instead of a gather with a division and a modulo per lane.
void scheduleMaterializedLayout(const Graph& graph, const Node& node, Func f, const VectorUnit& unit) {
  int64_t source_row = innerExtent(graph.node(node.inputs[0]).shape), row = innerExtent(node.shape);
  int lanes = rowLanes(source_row, unit);
  if (node.op != Op::Reshape || lanes == 0 || row <= source_row || row % source_row != 0)
    return scheduleRootElementwise(f, node.shape, unit);
  f.compute_root();
  Var outer("outer"), inner("inner");
  f.split(dimVars()[0], outer, inner, static_cast<int>(source_row));
  f.vectorize(inner, lanes, Halide::TailStrategy::ShiftInwards);
  if (node.shape.size() >= 2 && worthParallel(node.shape)) f.parallel(dimVars()[node.shape.size() - 1]);
}

// The extent of a dimension in this call: a constant, or the symbolic batch size.
Halide::Expr extentOf(const Dim& dim, const LoweredEntry& entry) {
  return dim.isSymbolic() ? entry.symbols.at(dim.symbol) : Halide::Expr(static_cast<int>(dim.extent));
}

// C(n, m) = sum_k A(k, m) B(n, k): register tiles of kTileRows rows x two vectors of columns (12 accumulators, 2 B
// loads and 6 broadcasts of A per k: within AVX2's 16 registers too), the reduction loop outside the tile, row
// tiles in parallel. Rows are the batch (symbolic) in forward and input-gradient products, so the tiled loop
// nest is specialized to calls with at least kTileRows rows; smaller batches take one-row tiles. A transposed
// B ([N, K] in memory) is first packed into (n, k) order in 8x8 blocks (vector loads and stores, not a strided
// gather). Measured on examples/mlp.nn (batch 64, 1 thread): 1 row x 4 vectors, B transposed element by
// element: train_step 1.83 ms, predict at batch 256 7.4 ms; this schedule: see bench/README.md.
constexpr int kTileRows = 6;

// A B stored transposed (or a narrow product's zero-extended B) is packed into (n, k) order in blocks of vector x
// vector (vector loads and stores, not a strided gather): once, or per entry when each batch entry has its own B.
void schedulePackedB(const Node& node, Func packed, Func out, const std::optional<Var>& entry_loop, int vector,
                     const int64_t* depth, Halide::TailStrategy column_tail) {
  if (!node.attrs.transpose_b && !narrowProduct(node)) return;  // b_nk only renames B: inlined
  Var n = dimVars()[0], m = dimVars()[1];  // packed(n, k[, e..]), k in the Var m
  if (packed.dimensions() > 2 && entry_loop) packed.compute_at(out, *entry_loop);
  else packed.compute_root();
  Var no("no"), ni("ni"), ko("ko"), ki("ki");
  if (vector && depth && *depth >= vector)
    packed.split(n, no, ni, vector, column_tail)
        .split(m, ko, ki, vector, Halide::TailStrategy::ShiftInwards)
        .reorder(ni, ki, no, ko)
        .vectorize(ni)
        .unroll(ki);
}

void scheduleMatMul(const Node& node, LoweredNode& lowered, const LoweredEntry& entry, const VectorUnit& unit) {
  Var n = dimVars()[0], m = dimVars()[1];
  Var no("no"), ni("ni"), mo("mo"), mi("mi");
  Func out = lowered.func, acc = lowered.helpers[0], packed = lowered.helpers[1];
  const Halide::RDom& r = lowered.reductions[0];
  const int64_t* depth = Halide::Internal::as_const_int(r.x.extent());
  int64_t work = 1;  // multiply-adds per output, a symbolic extent counted as 64
  for (int d = 0; d < r.dimensions(); ++d) {
    const int64_t* e = Halide::Internal::as_const_int(r[d].extent());
    work *= e ? *e : 64;
  }
  bool parallel = worthParallel(node.shape, work);
  // Products with leading dimensions (a batch_matmul's entries, a matmul's rows form: compiler/graph/op_rules.cpp)
  // tile each entry's rows as a matrix's and run the entries as one loop, in parallel: ViT's token projections
  // ([B, 16, 64] @ [64, 64]) and attention's [B, 4, 16, 16] products.
  bool entries = node.shape.size() > 2;
  out.compute_root();
  int64_t columns = innerExtent(node.shape);
  int vector = unit.lanesFor(columns);
  // A narrow product (lower.h) computes one whole vector of columns over its zero-extended packed B: the logits'
  // 10 columns in one 16-lane vector instead of two overlapping 8-lane ones (64x10x128: 0.78 -> 1.33 of OpenBLAS).
  bool round_up = narrowProduct(node) && columns < unit.lanes;
  if (round_up) vector = unit.lanes;
  Halide::TailStrategy column_tail = round_up ? Halide::TailStrategy::RoundUp : Halide::TailStrategy::ShiftInwards;
  // The task loop: the row tiles, or the entries.
  std::optional<Var> entry_loop;
  auto tasks = [&](Halide::Stage stage, Var rows) {
    if (entries) entry_loop = fuseBatchEntries(stage, node.shape.size());
    if (parallel) stage.parallel(entries ? *entry_loop : rows);
  };
  int tile = columns >= 2 * vector ? 2 * vector : vector;
  if (tile == 0) {  // fewer columns than one vector: plain loops
    tasks(out, m);
    acc.compute_at(out, m);
    schedulePackedB(node, packed, out, entry_loop, vector, depth, column_tail);
    return;
  }
  const Dim& rows = node.shape[node.shape.size() - 2];
  bool fixed_rows = !rows.isSymbolic();
  if (!fixed_rows || rows.extent >= kTileRows) {
    Halide::Stage tiled = fixed_rows ? Halide::Stage(out) : out.specialize(extentOf(rows, entry) >= kTileRows);
    tiled.split(n, no, ni, tile, column_tail)
        .split(m, mo, mi, kTileRows, Halide::TailStrategy::ShiftInwards)
        .reorder(ni, mi, no, mo)
        .vectorize(ni, vector);
    tasks(tiled, mo);
  }
  if (!fixed_rows || rows.extent < kTileRows) {  // one-row tiles (the fallback of the specialization)
    out.split(n, no, ni, tile, column_tail).reorder(ni, no, m).vectorize(ni, vector);
    tasks(out, m);
  }
  // The reduction loops (the contraction form's run over rows and entries) outside the register tile.
  std::vector<Halide::VarOrRVar> order = {n, m};
  for (int d = 0; d < r.dimensions(); ++d) order.push_back(Halide::RVar(r[d]));
  acc.compute_at(out, no).vectorize(n, vector).unroll(n).unroll(m);
  acc.update().reorder(order).vectorize(n, vector).unroll(n).unroll(m);
  schedulePackedB(node, packed, out, entry_loop, vector, depth, column_tail);
}

// Whether a sum or maximum reduces its operand's innermost (contiguous) dimension, which is then the first
// dimension of its RDom.
bool reducesInnermost(const Graph& graph, const Node& node) {
  const Shape& from = graph.node(node.inputs[0]).shape;
  if (from.empty() || from.back() == Dim{}) return false;
  if (node.op == Op::SumTo) return node.shape.empty() || node.shape.back() == Dim{};
  if (node.op != Op::Sum && node.op != Op::Max) return false;
  const std::vector<int64_t>& axes = node.attrs.axes;
  return std::find(axes.begin(), axes.end(), static_cast<int64_t>(from.size()) - 1) != axes.end();
}

// Reductions at root, vectorized over the innermost kept dimension. When it is too short (a convolution's bias
// gradient sums [B, C, H, W] into [C]) and the innermost reduced dimension is contiguous, the reduction over it is
// split by the vector width and factored out (rfactor) into vector partial sums, summed in a fixed order:
// LeNet-5's conv1 bias gradient, 301,056 sums into 6, took 0.09 ms per step in scalar loops, 0.07 ms this way
// (profile; it streams 1.2 MB).
void scheduleReduction(const Graph& graph, const Node& node, LoweredNode& lowered, const VectorUnit& unit) {
  for (Func helper : lowered.helpers) helper.compute_root();
  Func f = lowered.func;
  f.compute_root();
  if (int vector = unit.lanesFor(innerExtent(node.shape))) {
    f.vectorize(dimVars()[0], vector, Halide::TailStrategy::ShiftInwards);
    if (f.has_update_definition())  // not RoundUp, an update's default: it would read past an input's last column
      f.update().vectorize(dimVars()[0], vector, Halide::TailStrategy::GuardWithIf);
    return;
  }
  if (!lowered.helpers.empty() || lowered.reductions.size() != 1 || !reducesInnermost(graph, node)) return;
  Halide::RDom r = lowered.reductions[0];
  const int64_t* extent = Halide::Internal::as_const_int(r.x.extent());
  int lanes = extent ? unit.lanesFor(*extent) : 0;
  if (lanes == 0) return;
  Halide::RVar outer("ro"), inner("ri");
  Var lane("lane");
  Func partial = f.update().split(r.x, outer, inner, lanes, Halide::TailStrategy::GuardWithIf).rfactor(inner, lane);
  std::vector<Var> lane_first = {lane};  // rfactor stores the new dimension outermost
  for (const Var& v : partial.args())
    if (v.name() != lane.name()) lane_first.push_back(v);
  partial.vectorize(lane);
  partial.update().vectorize(lane);
  if (f.dimensions() == 0) {
    partial.compute_root();
    return;
  }
  partial.reorder_storage(lane_first);
  // One output's partial sums at a time, on the stack, so they stay in registers across the reduction.
  Var task = dimVars()[f.dimensions() - 1];
  partial.compute_at(f, task);
  if (worthParallel(graph.node(node.inputs[0]).shape)) f.update().parallel(task);
}

// gather_grad's scatter-add: the table zeroed, then each position's row of dout added into the row of its id, one
// vector of columns at a time. The loop over positions stays serial, in row-major order (never parallel, never
// atomic: two positions may share an id), so the sums are the same in every run. Its speed: bench/kernels_bench's
// gather_grad entries (examples/charlm.nn's table gradient).
void scheduleScatter(const Node& node, LoweredNode& lowered, const VectorUnit& unit) {
  Func f = lowered.func;
  f.compute_root();
  if (int lanes = unit.lanesFor(innerExtent(node.shape))) {
    f.vectorize(dimVars()[0], lanes, Halide::TailStrategy::ShiftInwards);
    f.update().vectorize(dimVars()[0], lanes, Halide::TailStrategy::GuardWithIf);
  }
}

// Whether `reader`, the only reader of a node of `shape`, reads each of its elements once: an elementwise node of
// that shape (not one that broadcasts it), a sum, mean or maximum, or a materialized layout op.
bool readsEachElementOnce(const Graph& graph, const Uses& uses, NodeId reader, const Shape& shape) {
  const Node& node = graph.node(reader);
  switch (node.op) {
    case Op::SumTo:
    case Op::Sum:
    case Op::Mean:
    case Op::Max: return true;
    default: break;
  }
  if (opInfo(node.op).family == OpFamily::Elementwise) return node.shape == shape;
  return opInfo(node.op).family == OpFamily::Layout && materializedLayout(uses, reader);
}

// The epilogues of window sums: a convolution (or its input gradient) read only by an elementwise node of its own
// shape that is computed at root (conv + bias, read by the pool and by relu's derivative) has its register tiles
// stored into that node directly; the sums themselves are not stored. Maps the convolution to its epilogue.
// LeNet-5's train step (batch 64, alternating runs): 1.74-1.78 -> 1.64 ms on 1 thread, 1.40-1.50 -> 1.34-1.43 ms
// on 2 (each add of a bias was a pass over 1.2 MB or 0.4 MB).
std::map<NodeId, NodeId> windowSumEpilogues(const Graph& graph, const LoweredEntry& lowered, const Uses& uses) {
  std::map<NodeId, NodeId> epilogues;
  std::set<NodeId> claimed;
  for (const auto& [id, _] : lowered.nodes) {
    const Node& node = graph.node(id);
    if (!isWindowSums(node) || uses.count.count(id) == 0 || uses.count.at(id) != 1 || isOutput(lowered, id))
      continue;
    NodeId user = uses.last_user.at(id);
    const Node& epilogue = graph.node(user);
    if (opInfo(epilogue.op).family == OpFamily::Elementwise && epilogue.shape == node.shape &&
        elementwiseAtRoot(uses, user) && !claimed.count(user)) {  // one convolution per epilogue (conv_a + conv_b)
      epilogues[id] = user;
      claimed.insert(user);
    }
  }
  return epilogues;
}

}  // namespace

// AVX-512 doubles AVX2's vectors and registers. A 16-wide fused multiply-add loop ran at 220 GFLOP/s on one
// core of the reference machine, the 8-wide one at 110; the MLP's train step went 0.80 -> 0.49 ms (profile).
VectorUnit vectorUnitFor(const Halide::Target& target, Halide::Type float_type) {
  int lanes = target.natural_vector_size(float_type);
  bool avx512 = target.features_any_of({Halide::Target::AVX512, Halide::Target::AVX512_KNL,
                                        Halide::Target::AVX512_Skylake, Halide::Target::AVX512_Cannonlake,
                                        Halide::Target::AVX512_SapphireRapids});
  return {lanes, std::min(lanes, 32 / float_type.bytes()), avx512 ? 32 : 16};
}

int VectorUnit::lanesFor(int64_t extent) const {
  for (int v = lanes; v >= min_lanes; v /= 2)
    if (extent >= v) return v;
  return 0;
}

// One vector of a whole row shorter than any: LeNet-5's pool2, 5 wide, whose stride-2 taps become dense loads and
// shuffles, not scalar loads (nnc_kernels_bench: pool2 19 -> 9.4 us, its gradient with the arg-max 39 -> 32 us;
// the step 1.45-1.54 -> 1.34-1.42 ms, four alternating runs).
int rowLanes(int64_t extent, const VectorUnit& unit) {
  int lanes = unit.lanesFor(extent);
  return lanes == 0 && extent >= 4 ? static_cast<int>(extent) : lanes;
}

void scheduleEntry(const Graph& graph, LoweredEntry& lowered) {
  VectorUnit unit = vectorUnitFor(lowered.target, lowered.float_type);
  Uses uses = countUses(graph, lowered);
  std::map<NodeId, NodeId> epilogues = windowSumEpilogues(graph, lowered, uses);
  std::set<NodeId> epilogue_nodes;
  for (const auto& [conv, epilogue] : epilogues) epilogue_nodes.insert(epilogue);
  std::set<NodeId> rooted;  // nodes whose own Func their family's schedule computes at root
  for (auto& [id, node_funcs] : lowered.nodes) {
    const Node& node = graph.node(id);
    if (isArgument(lowered, id)) continue;
    switch (opInfo(node.op).family) {
      case OpFamily::Leaf: break;
      case OpFamily::Elementwise:
        if (elementwiseAtRoot(uses, id) && !epilogue_nodes.count(id)) {
          scheduleRootElementwise(node_funcs.func, node.shape, unit);
          rooted.insert(id);
        }
        break;
      case OpFamily::MatMul:
        scheduleMatMul(node, node_funcs, lowered, unit);
        rooted.insert(id);
        break;
      case OpFamily::Layout:  // index arithmetic, inlined into its consumer; but a product's vector loads of a
        // reshaped operand would become gathers (div and mod per lane): LeNet-5's fc1 weight gradient read
        // flatten(pool2) so at 13 GFLOP/s (0.47 ms per step, 1 thread).
        if (materializedLayout(uses, id)) {
          scheduleMaterializedLayout(graph, node, node_funcs.func, unit);
          rooted.insert(id);
        }
        break;
      case OpFamily::Conv: {
        // A pure pool or pooling gradient whose only reader reads each element once is inlined into it
        // (LeNet-5's pool2 into the flattening copy for fc1: the step 1.31-1.33 -> 1.28 ms).
        bool single_plain_use = uses.count[id] == 1 && !isOutput(lowered, id) &&
                                readsEachElementOnce(graph, uses, uses.last_user[id], node.shape);
        std::optional<Func> epilogue;
        if (epilogues.count(id)) epilogue = lowered.nodes.at(epilogues.at(id)).func;
        scheduleConvFamily(graph, node, node_funcs, unit, single_plain_use, epilogue);
        if (epilogue) rooted.insert(epilogues.at(id));  // the sums' tiles store it
        else if (!single_plain_use) rooted.insert(id);
        break;
      }
      case OpFamily::Reduce:
      case OpFamily::Loss:
        if (node.op == Op::SumTo && node_funcs.reductions.empty()) break;  // sum_to over nothing is a copy
        rooted.insert(id);
        if (node.op == Op::GatherGrad) {
          scheduleScatter(node, node_funcs, unit);
          break;
        }
        if (node.op == Op::CrossEntropyGrad || node.op == Op::BinaryCrossEntropyWithLogitsGrad) {
          for (Func helper : node_funcs.helpers) helper.compute_root();
          scheduleRootElementwise(node_funcs.func, node.shape, unit);
          break;
        }
        scheduleReduction(graph, node, node_funcs, unit);
        break;
    }
  }
  // Outputs are vectorized with ShiftInwards only: GuardWithIf on a fixed-extent output produced wrong stores
  // in Halide 14 (the tail vector was written over the first one).
  for (size_t i = 0; i < lowered.outputs.size(); ++i) {
    Func out = lowered.outputs[i];
    NodeId id = lowered.output_nodes[i];
    if (rooted.count(id) && out.name() == lowered.nodes.at(id).func.name()) continue;  // a plan kernel's own result
    const Shape& shape = graph.node(id).shape;
    if (int lanes = unit.lanesFor(innerExtent(shape))) out.vectorize(dimVars()[0], lanes);
    if (shape.size() >= 2 && worthParallel(shape)) out.parallel(dimVars()[shape.size() - 1]);
  }
}

}  // namespace nnc
