// Test shim for tests/e2e_trainer.sh, loaded with LD_PRELOAD: rename() onto a path containing ".safetensors"
// first creates the file named by $NNC_TEST_RENAME_MARK and then sleeps 60 s, so the test can SIGKILL a trainer
// in the middle of saving a checkpoint (after the temporary file is written, before it replaces the old one).
#include <dlfcn.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

extern "C" int rename(const char* from, const char* to) {
  using RenameFn = int (*)(const char*, const char*);
  static RenameFn real = reinterpret_cast<RenameFn>(dlsym(RTLD_NEXT, "rename"));
  const char* mark = std::getenv("NNC_TEST_RENAME_MARK");
  if (mark && std::strstr(to, ".safetensors")) {
    if (FILE* f = std::fopen(mark, "w")) std::fclose(f);
    sleep(60);
  }
  return real(from, to);
}
