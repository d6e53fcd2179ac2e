// The VJP and FLOP rules of the elementwise math and activation ops (exp ... softplus, stop_gradient and their
// backward-only helpers), kept apart from compiler/graph/op_rules.cpp, whose switches delegate here.
#pragma once

#include <vector>

#include "compiler/graph/graph.h"

namespace nnc {

// vjp() and flops() (compiler/graph/graph.h) for the ops of op_rules_elementwise.cpp; any other op is an internal error.
std::vector<NodeId> elementwiseVjp(Graph& graph, NodeId node, NodeId grad, const std::vector<bool>& wanted);
double elementwiseFlops(const Graph& graph, NodeId node, int64_t batch);

}  // namespace nnc
