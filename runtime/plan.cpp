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
  scratch.buffers.assign(plan.num_buffers, halide_buffer_t{});
  scratch.dims.resize(static_cast<size_t>(plan.num_buffers) * kMaxRank);
  for (int b = 0; b < plan.num_buffers; ++b) {
    const PlanBufferSpec& spec = plan.buffers[b];
    halide_buffer_t& buffer = scratch.buffers[b];
    buffer.type = spec.is_integer ? halide_type_t(halide_type_int, 32) : halide_type_t(halide_type_float, 32);
    buffer.dimensions = spec.rank;
    buffer.dim = &scratch.dims[static_cast<size_t>(b) * kMaxRank];
    int64_t elements = 1;
    for (int d = 0; d < spec.rank; ++d) {  // Halide order: innermost first
      int64_t extent = spec.shape[spec.rank - 1 - d] == kBatchDim ? batch : spec.shape[spec.rank - 1 - d];
      buffer.dim[d] = halide_dimension_t(0, static_cast<int32_t>(extent), static_cast<int32_t>(elements));
      elements *= extent;
    }
  }
}

int runPlan(const PlanSpec& plan, void** args) {
  thread_local std::map<const PlanSpec*, PlanBuffers> scratches;
  PlanBuffers& scratch = scratches[&plan];
  int64_t batch = 1;
  if (plan.batch_arg >= 0) batch = static_cast<halide_buffer_t*>(args[plan.batch_arg])->dim[plan.batch_dim].extent;
  if (batch != scratch.batch) shapeBuffers(plan, batch, scratch);
  int64_t batched_elements = plan.arena_batched * batch;
  setAllocationContext(plan.entry, nullptr);
  auto* arena = static_cast<float*>(cachedMalloc(nullptr, static_cast<size_t>(batched_elements + plan.arena_fixed) * 4));
  for (int b = 0; b < plan.num_buffers; ++b) {
    const PlanBufferSpec& spec = plan.buffers[b];
    float* start = spec.batched ? arena + spec.offset * batch : arena + batched_elements + spec.offset;
    scratch.buffers[b].host = reinterpret_cast<uint8_t*>(start);
  }
  int result = 0;
  for (int c = 0; c < plan.num_calls && result == 0; ++c) {
    const PlanCallSpec& call = plan.calls[c];
    scratch.argv.resize(call.num_args);
    for (int a = 0; a < call.num_args; ++a) {
      int id = call.args[a];
      scratch.argv[a] = id < plan.num_entry_args ? args[id] : &scratch.buffers[id - plan.num_entry_args];
    }
    setAllocationContext(plan.entry, call.computes);
    auto start = std::chrono::steady_clock::now();
    result = call.kernel(scratch.argv.data());
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
