// Test support: runs an entry point of a graph with Halide's JIT, in float64, on row-major host data, scheduled
// and compiled for nnc's host target (compiler/target.h; NNC_HIDE_CPU_FEATURES stands for an older CPU).
#pragma once

#include <Halide.h>

#include <map>
#include <vector>

#include "compiler/lower.h"

namespace nnc::testing {

// Row-major shape with symbolic dimensions replaced by `batch`.
std::vector<int> concrete(const Shape& shape, int batch);
size_t elementCount(const Shape& shape, int batch);

class JitEntry {
 public:
  // Floats are computed in `float_type` (float64 for gradient checks, float32 as trainers run).
  JitEntry(const Graph& graph, const EntryPoint& entry, int batch, const ScheduleOptions& schedule = {},
           Halide::Type float_type = Halide::Float(64));
  // Sets a float leaf argument (Input, Param or State) from row-major data.
  void set(NodeId leaf, const std::vector<double>& values);
  // Sets an integer Input (labels).
  void setLabels(NodeId leaf, const std::vector<int32_t>& labels);
  void setScalar(NodeId leaf, double value);
  void setIntScalar(NodeId leaf, int32_t value);  // an i32 Scalar (the dropout seed)
  // Runs the pipeline; returns each output, row-major.
  std::vector<std::vector<double>> run();

 private:
  const Graph& graph_;
  EntryPoint entry_;
  int batch_;
  LoweredEntry lowered_;
  Halide::Pipeline pipeline_;
  std::map<NodeId, Halide::Buffer<>> floats_;
  std::map<NodeId, Halide::Buffer<int32_t>> labels_;
};

}  // namespace nnc::testing
