// Learning-rate schedules (the train block's `lr_schedule`, formulas in dsl/REFERENCE.md).
#pragma once

#include <cstdint>
#include <string>

namespace nnc::rt {

// A schedule of a run (model_spec.h's LrSchedule, owning its name).
struct ScheduleOptions {
  std::string name = "constant";  // constant, cosine, exponential, step, inverse
  double k = 0, factor = 0.5;
  int64_t every = 1;
  bool per_epoch = true;  // t counts epochs (from 0) or optimizer steps; cosine always anneals per step
};

// The learning rate of optimizer step `step` (0-based) in epoch `epoch` (1-based) of a run of `total_steps`.
double scheduledLr(const ScheduleOptions& schedule, double lr, int64_t step, int64_t epoch, int64_t total_steps);

}  // namespace nnc::rt
