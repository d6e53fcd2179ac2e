// Test support: runs an entry point of a graph with Halide's JIT, in float64, on row-major host data, scheduled
// and compiled for nnc's host target (compiler/target.h; NNC_HIDE_CPU_FEATURES stands for an older CPU).
// It runs as trainers do: as a plan of kernels over one arena (compiler/plan/plan.h), or as one pipeline.
#pragma once

#include <Halide.h>

#include <map>
#include <vector>

#include "compiler/lower/lower.h"
#include "compiler/plan/plan.h"

namespace nnc::testing {

// Row-major shape with symbolic dimensions replaced by `batch`.
std::vector<int> concrete(const Shape& shape, int batch);
size_t elementCount(const Shape& shape, int batch);

// How an entry point runs: as one pipeline, or as the plan of kernels nnc build compiles. The default is
// NNC_TEST_EXECUTOR from the environment ("pipeline" or "plan"), else the plan.
enum class Executor { Pipeline, Plan };
Executor defaultExecutor();

class JitEntry {
 public:
  // Floats are computed in `float_type` (float64 for gradient checks, float32 as trainers run).
  JitEntry(const Graph& graph, const EntryPoint& entry, int batch, const ScheduleOptions& schedule = {},
           Halide::Type float_type = Halide::Float(64), Executor executor = defaultExecutor());
  // Sets a float leaf argument (Input, Param or State) from row-major data.
  void set(NodeId leaf, const std::vector<double>& values);
  // Sets an integer Input (labels).
  void setLabels(NodeId leaf, const std::vector<int32_t>& labels);
  void setScalar(NodeId leaf, double value);
  void setIntScalar(NodeId leaf, int32_t value);  // an i32 Scalar (the dropout seed)
  // Runs the pipeline or the plan's calls in order; returns each output, row-major.
  std::vector<std::vector<double>> run();

 private:
  struct Kernel {
    std::vector<NodeId> arguments;  // the nodes it was lowered for; calls of an identical group pass others
    LoweredEntry lowered;
    Halide::Pipeline pipeline;
  };

  const Graph& graph_;
  EntryPoint entry_;
  int batch_;
  Halide::Type float_type_;
  EntryPlan plan_;  // one call of the whole entry point as one pipeline
  std::vector<Kernel> kernels_;
  std::map<NodeId, Halide::Buffer<>> buffers_;  // leaves set so far
  std::map<NodeId, double> scalars_;
  std::map<NodeId, int32_t> int_scalars_;
};

}  // namespace nnc::testing
