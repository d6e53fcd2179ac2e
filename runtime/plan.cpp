// The plan executor; see plan.h.
#include "runtime/plan.h"

#include <HalideRuntime.h>

#include <vector>

#include "runtime/block_cache.h"

namespace nnc::rt {

namespace {

// Per thread, reused by every call: the intermediate buffers, their dimensions and one call's argv.
struct Scratch {
  std::vector<halide_buffer_t> buffers;
  std::vector<halide_dimension_t> dims;
  std::vector<void*> argv;
};

}  // namespace

int runPlan(const PlanSpec& plan, void** args) {
  thread_local Scratch scratch;
  int64_t batch = 1;
  if (plan.batch_arg >= 0) batch = static_cast<halide_buffer_t*>(args[plan.batch_arg])->dim[plan.batch_dim].extent;
  scratch.buffers.assign(plan.num_buffers, halide_buffer_t{});
  scratch.dims.resize(static_cast<size_t>(plan.num_buffers) * kMaxRank);
  int64_t batched_elements = plan.arena_batched * batch;
  auto* arena = static_cast<float*>(cachedMalloc(nullptr, static_cast<size_t>(batched_elements + plan.arena_fixed) * 4));
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
    float* start = spec.batched ? arena + spec.offset * batch : arena + batched_elements + spec.offset;
    buffer.host = reinterpret_cast<uint8_t*>(start);
  }
  int result = 0;
  for (int c = 0; c < plan.num_calls && result == 0; ++c) {
    const PlanCallSpec& call = plan.calls[c];
    scratch.argv.resize(call.num_args);
    for (int a = 0; a < call.num_args; ++a) {
      int id = call.args[a];
      scratch.argv[a] = id < plan.num_entry_args ? args[id] : &scratch.buffers[id - plan.num_entry_args];
    }
    result = call.kernel(scratch.argv.data());
  }
  cachedFree(nullptr, arena);
  return result;
}

}  // namespace nnc::rt
