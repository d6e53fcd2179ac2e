// The block cache behind Halide's allocations (block_cache.h).
#include "runtime/block_cache.h"

#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>

namespace nnc::rt {

// Halide allocates every intermediate buffer at each call and frees it at the end. Large blocks come from mmap,
// and touching fresh pages costs more than the kernels (examples/mlp.nn's predict at batch 160: 350 page faults
// and 4.85 ms per call against 0.64 ms at batch 128). So freed blocks go to a free list by size and the next
// call of the same entry point gets them back: after the first step the hot loop makes no system allocations.
// The list keeps the peak of what the pipelines need. Calls may come from worker threads.
namespace {
std::mutex block_cache_mutex;
// The free blocks of each size, as a list linked through the blocks' headers. A size's map entry stays once
// made (an empty list when all its blocks are out), so freeing a block never allocates: a multimap of blocks
// made a tree node per free, 48 mallocs per LeNet-5 step.
std::map<size_t, char*> free_lists;
constexpr size_t kBlockHeader = 128;  // keeps the payload 128-byte aligned; holds the size, then the next block

size_t& sizeOf(char* block) { return *reinterpret_cast<size_t*>(block); }
char*& nextOf(char* block) { return *reinterpret_cast<char**>(block + sizeof(size_t)); }
thread_local const char* allocation_entry = nullptr;  // setAllocationContext
thread_local const char* allocation_computes = nullptr;
}  // namespace

void setAllocationContext(const char* entry, const char* computes) {
  allocation_entry = entry;
  allocation_computes = computes;
}

void* cachedMalloc(void*, size_t size) {
  {
    std::lock_guard<std::mutex> lock(block_cache_mutex);
    auto it = free_lists.find(size);
    if (it != free_lists.end() && it->second) {
      char* block = it->second;
      it->second = nextOf(block);
      return block + kBlockHeader;
    }
  }
  size_t total = (size + kBlockHeader + 127) / 128 * 128;
  auto* block = static_cast<char*>(std::aligned_alloc(128, total));
  if (!block) {  // the kernels carry no null checks (compiler/aot/aot.cpp): stop here with the reason, a user's
    std::string what = !allocation_entry    ? "a kernel"
                       : allocation_computes ? std::string(allocation_entry) + "'s kernel computing " + allocation_computes
                                             : std::string("the arena of ") + allocation_entry + "'s intermediates";
    std::fprintf(stderr, "error: out of memory: %s needed %zu more bytes (a smaller --batch needs less)\n",
                 what.c_str(), size);
    std::_Exit(1);
  }
  sizeOf(block) = size;
  return block + kBlockHeader;
}

void cachedFree(void*, void* pointer) {
  if (!pointer) return;
  char* block = static_cast<char*>(pointer) - kBlockHeader;
  std::lock_guard<std::mutex> lock(block_cache_mutex);
  char*& head = free_lists[sizeOf(block)];
  nextOf(block) = head;
  head = block;
}

}  // namespace nnc::rt
