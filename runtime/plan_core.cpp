// The plan executor's steps; see plan_core.h. Free of the C++ standard library (only <HalideRuntime.h>).
#include "runtime/plan_core.h"

#include <HalideRuntime.h>

namespace nnc::rt {

int64_t denseDims(int rank, const int64_t* shape, int64_t batch, halide_dimension_t* dims) {
  int64_t elements = 1;
  for (int d = 0; d < rank; ++d) {
    int64_t extent = shape[rank - 1 - d] == kBatchDim ? batch : shape[rank - 1 - d];
    dims[d] = halide_dimension_t(0, static_cast<int32_t>(extent), static_cast<int32_t>(elements));
    elements *= extent;
  }
  return elements;
}

int64_t planBatch(const PlanSpec& plan, void** args) {
  if (plan.batch_arg < 0) return 1;
  return static_cast<halide_buffer_t*>(args[plan.batch_arg])->dim[plan.batch_dim].extent;
}

int64_t planArenaElements(const PlanSpec& plan, int64_t batch) { return plan.arena_batched * batch + plan.arena_fixed; }

void shapePlanBuffers(const PlanSpec& plan, int64_t batch, halide_buffer_t* buffers, halide_dimension_t* dims) {
  for (int b = 0; b < plan.num_buffers; ++b) {
    const PlanBufferSpec& spec = plan.buffers[b];
    halide_buffer_t& buffer = buffers[b];
    buffer = halide_buffer_t{};
    buffer.type = spec.is_integer ? halide_type_t(halide_type_int, 32) : halide_type_t(halide_type_float, 32);
    buffer.dimensions = spec.rank;
    buffer.dim = &dims[static_cast<int64_t>(b) * kMaxRank];
    denseDims(spec.rank, spec.shape, batch, buffer.dim);
  }
}

void placePlanBuffers(const PlanSpec& plan, int64_t batch, float* arena, halide_buffer_t* buffers) {
  int64_t batched_elements = plan.arena_batched * batch;
  for (int b = 0; b < plan.num_buffers; ++b) {
    const PlanBufferSpec& spec = plan.buffers[b];
    float* start = spec.batched ? arena + spec.offset * batch : arena + batched_elements + spec.offset;
    buffers[b].host = reinterpret_cast<uint8_t*>(start);
  }
}

int runPlanCall(const PlanSpec& plan, int c, void** args, halide_buffer_t* buffers, void** argv) {
  const PlanCallSpec& call = plan.calls[c];
  for (int a = 0; a < call.num_args; ++a) {
    int id = call.args[a];
    argv[a] = id < plan.num_entry_args ? args[id] : &buffers[id - plan.num_entry_args];
  }
  return call.kernel(argv);
}

}  // namespace nnc::rt
