// NumPy `.npy` reading and writing (format in npy.h).
//
// Reading, in order:
//   1. Check the magic and version, read the header length, check the header is all there.
//   2. Parse the header dict literal: exactly the keys descr, fortran_order and shape.
//   3. Check the data section holds exactly product(shape) * itemsize bytes.
//   4. Decode the little-endian elements into floats (or, for labels, into checked int32s).
#include "runtime/npy.h"

#include <bit>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string_view>
#include <utility>

#include "runtime/atomic_file.h"
#include "runtime/dataset.h"

namespace nnc::rt {
namespace {

static_assert(std::endian::native == std::endian::little,
              ".npy '<' dtypes are little-endian; a big-endian host needs byte swapping here");

const char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicBytes = 6;

[[noreturn]] void failAt(const std::string& path, uint64_t offset, const std::string& what) {
  throw DataError(path + ": offset " + std::to_string(offset) + ": " + what);
}

// ---- dtypes ---------------------------------------------------------------------

enum class Dtype { F4, F8, U1, I4, I8 };

struct DtypeInfo {
  Dtype dtype;
  const char* descr;
  size_t itemsize;
  bool integral;
};

constexpr DtypeInfo kDtypes[] = {
    {Dtype::F4, "<f4", 4, false}, {Dtype::F8, "<f8", 8, false}, {Dtype::U1, "|u1", 1, true},
    {Dtype::I4, "<i4", 4, true},  {Dtype::I8, "<i8", 8, true},
};

// numpy writes '|u1' for bytes, but '<u1' and '=u1' mean the same and some writers use them.
const DtypeInfo* findDtype(const std::string& descr) {
  std::string d = descr;
  if (d == "<u1" || d == "=u1") d = "|u1";
  for (const DtypeInfo& info : kDtypes)
    if (d == info.descr) return &info;
  return nullptr;
}

std::string supportedDtypes() {
  std::string s;
  for (const DtypeInfo& info : kDtypes) s += std::string(s.empty() ? "" : ", ") + "'" + info.descr + "'";
  return s;
}

// Element i of the data section, widened to double (exact for every dtype but i8 past 2^53).
double elementAt(const uint8_t* data, const DtypeInfo& info, size_t i) {
  const uint8_t* p = data + i * info.itemsize;
  switch (info.dtype) {
    case Dtype::F4: { float v; std::memcpy(&v, p, 4); return v; }
    case Dtype::F8: { double v; std::memcpy(&v, p, 8); return v; }
    case Dtype::U1: return *p;
    case Dtype::I4: { int32_t v; std::memcpy(&v, p, 4); return v; }
    case Dtype::I8: { int64_t v; std::memcpy(&v, p, 8); return static_cast<double>(v); }
  }
  return 0;
}

std::string formatShape(const std::vector<int64_t>& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

// ---- header dict ------------------------------------------------------------------

// Parses the Python literal {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }.
//   dict  := '{' (key ':' value (',' key ':' value)* ','?)? '}'
//   key   := string;  value := string | 'True' | 'False' | '(' (int (',' int)* ','?)? ')'
class HeaderParser {
 public:
  HeaderParser(std::string_view text, uint64_t base, const std::string& path)
      : text_(text), base_(base), path_(path) {}

  struct Fields {
    std::string descr;
    bool fortran_order = false;
    std::vector<int64_t> shape;
    uint64_t descr_offset = 0;
  };

  Fields parse() {
    Fields f;
    bool seen[3] = {false, false, false};
    skipSpace();
    if (peek() != '{') fail("expected the header to be a dict literal starting with '{'");
    ++pos_;
    for (skipSpace(); peek() != '}'; skipSpace()) {
      parseEntry(f, seen);
      skipSpace();
      if (peek() == ',') ++pos_;
      else if (peek() != '}') fail("expected ',' or '}' in the header dict");
    }
    ++pos_;
    skipSpace();
    if (pos_ != text_.size()) fail("unexpected text after the header dict");
    const char* names[3] = {"descr", "fortran_order", "shape"};
    for (int k = 0; k < 3; ++k)
      if (!seen[k]) fail(std::string("header dict has no `") + names[k] + "` key");
    return f;
  }

 private:
  void parseEntry(Fields& f, bool seen[3]) {
    const uint64_t key_offset = offset();
    std::string key = parseString("a quoted key");
    skipSpace();
    if (peek() != ':') fail("expected ':' after key `" + key + "`");
    ++pos_;
    skipSpace();
    int index = key == "descr" ? 0 : key == "fortran_order" ? 1 : key == "shape" ? 2 : -1;
    if (index < 0)
      failAt(path_, key_offset, "unexpected header key `" + key + "` (expected descr, fortran_order, shape)");
    if (seen[index]) failAt(path_, key_offset, "header key `" + key + "` appears twice");
    seen[index] = true;
    if (index == 0) {
      f.descr_offset = offset();
      if (peek() == '[') fail("structured dtypes (a list `descr`) are not supported");
      f.descr = parseString("a dtype string for `descr`");
    } else if (index == 1) {
      f.fortran_order = parseBool();
    } else {
      f.shape = parseShape();
    }
  }

  std::string parseString(const std::string& what) {
    const char quote = peek();
    if (quote != '\'' && quote != '"') fail("expected " + what);
    size_t end = text_.find(quote, pos_ + 1);
    if (end == std::string_view::npos) fail("unterminated string in the header");
    std::string s(text_.substr(pos_ + 1, end - pos_ - 1));
    pos_ = end + 1;
    return s;
  }

  bool parseBool() {
    for (const char* word : {"True", "False"})
      if (text_.substr(pos_, std::strlen(word)) == word) {
        pos_ += std::strlen(word);
        return word[0] == 'T';
      }
    fail("expected True or False for `fortran_order`");
  }

  std::vector<int64_t> parseShape() {
    if (peek() != '(') fail("expected a tuple of integers for `shape`");
    ++pos_;
    std::vector<int64_t> shape;
    for (skipSpace(); peek() != ')'; skipSpace()) {
      shape.push_back(parseDim());
      skipSpace();
      if (peek() == ',') ++pos_;
      else if (peek() != ')') fail("expected ',' or ')' in `shape`");
    }
    ++pos_;
    return shape;
  }

  int64_t parseDim() {
    if (!std::isdigit(static_cast<unsigned char>(peek())))
      fail("expected a non-negative integer in `shape`");
    int64_t d = 0;
    for (; std::isdigit(static_cast<unsigned char>(peek())); ++pos_) {
      if (d > (INT64_MAX - 9) / 10) fail("`shape` dimension too large");
      d = d * 10 + (peek() - '0');
    }
    return d;
  }

  char peek() const { return pos_ < text_.size() ? text_[pos_] : '\0'; }
  void skipSpace() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
  }
  uint64_t offset() const { return base_ + pos_; }
  [[noreturn]] void fail(const std::string& what) const { failAt(path_, offset(), what); }

  std::string_view text_;
  uint64_t base_;
  const std::string& path_;
  size_t pos_ = 0;
};

// ---- whole file ------------------------------------------------------------------

struct Parsed {
  std::vector<int64_t> shape;
  const DtypeInfo* dtype = nullptr;
  uint64_t data_offset = 0;
  size_t count = 0;  // product(shape)
};

uint64_t littleEndian(const uint8_t* p, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// Step 1: magic, version and header length. Returns the header's byte range.
std::pair<uint64_t, uint64_t> readPreamble(const std::vector<uint8_t>& bytes, const std::string& path) {
  if (bytes.size() < kMagicBytes || std::memcmp(bytes.data(), kMagic, kMagicBytes) != 0)
    failAt(path, 0, "not a .npy file: expected the magic \"\\x93NUMPY\"");
  if (bytes.size() < kMagicBytes + 2) failAt(path, 6, "truncated: expected the version bytes");
  const int major = bytes[6], minor = bytes[7];
  if (major < 1 || major > 3 || minor != 0)
    failAt(path, 6, "unsupported .npy version " + std::to_string(major) + "." + std::to_string(minor) +
                        " (expected 1.0, 2.0 or 3.0)");
  const int len_bytes = major == 1 ? 2 : 4;
  if (bytes.size() < 8u + len_bytes)
    failAt(path, 8, "truncated: expected a " + std::to_string(len_bytes) + "-byte header length");
  const uint64_t begin = 8 + len_bytes;
  const uint64_t len = littleEndian(bytes.data() + 8, len_bytes);
  if (len > bytes.size() - begin)
    failAt(path, begin, "truncated header: expected " + std::to_string(len) + " bytes, file has " +
                            std::to_string(bytes.size() - begin) + " left");
  return {begin, begin + len};
}

// Steps 1-3.
Parsed parseNpy(const std::vector<uint8_t>& bytes, const std::string& path) {
  auto [begin, end] = readPreamble(bytes, path);
  std::string_view text(reinterpret_cast<const char*>(bytes.data()) + begin, end - begin);
  HeaderParser::Fields f = HeaderParser(text, begin, path).parse();
  Parsed p{f.shape, findDtype(f.descr), end, 1};
  if (!p.dtype)
    failAt(path, f.descr_offset, "unsupported dtype '" + f.descr + "' (expected one of " + supportedDtypes() + ")");
  if (f.fortran_order)
    failAt(path, begin, "fortran_order is True; only C-order arrays are supported (save with np.ascontiguousarray)");
  for (int64_t d : p.shape) {
    if (d != 0 && p.count > SIZE_MAX / p.dtype->itemsize / static_cast<uint64_t>(d))
      failAt(path, begin, "shape " + formatShape(p.shape) + " is too large");
    p.count *= static_cast<size_t>(d);
  }
  const uint64_t need = p.count * p.dtype->itemsize, have = bytes.size() - end;
  const std::string what = "shape " + formatShape(p.shape) + " of '" + p.dtype->descr + "' needs " +
                           std::to_string(need) + " data bytes, file has " + std::to_string(have);
  if (have < need) failAt(path, bytes.size(), "truncated data: " + what);
  if (have > need) failAt(path, end + need, "data length mismatch: " + what);
  return p;
}

std::string formatNumber(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

// Step 4 for labels: one checked label.
int32_t labelAt(const uint8_t* data, const Parsed& p, size_t i, const std::string& path) {
  const double v = elementAt(data, *p.dtype, i);
  const uint64_t offset = p.data_offset + i * p.dtype->itemsize;
  const std::string where = "label " + std::to_string(i) + " is ";
  if (!std::isfinite(v) || v != std::floor(v))
    failAt(path, offset, where + formatNumber(v) + ": expected an integer class index");
  if (v < 0 || v > INT32_MAX)
    failAt(path, offset, where + formatNumber(v) + ": expected a class index in [0, 2^31)");
  return static_cast<int32_t>(v);
}

// The header dict, padded with spaces and a final '\n' so that the data starts 64-aligned.
std::string npyHeader(const std::vector<int64_t>& shape, int major) {
  std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': " + formatShape(shape) + ", }";
  const size_t preamble = major == 1 ? 10 : 12;
  const size_t total = (preamble + dict.size() + 1 + 63) / 64 * 64;
  return dict + std::string(total - preamble - dict.size() - 1, ' ') + "\n";
}

}  // namespace

NpyArray readNpy(const std::string& path) {
  const std::vector<uint8_t> bytes = readFileMaybeGzip(path);
  const Parsed p = parseNpy(bytes, path);
  NpyArray out{p.shape, hugePageFloats(p.count)};  // data sets are gathered row by row (hugePageFloats)
  const uint8_t* data = bytes.data() + p.data_offset;
  if (p.dtype->dtype == Dtype::F4 && p.count > 0) {
    std::memcpy(out.data.data(), data, p.count * 4);
  } else {
    for (size_t i = 0; i < p.count; ++i) out.data[i] = static_cast<float>(elementAt(data, *p.dtype, i));
  }
  return out;
}

std::vector<int32_t> readNpyLabels(const std::string& path) {
  const std::vector<uint8_t> bytes = readFileMaybeGzip(path);
  const Parsed p = parseNpy(bytes, path);
  const bool column = p.shape.size() == 2 && p.shape[1] == 1;
  if (p.shape.size() != 1 && !column)
    failAt(path, 0, "labels must be a 1-D array (or [n, 1]), got shape " + formatShape(p.shape));
  std::vector<int32_t> labels(p.count);
  for (size_t i = 0; i < p.count; ++i) labels[i] = labelAt(bytes.data() + p.data_offset, p, i, path);
  return labels;
}

void writeNpy(const std::string& path, const std::vector<int64_t>& shape, const float* data) {
  size_t count = 1;
  for (int64_t d : shape) {
    if (d < 0) throw std::invalid_argument("writeNpy: negative dimension in " + formatShape(shape));
    count *= static_cast<size_t>(d);
  }
  std::string header = npyHeader(shape, 1);
  const int major = header.size() > 65535 ? 2 : 1;
  if (major == 2) header = npyHeader(shape, 2);
  std::string file(kMagic, kMagicBytes);
  file += static_cast<char>(major);
  file += '\0';
  for (int i = 0; i < (major == 1 ? 2 : 4); ++i) file += static_cast<char>((header.size() >> (8 * i)) & 0xff);
  file += header;
  if (count > 0) file.append(reinterpret_cast<const char*>(data), count * sizeof(float));
  writeFileAtomically(path, file);
}

}  // namespace nnc::rt
