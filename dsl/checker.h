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

struct OptimizerConfig {
  std::string name = "sgd";
  double lr = 0.01;
  double momentum = 0.0;
  Span span;  // the `optimizer = ...` value; empty when defaulted
};

struct TrainConfig {
  std::string data = "/usr/share/datasets/fashion-mnist";
  int64_t batch = 64;
  int64_t epochs = 1;
  uint64_t seed = 0;
  OptimizerConfig optimizer;
  std::string lr_schedule = "constant";  // or "cosine": lr * (1 + cos(pi * step / steps)) / 2 over the run
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

// "; did you mean `x`?" for the closest candidate, or "" when there is none.
std::string didYouMean(std::string_view name, const std::vector<std::string>& candidates);

}  // namespace nnc::dsl
