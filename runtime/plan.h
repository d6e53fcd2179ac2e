// The executor of a plan of kernels (compiler/plan/plan.h): an entry point run as its kernels' calls in order, each
// over the entry point's own arguments and results and intermediate buffers. The generated model.cpp defines an
// entry point's `_argv` function as runPlan of its plan, so the rest of the runtime calls it as one kernel.
// Target-neutral: a call is a kernel's `_argv` function and a list of values.
#pragma once

#include <cstdint>
#include <vector>

#include "runtime/plan_core.h"

namespace nnc::rt {

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
