// Entry-point calls through the generated `_argv` functions.
#include "runtime/kernels.h"

#include "runtime/block_cache.h"
#include "runtime/plan.h"
#include "runtime/random.h"
#include "runtime/thread_pool.h"

#include <HalideRuntime.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <optional>
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

// Where tensors live on a GPU target (for a CPU one, nothing here does anything): Halide copies an argument to
// the device when it has no device copy or its host copy is marked dirty, and leaves results on the device,
// marked device-dirty. Parameters and optimizer state stay there from step to step; a batch goes up with each
// call (the caller's buffer, written on the host, is passed as a fresh view, whose device copy is freed with the
// view); what the host reads (the loss, gradients, predictions) comes down after the call.
template <typename T>
Halide::Runtime::Buffer<T> uploadedView(const T* data, int rank, const halide_dimension_t* dims) {
  Halide::Runtime::Buffer<T> view(const_cast<T*>(data), rank, dims);
  view.set_host_dirty();
  return view;
}
template <typename T>
Halide::Runtime::Buffer<T> uploadedView(const Halide::Runtime::Buffer<T>& host) {
  return uploadedView(host.data(), host.dimensions(), host.raw_buffer()->dim);
}

// A result's buffer: the kernel writes every element, so a host copy marked dirty is dropped, not uploaded.
template <typename T>
void* resultArg(Halide::Runtime::Buffer<T>& buffer) {
  buffer.raw_buffer()->set_host_dirty(false);
  return buffer.raw_buffer();
}

template <typename T>
void copyToHost(Halide::Runtime::Buffer<T>& buffer, const char* entry) {
  if (int code = buffer.copy_to_host(); code != 0)
    throw std::runtime_error(std::string("copying a result of `") + entry + "` from the device failed (" +
                             std::to_string(code) + "): " + last_kernel_error);
}

// The kernels are compiled without Halide's argument checks (compiler/aot/aot.cpp), so every buffer is checked here:
// allocated, dense, and of the model's row-major shape (`rank` extents, kBatchDim standing for `batch`). The
// check allocates nothing unless it fails: it runs on every step. `role` and `name` say which argument failed.
template <typename T>
void checkArgument(const Halide::Runtime::Buffer<T>& buffer, int rank, const int64_t* shape, int64_t batch,
                   const char* entry, const char* role, const char* name = nullptr) {
  bool ok = buffer.data() != nullptr && buffer.dimensions() == rank;
  int64_t stride = 1;
  for (int d = 0; ok && d < rank; ++d) {
    int64_t extent = shape[rank - 1 - d] == kBatchDim ? batch : shape[rank - 1 - d];
    ok = buffer.dim(d).min() == 0 && buffer.dim(d).extent() == extent && buffer.dim(d).stride() == stride;
    stride *= extent;
  }
  if (ok) return;
  std::vector<int64_t> got;
  for (int d = buffer.dimensions() - 1; d >= 0; --d) got.push_back(buffer.dim(d).extent());
  throw std::runtime_error(std::string("kernel `") + entry + "` called with " + role +
                           (name ? std::string(" `") + name + "`" : "") + " of shape " + shapeString(got) +
                           (buffer.data() ? "" : " (unallocated)") + ", expected a dense " +
                           shapeString(concreteShape(rank, shape, batch)));
}

void checkCount(size_t given, int64_t expected, const char* entry, const char* what) {
  if (given != static_cast<size_t>(expected))
    throw std::runtime_error(std::string("kernel `") + entry + "` called with " + std::to_string(given) + " " +
                             what + ", expected " + std::to_string(expected));
}

void checkParams(const ModelSpec& model, const std::vector<Tensor>& params, const char* entry) {
  checkCount(params.size(), model.num_params, entry, "parameter tensors");
  for (int i = 0; i < model.num_params; ++i)
    checkArgument(params[i], model.params[i].rank, model.params[i].shape, 1, entry, "parameter", model.params[i].name);
}

void checkStates(const ModelSpec& model, const std::vector<Tensor>& states, const char* entry) {
  checkCount(states.size(), model.num_states, entry, "optimizer states");
  for (int i = 0; i < model.num_states; ++i) {
    const ParamSpec& param = model.params[model.states[i].param];
    checkArgument(states[i], param.rank, param.shape, 1, entry, "optimizer state", model.states[i].name);
  }
}

// Checks the features and (when given) the targets of a batch; returns its row count.
int64_t checkBatch(const ModelSpec& model, const Tensor& input, const Targets* targets, const char* entry) {
  int64_t batch = input.dimensions() > 0 ? input.dim(input.dimensions() - 1).extent() : 0;
  checkArgument(input, model.inputs[0].rank, model.inputs[0].shape, batch, entry, "features");
  if (!targets || model.num_inputs < 2) return batch;
  const InputSpec& spec = model.inputs[1];
  if (spec.is_integer) checkArgument(targets->labels, spec.rank, spec.shape, batch, entry, "labels");
  else checkArgument(targets->values, spec.rank, spec.shape, batch, entry, "targets");
  return batch;
}

// The targets as train_step and grads take them: fresh views (uploaded with each call on a GPU target), passed
// after the features unless the model has no second input.
struct TargetArg {
  TargetArg(const ModelSpec& model, const Targets& targets) {
    if (model.num_inputs < 2) return;
    if (model.inputs[1].is_integer) labels = uploadedView(targets.labels);
    else values = uploadedView(targets.values);
  }
  void pushTo(std::vector<void*>& args) const {
    if (labels.data()) args.push_back(raw(labels));
    if (values.data()) args.push_back(raw(values));
  }
  LabelTensor labels;
  Tensor values;
};

// The features as the model's input: the runtime holds them as [rows, features]; a model whose input has more
// dimensions ([B, 1, 28, 28]) gets a view of the same row-major memory in its own shape.
Tensor asModelInput(const ModelSpec& model, const Tensor& x) {
  if (model.inputs[0].rank == x.dimensions()) return uploadedView(x);
  int64_t features = 1;
  for (int d = 1; d < model.inputs[0].rank; ++d) features *= model.inputs[0].shape[d];
  if (x.dimensions() != 2 || x.dim(0).extent() != features || x.dim(0).stride() != 1)
    throw std::runtime_error("kernel called with features that are not a dense [B, " + std::to_string(features) +
                             "] tensor");
  // Built on the stack: this runs every step, and a view of up to 4 dimensions keeps its shape inline.
  const InputSpec& spec = model.inputs[0];
  halide_dimension_t dims[kMaxRank];
  int32_t stride = 1;
  for (int d = 0; d < spec.rank; ++d) {  // Halide order: innermost first
    int64_t extent = spec.shape[spec.rank - 1 - d];
    dims[d] = halide_dimension_t(0, static_cast<int32_t>(extent == kBatchDim ? x.dim(1).extent() : extent), stride);
    stride *= dims[d].extent;
  }
  return uploadedView(x.data(), spec.rank, dims);
}

// A model of token ids (i32 features) takes them as int32: the runtime's float features (whole numbers) converted
// into storage this thread reuses from call to call, so steps allocate nothing once the first has run. Empty for
// float features.
LabelTensor tokenIds(const ModelSpec& model, const Tensor& input) {
  if (!model.inputs[0].is_integer) return {};
  thread_local std::vector<int32_t> storage;
  size_t count = input.number_of_elements();
  if (storage.size() < count) storage.resize(count);
  for (size_t i = 0; i < count; ++i) storage[i] = static_cast<int32_t>(input.data()[i]);
  return uploadedView(storage.data(), input.dimensions(), input.raw_buffer()->dim);
}

// Hands grads' results to a reduction as the plan finishes them (each copied to the host first); a plan watcher
// of its own, not a std::function, so a step allocates nothing for it.
struct GradientsAsTheyFinish final : PlanWatcher {
  GradientsAsTheyFinish(std::vector<Tensor>& results, size_t first_result_arg, GradientReduction* to)
      : grads(results), first_result(first_result_arg), reduction(to) {}
  void afterCall(const std::vector<int>& finished_args) override {
    for (int arg : finished_args)
      if (static_cast<size_t>(arg) >= first_result) {
        copyToHost(grads[arg - first_result], "grads");
        reduction->finished(arg - first_result);
      }
    reduction->progress();
  }
  std::vector<Tensor>& grads;
  size_t first_result;  // the argv index of grads[0]
  GradientReduction* reduction;
};

}  // namespace

Targets Targets::cropped(int rows) const {
  Targets out;
  if (labels.data()) out.labels = labels.cropped(labels.dimensions() - 1, 0, rows);
  if (values.data()) out.values = values.cropped(values.dimensions() - 1, 0, rows);
  return out;
}

Targets allocateTargets(const ModelSpec& model, int64_t rows, const std::string& what) {
  Targets targets;
  if (model.num_inputs < 2) return targets;
  const InputSpec& spec = model.inputs[1];
  std::vector<int64_t> shape = concreteShape(spec.rank, spec.shape, rows);
  if (spec.is_integer) targets.labels = allocate<int32_t>(shape, what);
  else targets.values = allocate<float>(shape, what);
  return targets;
}

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

void copyToHost(std::vector<Tensor>& tensors) {
  for (Tensor& tensor : tensors) copyToHost(tensor, "train_step");
}

void initKernels(int threads) {
  halide_set_error_handler(recordKernelError);
  halide_set_custom_malloc(cachedMalloc);
  halide_set_custom_free(cachedFree);
  setKernelThreads(threads);
  halide_set_custom_do_par_for(parallelFor);
  halide_reuse_device_allocations(nullptr, true);  // a batch's device copy each step reuses the last one's memory
}

void stepScalars(const ModelSpec& model, double lr, int64_t step, uint64_t seed, std::vector<ScalarArg>& values,
                 int64_t first_row) {
  values.clear();
  auto t = static_cast<double>(step + 1);
  auto real = [](double value) {
    ScalarArg arg;
    arg.f = static_cast<float>(value);
    return arg;
  };
  for (int i = 0; i < model.num_scalars; ++i) {
    const char* name = model.scalars[i];
    if (std::strcmp(name, "lr") == 0) {
      values.push_back(real(lr));
    } else if (std::strcmp(name, "bias_correction1") == 0) {
      values.push_back(real(1 - std::pow(model.train.beta1, t)));
    } else if (std::strcmp(name, "bias_correction2") == 0) {
      values.push_back(real(1 - std::pow(model.train.beta2, t)));
    } else if (std::strcmp(name, "dropout_seed") == 0) {  // a fresh mask every step, the same for the same (seed, step)
      SplitMix64 mix{seed ^ (static_cast<uint64_t>(step) * 0xd1b54a32d192ed03ULL)};
      ScalarArg arg;
      arg.i = static_cast<int32_t>(mix.next() >> 33);
      values.push_back(arg);
    } else if (std::strcmp(name, "dropout_row") == 0) {
      ScalarArg arg;
      arg.i = static_cast<int32_t>(first_row);
      values.push_back(arg);
    } else {
      throw std::runtime_error(std::string("trainer and model disagree: unknown train_step scalar `") + name + "`");
    }
  }
}

int32_t intScalar(const ModelSpec& model, const std::vector<ScalarArg>& scalars, const char* name) {
  for (int i = 0; i < model.num_scalars; ++i)
    if (std::strcmp(model.scalars[i], name) == 0) return scalars[i].i;
  return 0;
}

float trainStep(const ModelSpec& model, const Tensor& x, const Targets& y, TrainState& state,
                const std::vector<ScalarArg>& scalars) {
  Tensor input = asModelInput(model, x);
  checkBatch(model, input, &y, "train_step");
  for (const std::vector<Tensor>* params : {&state.params, &state.next_params}) checkParams(model, *params, "train_step");
  for (const std::vector<Tensor>* states : {&state.states, &state.next_states}) checkStates(model, *states, "train_step");
  TargetArg targets(model, y);
  std::vector<void*>& args = state.args;
  args.clear();
  LabelTensor ids = tokenIds(model, input);
  args.push_back(ids.data() ? raw(ids) : raw(input));
  targets.pushTo(args);
  for (Tensor& p : state.params) args.push_back(raw(p));
  for (Tensor& s : state.states) args.push_back(raw(s));
  for (const ScalarArg& scalar : scalars) args.push_back(const_cast<ScalarArg*>(&scalar));  // read, never written
  args.push_back(resultArg(state.loss));
  for (Tensor& p : state.next_params) args.push_back(resultArg(p));
  for (Tensor& s : state.next_states) args.push_back(resultArg(s));
  call(model.train_step, "train_step", args);
  state.swap();
  copyToHost(state.loss, "train_step");
  return state.loss();
}

std::vector<Tensor> allocateGrads(const ModelSpec& model) {
  std::vector<Tensor> grads;
  for (bool trainable : {true, false})
    for (int i = 0; i < model.num_params; ++i)
      if (model.params[i].trainable == trainable)
        grads.push_back(allocate<float>(concreteShape(model.params[i].rank, model.params[i].shape, 1)));
  return grads;
}

float computeGrads(const ModelSpec& model, const Tensor& x, const Targets& y, const std::vector<Tensor>& params,
                   std::vector<Tensor>& grads, int32_t dropout_seed, int32_t dropout_row,
                   GradientReduction* reduction) {
  Tensor loss = Tensor::make_scalar();
  Tensor input = asModelInput(model, x);
  checkBatch(model, input, &y, "grads");
  checkParams(model, params, "grads");
  checkCount(grads.size(), model.num_params, "grads", "gradient and buffer tensors");
  TargetArg targets(model, y);
  LabelTensor ids = tokenIds(model, input);
  std::vector<void*> args = {ids.data() ? raw(ids) : raw(input)};
  targets.pushTo(args);
  for (const Tensor& p : params) args.push_back(raw(p));
  bool has_dropout = false;
  for (int i = 0; i < model.num_scalars; ++i) has_dropout |= std::strcmp(model.scalars[i], "dropout_seed") == 0;
  if (has_dropout) args.insert(args.end(), {&dropout_seed, &dropout_row});
  args.push_back(resultArg(loss));
  size_t g = 0;
  for (bool trainable : {true, false})
    for (int i = 0; i < model.num_params; ++i) {
      if (model.params[i].trainable != trainable) continue;
      checkArgument(grads[g], model.params[i].rank, model.params[i].shape, 1, "grads",
                    trainable ? "gradient of" : "new value of", model.params[i].name);
      args.push_back(resultArg(grads[g++]));
    }
  GradientsAsTheyFinish handover{grads, args.size() - grads.size(), reduction};
  std::optional<WatchPlans> watch;
  if (reduction && reduction->overlaps()) watch.emplace(handover);
  call(model.grads, "grads", args);
  copyToHost(loss, "grads");
  for (Tensor& grad : grads) copyToHost(grad, "grads");
  return loss();
}

void applyUpdate(const ModelSpec& model, std::vector<Tensor>& grads, TrainState& state,
                 const std::vector<ScalarArg>& scalars) {
  checkCount(grads.size(), model.num_params, "update", "gradient and buffer tensors");
  for (const std::vector<Tensor>* params : {&state.params, &state.next_params}) checkParams(model, *params, "update");
  for (const std::vector<Tensor>* states : {&state.states, &state.next_states}) checkStates(model, *states, "update");
  std::vector<void*>& args = state.args;
  args.clear();
  for (int i = 0, g = 0; i < model.num_params; ++i)
    if (model.params[i].trainable) args.push_back(raw(grads[g++]));
  for (int i = 0; i < model.num_params; ++i)
    if (model.params[i].trainable) args.push_back(raw(state.params[i]));
  for (Tensor& s : state.states) args.push_back(raw(s));
  for (int i = 0; i < model.num_scalars; ++i)
    if (std::strncmp(model.scalars[i], "dropout_", 8) != 0) args.push_back(const_cast<ScalarArg*>(&scalars[i]));
  for (int i = 0; i < model.num_params; ++i)
    if (model.params[i].trainable) args.push_back(resultArg(state.next_params[i]));
  for (Tensor& s : state.next_states) args.push_back(resultArg(s));
  call(model.update, "update", args);
}

float splitTrainStep(const ModelSpec& model, const Tensor& x, const Targets& y, TrainState& state,
                     const std::vector<ScalarArg>& scalars, GradientReduction* reduction) {
  if (state.grads.empty()) state.grads = allocateGrads(model);
  int32_t dropout_seed = intScalar(model, scalars, "dropout_seed");
  int32_t dropout_row = intScalar(model, scalars, "dropout_row");
  int64_t rows = x.dimensions() > 0 ? x.dim(x.dimensions() - 1).extent() : 0;
  if (reduction) reduction->begin(state.grads, rows);
  float loss;
  if (rows > 0) {
    loss = computeGrads(model, x, y, state.params, state.grads, dropout_seed, dropout_row, reduction);
  } else {  // a rank's empty share: one zero row, weighed by 0, so that every rank sends the same sums in order
    std::vector<int> extents(x.dimensions());
    for (int d = 0; d < x.dimensions(); ++d) extents[d] = x.dim(d).extent();
    extents.back() = 1;
    Tensor zero_row(extents);
    zero_row.fill(0.f);
    loss = computeGrads(model, zero_row, allocateTargets(model, 1), state.params, state.grads, dropout_seed,
                        dropout_row, reduction);
  }
  if (reduction) {
    loss = reduction->end(loss);
    for (Tensor& grad : state.grads) grad.set_host_dirty();  // changed on the host: uploaded again on a GPU
  }
  applyUpdate(model, state.grads, state, scalars);
  size_t first_buffer = 0;  // grads' results: the gradients, then the buffers' new values
  for (int i = 0; i < model.num_params; ++i) first_buffer += model.params[i].trainable;
  for (int i = 0, b = 0; i < model.num_params; ++i)
    if (!model.params[i].trainable) state.next_params[i].copy_from(state.grads[first_buffer + b++]);
  state.swap();
  return loss;
}

void predict(const ModelSpec& model, const Tensor& x, const std::vector<Tensor>& params, Tensor& out) {
  Tensor input = asModelInput(model, x);
  int64_t batch = checkBatch(model, input, nullptr, "predict");
  checkParams(model, params, "predict");
  checkArgument(out, static_cast<int>(model.output_rank), model.output_shape, batch, "predict", "output");
  LabelTensor ids = tokenIds(model, input);
  std::vector<void*> args = {ids.data() ? raw(ids) : raw(input)};
  for (const Tensor& p : params) args.push_back(raw(p));
  args.push_back(resultArg(out));
  call(model.predict, "predict", args);
  copyToHost(out, "predict");
}

void sample(const ModelSpec& model, const Tensor& latent, const std::vector<Tensor>& params, Tensor& out) {
  if (!model.sample) throw std::runtime_error(std::string("model `") + model.name + "` has no latent code to decode");
  int64_t batch = latent.dimensions() > 0 ? latent.dim(latent.dimensions() - 1).extent() : 0;
  checkArgument(latent, static_cast<int>(model.latent_rank), model.latent_shape, batch, "sample", "latent codes");
  checkParams(model, params, "sample");
  checkArgument(out, static_cast<int>(model.output_rank), model.output_shape, batch, "sample", "output");
  Tensor codes = uploadedView(latent);
  std::vector<void*> args = {raw(codes)};
  for (const Tensor& p : params) args.push_back(raw(p));
  args.push_back(resultArg(out));
  call(model.sample, "sample", args);
  copyToHost(out, "sample");
}

}  // namespace nnc::rt
