// Model summary for `nnc check`: Program + checked AST -> ModelSummary -> a table (like Keras' model.summary())
// or JSON.
//
// One row per `param` and binding statement, in source order, with the op that produced it, its shape and the
// parameters it created; then parameter, FLOP and activation-memory totals counted on the real graph that
// buildProgram produced (forward, backward, optimizer update).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "compiler/graph/program.h"
#include "dsl/checker.h"

namespace nnc {

struct SummaryInput {
  std::string name;
  DType dtype = DType::F32;
  Shape shape;
};

struct SummaryRow {
  std::string name;  // the binding or `param` statement
  std::string op;    // the callee of a call (`linear`, `relu`, a user function), else the graph op of the result
  std::optional<Shape> shape;  // nullopt where no graph node carries the binding (a number, a renamed alias)
  int64_t params = 0;  // elements of the parameters whose name's first path component is `name`
};

struct ModelSummary {
  std::string model;
  std::vector<SummaryInput> inputs;
  std::vector<SummaryRow> rows;
  int64_t total_params = 0;
  int64_t trainable_params = 0;  // updated by the optimizer
  int64_t batch = 0;             // from the train block; FLOPs and memory are counted at this batch size
  // Forward: the nodes the loss and the output need. Backward: the nodes appended after the forward pass that the
  // `grads` entry's gradients need (the optimizer update excluded). Both divided by `batch`.
  double forward_flops_per_example = 0;
  double backward_flops_per_example = 0;
  // The forward values the backward pass reads (inputs and parameters excluded), 4 bytes per element, at `batch`.
  int64_t activation_bytes = 0;
  // What the kernels would be compiled for (compiler/target.h), with the CPU features they need; empty: not shown.
  std::string target;
  std::vector<std::string> target_cpu_features;
  // As `nnc build` plans it (compiler/plan/plan.h), at `batch`: train_step's arena, the most its intermediates take at
  // once (the arena and one kernel's own), and all of them without sharing; 0: not shown.
  int64_t plan_arena_bytes = 0, plan_peak_bytes = 0, plan_intermediate_bytes = 0;
};

ModelSummary summarize(const Program& program, const dsl::CheckedModule& module);

// The table `nnc check` prints, ending with footnotes on what the counts include.
std::string renderSummaryTable(const ModelSummary& summary);

// The same data as one JSON object (`nnc check --json`).
std::string renderSummaryJson(const ModelSummary& summary);

}  // namespace nnc
