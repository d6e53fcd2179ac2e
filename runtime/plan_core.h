// The part of the plan executor that needs no C++ standard library (runtime/plan.h is the trainer's executor): a
// plan's tables, as the generated model.cpp writes them, and the steps of running one. The inference library
// (`nnc build --emit=library`, runtime/predict_library.h) links only this part, so a C program links it with `cc`.
#pragma once

#include <cstdint>

#include "runtime/model_spec.h"

struct halide_buffer_t;     // HalideRuntime.h
struct halide_dimension_t;

namespace nnc::rt {

// An intermediate buffer: its element type, row-major shape (kBatchDim for the batch) and place in the arena:
// a batched buffer at element offset * B, the others at arena_batched * B + offset.
struct PlanBufferSpec {
  bool is_integer;
  int rank;
  int64_t shape[kMaxRank];
  bool batched;
  int64_t offset;
};

// A call: `args` are value ids; id < the entry's argument count is that argv entry (a buffer, or a pointer to a
// scalar), the others intermediate buffer id - that count.
struct PlanCallSpec {
  EntryFn kernel;
  const char* name;
  const char* computes;  // the values it materializes, for --profile: "matmul %23, add %24"
  int num_args;
  const int* args;
};

struct PlanSpec {
  const char* entry;   // train_step, grads or predict
  bool profiled;       // built with --profile: time each call (printPlanProfile)
  int num_entry_args;  // the entry point's arguments and results, as in its argv
  int num_buffers;
  const PlanBufferSpec* buffers;
  int num_calls;
  const PlanCallSpec* calls;
  int batch_arg;  // the argv buffer whose dimension `batch_dim` (Halide order) is the batch; -1: none
  int batch_dim;
  int64_t arena_batched, arena_fixed;  // the arena's 4-byte elements: arena_batched * B + arena_fixed
};

// Fills `dims` (Halide order: innermost first) for a dense row-major `shape` whose kBatchDim is `batch`; returns
// the element count.
int64_t denseDims(int rank, const int64_t* shape, int64_t batch, halide_dimension_t* dims);

// The batch size of a call: the extent of the plan's batch argument (1 when it has none).
int64_t planBatch(const PlanSpec& plan, void** args);

// The 4-byte elements of the plan's arena for `batch`.
int64_t planArenaElements(const PlanSpec& plan, int64_t batch);

// Shapes the plan's intermediate buffers for `batch` (dense, row-major); `dims` holds num_buffers * kMaxRank.
void shapePlanBuffers(const PlanSpec& plan, int64_t batch, halide_buffer_t* buffers, halide_dimension_t* dims);

// Points the shaped buffers into `arena` (planArenaElements(plan, batch) elements).
void placePlanBuffers(const PlanSpec& plan, int64_t batch, float* arena, halide_buffer_t* buffers);

// Runs call `c` of the plan: its arguments gathered into `argv` (room for the call's num_args) from the entry's
// `args` and the plan's `buffers`. Returns the kernel's result (0 or a Halide error code).
int runPlanCall(const PlanSpec& plan, int c, void** args, halide_buffer_t* buffers, void** argv);

}  // namespace nnc::rt
