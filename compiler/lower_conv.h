// Lowering and CPU schedule of the convolution and pooling ops (compiler/lower_conv.cpp).
#pragma once

#include "compiler/lower.h"

namespace nnc {

// THE ALGORITHM of a Conv-family node, into `lowered` (whose func is already named).
void lowerConvFamily(const LoweringContext& ctx, const Node& node, LoweredNode& lowered);

// Whether `node` is a pool (or max-pool gradient) whose windows tile input 0: each element read at most once.
bool windowTilesInput(const Node& node);

// THE SCHEDULE of a lowered Conv-family node. `inline_if_pure`: the node has one elementwise or reducing consumer,
// so a pooling gradient with a pure definition (tiling windows) is left to be inlined into it.
void scheduleConvFamily(const Graph& graph, const Node& node, LoweredNode& lowered, const VectorUnit& unit,
                        bool inline_if_pure);

}  // namespace nnc
