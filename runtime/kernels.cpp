// Entry-point calls through the generated `_argv` functions.
#include "runtime/kernels.h"

#include "runtime/random.h"

#include <HalideRuntime.h>

#include <cmath>
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

void predict(const ModelSpec& model, const Tensor& x, const std::vector<Tensor>& params, Tensor& out) {
  Tensor input = asModelInput(model, x);
  std::vector<void*> args = {raw(input)};
  for (const Tensor& p : params) args.push_back(raw(p));
  args.push_back(raw(out));
  call(model.predict, "predict", args);
}

}  // namespace nnc::rt
