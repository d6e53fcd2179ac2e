// Atomic file replacement for everything a trainer writes (checkpoints, logs of results).
//
// In: a path and the complete new contents. Out: either the file at `path` holds exactly the new
// contents, or (on any failure) the old file is untouched and a std::runtime_error names the path
// and strerror. A crash mid-write never leaves a half-written file under `path`.
#pragma once

#include <string>
#include <string_view>

namespace nnc::rt {

// Writes `bytes` to a temporary file in the directory of `path`, fsyncs it, renames it over
// `path`, then fsyncs the directory so that the rename itself is durable.
void writeFileAtomically(const std::string& path, std::string_view bytes);

}  // namespace nnc::rt
