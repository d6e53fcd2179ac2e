// Entry-point calls through the generated `_argv` functions.
#include "runtime/kernels.h"

#include "runtime/block_cache.h"
#include "runtime/random.h"

#include <HalideRuntime.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>

namespace nnc::rt {

namespace {

// Halide may report from a worker thread of a parallel loop, so the message is shared and locked.
std::mutex kernel_error_mutex;
std::string last_kernel_error;

extern "C" void recordKernelError(void*, const char* message) {
  std::lock_guard<std::mutex> lock(kernel_error_mutex);
  last_kernel_error += message;
}

void call(EntryFn entry, const char* name, std::vector<void*>& args) {
  {
    std::lock_guard<std::mutex> lock(kernel_error_mutex);
    last_kernel_error.clear();
  }
  if (int code = entry(args.data()); code != 0)
    throw std::runtime_error(std::string("kernel `") + name + "` failed (" + std::to_string(code) +
                             "): " + last_kernel_error);
}

// The halide_buffer_t inside a live Buffer (a converted temporary would dangle, hence the template).
template <typename T>
void* raw(const Halide::Runtime::Buffer<T>& buffer) {
  return const_cast<halide_buffer_t*>(buffer.raw_buffer());
}

// The kernels are compiled without Halide's argument checks (compiler/aot.cpp), so every buffer is checked here:
// allocated, dense, and of the row-major shape the model expects.
template <typename T>
void checkArgument(const Halide::Runtime::Buffer<T>& buffer, const std::vector<int64_t>& shape, const char* entry,
                   const std::string& what) {
  bool ok = buffer.data() != nullptr && buffer.dimensions() == static_cast<int>(shape.size());
  int64_t stride = 1;
  for (int d = 0; ok && d < buffer.dimensions(); ++d) {
    int64_t extent = shape[shape.size() - 1 - static_cast<size_t>(d)];
    ok = buffer.dim(d).min() == 0 && buffer.dim(d).extent() == extent && buffer.dim(d).stride() == stride;
    stride *= extent;
  }
  if (ok) return;
  std::vector<int64_t> got;
  for (int d = buffer.dimensions() - 1; d >= 0; --d) got.push_back(buffer.dim(d).extent());
  throw std::runtime_error(std::string("kernel `") + entry + "` called with " + what + " of shape " +
                           shapeString(got) + (buffer.data() ? "" : " (unallocated)") + ", expected a dense " +
                           shapeString(shape));
}

void checkParams(const ModelSpec& model, const std::vector<Tensor>& params, const char* entry, const char* role) {
  if (params.size() != static_cast<size_t>(model.num_params))
    throw std::runtime_error(std::string("kernel `") + entry + "` called with " + std::to_string(params.size()) +
                             " " + role + " tensors, expected " + std::to_string(model.num_params));
  for (int i = 0; i < model.num_params; ++i)
    checkArgument(params[i], concreteShape(model.params[i].rank, model.params[i].shape, 1), entry,
                  std::string(role) + " `" + model.params[i].name + "`");
}

void checkStates(const ModelSpec& model, const std::vector<Tensor>& states, const char* entry) {
  if (states.size() != static_cast<size_t>(model.num_states))
    throw std::runtime_error(std::string("kernel `") + entry + "` called with " + std::to_string(states.size()) +
                             " optimizer states, expected " + std::to_string(model.num_states));
  for (int i = 0; i < model.num_states; ++i) {
    const ParamSpec& param = model.params[model.states[i].param];
    checkArgument(states[i], concreteShape(param.rank, param.shape, 1), entry,
                  std::string("optimizer state `") + model.states[i].name + "`");
  }
}

// The features as the model's input: the runtime holds them as [rows, features]; a model whose input has more
// dimensions ([B, 1, 28, 28]) gets a view of the same row-major memory in its own shape.
Tensor asModelInput(const ModelSpec& model, const Tensor& x) {
  if (model.inputs[0].rank == x.dimensions()) return x;
  std::vector<int64_t> shape = concreteShape(model.inputs[0].rank, model.inputs[0].shape, x.dim(1).extent());
  std::vector<int> sizes(shape.rbegin(), shape.rend());  // Halide order: innermost first
  return Tensor(const_cast<float*>(x.data()), sizes);
}

}  // namespace

void TrainState::swap() {
  params.swap(next_params);
  states.swap(next_states);
}

TrainState allocateTrainState(const ModelSpec& model) {
  TrainState state;
  state.params = allocateParams(model);
  state.next_params = allocateParams(model);
  for (int i = 0; i < model.num_states; ++i) {
    const ParamSpec& param = model.params[model.states[i].param];
    state.states.push_back(allocate<float>(concreteShape(param.rank, param.shape, 1)));
    state.next_states.push_back(allocate<float>(concreteShape(param.rank, param.shape, 1)));
  }
  return state;
}

void initKernels(int threads) {
  halide_set_error_handler(recordKernelError);
  halide_set_custom_malloc(cachedMalloc);
  halide_set_custom_free(cachedFree);
  if (threads > 0) halide_set_num_threads(threads);
}

std::vector<ScalarArg> stepScalars(const ModelSpec& model, double lr, int64_t step, uint64_t seed) {
  std::vector<ScalarArg> values;
  auto t = static_cast<double>(step + 1);
  auto real = [](double value) {
    ScalarArg arg;
    arg.f = static_cast<float>(value);
    return arg;
  };
  for (int i = 0; i < model.num_scalars; ++i) {
    std::string name = model.scalars[i];
    if (name == "lr") {
      values.push_back(real(lr));
    } else if (name == "bias_correction1") {
      values.push_back(real(1 - std::pow(model.train.beta1, t)));
    } else if (name == "bias_correction2") {
      values.push_back(real(1 - std::pow(model.train.beta2, t)));
    } else if (name == "dropout_seed") {  // a fresh mask every step, the same for the same (seed, step)
      SplitMix64 mix{seed ^ (static_cast<uint64_t>(step) * 0xd1b54a32d192ed03ULL)};
      ScalarArg arg;
      arg.i = static_cast<int32_t>(mix.next() >> 33);
      values.push_back(arg);
    } else {
      throw std::runtime_error("trainer and model disagree: unknown train_step scalar `" + name + "`");
    }
  }
  return values;
}

float trainStep(const ModelSpec& model, const Tensor& x, const LabelTensor& y, TrainState& state,
                std::vector<ScalarArg> scalars) {
  Tensor loss = Tensor::make_scalar();
  Tensor input = asModelInput(model, x);
  int64_t batch = x.dimensions() > 0 ? x.dim(x.dimensions() - 1).extent() : 0;
  checkArgument(input, concreteShape(model.inputs[0].rank, model.inputs[0].shape, batch), "train_step", "features");
  checkArgument(y, concreteShape(model.inputs[1].rank, model.inputs[1].shape, batch), "train_step", "labels");
  for (const std::vector<Tensor>* params : {&state.params, &state.next_params})
    checkParams(model, *params, "train_step", "parameter");
  for (const std::vector<Tensor>* states : {&state.states, &state.next_states}) checkStates(model, *states, "train_step");
  std::vector<void*> args = {raw(input), raw(y)};
  for (Tensor& p : state.params) args.push_back(raw(p));
  for (Tensor& s : state.states) args.push_back(raw(s));
  for (ScalarArg& scalar : scalars) args.push_back(&scalar);
  args.push_back(raw(loss));
  for (Tensor& p : state.next_params) args.push_back(raw(p));
  for (Tensor& s : state.next_states) args.push_back(raw(s));
  call(model.train_step, "train_step", args);
  state.swap();
  return loss();
}

std::vector<Tensor> allocateGrads(const ModelSpec& model) {
  std::vector<Tensor> grads;
  for (int i = 0; i < model.num_params; ++i)
    if (model.params[i].trainable) grads.push_back(allocate<float>(concreteShape(model.params[i].rank, model.params[i].shape, 1)));
  return grads;
}

float computeGrads(const ModelSpec& model, const Tensor& x, const LabelTensor& y, const std::vector<Tensor>& params,
                   std::vector<Tensor>& grads, int32_t dropout_seed) {
  Tensor loss = Tensor::make_scalar();
  Tensor input = asModelInput(model, x);
  int64_t batch = x.dimensions() > 0 ? x.dim(x.dimensions() - 1).extent() : 0;
  checkArgument(input, concreteShape(model.inputs[0].rank, model.inputs[0].shape, batch), "grads", "features");
  checkArgument(y, concreteShape(model.inputs[1].rank, model.inputs[1].shape, batch), "grads", "labels");
  checkParams(model, params, "grads", "parameter");
  std::vector<void*> args = {raw(input), raw(y)};
  for (const Tensor& p : params) args.push_back(raw(p));
  bool has_dropout = false;
  for (int i = 0; i < model.num_scalars; ++i) has_dropout |= std::string(model.scalars[i]) == "dropout_seed";
  if (has_dropout) args.push_back(&dropout_seed);
  args.push_back(raw(loss));
  size_t g = 0;
  for (int i = 0; i < model.num_params; ++i) {
    if (!model.params[i].trainable) continue;
    if (g == grads.size()) throw std::runtime_error("kernel `grads` called with too few gradient tensors");
    checkArgument(grads[g], concreteShape(model.params[i].rank, model.params[i].shape, 1), "grads",
                  std::string("gradient of `") + model.params[i].name + "`");
    args.push_back(raw(grads[g++]));
  }
  call(model.grads, "grads", args);
  return loss();
}

void predict(const ModelSpec& model, const Tensor& x, const std::vector<Tensor>& params, Tensor& out) {
  Tensor input = asModelInput(model, x);
  int64_t batch = x.dimensions() > 0 ? x.dim(x.dimensions() - 1).extent() : 0;
  checkArgument(input, concreteShape(model.inputs[0].rank, model.inputs[0].shape, batch), "predict", "features");
  checkParams(model, params, "predict", "parameter");
  checkArgument(out, concreteShape(model.output_rank, model.output_shape, batch), "predict", "output");
  std::vector<void*> args = {raw(input)};
  for (const Tensor& p : params) args.push_back(raw(p));
  args.push_back(raw(out));
  call(model.predict, "predict", args);
}

}  // namespace nnc::rt
