// Output files a command will write, checked before it starts work: a path problem found after an epoch of
// training loses the epoch.
#pragma once

#include <string>

namespace nnc::rt {

// How a command writes a file: replaced atomically (a temporary renamed over it: checkpoints, plots, predictions)
// or appended to (metrics).
enum class OutputKind { Replaced, Appended };

// "dir/name" -> "dir"; "name" -> "."; "/name" -> "/".
std::string directoryOf(const std::string& path);

// Throws DataError naming `flag` and `path` when `path` cannot be written as `kind` says: its directory missing,
// not a directory or not writable (a file cannot be created there); the path a directory; for a replaced file,
// anything but a regular file (renamed over, a device such as /dev/null would become a regular file); for an
// appended file that exists (/dev/stdout included), only whether it can be written.
void checkOutputPath(const std::string& flag, const std::string& path, OutputKind kind);

}  // namespace nnc::rt
