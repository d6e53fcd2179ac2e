// The schedules nnc's own policy is compared with: `naive` (every node's Funcs at root, one thread, no vectors:
// the algorithm as written) and Halide 14's autoschedulers, loaded as plugins. The autoschedulers need an
// estimate of every argument's and output's extents: the batch dimension gets `batch_estimate`, fixed ones
// their size, scalars a typical value.
#include <thread>

#include "compiler/lower.h"

namespace nnc {

namespace {

const char* pluginFile(SchedulePolicy policy) {
  switch (policy) {
    case SchedulePolicy::Li2018: return "libautoschedule_li2018.so";
    case SchedulePolicy::Adams2019: return "libautoschedule_adams2019.so";
    case SchedulePolicy::Mullapudi2016: return "libautoschedule_mullapudi2016.so";
    default: return nullptr;
  }
}

// Halide's registered name of each autoscheduler.
const char* autoschedulerName(SchedulePolicy policy) {
  switch (policy) {
    case SchedulePolicy::Li2018: return "Li2018";
    case SchedulePolicy::Adams2019: return "Adams2019";
    case SchedulePolicy::Mullapudi2016: return "Mullapudi2016";
    default: return nullptr;
  }
}

Halide::Region estimateRegion(const Shape& shape, int batch) {
  Halide::Region region;
  for (auto dim = shape.rbegin(); dim != shape.rend(); ++dim)  // Halide order: innermost first
    region.emplace_back(0, dim->isSymbolic() ? batch : static_cast<int>(dim->extent));
  return region;
}

void scheduleNaive(LoweredEntry& lowered) {
  for (auto& [id, node] : lowered.nodes) {
    node.func.compute_root();
    for (Halide::Func helper : node.helpers) helper.compute_root();
  }
}

void autoschedule(const Graph& graph, LoweredEntry& lowered, const ScheduleOptions& schedule) {
  for (auto& [id, image] : lowered.images) {
    image.set_estimates(estimateRegion(graph.node(id).shape, schedule.batch_estimate));
  }
  // Through the Parameter: Halide 14's Param<void>::set_estimate rejects every value as lossy.
  for (auto& [id, scalar] : lowered.scalars)
    scalar.parameter().set_estimate(scalar.type().is_float() ? Halide::Expr(0.01f) : Halide::Expr(int32_t{1}));
  for (size_t i = 0; i < lowered.outputs.size(); ++i)
    lowered.outputs[i].set_estimates(estimateRegion(graph.node(lowered.output_nodes[i]).shape, schedule.batch_estimate));
  Halide::load_plugin(std::string(NNC_AUTOSCHEDULER_DIR) + "/" + pluginFile(schedule.policy));
  // The machine: its hardware threads, a 16 MB last-level cache, and Halide's default compute/memory balance.
  Halide::MachineParams machine(static_cast<int>(std::max(1u, std::thread::hardware_concurrency())), 16 << 20, 40);
  lowered.pipeline().auto_schedule(autoschedulerName(schedule.policy), Halide::get_host_target(), machine);
}

}  // namespace

void scheduleEntryWith(const Graph& graph, LoweredEntry& lowered, const ScheduleOptions& schedule) {
  if (schedule.policy == SchedulePolicy::Manual) scheduleEntry(graph, lowered);
  else if (schedule.policy == SchedulePolicy::Naive) scheduleNaive(lowered);
  else autoschedule(graph, lowered, schedule);
}

}  // namespace nnc
