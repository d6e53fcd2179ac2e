// Rules of the reduction, layout and regression-loss ops (compiler/graph/op_rules_reduce.cpp); op_rules.cpp's
// switches over every op delegate these ops here.
#pragma once

#include "compiler/graph/graph.h"

namespace nnc {

// `shape` with `axes` removed, or kept as 1 with `keepdims`.
Shape reducedShape(const Shape& shape, const std::vector<int64_t>& axes, bool keepdims);

ShapeResult reduceFamilyShape(const Graph& graph, Op op, const std::vector<NodeId>& inputs, const Attrs& attrs);
double reduceFamilyFlops(const Graph& graph, NodeId node, int64_t batch);
std::vector<NodeId> reduceFamilyVjp(Graph& graph, NodeId node, NodeId grad, const std::vector<bool>& wanted);

}  // namespace nnc
