// Halide's allocator for the trainer's kernels: freed blocks are kept by size and handed back to the next call,
// so after the first step the hot loop makes no system allocations (block_cache.cpp says why). Free of Halide
// headers, so JIT code (bench/kernels_bench.cpp) can install it too. Out of memory ends the process with exit
// code 2 and a message: the kernels do not check for null (compiler/aot.cpp).
#pragma once

#include <cstddef>

namespace nnc::rt {

void* cachedMalloc(void* user_context, size_t size);
void cachedFree(void* user_context, void* pointer);

}  // namespace nnc::rt
