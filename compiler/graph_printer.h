// Deterministic text form of the graph IR, for `nnc graph` and golden tests.
//
//   %5 = matmul(%0, %3) {transpose_b} : f32[B, 256]  # fc1
#pragma once

#include <string>

#include "compiler/program.h"

namespace nnc {

// Prints nodes [first, last) of `graph`, one per line.
std::string printNodes(const Graph& graph, NodeId first, NodeId last);
// The forward graph: inputs, parameters and everything the loss and the output need, then the entry values.
std::string printForwardGraph(const Graph& graph);
// The backward and update part of a program: every node autodiff and the optimizer appended, then the entry points.
std::string printBackwardGraph(const Program& program);

}  // namespace nnc
