// Lowering and CPU schedule of the convolution and pooling ops (compiler/lower/lower_conv.cpp).
#pragma once

#include <map>
#include <optional>
#include <vector>

#include "compiler/lower/lower.h"

namespace nnc {

// THE ALGORITHM of a Conv-family node, into `lowered` (whose func is already named). `sums_bias`:
// conv2d_grad_weight only, it also computes a bias gradient (biasGradientsInWeightGradients).
void lowerConvFamily(const LoweringContext& ctx, const Node& node, LoweredNode& lowered, bool sums_bias = false);

// Bias gradients computed by weight gradients: the sum_to of a conv2d_grad_weight's dy to [O, 1, 1] (the
// gradient of a bias added to the convolution) is one more tap of the weight gradient's register tiles, a
// column of ones beside the kernel's, so dy is read once for both. Maps each such sum_to among the `needed` nodes
// to its conv2d_grad_weight, when that one is needed too and its tiles have a register for the extra sums.
std::map<NodeId, NodeId> biasGradientsInWeightGradients(const Graph& graph, const std::vector<bool>& needed,
                                                        const VectorUnit& unit);
// THE ALGORITHM of a sum_to so mapped: the bias column of `grad_weight`, lowered with `sums_bias`.
void lowerBiasGradient(const LoweringContext& ctx, const Node& sum_to, NodeId grad_weight, LoweredNode& lowered);

// Whether `node` is a pool (or max-pool gradient) whose windows tile input 0: each element read at most once.
bool windowTilesInput(const Node& node);

// Whether `node` reads its input `k` only through a copy that its schedule computes at root, each element once
// (a zero-bordered input, conv2d_grad_weight's dy stored channels innermost), so that an elementwise producer
// read by nothing else can be inlined into the copy.
bool readsThroughCopy(const Node& node, size_t k);

// Whether `node` sums windows into each result point (conv2d, conv2d_grad_input), in register tiles.
bool isWindowSums(const Node& node);

// THE SCHEDULE of a lowered Conv-family node. `inline_if_pure`: the node has one consumer that reads each element
// once (elementwise of the same shape, a sum or maximum, a layout op materialized for a product), so a pool or a
// pooling gradient with a pure definition (tiling windows) is left to be inlined into it. `epilogue` (window sums
// only): the Func of the elementwise consumer, of the same shape, that stores the register tiles instead of the
// node's own func (then inlined).
void scheduleConvFamily(const Graph& graph, const Node& node, LoweredNode& lowered, const VectorUnit& unit,
                        bool inline_if_pure, std::optional<Halide::Func> epilogue = std::nullopt);

}  // namespace nnc
