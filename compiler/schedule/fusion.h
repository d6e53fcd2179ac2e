// Which lowered nodes a schedule computes at root and which it fuses into their readers: decisions that follow
// from who reads what, shared by every target family's schedule (schedule/cpu.cpp, schedule/gpu.cpp).
#pragma once

#include <map>
#include <set>

#include "compiler/lower/lower.h"

namespace nnc {

// How many lowered nodes read each node; whether a matmul or a window that reads an element more than
// once (a convolution, overlapping pools) reads it; how many reads are by pools whose windows tile their input.
struct Uses {
  std::map<NodeId, int> count, by_tiling_pool;
  std::map<NodeId, bool> by_matmul, by_window;
  std::set<NodeId> by_kernels;         // a plan kernel's results: other kernels read them
  std::map<NodeId, NodeId> last_user;  // the last node that reads each (its only reader when count is 1)
};

Uses countUses(const Graph& graph, const LoweredEntry& lowered);

// A layout op is computed at root (a copy) when a product reads it or it is a plan kernel's result.
bool materializedLayout(const Uses& uses, NodeId id);

// Whether an elementwise node is computed at root: when it has several consumers (other than pools whose windows
// tile it), or feeds a matmul or a window that rereads it, or is a plan kernel's result.
bool elementwiseAtRoot(const Uses& uses, NodeId id);

bool isOutput(const LoweredEntry& lowered, NodeId id);

// A batched product's entries as one loop: fuses its leading dimensions (Halide dims 2 .. rank - 1 of `out`, a Func
// or one of its specializations) and returns the fused variable, which the schedule then runs in parallel or over
// GPU blocks.
Halide::Var fuseBatchEntries(Halide::Stage out, size_t rank);

}  // namespace nnc
