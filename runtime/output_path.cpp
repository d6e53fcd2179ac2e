// Output path checks; see output_path.h.
#include "runtime/output_path.h"

#include <cerrno>
#include <climits>
#include <cstring>
#include <sys/stat.h>
#include <unistd.h>

#include <vector>

#include "runtime/errors.h"

namespace nnc::rt {

std::string directoryOf(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

void checkOutputPath(const std::string& flag, const std::string& path, OutputKind kind) {
  auto fail = [&](const std::string& why) { throw DataError(flag + " " + path + ": " + why); };
  if (path.empty()) throw DataError(flag + ": an empty path");
  if (path.back() == '/') fail("names a directory, not a file");
  // The atomic writes' temporaries add 19 characters to the name (.NAME.tmp.XXXXXX).
  size_t name_length = path.size() - path.find_last_of('/') - 1;
  if (path.find('/') == std::string::npos) name_length = path.size();
  if (name_length + 19 > NAME_MAX) fail("the file name is too long (at most " + std::to_string(NAME_MAX - 19) + " bytes)");
  std::string dir = directoryOf(path);
  struct stat info {};
  if (::stat(dir.c_str(), &info) != 0) fail("directory `" + dir + "` does not exist");
  if (!S_ISDIR(info.st_mode)) fail("`" + dir + "` is not a directory");
  if (::stat(path.c_str(), &info) == 0) {
    if (S_ISDIR(info.st_mode)) fail("is a directory");
    if (kind == OutputKind::Replaced && !S_ISREG(info.st_mode))
      fail("is not a regular file (a device or a pipe); it would be replaced by one: name a file");
    if (kind == OutputKind::Appended) {  // written in place (/dev/stdout too): the directory does not matter
      if (::access(path.c_str(), W_OK) != 0) fail(std::string("cannot write it: ") + std::strerror(errno));
      return;
    }
  }
  // Whether a file can be created there, as the atomic writes create their temporaries (permission bits alone
  // do not tell: root ignores them, and a read-only mount refuses everyone).
  std::string probe = dir + "/.nnc-write-check.XXXXXX";
  std::vector<char> name(probe.begin(), probe.end());
  name.push_back('\0');
  int fd = ::mkstemp(name.data());
  if (fd < 0) fail("cannot create files in `" + dir + "`: " + std::strerror(errno));
  ::close(fd);
  ::unlink(name.data());
}

}  // namespace nnc::rt
