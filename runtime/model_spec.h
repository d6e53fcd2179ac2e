// The contract between `nnc build` and the runtime: the generated model.cpp defines `nnc::rt::kModel`, a
// description of the model (parameters, inputs, entry points, train-block defaults) that the trainer reads.
//
// Entry points are Halide AOT pipelines called through their `_argv` form (an array of pointers: a
// halide_buffer_t* per tensor, a pointer to the value per scalar), in this order:
//   train_step(inputs..., params..., states..., &scalar...) -> (loss, new params..., new states...)
// where the scalars are named in ModelSpec::scalars: "lr", then for Adam "bias_correction1" (1 - beta1^t) and
// "bias_correction2" (1 - beta2^t), t the 1-based optimizer step, then for models with dropout
// "dropout_seed" (an int32 hashed from the run's seed and the step; see stepScalars) and "dropout_row" (the
// batch's first row in the step's global batch: a rank's offset in data-parallel training, else 0).
// Params include buffers (batch_norm's running statistics): kept, passed and checkpointed like parameters, but
// not trained; train_step returns their new values among the new params.
//   grads(inputs..., params..., [&dropout_seed, &dropout_row]) -> (loss, grads of the trainable params...)
//   predict(features, params...)                     -> (output)
// grads also returns the buffers' new values after the gradients; and
//   update(grads..., trainable params..., states..., &lr, [&bias_correction1, &bias_correction2])
//                                                    -> (new trainable params..., new states...)
// is train_step's update alone, for a step whose gradients come from elsewhere (all-reduced across processes).
// A model that marks a latent code (`latent(z)`) also has
//   sample(latent, params...)                        -> (output)
// the prediction computed from latent codes given in place of the features (a VAE's decoder).
#pragma once

#include <cstdint>

namespace nnc::rt {

constexpr int kMaxRank = 6;
constexpr int64_t kBatchDim = -1;  // a symbolic (batch) dimension in a shape

enum class InitKind { Zeros, Ones, Constant, Uniform, Normal, XavierUniform, XavierNormal, HeUniform, HeNormal };

struct ParamSpec {
  const char* name;  // checkpoint name, e.g. "fc1.weight"
  int rank;
  int64_t shape[kMaxRank];  // row-major
  InitKind init;
  double a, b;  // Constant: value; Uniform: low, high; Normal: mean, std; Xavier/He: gain
  bool trainable;  // false for buffers
  bool is_integer;  // a count (batch_norm's num_batches_tracked): f32 in the kernels, I64 in checkpoints as in PyTorch
};

struct StateSpec {
  const char* name;  // e.g. "fc1.weight.momentum_buffer"
  int param;         // index of the parameter it belongs to (same shape)
};

struct InputSpec {
  const char* name;
  bool is_integer;  // labels (i32) vs features (f32)
  int rank;
  int64_t shape[kMaxRank];  // kBatchDim where symbolic
};

using EntryFn = int (*)(void** args);

// How the learning rate moves during a run (dsl/REFERENCE.md, the train block); t counts epochs or steps.
struct LrSchedule {
  const char* name;  // constant, cosine, exponential, step, inverse
  double k;          // exponential: lr * exp(-k t); inverse: lr / (1 + k t)
  double factor;     // step: lr * factor^floor(t / every)
  int64_t every;
  bool per_epoch;
};

// The train block's values; the command line overrides them. Optimizer settings other than `lr` are compiled
// into train_step.
struct TrainDefaults {
  const char* data;
  int64_t batch;
  int64_t epochs;
  uint64_t seed;
  const char* optimizer;
  double lr;
  double momentum;
  bool nesterov;
  double weight_decay;
  double beta1, beta2;  // adam, adamw
  LrSchedule lr_schedule;
  double validation_split;  // fraction of the training set held out, 0: none
  int64_t patience;         // early stopping after this many epochs without improvement, 0: off
  const char* monitor;      // val_loss or val_accuracy
  const char* label_column;  // CSV data: the label column's name or 0-based index
  const char* normalize;     // none, scale or standardize (per feature, fitted on the training split)
  double augment_flip;       // probability of flipping a training image horizontally
  int64_t augment_shift;     // shift training images by up to this many pixels (zero fill)
};

// The eval-mode graph as ONNX, serialized by `nnc build` (compiler/onnx/onnx_export.h) for `export --onnx`
// (runtime/onnx_writer.h), which adds the checkpoint's parameters and normalization as initializers.
struct OnnxGraph {
  const char* error;       // why the model has no ONNX form; "" when it has one
  const char* model_head;  // a serialized ModelProto without its graph
  int64_t model_head_size;
  const char* graph[2];  // serialized GraphProtos: [0] on the features as given, [1] normalizing them first
  int64_t graph_size[2];
  const char* constants;  // a serialized GraphProto of the constants' initializers, which either graph reads
  int64_t constants_size;
  const char* normalization[2];  // graph[1]'s initializer names: offset, scale (per feature)
  const int* params;  // the parameters the graph reads
  int num_params;
};

struct ModelSpec {
  const char* name;
  const char* target;        // Halide target string the kernels were compiled for
  const char* target_name;   // as `nnc build --target` named it: "host", "x86-64-v3", or the Halide string
  const char* const* cpu_features;  // what a CPU needs to run the kernels (runtime/cpu_features.h names)
  int num_cpu_features;
  const ParamSpec* params;
  int num_params;
  const StateSpec* states;
  int num_states;
  const InputSpec* inputs;  // features first, then labels
  int num_inputs;
  int64_t output_rank;
  int64_t output_shape[kMaxRank];  // of `predict`'s output, kBatchDim where symbolic
  TrainDefaults train;
  const char* const* scalars;  // train_step's scalar arguments, in order
  int num_scalars;
  EntryFn train_step;
  EntryFn grads;
  EntryFn predict;
  int64_t max_elements_per_example;  // of any tensor with the batch dimension: batch * this must index in 32 bits
  EntryFn update;
  // What the output is (compiler/graph/graph.h, Task): "classify" (inputs: features, i32 labels), "regress"
  // (features, f32 targets of the output's shape) or "reconstruct" (features only, the output's target).
  const char* task;
  // Regress and reconstruct: how the loss compares the prediction with its target, the metric `eval` reports as
  // the loss: "mse", "l1", "binary_cross_entropy" or "binary_cross_entropy_with_logits"; classify: "".
  const char* criterion;
  EntryFn sample;  // nullptr without a latent code
  int64_t latent_rank;
  int64_t latent_shape[kMaxRank];  // kBatchDim where symbolic
  // Features that are token ids index embedding tables: each id must be below this (the smallest table's rows);
  // 0 when the features are no ids.
  int64_t token_ids_below;
  OnnxGraph onnx;
};

// Defined by the generated model.cpp.
extern const ModelSpec kModel;

// The trainer's command line (runtime/trainer_cli.cpp); the generated main() calls it with kModel.
int runTrainer(const ModelSpec& model, int argc, char** argv);

}  // namespace nnc::rt
