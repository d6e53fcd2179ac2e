// Who schedules an entry point: nnc's own policy per op family (compiler/schedule/cpu.cpp); `naive`, every node at
// root, serial and scalar (the reference the benchmarks measure schedules against); or one of the
// autoschedulers that ship with Halide 14, given estimates of every argument's extents (compiler/schedule/autoschedule.cpp).
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace nnc {

enum class SchedulePolicy { Manual, Naive, Li2018, Adams2019, Mullapudi2016 };

struct ScheduleOptions {
  SchedulePolicy policy = SchedulePolicy::Manual;
  int batch_estimate = 64;  // the batch size autoschedulers tune for
};

const std::vector<std::string>& schedulePolicyNames();  // "manual", "naive", "li2018", ... in enum order
std::optional<SchedulePolicy> parseSchedulePolicy(const std::string& name);
const std::string& schedulePolicyName(SchedulePolicy policy);

}  // namespace nnc
