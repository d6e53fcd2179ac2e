// CSV data set reading (format in csv.h).
//
// In order:
//   1. Read the file (gunzipping if needed), drop a UTF-8 byte-order mark.
//   2. Split it into records with RecordReader, which tracks the line each record starts on.
//   3. Take the first record as the header and resolve the label column by name or index.
//   4. Check every later record's field count, then parse its label and features.
#include "runtime/csv.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <cmath>
#include <string_view>

#include "runtime/dataset.h"

namespace nnc::rt {
namespace {

[[noreturn]] void failAtLine(const std::string& path, int64_t line, const std::string& what) {
  throw DataError(path + ":" + std::to_string(line) + ": " + what);
}

// ---- records ---------------------------------------------------------------------

// Splits CSV text into records of fields. Quoted fields may hold commas, newlines and "" (a
// literal quote); a '\r' right before a line end is dropped; blank lines at the end are ignored.
class RecordReader {
 public:
  RecordReader(std::string_view text, const std::string& path) : text_(text), path_(path) {}

  // Reads the next record into `fields` (reusing its strings); false once the text is used up.
  // `line` receives the 1-based line the record starts on.
  bool next(std::vector<std::string>& fields, int64_t& line) {
    if (text_.find_first_not_of("\r\n", pos_) == std::string_view::npos) return false;
    line = line_;
    size_t n = 0;
    for (bool more = true; more; ++n) {
      if (n == fields.size()) fields.emplace_back();
      more = readField(fields[n], line);
    }
    fields.resize(n);
    return true;
  }

 private:
  // Reads one field; true when a ',' follows (another field of this record comes next).
  bool readField(std::string& out, int64_t record_line) {
    out.clear();
    if (peek() == '"') readQuoted(out, record_line);
    else readPlain(out);
    if (peek() == ',') {
      ++pos_;
      return true;
    }
    if (peek() == '\r' && pos_ + 1 < text_.size() && text_[pos_ + 1] == '\n') ++pos_;
    if (peek() == '\n') {
      ++pos_;
      ++line_;
    } else if (pos_ < text_.size()) {
      failAtLine(path_, line_, "expected `,` or the end of the line after a closing quote, got `" +
                                   std::string(1, peek()) + "`");
    }
    return false;
  }

  void readPlain(std::string& out) {
    size_t end = text_.find_first_of(",\n", pos_);
    if (end == std::string_view::npos) end = text_.size();
    size_t stop = end;
    if (stop > pos_ && text_[stop - 1] == '\r' && (end == text_.size() || text_[end] == '\n')) --stop;
    out.assign(text_.substr(pos_, stop - pos_));
    pos_ = stop;
  }

  void readQuoted(std::string& out, int64_t record_line) {
    const int64_t opened = line_;
    for (++pos_;; ++pos_) {
      if (pos_ >= text_.size())
        failAtLine(path_, record_line, "unterminated quoted field (opened on line " + std::to_string(opened) + ")");
      const char c = text_[pos_];
      if (c == '"' && pos_ + 1 < text_.size() && text_[pos_ + 1] == '"') {
        out += '"';
        ++pos_;
      } else if (c == '"') {
        ++pos_;
        return;
      } else {
        line_ += c == '\n';
        out += c;
      }
    }
  }

  char peek() const { return pos_ < text_.size() ? text_[pos_] : '\0'; }

  std::string_view text_;
  const std::string& path_;
  size_t pos_ = 0;
  int64_t line_ = 1;
};

// ---- fields ----------------------------------------------------------------------

std::string_view trim(std::string_view s) {
  const size_t b = s.find_first_not_of(" \t");
  if (b == std::string_view::npos) return {};
  return s.substr(b, s.find_last_not_of(" \t") - b + 1);
}

// The whole of `text` (spaces around it allowed) as a finite float, or false.
bool parseFloat(std::string_view text, float& out) {
  text = trim(text);
  if (!text.empty() && text[0] == '+') text.remove_prefix(1);
  const char* end = text.data() + text.size();
  auto [p, ec] = std::from_chars(text.data(), end, out);
  return ec == std::errc() && p == end && std::isfinite(out);
}

// A label: a non-negative integer below 2^31, written as "3" or as an integral float "3.0".
bool parseLabel(std::string_view text, int32_t& out) {
  text = trim(text);
  int64_t i = -1;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), i);
  if (ec != std::errc() || p != text.data() + text.size()) {
    float f = 0;
    if (!parseFloat(text, f) || f != std::floor(f) || f < 0 || f > 2147483647.0f) return false;
    i = static_cast<int64_t>(f);
  }
  if (i < 0 || i > INT32_MAX) return false;
  out = static_cast<int32_t>(i);
  return true;
}

// ---- the header ------------------------------------------------------------------

// "`a`, `b`, `c`", at most 12 names, then a count of the rest.
std::string listColumns(const std::vector<std::string>& columns) {
  std::string s;
  const size_t shown = std::min<size_t>(columns.size(), 12);
  for (size_t i = 0; i < shown; ++i) s += (i ? ", `" : "`") + columns[i] + "`";
  if (shown < columns.size()) s += ", ... (" + std::to_string(columns.size()) + " columns)";
  return s;
}

bool sameIgnoringCase(const std::string& a, const std::string& b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

// Step 3: the index of the label (or a target) column, chosen by name first, then by a decimal index.
// `noun` names the column in errors ("label column").
int64_t resolveColumn(const std::vector<std::string>& columns, const std::string& label, const std::string& path,
                      const std::string& noun) {
  std::vector<size_t> named;
  for (size_t i = 0; i < columns.size(); ++i)
    if (columns[i] == label) named.push_back(i);
  if (named.size() > 1)
    failAtLine(path, 1, noun + " `" + label + "` is ambiguous: columns " + std::to_string(named[0]) +
                            " and " + std::to_string(named[1]) + " of the header both have that name");
  if (named.size() == 1) return static_cast<int64_t>(named[0]);
  const bool digits = !label.empty() && label.find_first_not_of("0123456789") == std::string::npos;
  if (digits && label.size() < 10 && std::stoll(label) < static_cast<int64_t>(columns.size())) return std::stoll(label);
  std::string what = digits ? noun + " index " + label + " is out of range (expected 0 to " +
                                  std::to_string(columns.size() - 1) + ")"
                            : "unknown " + noun + " `" + label + "`";
  for (const std::string& c : columns)
    if (sameIgnoringCase(c, label)) what += "; did you mean `" + c + "`?";
  failAtLine(path, 1, what + "; the header has " + listColumns(columns));
}

std::vector<std::string> readHeader(RecordReader& reader, const std::string& path) {
  std::vector<std::string> columns;
  int64_t line = 1;
  if (!reader.next(columns, line)) failAtLine(path, 1, "empty file: expected a header row of column names");
  for (std::string& c : columns) c = std::string(trim(c));
  return columns;
}

// Step 3 for targets: the columns `names` lists (comma-separated), each once.
std::vector<int64_t> resolveTargetColumns(const std::vector<std::string>& columns, const std::string& names,
                                          const std::string& path) {
  std::vector<int64_t> indices;
  for (size_t start = 0;;) {
    size_t comma = names.find(',', start);
    std::string name(trim(std::string_view(names).substr(start, comma == std::string::npos ? std::string::npos
                                                                                            : comma - start)));
    int64_t index = resolveColumn(columns, name, path, "target column");
    if (std::find(indices.begin(), indices.end(), index) != indices.end())
      failAtLine(path, 1, "target column `" + columns[index] + "` is named twice");
    indices.push_back(index);
    if (comma == std::string::npos) return indices;
    start = comma + 1;
  }
}

// Step 4 for one record.
void appendRow(const std::vector<std::string>& fields, int64_t line, CsvTable& t, const std::string& path) {
  if (fields.size() != t.columns.size()) {
    const bool blank = fields.size() == 1 && fields[0].empty();
    failAtLine(path, line, "expected " + std::to_string(t.columns.size()) + " fields, got " +
                               (blank ? std::string("a blank line") : std::to_string(fields.size())));
  }
  for (size_t c = 0; c < fields.size(); ++c) {
    const bool is_label = static_cast<int64_t>(c) == t.label_index;
    float value = 0;
    int32_t label = 0;
    if (is_label ? parseLabel(fields[c], label) : parseFloat(fields[c], value)) {
      if (is_label) t.labels.push_back(label);
      else if (std::find(t.target_indices.begin(), t.target_indices.end(), static_cast<int64_t>(c)) == t.target_indices.end())
        t.features.push_back(value);
      continue;
    }
    failAtLine(path, line, "column `" + t.columns[c] + "`: expected " +
                               (is_label ? "a non-negative integer label" : "a finite number") + ", got \"" +
                               fields[c] + "\"");
  }
  for (int64_t c : t.target_indices) {
    float value = 0;
    parseFloat(fields[c], value);  // checked above
    t.targets.push_back(value);
  }
}

}  // namespace

CsvTable readCsv(const std::string& path, const std::string& columns, TargetKind targets) {
  const std::vector<uint8_t> bytes = readFileMaybeGzip(path);
  std::string_view text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
  RecordReader reader(text, path);
  CsvTable t;
  t.columns = readHeader(reader, path);
  size_t not_features = 0;
  if (targets == TargetKind::Label) {
    if (t.columns.size() < 2)
      failAtLine(path, 1, "expected a header with a label column and at least one feature column, got " +
                              std::to_string(t.columns.size()) + " column");
    t.label_index = resolveColumn(t.columns, columns, path, "label column");
    not_features = 1;
  } else {
    t.label_index = -1;
    if (targets == TargetKind::Values) t.target_indices = resolveTargetColumns(t.columns, columns, path);
    auto named = std::find(t.columns.begin(), t.columns.end(), columns);
    if (targets == TargetKind::None && named != t.columns.end()) t.target_indices = {named - t.columns.begin()};
    not_features = t.target_indices.size();
    if (t.columns.size() <= not_features)
      failAtLine(path, 1, "expected a header with at least one feature column besides the target columns, got " +
                              std::to_string(t.columns.size()) + " columns");
  }
  // Reserve for one row per remaining line (an upper bound): growing 100+ MB vectors by doubling
  // costs seconds of copying and page faults on MNIST-sized files. The room is on 2 MB pages (hugePageFloats).
  const size_t lines = static_cast<size_t>(std::count(text.begin(), text.end(), '\n')) + 1;
  t.features = hugePageFloats(lines * (t.columns.size() - not_features));
  t.features.clear();  // the capacity stays
  t.labels.reserve(lines);
  std::vector<std::string> fields;
  int64_t line = 0;
  while (reader.next(fields, line)) {
    appendRow(fields, line, t, path);
    ++t.rows;
  }
  if (t.rows == 0) failAtLine(path, 2, "no data rows after the header");
  return t;
}

}  // namespace nnc::rt
