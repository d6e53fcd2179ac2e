// CSV data sets: a text table -> float features and int32 labels.
//
// In: a comma-separated file (raw or gzipped) whose first row names the columns; one column holds
// the class label (a non-negative integer), every other column a float feature. Fields may be
// quoted ("a,b", with "" for a literal quote); CRLF line ends, a UTF-8 byte-order mark and blank
// lines at the end of the file are accepted.
// Out: a CsvTable, or a DataError "<file>:<line>: column `<name>`: <what was expected>".
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/errors.h"

namespace nnc::rt {

struct CsvTable {
  std::vector<std::string> columns;  // every header name, in file order (the label's included)
  int64_t label_index = 0;           // which of `columns` holds the label
  int64_t rows = 0;
  std::vector<float> features;  // [rows, columns.size() - 1], the non-label columns in file order
  std::vector<int32_t> labels;  // [rows]
};

// label_column: a header name, or else a 0-based decimal column index. Features must be finite
// numbers; labels non-negative integers below 2^31 ("3" and "3.0" both read as 3).
CsvTable readCsv(const std::string& path, const std::string& label_column);

}  // namespace nnc::rt
