// The thread pool that runs the kernels' parallel loops in place of Halide's (thread_pool.cpp says why). Free of
// Halide headers: its signature is halide_do_par_for's, so JIT code (bench/kernels_bench.cpp) can install it too.
#pragma once

#include <cstdint>

namespace nnc::rt {

// Halide's task: runs iteration `index` of a parallel loop whose variables are in `closure`.
using ParallelTask = int (*)(void* user_context, int index, uint8_t* closure);

// Sets the number of threads that run parallel loops, the calling thread included (0: one per core). Call before
// the first kernel; a later call with another count replaces the workers.
void setKernelThreads(int threads);

// Runs task(min) ... task(min + size - 1) on the pool; returns the first nonzero task result, or 0.
int parallelFor(void* user_context, ParallelTask task, int min, int size, uint8_t* closure);

}  // namespace nnc::rt
