// Deterministic text form of the graph IR, for `nnc graph` and golden tests.
//
//   %5 = matmul(%0, %3) {transpose_b} : f32[B, 256]  # fc1
#pragma once

#include <string>

#include "compiler/graph/program.h"

namespace nnc {

// What a node's printed comment says: a forward node's binding name; for a backward node the forward node whose
// VJP created it ("backward of %12 relu (h)"), for an update node its parameter ("update of %3 fc1.weight").
std::string nodeNote(const Graph& graph, NodeId id);
// Prints nodes [first, last) of `graph`, one per line.
std::string printNodes(const Graph& graph, NodeId first, NodeId last);
// The forward graph: inputs, parameters and everything the loss and the output need, then the entry values.
std::string printForwardGraph(const Graph& graph);
// The backward and update part of a program: every node autodiff and the optimizer appended, then the entry points.
std::string printBackwardGraph(const Program& program);

// Graphviz DOT of the forward graph, and with `backward` of the backward pass and the update too, in three
// clusters; every node shows its id, op, attributes, type and what nodeNote says. `dot -Tsvg` renders it.
std::string printDot(const Program& program, bool backward);

}  // namespace nnc
