// Convolution and pooling at the sizes the examples train (LeNet-5's and cnn_bn's layers, and strided, padded,
// dilated and overlapping windows), forward and both gradients, against plain float64 loops written here from
// the definitions in dsl/REFERENCE.md: an oracle independent of nnc's lowering, which ScheduleMatchesNaive and
// the finite-difference checks are not. Each case runs with nnc's schedule in float32 (as trainers run) and
// float64, and with the naive schedule, at batch 11 (a whole batch chunk of the weight gradients and a partial
// one); the avx2_host.* copies run the AVX2 schedule too.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <random>

#include "compiler/autodiff/autodiff.h"
#include "tests/compiler_jit.h"
#include "tests/compiler_ops_util.h"

namespace nnc {
namespace {

using testing::B;
using testing::D;
using testing::leaf;

constexpr int kBatch = 11;

// A row-major [n, c, h, w] tensor of doubles.
struct Image {
  int n = 0, c = 0, h = 0, w = 0;
  std::vector<double> v;
  Image() = default;
  Image(int n_, int c_, int h_, int w_) : n(n_), c(c_), h(h_), w(w_), v(static_cast<size_t>(n_) * c_ * h_ * w_) {}
  double& at(int i, int j, int y, int x) { return v[((static_cast<size_t>(i) * c + j) * h + y) * w + x]; }
  double at(int i, int j, int y, int x) const { return v[((static_cast<size_t>(i) * c + j) * h + y) * w + x]; }
  bool inside(int y, int x) const { return y >= 0 && y < h && x >= 0 && x < w; }
};

struct Window {
  int kernel, stride = 1, padding = 0, dilation = 1;
  int out(int in) const { return (in + 2 * padding - dilation * (kernel - 1) - 1) / stride + 1; }
  // The input coordinate of tap `k` of output position `o`.
  int tap(int o, int k) const { return o * stride - padding + k * dilation; }
};

// Calls visit(n, o, i, j, c, y, x, p, q) for every output point (n, o, i, j) of a convolution of `input` (`c`
// channels, `height` x `width`) with `kernel` at `win` and every tap (c, p, q) of it that reads x[n, c, y, x]
// inside the input (the taps reading zero padding contribute nothing).
template <typename Visit>
void forEachTap(const Image& input, const Image& kernel, const Image& output, Window win, Visit visit) {
  for (int n = 0; n < output.n; ++n)
    for (int o = 0; o < output.c; ++o)
      for (int i = 0; i < output.h; ++i)
        for (int j = 0; j < output.w; ++j)
          for (int c = 0; c < input.c; ++c)
            for (int p = 0; p < kernel.h; ++p)
              for (int q = 0; q < kernel.w; ++q)
                if (input.inside(win.tap(i, p), win.tap(j, q))) visit(n, o, i, j, c, win.tap(i, p), win.tap(j, q), p, q);
}

// y[n, o, i, j] = sum_{c, p, q} x[n, c, tap(i, p), tap(j, q)] w[o, c, p, q], zero outside x; and its transposes,
// dy scattered back to x's taps and to the weights.
Image convForward(const Image& x, const Image& w, Window win) {
  Image y(x.n, w.n, win.out(x.h), win.out(x.w));
  forEachTap(x, w, y, win, [&](int n, int o, int i, int j, int c, int r, int s, int p, int q) {
    y.at(n, o, i, j) += x.at(n, c, r, s) * w.at(o, c, p, q);
  });
  return y;
}

Image convGradInput(const Image& dy, const Image& w, const Image& x_shape, Window win) {
  Image dx(x_shape.n, x_shape.c, x_shape.h, x_shape.w);
  forEachTap(dx, w, dy, win, [&](int n, int o, int i, int j, int c, int r, int s, int p, int q) {
    dx.at(n, c, r, s) += dy.at(n, o, i, j) * w.at(o, c, p, q);
  });
  return dx;
}

Image convGradWeight(const Image& x, const Image& dy, const Image& w_shape, Window win) {
  Image dw(w_shape.n, w_shape.c, w_shape.h, w_shape.w);
  forEachTap(x, dw, dy, win, [&](int n, int o, int i, int j, int c, int r, int s, int p, int q) {
    dw.at(o, c, p, q) += x.at(n, c, r, s) * dy.at(n, o, i, j);
  });
  return dw;
}

// Max pooling (padding never wins) and its gradient, routed to the first maximum of each window in row-major
// order; average pooling over kernel^2 taps, padding counted as zeros, and its gradient.
Image maxPool(const Image& x, Window win, Image* dx = nullptr, const Image* dy = nullptr) {
  Image y(x.n, x.c, win.out(x.h), win.out(x.w));
  for (int n = 0; n < y.n; ++n)
    for (int c = 0; c < y.c; ++c)
      for (int i = 0; i < y.h; ++i)
        for (int j = 0; j < y.w; ++j) {
          double best = -std::numeric_limits<double>::infinity();
          int best_y = -1, best_x = -1;
          for (int p = 0; p < win.kernel; ++p)
            for (int q = 0; q < win.kernel; ++q)
              if (x.inside(win.tap(i, p), win.tap(j, q)) && x.at(n, c, win.tap(i, p), win.tap(j, q)) > best) {
                best = x.at(n, c, win.tap(i, p), win.tap(j, q));
                best_y = win.tap(i, p);
                best_x = win.tap(j, q);
              }
          y.at(n, c, i, j) = best;
          if (dx) dx->at(n, c, best_y, best_x) += dy->at(n, c, i, j);
        }
  return y;
}

Image avgPool(const Image& x, Window win, Image* dx = nullptr, const Image* dy = nullptr) {
  Image y(x.n, x.c, win.out(x.h), win.out(x.w));
  double taps = win.kernel * win.kernel;
  for (int n = 0; n < y.n; ++n)
    for (int c = 0; c < y.c; ++c)
      for (int i = 0; i < y.h; ++i)
        for (int j = 0; j < y.w; ++j)
          for (int p = 0; p < win.kernel; ++p)
            for (int q = 0; q < win.kernel; ++q)
              if (x.inside(win.tap(i, p), win.tap(j, q))) {
                y.at(n, c, i, j) += x.at(n, c, win.tap(i, p), win.tap(j, q)) / taps;
                if (dx) dx->at(n, c, win.tap(i, p), win.tap(j, q)) += dy->at(n, c, i, j) / taps;
              }
  return y;
}

// One case: its params' shapes ([B, C, H, W] input first), the graph of its output, and the reference: the
// output and the gradient of sum(output * r) for each param.
struct RefCase {
  const char* name;
  std::vector<Shape> shapes;
  std::function<NodeId(Graph&, const std::vector<NodeId>&)> build;
  std::function<Image(const std::vector<Image>&, const Image* r, std::vector<Image>* grads)> reference;
};

void PrintTo(const RefCase& c, std::ostream* os) { *os << c.name; }

Attrs attrsOf(Window win) {
  Attrs a;
  for (int axis = 0; axis < 2; ++axis) {
    a.kernel[axis] = win.kernel;
    a.stride[axis] = win.stride;
    a.padding[axis] = win.padding;
    a.dilation[axis] = win.dilation;
  }
  return a;
}

Image like(const Image& x) { return Image(x.n, x.c, x.h, x.w); }

// conv(x, w) at `win`.
RefCase convCase(const char* name, Shape x, Shape w, Window win) {
  return {name, {x, w},
          [win](Graph& g, const std::vector<NodeId>& p) { return g.add(Op::Conv2d, {p[0], p[1]}, attrsOf(win)); },
          [win](const std::vector<Image>& in, const Image* r, std::vector<Image>* grads) {
            if (grads) *grads = {convGradInput(*r, in[1], in[0], win), convGradWeight(in[0], *r, in[1], win)};
            return convForward(in[0], in[1], win);
          }};
}

// LeNet-5's block: max_pool2d(relu(conv(x, w) + b), 2), whose schedule stores the window sums' register tiles
// through the bias and relu (epilogue) and inlines the pool.
RefCase blockCase(const char* name, Shape x, Shape w, Window win) {
  int64_t channels = w[0].extent;
  Shape b = {D(channels)};
  return {name, {x, w, b},
          [win, channels](Graph& g, const std::vector<NodeId>& p) {
            Attrs column;
            column.shape = {D(channels), D(1), D(1)};
            NodeId sum = g.add(Op::Add, {g.add(Op::Conv2d, {p[0], p[1]}, attrsOf(win)),
                                         g.add(Op::Reshape, {p[2]}, column)});
            return g.add(Op::MaxPool2d, {g.add(Op::Relu, {sum})}, attrsOf({2, 2}));
          },
          [win](const std::vector<Image>& in, const Image* r, std::vector<Image>* grads) {
            Image y = convForward(in[0], in[1], win);
            for (int n = 0; n < y.n; ++n)
              for (int o = 0; o < y.c; ++o)
                for (int i = 0; i < y.h; ++i)
                  for (int j = 0; j < y.w; ++j) y.at(n, o, i, j) += in[2].v[o];
            Image z = like(y);
            for (size_t i = 0; i < y.v.size(); ++i) z.v[i] = std::max(0.0, y.v[i]);
            if (!grads) return maxPool(z, {2, 2});
            Image dz = like(z), db(1, 1, 1, in[1].n);
            Image out = maxPool(z, {2, 2}, &dz, r);
            for (size_t i = 0; i < dz.v.size(); ++i) dz.v[i] *= y.v[i] > 0 ? 1 : 0;
            for (int n = 0; n < dz.n; ++n)
              for (int o = 0; o < dz.c; ++o)
                for (int i = 0; i < dz.h; ++i)
                  for (int j = 0; j < dz.w; ++j) db.v[o] += dz.at(n, o, i, j);
            *grads = {convGradInput(dz, in[1], in[0], win), convGradWeight(in[0], dz, in[1], win), db};
            return out;
          }};
}

RefCase poolCase(const char* name, Op op, Shape x, Window win) {
  return {name, {x},
          [op, win](Graph& g, const std::vector<NodeId>& p) { return g.add(op, {p[0]}, attrsOf(win)); },
          [op, win](const std::vector<Image>& in, const Image* r, std::vector<Image>* grads) {
            Image dx = like(in[0]);
            Image out = op == Op::MaxPool2d ? maxPool(in[0], win, &dx, r) : avgPool(in[0], win, &dx, r);
            if (grads) *grads = {dx};
            return out;
          }};
}

const RefCase kCases[] = {
    blockCase("lenet5_conv1_block", {B(), D(1), D(28), D(28)}, {D(6), D(1), D(5), D(5)}, {5, 1, 2}),
    blockCase("lenet5_conv2_block", {B(), D(6), D(14), D(14)}, {D(16), D(6), D(5), D(5)}, {5}),
    convCase("cnn_bn_conv1", {B(), D(1), D(28), D(28)}, {D(16), D(1), D(3), D(3)}, {3, 1, 1}),
    convCase("cnn_bn_conv2", {B(), D(16), D(14), D(14)}, {D(32), D(16), D(3), D(3)}, {3, 1, 1}),
    convCase("strided_padded_dilated", {B(), D(3), D(15), D(13)}, {D(8), D(3), D(3), D(3)}, {3, 2, 1, 2}),
    poolCase("cnn_bn_max_pool1", Op::MaxPool2d, {B(), D(16), D(28), D(28)}, {2, 2}),
    poolCase("cnn_bn_max_pool2", Op::MaxPool2d, {B(), D(32), D(14), D(14)}, {2, 2}),
    poolCase("max_pool_overlapping_padded", Op::MaxPool2d, {B(), D(8), D(13), D(13)}, {3, 2, 1}),
    poolCase("avg_pool", Op::AvgPool2d, {B(), D(16), D(28), D(28)}, {2, 2}),
    poolCase("avg_pool_overlapping_padded", Op::AvgPool2d, {B(), D(8), D(13), D(13)}, {3, 2, 1}),
};

Image imageOf(const Shape& shape, int batch) {
  std::vector<int> dims = testing::concrete(shape, batch);
  while (dims.size() < 4) dims.insert(dims.begin(), 1);
  return Image(dims[0], dims[1], dims[2], dims[3]);
}

struct Variant {
  const char* name;
  SchedulePolicy policy;
  int float_bits;
  double tolerance;  // relative to the largest reference value of the tensor
};

void PrintTo(const Variant& v, std::ostream* os) { *os << v.name; }

class ConvReference : public ::testing::TestWithParam<std::tuple<RefCase, Variant>> {};

TEST_P(ConvReference, ForwardAndGradientsMatchPlainLoops) {
  const auto& [c, variant] = GetParam();
  Graph g;
  std::vector<NodeId> params;
  for (size_t i = 0; i < c.shapes.size(); ++i)
    params.push_back(leaf(g, Op::Param, c.shapes[i], DType::F32, "p" + std::to_string(i)));
  NodeId out = c.build(g, params);
  NodeId r = leaf(g, Op::Input, g.node(out).shape, DType::F32, "r");
  g.loss = g.add(Op::SumTo, {g.add(Op::Mul, {out, r})}, {});
  std::vector<NodeId> grads = differentiate(g, g.loss, params);
  EntryPoint entry{"reference", {r}, {out}, {"out"}};
  for (size_t i = 0; i < params.size(); ++i) {
    entry.arguments.push_back(params[i]);
    entry.outputs.push_back(grads[i]);
    entry.output_names.push_back("grad" + std::to_string(i));
  }
  testing::JitEntry jit(g, entry, kBatch, {variant.policy}, variant.float_bits == 32 ? Halide::Float(32) : Halide::Float(64));

  std::mt19937_64 rng(5);
  std::uniform_real_distribution<double> uniform(-1, 1);  // continuous: no ties in a max-pool window
  std::vector<Image> values;
  for (size_t i = 0; i < params.size(); ++i) {
    values.push_back(imageOf(c.shapes[i], kBatch));
    for (double& v : values.back().v) v = variant.float_bits == 32 ? static_cast<float>(uniform(rng)) : uniform(rng);
    jit.set(params[i], values.back().v);
  }
  Image weights = imageOf(g.node(out).shape, kBatch);
  for (double& v : weights.v) v = variant.float_bits == 32 ? static_cast<float>(uniform(rng)) : uniform(rng);
  jit.set(r, weights.v);
  std::vector<std::vector<double>> got = jit.run();

  std::vector<Image> want_grads;
  std::vector<std::vector<double>> want = {c.reference(values, &weights, &want_grads).v};
  for (const Image& grad : want_grads) want.push_back(grad.v);
  ASSERT_EQ(got.size(), want.size());
  for (size_t t = 0; t < want.size(); ++t) {
    ASSERT_EQ(got[t].size(), want[t].size()) << "output " << t;
    double scale = 1;
    for (double v : want[t]) scale = std::max(scale, std::abs(v));
    size_t reported = 0;
    for (size_t i = 0; i < want[t].size() && reported < 5; ++i)
      if (std::abs(got[t][i] - want[t][i]) > variant.tolerance * scale) {
        ADD_FAILURE() << c.name << ", " << variant.name << ": " << (t == 0 ? "output" : "gradient of param " +
                         std::to_string(t - 1)) << " [" << i << "]: " << got[t][i] << ", plain loops " << want[t][i];
        ++reported;
      }
  }
}

const Variant kVariants[] = {{"manual_f32", SchedulePolicy::Manual, 32, 1e-5},
                             {"manual_f64", SchedulePolicy::Manual, 64, 1e-12},
                             {"naive_f64", SchedulePolicy::Naive, 64, 1e-12}};

INSTANTIATE_TEST_SUITE_P(Sizes, ConvReference, ::testing::Combine(::testing::ValuesIn(kCases), ::testing::ValuesIn(kVariants)),
                         [](const auto& info) {
                           return std::string(std::get<0>(info.param).name) + "_" + std::get<1>(info.param).name;
                         });

}  // namespace
}  // namespace nnc
