// Parameter tensors: allocation, initialization and checkpoints.
#include "runtime/tensor.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

#include "runtime/errors.h"
#include "runtime/random.h"
#include "runtime/safetensors.h"

namespace nnc::rt {

void throwAllocationError(const std::string& what, const std::vector<int64_t>& shape, size_t element_bytes,
                          const char* why) {
  double bytes = static_cast<double>(element_bytes);
  for (int64_t d : shape) bytes *= static_cast<double>(d);
  char text[64];
  std::snprintf(text, sizeof text, "%.0f bytes", bytes);
  throw DataError("cannot allocate " + what + " " + shapeString(shape) + " (" + text + "): " + why);
}

std::vector<Tensor> allocateParams(const ModelSpec& model) {
  std::vector<Tensor> params;
  for (int i = 0; i < model.num_params; ++i)
    params.push_back(allocate<float>(concreteShape(model.params[i].rank, model.params[i].shape, 1),
                                     std::string("parameter ") + model.params[i].name));
  return params;
}

namespace {

// Fan-in and fan-out as PyTorch computes them for a row-major [out, in, ...] weight.
std::pair<double, double> fans(const ParamSpec& spec) {
  double receptive = 1;
  for (int i = 2; i < spec.rank; ++i) receptive *= static_cast<double>(spec.shape[i]);
  double fan_in = spec.rank >= 2 ? static_cast<double>(spec.shape[1]) * receptive : 1;
  double fan_out = spec.rank >= 1 ? static_cast<double>(spec.shape[0]) * receptive : 1;
  return {fan_in, fan_out};
}

double uniformIn(SplitMix64& rng, double bound) { return -bound + 2 * bound * rng.uniform(); }

}  // namespace

void initializeParams(const ModelSpec& model, uint64_t seed, std::vector<Tensor>& params) {
  for (int i = 0; i < model.num_params; ++i) {
    const ParamSpec& spec = model.params[i];
    SplitMix64 rng{seed * 0x9e3779b97f4a7c15ULL + static_cast<uint64_t>(i) + 1};
    auto [fan_in, fan_out] = fans(spec);
    float* data = params[i].data();
    for (size_t j = 0; j < params[i].number_of_elements(); ++j) {
      double value = 0;
      switch (spec.init) {
        case InitKind::Zeros: value = 0; break;
        case InitKind::Ones: value = 1; break;
        case InitKind::Constant: value = spec.a; break;
        case InitKind::Uniform: value = spec.a + (spec.b - spec.a) * rng.uniform(); break;
        case InitKind::Normal: value = rng.normal(spec.a, spec.b); break;
        // torch.nn.init: xavier bound gain * sqrt(6 / (fan_in + fan_out)), std gain * sqrt(2 / (fan_in + fan_out));
        // kaiming (fan_in mode) bound gain * sqrt(3 / fan_in), std gain / sqrt(fan_in); gain sqrt(2) for ReLU.
        case InitKind::XavierUniform: value = uniformIn(rng, spec.a * std::sqrt(6.0 / (fan_in + fan_out))); break;
        case InitKind::XavierNormal: value = rng.normal(0, spec.a * std::sqrt(2.0 / (fan_in + fan_out))); break;
        case InitKind::HeUniform: value = uniformIn(rng, spec.a * std::sqrt(3.0 / fan_in)); break;
        case InitKind::HeNormal: value = rng.normal(0, spec.a / std::sqrt(fan_in)); break;
      }
      data[j] = static_cast<float>(value);
    }
  }
}

void loadCheckpoint(const ModelSpec& model, const std::string& path, std::vector<Tensor>& params) {
  std::vector<NamedTensor> tensors = readCheckpointFor(path, model.name, model.params, model.num_params);
  for (int i = 0; i < model.num_params; ++i) std::copy(tensors[i].data.begin(), tensors[i].data.end(), params[i].data());
}

void saveCheckpoint(const ModelSpec& model, const std::string& path, const std::vector<Tensor>& params,
                    int64_t epoch, int64_t step, const std::map<std::string, std::string>& metadata) {
  std::vector<NamedTensor> tensors;
  for (int i = 0; i < model.num_params; ++i) {
    const Tensor& p = params[i];
    tensors.push_back({model.params[i].name, concreteShape(model.params[i].rank, model.params[i].shape, 1),
                       std::vector<float>(p.data(), p.data() + p.number_of_elements()),
                       model.params[i].is_integer ? Dtype::I64 : Dtype::F32});
  }
  std::map<std::string, std::string> header = metadata;
  header.insert({{"model", model.name}, {"epoch", std::to_string(epoch)}, {"step", std::to_string(step)}});
  writeSafetensors(path, tensors, header);
}

}  // namespace nnc::rt
