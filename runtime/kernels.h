// Calls the generated entry points (see model_spec.h for their argument order) and turns Halide runtime errors
// into exceptions instead of the default abort().
#pragma once

#include <functional>
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

// One optimizer step on a batch; returns the batch's mean loss. Throws std::runtime_error on a kernel error.
float trainStep(const ModelSpec& model, const Tensor& x, const LabelTensor& y, TrainState& state,
                const std::vector<ScalarArg>& scalars);

// The same step as trainStep computed as grads, then update: what data-parallel training does, reducing the
// gradients in between. Parameters come out the same up to float rounding (the two entry points are compiled
// apart, so sums may be grouped differently).
// `reduce`, when given, gets the gradients and the buffers' new values (grads' results), this process's loss and
// rows, and may change them (data-parallel training averages them across processes); it returns the loss to
// report. A batch of no rows (a rank's share of a short last batch) contributes zero gradients and the buffers as
// they are, for `reduce` to weigh by its rows.
using GradientReduction = std::function<float(std::vector<Tensor>& grads, float loss, int64_t rows)>;
float splitTrainStep(const ModelSpec& model, const Tensor& x, const LabelTensor& y, TrainState& state,
                     const std::vector<ScalarArg>& scalars, const GradientReduction& reduce = {});

// The gradients of the batch's mean loss with respect to the trainable parameters (one tensor each, in spec
// order, in `grads`), then the new values of the buffers (BatchNorm's running statistics) after the batch;
// returns the loss. `dropout_seed` picks the masks of models with dropout, counting rows from `dropout_row`.
float computeGrads(const ModelSpec& model, const Tensor& x, const LabelTensor& y, const std::vector<Tensor>& params,
                   std::vector<Tensor>& grads, int32_t dropout_seed, int32_t dropout_row = 0);
// One zero tensor per trainable parameter, then one per buffer, to receive computeGrads' results.
std::vector<Tensor> allocateGrads(const ModelSpec& model);

// The optimizer update alone: state.params and state.states with the gradients `grads` (computeGrads' first
// ones) and train_step's scalars (the dropout seed unused) give state.next_params' trainable parameters and
// state.next_states.
void applyUpdate(const ModelSpec& model, std::vector<Tensor>& grads, TrainState& state,
                 const std::vector<ScalarArg>& scalars);

// The model's output (logits) for a batch of features; `out` has the batch's row count.
void predict(const ModelSpec& model, const Tensor& x, const std::vector<Tensor>& params, Tensor& out);

}  // namespace nnc::rt
