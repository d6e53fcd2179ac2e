// A content-addressed cache of compiled kernels, so rebuilding an unchanged model skips Halide.
//
// The key hashes everything the kernels depend on: the whole program graph as text (forward, backward, update,
// entry points), the Halide target, the profiling switch, the schedule policy, and the nnc executable itself (so
// a change of the compiler, its lowering or its schedules makes new keys). An entry is a directory DIR/KEY holding the objects;
// it is filled in a temporary directory and renamed into place, so a crash never leaves half an entry.
// DIR is $NNC_CACHE_DIR, else $XDG_CACHE_HOME/nnc, else ~/.cache/nnc.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "compiler/aot/aot.h"
#include "compiler/graph/program.h"

namespace nnc {

std::string kernelCacheKey(const Program& program, const std::string& target, const KernelOptions& options);

// The key of anything else the compiler's output depends on through `text` (a plan's kernel: its group's text,
// the target, the profiling switch), and on the nnc executable.
std::string contentCacheKey(const std::string& text);

// The cache directory, or nullopt when none can be determined (no HOME).
std::optional<std::string> kernelCacheDir();

// The objects of entry `key`, when present.
std::optional<std::vector<std::string>> lookupKernels(const std::string& dir, const std::string& key);

// Copies `objects` into entry `key` (atomically); returns the cached paths. Failures (a full disk) leave the
// cache as it was and return the original paths: the cache is an optimization, never an error.
std::vector<std::string> storeKernels(const std::string& dir, const std::string& key,
                                      const std::vector<std::string>& objects);

}  // namespace nnc
