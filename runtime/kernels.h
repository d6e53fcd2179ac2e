// Calls the generated entry points (see model_spec.h for their argument order) and turns Halide runtime errors
// into exceptions instead of the default abort().
#pragma once

#include <vector>

#include "runtime/tensor.h"

namespace nnc::rt {

// Model parameters plus optimizer state, double-buffered: a step reads `current` and writes `next`, then they
// swap (Halide pipelines must never read and write the same buffer).
struct TrainState {
  std::vector<Tensor> params, states;
  std::vector<Tensor> next_params, next_states;
  // Reused by every step, so the training loop allocates nothing: the loss and the argument array; for a step
  // split in grads and update, the gradients and the buffers' new values (allocated by its first step).
  Tensor loss = Tensor::make_scalar();
  std::vector<void*> args;
  std::vector<Tensor> grads;
  void swap();
};

TrainState allocateTrainState(const ModelSpec& model);

// Sets the Halide runtime's error handler, allocator and thread pool (thread_pool.h; 0 threads: one per core);
// call once before any kernel.
void initKernels(int threads);

// Brings tensors that kernels of a GPU target left on the device (parameters, optimizer state) to the host,
// before the host reads them; nothing to do on a CPU target. Throws std::runtime_error when the copy fails.
void copyToHost(std::vector<Tensor>& tensors);

// A batch's second model input, by the model's task (ModelSpec::task): class labels (a classifier: i32 [rows]),
// target values (a regressor: f32 of the target input's shape), or neither (a model reconstructing its input).
struct Targets {
  LabelTensor labels;
  Tensor values;
  Targets cropped(int rows) const;  // the first `rows` examples
};
// Zero targets for `rows` examples, as the model takes them; `what` names them in errors.
Targets allocateTargets(const ModelSpec& model, int64_t rows, const std::string& what = "the batch's targets");

// A scalar argument of train_step: a float, or the int32 dropout seed.
union ScalarArg {
  float f;
  int32_t i;
};

// Sets `values` to train_step's scalar arguments (ModelSpec::scalars) for optimizer step `step` (0-based) of a
// run seeded with `seed` (reusing its storage).
// `first_row` is the batch's first row within the step's global batch (a rank's offset in data-parallel training),
// from which the dropout masks count their rows.
void stepScalars(const ModelSpec& model, double lr, int64_t step, uint64_t seed, std::vector<ScalarArg>& values,
                 int64_t first_row = 0);

// The int32 scalar `name` (dropout_seed, dropout_row) among stepScalars' values; 0 when the model has none.
int32_t intScalar(const ModelSpec& model, const std::vector<ScalarArg>& scalars, const char* name);

// One optimizer step on a batch; returns the batch's mean loss. Throws std::runtime_error on a kernel error.
float trainStep(const ModelSpec& model, const Tensor& x, const Targets& y, TrainState& state,
                const std::vector<ScalarArg>& scalars);

// Combines a step's gradients across processes before its update (data-parallel training averages them over the
// ranks: runtime/rank_average.h). grads hands over each of its results as soon as no later kernel touches it, so
// the reduction may send some while the rest of the backward pass runs.
class GradientReduction {
 public:
  // Before grads: the tensors that will hold its results (the gradients, then the buffers' new values) and this
  // process's rows of the step (0: a rank's empty share of a short last batch, whose results are placeholders).
  virtual void begin(std::vector<Tensor>& results, int64_t rows) = 0;
  // Whether grads should report results as they become final; otherwise end() takes them all.
  virtual bool overlaps() const = 0;
  // results[r] is final and on the host. Every process reports the same results in the same order.
  virtual void finished(size_t r) = 0;
  // Called between grads' kernels: a chance for communication to progress.
  virtual void progress() = 0;
  // After grads: leaves the combined values in the results (those not reported yet are taken in order) and returns
  // the loss to report.
  virtual float end(float loss) = 0;

 protected:
  ~GradientReduction() = default;
};

// The same step as trainStep computed as grads, then update: what data-parallel training does, with `reduction`
// combining the gradients in between. Parameters come out the same up to float rounding (the two entry points
// are compiled apart, so sums may be grouped differently).
float splitTrainStep(const ModelSpec& model, const Tensor& x, const Targets& y, TrainState& state,
                     const std::vector<ScalarArg>& scalars, GradientReduction* reduction = nullptr);

// The gradients of the batch's mean loss with respect to the trainable parameters (one tensor each, in spec
// order, in `grads`), then the new values of the buffers (BatchNorm's running statistics) after the batch;
// returns the loss. `dropout_seed` picks the masks of models with dropout, counting rows from `dropout_row`.
// With `reduction` overlapping, its finished() and progress() are called as the kernels run.
float computeGrads(const ModelSpec& model, const Tensor& x, const Targets& y, const std::vector<Tensor>& params,
                   std::vector<Tensor>& grads, int32_t dropout_seed, int32_t dropout_row = 0,
                   GradientReduction* reduction = nullptr);
// One zero tensor per trainable parameter, then one per buffer, to receive computeGrads' results.
std::vector<Tensor> allocateGrads(const ModelSpec& model);

// The optimizer update alone: state.params and state.states with the gradients `grads` (computeGrads' first
// ones) and train_step's scalars (the dropout seed unused) give state.next_params' trainable parameters and
// state.next_states.
void applyUpdate(const ModelSpec& model, std::vector<Tensor>& grads, TrainState& state,
                 const std::vector<ScalarArg>& scalars);

// The model's output (logits) for a batch of features; `out` has the batch's row count.
void predict(const ModelSpec& model, const Tensor& x, const std::vector<Tensor>& params, Tensor& out);

// The model's output for a batch of latent codes (of ModelSpec::latent_shape) in place of features: a model that
// marks `latent(z)`, ModelSpec::sample set.
void sample(const ModelSpec& model, const Tensor& latent, const std::vector<Tensor>& params, Tensor& out);

}  // namespace nnc::rt
