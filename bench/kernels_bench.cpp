// Google Benchmark suite of the kernels nnc generates for the examples, each beside a reference:
//
//   entry/MODEL/ENTRY/POLICY     a whole entry point (predict = forward, grads = forward + backward, train_step
//                                = the fused step with the optimizer update) scheduled by nnc (`manual`) and
//                                unscheduled (`naive`: every node at root, one thread, no vectors)
//   matmul/MxNxK/FORM/IMPL       every distinct matrix product of the examples' train_step and predict (forward
//                                and both backward products; FORM nn, tn or nt says which operand is transposed)
//                                by nnc, naive, and OpenBLAS's cblas_sgemm, the practical bound
//                                (a product over flattened rows, examples/vit.nn's token projections, as its 2-D GEMM)
//   OP/SHAPES/POLICY             every distinct convolution, convolution gradient and pooling node, nnc vs naive
//   batch_matmul/SHAPES/FORM/POLICY  every distinct per-entry product (examples/vit.nn's attention), nnc vs naive
//   gather_grad/SHAPES/POLICY    every distinct embedding-table gradient (examples/charlm.nn's scatter-add), nnc vs naive
//   attention_scores/MODEL/PASS/FORM  attention's probabilities softmax(q @ transpose(k) / sqrt(d) [+ causal_mask])
//                                of examples/vit.nn and examples/charlm.nn (forward; backward: the gradients of q and
//                                k from the probabilities' gradient, the forward recomputed) as nnc lowers and fuses
//                                the chain (`fused`) and as an eager framework runs it, every node its own kernel
//                                over buffers in memory (`unfused`, each kernel scheduled by nnc)
//
// Kernels are JIT-compiled with the same lowering and schedule `nnc build` uses (float32, host target), on
// first use, so `--benchmark_filter` also limits the compile time. Counters: FLOP/s (the op table's FLOP
// counts: a multiply-add is 2) and bytes/s (the arguments and results each call must read and write once).
// The batch is each model's training batch (predict: 256). `--threads N` (default 1) sizes the trainers' thread pool
// (runtime/thread_pool.h) and OpenBLAS's; every other flag is Google Benchmark's.
#include <benchmark/benchmark.h>
#include <cblas.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <random>
#include <set>

#include "compiler/autodiff/autodiff.h"
#include "compiler/compilation.h"
#include "compiler/lower/lower.h"
#include "runtime/block_cache.h"
#include "runtime/thread_pool.h"

extern "C" void openblas_set_num_threads(int threads);

namespace nnc {
namespace {

Halide::Buffer<> randomBuffer(const Node& leaf, int batch, std::mt19937& rng) {
  std::vector<int> extents = halideExtents(leaf.shape, batch);
  if (leaf.dtype == DType::I32) {  // labels: class indices below the smallest class count of the examples
    Halide::Buffer<int32_t> labels(extents);
    labels.for_each_value([&](int32_t& v) { v = static_cast<int32_t>(rng() % 2); });
    return labels;
  }
  std::uniform_real_distribution<float> uniform(-1, 1);
  Halide::Buffer<float> values(extents);
  values.for_each_value([&](float& v) { v = uniform(rng); });
  return values;
}

int64_t bytesOf(const Node& node, int batch) { return elementCount(node.shape, batch) * 4; }

// An entry point of `graph`, lowered with `policy`, JIT-compiled, with random arguments and allocated results.
class JitKernel {
 public:
  JitKernel(const Graph& graph, const EntryPoint& entry, SchedulePolicy policy, int batch) {
    lowered_ = lowerEntry(graph, entry, Halide::Float(32), hostTarget(), {policy, batch});
    pipeline_ = lowered_.pipeline();
    // The trainer's allocator, so a call does not page-fault fresh buffers (runtime/block_cache.h).
    pipeline_.jit_handlers().custom_malloc = [](Halide::JITUserContext*, size_t size) {
      return rt::cachedMalloc(nullptr, size);
    };
    pipeline_.jit_handlers().custom_free = [](Halide::JITUserContext*, void* p) { rt::cachedFree(nullptr, p); };
    // And the trainer's thread pool (runtime/thread_pool.h); the JIT context stands in for the user context.
    pipeline_.jit_handlers().custom_do_par_for = [](Halide::JITUserContext* context,
                                                    int (*task)(Halide::JITUserContext*, int, uint8_t*), int min,
                                                    int size, uint8_t* closure) {
      return rt::parallelFor(context, reinterpret_cast<rt::ParallelTask>(task), min, size, closure);
    };
    pipeline_.compile_jit(lowered_.target);
    std::mt19937 rng(7);
    for (auto& [id, image] : lowered_.images) {
      Halide::Buffer<> buffer = randomBuffer(graph.node(id), batch, rng);
      image.set(buffer);
      bytes_ += bytesOf(graph.node(id), batch);
    }
    for (auto& [id, scalar] : lowered_.scalars) {
      if (scalar.type().is_float()) scalar.set(0.01f);
      else scalar.set(1);
    }
    for (NodeId id : entry.outputs) {
      outputs_.push_back(Halide::Buffer<float>(halideExtents(graph.node(id).shape, batch)));
      bytes_ += bytesOf(graph.node(id), batch);
    }
    for (const auto& [id, _] : lowered_.nodes) flops_ += nnc::flops(graph, id, batch);
  }
  void run() {
    Halide::Realization realization(outputs_);
    pipeline_.realize(realization);
  }
  // Reads argument `leaf` from `buffer` (another kernel's result) instead of its random values.
  void bind(NodeId leaf, const Halide::Buffer<>& buffer) { lowered_.images.at(leaf).set(buffer); }
  const Halide::Buffer<>& output(size_t i) const { return outputs_[i]; }
  double flops() const { return flops_; }
  double bytes() const { return static_cast<double>(bytes_); }

 private:
  LoweredEntry lowered_;
  Halide::Pipeline pipeline_;
  std::vector<Halide::Buffer<>> outputs_;
  double flops_ = 0;
  int64_t bytes_ = 0;
};

void setCounters(benchmark::State& state, double flops, double bytes) {
  using benchmark::Counter;
  state.counters["FLOP/s"] = Counter(flops, Counter::kIsIterationInvariantRate, Counter::kIs1000);
  state.counters["bytes/s"] = Counter(bytes, Counter::kIsIterationInvariantRate, Counter::kIs1024);
}

// Registers a benchmark of a JIT kernel (or of EagerKernels) that is built (once) when the benchmark first runs.
template <typename Make>  // () -> std::unique_ptr<Kernel>
void registerJit(const std::string& name, const std::string& label, Make make) {
  using Kernel = typename decltype(make())::element_type;
  auto kernel = std::make_shared<std::unique_ptr<Kernel>>();
  benchmark::RegisterBenchmark(name.c_str(), [kernel, make, label](benchmark::State& state) {
    if (!*kernel) *kernel = make();
    Kernel& k = **kernel;
    for (int i = 0; i < 3; ++i) k.run();  // warm-up: the allocator's free list, caches
    for (auto _ : state) k.run();
    setCounters(state, k.flops(), k.bytes());
    state.SetLabel(label);
  })->UseRealTime();
}

// A graph of one node: `node` of `source` applied to leaves of its inputs' shapes.
struct SingleNode {
  Graph graph;
  EntryPoint entry;
};

std::shared_ptr<SingleNode> isolate(const Graph& source, NodeId id) {
  auto single = std::make_shared<SingleNode>();
  Graph& g = single->graph;
  const Node& node = source.node(id);
  std::vector<NodeId> leaves;
  for (NodeId input : node.inputs) {
    Node leaf;
    leaf.shape = source.node(input).shape;
    leaf.dtype = source.node(input).dtype;
    leaf.name = "in" + std::to_string(leaves.size());
    bool batched = false;
    for (const Dim& d : leaf.shape) batched |= d.isSymbolic();
    leaf.op = batched ? Op::Input : Op::Param;
    leaves.push_back(g.addLeaf(std::move(leaf)));
  }
  NodeId out = g.add(node.op, leaves, node.attrs);
  single->entry = EntryPoint{opInfo(node.op).name, leaves, {out}, {"out"}};
  return single;
}

// An entry point run as an eager framework runs it: every node its own kernel (scheduled by nnc's policy), in
// order, each reading its inputs from the buffers earlier kernels wrote. Nodes that depend on no argument
// (constants: a scale, a mask) are computed once, before the runs.
class EagerKernels {
 public:
  EagerKernels(const Graph& graph, const EntryPoint& entry, int batch) {
    std::vector<bool> needed = ancestors(graph, entry.outputs), variable(graph.nodes.size(), false);
    std::map<NodeId, Halide::Buffer<>> values;
    std::mt19937 rng(7);
    for (NodeId argument : entry.arguments) {
      values[argument] = randomBuffer(graph.node(argument), batch, rng);
      variable[argument] = true;
      bytes_ += bytesOf(graph.node(argument), batch);
    }
    for (NodeId id = 0; id < static_cast<NodeId>(graph.nodes.size()); ++id) {
      if (!needed[id] || values.count(id)) continue;
      std::shared_ptr<SingleNode> single = isolate(graph, id);
      auto kernel = std::make_unique<JitKernel>(single->graph, single->entry, SchedulePolicy::Manual, batch);
      const Node& node = graph.node(id);
      for (size_t i = 0; i < node.inputs.size(); ++i) {
        kernel->bind(single->entry.arguments[i], values.at(node.inputs[i]));
        variable[id] = variable[id] || variable[node.inputs[i]];
      }
      kernel->run();
      values[id] = kernel->output(0);
      if (!variable[id]) continue;
      flops_ += nnc::flops(graph, id, batch);
      steps_.push_back(std::move(kernel));
    }
    for (NodeId out : entry.outputs) bytes_ += bytesOf(graph.node(out), batch);
  }
  void run() {
    for (const std::unique_ptr<JitKernel>& step : steps_) step->run();
  }
  double flops() const { return flops_; }
  double bytes() const { return static_cast<double>(bytes_); }

 private:
  std::vector<std::unique_ptr<JitKernel>> steps_;
  double flops_ = 0;
  int64_t bytes_ = 0;
};

// Attention's probabilities, softmax(q @ transpose(k) / sqrt(width) [+ causal_mask(tokens)]) over [B, heads,
// tokens, width] queries and keys, as the examples write them; `backward` also takes the probabilities' gradient
// and returns those of q and k.
struct ScoresChain {
  Graph graph;
  EntryPoint forward, backward;
};

std::shared_ptr<ScoresChain> scoresChain(int64_t heads, int64_t tokens, int64_t width, bool causal) {
  auto chain = std::make_shared<ScoresChain>();
  Graph& g = chain->graph;
  auto input = [&](const char* name, int64_t last) {
    Node leaf;
    leaf.op = Op::Input;
    leaf.name = name;
    leaf.shape = {Dim{1, "B"}, Dim{heads, {}}, Dim{tokens, {}}, Dim{last, {}}};
    return g.addLeaf(std::move(leaf));
  };
  NodeId q = input("q", width), k = input("k", width), grad_probs = input("grad_probs", tokens);
  Attrs transposed;
  transposed.transpose_b = true;
  NodeId scores = g.add(Op::Mul, {g.add(Op::BatchMatMul, {q, k}, transposed), g.fill(1 / std::sqrt(double(width)), {})});
  if (causal) {
    Attrs mask;
    mask.shape = {Dim{tokens, {}}, Dim{tokens, {}}};
    scores = g.add(Op::Add, {scores, g.add(Op::CausalMask, {}, mask)});
  }
  Attrs rows, all;
  rows.axes = {3};
  all.axes = {0, 1, 2, 3};
  NodeId probs = g.add(Op::Softmax, {scores}, rows);
  NodeId loss = g.add(Op::Sum, {g.add(Op::Mul, {probs, grad_probs})}, all);  // its gradient is grad_probs
  std::vector<NodeId> grads = differentiate(g, loss, {q, k});
  chain->forward = EntryPoint{"forward", {q, k}, {probs}, {"probs"}, {}};
  chain->backward = EntryPoint{"backward", {q, k, grad_probs}, {grads[0], grads[1]}, {"grad_q", "grad_k"}, {}};
  return chain;
}

void registerAttentionScores() {
  struct Case {
    const char* model;
    int batch;
    int64_t heads, tokens, width;
    bool causal;
  };
  for (const Case& c : {Case{"vit", 64, 4, 16, 32, false}, Case{"charlm", 32, 4, 64, 16, true}}) {
    std::shared_ptr<ScoresChain> chain = scoresChain(c.heads, c.tokens, c.width, c.causal);
    std::string label = std::string(c.model) + ": batch " + std::to_string(c.batch) + ", " + std::to_string(c.heads) +
                        " heads, " + std::to_string(c.tokens) + " tokens of " + std::to_string(c.width);
    for (const EntryPoint* entry : {&chain->forward, &chain->backward}) {
      std::string base = std::string("attention_scores/") + c.model + "/" + entry->name;
      int batch = c.batch;
      registerJit(base + "/fused", label, [chain, entry, batch] {
        return std::make_unique<JitKernel>(chain->graph, *entry, SchedulePolicy::Manual, batch);
      });
      registerJit(base + "/unfused", label, [chain, entry, batch] {
        return std::make_unique<EagerKernels>(chain->graph, *entry, batch);
      });
    }
  }
}

std::string shapeText(const Shape& shape, int batch) {
  std::string text;
  for (int extent : halideExtents(shape, batch)) text = std::to_string(extent) + (text.empty() ? "" : "x") + text;
  return text;
}

// One matrix product of the examples: C[M, N] = op(A) op(B), op a transpose where the form says so.
struct GemmShape {
  int m, n, k;
  bool ta, tb;
  auto operator<=>(const GemmShape&) const = default;
};

void registerOpenBlas(const std::string& name, const std::string& label, GemmShape s) {
  benchmark::RegisterBenchmark(name.c_str(), [s, label](benchmark::State& state) {
    std::mt19937 rng(7);
    std::uniform_real_distribution<float> uniform(-1, 1);
    std::vector<float> a(static_cast<size_t>(s.m) * s.k), b(static_cast<size_t>(s.k) * s.n), c(static_cast<size_t>(s.m) * s.n);
    for (float& v : a) v = uniform(rng);
    for (float& v : b) v = uniform(rng);
    for (auto _ : state) {
      cblas_sgemm(CblasRowMajor, s.ta ? CblasTrans : CblasNoTrans, s.tb ? CblasTrans : CblasNoTrans, s.m, s.n, s.k, 1.0f,
                  a.data(), s.ta ? s.m : s.k, b.data(), s.tb ? s.k : s.n, 0.0f, c.data(), s.n);
      benchmark::DoNotOptimize(c.data());
    }
    setCounters(state, 2.0 * s.m * s.n * s.k, 4.0 * (a.size() + b.size() + c.size()));
    state.SetLabel(label);
  })->UseRealTime();
}

// What a node computes, for the benchmark's label: the parameter it multiplies ("fc1.weight"), or for a backward
// node the parameter of the forward node it differentiates ("fc1.weight, backward").
std::string describe(const Graph& g, NodeId id) {
  auto paramOf = [&](NodeId n) -> std::string {
    for (NodeId in : g.node(n).inputs)
      if (g.node(in).op == Op::Param) return g.node(in).name;
    return g.node(n).name;
  };
  std::string own = paramOf(id);
  if (!own.empty() && id < g.forwardEnd()) return own;
  NodeId origin = g.node(id).origin;
  if (origin != kNoNode && !paramOf(origin).empty()) return paramOf(origin) + ", backward";
  return own.empty() ? "node " + std::to_string(id) : own;
}

// Keeps every parsed program alive for the lazily built kernels.
std::vector<std::unique_ptr<Program>> programs;

void registerModel(const std::filesystem::path& path, std::set<std::string>& seen) {
  std::unique_ptr<Compilation> c = compileFrontEnd(dsl::SourceFile::read(path.string()));
  if (c->diags->hasErrors()) throw std::runtime_error(c->diags->render());
  programs.push_back(std::make_unique<Program>(buildProgram(std::move(*c->graph), c->checked->train)));
  const Program& program = *programs.back();
  std::string model = path.stem().string();
  int batch = static_cast<int>(program.train.batch);
  for (const EntryPoint* entry : {&program.predict, &program.grads_entry, &program.train_step}) {
    int entry_batch = entry == &program.predict ? 256 : batch;
    for (SchedulePolicy policy : {SchedulePolicy::Manual, SchedulePolicy::Naive})
      registerJit("entry/" + model + "/" + entry->name + "/" + schedulePolicyName(policy),
                  "batch " + std::to_string(entry_batch),
                  [&program, entry, policy, entry_batch] {
                    return std::make_unique<JitKernel>(program.graph, *entry, policy, entry_batch);
                  });
  }
  const Graph& g = program.graph;
  for (NodeId id = 0; id < static_cast<NodeId>(g.nodes.size()); ++id) {
    const Node& node = g.node(id);
    OpFamily family = opInfo(node.op).family;
    if (family != OpFamily::MatMul && family != OpFamily::Conv && node.op != Op::GatherGrad) continue;
    std::string label = model + ": " + describe(g, id);
    std::string base;
    if (node.op == Op::MatMul) {  // a product over flattened rows as the 2-D GEMM it is
      const Shape& a = g.node(node.inputs[0]).shape;
      auto rows = [&](const Shape& shape) {  // all but the last dimension, flattened
        return static_cast<int>(elementCount(Shape(shape.begin(), shape.end() - 1), batch));
      };
      auto columns = [&](const Shape& shape) { return static_cast<int>(elementCount({shape.back()}, batch)); };
      bool ta = node.attrs.transpose_a;
      GemmShape s{ta ? columns(a) : rows(node.shape), columns(node.shape), ta ? rows(a) : columns(a), ta,
                  node.attrs.transpose_b};
      if (s.ta && s.tb) continue;
      base = "matmul/" + std::to_string(s.m) + "x" + std::to_string(s.n) + "x" + std::to_string(s.k) + "/" +
             (s.ta ? "tn" : s.tb ? "nt" : "nn");
      if (!seen.insert(base).second) continue;
      registerOpenBlas(base + "/openblas", label, s);
    } else {  // batch_matmul (attention's per-entry products), convolutions, pools, scatters: nnc against naive
      base = std::string(opInfo(node.op).name) + "/";
      for (NodeId input : node.inputs) base += (input == node.inputs[0] ? "" : ",") + shapeText(g.node(input).shape, batch);
      if (node.op == Op::BatchMatMul) base += node.attrs.transpose_a ? "/tn" : node.attrs.transpose_b ? "/nt" : "/nn";
      if (!seen.insert(base).second) continue;
    }
    std::shared_ptr<SingleNode> single = isolate(g, id);
    for (SchedulePolicy policy : {SchedulePolicy::Manual, SchedulePolicy::Naive})
      registerJit(base + "/" + schedulePolicyName(policy), label, [single, policy, batch] {
        return std::make_unique<JitKernel>(single->graph, single->entry, policy, batch);
      });
  }
}

}  // namespace
}  // namespace nnc

int main(int argc, char** argv) {
  int threads = 1;
  std::vector<char*> args;
  for (int i = 0; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--threads" && i + 1 < argc) threads = std::atoi(argv[++i]);
    else if (arg.rfind("--threads=", 0) == 0) threads = std::atoi(arg.c_str() + 10);
    else args.push_back(argv[i]);
  }
  if (threads < 1) {
    std::fprintf(stderr, "%s: --threads takes a positive count\n", argv[0]);
    return 1;
  }
  nnc::rt::setKernelThreads(threads);
  openblas_set_num_threads(threads);
  std::set<std::string> seen;
  for (const char* model : {"mlp", "lenet5", "cnn_bn", "mlp_bn_dropout", "softmax_regression", "vit", "charlm"})
    nnc::registerModel(std::filesystem::path(NNC_SOURCE_DIR) / "examples" / (std::string(model) + ".nn"), seen);
  nnc::registerAttentionScores();
  int count = static_cast<int>(args.size());
  benchmark::Initialize(&count, args.data());
  if (benchmark::ReportUnrecognizedArguments(count, args.data())) return 1;
  benchmark::AddCustomContext("threads", std::to_string(threads));
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
