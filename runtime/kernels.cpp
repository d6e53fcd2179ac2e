// Entry-point calls through the generated `_argv` functions.
#include "runtime/kernels.h"

#include "runtime/random.h"

#include <HalideRuntime.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>

namespace nnc::rt {

namespace {

// Halide allocates every intermediate buffer at each call and frees it at the end. Large blocks come from
// mmap, and touching fresh pages costs more than the kernels (examples/mlp.nn's predict at batch 160: 350 page
// faults and 4.85 ms per call against 0.64 ms at batch 128). So freed blocks go to a free list by size and the
// next call of the same entry point gets them back: after the first step the hot loop makes no system
// allocations. The list keeps the peak of what the pipelines need. Calls may come from worker threads.
std::mutex block_cache_mutex;
std::multimap<size_t, char*> free_blocks;  // by usable size
constexpr size_t kBlockHeader = 128;       // keeps the payload 128-byte aligned and holds the size

extern "C" void* cachedMalloc(void*, size_t size) {
  {
    std::lock_guard<std::mutex> lock(block_cache_mutex);
    auto it = free_blocks.find(size);
    if (it != free_blocks.end()) {
      char* block = it->second;
      free_blocks.erase(it);
      return block + kBlockHeader;
    }
  }
  size_t total = (size + kBlockHeader + 127) / 128 * 128;
  auto* block = static_cast<char*>(std::aligned_alloc(128, total));
  if (!block) return nullptr;
  std::memcpy(block, &size, sizeof size);
  return block + kBlockHeader;
}

extern "C" void cachedFree(void*, void* pointer) {
  if (!pointer) return;
  char* block = static_cast<char*>(pointer) - kBlockHeader;
  size_t size;
  std::memcpy(&size, block, sizeof size);
  std::lock_guard<std::mutex> lock(block_cache_mutex);
  free_blocks.emplace(size, block);
}

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
