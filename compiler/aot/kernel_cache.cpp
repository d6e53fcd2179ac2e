// The kernel cache; see kernel_cache.h.
#include "compiler/aot/kernel_cache.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "compiler/graph/graph_printer.h"

namespace nnc {

namespace fs = std::filesystem;

namespace {

// 64-bit FNV-1a, continued from `hash`.
uint64_t fnv1a(const std::string& bytes, uint64_t hash = 0xcbf29ce484222325ULL) {
  for (unsigned char c : bytes) hash = (hash ^ c) * 0x100000001b3ULL;
  return hash;
}

// The running compiler's own bytes, hashed once per process.
uint64_t compilerHash() {
  static const uint64_t hash = [] {
    std::ifstream in("/proc/self/exe", std::ios::binary);
    return fnv1a(std::string(std::istreambuf_iterator<char>(in), {}));
  }();
  return hash;
}

const char* const kObjectsList = "objects";  // in each entry: the object file names, one per line

}  // namespace

std::string kernelCacheKey(const Program& program, const std::string& target, const KernelOptions& options) {
  return contentCacheKey(printForwardGraph(program.graph) + printBackwardGraph(program) + target +
                         (options.profile ? "+profile" : "") + "+schedule=" + schedulePolicyName(options.schedule));
}

std::string contentCacheKey(const std::string& text) {
  // Two differently seeded hashes of the text make a 128-bit key; collisions are not a practical concern.
  return fmt::format("{:016x}{:016x}{:016x}", compilerHash(), fnv1a(text), fnv1a(text, 0x84222325cbf29ce4ULL));
}

std::optional<std::string> kernelCacheDir() {
  if (const char* dir = std::getenv("NNC_CACHE_DIR"); dir && *dir) return std::string(dir);
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg) return std::string(xdg) + "/nnc";
  if (const char* home = std::getenv("HOME"); home && *home) return std::string(home) + "/.cache/nnc";
  return std::nullopt;
}

std::optional<std::vector<std::string>> lookupKernels(const std::string& dir, const std::string& key) {
  fs::path entry = fs::path(dir) / key;
  std::ifstream list(entry / kObjectsList);
  if (!list) return std::nullopt;
  std::vector<std::string> objects;
  for (std::string name; std::getline(list, name);) {
    if (!fs::exists(entry / name)) return std::nullopt;
    objects.push_back(entry / name);
  }
  return objects;
}

std::vector<std::string> storeKernels(const std::string& dir, const std::string& key,
                                      const std::vector<std::string>& objects) {
  std::error_code error;
  fs::path entry = fs::path(dir) / key;
  fs::path staging = fs::path(dir) / fmt::format(".{}.{}", key, getpid());
  fs::create_directories(staging, error);
  std::string list;
  for (const std::string& object : objects) {
    fs::copy_file(object, staging / fs::path(object).filename(), fs::copy_options::overwrite_existing, error);
    list += fs::path(object).filename().string() + "\n";
  }
  if (!error) {
    std::ofstream(staging / kObjectsList) << list;
    fs::rename(staging, entry, error);  // another build may have stored the same entry first: keep that one
  }
  fs::remove_all(staging, error);
  std::optional<std::vector<std::string>> cached = lookupKernels(dir, key);
  return cached ? *cached : objects;
}

}  // namespace nnc
