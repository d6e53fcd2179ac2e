// libFuzzer harness for the trainer's readers of users' files: NPY, IDX (raw or gzip), CSV and safetensors, one
// per build (NNC_FUZZ_NPY, NNC_FUZZ_IDX, NNC_FUZZ_CSV, NNC_FUZZ_SAFETENSORS). Each must answer any bytes with its
// data or a DataError naming the file: a crash, a sanitizer report, a hang, an allocation past the limit or any
// other exception is a finding. Built and run by tests/fuzz/run_loader_fuzzers.sh.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

#include "runtime/csv.h"
#include "runtime/dataset.h"
#include "runtime/errors.h"
#include "runtime/npy.h"
#include "runtime/safetensors.h"

namespace {

// The readers take paths, as trainers call them: each input becomes one file (in TMPDIR, a tmpfs when set so).
const std::string& inputPath() {
  static const std::string path = [] {
    const char* dir = std::getenv("TMPDIR");
    return std::string(dir ? dir : "/tmp") + "/nnc-loader-fuzz-" + std::to_string(getpid());
  }();
  return path;
}

// Runs one reader; a DataError is the expected answer to bad bytes.
template <typename Read>
void expectDataOrDataError(Read read) {
  try {
    read();
  } catch (const nnc::rt::DataError&) {
  }
}

// Every reader of the format, each on its own (one's error does not hide the next one's paths).
void readAsTrainerDoes(const std::string& path) {
#if defined(NNC_FUZZ_NPY)
  expectDataOrDataError([&] { nnc::rt::readNpy(path); });
  expectDataOrDataError([&] { nnc::rt::readNpyLabels(path); });
#elif defined(NNC_FUZZ_IDX)
  expectDataOrDataError([&] { nnc::rt::readIdx(path); });
#elif defined(NNC_FUZZ_CSV)
  expectDataOrDataError([&] { nnc::rt::readCsv(path, "label"); });
  expectDataOrDataError([&] { nnc::rt::readCsv(path, "0"); });
#elif defined(NNC_FUZZ_SAFETENSORS)
  expectDataOrDataError([&] { nnc::rt::readSafetensors(path); });
  expectDataOrDataError([&] { nnc::rt::readSafetensorsMetadata(path); });
#else
#error "define one of NNC_FUZZ_NPY, NNC_FUZZ_IDX, NNC_FUZZ_CSV, NNC_FUZZ_SAFETENSORS"
#endif
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& path = inputPath();
  FILE* file = std::fopen(path.c_str(), "wb");
  if (!file || std::fwrite(data, 1, size, file) != size || std::fclose(file) != 0) std::abort();
  readAsTrainerDoes(path);
  std::remove(path.c_str());
  return 0;
}
