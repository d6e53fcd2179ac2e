// Learning-rate schedules; see lr_schedule.h.
#include "runtime/lr_schedule.h"

#include <cmath>

namespace nnc::rt {

double scheduledLr(const ScheduleOptions& s, double lr, int64_t step, int64_t epoch, int64_t total_steps) {
  if (s.name == "cosine")  // lr (1 + cos(pi t / T)) / 2, t and T in steps
    return lr * 0.5 * (1 + std::cos(M_PI * static_cast<double>(step) / static_cast<double>(total_steps)));
  auto t = static_cast<double>(s.per_epoch ? epoch - 1 : step);
  if (s.name == "exponential") return lr * std::exp(-s.k * t);
  if (s.name == "step") return lr * std::pow(s.factor, std::floor(t / static_cast<double>(s.every)));
  if (s.name == "inverse") return lr / (1 + s.k * t);
  return lr;
}

}  // namespace nnc::rt
