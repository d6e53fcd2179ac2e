// Graph-level reverse-mode autodiff: appends the backward pass to a Graph as ordinary nodes.
#pragma once

#include <vector>

#include "compiler/graph/graph.h"

namespace nnc {

// Appends nodes computing d`loss`/d`wrt[i]` for each i and returns their ids (same order as `wrt`).
// `loss` must be a scalar. A node in `wrt` that the loss does not depend on gets a zero gradient.
//
// Algorithm:
//   1. Mark the nodes on a path from some `wrt` node to `loss` (only they need adjoints).
//   2. Seed adj[loss] = 1 and visit nodes from `loss` down in reverse topological order (ids descend).
//   3. For each visited node with an adjoint, ask its op's VJP rule for one adjoint per input; sum a
//      contribution that was broadcast back to the input's shape (sum_to), then accumulate it into adj[input]
//      (fan-out, e.g. a weight used twice, adds up).
std::vector<NodeId> differentiate(Graph& graph, NodeId loss, const std::vector<NodeId>& wrt);

}  // namespace nnc
