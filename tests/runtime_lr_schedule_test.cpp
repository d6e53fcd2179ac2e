// Learning-rate schedules against their formulas at hand-picked points.
#include <gtest/gtest.h>

#include <cmath>

#include "runtime/lr_schedule.h"

namespace nnc::rt {
namespace {

TEST(LrSchedule, ConstantAndCosine) {
  EXPECT_DOUBLE_EQ(scheduledLr({"constant"}, 0.1, 500, 3, 1000), 0.1);
  EXPECT_DOUBLE_EQ(scheduledLr({"cosine"}, 0.1, 0, 1, 1000), 0.1);
  EXPECT_NEAR(scheduledLr({"cosine"}, 0.1, 500, 3, 1000), 0.05, 1e-15);
  EXPECT_NEAR(scheduledLr({"cosine"}, 0.1, 1000, 5, 1000), 0.0, 1e-15);
}

TEST(LrSchedule, StepHalvesEveryTwoEpochs) {
  ScheduleOptions s{"step", 0, 0.5, 2, true};
  EXPECT_DOUBLE_EQ(scheduledLr(s, 0.1, 999, 1, 9999), 0.1);   // epoch 1: t = 0
  EXPECT_DOUBLE_EQ(scheduledLr(s, 0.1, 999, 2, 9999), 0.1);   // t = 1
  EXPECT_DOUBLE_EQ(scheduledLr(s, 0.1, 999, 3, 9999), 0.05);  // t = 2
  EXPECT_DOUBLE_EQ(scheduledLr(s, 0.1, 999, 5, 9999), 0.025);
}

TEST(LrSchedule, ExponentialAndInversePerStep) {
  ScheduleOptions exponential{"exponential", 0.01, 0.5, 1, false};
  EXPECT_DOUBLE_EQ(scheduledLr(exponential, 0.2, 100, 7, 9999), 0.2 * std::exp(-1.0));
  ScheduleOptions inverse{"inverse", 0.5, 0.5, 1, true};
  EXPECT_DOUBLE_EQ(scheduledLr(inverse, 0.3, 12345, 3, 99999), 0.3 / 2);  // epoch 3: t = 2
}

}  // namespace
}  // namespace nnc::rt
