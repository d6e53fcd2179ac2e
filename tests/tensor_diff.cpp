// Compares two tensor files element by element: two safetensors files (every tensor by name, and the `loss` in
// their metadata when both have one) or two NPY files. Prints each tensor's largest difference; exits 1 when an
// element differs by more than ATOL + RTOL * |expected|, or the files hold different tensors or shapes.
// Usage: tensor_diff EXPECTED ACTUAL ATOL RTOL [GRADS LR]
//
// With GRADS and LR, EXPECTED and ACTUAL are parameters after one Adam step at learning rate LR, and GRADS the
// gradients of that step (a safetensors file from `trainer grads`). Adam's first step is lr * g / (|g| + eps): where
// the true gradient is zero (a bias before BatchNorm, a weight on a pixel that is constant over the batch) the
// float32 gradient is rounding noise of either sign, which that step turns into a move of up to lr either way. So
// elements whose gradient is below kZeroGradient may differ by up to 2 LR; every other element is held to the
// bound above.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <vector>

#include "runtime/npy.h"
#include "runtime/safetensors.h"

namespace {

using nnc::rt::NamedTensor;

bool endsWith(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::vector<NamedTensor> readTensors(const std::string& path) {
  if (!endsWith(path, ".npy")) return nnc::rt::readSafetensors(path);
  nnc::rt::NpyArray array = nnc::rt::readNpy(path);
  return {{"array", array.shape, std::move(array.data)}};
}

constexpr double kZeroGradient = 1e-6;

// Prints the tensor's largest difference; false when one exceeds the tolerance. `grads`, when not empty, are the
// step's gradients, and elements with a zero gradient (but for rounding) may move by up to 2 * `lr`.
bool close(const std::string& name, const std::vector<float>& expected, const std::vector<float>& actual, double atol,
           double rtol, const std::vector<float>& grads = {}, double lr = 0) {
  double worst = 0, worst_excess = -1, scale = 0;
  size_t worst_at = 0, zero_gradients = 0;
  for (float e : expected) scale = std::max(scale, std::abs(static_cast<double>(e)));
  for (size_t i = 0; i < expected.size(); ++i) {
    double diff = std::abs(static_cast<double>(expected[i]) - actual[i]);
    bool zero_gradient = !grads.empty() && std::abs(grads[i]) < kZeroGradient;
    double excess = diff - (zero_gradient ? 2 * lr : atol + rtol * scale);
    if (std::isnan(diff)) excess = diff = INFINITY;
    zero_gradients += zero_gradient;
    if (diff > worst && !zero_gradient) worst = diff;
    if (excess > worst_excess) {
      worst_excess = excess;
      worst_at = i;
    }
  }
  bool ok = worst_excess <= 0;
  std::string within_lr = zero_gradients ? " (" + std::to_string(zero_gradients) + " with a zero gradient)" : "";
  std::printf("%-40s %10zu values  max |diff| %.3g of %.3g%s%s\n", name.c_str(), expected.size(), worst, scale,
              within_lr.c_str(),
              ok ? "" : ("  OUT OF TOLERANCE at [" + std::to_string(worst_at) + "]: expected " +
                         std::to_string(expected[worst_at]) + ", got " + std::to_string(actual[worst_at])).c_str());
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5 && argc != 7) {
    std::fprintf(stderr, "usage: tensor_diff EXPECTED ACTUAL ATOL RTOL [GRADS LR]\n");
    return 2;
  }
  try {
    double atol = std::atof(argv[3]), rtol = std::atof(argv[4]);
    std::vector<NamedTensor> expected = readTensors(argv[1]), actual = readTensors(argv[2]), grads;
    double lr = argc == 7 ? std::atof(argv[6]) : 0;
    if (argc == 7) grads = readTensors(argv[5]);
    auto gradientOf = [&](const std::string& name) {
      for (const NamedTensor& grad : grads)
        if (grad.name == name) return grad.data;
      return std::vector<float>();  // a buffer (BatchNorm's statistics): not trained
    };
    bool ok = expected.size() == actual.size();
    if (!ok) std::printf("%zu tensors against %zu\n", expected.size(), actual.size());
    for (size_t t = 0; t < expected.size() && t < actual.size(); ++t) {
      if (expected[t].name != actual[t].name || expected[t].shape != actual[t].shape) {
        std::printf("tensor %zu: `%s` against `%s` (or their shapes differ)\n", t, expected[t].name.c_str(),
                    actual[t].name.c_str());
        ok = false;
        break;
      }
      ok &= close(expected[t].name, expected[t].data, actual[t].data, atol, rtol, gradientOf(expected[t].name), lr);
    }
    if (!endsWith(argv[1], ".npy")) {
      auto want = nnc::rt::readSafetensorsMetadata(argv[1]), got = nnc::rt::readSafetensorsMetadata(argv[2]);
      if (want.count("loss") && got.count("loss"))
        ok &= close("loss", {std::stof(want["loss"])}, {std::stof(got["loss"])}, atol, rtol);
    }
    return ok ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tensor_diff: %s\n", e.what());
    return 2;
  }
}
