// Source buffers: the text of a model file plus a line index, so any byte offset maps to line:col.
#include "dsl/source.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <fmt/format.h>

namespace nnc::dsl {

SourceFile::SourceFile(std::string path, std::string text) : path_(std::move(path)), text_(std::move(text)) {
  // line_starts_[i] is the byte offset where line i+1 begins.
  line_starts_.push_back(0);
  for (uint32_t i = 0; i < text_.size(); ++i) {
    if (text_[i] == '\n') line_starts_.push_back(i + 1);
  }
}

SourceFile SourceFile::read(const std::string& path) {
  std::error_code error;
  if (std::filesystem::is_directory(path, error)) throw std::runtime_error(path + ": is a directory, not a model file");
  if (std::filesystem::exists(path, error) && !std::filesystem::is_regular_file(path, error))
    throw std::runtime_error(path + ": not a regular file (a device or a pipe), not a model file");  // /dev/zero
  uintmax_t size = std::filesystem::file_size(path, error);
  if (!error && size > kMaxBytes)
    throw std::runtime_error(fmt::format("{}: {} bytes; a model file may have at most {} (16 MiB)", path, size,
                                         kMaxBytes));
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": " + std::strerror(errno));
  std::ostringstream buffer;
  buffer << in.rdbuf();
  std::string text = buffer.str();
  if (text.rfind("\xEF\xBB\xBF", 0) == 0) text.erase(0, 3);  // a UTF-8 byte-order mark, as editors on Windows write
  if (size_t nul = text.find('\0'); nul != std::string::npos)
    throw std::runtime_error(fmt::format("{}: not a text file (a NUL byte at offset {})", path, nul));
  return SourceFile(path, std::move(text));
}

LineCol SourceFile::lineCol(uint32_t offset) const {
  offset = std::min<uint32_t>(offset, static_cast<uint32_t>(text_.size()));
  // The last line start that is <= offset.
  auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), offset);
  uint32_t index = static_cast<uint32_t>(it - line_starts_.begin()) - 1;
  return LineCol{index + 1, offset - line_starts_[index] + 1};
}

std::string_view SourceFile::lineText(uint32_t line) const {
  if (line == 0 || line > line_starts_.size()) return {};
  uint32_t begin = line_starts_[line - 1];
  uint32_t end = line < line_starts_.size() ? line_starts_[line] - 1 : static_cast<uint32_t>(text_.size());
  std::string_view text = std::string_view(text_).substr(begin, end - begin);
  if (!text.empty() && text.back() == '\r') text.remove_suffix(1);  // tolerate CRLF files
  return text;
}

}  // namespace nnc::dsl
