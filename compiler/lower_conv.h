// Lowering and CPU schedule of the convolution and pooling ops (compiler/lower_conv.cpp).
#pragma once

#include "compiler/lower.h"

namespace nnc {

// THE ALGORITHM of a Conv-family node, into `lowered` (whose func is already named).
void lowerConvFamily(const LoweringContext& ctx, const Node& node, LoweredNode& lowered);

// THE SCHEDULE of a lowered Conv-family node.
void scheduleConvFamily(const Graph& graph, const Node& node, LoweredNode& lowered, const VectorUnit& unit);

}  // namespace nnc
