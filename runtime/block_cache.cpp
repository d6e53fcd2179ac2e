// The block cache behind Halide's allocations (block_cache.h).
#include "runtime/block_cache.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>

namespace nnc::rt {

// Halide allocates every intermediate buffer at each call and frees it at the end (block_cache.h). Large blocks
// come from mmap, and touching fresh pages costs more than the kernels (examples/mlp.nn's predict at batch 160: 350 page
// faults and 4.85 ms per call against 0.64 ms at batch 128). So freed blocks go to a free list by size and the
// next call of the same entry point gets them back: after the first step the hot loop makes no system
// allocations. The list keeps the peak of what the pipelines need. Calls may come from worker threads.
namespace {
std::mutex block_cache_mutex;
std::multimap<size_t, char*> free_blocks;  // by usable size
constexpr size_t kBlockHeader = 128;       // keeps the payload 128-byte aligned and holds the size
}  // namespace

void* cachedMalloc(void*, size_t size) {
  {
    std::lock_guard<std::mutex> lock(block_cache_mutex);
    auto it = free_blocks.find(size);
    if (it != free_blocks.end()) {
      char* block = it->second;
      free_blocks.erase(it);
      return block + kBlockHeader;
    }
  }
  size_t total = (size + kBlockHeader + 127) / 128 * 128;
  auto* block = static_cast<char*>(std::aligned_alloc(128, total));
  if (!block) {  // the kernels carry no null checks (compiler/aot.cpp): stop here with the reason
    std::fprintf(stderr, "error: out of memory: a kernel needed %zu more bytes\n", size);
    std::_Exit(2);
  }
  std::memcpy(block, &size, sizeof size);
  return block + kBlockHeader;
}

void cachedFree(void*, void* pointer) {
  if (!pointer) return;
  char* block = static_cast<char*>(pointer) - kBlockHeader;
  size_t size;
  std::memcpy(&size, block, sizeof size);
  std::lock_guard<std::mutex> lock(block_cache_mutex);
  free_blocks.emplace(size, block);
}

}  // namespace nnc::rt
