// Test shim for tests/e2e_trainer.sh, loaded with LD_PRELOAD: counts malloc calls and writes the count to the
// file named by $NNC_TEST_MALLOC_COUNT at exit, so the test can check that training steps allocate nothing.
#include <dlfcn.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>

namespace {
std::atomic<long> calls{0};
}  // namespace

extern "C" void* malloc(size_t size) {
  using MallocFn = void* (*)(size_t);
  static MallocFn real = reinterpret_cast<MallocFn>(dlsym(RTLD_NEXT, "malloc"));
  calls.fetch_add(1, std::memory_order_relaxed);
  return real(size);
}

__attribute__((destructor)) static void writeCount() {
  long count = calls.load();
  if (const char* path = std::getenv("NNC_TEST_MALLOC_COUNT"))
    if (FILE* f = std::fopen(path, "w")) {
      std::fprintf(f, "%ld\n", count);
      std::fclose(f);
    }
}
