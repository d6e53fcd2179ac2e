// The schedules nnc's own policy is compared with: `naive` (every node's Funcs at root, one thread, no vectors:
// the algorithm as written) and Halide 14's autoschedulers, loaded as plugins. The autoschedulers need an
// estimate of every argument's and output's extents: the batch dimension gets `batch_estimate`, fixed ones
// their size, scalars a typical value.
#include <stdexcept>
#include <thread>

#include "compiler/lower/lower.h"

namespace nnc {

namespace {

struct Autoscheduler {
  const char* name;    // as Halide registers it
  const char* plugin;  // the shared library that registers it
};

Autoscheduler autoscheduler(SchedulePolicy policy) {
  switch (policy) {
    case SchedulePolicy::Li2018: return {"Li2018", "libautoschedule_li2018.so"};
    case SchedulePolicy::Adams2019: return {"Adams2019", "libautoschedule_adams2019.so"};
    case SchedulePolicy::Mullapudi2016: return {"Mullapudi2016", "libautoschedule_mullapudi2016.so"};
    default: throw std::logic_error("internal error: " + schedulePolicyName(policy) + " is not an autoscheduler");
  }
}

Halide::Region estimateRegion(const Shape& shape, int batch) {
  Halide::Region region;
  for (int extent : halideExtents(shape, batch)) region.emplace_back(0, extent);
  return region;
}

void scheduleNaive(LoweredEntry& lowered) {
  for (auto& [id, node] : lowered.nodes) {
    node.func.compute_root();
    for (Halide::Func helper : node.helpers) helper.compute_root();
  }
}

void autoschedule(const Graph& graph, LoweredEntry& lowered, const ScheduleOptions& schedule) {
  int batch = schedule.batch_estimate;
  for (auto& [id, image] : lowered.images) image.set_estimates(estimateRegion(graph.node(id).shape, batch));
  // Through the Parameter: Halide 14's Param<void>::set_estimate rejects every value as lossy.
  for (auto& [id, scalar] : lowered.scalars)
    scalar.parameter().set_estimate(scalar.type().is_float() ? Halide::Expr(0.01f) : Halide::Expr(int32_t{1}));
  for (size_t i = 0; i < lowered.outputs.size(); ++i)
    lowered.outputs[i].set_estimates(estimateRegion(graph.node(lowered.output_nodes[i]).shape, batch));
  Autoscheduler chosen = autoscheduler(schedule.policy);
  Halide::load_plugin(std::string(NNC_AUTOSCHEDULER_DIR) + "/" + chosen.plugin);
  // The machine: its hardware threads, a 16 MB last-level cache, and Halide's default compute/memory balance.
  Halide::MachineParams machine(static_cast<int>(std::max(1u, std::thread::hardware_concurrency())), 16 << 20, 40);
  lowered.pipeline().auto_schedule(chosen.name, lowered.target, machine);
}

}  // namespace

void scheduleEntryWith(const Graph& graph, LoweredEntry& lowered, const ScheduleOptions& schedule) {
  if (lowered.target.has_gpu_feature()) scheduleEntryForGpu(graph, lowered);  // the driver allows only `manual`
  else if (schedule.policy == SchedulePolicy::Manual) scheduleEntry(graph, lowered);
  else if (schedule.policy == SchedulePolicy::Naive) scheduleNaive(lowered);
  else autoschedule(graph, lowered, schedule);
}

}  // namespace nnc
