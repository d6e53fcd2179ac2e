// Convolution and pooling (NCHW): attribute checks, shape rules, VJPs and FLOP counts
//
// Notation, row-major: x [B, C, H, W], weight w [O, C, KH, KW], output y [B, O, OH, OW]; stride S, padding P,
// dilation D per spatial dimension. A read of x outside [0, H) x [0, W) is the padding value (0; -inf for max).
//   conv2d      y[b,o,i,j] = sum_{c,p,q} x[b, c, i S + p D - P, j S + q D - P] w[o,c,p,q]
//   max_pool2d  y[b,c,i,j] = max_{p,q}   x[b, c, i S + p - P, j S + q - P]
//   avg_pool2d  y[b,c,i,j] = sum_{p,q}   x[b, c, i S + p - P, j S + q - P] / (KH KW)   (padding zeros counted)
//   global_avg_pool  y[b,c] = sum_{h,w} x[b,c,h,w] / (H W)
#include "compiler/graph/ops_conv.h"

#include <fmt/format.h>

#include <stdexcept>

namespace nnc {

namespace {

ShapeResult fail(std::string message) { return {{}, DType::F32, std::move(message)}; }

bool isPool(Op op) { return op == Op::MaxPool2d || op == Op::AvgPool2d; }

// An NCHW f32 tensor with fixed channels and spatial size; "" or the complaint.
std::string checkNchw(const Graph& g, Op op, NodeId id, const char* what) {
  const Node& n = g.node(id);
  bool fixed = n.shape.size() == 4 && !n.shape[1].isSymbolic() && !n.shape[2].isSymbolic() &&
               !n.shape[3].isSymbolic();
  if (n.dtype == DType::F32 && fixed) return "";
  return fmt::format("`{}` needs {} f32[batch, channels, height, width] with fixed channels and size, got {} {}",
                     opInfo(op).name, what, dtypeName(n.dtype), shapeToString(n.shape));
}

// The output size along spatial dimension `axis` (0: height, 1: width) of a window op, or the complaint.
std::string windowOutput(Op op, const Shape& x, int axis, int64_t kernel, const Attrs& a, Dim& out) {
  int64_t size = x[2 + axis].extent;
  int64_t n = convOutputSize(size, kernel, a.stride[axis], a.padding[axis], a.dilation[axis]);
  if (n >= 1) {
    out = Dim{n, {}};
    return "";
  }
  return fmt::format("`{}` has no output along the {}: input size {}, kernel {}, stride {}, padding {}, dilation {} "
                     "give an output size of {}",
                     opInfo(op).name, axis == 0 ? "height" : "width", size, kernel, a.stride[axis], a.padding[axis],
                     a.dilation[axis], n);
}

// The window output shape [x0, channels, OH, OW] of x with kernel (kh, kw).
ShapeResult windowShape(Op op, const Shape& x, Dim channels, int64_t kh, int64_t kw, const Attrs& a) {
  Dim oh, ow;
  std::string error = windowOutput(op, x, 0, kh, a, oh);
  if (error.empty()) error = windowOutput(op, x, 1, kw, a, ow);
  if (!error.empty()) return fail(error);
  return {{x[0], channels, oh, ow}, DType::F32, {}};
}

ShapeResult conv2dShape(const Graph& g, const std::vector<NodeId>& in, const Attrs& a) {
  for (const std::string& e : {checkNchw(g, Op::Conv2d, in[0], "an input"), checkNchw(g, Op::Conv2d, in[1], "a weight")})
    if (!e.empty()) return fail(e);
  const Shape& x = g.node(in[0]).shape;
  const Shape& w = g.node(in[1]).shape;
  if (w[0].isSymbolic() || !(w[1] == x[1]))
    return fail(fmt::format("`conv2d` of input {} and weight {}: the weight [out, in, kH, kW] must have {} input "
                            "channels",
                            shapeToString(x), shapeToString(w), shapeToString({x[1]})));
  return windowShape(Op::Conv2d, x, w[0], w[2].extent, w[3].extent, a);
}

// A gradient op's result shape `a.shape` (the forward input's) must produce `dy` through the forward rule.
ShapeResult gradShape(const Graph& g, Op op, Op forward, NodeId dy, Dim channels, int64_t kh, int64_t kw,
                      const Attrs& a) {
  const Shape& x = a.shape;
  if (x.size() != 4) return fail(fmt::format("`{}` needs a 4-D result shape", opInfo(op).name));
  ShapeResult y = windowShape(forward, x, channels, kh, kw, a);
  if (!y.error.empty()) return y;
  if (y.shape != g.node(dy).shape)
    return fail(fmt::format("`{}`: gradient {} does not match the forward output {}", opInfo(op).name,
                            shapeToString(g.node(dy).shape), shapeToString(y.shape)));
  return {x, DType::F32, {}};
}

}  // namespace

int64_t convOutputSize(int64_t size, int64_t kernel, int64_t stride, int64_t padding, int64_t dilation) {
  int64_t span = size + 2 * padding - dilation * (kernel - 1) - 1;
  return span < 0 ? 0 : span / stride + 1;
}

std::string convAttrsError(Op op, const Attrs& a) {
  const char* name = opInfo(op).name;
  for (int axis = 0; axis < 2; ++axis) {
    if (a.kernel[axis] < 1 || a.stride[axis] < 1 || a.dilation[axis] < 1)
      return fmt::format("`{}` needs kernel, stride and dilation of at least 1, got kernel {}, stride {}, dilation {}",
                         name, a.kernel[axis], a.stride[axis], a.dilation[axis]);
    if (a.padding[axis] < 0) return fmt::format("`{}` needs padding >= 0, got {}", name, a.padding[axis]);
    if (isPool(op) && 2 * a.padding[axis] > a.kernel[axis])
      return fmt::format("`{}` needs padding at most half the kernel (as PyTorch), got padding {} for kernel {}",
                         name, a.padding[axis], a.kernel[axis]);
  }
  return "";
}

ShapeResult convShape(const Graph& g, Op op, const std::vector<NodeId>& in, const Attrs& a) {
  if (std::string error = convAttrsError(op, a); !error.empty()) return fail(error);
  switch (op) {
    case Op::Conv2d: return conv2dShape(g, in, a);
    case Op::Conv2dGradInput: {  // (dy, w) -> a.shape
      const Shape& w = g.node(in[1]).shape;
      if (w.size() != 4 || a.shape.size() != 4 || !(a.shape[1] == w[1]))
        return fail("`conv2d_grad_input`: weight and result shape disagree");
      return gradShape(g, op, Op::Conv2d, in[0], w[0], w[2].extent, w[3].extent, a);
    }
    case Op::Conv2dGradWeight: {  // (x, dy) -> [O, C, KH, KW]
      const Shape& x = g.node(in[0]).shape;
      const Shape& dy = g.node(in[1]).shape;
      if (dy.size() != 4 || x.size() != 4) return fail("`conv2d_grad_weight` needs 4-D operands");
      ShapeResult y = windowShape(Op::Conv2d, x, dy[1], a.kernel[0], a.kernel[1], a);
      if (!y.error.empty() || y.shape != dy) return fail("`conv2d_grad_weight`: gradient does not match the input");
      return {{dy[1], x[1], {a.kernel[0], {}}, {a.kernel[1], {}}}, DType::F32, {}};
    }
    case Op::MaxPool2d:
    case Op::AvgPool2d: {
      if (std::string e = checkNchw(g, op, in[0], "an input"); !e.empty()) return fail(e);
      const Shape& x = g.node(in[0]).shape;
      return windowShape(op, x, x[1], a.kernel[0], a.kernel[1], a);
    }
    case Op::MaxPool2dGrad: {  // (x, dy) -> x's shape
      Attrs with_shape = a;
      with_shape.shape = g.node(in[0]).shape;
      return gradShape(g, op, Op::MaxPool2d, in[1], with_shape.shape[1], a.kernel[0], a.kernel[1], with_shape);
    }
    case Op::AvgPool2dGrad:
      if (a.shape.size() != 4) return fail("`avg_pool2d_grad` needs a 4-D result shape");
      return gradShape(g, op, Op::AvgPool2d, in[0], a.shape[1], a.kernel[0], a.kernel[1], a);
    case Op::GlobalAvgPool: {
      if (std::string e = checkNchw(g, op, in[0], "an input"); !e.empty()) return fail(e);
      const Shape& x = g.node(in[0]).shape;
      return {{x[0], x[1]}, DType::F32, {}};
    }
    case Op::GlobalAvgPoolGrad: {
      const Shape& dy = g.node(in[0]).shape;
      if (a.shape.size() != 4 || dy.size() != 2 || !(dy[0] == a.shape[0]) || !(dy[1] == a.shape[1]))
        return fail("`global_avg_pool_grad`: gradient does not match the result shape");
      return {a.shape, DType::F32, {}};
    }
    default: break;
  }
  throw std::logic_error("internal error: convShape called for a non-conv op");
}

// Multiply-adds count 2. Windowed ops count one operation per tap of each window.
double convFlops(const Graph& g, NodeId id, int64_t batch) {
  const Node& node = g.node(id);
  auto elements = [&](NodeId of) { return static_cast<double>(elementCount(g.node(of).shape, batch)); };
  double taps = static_cast<double>(node.attrs.kernel[0] * node.attrs.kernel[1]);
  switch (node.op) {
    // y [B,O,OH,OW]: one multiply-add per (c, p, q): 2 C KH KW per output.
    case Op::Conv2d: {
      const Shape& w = g.node(node.inputs[1]).shape;
      return 2 * elements(id) * static_cast<double>(w[1].extent * w[2].extent * w[3].extent);
    }
    // Both gradients do the forward's multiply-adds again: 2 C KH KW per dy element.
    case Op::Conv2dGradInput: return 2 * elements(node.inputs[0]) * static_cast<double>(node.shape[1].extent) * taps;
    case Op::Conv2dGradWeight: return 2 * elements(node.inputs[1]) * static_cast<double>(node.shape[1].extent) * taps;
    // One compare (max) or add (avg) per tap, and avg's divide.
    case Op::MaxPool2d: return elements(id) * taps;
    case Op::AvgPool2d: return elements(id) * (taps + 1);
    // The window's arg-max again, then one add per routed gradient.
    case Op::MaxPool2dGrad: return elements(node.inputs[1]) * (taps + 1);
    // One divide per dy element, one add per tap it reaches.
    case Op::AvgPool2dGrad: return elements(node.inputs[0]) * (taps + 1);
    case Op::GlobalAvgPool: return elements(node.inputs[0]) + elements(id);
    case Op::GlobalAvgPoolGrad: return elements(id);
    default: break;
  }
  throw std::logic_error("internal error: convFlops called for a non-conv op");
}

std::vector<NodeId> convVjp(Graph& g, NodeId id, NodeId grad, const std::vector<bool>& wanted) {
  const Node node = g.node(id);  // a copy: adding nodes may reallocate g.nodes
  auto add = [&](Op op, std::vector<NodeId> in, Attrs attrs) { return g.add(op, std::move(in), attrs, {}, node.span); };
  NodeId x = node.inputs[0];
  Attrs with_x_shape = node.attrs;
  with_x_shape.shape = g.node(x).shape;
  switch (node.op) {
    // y[b,o,i,j] = sum_{c,p,q} x[b,c,iS+pD-P, jS+qD-P] w[o,c,p,q], so
    //   dx[b,c,h,w] = sum_{o,p,q} dy[b,o,i,j] w[o,c,p,q] over the (i, j) with iS + pD - P = h, jS + qD - P = w
    //                 (a transposed convolution: conv2d_grad_input)
    //   dw[o,c,p,q] = sum_{b,i,j} dy[b,o,i,j] x[b,c,iS+pD-P, jS+qD-P]   (conv2d_grad_weight)
    case Op::Conv2d: {
      NodeId w = node.inputs[1];
      Attrs for_w = node.attrs;
      for_w.kernel[0] = g.node(w).shape[2].extent;
      for_w.kernel[1] = g.node(w).shape[3].extent;
      with_x_shape.kernel[0] = for_w.kernel[0];
      with_x_shape.kernel[1] = for_w.kernel[1];
      return {wanted[0] ? add(Op::Conv2dGradInput, {grad, w}, with_x_shape) : kNoNode,
              wanted[1] ? add(Op::Conv2dGradWeight, {x, grad}, for_w) : kNoNode};
    }
    // dx[h,w] = sum of dy over the windows whose arg-max (first maximum in row-major window order) is (h, w)
    case Op::MaxPool2d: return {add(Op::MaxPool2dGrad, {x, grad}, node.attrs)};
    // dx[h,w] = sum of dy[i,j] / (KH KW) over the windows (i, j) that contain (h, w)
    case Op::AvgPool2d: return {add(Op::AvgPool2dGrad, {grad}, with_x_shape)};
    // dx[b,c,h,w] = dy[b,c] / (H W)
    case Op::GlobalAvgPool: return {add(Op::GlobalAvgPoolGrad, {grad}, with_x_shape)};
    case Op::Conv2dGradInput:
    case Op::Conv2dGradWeight:
    case Op::MaxPool2dGrad:
    case Op::AvgPool2dGrad:
    case Op::GlobalAvgPoolGrad:
      throw std::logic_error(fmt::format("internal error: {} has no second derivative yet", opInfo(node.op).name));
    default: break;
  }
  throw std::logic_error("internal error: convVjp called for a non-conv op");
}

}  // namespace nnc
