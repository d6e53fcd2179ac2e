// Atomic file replacement for everything a trainer writes (checkpoints, logs of results).
//
// In: a path and the complete new contents. Out: either the file at `path` holds exactly the new
// contents, or (on any failure) the old file is untouched and a std::runtime_error names the path
// and strerror. A crash mid-write never leaves a half-written file under `path`.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace nnc::rt {

// Writes `bytes` to a temporary file in the directory of `path`, fsyncs it, renames it over
// `path`, then fsyncs the directory so that the rename itself is durable.
void writeFileAtomically(const std::string& path, std::string_view bytes);

// Several files, each as writeFileAtomically writes it, every temporary written before the first
// rename: a failure before the renames (a full disk, a vanished directory) leaves every path
// untouched and no temporary behind.
struct FileContents {
  std::string path;
  std::string_view bytes;
};
void writeFilesAtomically(const std::vector<FileContents>& files);

}  // namespace nnc::rt
