// Checker: AST -> CheckedModule. Resolves names inside the one model (inputs, params and bindings,
// each visible after its declaration), finds the `loss` binding and the `return`, and turns the
// `train { ... }` block into a TrainConfig. Shapes and op names are checked later, by the graph builder.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dsl/ast.h"
#include "dsl/diagnostics.h"

namespace nnc::dsl {

// The optimizer and its hyperparameters, named as PyTorch's torch.optim arguments.
struct OptimizerConfig {
  std::string name = "sgd";
  double lr = 0.01;
  double momentum = 0.0;
  bool nesterov = false;
  double weight_decay = 0.0;  // sgd, rmsprop, adam: g + weight_decay * p; adamw: decoupled, p * (1 - lr wd)
  double alpha = 0.99;        // rmsprop: smoothing of the squared gradient
  double beta1 = 0.9, beta2 = 0.999;  // adam, adamw
  double eps = 1e-8;          // rmsprop, adam, adamw
  Span span;  // the `optimizer = ...` value; empty when defaulted
};

// How the learning rate moves during a run (t counts steps or epochs, from 0).
struct LrScheduleConfig {
  std::string name = "constant";  // constant, cosine, exponential, step, inverse
  double k = 0;                   // exponential: lr * exp(-k t); inverse: lr / (1 + k t)
  double factor = 0.5;            // step: lr * factor^floor(t / every)
  int64_t every = 1;
  bool per_epoch = true;          // t counts epochs (false: optimizer steps); cosine anneals per step
};

struct EarlyStoppingConfig {
  int64_t patience = 0;              // epochs without improvement before stopping; 0: off
  std::string monitor = "val_loss";  // or val_accuracy
  Span span;                         // the `early_stopping = ...` value; empty when not set
};

struct TrainConfig {
  std::string data = "/usr/share/datasets/fashion-mnist";
  int64_t batch = 64;
  int64_t epochs = 1;
  uint64_t seed = 0;
  OptimizerConfig optimizer;
  LrScheduleConfig lr_schedule;
  double validation_split = 0;  // fraction of the training set held out (seeded), 0: none
  double clip_grad_norm = 0;    // scale gradients down to this global L2 norm (torch's clip_grad_norm_), 0: off
  EarlyStoppingConfig early_stopping;
  std::string label_column = "label";  // CSV data: the label column's name, or its 0-based index
  std::string normalize = "none";      // none, scale (per-feature min-max to [0, 1]) or standardize (mean 0, std 1)
  double augment_flip = 0;             // probability of a horizontal flip per training image
  int64_t augment_shift = 0;           // random shift of training images by up to this many pixels, zero-filled
};

struct CheckedModule {
  const Module* module;    // not owned
  const ModelDecl* model;  // the one model
  const Stmt* loss;        // the binding named `loss`
  const Stmt* output;      // the `return` statement
  TrainConfig train;
};

// Resolves names and validates the train block. Returns nullopt if any error was reported
// (by this or an earlier stage).
std::optional<CheckedModule> check(const Module& module, DiagnosticEngine& diags);

// The candidate closest to `name` by edit distance, if it is a plausible typo (distance <= 2 and
// shorter than `name`); ties go to the earlier candidate. Used for "did you mean `x`?" hints.
std::optional<std::string> closestName(std::string_view name, const std::vector<std::string>& candidates);

// "`a`, `b`, `c`"
std::string backtickList(const std::vector<std::string>& names);

// The value of a numeric literal, optionally negated (`3`, `-0.5`); nullopt for any other expression.
std::optional<double> literalNumber(const Expr& expr);

// "; did you mean `x`?" for the closest candidate, or "" when there is none.
std::string didYouMean(std::string_view name, const std::vector<std::string>& candidates);

}  // namespace nnc::dsl
