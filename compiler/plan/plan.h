// Entry points as plans of kernels: an entry point's scheduled graph is cut into fusion groups at the values the
// schedule materializes (Funcs computed at root, and the entry's results), each group one Halide pipeline (a
// kernel) with its own arguments and results. Every fusion inside a group is the schedule's (inlining into
// consumers, convolution epilogues, bias gradients summed with weight gradients). Groups with the same content
// (nodes, attributes, shapes, schedule policy, target) share one kernel: the ten 128x128 layers of an MLP compile
// once. Halide's lowering grows much faster than a pipeline, so many small pipelines compile far faster than one
// large one (../shared/HALIDE_NOTES.md, "Compile time").
//
// The runtime runs a plan (runtime/plan.h): the entry point's calls in order, over its arguments, its results and
// intermediate buffers.
#pragma once

#include <string>
#include <vector>

#include "compiler/graph/program.h"
#include "compiler/schedule/policy.h"
#include "compiler/target.h"

namespace nnc {

struct PlanKernel {
  std::string name;  // the Halide function: "k" and 16 hex digits of the hash of `key`
  std::string key;   // the canonical text of its group, what makes two groups one kernel
  EntryPoint entry;  // its first group as a pipeline: arguments in0, in1, ..., results out0, out1, ...
  int batch_estimate = 64;  // the batch an autoscheduler tunes it for
};

// A buffer or scalar a plan passes to its kernels.
struct PlanValue {
  enum class Kind { Argument, Result, Intermediate };
  Kind kind;
  size_t index;  // Argument, Result: the position in the entry point's arguments or results
  NodeId node;
  // Intermediate: where it lives in the entry point's arena, in 4-byte elements. A batched value (of a shape with
  // the batch B) is at offset * B in the arena's batched part, the others at offset after it.
  bool batched = false;
  int64_t offset = 0;
};

// A number of elements: batched * B + fixed.
struct ArenaSize {
  int64_t batched = 0, fixed = 0;
  int64_t elements(int64_t batch) const { return batched * batch + fixed; }
};

struct PlanCall {
  size_t kernel;               // into ProgramPlan::kernels
  std::vector<size_t> values;  // into EntryPlan::values: the kernel's arguments, then its results
  std::string computes;        // the values it materializes: "matmul %23, add %24"
  ArenaSize inside;            // those that are neither results nor in the arena: in Halide's buffers, per call
};

// An entry point's arena holds the values its calls pass each other. Those whose lifetimes (from the call that
// writes them to the last that reads them) do not overlap share memory; `all_intermediates` counts every
// intermediate's own elements, in the arena and inside kernels: what they would take without sharing.
struct EntryPlan {
  const EntryPoint* entry = nullptr;
  std::vector<PlanValue> values;
  std::vector<PlanCall> calls;  // in execution order
  ArenaSize arena, all_intermediates;
  // The most elements a call holds at once: the arena and the call's own intermediates.
  int64_t peakElements(int64_t batch) const;
};

struct ProgramPlan {
  std::vector<PlanKernel> kernels;  // distinct
  std::vector<EntryPlan> entries;   // train_step, grads, predict
};

// The batch size an autoscheduler tunes `entry` for: evaluation's 256 rows for predict, else the train batch.
int batchEstimate(const Program& program, const EntryPoint& entry);

// Plans `entry` as `schedule` for `target` materializes its values; its kernels are added to `kernels`, where an
// identical group's kernel is reused.
EntryPlan planEntry(const Graph& graph, const EntryPoint& entry, const Target& target,
                    const ScheduleOptions& schedule, std::vector<PlanKernel>& kernels);

// Plans every entry point of `program` as nnc's schedules (`policy`) for `target` materialize its values.
ProgramPlan planProgram(const Program& program, const Target& target, SchedulePolicy policy);

// `nnc emit --stage=plan`: each entry point's calls with their buffers, then each kernel with its nodes and the
// number of calls it serves.
std::string printPlan(const Program& program, const ProgramPlan& plan);

}  // namespace nnc
