// Atomic file replacement: temp file + fsync + rename + directory fsync (see atomic_file.h).
//
// Steps:
//   0. Refuse a path that exists and is not a regular file (renamed over, /dev/null would become one).
//   1. mkstemp() a hidden temporary next to `path` (same directory, so rename() cannot cross
//      file systems).
//   2. Write all bytes, fsync, close; any failure unlinks the temporary and throws.
//   3. rename() over `path` (atomic on POSIX), then fsync the directory so the new name persists.
#include "runtime/atomic_file.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <stdexcept>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

#include "runtime/errors.h"
#include "runtime/output_path.h"

namespace nnc::rt {
namespace {

std::string baseNameOf(const std::string& path) {
  size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// A full disk, a name too long, a vanished directory: the user's to fix (exit 1), with the reason.
[[noreturn]] void throwErrno(const std::string& path, const char* what, int err) {
  throw DataError(path + ": " + what + ": " + std::strerror(err));
}

// Writes every byte, retrying on short writes and EINTR. Returns 0 or an errno value.
int writeAll(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return 0;
}

// Writes and syncs the temporary file; on failure removes it and throws naming `path`.
void fillTemporary(int fd, const std::string& tmp, const std::string& path,
                   std::string_view bytes) {
  const char* what = nullptr;
  int err = 0;
  if ((err = writeAll(fd, bytes)) != 0) {
    what = "cannot write";
  } else if (::fchmod(fd, 0644) != 0 || ::fsync(fd) != 0) {
    err = errno;
    what = "cannot sync";
  }
  if (::close(fd) != 0 && what == nullptr) {
    err = errno;
    what = "cannot close";
  }
  if (what == nullptr) return;
  ::unlink(tmp.c_str());
  throwErrno(path, what, err);
}

// Makes a completed rename durable. Failure here is reported: the data may not survive a crash.
void syncDirectory(const std::string& dir, const std::string& path) {
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) throwErrno(path, "cannot open directory to sync it", errno);
  int rc = ::fsync(dfd);
  int err = errno;
  ::close(dfd);
  if (rc != 0) throwErrno(path, "cannot sync directory", err);
}

// Steps 0 to 2: the name of a complete, synced temporary holding `bytes` beside `path`.
std::string writeTemporary(const std::string& path, std::string_view bytes) {
  struct stat existing {};
  if (::stat(path.c_str(), &existing) == 0 && !S_ISREG(existing.st_mode))  // never rename over /dev/null
    throw DataError(path + ": is not a regular file; it would be replaced by one: name a file");
  std::string tmp = directoryOf(path) + "/." + baseNameOf(path) + ".tmp.XXXXXX";
  std::vector<char> name(tmp.begin(), tmp.end());
  name.push_back('\0');
  int fd = ::mkstemp(name.data());
  if (fd < 0) throwErrno(path, "cannot create temporary file", errno);
  tmp = name.data();
  fillTemporary(fd, tmp, path, bytes);
  return tmp;
}

// Step 3.
void renameOver(const std::string& tmp, const std::string& path) {
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    throwErrno(path, "cannot rename temporary file over it", err);
  }
  syncDirectory(directoryOf(path), path);
}

}  // namespace

void writeFileAtomically(const std::string& path, std::string_view bytes) {
  renameOver(writeTemporary(path, bytes), path);
}

void writeFilesAtomically(const std::vector<FileContents>& files) {
  std::vector<std::string> temporaries;
  auto removeFrom = [&](size_t first) {
    for (size_t i = first; i < temporaries.size(); ++i) ::unlink(temporaries[i].c_str());
  };
  try {
    for (const FileContents& file : files) temporaries.push_back(writeTemporary(file.path, file.bytes));
  } catch (...) {
    removeFrom(0);
    throw;
  }
  for (size_t i = 0; i < files.size(); ++i) {
    try {
      renameOver(temporaries[i], files[i].path);
    } catch (...) {
      removeFrom(i + 1);
      throw;
    }
  }
}

}  // namespace nnc::rt
