// Lowering and CPU schedule of the convolution and pooling ops (compiler/lower_conv.cpp).
#pragma once

#include <optional>

#include "compiler/lower.h"

namespace nnc {

// THE ALGORITHM of a Conv-family node, into `lowered` (whose func is already named).
void lowerConvFamily(const LoweringContext& ctx, const Node& node, LoweredNode& lowered);

// Whether `node` is a pool (or max-pool gradient) whose windows tile input 0: each element read at most once.
bool windowTilesInput(const Node& node);

// Whether `node` sums windows into each result point (conv2d, conv2d_grad_input), in register tiles.
bool isWindowSums(const Node& node);

// THE SCHEDULE of a lowered Conv-family node. `inline_if_pure`: the node has one elementwise or reducing consumer,
// so a pooling gradient with a pure definition (tiling windows) is left to be inlined into it. `epilogue`: window
// sums only: the Func of the elementwise consumer, of the same shape, that stores the register tiles instead of
// the node's own func (which is then inlined into it).
void scheduleConvFamily(const Graph& graph, const Node& node, LoweredNode& lowered, const VectorUnit& unit,
                        bool inline_if_pure, std::optional<Halide::Func> epilogue = std::nullopt);

}  // namespace nnc
