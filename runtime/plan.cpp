// The plan executor; see plan.h.
#include "runtime/plan.h"

#include <HalideRuntime.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <vector>

#include "runtime/block_cache.h"

namespace nnc::rt {

namespace {

// One plan's intermediate buffers on one thread, kept from call to call: on a GPU target each holds a device
// allocation that the next call reuses (a kernel allocates device memory for a result that has none), until a
// call with another batch size frees them.
struct PlanBuffers {
  int64_t batch = -1;
  std::vector<halide_buffer_t> buffers;
  std::vector<halide_dimension_t> dims;
  std::vector<void*> argv;  // one call's arguments
  std::vector<std::vector<int>> finished_after;  // per call, the entry arguments no later call uses (when watched)

  void freeDeviceMemory() {
    for (halide_buffer_t& buffer : buffers)
      if (buffer.device) halide_device_free(nullptr, &buffer);
  }
  ~PlanBuffers() { freeDeviceMemory(); }
};

// --profile: the calls and time of each call of each plan, in the order plans first ran.
struct CallTimes {
  int64_t calls = 0;
  double seconds = 0;
};
std::vector<std::pair<const PlanSpec*, std::vector<CallTimes>>>& profiles() {
  static std::vector<std::pair<const PlanSpec*, std::vector<CallTimes>>> all;
  return all;
}

std::vector<CallTimes>& profileOf(const PlanSpec& plan) {
  auto& all = profiles();
  for (auto& [spec, times] : all)
    if (spec == &plan) return times;
  if (all.empty()) std::atexit(printPlanProfile);
  all.emplace_back(&plan, std::vector<CallTimes>(plan.num_calls));
  return all.back().second;
}

thread_local PlanWatcher* watcher = nullptr;

// For each call, the entry arguments whose last use it is.
std::vector<std::vector<int>> lastUses(const PlanSpec& plan) {
  std::vector<int> last(plan.num_entry_args, -1);
  for (int c = 0; c < plan.num_calls; ++c)
    for (int a = 0; a < plan.calls[c].num_args; ++a)
      if (int id = plan.calls[c].args[a]; id < plan.num_entry_args) last[id] = c;
  std::vector<std::vector<int>> finished(plan.num_calls);
  for (int id = 0; id < plan.num_entry_args; ++id)
    if (last[id] >= 0) finished[last[id]].push_back(id);
  return finished;
}

}  // namespace

WatchPlans::WatchPlans(PlanWatcher& plan_watcher) { watcher = &plan_watcher; }
WatchPlans::~WatchPlans() { watcher = nullptr; }

void printPlanProfile() {
  struct Row {
    const PlanSpec* plan;
    int call;
    CallTimes times;
  };
  std::vector<Row> rows;
  double total = 0;
  for (const auto& [plan, times] : profiles())
    for (int c = 0; c < plan->num_calls; ++c)
      if (times[c].calls) {
        rows.push_back({plan, c, times[c]});
        total += times[c].seconds;
      }
  if (rows.empty()) return;
  std::stable_sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) { return a.times.seconds > b.times.seconds; });
  std::fprintf(stderr, "nnc profile: %zu kernel calls by total time (wall clock; Halide's profile lists each kernel's stages)\n", rows.size());
  std::fprintf(stderr, "%-11s %4s  %-17s %8s %10s %10s %6s  %s\n", "entry", "call", "kernel", "calls", "ms/call",
               "total ms", "share", "computes");
  for (const Row& row : rows) {
    const PlanCallSpec& call = row.plan->calls[row.call];
    std::fprintf(stderr, "%-11s %4d  %-17s %8lld %10.4f %10.2f %5.1f%%  %s\n", row.plan->entry, row.call, call.name,
                 static_cast<long long>(row.times.calls), 1e3 * row.times.seconds / row.times.calls,
                 1e3 * row.times.seconds, 100 * row.times.seconds / total, call.computes);
  }
}

// Shapes `scratch`'s buffers for `batch` (after freeing the device memory of another batch size's).
void shapeBuffers(const PlanSpec& plan, int64_t batch, PlanBuffers& scratch) {
  scratch.freeDeviceMemory();
  scratch.batch = batch;
  scratch.buffers.resize(plan.num_buffers);
  scratch.dims.resize(static_cast<size_t>(plan.num_buffers) * kMaxRank);
  shapePlanBuffers(plan, batch, scratch.buffers.data(), scratch.dims.data());
}

int runPlan(const PlanSpec& plan, void** args) {
  thread_local std::map<const PlanSpec*, PlanBuffers> scratches;
  PlanBuffers& scratch = scratches[&plan];
  int64_t batch = planBatch(plan, args);
  if (batch != scratch.batch) shapeBuffers(plan, batch, scratch);
  setAllocationContext(plan.entry, nullptr);
  auto* arena = static_cast<float*>(cachedMalloc(nullptr, static_cast<size_t>(planArenaElements(plan, batch)) * 4));
  placePlanBuffers(plan, batch, arena, scratch.buffers.data());
  int result = 0;
  for (int c = 0; c < plan.num_calls && result == 0; ++c) {
    const PlanCallSpec& call = plan.calls[c];
    scratch.argv.resize(call.num_args);
    setAllocationContext(plan.entry, call.computes);
    auto start = std::chrono::steady_clock::now();
    result = runPlanCall(plan, c, args, scratch.buffers.data(), scratch.argv.data());
    if (plan.profiled) {
      CallTimes& times = profileOf(plan)[c];
      ++times.calls;
      times.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    }
    if (watcher && result == 0) {
      if (scratch.finished_after.empty()) scratch.finished_after = lastUses(plan);
      watcher->afterCall(scratch.finished_after[c]);
    }
  }
  setAllocationContext(nullptr, nullptr);
  cachedFree(nullptr, arena);
  return result;
}

}  // namespace nnc::rt
