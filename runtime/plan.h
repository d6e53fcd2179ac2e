// The executor of a plan of kernels (compiler/plan/plan.h): an entry point run as its kernels' calls in order, each
// over the entry point's own arguments and results and intermediate buffers. The generated model.cpp defines an
// entry point's `_argv` function as runPlan of its plan, so the rest of the runtime calls it as one kernel.
// Target-neutral: a call is a kernel's `_argv` function and a list of values.
#pragma once

#include <cstdint>
#include <vector>

#include "runtime/model_spec.h"

namespace nnc::rt {

// An intermediate buffer: its element type, row-major shape (kBatchDim for the batch) and place in the arena:
// a batched buffer at element offset * B, the others at arena_batched * B + offset.
struct PlanBufferSpec {
  bool is_integer;
  int rank;
  int64_t shape[kMaxRank];
  bool batched;
  int64_t offset;
};

// A call: `args` are value ids; id < the entry's argument count is that argv entry (a buffer, or a pointer to a
// scalar), the others intermediate buffer id - that count.
struct PlanCallSpec {
  EntryFn kernel;
  const char* name;
  const char* computes;  // the values it materializes, for --profile: "matmul %23, add %24"
  int num_args;
  const int* args;
};

struct PlanSpec {
  const char* entry;   // train_step, grads or predict
  bool profiled;       // built with --profile: time each call (printPlanProfile)
  int num_entry_args;  // the entry point's arguments and results, as in its argv
  int num_buffers;
  const PlanBufferSpec* buffers;
  int num_calls;
  const PlanCallSpec* calls;
  int batch_arg;  // the argv buffer whose dimension `batch_dim` (Halide order) is the batch; -1: none
  int batch_dim;
  int64_t arena_batched, arena_fixed;  // the arena's 4-byte elements: arena_batched * B + arena_fixed
};

// Runs `plan` on an entry point's argv; returns 0 or the failing kernel's Halide error code. The intermediate
// buffers share one arena planned at compile time (compiler/plan/plan.h), from the block cache
// (runtime/block_cache.h), so after the first call a step allocates nothing.
int runPlan(const PlanSpec& plan, void** args);

// Told after each call of a plan run on this thread which entry arguments (argv indices) no later call of the
// plan reads or writes, so an entry result is final from then on (none, most of the time: the call is also a
// chance to let communication progress). Data-parallel training all-reduces gradients there while the rest of
// the backward pass runs. Entry points not compiled as plans (--single-pipeline) never report.
class PlanWatcher {
 public:
  virtual void afterCall(const std::vector<int>& finished_args) = 0;

 protected:
  ~PlanWatcher() = default;
};
// Installs `watcher` for the plans run on this thread until the guard goes.
class WatchPlans {
 public:
  explicit WatchPlans(PlanWatcher& watcher);
  ~WatchPlans();
  WatchPlans(const WatchPlans&) = delete;
  WatchPlans& operator=(const WatchPlans&) = delete;
};

// With --profile, the time of every call of every plan run so far, slowest kernel first; printed at exit.
void printPlanProfile();

}  // namespace nnc::rt
