// Source buffers and spans: every later stage points back into the model file through a Span.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace nnc::dsl {

// A half-open byte range [begin, end) in one SourceFile.
struct Span {
  uint32_t begin = 0;
  uint32_t end = 0;
};

struct LineCol {
  uint32_t line = 1;  // 1-based
  uint32_t col = 1;   // 1-based, in bytes
};

// The text of one model file plus a line index for line:col lookups.
class SourceFile {
 public:
  SourceFile(std::string path, std::string text);

  // Reads a file (dropping a UTF-8 byte-order mark); throws std::runtime_error with the path and errno text on
  // failure, for a directory, a file above kMaxBytes and one with a NUL byte (not text).
  static SourceFile read(const std::string& path);
  static constexpr uintmax_t kMaxBytes = 16u << 20;

  const std::string& path() const { return path_; }
  const std::string& text() const { return text_; }
  LineCol lineCol(uint32_t offset) const;
  // The text of 1-based line `line`, without its newline.
  std::string_view lineText(uint32_t line) const;
  std::string_view slice(Span span) const { return std::string_view(text_).substr(span.begin, span.end - span.begin); }

 private:
  std::string path_;
  std::string text_;
  std::vector<uint32_t> line_starts_;
};

}  // namespace nnc::dsl
