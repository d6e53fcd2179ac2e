// Schedule policy names (see policy.h).
#include "compiler/schedule/policy.h"

namespace nnc {

const std::vector<std::string>& schedulePolicyNames() {
  static const std::vector<std::string> names = {"manual", "naive", "li2018", "adams2019", "mullapudi2016"};
  return names;
}

std::optional<SchedulePolicy> parseSchedulePolicy(const std::string& name) {
  const std::vector<std::string>& names = schedulePolicyNames();
  for (size_t i = 0; i < names.size(); ++i)
    if (names[i] == name) return static_cast<SchedulePolicy>(i);
  return std::nullopt;
}

const std::string& schedulePolicyName(SchedulePolicy policy) {
  return schedulePolicyNames().at(static_cast<size_t>(policy));
}

}  // namespace nnc
