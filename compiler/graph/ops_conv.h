// Rules of the convolution and pooling ops (NCHW): attribute checks, shapes, VJPs and FLOP
// counts. op_rules.cpp dispatches to these from its switches; the lowering is in lower_conv.cpp.
#pragma once

#include <string>
#include <vector>

#include "compiler/graph/graph.h"

namespace nnc {

// The user-facing complaint about `op`'s attributes (kernel, stride, dilation >= 1; padding >= 0, and for pooling
// at most half the kernel as PyTorch requires), or "" when they are valid.
std::string convAttrsError(Op op, const Attrs& attrs);

// The output extent of a window of `kernel` taps at `dilation`, moved by `stride` over `size` + 2 `padding`:
// (size + 2 padding - dilation (kernel - 1) - 1) / stride + 1; 0 or less when no window fits.
int64_t convOutputSize(int64_t size, int64_t kernel, int64_t stride, int64_t padding, int64_t dilation);

ShapeResult convShape(const Graph& graph, Op op, const std::vector<NodeId>& inputs, const Attrs& attrs);
std::vector<NodeId> convVjp(Graph& graph, NodeId node, NodeId grad, const std::vector<bool>& wanted);
double convFlops(const Graph& graph, NodeId node, int64_t batch);

}  // namespace nnc
