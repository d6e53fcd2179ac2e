// Halide's allocator for the trainer's kernels: freed blocks are kept by size and handed back to the next call,
// so after the first step the hot loop makes no system allocations (block_cache.cpp says why). Free of Halide
// headers, so JIT code (bench/kernels_bench.cpp) can install it too. Out of memory ends the process with exit
// code 1 and a message naming what was being computed and the bytes: the kernels do not check for null
// (compiler/aot/aot.cpp).
#pragma once

#include <cstddef>

namespace nnc::rt {

void* cachedMalloc(void* user_context, size_t size);
void cachedFree(void* user_context, void* pointer);

// What this thread's allocations are for, named when memory runs out: the entry point, and the values its kernel
// call computes ("matmul %23, add %24"), or null for the arena of its intermediates. The plan executor sets it;
// not copied, so the strings must outlive the calls.
void setAllocationContext(const char* entry, const char* computes);

}  // namespace nnc::rt
