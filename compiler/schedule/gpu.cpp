// GPU schedules for lowered entry points (targets with `cuda` or `opencl`): one schedule, two backends. PoCL runs
// the OpenCL kernels on a CPU, so CI checks every GPU schedule's results; a lent NVIDIA GPU measures its speed
// (bench/gpu_check.sh).
//
// Policy, per node family (which nodes are stored is decided as for the CPU, schedule/fusion.h):
//   elementwise, layout  inlined into their readers (fused chains), or one kernel over their elements
//   matmul               64 x 64 outputs per block of 16 x 16 threads, 4 x 4 per thread, both operands staged
//                        through shared memory (gpuMatMul)
//   conv, reduce, loss   every helper and the result stored: one thread per output element, its window or
//                        reduction a serial loop in that thread; long reductions to few results (the loss,
//                        BatchNorm's statistics, weight and bias gradients) first into partial sums in parallel
// Every GPU loop guards its tail (GuardWithIf), so any batch size and any extent works.
#include <Halide.h>

#include <optional>
#include <set>

#include "compiler/lower/lower.h"
#include "compiler/schedule/fusion.h"

namespace nnc {

namespace {

using Halide::Func;
using Halide::Var;

constexpr int kThreadsPerBlock1d = 128;
constexpr int kTile2d = 16;    // 16 x 16 threads per block over two dimensions
constexpr int kGemmThreads = 16;   // threads per block side of a product
constexpr int kGemmRegisters = 4;  // outputs per thread side
constexpr int kGemmBlock = kGemmThreads * kGemmRegisters;
constexpr int kGemmDepth = 16;     // reduction terms staged in shared memory per step

// The pure variables of a stage that may run in parallel: every argument of the Func for its pure definition,
// and for an update the arguments that are the Func's own variable at their own position (f(x, y) += ...), whose
// iterations write disjoint elements. Innermost first.
std::vector<Var> parallelVars(const Func& f, int stage) {
  std::vector<Var> vars;
  std::vector<Var> args = f.args();
  if (stage < 0) return args;
  std::vector<Halide::Expr> lhs = f.update_args(stage);
  for (size_t i = 0; i < lhs.size() && i < args.size(); ++i) {
    const auto* v = lhs[i].as<Halide::Internal::Variable>();
    if (v && !v->reduction_domain.defined() && v->name == args[i].name()) vars.push_back(args[i]);
  }
  return vars;
}

// Maps a stage's loops over `vars` (innermost first) to GPU blocks and threads: one dimension in blocks of
// kThreadsPerBlock1d threads, two in kTile2d x kTile2d tiles, further dimensions fused into one more block
// dimension. Without parallel variables the stage runs in one GPU thread.
void gpuTile(Halide::Stage stage, const std::vector<Var>& vars) {
  using Halide::TailStrategy;
  if (vars.empty()) {
    stage.gpu_single_thread();
    return;
  }
  Var xo("gxo"), xi("gxi"), yo("gyo"), yi("gyi");
  if (vars.size() == 1) {
    stage.gpu_tile(vars[0], xo, xi, kThreadsPerBlock1d, TailStrategy::GuardWithIf);
    return;
  }
  if (vars.size() > 2) {
    Var outer = vars.back();
    for (size_t i = vars.size() - 1; i-- > 2;) {
      Var fused(outer.name() + "_" + vars[i].name());
      stage.fuse(vars[i], outer, fused);
      outer = fused;
    }
    stage.gpu_blocks(outer);
  }
  stage.gpu_tile(vars[0], vars[1], xo, yo, xi, yi, kTile2d, kTile2d, TailStrategy::GuardWithIf);
}

// Stores `f` in GPU memory, every stage on the GPU.
void gpuRoot(Func f) {
  f.compute_root();
  gpuTile(f, parallelVars(f, -1));
  for (int s = 0; s < f.num_update_definitions(); ++s) gpuTile(f.update(s), parallelVars(f, s));
}

// A reduction with few results and many terms (BatchNorm's statistics: 50,176 terms per channel for a 28 x 28 map
// at batch 64; the loss; a bias gradient over the batch) would leave most of the GPU idle and add each result's
// terms one by one, losing float32 precision as the sum grows: its outermost reduction variable becomes a pure
// dimension of partial sums (rfactor), computed in parallel, which the result then adds. A one-dimensional
// reduction is first split into chunks of kChunkTerms. Reductions of few terms (a convolution's window, a row's
// softmax) keep one thread per result.
constexpr int kChunkTerms = 256;
constexpr int64_t kSplitFrom = 4096;

void gpuRootReduction(Func f) {
  bool all_pure = f.num_update_definitions() == 1 && parallelVars(f, 0).size() == static_cast<size_t>(f.dimensions());
  if (!all_pure) return gpuRoot(f);
  Halide::Stage update = f.update();
  std::vector<Halide::Internal::ReductionVariable> rvars = update.get_schedule().rvars();
  int64_t terms = 1;
  for (const Halide::Internal::ReductionVariable& rvar : rvars) {
    const int64_t* extent = Halide::Internal::as_const_int(rvar.extent);
    terms *= extent ? *extent : 64;
  }
  if (rvars.empty() || terms < kSplitFrom) return gpuRoot(f);
  Halide::RVar outer(rvars.back().var);
  if (rvars.size() == 1) {
    Halide::RVar chunk("chunk"), within("within");
    update.split(outer, chunk, within, kChunkTerms, Halide::TailStrategy::GuardWithIf);
    outer = chunk;
  }
  std::optional<Func> partial;
  try {
    partial = update.rfactor(outer, Var("part"));
  } catch (const Halide::CompileError&) {  // not an associative update Halide recognizes (an arg-max): serial
  }
  gpuRoot(f);
  if (partial) gpuRoot(*partial);
}

// Loads a staged operand tile (computed at a level outside the GPU thread loops, so Halide places it in shared
// memory) with the block's kGemmThreads x kGemmThreads threads, each loading every kGemmThreads-th element of both
// dimensions.
void stageInSharedMemory(Func staged, Func consumer, Halide::RVar at) {
  Var d0 = staged.args()[0], d1 = staged.args()[1];
  Var d0o("s0o"), d0i("s0i"), d1o("s1o"), d1i("s1i");
  staged.compute_at(consumer, at)
      .split(d0, d0o, d0i, kGemmThreads, Halide::TailStrategy::GuardWithIf)
      .split(d1, d1o, d1i, kGemmThreads, Halide::TailStrategy::GuardWithIf)
      .reorder(d0i, d1i, d0o, d1o)
      .gpu_threads(d0i, d1i);
}

// C(n, m) = sum_k A(k, m) B(n, k): a block of kGemmThreads x kGemmThreads threads computes a tile of kGemmBlock x
// kGemmBlock outputs, each thread kGemmRegisters x kGemmRegisters of them (register blocking: each value loaded
// from shared memory feeds kGemmRegisters multiply-adds). The reduction runs in steps of kGemmDepth; at each step
// the block's threads stage the slices of A (kGemmBlock rows) and B (kGemmBlock columns) it needs in shared
// memory, so each element is read from GPU memory once per block, not once per output. The block's sums stay in
// registers where both extents are multiples of kGemmBlock at compile time (weight gradients: rows are output
// features); Halide 14 keeps only fixed-size allocations in registers, so a product whose tiles may be partial (a
// batch of rows, the logits' 10 columns) keeps them in shared memory, each thread reading and writing its own.
// Batched products (attention's) and products over flattened rows (compiler/graph/op_rules.cpp) keep one output
// per thread; a flattened-rows contraction (a shared matrix's gradient) runs its whole reduction in each thread.
void gpuMatMul(const Node& node, LoweredEntry& lowered, LoweredNode& funcs) {
  Func out = funcs.func, acc = funcs.helpers[0];
  Var n = dimVars()[0], m = dimVars()[1];
  Var no("no"), mo("mo"), ni("ni"), mi("mi"), nt("nt"), mt("mt"), nr("nr"), mr("mr");
  bool flat_rows = node.op == Op::MatMul && (node.shape.size() > 2 || funcs.reductions[0].dimensions() > 1);
  if (node.op == Op::BatchMatMul || flat_rows) {
    out.compute_root().gpu_tile(n, m, no, mo, ni, mi, kTile2d, kTile2d, Halide::TailStrategy::GuardWithIf);
    if (node.shape.size() > 2) out.gpu_blocks(fuseBatchEntries(out, node.shape.size()));
    acc.compute_at(out, ni);
    return;
  }
  using Halide::TailStrategy;
  out.compute_root()
      .tile(n, m, no, mo, ni, mi, kGemmBlock, kGemmBlock, TailStrategy::GuardWithIf)
      .tile(ni, mi, nt, mt, nr, mr, kGemmRegisters, kGemmRegisters)
      .reorder(nr, mr, nt, mt, no, mo)
      .gpu_blocks(no, mo)
      .gpu_threads(nt, mt)
      .unroll(nr)
      .unroll(mr);
  auto fullTiles = [](const Dim& dim) { return !dim.isSymbolic() && dim.extent % kGemmBlock == 0; };
  bool in_registers = fullTiles(node.shape.back()) && fullTiles(node.shape[node.shape.size() - 2]);
  acc.compute_at(out, no)
      .store_in(in_registers ? Halide::MemoryType::Register : Halide::MemoryType::GPUShared)
      .tile(n, m, nt, mt, nr, mr, kGemmRegisters, kGemmRegisters, TailStrategy::GuardWithIf)
      .reorder(nr, mr, nt, mt)
      .gpu_threads(nt, mt)
      .unroll(nr)
      .unroll(mr);
  Halide::RVar k(funcs.reductions[0].x), ko("ko"), ki("ki");
  acc.update()
      .split(k, ko, ki, kGemmDepth, TailStrategy::GuardWithIf)
      .tile(n, m, nt, mt, nr, mr, kGemmRegisters, kGemmRegisters, TailStrategy::GuardWithIf)
      .reorder(nr, mr, ki, nt, mt, ko)
      .gpu_threads(nt, mt)
      .unroll(nr)
      .unroll(mr);
  stageInSharedMemory(lowered.nodes.at(node.inputs[0]).func.in(acc), acc, ko);
  stageInSharedMemory(funcs.helpers[1], acc, ko);  // B, packed as (n, k)
}

}  // namespace

void scheduleEntryForGpu(const Graph& graph, LoweredEntry& lowered) {
  Uses uses = countUses(graph, lowered);
  std::set<std::string> scheduled;  // Funcs given a GPU schedule
  for (auto& [id, node_funcs] : lowered.nodes) {
    if (isArgument(lowered, id)) continue;
    const Node& node = graph.node(id);
    bool store = false;
    switch (opInfo(node.op).family) {
      case OpFamily::Leaf: break;
      case OpFamily::Elementwise: store = elementwiseAtRoot(uses, id); break;
      case OpFamily::Layout: store = materializedLayout(uses, id); break;
      case OpFamily::MatMul:
        gpuMatMul(node, lowered, node_funcs);
        scheduled.insert(node_funcs.func.name());
        continue;
      case OpFamily::Conv:
      case OpFamily::Reduce:
      case OpFamily::Loss:
        if (node.op == Op::SumTo && node_funcs.reductions.empty()) break;  // a copy, inlined
        for (Func helper : node_funcs.helpers) gpuRootReduction(helper);
        store = true;
        break;
    }
    if (!store) continue;
    gpuRootReduction(node_funcs.func);
    scheduled.insert(node_funcs.func.name());
  }
  for (Func out : lowered.outputs)
    if (!scheduled.count(out.name())) gpuRoot(out);
}

}  // namespace nnc
